//! The command line: one file per subcommand, each parsing its arguments, calling into the
//! library and printing. Human output is for terminals; `--json` is the stable form for scripts.

mod audit;
mod backup;
mod check;
mod customers;
mod demo;
mod doctor;
mod events;
mod init;
mod invoices;
mod migrate;
mod orders;
mod preview;
mod process;
mod reconcile;
mod refund;
mod resend_email;
mod restore;
mod review;
mod serve;
mod stats;

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use time::OffsetDateTime;

/// The back office of an AI readiness consultancy: intake, payments, reports, refunds.
#[derive(Debug, Parser)]
#[command(
    name = "compass",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Start with `compass init`, then see `compass <command> --help`.\n\
    Exit status: 0 on success, 1 on an error, 2 on a usage mistake."
)]
pub struct Cli {
    /// The configuration file
    #[arg(
        long,
        short,
        global = true,
        env = "COMPASS_CONFIG",
        default_value = "compass.toml",
        value_name = "FILE"
    )]
    config: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Demo(demo::Args),
    Init(init::Args),
    Check(check::Args),
    Migrate(migrate::Args),
    Orders(orders::Args),
    Serve(serve::Args),
    Process(process::Args),
    Preview(preview::Args),
    Refund(refund::Args),
    Review(review::Args),
    Doctor(doctor::Args),
    Stats(stats::Args),
    Invoices(invoices::Args),
    Audit(audit::Args),
    Backup(backup::Args),
    Restore(restore::Args),
    ResendEmail(resend_email::Args),
    Reconcile(reconcile::Args),
    Events(events::Args),
    Customers(customers::Args),
}

/// Runs the command line at `now`, reading secrets through `env` and printing to `out`.
pub fn run(
    cli: Cli,
    now: OffsetDateTime,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(args, out),
        Command::Init(args) => init::run(args, &cli.config, env, out),
        Command::Check(args) => check::run(args, &cli.config, env, out),
        Command::Migrate(args) => migrate::run(args, &cli.config, env, out),
        Command::Orders(args) => orders::run(args, &cli.config, now, env, out),
        Command::Serve(args) => serve::run(args, &cli.config, env, out),
        Command::Process(args) => process::run(args, &cli.config, env, out),
        Command::Preview(args) => preview::run(args, &cli.config, now, env, out),
        Command::Doctor(args) => doctor::run(args, &cli.config, env, out),
        Command::Stats(args) => stats::run(args, &cli.config, now, env, out),
        Command::Invoices(args) => invoices::run(args, &cli.config, now, env, out),
        Command::Audit(args) => audit::run(args, &cli.config, now, env, out),
        Command::Backup(args) => backup::run(args, &cli.config, env, out),
        Command::Restore(args) => restore::run(args, &cli.config, now, env, out),
        Command::Refund(args) => refund::run(args, &cli.config, now, env, out),
        Command::Review(args) => review::run(args, &cli.config, now, env, out),
        Command::ResendEmail(args) => resend_email::run(args, &cli.config, now, env, out),
        Command::Reconcile(args) => reconcile::run(args, &cli.config, now, env, out),
        Command::Events(args) => events::run(args, &cli.config, now, env, out),
        Command::Customers(args) => customers::run(args, &cli.config, now, env, out),
    }
}

/// Logs go to stderr: human-readable at a terminal, one JSON object a line otherwise.
/// `COMPASS_LOG` sets the filter (`info`, `compass=debug`, ...); the default shows warnings.
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("COMPASS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        builder.json().init();
    }
}

/// The error as one line: each cause once. SQLite's errors repeat their message in their source
/// (`file is not a database: Error code 26: file is not a database`); the repeat goes.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string().replace('\n', " ");
        if parts
            .last()
            .is_some_and(|last| last.ends_with(&text) || text.ends_with(last.as_str()))
        {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// Whether an error only says that whoever read our output stopped reading (`| head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
