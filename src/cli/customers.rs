//! `compass customers`: a customer's data rights, export and erasure.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use time::OffsetDateTime;

use super::refund::confirm;
use crate::app::App;
use crate::db::normalize_email;

/// A customer's data: everything held about them, or erase them
///
/// Customers are found by the email address they ordered with (case and spaces do not matter).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Export(Export),
    Forget(Forget),
}

/// Everything held about a customer, as JSON: the customer, their orders with the answers,
/// payments, refunds, report files (their size and checksum, not the files), emails, sign-in
/// links, Claude calls, Stripe events, the timeline and the audit log
///
/// What to send a customer who asks for their data. The JSON has one list per table, so it
/// shows the rows as compass keeps them.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    compass customers export ada@example.com > ada.json\n  \
    compass customers export ada@example.com --out ada.json")]
struct Export {
    /// The customer's email address
    email: String,

    /// Write to this file (mode 0600) instead of standard output
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Erase a customer: name, address, answers, reports, their words in refund requests, and
/// what Stripe sent about them
///
/// The orders, payments and refunds stay, for the accounts, with the person's data replaced by
/// "(forgotten)"; `compass stats` and `compass audit` still add up. Their status and sign-in
/// links stop working, and emails still waiting for them are not sent. Refused while one of
/// their orders can still move (unpaid, paid, being written, failed or refunding with money
/// on its way back, refund under review, disputed). Audited without the address. Running it again changes
/// nothing. Backups taken before still hold the data until they are rotated out. Asks for
/// confirmation at a terminal; give --yes in scripts.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    compass customers forget ada@example.com --dry-run\n  \
    compass customers forget ada@example.com --yes")]
struct Forget {
    /// The customer's email address
    email: String,

    /// Show what would be erased, and change nothing
    #[arg(long)]
    dry_run: bool,

    /// Do not ask for confirmation
    #[arg(long, short)]
    yes: bool,

    /// Print JSON instead of text
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
    match args.command {
        Command::Export(export) => {
            let email = normalize_email(&export.email);
            let Some(mut data) = app.db.customer_export(&email)? else {
                anyhow::bail!("no customer with the address {email}: nothing is held about them");
            };
            data["exported_at"] = serde_json::json!(crate::clock::rfc3339(now));
            let text = serde_json::to_string_pretty(&data)?;
            match export.out {
                Some(path) => {
                    // Private from the first byte: it holds everything about a person.
                    let mut file = std::fs::OpenOptions::new();
                    file.write(true).create(true).truncate(true);
                    #[cfg(unix)]
                    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
                    file.open(&path)
                        .and_then(|mut f| writeln!(f, "{text}"))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    crate::db::restrict_to_owner(&path)?;
                    writeln!(
                        out,
                        "wrote everything held about {email} to {}",
                        path.display()
                    )?;
                }
                None => writeln!(out, "{text}")?,
            }
            Ok(())
        }
        Command::Forget(forget) => {
            let email = normalize_email(&forget.email);
            let Some(plan) = app.db.forget_customer(&email, true, now)? else {
                return report(out, forget.json, &email, None, false);
            };
            if forget.dry_run {
                return report(out, forget.json, &email, Some(&plan), true);
            }
            confirm(
                forget.yes,
                &format!(
                    "Erase {email} and their {} order(s)' answers and reports?",
                    plan.orders.len()
                ),
            )?;
            let done = app
                .db
                .forget_customer(&email, false, now)?
                .context("the customer went away while confirming")?;
            tracing::info!(customer = done.customer_id, "customer forgotten");
            report(out, forget.json, &email, Some(&done), false)
        }
    }
}

fn report(
    out: &mut dyn Write,
    json: bool,
    email: &str,
    forgotten: Option<&crate::db::Forgotten>,
    dry_run: bool,
) -> anyhow::Result<()> {
    if json {
        let value = serde_json::json!({
            "email": email,
            "found": forgotten.is_some(),
            "dry_run": dry_run,
            "customer_id": forgotten.map(|f| f.customer_id),
            "orders": forgotten.map(|f| &f.orders),
            "rows": forgotten.map(|f| &f.rows),
            "kept_documents": forgotten.map(|f| f.kept_documents),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    let Some(forgotten) = forgotten else {
        writeln!(
            out,
            "nothing held about {email}: never a customer, or forgotten already"
        )?;
        return Ok(());
    };
    let rows: Vec<String> = forgotten
        .rows
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(table, n)| format!("{table} {n}"))
        .collect();
    let verb = if dry_run { "would erase" } else { "erased" };
    writeln!(
        out,
        "{verb} {email} (customer {}): {} order(s); rows held: {}",
        forgotten.customer_id,
        forgotten.orders.len(),
        rows.join(", ")
    )?;
    if forgotten.kept_documents > 0 {
        writeln!(
            out,
            "{} {} invoice(s) and credit note(s) as issued, with the billing details on them: \
             invoices must be kept (a legal duty), and `compass invoices` still lists them",
            if dry_run { "would keep" } else { "kept" },
            forgotten.kept_documents
        )?;
    }
    if dry_run {
        writeln!(out, "nothing changed (dry run)")?;
    } else {
        writeln!(
            out,
            "the money records stay, without the person; backups taken before still hold them"
        )?;
    }
    Ok(())
}
