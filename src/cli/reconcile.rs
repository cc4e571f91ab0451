//! `compass reconcile`: repair what missed webhooks left behind, from Stripe's own records.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use comfy_table::Cell;
use time::OffsetDateTime;

use super::orders::new_table;
use crate::app::App;
use crate::{clock, payments};

/// Repair orders whose webhooks never arrived, from Stripe's PaymentIntents and events
///
/// Reads the PaymentIntents and events Stripe has from the period, pays every unpaid order
/// whose PaymentIntent succeeded, and stores and handles every event the webhook missed
/// (refunds, disputes). Safe to run at any time and as often as you like: it only does what
/// the webhooks would have done. Needs COMPASS_STRIPE_SECRET_KEY.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How far back to look: an age (90m, 12h, 3d, 2w) or a date (2026-11-01)
    #[arg(long, default_value = "3d", value_name = "WHEN")]
    since: String,

    /// Show what would change, change nothing
    #[arg(long)]
    dry_run: bool,

    /// Print the report as JSON
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
    let since = clock::parse_since(&args.since, now).context("invalid --since")?;
    let mut app = App::open(config, env)?;
    let report = payments::reconcile(&mut app, since, now, args.dry_run)?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "checked {} PaymentIntents and {} events since {} UTC; {} event(s) had not arrived",
        report.payment_intents,
        report.events,
        clock::minute(since),
        report.missed_events
    )?;
    if !report.repairs.is_empty() {
        let mut table = new_table();
        table.set_header(["order", "payment intent", "change"]);
        for repair in &report.repairs {
            table.add_row([
                Cell::new(&repair.order_id),
                Cell::new(&repair.payment_intent),
                Cell::new(&repair.change),
            ]);
        }
        writeln!(out, "{table}")?;
    }
    if args.dry_run {
        writeln!(out, "dry run: nothing was changed")?;
    } else {
        writeln!(
            out,
            "repaired {} order(s); handled {} missed event(s), {} wait for a retry",
            report.repairs.len(),
            report.handled,
            report.failed
        )?;
    }
    Ok(())
}
