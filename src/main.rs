use std::process::ExitCode;

use clap::Parser;
use compass::cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_logging();
    let env = |name: &str| std::env::var(name).ok();
    let result = compass::clock::now(env).and_then(|now| {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        cli::run(cli, now, &env, &mut out)?;
        Ok(std::io::Write::flush(&mut out)?)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if cli::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", cli::error_line(&err));
            ExitCode::FAILURE
        }
    }
}
