//! What the benchmarks share: setup, a running `serve`, a closed-loop HTTP load, and the
//! results file `scripts/bench` turns into docs/benchmarks.md.

#![allow(dead_code)] // each bench uses its own part

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A number from the environment, or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `compass init` in `dir`; the config file it wrote.
pub fn init(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let init = Command::new(env!("CARGO_BIN_EXE_compass"))
        .args(["init", "--dir"])
        .arg(dir)
        .output()?;
    anyhow::ensure!(
        init.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    Ok(dir.join("compass.toml"))
}

/// A running release `compass serve`, stopped with SIGTERM when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// `compass serve` with `config` on a free port and `workers` workers.
    /// `BENCH_SERVE_LOG=FILE` writes serve's log there at `info`: a line a request, with the
    /// time its worker took, to tell serve's own time from the wait around it.
    pub fn start(config: &Path, workers: usize, webhook_secret: &str) -> anyhow::Result<Server> {
        let log = std::env::var_os("BENCH_SERVE_LOG");
        let mut child = Command::new(env!("CARGO_BIN_EXE_compass"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--workers",
                &workers.to_string(),
            ])
            .env("COMPASS_CONFIG", config)
            .env("COMPASS_STRIPE_SECRET_KEY", "sk_test_bench")
            .env("COMPASS_STRIPE_WEBHOOK_SECRETS", webhook_secret)
            .env("COMPASS_LOG", if log.is_some() { "info" } else { "warn" })
            .stdout(Stdio::piped())
            .stderr(match &log {
                Some(path) => Stdio::from(std::fs::File::create(path)?),
                None => Stdio::null(),
            })
            .spawn()?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line)?;
        let base = line.trim().trim_start_matches("listening on ").to_owned();
        Ok(Server { child, base })
    }

    /// Resident memory now, and the peak so far (VmHWM), in KiB (Linux only).
    pub fn rss_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let field = |name: &str| -> Option<u64> {
            status
                .lines()
                .find(|l| l.starts_with(name))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// One request of a load: method, path, headers, body.
pub struct Call {
    pub post: bool,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Call {
    /// `POST /webhooks/stripe` with `body`, signed with `secret` at `now` as Stripe signs.
    pub fn webhook(body: String, secret: &str, now: i64) -> Call {
        let signature = compass::stripe::webhook::sign(body.as_bytes(), secret, now);
        Call {
            post: true,
            path: "/webhooks/stripe".into(),
            headers: vec![
                ("Content-Type", "application/json".into()),
                ("Stripe-Signature", signature),
            ],
            body,
        }
    }
}

/// What a load measured.
pub struct Load {
    /// Latencies of the answers with the expected status, sorted.
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub elapsed: Duration,
}

impl Load {
    /// Answers per second.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile of the latency, in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latencies
            .get(((self.latencies.len().saturating_sub(1)) as f64 * q).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
}

/// `total` requests made by `call(i)` over `connections` keep-alive connections, each sending
/// its next request when the last is answered; an answer other than `expect` is an error.
pub fn load(
    base: &str,
    connections: usize,
    total: usize,
    expect: u16,
    call: impl Fn(usize) -> Call + Send + Sync + 'static,
) -> anyhow::Result<Load> {
    run_load(base, connections, total, expect, None, call)
}

/// Open-loop load: request `i` is due at `i / rate` seconds after the start, whether or not
/// earlier answers came back, and its latency counts from when it was due. So a slow answer
/// delays the requests queued behind it and they count it (no coordinated omission), as a
/// real sender at a steady rate would see. `connections` bounds the requests in flight.
pub fn load_paced(
    base: &str,
    connections: usize,
    total: usize,
    expect: u16,
    rate: f64,
    call: impl Fn(usize) -> Call + Send + Sync + 'static,
) -> anyhow::Result<Load> {
    run_load(base, connections, total, expect, Some(rate), call)
}

fn run_load(
    base: &str,
    connections: usize,
    total: usize,
    expect: u16,
    rate: Option<f64>,
    call: impl Fn(usize) -> Call + Send + Sync + 'static,
) -> anyhow::Result<Load> {
    let next = Arc::new(AtomicUsize::new(0));
    let call = Arc::new(call);
    let started = Instant::now();
    let threads: Vec<_> = (0..connections.max(1))
        .map(|_| {
            let (next, call, base) = (Arc::clone(&next), Arc::clone(&call), base.to_owned());
            std::thread::spawn(move || -> (Vec<Duration>, usize) {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .max_idle_connections_per_host(1)
                    .build()
                    .into();
                let (mut latencies, mut errors) = (Vec::new(), 0);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return (latencies, errors);
                    }
                    let c = call(i);
                    let url = format!("{base}{}", c.path);
                    let sent = match rate {
                        None => Instant::now(),
                        Some(rate) => {
                            let due = started + Duration::from_secs_f64(i as f64 / rate);
                            std::thread::sleep(due.saturating_duration_since(Instant::now()));
                            due
                        }
                    };
                    let answer = if c.post {
                        let mut request = agent.post(&url);
                        for (name, value) in &c.headers {
                            request = request.header(*name, value);
                        }
                        request.send(&c.body)
                    } else {
                        let mut request = agent.get(&url);
                        for (name, value) in &c.headers {
                            request = request.header(*name, value);
                        }
                        request.call()
                    };
                    match answer {
                        Ok(mut r) if r.status() == expect => {
                            let _ = r.body_mut().read_to_vec();
                            latencies.push(sent.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0;
    for thread in threads {
        let (mut l, e) = thread
            .join()
            .map_err(|_| anyhow::anyhow!("a client panicked"))?;
        latencies.append(&mut l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Load {
        latencies,
        errors,
        elapsed,
    })
}

/// The run of `runs` (each made by `run(n)`) whose `key` is the median: on a shared machine
/// one run can be a third off either way, and the median of three is what a repeat would show.
pub fn median_of(
    runs: usize,
    mut run: impl FnMut(usize) -> anyhow::Result<Load>,
    key: impl Fn(&Load) -> f64,
) -> anyhow::Result<Load> {
    let mut all = (0..runs.max(1))
        .map(&mut run)
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (n, load) in all.iter().enumerate() {
        println!(
            "  run {}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            n + 1,
            load.rate(),
            load.ms(0.5),
            load.ms(0.99),
            load.errors
        );
    }
    all.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let middle = all.len() / 2;
    Ok(all.swap_remove(middle))
}

/// Adds one figure to the results file named by `BENCH_RESULTS` (JSON lines), which
/// `scripts/bench` turns into docs/benchmarks.md. `goal` is what the figure must meet, as
/// people read it; `met` whether it does.
/// Records `errors` under `figure`, with the goal that there are none.
pub fn record_errors(bench: &str, figure: &str, errors: usize) {
    record(bench, figure, errors as f64, "", "0", Some(errors == 0));
}

pub fn record(bench: &str, figure: &str, value: f64, unit: &str, goal: &str, met: Option<bool>) {
    let Ok(path) = std::env::var("BENCH_RESULTS") else {
        return;
    };
    let line = serde_json::json!({
        "bench": bench, "figure": figure, "value": value, "unit": unit, "goal": goal, "met": met,
    });
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()));
    if let Err(err) = written {
        eprintln!("cannot record to {path}: {err}");
    }
}
