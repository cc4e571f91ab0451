//! `compass process`: run by a timer (or with `--watch`) to turn paid orders into reports.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use comfy_table::Cell;
use indicatif::{ProgressBar, ProgressStyle};

use super::orders::new_table;
use crate::app::App;
use crate::clock;
use crate::mail::outbox::Sent;
use crate::process::{self, Finished, Options, Outcome, Progress, Summary};
use crate::refunds::Issued;

/// Write the reports of paid orders with Claude
///
/// Rescues orders whose run died (expired lease), claims the orders that are due, and works
/// on up to --concurrency of them at once. Run it every minute from a systemd timer or cron:
/// leases make overlapping runs safe. Needs COMPASS_ANTHROPIC_API_KEY.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Claim at most this many orders per pass
    #[arg(long, default_value_t = 100, value_name = "N")]
    limit: u32,

    /// Work on this many orders at once
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,

    /// Keep going: a pass every SECONDS until SIGTERM or Ctrl-C
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "30")]
    watch: Option<u64>,

    /// Only list the orders that are due; change nothing
    #[arg(long)]
    dry_run: bool,

    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(
    args: Args,
    config: &Path,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let now = || clock::now(env);
    if args.dry_run {
        let app = App::open(config, env)?;
        let due = app.db.due_orders(now()?, args.limit)?;
        let expired = app.db.expired_leases(now()?)?;
        writeln!(
            out,
            "{} order(s) due, {} with an expired lease",
            due.len(),
            expired.len()
        )?;
        for id in due.iter().chain(&expired) {
            writeln!(out, "  {id}")?;
        }
        return Ok(());
    }
    let options = Options {
        limit: args.limit,
        concurrency: usize::from(args.concurrency),
        writer: process::Writer::Claude,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handlers")?;
    }
    let terminal = std::io::stdout().is_terminal() && !args.json;
    loop {
        let reporter = Reporter::new(terminal);
        let summary = process::run_once(config, env, &now, &options, &reporter)?;
        reporter.finish();
        print(out, &summary, args.json)?;
        out.flush()?;
        let Some(every) = args.watch else {
            return Ok(());
        };
        for _ in 0..every.max(1) {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

fn print(out: &mut dyn Write, summary: &Summary, json: bool) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, summary)?;
        writeln!(out)?;
        return Ok(());
    }
    if summary.rescued > 0 {
        writeln!(
            out,
            "rescued {} order(s) whose run stopped",
            summary.rescued
        )?;
    }
    if summary.outcomes.is_empty() {
        writeln!(out, "no orders due")?;
    } else {
        print_outcomes(out, summary)?;
    }
    for refund in &summary.refunds {
        let what = match &refund.issued {
            Issued::Succeeded => "refunded".to_owned(),
            Issued::Pending(status) => format!("asked, Stripe says {status}"),
            Issued::Failed(error) => format!("refused by Stripe: {error}"),
            Issued::Later(error) => format!("not reached, asking again next pass: {error}"),
        };
        writeln!(
            out,
            "refund {} of {}: {what}",
            refund.number, refund.order_id
        )?;
    }
    if let Some(error) = &summary.refund_error {
        writeln!(out, "refunds not issued: {error}")?;
    }
    let emails = summary.emails;
    if emails != Sent::default() {
        writeln!(
            out,
            "emails: {} sent, {} to retry, {} failed for good",
            emails.sent, emails.retrying, emails.failed
        )?;
    }
    for id in &summary.review_reminders {
        writeln!(
            out,
            "reminded you again: the report of {id} waits for your review"
        )?;
    }
    if !summary.erased.is_empty() {
        writeln!(
            out,
            "retention: erased the answers and reports of {} order(s)",
            summary.erased.len()
        )?;
    }
    Ok(())
}

fn print_outcomes(out: &mut dyn Write, summary: &Summary) -> anyhow::Result<()> {
    let mut table = new_table();
    table.set_header([
        "order",
        "result",
        "tokens in",
        "tokens out",
        "cost",
        "seconds",
    ]);
    for outcome in &summary.outcomes {
        table.add_row([
            Cell::new(&outcome.order_id),
            Cell::new(describe(outcome)),
            Cell::new(outcome.input_tokens),
            Cell::new(outcome.output_tokens),
            Cell::new(dollars(outcome.cost_micros)),
            Cell::new(format!("{:.1}", outcome.millis as f64 / 1000.0)),
        ]);
    }
    writeln!(out, "{table}")?;
    let count = |f: fn(&Finished) -> bool| summary.outcomes.iter().filter(|o| f(&o.result)).count();
    let reviews = count(|r| matches!(r, Finished::AwaitingReview | Finished::RewriteFailed(_)));
    let reviews = if reviews > 0 {
        format!(", {reviews} waiting for your review")
    } else {
        String::new()
    };
    writeln!(
        out,
        "{} completed, {} to retry, {} failed{reviews}; {} spent",
        count(|r| *r == Finished::Completed),
        count(|r| matches!(r, Finished::Retrying(_))),
        count(|r| matches!(r, Finished::Failed(_))),
        dollars(summary.outcomes.iter().map(|o| o.cost_micros).sum())
    )?;
    Ok(())
}

fn describe(outcome: &Outcome) -> String {
    match &outcome.result {
        Finished::Completed => "completed".to_owned(),
        Finished::AwaitingReview => {
            format!("waits for your review: compass review {}", outcome.order_id)
        }
        Finished::RewriteFailed(why) => {
            format!("not written again ({why}): the earlier report waits for your review")
        }
        Finished::Retrying(why) => format!("retry later: {why}"),
        Finished::Failed(why) => format!("failed, refund queued: {why}"),
        Finished::LeaseLost => "taken over by another run".to_owned(),
    }
}

fn dollars(micros: i64) -> String {
    format!("${:.4}", micros as f64 / 1_000_000.0)
}

/// A progress bar at a terminal (orders done, tokens and cost so far, the order last
/// started); one log line per order otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
    spent: Mutex<Spent>,
}

/// What the bar shows beside the count.
#[derive(Default)]
struct Spent {
    tokens: u64,
    cost_micros: i64,
    current: String,
}

impl Spent {
    fn message(&self) -> String {
        format!(
            "{} tokens, {} · writing {}",
            self.tokens,
            dollars(self.cost_micros),
            self.current
        )
    }
}

impl Reporter {
    fn new(terminal: bool) -> Reporter {
        let bar = terminal.then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Reporter {
            bar,
            spent: Mutex::new(Spent::default()),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn update(&self, change: impl FnOnce(&mut Spent)) {
        if let Some(bar) = &self.bar {
            let mut spent = self.spent.lock().unwrap_or_else(PoisonError::into_inner);
            change(&mut spent);
            bar.set_message(spent.message());
        }
    }
}

impl Progress for Reporter {
    fn claimed(&self, total: usize) {
        match &self.bar {
            Some(bar) => bar.set_length(total as u64),
            None if total > 0 => tracing::info!(total, "claimed orders"),
            None => {}
        }
    }

    fn working(&self, order_id: &str) {
        self.update(|spent| order_id.clone_into(&mut spent.current));
    }

    fn done(&self, outcome: &Outcome) {
        let line = format!(
            "{} {} ({} in / {} out tokens, {})",
            outcome.order_id,
            describe(outcome),
            outcome.input_tokens,
            outcome.output_tokens,
            dollars(outcome.cost_micros)
        );
        self.update(|spent| {
            spent.tokens += outcome.input_tokens + outcome.output_tokens;
            spent.cost_micros += outcome.cost_micros;
        });
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.println(line);
            }
            None => tracing::info!("{line}"),
        }
    }
}
