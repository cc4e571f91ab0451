//! `compass backup`: a consistent copy of the database while everything keeps running.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::app::load_config;
use crate::db::Db;

/// Copy the database to a file, consistent even while serve and process write to it
///
/// Uses SQLite's VACUUM INTO, which reads one snapshot, then checks the copy (integrity and
/// schema) before saying it is good. Keep copies off the machine; for continuous backup see
/// Litestream in the README.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to write (must not exist yet)
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn run(
    args: Args,
    config: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let config = load_config(config, env)?;
    let db = Db::open(&config.database)?;
    db.backup_to(&args.out)?;
    // A backup holds what the database holds: customers' answers.
    crate::db::restrict_to_owner(&args.out)?;
    let info = Db::inspect_backup(&args.out)?;
    writeln!(
        out,
        "backed up {} orders (schema version {}) to {} ({} KiB); integrity ok",
        info.orders,
        info.schema_version,
        args.out.display(),
        info.bytes.div_ceil(1024)
    )?;
    Ok(())
}
