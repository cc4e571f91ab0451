//! The web server. The public listener is `conn.rs`'s own connection layer; tiny_http serves
//! only the private `/metrics` listener.
//!
//! `serve` takes an already-bound listener (tests bind port 0) and runs a fixed pool of worker
//! threads, each with its own database connection, and a small pool of handlers for the work
//! that follows an answer (`events.rs`: Stripe's events, approved refunds), so that no web
//! worker ever waits on Stripe after it has answered. A request becomes a plain [`Request`] with
//! its body read under a per-route cap (413 beyond it), [`routes::handle`] turns it into a
//! [`Response`] with the [`Site`] the workers share, and only then is anything written back.
//! On SIGTERM or SIGINT the workers finish the requests they hold and those already queued,
//! then stop. If the listener fails, `serve` returns an error so the process exits non-zero
//! and systemd restarts it.

mod captcha;
mod conn;
mod customer;
mod documents;
mod events;
pub mod form_guard;
mod intake;
pub mod limits;
pub mod metrics;
mod openapi;
mod page;
mod policies;
mod routes;
mod site;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

use crate::app::App;
use crate::clock;
use crate::db::Db;
use metrics::Metrics;

pub use conn::Limits as ClientLimits;
pub use policies::check as check_policy_pages;
pub use routes::handle;
pub use site::Site;

/// Form and JSON bodies larger than this answer 413.
pub const MAX_FORM_BODY: usize = 64 * 1024;
/// Webhook bodies larger than this answer 413; Stripe's events are far smaller.
pub const MAX_WEBHOOK_BODY: usize = 1024 * 1024;

/// Complete requests waiting for a web worker at most; past that a client is answered 503.
const WAITING_REQUESTS: usize = 256;

/// How long a web worker waits for one Stripe call (retried once) while a customer waits: a
/// slow Stripe costs that customer at most about ten seconds and holds no worker for longer.
pub const STRIPE_CALL_WHILE_WAITING: Duration = Duration::from_secs(4);

/// A response, and work to do once it is sent.
#[derive(Debug)]
pub struct Handled {
    pub response: Response,
    pub after: Option<After>,
}

/// Work after the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum After {
    /// Handle the Stripe event just stored.
    HandleEvent(String),
    /// Ask Stripe for the refunds of this order that were just approved.
    IssueRefunds(String),
}

impl From<Response> for Handled {
    fn from(response: Response) -> Handled {
        Handled {
            response,
            after: None,
        }
    }
}

/// A request, read whole.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The socket's peer (the reverse proxy, in production).
    pub remote: Option<std::net::IpAddr>,
}

impl Request {
    /// The first header called `name`, ignoring case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response, built whole before it is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// An HTML page.
    pub fn html(status: u16, body: String) -> Response {
        Response::with(status, "text/html; charset=utf-8", body.into_bytes())
    }

    /// A JSON document.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::with(status, "application/json", value.to_string().into_bytes())
    }

    /// Plain text.
    pub fn text(status: u16, body: &str) -> Response {
        Response::with(
            status,
            "text/plain; charset=utf-8",
            body.as_bytes().to_vec(),
        )
    }

    /// `303 See Other` to `location`.
    pub fn redirect(location: &str) -> Response {
        let mut response = Response::text(303, "See Other");
        response.headers.push(("Location", location.to_owned()));
        response
    }

    /// The one shape of every JSON error: `{"error": {"code", "message"}}`, with `field` when
    /// one field is at fault (docs/openapi.yaml, `Error`).
    pub fn json_error(status: u16, code: &str, message: &str) -> Response {
        Response::json(
            status,
            &serde_json::json!({ "error": { "code": code, "message": message } }),
        )
    }

    /// 422 for submitted fields that are wrong: the first in `field` and `message`, all of
    /// them in `fields`.
    pub fn invalid_fields(errors: &[crate::method::FieldError]) -> Response {
        let first = errors.first();
        Response::json(
            422,
            &serde_json::json!({ "error": {
                "code": "invalid_fields",
                "message": first.map_or("the submission has invalid fields", |e| e.message.as_str()),
                "field": first.map(|e| e.field.as_str()),
                "fields": errors,
            }}),
        )
    }

    fn with(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body,
        }
    }
}

/// What the server needs besides the listener.
pub struct Serve<'a> {
    /// compass.toml: each worker opens its own `App` from it.
    pub config: &'a Path,
    /// The environment, for secrets and `COMPASS_NOW`.
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// Worker threads: requests handled at once.
    pub workers: usize,
    /// Threads that handle Stripe's events and approved refunds after the answer.
    pub event_workers: usize,
    /// Deadlines and the connection cap for clients.
    pub clients: conn::Limits,
    /// Set to stop: by a signal, or by a test.
    pub shutdown: Arc<AtomicBool>,
    /// Where `/metrics` is served, if anywhere (never on the public listener).
    pub metrics: Option<TcpListener>,
}

impl<'a> Serve<'a> {
    /// A small `serve` for one visitor at a time (the demo, the screenshots): two workers, one
    /// event handler, the default client limits, no metrics.
    pub fn for_one_visitor(
        config: &'a Path,
        env: &'a (dyn Fn(&str) -> Option<String> + Sync),
        shutdown: Arc<AtomicBool>,
    ) -> Serve<'a> {
        Serve {
            config,
            env,
            workers: 2,
            event_workers: 1,
            clients: conn::Limits::default(),
            shutdown,
            metrics: None,
        }
    }
}

/// Serves on `listener` until `shutdown` is set (Ok) or the listener fails (Err).
pub fn serve(listener: TcpListener, options: &Serve<'_>) -> anyhow::Result<()> {
    serve_with(listener, options, || Ok(()))
}

/// `serve`, calling `ready` once every worker is set up and before the first request.
pub fn serve_with(
    listener: TcpListener,
    options: &Serve<'_>,
    ready: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let address = listener
        .local_addr()
        .context("the listener has no address")?;
    // Every worker opens its App before the first request, so a bad setup fails at start.
    let write_lock = Arc::new(std::sync::Mutex::new(()));
    let wal = Arc::new(crate::db::WalFrames::default());
    let apps = (0..options.workers.max(1) + options.event_workers.max(1))
        .map(|_| {
            let mut app = App::open(options.config, options.env)?;
            app.db.share_write_lock(Arc::clone(&write_lock));
            app.db.defer_checkpoints(Arc::clone(&wal))?;
            Ok(app)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let site = Site::new(&apps[0].config)?;
    apps[0].webhook_secrets()?;
    apps[0].stripe()?;
    // A CAPTCHA without its secret would refuse every order; better not to start.
    if let Some(captcha) = &apps[0].config.captcha {
        captcha.secret.get()?;
    }
    let mut apps = apps;
    let handlers = apps.split_off(options.workers.max(1));
    for app in &mut apps {
        app.stripe_deadline(STRIPE_CALL_WHILE_WAITING, 1);
    }
    let (queue, handed_over) = events::queue();
    let (to_workers, exchanges) = std::sync::mpsc::sync_channel(WAITING_REQUESTS);
    let exchanges = std::sync::Mutex::new(exchanges);
    let stop_accepting = AtomicBool::new(false);
    tracing::info!(%address, workers = apps.len(), event_workers = handlers.len(), "serving");
    ready()?;
    let failed = AtomicBool::new(false);
    let counted = Metrics::default();
    let exporter = match &options.metrics {
        Some(listener) => {
            let address = listener
                .local_addr()
                .context("the metrics listener has no address")?;
            let server = tiny_http::Server::from_listener(listener.try_clone()?, None)
                .map_err(|err| anyhow::anyhow!("cannot serve metrics on {address}: {err}"))?;
            Some((server, Db::open(&apps[0].config.database)?))
        }
        None => None,
    };
    // The handlers stop once the web workers have, so no handed-over work is left behind.
    let workers_done = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        let stopping =
            || options.shutdown.load(Ordering::Relaxed) || failed.load(Ordering::Relaxed);
        if let Some((server, db)) = exporter {
            let counted = &counted;
            scope.spawn(move || export(&server, &db, counted, &stopping));
        }
        for (n, mut app) in handlers.into_iter().enumerate() {
            let (handed_over, workers_done) = (&handed_over, &workers_done);
            scope.spawn(move || {
                let done = || workers_done.load(Ordering::Relaxed);
                events::handle(n, &mut app, handed_over, options.env, &done);
            });
        }
        let accepting = {
            let (listener, to_workers) = (&listener, &to_workers);
            let (stop_accepting, failed) = (&stop_accepting, &failed);
            scope.spawn(move || {
                let result = conn::accept(listener, options.clients, to_workers, stop_accepting);
                if result.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                result
            })
        };
        let handles: Vec<_> = apps
            .into_iter()
            .map(|mut app| {
                let exchanges = &exchanges;
                let failed = &failed;
                let counted = &counted;
                let (queue, site) = (queue.clone(), &site);
                scope.spawn(move || {
                    work(&mut app, site, exchanges, options, failed, counted, &queue)
                })
            })
            .collect();
        let result = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker panicked")))
            })
            .collect::<anyhow::Result<Vec<()>>>();
        workers_done.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees it must stop.
        stop_accepting.store(true, Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(address);
        let accepted = accepting
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the accept loop panicked")))
            .context("the listener failed; no more connections are accepted");
        result.and(accepted.map(|()| Vec::<()>::new()))
    });
    result.map(|_| tracing::info!("stopped"))
}

/// Answers `GET /metrics` on the metrics listener until the server stops.
fn export(server: &tiny_http::Server, db: &Db, metrics: &Metrics, stopping: &dyn Fn() -> bool) {
    while !stopping() {
        let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let (status, body) = match (request.method(), request.url()) {
            (tiny_http::Method::Get, "/metrics") => match metrics.render(db) {
                Ok(text) => (200, text),
                Err(err) => {
                    tracing::error!("cannot render the metrics: {err:#}");
                    (500, "cannot read the store\n".to_owned())
                }
            },
            _ => (404, "only /metrics here\n".to_owned()),
        };
        let mut reply = tiny_http::Response::from_string(body).with_status_code(status);
        if let Ok(header) = tiny_http::Header::from_bytes(
            "Content-Type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ) {
            reply.add_header(header);
        }
        let _ = request.respond(reply);
    }
}

fn work(
    app: &mut App,
    site: &Site,
    exchanges: &std::sync::Mutex<std::sync::mpsc::Receiver<conn::Exchange>>,
    options: &Serve<'_>,
    failed: &AtomicBool,
    metrics: &Metrics,
    queue: &events::Queue,
) -> anyhow::Result<()> {
    loop {
        let stopping = options.shutdown.load(Ordering::Relaxed) || failed.load(Ordering::Relaxed);
        let next = {
            let exchanges = exchanges
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if stopping {
                // Finish what is already waiting, then stop.
                exchanges.try_recv().ok()
            } else {
                exchanges.recv_timeout(Duration::from_millis(200)).ok()
            }
        };
        match next {
            Some(exchange) => respond(app, site, exchange, options.env, metrics, queue),
            None if stopping => return Ok(()),
            None => {}
        }
    }
}

fn respond(
    app: &mut App,
    site: &Site,
    exchange: conn::Exchange,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    metrics: &Metrics,
    queue: &events::Queue,
) {
    let started = std::time::Instant::now();
    // Every log line about this request, and the work after it, carries its id; the id is
    // also in the answer's X-Request-Id for a customer's report of a problem.
    let request_id = uuid::Uuid::now_v7().simple().to_string();
    let span = tracing::info_span!("request", id = %request_id);
    let _entered = span.enter();
    let (method, path) = exchange.request.as_ref().map_or_else(
        |_| ("-".to_owned(), "-".to_owned()),
        |r| (r.method.clone(), r.path.clone()),
    );
    let (mut response, after) = match (&exchange.request, clock::now(env)) {
        (Ok(req), Ok(now)) => {
            let handled = handle(app, site, req, now);
            (handled.response, handled.after)
        }
        (Err(response), _) => (response.clone(), None),
        (_, Err(err)) => {
            tracing::error!("no clock: {err:#}");
            (Response::text(500, "Internal Server Error"), None)
        }
    };
    let status = response.status;
    response.headers.push(("X-Request-Id", request_id));
    if exchange.reply.send(response).is_err() {
        tracing::debug!("client went away");
    }
    let took = started.elapsed();
    metrics.observe(&method, &path, status, took);
    // The route, not the path: a path can hold a status token, which opens an order.
    let route = metrics::route_of(&path);
    tracing::info!(%method, route, status, micros = took.as_micros() as u64, "request");
    // Work that must not delay this answer nor any other: the event handlers take it.
    match after {
        Some(After::HandleEvent(id)) => queue.push(events::Work::Event(id)),
        Some(After::IssueRefunds(order)) => queue.push(events::Work::Refunds(order)),
        None => {}
    }
    if let Err(err) = app.db.checkpoint_if_due() {
        tracing::warn!("{err:#}");
    }
}

/// Whether `path` belongs to the JSON API (docs/openapi.yaml), whose every answer is JSON.
pub(crate) fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path == "/webhooks/stripe"
}

/// Binds `address`, with a clear error when it is taken.
pub fn bind(address: &str) -> anyhow::Result<TcpListener> {
    let socket: SocketAddr = address
        .parse()
        .with_context(|| format!("`{address}` is not an address like 127.0.0.1:8080"))?;
    let listener =
        TcpListener::bind(socket).with_context(|| format!("cannot listen on {address}"))?;
    // tiny_http writes a response's head and body separately; with Nagle's algorithm on, a
    // keep-alive client's delayed ACK then holds every page over a few hundred bytes for 40 ms.
    // Accepted connections inherit the option from the listener (Linux).
    socket2::SockRef::from(&listener)
        .set_tcp_nodelay(true)
        .with_context(|| format!("cannot set TCP_NODELAY on {address}"))?;
    Ok(listener)
}

#[cfg(test)]
mod tests;
