//! `compass restore`: put a backup back in place of the database.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use time::OffsetDateTime;

use crate::app::load_config;
use crate::db::Db;

/// Replace the database with a backup (stop serve and process first)
///
/// Checks the backup (integrity, a compass schema no newer than this binary) before touching
/// anything, keeps the current database beside it as compass.db.before-restore-TIME, and then
/// moves the backup in. An older schema is upgraded by `compass migrate` afterwards.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup to restore
    #[arg(long, value_name = "FILE")]
    from: PathBuf,

    /// Do not ask for confirmation
    #[arg(long, short)]
    yes: bool,
}

pub fn run(
    args: Args,
    config: &Path,
    now: OffsetDateTime,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let config = load_config(config, env)?;
    let info = Db::inspect_backup(&args.from)?;
    let target = &config.database;
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "not at a terminal: add --yes to replace {}",
                target.display()
            );
        }
        eprint!(
            "Replace {} with {} ({} orders)? Stop serve and process first. [y/N] ",
            target.display(),
            args.from.display(),
            info.orders
        );
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("nothing done");
        }
    }
    let stamp = now.unix_timestamp();
    let kept = target.with_extension(format!("db.before-restore-{stamp}"));
    let staged = target.with_extension(format!("db.restoring-{stamp}"));
    std::fs::copy(&args.from, &staged)
        .with_context(|| format!("cannot copy {} next to the database", args.from.display()))?;
    crate::db::restrict_to_owner(&staged)?;
    if target.exists() {
        // A checkpointed, consistent copy of what is being replaced.
        Db::open(target)
            .and_then(|db| db.backup_to(&kept))
            .with_context(|| format!("cannot keep the current database as {}", kept.display()))?;
    }
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", target.display()));
        if side.exists() {
            std::fs::remove_file(&side)
                .with_context(|| format!("cannot remove {}", side.display()))?;
        }
    }
    std::fs::rename(&staged, target)
        .with_context(|| format!("cannot move the backup to {}", target.display()))?;
    writeln!(
        out,
        "restored {} orders (schema version {}) into {}",
        info.orders,
        info.schema_version,
        target.display()
    )?;
    if target.exists() && kept.exists() {
        writeln!(
            out,
            "the database it replaced is kept as {}",
            kept.display()
        )?;
    }
    Ok(())
}
