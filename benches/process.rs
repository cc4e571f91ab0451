//! `compass process` against llmock holding every reply for a second: how close a batch comes
//! to the bound the model's latency sets (orders × delay / concurrency), and how much of each
//! order is compass's own work (prompt, checks, HTML, PDF, store) rather than waiting on Claude.
//! Prints its figures; asserts nothing.
//!
//! Needs llmock: `scripts/test-services start && eval "$(scripts/test-services env)"`, then
//! `cargo bench --bench process`. `ORDERS=N CONCURRENCY=C DELAY_MS=D` change the load. Every
//! order is Premium, the longest report and PDF.

#[path = "../tests/it/seed.rs"]
#[allow(dead_code)]
mod seed;
mod support;

use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use compass::db::Db;
use serde_json::json;
use support::env_number;

fn main() -> anyhow::Result<()> {
    let orders = env_number("ORDERS", 200);
    let concurrency = env_number("CONCURRENCY", 8).clamp(1, 64);
    let delay_ms = env_number("DELAY_MS", 1_000);
    let var = |name: &str| {
        std::env::var(name).with_context(|| {
            format!(
                "{name} is not set: run `scripts/test-services start` and \
                 `eval \"$(scripts/test-services env)\"` first"
            )
        })
    };
    let claude_url = var("COMPASS_TEST_CLAUDE_URL")?;
    let control_url = var("COMPASS_TEST_CLAUDE_CONTROL_URL")?;
    let model = format!("claude-bench-process-{}", std::process::id());

    let dir = tempfile::tempdir()?;
    let compass = env!("CARGO_BIN_EXE_compass");
    let config = support::init(dir.path())?;
    seed::point_at_claude(&config, &claude_url, &model)?;

    let mut db = Db::open(&dir.path().join("compass.db"))?;
    let now = time::OffsetDateTime::now_utc();
    for i in 0..orders {
        seed::paid_order(
            &mut db,
            crate::seed::tier("premium"),
            &format!("Bench {i} Ltd"),
            now,
        )?;
    }
    drop(db);

    let reply = serde_json::to_string(&crate::seed::sample_written("premium"))?;
    let scenario = json!({ "behaviors": [
        { "type": "delay", "seconds": delay_ms as f64 / 1000.0, "times": null,
          "match": { "model": model } },
        { "type": "reply", "text": reply, "times": null, "match": { "model": model } },
    ]});
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    agent
        .post(&format!("{control_url}/_llmock/scenario"))
        .header("content-type", "application/json")
        .send(scenario.to_string())
        .context("llmock does not answer")?;

    let started = Instant::now();
    let out = Command::new(compass)
        .args([
            "process",
            "--json",
            "--limit",
            &orders.to_string(),
            "--concurrency",
            &concurrency.to_string(),
        ])
        .env("COMPASS_CONFIG", &config)
        .env("COMPASS_LOG", "warn")
        .output()?;
    let wall = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "process failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let outcomes = summary["outcomes"].as_array().context("outcomes")?;
    let completed = outcomes
        .iter()
        .filter(|o| o["result"] == "completed")
        .count();
    let field = |o: &serde_json::Value, name: &str| o[name].as_u64().unwrap_or(0);
    let mut own: Vec<u64> = outcomes
        .iter()
        .map(|o| field(o, "millis").saturating_sub(field(o, "claude_millis")))
        .collect();
    own.sort_unstable();
    let claude_mean = outcomes
        .iter()
        .map(|o| field(o, "claude_millis"))
        .sum::<u64>() as f64
        / outcomes.len().max(1) as f64;
    let at = |q: f64| own[((own.len().saturating_sub(1)) as f64 * q).round() as usize];
    let bound = orders as f64 * delay_ms as f64 / 1000.0 / concurrency as f64;

    println!(
        "process: {orders} paid Premium orders, llmock holding each reply {delay_ms} ms, concurrency {concurrency}"
    );
    println!(
        "  {completed} completed; wall {wall:.2} s against the bound {bound:.2} s ({:+.1}%)",
        (wall / bound - 1.0) * 100.0
    );
    println!("  waiting on Claude: {claude_mean:.0} ms per order on average");
    println!(
        "  own work per order (prompt, checks, HTML, PDF, store): mean {:.1} ms, p50 {} ms, p95 {} ms, max {} ms",
        own.iter().sum::<u64>() as f64 / own.len().max(1) as f64,
        at(0.5),
        at(0.95),
        at(1.0)
    );
    println!(
        "  database after the run: {} MiB",
        std::fs::metadata(dir.path().join("compass.db"))?.len() / (1 << 20)
    );
    println!("  goal: wall within 10% of the bound; own work < 50 ms per order");
    let over = (wall / bound - 1.0) * 100.0;
    support::record(
        "process",
        &format!(
            "wall time over the bound ({orders} orders, {delay_ms} ms replies, C={concurrency}; bound {bound:.1} s)"
        ),
        over,
        "%",
        "<= 10 %",
        Some(over <= 10.0),
    );
    let mean = own.iter().sum::<u64>() as f64 / own.len().max(1) as f64;
    support::record(
        "process",
        "own work per order, mean (prompt, checks, HTML, PDF, store)",
        mean,
        "ms",
        "< 50 ms",
        Some(mean < 50.0),
    );
    Ok(())
}
