//! The routes in process, through the plain `Request -> Response` seam, on an in-memory
//! database: what needs no socket, no Stripe and no second process. The binary's own tests
//! (tests/it) keep what needs them: payments, webhooks signed by Stripe's rules, slow clients.

use std::path::Path;

use time::OffsetDateTime;
use time::macros::datetime;

use super::{Request, Response, Site, handle};
use crate::app::App;
use crate::config::Config;
use crate::db::{Db, NewOrder};

const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

fn no_env(_: &str) -> Option<String> {
    None
}

/// An installation with `config` (TOML) and an empty in-memory store.
fn install(config: &str) -> (App, Site) {
    let config = Config::parse(config, Path::new("/nonexistent/compass.toml"), &no_env)
        .expect("a valid configuration");
    let app = App::new(config, Db::open_in_memory().expect("db")).expect("app");
    let site = Site::new(&app.config).expect("site");
    (app, site)
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.to_vec(),
        remote: Some("203.0.113.7".parse().expect("an address")),
    }
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn text(response: &Response) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

fn json(response: &Response) -> serde_json::Value {
    serde_json::from_slice(&response.body).expect("a JSON answer")
}

#[test]
fn the_pages_may_load_stripe_js_from_where_it_is_configured_and_nowhere_else() {
    // The policies of the home page under `config`.
    let policies = |config: &str| {
        let (mut app, site) = install(config);
        let answer = handle(&mut app, &site, &request("GET", "/", &[], b""), NOW).response;
        let of = |name| header(&answer, name).map(str::to_owned).expect(name);
        (of("Content-Security-Policy"), of("Permissions-Policy"))
    };
    let (csp, _) = policies("");
    for part in [
        "script-src 'self' https://js.stripe.com https://*.js.stripe.com;",
        "connect-src 'self' https://api.stripe.com;",
        "https://hooks.stripe.com",
    ] {
        assert!(csp.contains(part), "{part}: {csp}");
    }

    // A test's stand-in on this machine: its origin, and the fake API's, replace Stripe's.
    let (csp, permissions) = policies(
        "[stripe]\njs_url = \"http://127.0.0.1:9911/stripe.js\"\n\
         api_base = \"http://127.0.0.1:9912\"\n",
    );
    for part in [
        "script-src 'self' http://127.0.0.1:9911;",
        "frame-src 'self' http://127.0.0.1:9911;",
        "connect-src 'self' http://127.0.0.1:9912;",
    ] {
        assert!(csp.contains(part), "{part}: {csp}");
    }
    assert!(!csp.contains("stripe.com"), "{csp}");
    assert_eq!(
        permissions,
        "camera=(), microphone=(), geolocation=(), payment=(self \"http://127.0.0.1:9911\")"
    );
}

#[test]
fn every_answer_carries_the_security_headers() {
    let (mut app, site) = install("");
    for path in ["/", "/terms", "/nowhere", "/healthz", "/api/openapi.json"] {
        let answer = handle(&mut app, &site, &request("GET", path, &[], b""), NOW).response;
        let csp = header(&answer, "Content-Security-Policy").expect("a CSP");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header(&answer, "X-Frame-Options"), Some("DENY"), "{path}");
        assert_eq!(header(&answer, "X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(
            header(&answer, "Strict-Transport-Security"),
            None,
            "no HSTS for an http:// site"
        );
    }
    let (mut app, site) = install("[business]\npublic_url = \"https://compass.example.org\"\n");
    let answer = handle(&mut app, &site, &request("GET", "/", &[], b""), NOW).response;
    assert!(header(&answer, "Strict-Transport-Security").is_some());
}

#[test]
fn the_favicon_every_browser_asks_for_is_never_a_404() {
    let (mut app, site) = install("");
    let icon = handle(
        &mut app,
        &site,
        &request("GET", "/favicon.ico", &[], b""),
        NOW,
    )
    .response;
    assert_eq!(
        icon.status, 204,
        "no logo: nothing, and no error in the console"
    );
    assert!(icon.body.is_empty());
}

#[test]
fn unknown_places_answer_404_in_the_shape_the_client_reads() {
    let (mut app, site) = install("");
    let page = handle(&mut app, &site, &request("GET", "/nowhere", &[], b""), NOW).response;
    assert_eq!(page.status, 404);
    assert!(text(&page).contains("There is nothing at this address"));
    // A malformed status token is the same 404 as a path that does not exist.
    let token = handle(
        &mut app,
        &site,
        &request("GET", "/status/abc", &[], b""),
        NOW,
    )
    .response;
    assert_eq!((token.status, token.body.clone()), (404, page.body.clone()));
    let api = handle(
        &mut app,
        &site,
        &request("GET", "/api/nowhere", &[], b""),
        NOW,
    )
    .response;
    assert_eq!(api.status, 404);
    assert_eq!(json(&api)["error"]["code"], "not_found");
}

#[test]
fn a_known_path_with_the_wrong_method_says_which_it_takes() {
    let (mut app, site) = install("");
    let page = handle(&mut app, &site, &request("DELETE", "/terms", &[], b""), NOW).response;
    assert_eq!((page.status, header(&page, "Allow")), (405, Some("GET")));
    let api = handle(
        &mut app,
        &site,
        &request("GET", "/webhooks/stripe", &[], b""),
        NOW,
    );
    assert_eq!(api.response.status, 405);
    assert_eq!(header(&api.response, "Allow"), Some("POST"));
    assert_eq!(json(&api.response)["error"]["code"], "method_not_allowed");
}

#[test]
fn an_unsigned_webhook_is_refused_and_nothing_is_stored() {
    let (mut app, site) = install("");
    // Secrets come from the environment only; this installation has the webhook secret.
    app.config.stripe.webhook_secrets =
        Config::parse("", Path::new("/nonexistent/compass.toml"), &|name: &str| {
            (name == "COMPASS_STRIPE_WEBHOOK_SECRETS").then(|| "whsec_x".to_owned())
        })
        .expect("valid")
        .stripe
        .webhook_secrets;
    let body = br#"{"id":"evt_1","type":"payment_intent.succeeded","created":1,"data":{"object":{"id":"pi_1"}}}"#;
    let handled = handle(
        &mut app,
        &site,
        &request(
            "POST",
            "/webhooks/stripe",
            &[("Stripe-Signature", "t=1,v1=00")],
            body,
        ),
        NOW,
    );
    assert_eq!(handled.response.status, 400);
    assert_eq!(json(&handled.response)["error"]["code"], "bad_signature");
    assert_eq!(handled.after, None, "no work after a refused webhook");
    assert!(app.db.stripe_event("evt_1").expect("read").is_none());
}

#[test]
fn an_order_with_wrong_fields_is_refused_field_by_field_and_not_stored() {
    let (mut app, site) = install("");
    let body = br#"{"company": "", "email": "not an address", "tier": "gold"}"#;
    let answer = handle(
        &mut app,
        &site,
        &request(
            "POST",
            "/orders",
            &[("Content-Type", "application/json")],
            body,
        ),
        NOW,
    )
    .response;
    assert_eq!(answer.status, 422);
    let fields: Vec<String> = json(&answer)["error"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["field"].as_str().unwrap_or_default().to_owned())
        .collect();
    for field in ["company", "email", "tier"] {
        assert!(fields.iter().any(|f| f == field), "{field}: {fields:?}");
    }
    assert_eq!(app.db.count_orders(&Default::default()).expect("count"), 0);
}

#[test]
fn sign_in_requests_past_the_hourly_limit_wait_and_are_told_how_long() {
    let (mut app, site) = install("[limits]\nsign_ins_per_hour = 2\n");
    let ask = |app: &mut App| {
        handle(
            app,
            &site,
            &request(
                "POST",
                "/my",
                &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Origin", "http://127.0.0.1:8080"),
                ],
                b"email=ada%40example.com",
            ),
            NOW,
        )
        .response
    };
    assert_eq!(ask(&mut app).status, 200);
    assert_eq!(ask(&mut app).status, 200);
    let refused = ask(&mut app);
    assert_eq!(refused.status, 429);
    let wait: i64 = header(&refused, "Retry-After")
        .and_then(|s| s.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=1800).contains(&wait), "{wait}");
}

#[test]
fn the_status_page_and_its_json_show_the_order_its_token_opens() {
    let (mut app, site) = install("");
    let order = app
        .db
        .create_order(
            &NewOrder {
                email: "ada@example.com".into(),
                name: "Ada Lovelace".into(),
                company: "Analytical Engines Ltd".into(),
                tier: "standard".parse().expect("an id"),
                amount_cents: 14_900,
                currency: "usd".into(),
                questionnaire: serde_json::json!({}),
                method_version: app.method.version.clone(),
                terms: None,
            },
            NOW,
        )
        .expect("order");
    let path = format!("/status/{}", order.status_token);
    let page = handle(&mut app, &site, &request("GET", &path, &[], b""), NOW).response;
    assert_eq!(page.status, 200);
    assert!(text(&page).contains("Analytical Engines Ltd"));
    assert_eq!(header(&page, "Cache-Control"), Some("no-store"));
    let api = format!("/api/orders/{}", order.status_token);
    let answer = handle(&mut app, &site, &request("GET", &api, &[], b""), NOW).response;
    let status = json(&answer);
    assert_eq!(status["status"], "pending_payment");
    assert_eq!(status["amount_cents"], 14_900);
    assert_eq!(status["report"], serde_json::Value::Null);
    let payment_page = format!("<a class=\"button\" href=\"/pay/{}\">", order.status_token);
    assert!(text(&page).contains(&payment_page), "the way back to pay");

    // What Stripe's redirect says is shown, and never taken for a payment.
    for (said, shown) in [
        ("succeeded", "Stripe is confirming your payment"),
        ("requires_payment_method", "Your payment did not go through"),
        ("failed", "Your payment did not go through"),
    ] {
        let back = format!("{path}?payment_intent=pi_x&redirect_status={said}");
        let page = handle(&mut app, &site, &request("GET", &back, &[], b""), NOW).response;
        assert!(text(&page).contains(shown), "{said}: {}", text(&page));
        let retry = format!("href=\"/pay/{}\"", order.status_token);
        assert_eq!(text(&page).contains(&retry), said != "succeeded", "{said}");
        let heading = if said == "succeeded" {
            "<h1>Confirming your payment</h1>"
        } else {
            "<h1>Waiting for your payment</h1>"
        };
        assert!(text(&page).contains(heading), "{said}");
        assert!(text(&page).contains("$149.00, not paid yet"), "{said}");
        assert!(
            !text(&page).contains(&payment_page),
            "{said}: the notice says it"
        );
    }
    let forged = format!("{path}?redirect_status=<script>");
    let page = handle(&mut app, &site, &request("GET", &forged, &[], b""), NOW).response;
    assert!(!text(&page).contains("<script>"));
    let still = app.db.order(&order.id).expect("read").expect("order");
    assert_eq!(still.order.status, crate::order::Status::PendingPayment);
}
