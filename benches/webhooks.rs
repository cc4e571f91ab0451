//! The webhook endpoint under load: N distinct, validly signed events sent over C keep-alive
//! connections to the release binary's `serve`, each answered only after it is stored. Prints
//! events/s and latency percentiles; asserts nothing.
//!
//! `cargo bench --bench webhooks`; `EVENTS=N CONNECTIONS=C WORKERS=W` change the load.
//! The events are of a type compass stores and acknowledges without calling Stripe
//! (`customer.created`), so the figures are compass's own cost: verify, store, answer, and
//! the bookkeeping of handling right after.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod support;

use support::env_number;

const SECRET: &str = "whsec_bench";

fn main() -> anyhow::Result<()> {
    let events = env_number("EVENTS", 20_000);
    let connections = env_number("CONNECTIONS", 50).max(1);
    let workers = env_number("WORKERS", 4);
    let dir = tempfile::tempdir()?;
    let compass = env!("CARGO_BIN_EXE_compass");
    let config = support::init(dir.path())?;

    let mut server = Command::new(compass)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            &workers.to_string(),
        ])
        .env("COMPASS_CONFIG", &config)
        .env("COMPASS_STRIPE_SECRET_KEY", "sk_test_bench")
        .env("COMPASS_STRIPE_WEBHOOK_SECRETS", SECRET)
        .env("COMPASS_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().expect("stdout")).read_line(&mut line)?;
    let base = line.trim().trim_start_matches("listening on ").to_owned();
    let rss_before = rss_kib(server.id());

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let next = Arc::clone(&next);
            let url = format!("{base}/webhooks/stripe");
            std::thread::spawn(move || -> anyhow::Result<(Vec<Duration>, usize)> {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .max_idle_connections_per_host(1)
                    .build()
                    .into();
                let mut latencies = Vec::new();
                let mut errors = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= events {
                        return Ok((latencies, errors));
                    }
                    let body = format!(
                        r#"{{"id":"evt_bench_{i}","object":"event","type":"customer.created","created":{},"data":{{"object":{{"id":"cus_bench_{i}","object":"customer"}}}}}}"#,
                        time::OffsetDateTime::now_utc().unix_timestamp()
                    );
                    let now = time::OffsetDateTime::now_utc().unix_timestamp();
                    let signature = compass::stripe::webhook::sign(body.as_bytes(), SECRET, now);
                    let sent = Instant::now();
                    let response = agent
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .header("Stripe-Signature", &signature)
                        .send(&body);
                    match response {
                        Ok(mut r) if r.status() == 200 => {
                            let _ = r.body_mut().read_to_string();
                            latencies.push(sent.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(events);
    let mut errors = 0;
    for thread in threads {
        let (mut l, e) = thread
            .join()
            .map_err(|_| anyhow::anyhow!("a client panicked"))??;
        latencies.append(&mut l);
        errors += e;
    }
    let elapsed = started.elapsed();
    let rss_after = rss_kib(server.id());
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();

    latencies.sort();
    let ms = |q: f64| {
        latencies
            .get(((latencies.len().saturating_sub(1)) as f64 * q).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "webhooks: {events} distinct signed events, {connections} connections, {workers} workers"
    );
    println!(
        "  {:.0} events/s over {:.2} s; {} errors",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        errors
    );
    println!(
        "  latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(1.0)
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        println!(
            "  serve RSS {} MiB idle, {} MiB after the load",
            before / 1024,
            after / 1024
        );
    }
    println!("  goal: >= 3000 events/s, p99 < 5 ms");
    Ok(())
}

/// Resident memory of a process, from /proc (Linux only).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
