//! `compass init`: a commented compass.toml, the built-in method as a folder to make your own,
//! and a migrated database, ready to edit.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::app::load_config;
use crate::config::EXAMPLE;
use crate::db::Db;

/// Write a commented compass.toml and the method folder (unless they exist), create the database
///
/// The method folder holds the built-in AI readiness method (questions, scoring, levels,
/// tiers and prices, prompts, report and email templates, brand) for you to make your own;
/// `compass check` reads it. Existing files are kept: running init again only creates what is
/// missing and applies pending migrations. Secrets are never written; the output says which
/// variables to set.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Put compass.toml (and, by default, the database) in this directory instead of the one
    /// named by --config
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(
    args: Args,
    config: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let path = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
            dir.join("compass.toml")
        }
        None => config.to_owned(),
    };
    let wrote = write_new(&path, EXAMPLE)?;
    let config = load_config(&path, env)?;
    let method_dir = config.method_dir.path().to_owned();
    let wrote_method = !method_dir.exists();
    if wrote_method {
        for (file, content) in crate::method::builtin_files() {
            let target = method_dir.join(&file);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(&target, content)
                .with_context(|| format!("cannot write {}", target.display()))?;
        }
    }
    let existed = config.database.exists();
    let (mut db, applied) = Db::create(&config.database)?;
    crate::app::keep_current_method(&config, &mut db)?;
    if !existed {
        crate::db::restrict_to_owner(&config.database)?;
    }
    let version = db.schema_version()?.unwrap_or(0);

    let verb = if wrote { "wrote  " } else { "kept   " };
    writeln!(out, "{verb} {}", path.display())?;
    if wrote_method {
        writeln!(
            out,
            "wrote   {}/ (the built-in method)",
            method_dir.display()
        )?;
    } else {
        writeln!(out, "kept    {}/", method_dir.display())?;
    }
    let db_line = match (existed, applied.len()) {
        (false, _) => format!(
            "created {} (schema version {version})",
            config.database.display()
        ),
        (true, 0) => format!(
            "kept    {} (schema version {version})",
            config.database.display()
        ),
        (true, n) => format!(
            "migrated {} ({n} migration(s), now schema version {version})",
            config.database.display()
        ),
    };
    writeln!(out, "{db_line}")?;
    if wrote {
        writeln!(out)?;
        writeln!(out, "Next:")?;
        writeln!(
            out,
            "  1. Edit {}: your business name, public_url and mail sender; and {}/: your \
             questions, prices, prompts and brand (`compass check` reads it).",
            path.display(),
            method_dir.display()
        )?;
        writeln!(
            out,
            "  2. Set the secrets in the service's environment (never in the file):"
        )?;
        writeln!(
            out,
            "     COMPASS_STRIPE_SECRET_KEY, COMPASS_STRIPE_WEBHOOK_SECRETS, \
             COMPASS_ANTHROPIC_API_KEY, COMPASS_SMTP_PASSWORD"
        )?;
        writeln!(
            out,
            "  3. `compass doctor` checks the setup; `compass orders` lists the orders as they come in."
        )?;
    }
    Ok(())
}

/// Writes `text` to a new file at `path`; returns false, changing nothing, if one exists.
fn write_new(path: &Path, text: &str) -> anyhow::Result<bool> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path);
    match file {
        Ok(mut file) => {
            file.write_all(text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(true)
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(err).with_context(|| format!("cannot create {}", path.display())),
    }
}
