//! `compass audit`: the money invariants, checked over the whole database.

use std::io::Write;
use std::path::Path;

use comfy_table::Cell;
use time::OffsetDateTime;

use super::orders::new_table;
use anyhow::Context;

use crate::app::App;
use crate::{clock, refunds};

/// Check that the money adds up; exit 1 if anything is wrong
///
/// Every paid order is delivered, in progress or refunded (nothing owed without a refund under
/// way, nothing paid and undelivered for a day); every paid order has its payment; every
/// completed order has its three report files; refunds never exceed what is recorded as
/// refunded and each has its Stripe id; no email was sent twice for the same fact. Prints each
/// violation with its order. With --stripe, also checks that every refund Stripe made is
/// accounted for here. Cheap: run it daily from a timer.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also ask Stripe: every refund it made is accounted for here (needs the secret key)
    #[arg(long)]
    stripe: bool,

    /// With --stripe, how far back to read Stripe's refunds: an age (30d) or a date
    #[arg(long, default_value = "90d", value_name = "WHEN", requires = "stripe")]
    since: String,

    /// Print the violations as JSON
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
    let app = App::open(config, env)?;
    let mut violations = app.db.audit_violations(now)?;
    if args.stripe {
        let since = clock::parse_since(&args.since, now).context("invalid --since")?;
        violations.extend(refunds::unknown_at_stripe(&app, since)?);
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &violations)?;
        writeln!(out)?;
    } else if violations.is_empty() {
        writeln!(out, "audit: every invariant holds")?;
    } else {
        let mut table = new_table();
        table.set_header(["rule", "order", "detail"]);
        for v in &violations {
            table.add_row([
                Cell::new(v.rule),
                Cell::new(v.order_id.as_deref().unwrap_or("")),
                Cell::new(&v.detail),
            ]);
        }
        writeln!(out, "{table}")?;
    }
    if !violations.is_empty() {
        out.flush()?;
        anyhow::bail!("{} violation(s) of the money invariants", violations.len());
    }
    Ok(())
}
