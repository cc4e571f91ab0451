//! The status page under load: R requests for one completed order's page over C keep-alive
//! connections to the release binary's `serve`. Prints requests/s and latency percentiles;
//! asserts nothing.
//!
//! `cargo bench --bench status`; `REQUESTS=N CONNECTIONS=C WORKERS=W` change the load.

#[path = "../tests/it/seed.rs"]
#[allow(dead_code)]
mod seed;
mod support;

use compass::db::Db;
use compass::order::Policy;
use support::{Call, Server, env_number, load, median_of, record};

fn main() -> anyhow::Result<()> {
    let requests = env_number("REQUESTS", 50_000);
    let connections = env_number("CONNECTIONS", 50).max(1);
    let workers = env_number("WORKERS", 4);
    let dir = tempfile::tempdir()?;
    let config = support::init(dir.path())?;
    let mut db = Db::open(&dir.path().join("compass.db"))?;
    let now = time::OffsetDateTime::now_utc();
    // A realistic store behind the page: 10,000 orders, the one asked for among them.
    seed::seed(
        &mut db,
        10_000,
        now,
        time::Duration::minutes(5),
        &Policy::default(),
    )?;
    // The page of a delivered report, with its score, among the 10,000.
    let id = &seed::completed_order(
        &mut db,
        crate::seed::tier("premium"),
        "Analytical Engines Ltd",
        now,
    )?;
    let token = db.order(id)?.map(|o| o.status_token).unwrap_or_default();
    drop(db);
    let server = Server::start(&config, workers, "whsec_bench")?;
    let path = format!("/status/{token}");
    let runs = env_number("RUNS", 3);
    let result = median_of(
        runs,
        |_| {
            let path = path.clone();
            load(&server.base, connections, requests, 200, move |_| Call {
                post: false,
                path: path.clone(),
                headers: Vec::new(),
                body: String::new(),
            })
        },
        support::Load::rate,
    )?;
    drop(server);
    println!(
        "status page: {requests} requests, {connections} connections, {workers} workers \
         (the median of {runs} runs by requests/s)"
    );
    println!(
        "  {:.0} requests/s over {:.2} s; {} errors",
        result.rate(),
        result.elapsed.as_secs_f64(),
        result.errors
    );
    println!(
        "  latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        result.ms(0.5),
        result.ms(0.99),
        result.ms(1.0)
    );
    println!("  goal: >= 10000 requests/s");
    let label = format!("{connections} connections, {workers} workers");
    record(
        "status",
        &format!("requests/s ({label})"),
        result.rate(),
        "/s",
        ">= 10000",
        Some(result.rate() >= 10_000.0),
    );
    record(
        "status",
        &format!("p99 ({label})"),
        result.ms(0.99),
        "ms",
        "",
        None,
    );
    Ok(())
}
