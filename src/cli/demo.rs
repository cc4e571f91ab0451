//! `compass demo`: one sample order from the form to a delivered report, on this machine
//! alone.

use std::io::Write;
use std::path::PathBuf;

use crate::demo::Demo;
use crate::order::Tier;

/// Try compass end to end without keys: one sample order, paid, written and emailed
///
/// Sets up a throwaway installation, starts `serve`, and takes a sample customer through
/// it. The customer fills in the form and pays; the payment is simulated by a stand-in
/// for Stripe on 127.0.0.1 and announced through a locally signed webhook. The report is
/// the built-in sample, labelled SAMPLE, rather than one from Claude, and the emails are
/// written as .eml files. It then prints the status page to open, and serves until Ctrl-C.
/// No key is read from the environment, so the demo cannot reach any Stripe account.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to serve on
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: String,

    /// Keep the installation in this directory (default: a temporary one, removed at the end)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// The tier the sample customer buys: starter, standard or premium
    #[arg(long, default_value = "premium")]
    tier: Tier,

    /// Stop after the report is delivered instead of serving until Ctrl-C
    #[arg(long)]
    no_serve: bool,
}

pub fn run(args: Args, out: &mut dyn Write) -> anyhow::Result<()> {
    crate::demo::run(
        &Demo {
            listen: args.listen,
            dir: args.dir,
            tier: args.tier,
            no_serve: args.no_serve,
        },
        out,
    )
}
