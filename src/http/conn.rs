//! The public listener's connections: an accept loop, and a thread per connection that reads
//! one request at a time under deadlines (the head parsed by httparse), hands it whole to the
//! web workers, and writes the answer back under a write deadline.
//!
//! tiny_http gives no way to put deadlines on its connections (ARCHITECTURE.md says why): a
//! client that sent a head and never its body held a web worker, and one that pipelined
//! requests without reading the answers held them all. Here a slow client holds only its own
//! connection thread. A worker gets a request only once it is complete, and a connection's
//! next request is read only after its answer is written, so one connection cannot queue work.
//! Connections are capped; past the cap a new one is answered 503 at once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use super::{MAX_FORM_BODY, MAX_WEBHOOK_BODY, Request, Response, is_api};

/// How long clients get, and how many may be connected.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// To send a request's head, to send its body, and to take the answer: each.
    pub deadline: Duration,
    /// Between one answer and the next request on a kept-alive connection.
    pub idle: Duration,
    /// Connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// A request read whole (or refused while reading), and where its answer goes.
pub struct Exchange {
    /// The request, or the answer it gets without a worker's help (413, 408, ...).
    pub request: Result<Request, Response>,
    pub reply: SyncSender<Response>,
}

/// The longest request head; a longer one is answered 431.
const MAX_HEAD: usize = 16 * 1024;

/// Accepts connections until `stop` is set (then a connection to the listener wakes it), each
/// served by a thread of its own that hands requests to `workers`. Returns an error only when
/// the listener itself fails.
pub fn accept(
    listener: &TcpListener,
    limits: Limits,
    workers: &SyncSender<Exchange>,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // Out of file descriptors or memory, or a client that gave up: wait and go on.
            Err(err) if transient(&err) => {
                tracing::warn!("cannot accept a connection: {err}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        if open.fetch_add(1, Ordering::Relaxed) >= limits.max_connections {
            open.fetch_sub(1, Ordering::Relaxed);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = write_response(&stream, &busy(), false, true);
            continue;
        }
        let (open, workers) = (Arc::clone(&open), workers.clone());
        let spawned = std::thread::Builder::new()
            .name("connection".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                serve_connection(stream, peer, limits, &workers);
                open.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(err) = spawned {
            tracing::warn!("cannot start a connection thread: {err}");
        }
    }
}

fn transient(err: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        err.kind(),
        K::ConnectionAborted | K::ConnectionReset | K::Interrupted | K::WouldBlock | K::OutOfMemory
    ) || matches!(err.raw_os_error(), Some(23 | 24 | 105)) // ENFILE, EMFILE, ENOBUFS
}

fn busy() -> Response {
    let mut response = Response::text(503, "Busy, try again in a moment");
    response.headers.push(("Retry-After", "1".to_owned()));
    response
}

/// Requests on one connection, one at a time, until it closes or misbehaves.
fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    limits: Limits,
    workers: &SyncSender<Exchange>,
) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(limits.deadline));
    let mut buffer = Vec::new();
    loop {
        let read = read_request(&stream, &mut buffer, peer, limits);
        let (request, keep_alive) = match read {
            Reading::Closed => return,
            Reading::Request(request, keep_alive) => (Ok(request), keep_alive),
            Reading::Refused(response) => (Err(response), false),
        };
        let head = request.as_ref().is_ok_and(|r| r.method == "HEAD");
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let response = match workers.try_send(Exchange { request, reply }) {
            Ok(()) => match answer.recv() {
                Ok(response) => response,
                Err(_) => return,
            },
            Err(TrySendError::Full(_)) => busy(),
            Err(TrySendError::Disconnected(_)) => return,
        };
        if write_response(&stream, &response, head, !keep_alive).is_err() {
            return;
        }
        if !keep_alive {
            linger(&stream);
            return;
        }
    }
}

/// Closes after an answer without losing it: a client still sending a body it was refused
/// would otherwise get a reset before it reads the answer. What it sends meanwhile is read
/// and dropped, for two seconds and 16 MiB at most.
fn linger(stream: &TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let until = Instant::now() + Duration::from_secs(2);
    let mut dropped = 0;
    let mut chunk = [0_u8; 16 * 1024];
    while dropped < 16 * 1024 * 1024 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&*stream).read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => dropped += n,
        }
    }
}

/// What reading a request gave.
enum Reading {
    /// The client closed, or sent nothing before the idle time ran out.
    Closed,
    /// A whole request, and whether the connection stays open after its answer.
    Request(Request, bool),
    /// The answer for a request that cannot be read (and the connection closes).
    Refused(Response),
}

fn refused(status: u16, json: bool, code: &str, message: &str) -> Reading {
    Reading::Refused(if json {
        Response::json_error(status, code, message)
    } else {
        Response::text(status, message)
    })
}

fn read_request(
    stream: &TcpStream,
    buffer: &mut Vec<u8>,
    peer: SocketAddr,
    limits: Limits,
) -> Reading {
    // The head: the idle time for its first byte, then the deadline from that byte on.
    let idle_until = Instant::now() + limits.idle;
    let mut head_until = (!buffer.is_empty()).then(|| Instant::now() + limits.deadline);
    // The head is parsed once, when it is whole, and kept as owned strings.
    let (head_len, method, target, http10, headers) = loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(buffer) {
            Ok(httparse::Status::Complete(len)) => {
                let owned: Vec<(String, String)> = parsed
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).trim().to_owned(),
                        )
                    })
                    .collect();
                break (
                    len,
                    parsed.method.unwrap_or("GET").to_owned(),
                    parsed.path.unwrap_or("/").to_owned(),
                    parsed.version == Some(0),
                    owned,
                );
            }
            Ok(httparse::Status::Partial) if buffer.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return refused(431, false, "", "Request Header Fields Too Large");
            }
            Err(_) => return refused(400, false, "", "Bad Request"),
        }
        match read_some(stream, buffer, head_until.unwrap_or(idle_until)) {
            Ok(0) => return Reading::Closed,
            Ok(_) => {
                head_until.get_or_insert_with(|| Instant::now() + limits.deadline);
            }
            Err(err) if timed_out(&err) && head_until.is_some() => {
                return refused(408, false, "", "Request Timeout");
            }
            Err(_) => return Reading::Closed,
        }
    };
    buffer.drain(..head_len);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    let json = is_api(path)
        || header("Content-Type")
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"));
    let keep_alive = match header("Connection").map(str::to_ascii_lowercase) {
        Some(value) if value.contains("close") => false,
        Some(value) if value.contains("keep-alive") => true,
        _ => !http10,
    };
    if header("Transfer-Encoding").is_some() {
        return refused(
            411,
            json,
            "length_required",
            "Length Required: send Content-Length",
        );
    }
    // Two different lengths would let a proxy and compass disagree on where a request ends.
    let lengths: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| v.as_str())
        .collect();
    if lengths.windows(2).any(|pair| pair[0] != pair[1]) {
        return refused(
            400,
            json,
            "bad_request",
            "Bad Request: conflicting Content-Length",
        );
    }
    let length = match header("Content-Length").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(length)) => length,
        Some(Err(_)) => return refused(400, json, "bad_request", "Bad Request"),
    };
    let cap = if path == "/webhooks/stripe" {
        MAX_WEBHOOK_BODY
    } else {
        MAX_FORM_BODY
    };
    if length > cap {
        return refused(413, json, "too_large", "the body is too large");
    }
    if length > buffer.len()
        && header("Expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        && stream_write(stream, b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
    {
        return Reading::Closed;
    }
    let until = Instant::now() + limits.deadline;
    while buffer.len() < length {
        match read_some(stream, buffer, until) {
            Ok(0) => return Reading::Closed,
            Ok(_) => {}
            Err(err) if timed_out(&err) => {
                return refused(408, json, "timeout", "the body did not arrive in time");
            }
            Err(_) => return Reading::Closed,
        }
    }
    let body: Vec<u8> = buffer.drain(..length).collect();
    Reading::Request(
        Request {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            body,
            remote: Some(peer.ip()),
        },
        keep_alive,
    )
}

fn timed_out(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

/// One read into `buffer`, waiting until `until` at the latest.
fn read_some(stream: &TcpStream, buffer: &mut Vec<u8>, until: Instant) -> std::io::Result<usize> {
    let left = until.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(std::io::ErrorKind::TimedOut.into());
    }
    stream.set_read_timeout(Some(left))?;
    let mut chunk = [0_u8; 8 * 1024];
    let n = (&*stream).read(&mut chunk)?;
    buffer.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn stream_write(stream: &TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    (&*stream).write_all(bytes)
}

/// Writes `response` (its head only for HEAD), saying `Connection: close` when it closes.
fn write_response(
    stream: &TcpStream,
    response: &Response,
    head_only: bool,
    close: bool,
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(256 + response.body.len());
    write!(
        out,
        "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Length: {}\r\n",
        response.status,
        reason(response.status),
        http_date(time::OffsetDateTime::now_utc()),
        response.body.len()
    )?;
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    for (name, value) in &response.headers {
        // A header value never carries a line break into the head.
        let value = value.replace(['\r', '\n'], " ");
        write!(out, "{name}: {value}\r\n")?;
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&response.body);
    }
    stream_write(stream, &out)?;
    (&*stream).flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// `Tue, 01 Dec 2026 09:00:00 GMT` (RFC 9110).
fn http_date(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_as_http_wants_them() {
        let at = time::macros::datetime!(2026-12-01 09:05:03 UTC);
        assert_eq!(http_date(at), "Tue, 01 Dec 2026 09:05:03 GMT");
    }
}
