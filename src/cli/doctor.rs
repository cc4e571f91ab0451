//! `compass doctor`: one line per check, ok, warn or fail, and what to do.

use std::io::Write;
use std::path::Path;

use crate::doctor::{self, Level};

/// Check that this installation is ready to take money
///
/// Reads the configuration and the secrets, checks the files' permissions and the database's
/// integrity, and asks each outside service something that costs nothing and changes nothing:
/// Stripe (list one PaymentIntent), Anthropic (list models), SMTP (connect and log in). Exits
/// 1 if any check fails. Run it after every change to the setup.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the checks as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(
    args: Args,
    config: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let checks = doctor::run(config, env);
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &checks)?;
        writeln!(out)?;
    } else {
        for check in &checks {
            let level = match check.level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            writeln!(out, "{level}  {:<22} {}", check.name, check.detail)?;
        }
    }
    let failed = checks.iter().filter(|c| c.level == Level::Fail).count();
    if failed > 0 {
        out.flush()?;
        anyhow::bail!("{failed} check(s) failed");
    }
    Ok(())
}
