//! A tiny scripted HTTP server on 127.0.0.1, for answers the local fakes cannot give
//! (Stripe-Should-Retry, 409, 5xx, Retry-After). It records what it was sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One scripted answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(status: u16, body: serde_json::Value) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Answer {
        self.headers.push((name, value.to_owned()));
        self
    }
}

/// A request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub request_line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serves `answers` in order, one connection each, then stops.
pub struct FakeHttp {
    pub base: String,
    received: Arc<Mutex<Vec<Received>>>,
    /// Set when it is dropped: the answers not asked for are not waited for.
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHttp {
    pub fn start(answers: Vec<Answer>) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for answer in answers {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let received = read_request(&stream).expect("a whole request");
                log.lock().expect("log").push(received);
                let mut out = format!(
                    "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                    answer.status,
                    answer.body.len()
                );
                for (name, value) in &answer.headers {
                    out.push_str(&format!("{name}: {value}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&answer.body);
                let mut stream = stream;
                let _ = stream.write_all(out.as_bytes());
            }
        });
        FakeHttp {
            base,
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// What was received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("log").clone()
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        // Unblock a thread still waiting in accept() so the test process can end, however
        // many answers were never asked for (a test that failed early).
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.base.trim_start_matches("http://"));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What becomes of one request on its way through a [`SlowProxy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It waits this long, then goes to Stripe, and Stripe's answer comes back.
    Delayed(std::time::Duration),
    /// It never reaches Stripe: the connection stays open this long and closes unanswered.
    Hangs(std::time::Duration),
    /// Stripe acts on it, but its answer never comes back: the connection stays open this
    /// long and closes. A repeat with the same Idempotency-Key gets the first answer.
    AnswerLost(std::time::Duration),
}

/// A stand-in for a slow Stripe: every request meets the fate `fate()` gives it, on its way
/// to `upstream` (localstripe). Each connection has its own thread, as a real API serves
/// many callers at once.
pub struct SlowProxy {
    pub base: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl SlowProxy {
    /// Every request waits `delay`, then goes on.
    pub fn start(upstream: &str, delay: std::time::Duration) -> SlowProxy {
        SlowProxy::with_fates(upstream, move || Fate::Delayed(delay))
    }

    pub fn with_fates(
        upstream: &str,
        fate: impl Fn() -> Fate + Send + Sync + 'static,
    ) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (upstream, stopping, fate) = (upstream.to_owned(), Arc::clone(&stop), Arc::new(fate));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (upstream, fate) = (upstream.clone(), Arc::clone(&fate));
                std::thread::spawn(move || forward(stream, &upstream, fate()));
            }
        });
        SlowProxy { base, stop }
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(self.base.trim_start_matches("http://"));
    }
}

/// One request off `stream`.
fn read_request(stream: &std::net::TcpStream) -> std::io::Result<Received> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Received {
        request_line: request_line.trim_end().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn forward(stream: std::net::TcpStream, upstream: &str, fate: Fate) {
    let Ok(Received {
        request_line,
        headers,
        body,
    }) = read_request(&stream)
    else {
        return;
    };
    match fate {
        Fate::Delayed(delay) => std::thread::sleep(delay),
        Fate::Hangs(held) => return std::thread::sleep(held),
        Fate::AnswerLost(_) => {}
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("GET"), parts.next().unwrap_or("/"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{upstream}{path}"));
    for (name, value) in &headers {
        if !["host", "content-length", "connection"].contains(&name.to_ascii_lowercase().as_str()) {
            request = request.header(name, value);
        }
    }
    let Ok(request) = request.body(body.into_bytes()) else {
        return;
    };
    let Ok(mut answer) = agent.run(request) else {
        return;
    };
    let status = answer.status().as_u16();
    let content = answer.body_mut().read_to_vec().unwrap_or_default();
    if let Fate::AnswerLost(held) = fate {
        return std::thread::sleep(held);
    }
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        content.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&content);
}
