//! `compass serve`: the intake form, the payment page, status pages and Stripe's webhooks.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;

use crate::http;

/// Serve the intake form, payment page, status pages and Stripe webhooks
///
/// Binds 127.0.0.1 by default: put Caddy or nginx in front for TLS, timeouts and connection
/// limits (examples/ has both). Needs COMPASS_STRIPE_SECRET_KEY and
/// COMPASS_STRIPE_WEBHOOK_SECRETS. SIGTERM or Ctrl-C finishes the requests in hand and stops.
/// Exits non-zero if the listener fails, so that systemd restarts it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port (printed on start)
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: String,

    /// Requests handled at once, each with its own database connection
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,

    /// Threads that handle Stripe's events and approved refunds after the answer, each with its
    /// own database connection, so that no page waits on Stripe. Each handles one event at a
    /// time, so with Stripe answering in 300 ms, 12 handle about 40 payments a second
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u16).range(1..=64))]
    event_workers: u16,

    /// Seconds a client has to send a request's head, to send its body, and to take the answer
    /// (408 or a closed connection after that); slow clients never hold a worker
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=600), value_name = "SECS")]
    client_timeout: u16,

    /// Serve Prometheus metrics at http://ADDR/metrics (keep it private: 127.0.0.1 or a VPN)
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
}

pub fn run(
    args: Args,
    config: &Path,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let listener = http::bind(&args.listen)?;
    let address = listener
        .local_addr()
        .context("the listener has no address")?;
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown))
            .context("cannot install the signal handlers")?;
    }
    let metrics = args.metrics_listen.as_deref().map(http::bind).transpose()?;
    let metrics_address = metrics
        .as_ref()
        .map(|l| {
            l.local_addr()
                .context("the metrics listener has no address")
        })
        .transpose()?;
    let options = http::Serve {
        config,
        env,
        workers: usize::from(args.workers),
        event_workers: usize::from(args.event_workers),
        clients: http::ClientLimits {
            deadline: std::time::Duration::from_secs(u64::from(args.client_timeout)),
            ..http::ClientLimits::default()
        },
        shutdown,
        metrics,
    };
    // Opening the workers checks the configuration, the database and the secrets first; the
    // address is printed only once requests can be served.
    http::serve_with(listener, &options, || {
        writeln!(out, "listening on http://{address}")?;
        if let Some(metrics) = metrics_address {
            writeln!(out, "metrics on http://{metrics}/metrics")?;
        }
        out.flush()?;
        Ok(())
    })
}
