//! `compass orders` on a database of 100,000 orders: wall time of the real binary, as an operator
//! runs it. Run with `cargo bench --bench orders` (release build); `ORDERS=N` and `RUNS=N` change
//! the size and the repetitions. Prints its figures; asserts nothing.

#[path = "../tests/it/seed.rs"]
#[allow(dead_code)]
mod seed;
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use compass::db::Db;
use compass::order::Policy;
use support::env_number;

fn main() -> anyhow::Result<()> {
    let orders = env_number("ORDERS", 100_000);
    let runs = env_number("RUNS", 20);
    let dir = tempfile::tempdir()?;
    let config = support::init(dir.path())?;
    let compass = env!("CARGO_BIN_EXE_compass");
    let run = |args: &[&str]| -> anyhow::Result<(Duration, usize)> {
        let started = Instant::now();
        let out = Command::new(compass)
            .args(args)
            .env("COMPASS_CONFIG", &config)
            .output()?;
        let took = started.elapsed();
        anyhow::ensure!(
            out.status.success(),
            "compass {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((took, out.stdout.len()))
    };

    let started = Instant::now();
    let mut db = Db::open(&dir.path().join("compass.db"))?;
    let now = time::OffsetDateTime::now_utc();
    let spacing = time::Duration::days(90) / i32::try_from(orders)?;
    let ids = seed::seed(&mut db, orders, now, spacing, &Policy::default())?;
    drop(db);
    let db_size = std::fs::metadata(dir.path().join("compass.db"))?.len();
    println!(
        "seeded {orders} orders over 90 days through create_order + apply in {:.1} s ({} MiB)",
        started.elapsed().as_secs_f64(),
        db_size / (1 << 20)
    );

    let email = "contact42@example.com";
    let some_id = &ids[orders / 2];
    let scenarios: Vec<(&str, Vec<&str>)> = vec![
        ("orders (50 newest, table)", vec!["orders"]),
        ("orders --status paid", vec!["orders", "--status", "paid"]),
        ("orders --since 7d", vec!["orders", "--since", "7d"]),
        ("orders --email E", vec!["orders", "--email", email]),
        (
            "orders --json --limit 1000",
            vec!["orders", "--json", "--limit", "1000"],
        ),
        ("orders show ID", vec!["orders", "show", some_id]),
        (
            "orders --json --limit 0 (all)",
            vec!["orders", "--json", "--limit", "0"],
        ),
    ];
    println!(
        "\n{:<32} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "command", "min ms", "p50 ms", "p95 ms", "max ms", "output"
    );
    for (name, args) in scenarios {
        let mut times = Vec::with_capacity(runs);
        let mut bytes = 0;
        run(&args)?; // warm the page cache
        for _ in 0..runs {
            let (took, len) = run(&args)?;
            times.push(took);
            bytes = len;
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let p = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        // Listing and showing are interactive (goal 150 ms); the full export is not.
        let interactive = !name.contains("(all)");
        support::record(
            "orders",
            &format!("`compass {name}` p50 on {orders} orders"),
            ms(p(0.5)),
            "ms",
            if interactive { "< 150 ms" } else { "" },
            interactive.then(|| ms(p(0.5)) < 150.0),
        );
        println!(
            "{name:<32} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9}B",
            ms(times[0]),
            ms(p(0.5)),
            ms(p(0.95)),
            ms(times[times.len() - 1]),
            bytes
        );
    }
    println!(
        "\n{runs} runs each of the release binary, including process start; goal: orders < 150 ms"
    );
    Ok(())
}
