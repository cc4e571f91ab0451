//! Payments as Stripe sends them: a burst of `payment_intent.succeeded` events for real
//! unpaid orders, with a Stripe stand-in that answers each PaymentIntent read-back in 300 ms,
//! while visitors load the intake form and a status page. Prints how fast the events are
//! accepted and handled (every order paid), the pages' latency during the burst, and, on the
//! same machine in the same run, how fast the seed's stack accepts the same events: FastAPI
//! with the official `stripe` library verifying each signature and storing the event in SQLite
//! (WAL, synchronous=NORMAL, as compass), served by uvicorn with two workers. Asserts nothing.
//!
//! `cargo bench --bench payments`; `EVENTS=N CONNECTIONS=C STRIPE_MS=D` change the load. The
//! FastAPI side needs `COMPASS_BENCH_PYTHON`, a Python with fastapi, uvicorn and stripe
//! (scripts/bench installs them into the test services' venv); without it that part is skipped
//! and says so.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use compass::db::{Db, NewOrder, PaymentRecord};
use support::{Call, Server, env_number, load, record};

const SECRET: &str = "whsec_bench";

fn main() -> anyhow::Result<()> {
    let events = env_number("EVENTS", 500);
    let connections = env_number("CONNECTIONS", 50).max(1);
    let stripe_ms = env_number("STRIPE_MS", 300) as u64;
    let stand_in = StripeStandIn::start(Duration::from_millis(stripe_ms))?;

    let dir = tempfile::tempdir()?;
    let config = support::init(dir.path())?;
    let text = std::fs::read_to_string(&config)?.replace(
        "api_base = \"https://api.stripe.com\"",
        &format!("api_base = \"{}\"", stand_in.base),
    );
    std::fs::write(&config, text)?;
    let (orders, token) = seed(&dir.path().join("compass.db"), events)?;
    let server = Server::start(&config, 4, SECRET)?;

    // Visitors during the burst: the intake form and one status page, one after the other.
    let stop = Arc::new(AtomicBool::new(false));
    let visitor = {
        let (base, stop) = (server.base.clone(), Arc::clone(&stop));
        std::thread::spawn(move || visit(&base, &token, &stop))
    };
    let started = Instant::now();
    let accepted = load(&server.base, connections, events, 200, {
        let orders = orders.clone();
        move |i| succeeded(&orders[i], i)
    })?;
    let db = Db::open(&dir.path().join("compass.db"))?;
    let deadline = started + Duration::from_secs(600);
    while paid(&db)? < events && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let handled_in = started.elapsed();
    let paid_orders = paid(&db)?;
    stop.store(true, Ordering::Relaxed);
    let mut pages = visitor
        .join()
        .map_err(|_| anyhow::anyhow!("visitor panicked"))?;
    pages.sort();
    let page_ms = |q: f64| {
        pages
            .get(((pages.len().saturating_sub(1)) as f64 * q).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let handled_rate = paid_orders as f64 / handled_in.as_secs_f64();
    println!(
        "payments: {events} payment_intent.succeeded events for real orders over {connections} \
         connections; Stripe answers each read-back in {stripe_ms} ms"
    );
    println!(
        "  accepted {:.0} events/s ({} errors); all handled: {paid_orders} of {events} orders \
         paid in {:.1} s = {handled_rate:.1} payments/s",
        accepted.rate(),
        accepted.errors,
        handled_in.as_secs_f64()
    );
    println!(
        "  pages during the burst ({} loads of / and /status/{{token}}): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pages.len(),
        page_ms(0.5),
        page_ms(0.99),
        page_ms(1.0)
    );
    record(
        "payments",
        "payments handled per second (Stripe at 300 ms)",
        handled_rate,
        "/s",
        ">= 25",
        Some(handled_rate >= 25.0 && paid_orders == events),
    );
    record(
        "payments",
        "page p99 during a burst of payment events",
        page_ms(0.99),
        "ms",
        "< 10 ms",
        Some(page_ms(0.99) < 10.0),
    );
    record(
        "payments",
        "payment events accepted per second (compass)",
        accepted.rate(),
        "/s",
        "",
        None,
    );
    drop(server);

    match std::env::var("COMPASS_BENCH_PYTHON") {
        Ok(python) => {
            let seed_rate = fastapi(&python, connections, events * 4, &orders)?;
            let ratio = accepted.rate() / seed_rate;
            println!(
                "  the seed's stack (FastAPI + stripe + SQLite, uvicorn, 2 workers): {seed_rate:.0} \
                 events/s accepted; compass {ratio:.1}x"
            );
            record(
                "payments",
                "accepted webhooks, compass over FastAPI + stripe (same events, same machine)",
                ratio,
                "x",
                ">= 3x",
                Some(ratio >= 3.0),
            );
        }
        Err(_) => println!("  (COMPASS_BENCH_PYTHON unset: the FastAPI comparison was skipped)"),
    }
    Ok(())
}

/// `count` unpaid orders, each with its PaymentIntent on record; their ids, and one order's
/// status token.
fn seed(database: &std::path::Path, count: usize) -> anyhow::Result<(Vec<String>, String)> {
    let mut db = Db::open(database)?;
    let now = time::OffsetDateTime::now_utc();
    let mut ids = Vec::new();
    let method = compass::method::Method::builtin();
    db.keep_method(&method.version, method.files())?;
    for i in 0..count {
        let order = db.create_order(
            &NewOrder {
                email: format!("bench{i}@example.com"),
                name: "Bench".into(),
                company: "Bench Ltd".into(),
                tier: "standard".parse().expect("a built-in tier"),
                amount_cents: 14_900,
                currency: "usd".into(),
                questionnaire: serde_json::json!({}),
                method_version: method.version.clone(),
                terms: None,
            },
            now,
        )?;
        db.upsert_payment(
            &PaymentRecord {
                order_id: &order.id,
                payment_intent_id: &intent_of(&order.id),
                status: "requires_payment_method",
                amount_cents: 14_900,
                currency: "usd",
                charge_id: None,
                last_error: None,
            },
            now,
        )?;
        ids.push(order.id);
    }
    let token = db
        .order(&ids[0])?
        .map(|o| o.status_token)
        .unwrap_or_default();
    Ok((ids, token))
}

fn paid(db: &Db) -> anyhow::Result<usize> {
    Ok(db
        .store_counts()?
        .orders
        .iter()
        .filter(|(status, _)| status == "paid")
        .map(|(_, n)| *n as usize)
        .sum())
}

/// A signed `payment_intent.succeeded` for `order` (Stripe's event shape).
fn succeeded(order: &str, i: usize) -> Call {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let body = serde_json::json!({
        "id": format!("evt_bench_pay_{i}"), "object": "event", "type": "payment_intent.succeeded",
        "api_version": "2026-09-30.endive", "created": now, "livemode": false,
        "data": { "object": {
            "id": intent_of(order), "object": "payment_intent", "amount": 14900,
            "currency": "usd", "status": "succeeded", "metadata": { "order_id": order },
        } },
    })
    .to_string();
    Call::webhook(body, SECRET, now)
}

/// Loads `/` and the status page in turn until `stop`; each load's latency.
fn visit(base: &str, token: &str, stop: &AtomicBool) -> Vec<Duration> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut latencies = Vec::new();
    let paths = ["/".to_owned(), format!("/status/{token}")];
    while !stop.load(Ordering::Relaxed) {
        for path in &paths {
            let started = Instant::now();
            if let Ok(mut answer) = agent.get(&format!("{base}{path}")).call() {
                let _ = answer.body_mut().read_to_vec();
                latencies.push(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    latencies
}

/// The PaymentIntent id of `order` (a Stripe id has no dashes): `pi_` and the order's hex.
fn intent_of(order: &str) -> String {
    format!("pi_{}", order.replace('-', ""))
}

/// The order of an `intent_of` id.
fn order_of(intent: &str) -> String {
    let hex = intent.trim_start_matches("pi_");
    if hex.len() != 32 {
        return String::new();
    }
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Stripe's API for the benchmark: answers `GET /v1/payment_intents/{intent_of(order)}` with a
/// succeeded PaymentIntent for that order after `delay`, on a thread per connection.
struct StripeStandIn {
    base: String,
}

impl StripeStandIn {
    fn start(delay: Duration) -> anyhow::Result<StripeStandIn> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://{}", listener.local_addr()?);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(&stream);
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                            break;
                        }
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("/");
                    let id = path.rsplit('/').next().unwrap_or("").to_owned();
                    let order = order_of(&id);
                    std::thread::sleep(delay);
                    let body = serde_json::json!({
                        "id": id, "object": "payment_intent", "amount": 14900, "currency": "usd",
                        "status": "succeeded", "created": time::OffsetDateTime::now_utc().unix_timestamp(),
                        "metadata": { "order_id": order }, "client_secret": format!("{id}_secret"),
                        "latest_charge": null, "last_payment_error": null,
                    })
                    .to_string();
                    let mut out = &stream;
                    let _ = write!(
                        out,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Ok(StripeStandIn { base })
    }
}

/// The seed's stack under the same kind of load: its accepted events per second.
fn fastapi(
    python: &str,
    connections: usize,
    events: usize,
    orders: &[String],
) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let app = dir.path().join("seed_webhooks.py");
    std::fs::write(&app, SEED_APP)?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = std::process::Command::new(python)
        .args([
            "-m",
            "uvicorn",
            "seed_webhooks:app",
            "--host",
            "127.0.0.1",
            "--port",
        ])
        .arg(port.to_string())
        .args([
            "--workers",
            "2",
            "--log-level",
            "warning",
            "--no-access-log",
        ])
        .current_dir(dir.path())
        .env("WEBHOOK_SECRET", SECRET)
        .env("DATABASE", dir.path().join("events.db"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        // A group of its own: uvicorn's workers are its children, and all of them stop below.
        .process_group(0)
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let ready = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(
            ready.elapsed() < Duration::from_secs(30),
            "uvicorn did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let orders = orders.to_vec();
    let result = load(&base, connections, events, 200, move |i| {
        let mut call = succeeded(&orders[i % orders.len()], 1_000_000 + i);
        call.path = "/webhook".into();
        call
    });
    // SIGTERM to the whole group (a SIGKILL to uvicorn alone left its workers running).
    let _ = std::process::Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
    let result = result?;
    anyhow::ensure!(
        result.errors == 0,
        "FastAPI answered {} errors",
        result.errors
    );
    Ok(result.rate())
}

/// The seed's webhook endpoint, as its stack writes one: the official library verifies the
/// signature, the event is stored by id in SQLite (WAL, synchronous=NORMAL), a duplicate is
/// answered 200.
const SEED_APP: &str = r#"
import os, sqlite3, stripe
from fastapi import FastAPI, Request, HTTPException

app = FastAPI()
SECRET = os.environ["WEBHOOK_SECRET"]
db = sqlite3.connect(os.environ["DATABASE"], check_same_thread=False, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute("PRAGMA busy_timeout=5000")
db.execute("CREATE TABLE IF NOT EXISTS stripe_events (id TEXT PRIMARY KEY, type TEXT NOT NULL, payload TEXT NOT NULL)")

@app.post("/webhook")
async def webhook(request: Request):
    payload = await request.body()
    try:
        event = stripe.Webhook.construct_event(payload, request.headers.get("stripe-signature"), SECRET)
    except Exception:
        raise HTTPException(status_code=400)
    db.execute("INSERT OR IGNORE INTO stripe_events (id, type, payload) VALUES (?, ?, ?)",
               (event["id"], event["type"], payload.decode()))
    return {"received": True}
"#;
