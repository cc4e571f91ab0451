//! `compass resend-email`: send an order's email again, on purpose.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use time::OffsetDateTime;

use crate::app::App;
use crate::db::normalize_email;
use crate::mail::outbox;
use crate::mail::{self, Composer, Mailer};
use crate::order::EmailKind;

/// Send one of an order's emails again (a customer lost it, or typed a wrong address)
///
/// Queues a new email marked as a resend of the original, audited, then sends the outbox at
/// once. Without --kind it is the order's latest email; --to sends it to another address.
/// The kind must fit the order: no "report ready" before there is a report.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    compass resend-email 01a2b3c4\n  \
    compass resend-email 01a2b3c4 --kind report_ready --to cfo@example.com")]
pub struct Args {
    /// The order: its id or a unique prefix of at least 8 characters
    order: String,

    /// Which email: payment_confirmation, report_ready, processing_failed, refund_processed,
    /// refund_under_review
    #[arg(long, value_name = "KIND")]
    kind: Option<EmailKind>,

    /// Send it here instead of the customer's address
    #[arg(long, value_name = "ADDRESS")]
    to: Option<String>,
}

pub fn run(
    args: Args,
    config: &Path,
    now: OffsetDateTime,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut app = App::open(config, env)?;
    let id = app.db.resolve_order_id(&args.order)?;
    let detail = app
        .db
        .order_detail(&id)?
        .with_context(|| format!("no order {id}"))?;
    let kind = match args.kind {
        Some(kind) => kind,
        None => detail
            .emails
            .iter()
            .rev()
            .filter(|e| e.resend_of.is_none())
            .map(|e| e.kind.parse::<EmailKind>())
            .find(|kind| *kind != Ok(EmailKind::OperatorAlert))
            .transpose()
            .map_err(|err| anyhow::anyhow!(err))?
            .with_context(|| format!("order {id} has had no email yet: name one with --kind"))?,
    };
    mail::applies(kind, detail.summary.status, detail.summary.refunded_cents)
        .map_err(|why| anyhow::anyhow!("cannot resend for order {id}: {why}"))?;
    if kind == EmailKind::ReportReady && detail.completed_at.is_none() {
        // A refund request made while the report waited for review: it never went out.
        bail!(
            "cannot resend for order {id}: its report was never delivered (approve it with `compass review {id} --approve`)"
        );
    }
    let to = match &args.to {
        Some(to) => {
            crate::address::check(to).map_err(|why| anyhow::anyhow!("--to {why}"))?;
            normalize_email(to)
        }
        None => detail.summary.email.clone(),
    };
    if to.is_empty() {
        bail!("order {id} has no email address");
    }
    // Build the mail transport first: a broken mail setting changes nothing.
    let mailer = Mailer::new(&app.config.mail)?;
    let composer = Composer::new(&app.method)?;
    let email = app.db.queue_resend(&id, kind, &to, "operator", now)?;
    let clock = || Ok(now);
    let sent = outbox::send_due(&mut app.db, &app.config, &mailer, &composer, &clock, 100)?;
    let status = app
        .db
        .order_detail(&id)?
        .and_then(|d| d.emails.into_iter().find(|e| e.id == email))
        .map(|e| (e.status, e.last_error));
    match status {
        Some((status, _)) if status == "sent" => {
            writeln!(out, "sent the {kind} email of order {id} to {to}")?;
        }
        Some((_, error)) => writeln!(
            out,
            "queued the {kind} email of order {id} to {to}; not sent yet ({}): `compass process` retries it",
            error.unwrap_or_else(|| "waiting".into())
        )?,
        None => bail!("the queued email {email} is gone"),
    }
    if sent.sent > 1 {
        writeln!(out, "also sent {} other due email(s)", sent.sent - 1)?;
    }
    Ok(())
}
