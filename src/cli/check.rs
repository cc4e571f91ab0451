//! `compass check`: the method folder, read and rendered whole, every problem with its place.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::app::{current_method, load_config};
use crate::method::{Method, Problems};

/// Check the method: every problem named with its file and line, and what to do
///
/// Reads the method folder compass.toml names (paths.method, or `method` beside it; the
/// built-in method when there is none), checks every key, id, condition, level range, price
/// and logo, then renders every prompt, the report's HTML and PDF for every tier and every
/// email template with sample answers. serve, process and preview run the same check when they
/// meet a method version they have not seen, and refuse to start on a broken one; this shows
/// the problems before that. Exit status 1 when there are any.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check this method folder instead of the one compass.toml names (no compass.toml needed)
    #[arg(long, value_name = "DIR")]
    method: Option<PathBuf>,

    /// Print the result as JSON: {ok, folder, version, problems: [{file, line, message}]}
    #[arg(long)]
    json: bool,
}

pub fn run(
    args: Args,
    config: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (folder, business, builtin) = match &args.method {
        Some(dir) => (Some(dir.clone()), "Your business".to_owned(), None),
        None => {
            let config = load_config(config, env)?;
            let folder = config.method_dir.folder().map(Path::to_owned);
            // Without a folder: the built-in method, with the prices `[tiers]` may set.
            let builtin = folder
                .is_none()
                .then(|| current_method(&config))
                .transpose()?;
            (folder, config.business_name.clone(), builtin)
        }
    };
    let checked = match (&folder, builtin) {
        (Some(dir), _) => Method::load_dir(dir),
        (None, builtin) => Ok(builtin.unwrap_or_else(Method::builtin)),
    }
    .and_then(|method| crate::check::render(&method, &business).map(|()| method));
    let place = folder.as_ref().map_or_else(
        || "the built-in method".to_owned(),
        |dir| dir.display().to_string(),
    );
    if args.json {
        let (version, problems) = match &checked {
            Ok(method) => (Some(method.version.clone()), Vec::new()),
            Err(Problems(problems)) => (None, problems.clone()),
        };
        serde_json::to_writer_pretty(
            &mut *out,
            &json!({
                "ok": checked.is_ok(),
                "folder": folder,
                "version": version,
                "problems": problems,
            }),
        )?;
        writeln!(out)?;
    } else if let Ok(method) = &checked {
        let q = &method.questionnaire;
        writeln!(out, "method   {place}")?;
        writeln!(out, "version  {}", method.short_version())?;
        writeln!(
            out,
            "checked  {} categories, {} questions, {} levels, {} tiers; every template rendered",
            q.categories.len(),
            q.questions().count(),
            method.scoring.levels.len(),
            method.tiers.len()
        )?;
    }
    match checked {
        Ok(_) => Ok(()),
        Err(problems) if args.json => Err(anyhow::anyhow!(
            "{place}: the method has {} problem(s)",
            problems.0.len()
        )),
        Err(problems) => Err(anyhow::anyhow!("{place}: {problems}")),
    }
}
