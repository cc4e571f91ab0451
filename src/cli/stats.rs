//! `compass stats`: the business in figures.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use comfy_table::Cell;
use time::OffsetDateTime;

use super::orders::new_table;
use crate::app::App;
use crate::{clock, money};

/// Orders, revenue, refunds, delivery time and Claude's cost over a period
///
/// Counts the orders created since --since and what became of them: conversion from created
/// to paid, revenue, refunds and the refund rate, time from payment to delivered report (p50,
/// p95), Claude's cost per report, and the margin after refunds and Claude (before Stripe's
/// fees, which compass does not see).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How far back: an age (90m, 12h, 30d, 2w) or a date (2026-11-01)
    #[arg(long, default_value = "30d", value_name = "WHEN")]
    since: String,

    /// Print the figures as JSON
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
    let app = App::open(config, env)?;
    let stats = app.db.stats(since)?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &stats)?;
        writeln!(out)?;
        return Ok(());
    }
    let cur = &stats.currency;
    let percent = |x: f64| format!("{:.1}%", x * 100.0);
    let duration = |secs: Option<i64>| {
        secs.map_or_else(
            || "-".to_owned(),
            |s| match s {
                3_600.. => format!("{}h {:02}m", s / 3_600, s % 3_600 / 60),
                _ => format!("{}m {:02}s", s / 60, s % 60),
            },
        )
    };
    let dollars = |micros: i64| format!("${:.4}", micros as f64 / 1_000_000.0);
    let mut table = new_table();
    table.set_header(["since", &format!("{} UTC", clock::minute(since))]);
    let rows: Vec<(&str, String)> = vec![
        ("orders created", stats.orders.to_string()),
        (
            "paid",
            format!("{} ({} of created)", stats.paid, percent(stats.conversion)),
        ),
        ("reports delivered", stats.completed.to_string()),
        ("revenue", money::format(stats.revenue_cents, cur)),
        (
            "refunded",
            format!(
                "{} on {} order(s), {} of paid",
                money::format(stats.refunded_cents, cur),
                stats.refunded_orders,
                percent(stats.refund_rate)
            ),
        ),
        ("paid to delivered, p50", duration(stats.delivery_p50_secs)),
        ("paid to delivered, p95", duration(stats.delivery_p95_secs)),
    ];
    // With the consultant's review: how much of that the reports waited for it.
    let review = [
        ("of which in review, p50", duration(stats.review_p50_secs)),
        ("of which in review, p95", duration(stats.review_p95_secs)),
    ];
    let rows_after = vec![
        ("Claude cost", dollars(stats.claude_cost_micros)),
        (
            "Claude cost per report",
            stats
                .claude_cost_per_order_micros
                .map_or_else(|| "-".to_owned(), dollars),
        ),
        (
            "margin (before Stripe fees)",
            money::format(stats.margin_cents, cur),
        ),
    ];
    let reviewed = stats.review_p50_secs.is_some();
    let review = review.into_iter().filter(|_| reviewed);
    for (name, value) in rows.into_iter().chain(review).chain(rows_after) {
        table.add_row([Cell::new(name), Cell::new(value)]);
    }
    writeln!(out, "{table}")?;
    let statuses: Vec<String> = stats
        .by_status
        .iter()
        .map(|(status, n)| format!("{status} {n}"))
        .collect();
    if !statuses.is_empty() {
        writeln!(out, "by status: {}", statuses.join(", "))?;
    }
    Ok(())
}
