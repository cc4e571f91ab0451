//! The webhook endpoint under load: N distinct, validly signed events sent over C keep-alive
//! connections to the release binary's `serve`, each answered only after it is stored. Prints
//! events/s, latency percentiles and serve's memory; asserts nothing.
//!
//! Two runs. The first is closed-loop: each connection sends its next event as soon as the last
//! is answered, which finds the most events/s; its latency is mostly queueing (Little's law:
//! 50 connections at 10,000/s wait 5 ms on average, whatever the server does). The second
//! offers a steady RATE (default 3,000/s, the goal's rate) in open loop and measures each
//! event's latency from when it was due: that is the p99 the goal is about.
//!
//! Each is run three times (`RUNS`) and the median run is reported.
//!
//! `cargo bench --bench webhooks`; `EVENTS=N CONNECTIONS=C WORKERS=W RATE=R RUNS=K` change the
//! load.
//! The events are of a type compass stores and acknowledges without calling Stripe
//! (`customer.created`), so the figures are compass's own cost: verify, store, answer, and
//! the bookkeeping of handling right after.

mod support;

use support::{Call, Server, env_number, load, load_paced, median_of, record, record_errors};

const SECRET: &str = "whsec_bench";

fn main() -> anyhow::Result<()> {
    let events = env_number("EVENTS", 20_000);
    let connections = env_number("CONNECTIONS", 50).max(1);
    let workers = env_number("WORKERS", 4);
    let dir = tempfile::tempdir()?;
    let config = support::init(dir.path())?;
    let server = Server::start(&config, workers, SECRET)?;
    let idle = server.rss_kib();

    let runs = env_number("RUNS", 3);
    println!("closed loop, {events} events a run:");
    let result = median_of(
        runs,
        |n| {
            load(&server.base, connections, events, 200, move |i| {
                event(n * events + i)
            })
        },
        support::Load::rate,
    )?;
    let rate = env_number("RATE", 3_000);
    // Five seconds at the steady rate a run, with ids after the closed-loop runs'.
    let paced_events = rate * 5;
    let first = runs * events;
    println!("open loop at {rate}/s, {paced_events} events a run:");
    let paced = median_of(
        runs,
        |n| {
            load_paced(
                &server.base,
                connections,
                paced_events,
                200,
                rate as f64,
                move |i| event(first + n * paced_events + i),
            )
        },
        |load| load.ms(0.99),
    )?;
    let memory = server.rss_kib();
    drop(server);

    println!(
        "webhooks: {events} distinct signed events, {connections} connections, {workers} workers \
         (the median of {runs} runs: by events/s closed loop, by p99 open loop)"
    );
    println!(
        "  {:.0} events/s over {:.2} s; {} errors",
        result.rate(),
        result.elapsed.as_secs_f64(),
        result.errors
    );
    println!(
        "  latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        result.ms(0.5),
        result.ms(0.9),
        result.ms(0.99),
        result.ms(1.0)
    );
    println!(
        "  at a steady {rate}/s (open loop, {paced_events} events): {:.0} events/s answered; \
         latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} errors",
        paced.rate(),
        paced.ms(0.5),
        paced.ms(0.9),
        paced.ms(0.99),
        paced.ms(1.0),
        paced.errors
    );
    if let (Some((idle, _)), Some((now, peak))) = (idle, memory) {
        println!(
            "  serve RSS {} MiB idle, {} MiB after the load, peak {} MiB",
            idle / 1024,
            now / 1024,
            peak / 1024
        );
        let peak_mib = peak as f64 / 1024.0;
        record(
            "webhooks",
            "serve peak RSS under the webhook load",
            peak_mib,
            "MiB",
            "< 40 MiB",
            Some(peak_mib < 40.0),
        );
    }
    println!("  goal: >= 3000 events/s, p99 < 5 ms");
    let label = format!("{connections} connections, {workers} workers");
    record(
        "webhooks",
        &format!("events/s ({label})"),
        result.rate(),
        "/s",
        ">= 3000",
        Some(result.rate() >= 3000.0),
    );
    record(
        "webhooks",
        &format!("p50 ({label})"),
        result.ms(0.5),
        "ms",
        "",
        None,
    );
    record(
        "webhooks",
        &format!("p99 ({label}, closed loop: mostly queueing)"),
        result.ms(0.99),
        "ms",
        "",
        None,
    );
    let paced_label = format!("at a steady {rate}/s, open loop, {label}");
    record(
        "webhooks",
        &format!("p50 ({paced_label})"),
        paced.ms(0.5),
        "ms",
        "",
        None,
    );
    record(
        "webhooks",
        &format!("p99 ({paced_label})"),
        paced.ms(0.99),
        "ms",
        "< 5 ms",
        Some(paced.ms(0.99) < 5.0),
    );
    record_errors("webhooks", "errors", result.errors + paced.errors);
    Ok(())
}

/// Event number `i`: distinct, of a type compass stores and acknowledges, signed now.
fn event(i: usize) -> Call {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let body = format!(
        r#"{{"id":"evt_bench_{i}","object":"event","type":"customer.created","created":{now},"data":{{"object":{{"id":"cus_bench_{i}","object":"customer"}}}}}}"#
    );
    Call::webhook(body, SECRET, now)
}
