//! New visitors while misbehaving clients hold connections open: fifty connections to the
//! release binary's `serve` that never finish (twenty sent a head and stall before the body,
//! twenty send a head a byte at a time and never end it, ten pipeline a hundred requests and
//! never read an answer), and meanwhile new clients, one after another, each opening a
//! connection, asking for `GET /` and reading the whole page. Prints the new clients' latency
//! (connect to last byte) with and without the fifty; asserts nothing.
//!
//! `cargo bench --bench clients`; `CLIENTS=N WORKERS=W` change the load. The misbehaving
//! connections are opened fresh for each run, and each run stays inside serve's 10 s client
//! deadline, so that none of them has been answered 408 and closed yet.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{Server, env_number, median_of, record, record_errors};

/// How many new clients a run serves, one after another.
fn new_clients(address: &str, clients: usize) -> anyhow::Result<support::Load> {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(clients);
    let mut errors = 0;
    for _ in 0..clients {
        let begun = Instant::now();
        let mut stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
        let mut answer = Vec::new();
        match stream.read_to_end(&mut answer) {
            Ok(_) if answer.starts_with(b"HTTP/1.1 200 ") => latencies.push(begun.elapsed()),
            _ => errors += 1,
        }
        // A visitor now and then, not a flood: about 40 a second.
        std::thread::sleep(Duration::from_millis(25).saturating_sub(begun.elapsed()));
    }
    latencies.sort();
    Ok(support::Load {
        latencies,
        errors,
        elapsed: started.elapsed(),
    })
}

/// Fifty connections that never finish a request, kept open (and the trickling ones fed)
/// until the returned guard is dropped.
fn misbehave(address: &str) -> anyhow::Result<(Vec<TcpStream>, Trickle)> {
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(address)?;
        stream.write_all(
            b"POST /orders HTTP/1.1\r\nHost: bench\r\nContent-Type: \
              application/x-www-form-urlencoded\r\nContent-Length: 5000\r\n\r\nemail=",
        )?;
        held.push(stream);
    }
    for _ in 0..10 {
        let mut stream = TcpStream::connect(address)?;
        stream.write_all(
            "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
                .repeat(100)
                .as_bytes(),
        )?;
        held.push(stream);
    }
    let mut trickling = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(address)?;
        stream.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nX-Slow: ")?;
        trickling.push(stream);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let feeding = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        while !feeding.load(Ordering::Relaxed) {
            for stream in &mut trickling {
                let _ = stream.write_all(b"a");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    Ok((
        held,
        Trickle {
            stop,
            thread: Some(thread),
        },
    ))
}

struct Trickle {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Trickle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn main() -> anyhow::Result<()> {
    let clients = env_number("CLIENTS", 200);
    let workers = env_number("WORKERS", 4);
    let dir = tempfile::tempdir()?;
    let config = support::init(dir.path())?;
    let server = Server::start(&config, workers, "whsec_bench")?;
    let address = server.base.trim_start_matches("http://").to_owned();
    let runs = env_number("RUNS", 3);

    println!("{clients} new clients, nothing else connected:");
    let calm = median_of(runs, |_| new_clients(&address, clients), |l| l.ms(0.99))?;
    println!("{clients} new clients while 50 connections stall:");
    let stalled = median_of(
        runs,
        |_| {
            let guard = misbehave(&address)?;
            std::thread::sleep(Duration::from_millis(300));
            let load = new_clients(&address, clients);
            drop(guard);
            load
        },
        |l| l.ms(1.0),
    )?;
    let memory = server.rss_kib();
    drop(server);

    println!(
        "new clients: {clients} a run, one after another, {workers} workers (the median of \
         {runs} runs, by p99 alone and by the slowest with the stalled connections)"
    );
    for (what, load) in [("alone", &calm), ("with 50 stalled connections", &stalled)] {
        println!(
            "  {what}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} errors",
            load.ms(0.5),
            load.ms(0.99),
            load.ms(1.0),
            load.errors
        );
    }
    if let Some((now, peak)) = memory {
        println!("  serve RSS {} MiB, peak {} MiB", now / 1024, peak / 1024);
    }
    println!("  goal: every new client served within 100 ms while 50 connections stall");
    let label = format!("{workers} workers");
    record(
        "clients",
        &format!("new client p99, nothing else connected ({label})"),
        calm.ms(0.99),
        "ms",
        "",
        None,
    );
    record(
        "clients",
        &format!("new client p99 while 50 connections stall ({label})"),
        stalled.ms(0.99),
        "ms",
        "",
        None,
    );
    record(
        "clients",
        &format!("slowest new client of {clients} while 50 connections stall ({label})"),
        stalled.ms(1.0),
        "ms",
        "< 100 ms",
        Some(stalled.ms(1.0) < 100.0 && stalled.errors == 0),
    );
    record_errors(
        "clients",
        "new clients refused or unanswered",
        calm.errors + stalled.errors,
    );
    Ok(())
}
