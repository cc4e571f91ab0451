//! `compass events`: the Stripe events compass received, and replaying one.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use comfy_table::Cell;
use time::OffsetDateTime;

use super::orders::new_table;
use crate::app::App;
use crate::{clock, payments};

/// List the Stripe events received by the webhook, or handle one again
///
/// Every verified event is stored before it is handled. Events that could not be handled yet
/// (Stripe unreachable, the order not there yet) are retried by `serve` with backoff;
/// `--failed` lists them, and `replay` handles one again at once.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    replay: Option<Replay>,

    /// Only events not handled yet
    #[arg(long)]
    failed: bool,

    /// At most this many, newest first
    #[arg(long, default_value_t = 50, value_name = "N")]
    limit: u32,

    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Replay {
    /// Handle a stored event again now (idempotent: what was done is not done twice)
    Replay {
        /// The event id, evt_...
        id: String,
    },
}

pub fn run(
    args: Args,
    config: &Path,
    now: OffsetDateTime,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut app = App::open(config, env)?;
    if let Some(Replay::Replay { id }) = args.replay {
        app.db
            .stripe_event(&id)?
            .with_context(|| format!("no stored event {id}"))?;
        app.db.event_requeue(&id, now)?;
        let event = app
            .db
            .stripe_event(&id)?
            .with_context(|| format!("no stored event {id}"))?;
        let done = payments::handle_stored(&mut app, &event, now)?;
        let after = app
            .db
            .stripe_event(&id)?
            .with_context(|| format!("no stored event {id}"))?;
        let note = after.last_error.unwrap_or_default();
        if done {
            writeln!(out, "{id} ({}) handled: {note}", after.kind)?;
            return Ok(());
        }
        anyhow::bail!("{id} ({}) not handled, retried later: {note}", after.kind);
    }
    let events = app.db.stripe_events(args.failed, args.limit)?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &events)?;
        writeln!(out)?;
        return Ok(());
    }
    if events.is_empty() {
        let message = if args.failed {
            "every event is handled"
        } else {
            "no events yet"
        };
        writeln!(out, "{message}")?;
        return Ok(());
    }
    let mut table = new_table();
    table.set_header([
        "event",
        "type",
        "received (UTC)",
        "handled",
        "tries",
        "order",
        "note",
    ]);
    for event in &events {
        let handled = match (event.handled_at, event.next_attempt_at) {
            (Some(at), _) => clock::minute(at),
            (None, Some(next)) => format!("retry {}", clock::minute(next)),
            (None, None) => "-".to_owned(),
        };
        table.add_row([
            Cell::new(&event.id),
            Cell::new(&event.kind),
            Cell::new(clock::minute(event.received_at)),
            Cell::new(handled),
            Cell::new(event.attempts),
            Cell::new(event.order_id.as_deref().unwrap_or("")),
            Cell::new(event.last_error.as_deref().unwrap_or("")),
        ]);
    }
    writeln!(out, "{table}")?;
    Ok(())
}
