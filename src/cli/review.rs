//! `compass review`: read a report before it goes out, then approve it, have it written
//! again with a note, or edit it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use comfy_table::Cell;
use time::OffsetDateTime;

use crate::app::App;
use crate::clock;
use crate::order::{Event, Status};
use crate::review;

/// Read a written report before it goes out, then approve, regenerate or edit it
///
/// With `[delivery] review = true` in compass.toml, every written report waits in
/// awaiting_review and you are alerted (and again every `remind_after_hours` it waits). Without
/// an order, lists the reports waiting. With one, writes its report.html, report.pdf and
/// report.json to --out for you to read. Then:
///   --approve     it goes to the customer: their "report ready" email is queued, and
///                 `compass process` sends it.
///   --regenerate  `compass process` writes it again; --note is your instruction to the model,
///                 given beside (never inside) the customer's answers. The order's spending cap
///                 covers every writing. It waits for your review again.
///   --edit        opens the report's words (JSON) in $VISUAL or $EDITOR; what you save is
///                 checked as the model's answer is (no number compass did not compute) and
///                 stored, or refused with nothing changed. It waits for your approval still.
/// Each decision is on the order's timeline and in the audit log. The refund window's clock
/// stops while a report waits.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    compass review\n  \
    compass review 01a2b3c4 --out /tmp/review\n  \
    compass review 01a2b3c4 --approve\n  \
    compass review 01a2b3c4 --regenerate --note \"Say more about their forklift fleet\"\n  \
    EDITOR=nano compass review 01a2b3c4 --edit")]
pub struct Args {
    /// The order: its id or a unique prefix of at least 8 characters (none: list the waiting)
    order: Option<String>,

    /// Where to write the report's files to read (default: ./review-ORDER)
    #[arg(long, value_name = "DIR", conflicts_with_all = ["approve", "regenerate", "edit"])]
    out: Option<PathBuf>,

    /// Send the report to the customer
    #[arg(long, requires = "order", conflicts_with_all = ["regenerate", "edit"])]
    approve: bool,

    /// Have the report written again, following --note
    #[arg(long, requires_all = ["order", "note"], conflicts_with = "edit")]
    regenerate: bool,

    /// Your instruction for the report written again (up to 2000 characters)
    #[arg(long, value_name = "TEXT", requires = "regenerate")]
    note: Option<String>,

    /// Edit the report's words in $VISUAL or $EDITOR
    #[arg(long, requires = "order")]
    edit: bool,

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
    let mut app = App::open(config, env)?;
    let Some(typed) = &args.order else {
        return list(&app, now, args.json, out);
    };
    let id = app.db.resolve_order_id(typed)?;
    let (decision, said) = if args.approve {
        (
            Event::ReviewApproved,
            "approved: the customer's email is queued, and `compass process` sends it",
        )
    } else if args.regenerate {
        let note = args.note.as_deref().unwrap_or_default().trim().to_owned();
        if note.is_empty() || note.chars().count() > 2_000 {
            bail!("--note must be 1 to 2000 characters");
        }
        (
            Event::ReviewRegenerate { note },
            "to be written again: `compass process` writes it, then it waits for your review",
        )
    } else if args.edit {
        return edit(&mut app, &id, now, env, args.json, out);
    } else {
        return show(&app, &id, args.out, now, args.json, out);
    };
    review::decide(&mut app, &id, &decision, now)?;
    if args.json {
        let outcome = serde_json::json!({ "order": id, "decision": decision.name() });
        writeln!(out, "{}", serde_json::to_string_pretty(&outcome)?)?;
    } else {
        writeln!(out, "order {id} {said}")?;
    }
    Ok(())
}

/// The reports waiting for review, the longest waiting first.
fn list(app: &App, now: OffsetDateTime, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for (id, since) in app.db.waiting_for_review()? {
        let order = app
            .db
            .order(&id)?
            .with_context(|| format!("no order {id}"))?;
        rows.push((order, since));
    }
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(order, since)| {
                serde_json::json!({
                    "order": order.id,
                    "company": order.company,
                    "tier": order.tier.as_str(),
                    "score": order.score,
                    "waiting_since": clock::rfc3339(*since),
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no report waits for review")?;
        return Ok(());
    }
    let mut table = super::orders::new_table();
    table.set_header(["order", "company", "tier", "score", "waiting"]);
    for (order, since) in &rows {
        table.add_row([
            Cell::new(&order.id),
            Cell::new(&order.company),
            Cell::new(order.tier.as_str()),
            Cell::new(order.score.map_or("-".to_owned(), |s| s.to_string())),
            Cell::new(clock::age(*since, now)),
        ]);
    }
    writeln!(out, "{table}")?;
    writeln!(out, "read one with `compass review ORDER`")?;
    Ok(())
}

/// Writes the report's files to read.
fn show(
    app: &App,
    id: &str,
    dir: Option<PathBuf>,
    now: OffsetDateTime,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let stored = app
        .db
        .order(id)?
        .with_context(|| format!("no order {id}"))?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(format!("review-{}", &id[..8])));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut paths = Vec::new();
    for kind in ["html", "pdf", "json"] {
        let content = app
            .db
            .artifact(id, kind)?
            .with_context(|| format!("order {id} has no report ({})", stored.order.status))?;
        let path = dir.join(format!("report.{kind}"));
        std::fs::write(&path, content)
            .with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path.display().to_string());
    }
    let waiting = stored.order.review_since;
    if json {
        let shown = serde_json::json!({
            "order": id,
            "status": stored.order.status.as_str(),
            "company": stored.company,
            "tier": stored.tier.as_str(),
            "score": stored.score,
            "waiting_since": waiting.map(clock::rfc3339),
            "files": paths,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&shown)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "order {id}: {} report for {}, {}",
        stored.tier,
        stored.company,
        match waiting {
            Some(since) if stored.order.status == Status::AwaitingReview => {
                format!("waiting for your review for {}", clock::age(since, now))
            }
            _ => format!("{} (not waiting for review)", stored.order.status),
        }
    )?;
    for path in &paths {
        writeln!(out, "  {path}")?;
    }
    if stored.order.status == Status::AwaitingReview {
        writeln!(
            out,
            "then: compass review {id} --approve | --regenerate --note \"...\" | --edit"
        )?;
    }
    Ok(())
}

/// Opens the report's words in the operator's editor and stores what they save, once checked.
/// A refused edit is kept for the next `--edit`, which starts from it.
fn edit(
    app: &mut App,
    id: &str,
    now: OffsetDateTime,
    env: &dyn Fn(&str) -> Option<String>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (report, order) = review::stored_report(app, id)?;
    let status = order.order.status;
    if status != Status::AwaitingReview {
        bail!("order {id} is {status}: only a report waiting for review can be edited");
    }
    let editor = env("VISUAL")
        .or_else(|| env("EDITOR"))
        .filter(|e| !e.trim().is_empty())
        .context("set $EDITOR (or $VISUAL) to the editor to edit the report with")?;
    let path = std::env::temp_dir().join(format!("compass-review-{id}.json"));
    let resumed = path.exists();
    if !resumed {
        let words = serde_json::to_string_pretty(&report.written)? + "\n";
        std::fs::write(&path, &words)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let before = std::fs::read_to_string(&path)?;
    // Through the shell, as git does: $EDITOR may carry arguments ("code --wait").
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .with_context(|| format!("cannot start the editor `{editor}`"))?;
    if !status.success() {
        if !resumed {
            std::fs::remove_file(&path).ok();
        }
        bail!("the editor `{editor}` stopped with {status}: nothing was changed");
    }
    let after = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if after == before && !resumed {
        std::fs::remove_file(&path).ok();
        writeln!(out, "nothing was changed")?;
        return Ok(());
    }
    if let Err(err) = review::store_edit(app, id, &after, now) {
        return Err(err.context(format!(
            "your edit is kept in {}: run --edit again to go on from it",
            path.display()
        )));
    }
    std::fs::remove_file(&path).ok();
    if json {
        let outcome = serde_json::json!({ "order": id, "decision": "review_edited" });
        writeln!(out, "{}", serde_json::to_string_pretty(&outcome)?)?;
    } else {
        writeln!(
            out,
            "order {id}: your edit is checked and stored; it waits for --approve"
        )?;
    }
    Ok(())
}
