//! `compass refund`: give money back, or decline a customer's request.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};
use time::OffsetDateTime;

use crate::app::App;
use crate::money;
use crate::order::{self, Event, InvalidTransition, RefundSource, Rejection, Status};
use crate::refunds::{self, Issued};

/// Refund an order at Stripe, in full or in part, or decline a customer's refund request
///
/// The refund goes to Stripe at once. It carries an Idempotency-Key made from the order and
/// the refund's number, so a repeated or interrupted run never refunds twice. A full refund ends
/// the order `refunded` and emails the customer. A partial refund (--amount) is goodwill: the
/// order stays where it is. Approving a request that waits for review is `compass refund ORDER`.
/// Asks for confirmation at a terminal; give --yes in scripts. Needs COMPASS_STRIPE_SECRET_KEY.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    compass refund 01a2b3c4 --reason \"report arrived late\"\n  \
    compass refund 01a2b3c4 --amount 5000 --yes\n  \
    compass refund 01a2b3c4 --decline --reason \"report downloaded twice\"")]
pub struct Args {
    /// The order: its id or a unique prefix of at least 8 characters
    order: String,

    /// Refund only this much, in cents (default: everything still refundable)
    #[arg(long, value_name = "CENTS", value_parser = clap::value_parser!(i64).range(1..))]
    amount: Option<i64>,

    /// Why: kept with the refund and in the audit log
    #[arg(long, default_value = "refunded by the operator", value_name = "TEXT")]
    reason: String,

    /// Decline the customer's waiting request instead: the order goes back to where it was
    #[arg(long, conflicts_with = "amount")]
    decline: bool,

    /// Do not ask for confirmation
    #[arg(long, short)]
    yes: bool,

    /// Print the outcome as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(
    args: Args,
    config: &Path,
    now: OffsetDateTime,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let reason = args.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        bail!("--reason must be 1 to 500 characters");
    }
    let mut app = App::open(config, env)?;
    let id = app.db.resolve_order_id(&args.order)?;
    let stored = app
        .db
        .order(&id)?
        .with_context(|| format!("no order {id}"))?;
    let order = &stored.order;
    let policy = app.config.policy.clone();

    if args.decline {
        if order.status != Status::RefundRequested {
            bail!(
                "order {id} is {}: there is no refund request to decline",
                order.status
            );
        }
        confirm(
            args.yes,
            &format!("Decline the refund request of order {id}?"),
        )?;
        let event = Event::RefundDeclined {
            reason: reason.to_owned(),
        };
        app.db
            .apply(&id, &event, &policy, "operator", now)?
            .map_err(|rejected| refusal(&id, &rejected, order.currency.as_str()))?;
        app.db.audit(
            "operator",
            "refund_declined",
            Some(&id),
            &serde_json::json!({ "reason": reason }),
            now,
        )?;
        writeln!(out, "declined the refund request of order {id}")?;
        return Ok(());
    }

    // Refuse before anything is written: what the order allows first (the state machine is
    // pure, so this is a dry run), then whether Stripe can be asked at all.
    let dry_run = Event::RefundRequested {
        source: RefundSource::Operator,
        reason: reason.to_owned(),
        amount_cents: args.amount,
        prior_refunds: 0,
    };
    order::step(order, &dry_run, &policy, now)
        .map_err(|rejected| refusal(&id, &rejected, &order.currency))?;
    app.stripe()?;
    let refundable = order.refundable_cents();
    let amount = args.amount.unwrap_or(refundable);
    let currency = order.currency.clone();
    if refundable > 0 && amount <= refundable {
        confirm(
            args.yes,
            &format!(
                "Refund {} of order {id} ({} paid, {} refunded so far)?",
                money::format(amount, &currency),
                money::format(order.amount_cents, &currency),
                money::format(order.refunded_cents, &currency),
            ),
        )?;
    }
    app.db
        .request_refund(
            &id,
            RefundSource::Operator,
            reason,
            args.amount,
            &policy,
            "operator",
            now,
        )?
        .map_err(|rejected| refusal(&id, &rejected, &currency))?;
    app.db.audit(
        "operator",
        "refund",
        Some(&id),
        &serde_json::json!({ "amount_cents": amount, "reason": reason }),
        now,
    )?;
    let issued = refunds::issue_pending(&mut app, Some(&id), now)?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &issued)?;
        writeln!(out)?;
        return Ok(());
    }
    for refund in &issued {
        let amount = money::format(refund.amount_cents, &currency);
        match &refund.issued {
            Issued::Succeeded => writeln!(out, "refunded {amount} of order {id}")?,
            Issued::Pending(status) => writeln!(
                out,
                "asked Stripe to refund {amount} of order {id}; it is {status}, and its webhook will settle it"
            )?,
            Issued::Failed(error) => bail!("Stripe refused the refund of {amount}: {error}"),
            Issued::Later(error) => writeln!(
                out,
                "the refund of {amount} is recorded but Stripe was not reached ({error}); \
                 `compass process` asks again"
            )?,
        }
    }
    Ok(())
}

/// Asks at a terminal; without one, only --yes goes ahead.
pub(super) fn confirm(yes: bool, question: &str) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("not at a terminal: add --yes to go ahead without confirming");
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        bail!("nothing done")
    }
}

/// Why the state machine refused, in the operator's words.
fn refusal(id: &str, rejected: &InvalidTransition, currency: &str) -> anyhow::Error {
    match (&rejected.why, rejected.from) {
        (Rejection::NotPaid, _) => anyhow::anyhow!("order {id} was never paid: nothing to refund"),
        (_, Status::Disputed) => anyhow::anyhow!(
            "order {id} is disputed: the card network holds the money; answer the dispute in \
             the Stripe dashboard instead of refunding"
        ),
        (Rejection::NothingToRefund, _) => anyhow::anyhow!(
            "order {id} has nothing left to refund (it is {})",
            rejected.from
        ),
        (
            Rejection::BadRefundAmount {
                asked_cents,
                refundable_cents,
            },
            _,
        ) => anyhow::anyhow!(
            "cannot refund {} of order {id}: at most {} can be refunded",
            money::format(*asked_cents, currency),
            money::format(*refundable_cents, currency)
        ),
        _ => anyhow::anyhow!("cannot change order {id}: {rejected}"),
    }
}
