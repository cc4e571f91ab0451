//! `compass orders`: the orders as a table or JSON, and one order's whole story.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use comfy_table::{Cell, ContentArrangement, Table, presets};
use time::OffsetDateTime;

use crate::app::App;
use crate::clock;
use crate::db::{OrderDetail, OrderFilter, OrderSummary};
use crate::money;
use crate::order::Status;

/// List orders, newest first, or show one order in full
///
/// Examples:
///   compass orders                          the 50 newest orders
///   compass orders --status paid --since 2d  paid orders from the last two days
///   compass orders --email ada@example.com   one customer's orders
///   compass orders --json --limit 0 | jq     every order, for scripts
///   compass orders --csv --limit 0 > orders.csv  for the accountant (amounts in cents)
///   compass orders show 019a4c2e             one order: payment, refunds, emails, timeline
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, verbatim_doc_comment)]
pub struct Args {
    #[command(subcommand)]
    show: Option<Show>,

    /// Only orders in this status: pending_payment, paid, generating, completed, failed,
    /// refund_requested, refunding, refunded, expired or disputed
    #[arg(long, value_parser = parse_status, value_name = "STATUS")]
    status: Option<Status>,

    /// Only orders created since: an age (90m, 12h, 3d, 2w), a date (2026-11-01, UTC) or an
    /// RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,

    /// Only this customer's orders (matched case-insensitively)
    #[arg(long, value_name = "EMAIL")]
    email: Option<String>,

    /// At most this many orders; 0 for all
    #[arg(long, default_value_t = 50, value_name = "N")]
    limit: u32,

    /// Print a JSON array instead of a table (stable field names, RFC 3339 times, amounts in
    /// cents)
    #[arg(long, conflicts_with = "csv")]
    json: bool,

    /// Print CSV for accounting: date, order, customer, tier, status, amounts in cents,
    /// currency, and the Stripe ids of the payment and its refunds
    #[arg(long)]
    csv: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Show {
    /// Everything about one order: customer, payment, refunds, emails and its timeline
    Show {
        /// The order's id, or a unique prefix of it (at least 8 characters)
        id: String,
        /// Print JSON (including the questionnaire answers) instead of tables
        #[arg(long)]
        json: bool,
    },
}

fn parse_status(text: &str) -> Result<Status, String> {
    text.parse()
}

pub fn run(
    args: Args,
    config: &Path,
    now: OffsetDateTime,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let since = args
        .since
        .as_deref()
        .map(|text| clock::parse_since(text, now))
        .transpose()
        .context("invalid --since")?;
    let app = App::open(config, env)?;
    if let Some(Show::Show { id, json }) = args.show {
        return show(&app, &id, json, now, out);
    }
    let filter = OrderFilter {
        status: args.status,
        since,
        email: args.email,
        limit: if args.limit == 0 {
            u32::MAX
        } else {
            args.limit
        },
    };
    let orders = app.db.list_orders(&filter)?;
    if args.csv {
        return csv(&app, &orders, out);
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &orders)?;
        writeln!(out)?;
        return Ok(());
    }
    let narrowed = filter.status.is_some() || filter.since.is_some() || filter.email.is_some();
    if orders.is_empty() {
        let message = if narrowed {
            "no orders match"
        } else {
            "no orders yet"
        };
        writeln!(out, "{message}")?;
        return Ok(());
    }
    writeln!(out, "{}", list_table(&orders, now))?;
    if orders.len() as u64 == u64::from(filter.limit) {
        let total = app.db.count_orders(&filter)?;
        if total > orders.len() as i64 {
            writeln!(
                out,
                "{} of {total} orders shown; --limit N shows more, --limit 0 all",
                orders.len()
            )?;
        }
    }
    Ok(())
}

/// The orders as CSV, one row each, with a header.
fn csv(app: &App, orders: &[OrderSummary], out: &mut dyn Write) -> anyhow::Result<()> {
    let mut writer = ::csv::Writer::from_writer(out);
    writer.write_record([
        "created_at",
        "order_id",
        "email",
        "name",
        "company",
        "tier",
        "status",
        "amount_cents",
        "refunded_cents",
        "currency",
        "payment_intent",
        "charge",
        "refunds",
    ])?;
    for order in orders {
        let (intent, charge, refunds) = app.db.stripe_ids(&order.id)?;
        writer.write_record([
            clock::rfc3339(order.created_at).as_str(),
            &order.id,
            &spreadsheet_text(&order.email),
            &spreadsheet_text(&order.name),
            &spreadsheet_text(&order.company),
            order.tier.as_str(),
            order.status.as_str(),
            &order.amount_cents.to_string(),
            &order.refunded_cents.to_string(),
            &order.currency,
            intent.as_deref().unwrap_or(""),
            charge.as_deref().unwrap_or(""),
            &refunds.join(" "),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

/// Customer text as a spreadsheet shows it: a cell starting with `=`, `+`, `-`, `@`, a tab or
/// a carriage return would be run as a formula when the file is opened, so it gets a leading
/// `'` (OWASP's advice for CSV exports).
pub(super) fn spreadsheet_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// The orders list as people read it.
pub fn list_table(orders: &[OrderSummary], now: OffsetDateTime) -> Table {
    let mut table = new_table();
    table.set_header([
        "id",
        "created (UTC)",
        "customer",
        "tier",
        "amount",
        "status",
        "age",
    ]);
    for order in orders {
        table.add_row([
            Cell::new(&order.id),
            Cell::new(clock::minute(order.created_at)),
            Cell::new(printable(&order.email)),
            Cell::new(order.tier.as_str()),
            Cell::new(money::format(order.amount_cents, &order.currency)),
            Cell::new(order.status.as_str()),
            Cell::new(clock::age(order.created_at, now)),
        ]);
    }
    table
}

fn show(
    app: &App,
    typed: &str,
    json: bool,
    now: OffsetDateTime,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let id = app.db.resolve_order_id(typed)?;
    let detail = app
        .db
        .order_detail(&id)?
        .with_context(|| format!("no order with id {id}"))?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &detail)?;
        writeln!(out)?;
        return Ok(());
    }
    let status_url = format!("{}/status/{}", app.config.public_url, detail.status_token);
    let method = app.method_of(detail.method_version.as_deref())?;
    write_detail(
        out,
        &detail,
        &method,
        &status_url,
        app.config.policy.max_attempts,
        now,
    )
}

/// One order in full, as people read it.
pub fn write_detail(
    out: &mut dyn Write,
    detail: &OrderDetail,
    method: &crate::method::Method,
    status_url: &str,
    max_attempts: u32,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let order = &detail.summary;
    let money = |cents| money::format(cents, &order.currency);
    let when = |at: Option<OffsetDateTime>| at.map_or_else(|| "-".to_owned(), clock::minute);

    writeln!(out, "Order {}", order.id)?;
    let mut facts = new_table();
    let mut fact = |name: &str, value: String| {
        facts.add_row([Cell::new(name), Cell::new(value)]);
    };
    fact("status", order.status.to_string());
    fact("company", printable(&order.company).into_owned());
    fact(
        "customer",
        format!("{} <{}>", printable(&order.name), printable(&order.email)),
    );
    fact("tier", method.tier_name(&order.tier));
    fact(
        "method",
        match &detail.method_version {
            Some(_) => format!("{} ({})", method.assessment.name, method.short_version()),
            None => format!(
                "{} (built-in, before versions were kept)",
                method.assessment.name
            ),
        },
    );
    let mut amount = money(order.amount_cents);
    if order.refunded_cents > 0 {
        amount.push_str(&format!(", {} refunded", money(order.refunded_cents)));
    }
    fact("amount", amount);
    fact(
        "created",
        format!(
            "{} ({} ago)",
            clock::minute(order.created_at),
            clock::age(order.created_at, now)
        ),
    );
    fact("paid", when(detail.paid_at));
    fact("completed", when(detail.completed_at));
    let mut attempts = format!("{} of {max_attempts}", detail.attempts);
    if let Some(next) = detail
        .next_attempt_at
        .filter(|_| order.status == Status::Paid)
    {
        attempts.push_str(&format!(", next at {}", clock::minute(next)));
    }
    fact("attempts", attempts);
    if let (Some(owner), Some(until)) = (&detail.lease_owner, detail.lease_expires_at) {
        fact("lease", format!("{owner} until {}", clock::minute(until)));
    }
    fact("downloads", detail.downloads.to_string());
    if let Some(error) = &detail.last_error {
        fact("last error", printable(error).into_owned());
    }
    fact("status page", status_url.to_owned());
    writeln!(out, "{facts}")?;

    if !detail.payments.is_empty() {
        let mut table = new_table();
        table.set_header([
            "payment intent",
            "status",
            "amount",
            "charge",
            "updated",
            "error",
        ]);
        for p in &detail.payments {
            table.add_row([
                p.payment_intent_id.clone(),
                p.status.clone(),
                money::format(p.amount_cents, &p.currency),
                p.charge_id.clone().unwrap_or_default(),
                clock::minute(p.updated_at),
                printable(p.last_error.as_deref().unwrap_or_default()).into_owned(),
            ]);
        }
        writeln!(out, "\nPayments\n{table}")?;
    }
    if !detail.refunds.is_empty() {
        let mut table = new_table();
        table.set_header([
            "refund",
            "amount",
            "source",
            "status",
            "stripe id",
            "created",
            "reason",
        ]);
        for r in &detail.refunds {
            table.add_row([
                r.id.clone(),
                money::format(r.amount_cents, &r.currency),
                r.source.clone(),
                r.status.clone(),
                r.stripe_refund_id.clone().unwrap_or_default(),
                clock::minute(r.created_at),
                printable(&r.reason).into_owned(),
            ]);
        }
        writeln!(out, "\nRefunds\n{table}")?;
    }
    if !detail.emails.is_empty() {
        let mut table = new_table();
        table.set_header(["email", "to", "status", "attempts", "sent", "error"]);
        for e in &detail.emails {
            let kind = match e.resend_of {
                Some(original) => format!("{} (resend of #{original})", e.kind),
                None => e.kind.clone(),
            };
            table.add_row([
                kind,
                printable(&e.recipient).into_owned(),
                e.status.clone(),
                e.attempts.to_string(),
                when(e.sent_at),
                printable(e.last_error.as_deref().unwrap_or_default()).into_owned(),
            ]);
        }
        writeln!(out, "\nEmails\n{table}")?;
    }
    let mut table = new_table();
    table.set_header(["at (UTC)", "event", "status", "by", "detail"]);
    for e in &detail.timeline {
        let change = match e.from_status {
            Some(from) if from != e.to_status => format!("{from} -> {}", e.to_status),
            _ => e.to_status.to_string(),
        };
        table.add_row([
            clock::minute(e.at),
            e.kind.clone(),
            change,
            e.actor.clone(),
            printable(&flat(&e.detail)).into_owned(),
        ]);
    }
    writeln!(out, "\nTimeline\n{table}")?;
    Ok(())
}

/// The table style of every command.
pub(super) fn new_table() -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED.with_rounded_corners())
        .set_content_arrangement(ContentArrangement::Dynamic);
    table
}

/// `{"a": 1, "b": "x"}` as `a=1 b=x`.
fn flat(detail: &serde_json::Value) -> String {
    match detail {
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(key, value)| match value {
                serde_json::Value::String(s) => format!("{key}={s}"),
                other => format!("{key}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// Customer text with control characters escaped, so that no one can type escape sequences
/// into the operator's terminal.
pub(super) fn printable(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_control) {
        Cow::Owned(
            text.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(printable("Acme Ltd"), "Acme Ltd");
        assert_eq!(printable("Evil\u{1b}[2JCorp\n"), "Evil\\u{1b}[2JCorp\\n");
    }

    #[test]
    fn details_flatten_to_one_line() {
        let detail =
            serde_json::json!({ "payment_intent": "pi_1", "amount_cents": 14900, "note": null });
        assert_eq!(flat(&detail), "amount_cents=14900 payment_intent=pi_1");
        assert_eq!(flat(&serde_json::json!({})), "");
    }
}
