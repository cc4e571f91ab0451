//! `compass migrate`: bring the database's schema up to this binary's.

use std::io::Write;
use std::path::Path;

use crate::app::load_config;
use crate::db::Db;

/// Apply the database migrations this compass carries and the database lacks
///
/// Every other command refuses a database whose schema is behind; run this after upgrading
/// compass (with a backup taken first). Each migration runs in its own transaction.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(
    _args: Args,
    config: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let config = load_config(config, env)?;
    let mut db = Db::open_for_migration(&config.database)?;
    let applied = db.migrate()?;
    let version = db.schema_version()?.unwrap_or(0);
    if applied.is_empty() {
        writeln!(
            out,
            "{} is up to date (schema version {version})",
            db.name()
        )?;
    }
    for migration in &applied {
        writeln!(out, "applied V{}__{}", migration.version, migration.name)?;
    }
    if !applied.is_empty() {
        writeln!(out, "{} is now at schema version {version}", db.name())?;
    }
    Ok(())
}
