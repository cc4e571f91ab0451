//! `GET /metrics` for Prometheus, on its own listen address (`serve --metrics-listen`), never
//! on the public one. Requests and their latency are counted in memory by `serve`; everything
//! else (orders, emails, Stripe events, Claude's calls, tokens and cost) is read from the
//! store at each scrape, so it covers `process` too and survives restarts.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::db::Db;
use crate::order::Status;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

/// What `serve` counts itself; shared by its workers.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            // 0.5 ms to about 8 s.
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_5, 2.0, 15))
            }),
        }
    }
}

/// A path as a route template: labels never carry tokens or ids.
pub fn route_of(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => "/",
        ["healthz"] => "/healthz",
        ["metrics"] => "/metrics",
        ["orders"] => "/orders",
        ["assets", _] => "/assets/{file}",
        ["favicon.ico"] => "/favicon.ico",
        ["pay", _] => "/pay/{token}",
        ["status", _] => "/status/{token}",
        ["status", _, "refund"] => "/status/{token}/refund",
        ["status", _, _] => "/status/{token}/{file}",
        ["api", "orders", _] => "/api/orders/{token}",
        ["api", "orders", _, "refund"] => "/api/orders/{token}/refund",
        ["api", "openapi.json"] => "/api/openapi.json",
        ["terms"] => "/terms",
        ["privacy"] => "/privacy",
        ["refund-policy"] => "/refund-policy",
        ["my"] => "/my",
        ["my", _] => "/my/{token}",
        ["webhooks", "stripe"] => "/webhooks/stripe",
        _ => "other",
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn observe(&self, method: &str, path: &str, status: u16, took: Duration) {
        let route = route_of(path);
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method: method.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
    }

    /// The exposition: our counters and the store's counts now.
    pub fn render(&self, db: &Db) -> anyhow::Result<String> {
        let counts = db.store_counts()?;
        let mut registry = Registry::with_prefix("compass");
        registry.register(
            "http_requests",
            "Requests answered, by route, method and status",
            self.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer, by route",
            self.latency.clone(),
        );

        let orders = Family::<Vec<(&'static str, String)>, Gauge>::default();
        // Every status, zeros included, so that an alert on `failed` has a series to watch.
        for status in Status::ALL {
            orders
                .get_or_create(&vec![("status", status.as_str().to_owned())])
                .set(0);
        }
        for (status, n) in counts.orders {
            orders.get_or_create(&vec![("status", status)]).set(n);
        }
        registry.register("orders", "Orders, by status", orders);

        let emails = Family::<Vec<(&'static str, String)>, Gauge>::default();
        for (kind, status, n) in counts.emails {
            emails
                .get_or_create(&vec![("kind", kind), ("status", status)])
                .set(n);
        }
        registry.register("emails", "Emails in the outbox, by kind and status", emails);

        let events = Family::<Vec<(&'static str, String)>, Gauge>::default();
        for (kind, outcome, n) in counts.stripe_events {
            events
                .get_or_create(&vec![("type", kind), ("outcome", outcome)])
                .set(n);
        }
        registry.register(
            "stripe_events",
            "Stripe events received, by type and outcome (handled, failing, pending)",
            events,
        );

        let calls = Family::<Vec<(&'static str, String)>, Gauge>::default();
        let tokens = Family::<Vec<(&'static str, String)>, Gauge>::default();
        let cost = Family::<Vec<(&'static str, String)>, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let seconds = Family::<Vec<(&'static str, String)>, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        for (outcome, n, input, output, micros, millis) in counts.claude_calls {
            let by = vec![("outcome", outcome.clone())];
            calls.get_or_create(&by).set(n);
            tokens
                .get_or_create(&vec![
                    ("outcome", outcome.clone()),
                    ("direction", "input".into()),
                ])
                .set(input);
            tokens
                .get_or_create(&vec![("outcome", outcome), ("direction", "output".into())])
                .set(output);
            cost.get_or_create(&by).set(micros as f64 / 1_000_000.0);
            seconds.get_or_create(&by).set(millis as f64 / 1_000.0);
        }
        registry.register("claude_calls", "Claude API calls, by outcome", calls);
        registry.register(
            "claude_tokens",
            "Claude tokens, by outcome and direction",
            tokens,
        );
        registry.register(
            "claude_cost_dollars",
            "Claude's cost at the configured prices",
            cost,
        );
        registry.register("claude_call_seconds", "Time spent in Claude calls", seconds);

        let mut text = String::new();
        encode(&mut text, &registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_never_carry_tokens() {
        let token = "x".repeat(43);
        assert_eq!(route_of(&format!("/status/{token}")), "/status/{token}");
        assert_eq!(
            route_of(&format!("/status/{token}/report.pdf")),
            "/status/{token}/{file}"
        );
        assert_eq!(route_of(&format!("/my/{token}")), "/my/{token}");
        assert_eq!(route_of("/wp-admin/setup.php"), "other");
    }

    #[test]
    fn the_exposition_names_every_family() {
        let metrics = Metrics::default();
        metrics.observe("GET", "/", 200, Duration::from_millis(3));
        metrics.observe("GET", "/", 200, Duration::from_millis(4));
        let db = Db::open_in_memory().expect("db");
        let text = metrics.render(&db).expect("render");
        assert!(
            text.contains(r#"compass_http_requests_total{route="/",method="GET",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains("compass_http_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(
            text.contains("compass_orders{status=\"failed\"} 0"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
