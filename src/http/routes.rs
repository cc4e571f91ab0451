//! Routing: a plain `Request` in, a plain `Response` out. No tiny_http here, so every route is
//! tested without a socket.

use std::collections::BTreeMap;

use serde_json::json;
use time::OffsetDateTime;

use super::limits::{Action, client_ip};
use super::page::{failure, message, not_found, wants_json};
use super::site::{SecurityPolicy, Site};
use super::{After, Handled, Request, Response, customer, intake, openapi, policies};
use crate::app::App;
use crate::pages;
use crate::payments::{self, Received, WebhookRejection};

/// Answers one request at `now`, with the security headers on every answer.
pub fn handle(app: &mut App, site: &Site, req: &Request, now: OffsetDateTime) -> Handled {
    let mut handled = route(app, site, req, now);
    let https = app.config.public_url.starts_with("https://");
    secure(&mut handled.response, https, &site.policy);
    handled
}

/// Adds each security header the route did not set itself.
fn secure(response: &mut Response, https: bool, policy: &SecurityPolicy) {
    let mut defaults = vec![
        ("Content-Security-Policy", policy.content.clone()),
        ("X-Frame-Options", "DENY".to_owned()),
        ("X-Content-Type-Options", "nosniff".to_owned()),
        ("Referrer-Policy", "same-origin".to_owned()),
        ("Permissions-Policy", policy.permissions.clone()),
    ];
    if https {
        defaults.push((
            "Strict-Transport-Security",
            "max-age=31536000; includeSubDomains".to_owned(),
        ));
    }
    for (name, value) in defaults {
        if !response
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            response.headers.push((name, value));
        }
    }
}

fn route(app: &mut App, site: &Site, req: &Request, now: OffsetDateTime) -> Handled {
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let result = match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["healthz"]) => Ok(healthz(app)),
        ("GET", [""]) => intake::intake_page(app, site, &BTreeMap::new(), &[], None, 200, now),
        ("GET", [page @ ("terms" | "privacy" | "refund-policy")]) => {
            policies::page(&app.config, &app.method, site, page)
        }
        ("GET", ["assets", "site.css"]) => Ok(asset("text/css", pages::SITE_CSS)),
        ("GET", ["assets", "pay.js"]) => Ok(asset("text/javascript", pages::PAY_JS)),
        ("GET", ["assets", "status.js"]) => Ok(asset("text/javascript", pages::STATUS_JS)),
        ("GET", ["assets", "intake.js"]) => Ok(asset("text/javascript", pages::INTAKE_JS)),
        ("GET", ["assets", "brand.css"]) => Ok(asset(
            "text/css",
            &format!(":root {{ --accent: {}; }}\n", app.method.brand.primary()),
        )),
        ("GET", ["assets", "logo"]) => Ok(logo(app).unwrap_or_else(|| not_found(app, site))),
        // Every browser asks for it: the method's logo, or nothing (204, which browsers do not
        // report as an error the way they report a 404 on every page).
        ("GET", ["favicon.ico"]) => Ok(logo(app).unwrap_or_else(|| Response {
            status: 204,
            headers: vec![("Cache-Control", "public, max-age=86400".to_owned())],
            body: Vec::new(),
        })),
        ("POST", ["orders"]) => match over_limit(app, site, req, Action::Order, now) {
            Some(refused) => Ok(refused),
            None => intake::post_order(app, site, req, now),
        },
        ("GET", ["pay", token]) => intake::payment_page(app, site, token, now),
        ("GET", ["status", token]) => customer::status_page(app, site, token, &req.query),
        ("GET", ["status", token, file]) => customer::report_file(app, site, token, file, now),
        ("GET", ["status", token, "invoices", file]) => {
            super::documents::download(app, site, token, file)
        }
        ("POST", ["status", token, "refund"]) => {
            if let Some(refused) = over_limit(app, site, req, Action::RefundRequest, now) {
                return refused.into();
            }
            return customer::request_refund(app, site, req, token, now).unwrap_or_else(|err| {
                tracing::error!(
                    route = super::metrics::route_of(&req.path),
                    "request failed: {err:#}"
                );
                failure(app, site).into()
            });
        }
        ("GET", ["api", "orders", token]) => customer::status_json(app, token),
        ("POST", ["api", "orders", token, "refund"]) => {
            match over_limit(app, site, req, Action::RefundRequest, now) {
                Some(refused) => Ok(refused),
                None => {
                    return customer::request_refund_json(app, req, token, now).unwrap_or_else(
                        |err| {
                            tracing::error!(
                                route = super::metrics::route_of(&req.path),
                                "request failed: {err:#}"
                            );
                            internal_error().into()
                        },
                    );
                }
            }
        }
        ("GET", ["api", "openapi.json"]) => Ok(openapi::response(
            &app.method,
            app.config.invoices.is_some(),
        )),
        ("GET", ["my"]) => customer::my_page(app, site),
        ("POST", ["my"]) => match over_limit(app, site, req, Action::SignIn, now) {
            Some(refused) => Ok(refused),
            None => customer::request_sign_in(app, site, req, now),
        },
        ("GET", ["my", token]) => customer::sign_in_page(app, site, token, now),
        ("POST", ["my", token]) => customer::my_orders(app, site, req, token, now),
        ("POST", ["webhooks", "stripe"]) => return webhook(app, req, now),
        (method, path) if let Some(allow) = allowed_methods(path) => {
            let mut response = if super::is_api(&req.path) {
                Response::json_error(
                    405,
                    "method_not_allowed",
                    &format!("{method} is not allowed here; use {allow}"),
                )
            } else {
                Response::text(405, "Method Not Allowed")
            };
            response.headers.push(("Allow", allow.to_owned()));
            Ok(response)
        }
        _ if super::is_api(&req.path) => Ok(Response::json_error(
            404,
            "not_found",
            "there is nothing at this address",
        )),
        _ => Ok(not_found(app, site)),
    };
    result
        .unwrap_or_else(|err| {
            tracing::error!(
                route = super::metrics::route_of(&req.path),
                "request failed: {err:#}"
            );
            if super::is_api(&req.path) || wants_json(req) {
                internal_error()
            } else {
                failure(app, site)
            }
        })
        .into()
}

fn internal_error() -> Response {
    Response::json_error(
        500,
        "internal",
        "something went wrong; try again in a minute",
    )
}

/// The methods a known path answers, for a 405's `Allow` header.
fn allowed_methods(path: &[&str]) -> Option<&'static str> {
    Some(match path {
        ["healthz" | "terms" | "privacy" | "refund-policy"]
        | ["pay" | "status", _]
        | ["status", _, "report" | "report.pdf" | "report.html"]
        | ["status", _, "invoices", _]
        | ["api", "orders", _]
        | ["api", "openapi.json"] => "GET",
        ["orders"]
        | ["webhooks", "stripe"]
        | ["status", _, "refund"]
        | ["api", "orders", _, "refund"] => "POST",
        ["my"] | ["my", _] => "GET, POST",
        _ => return None,
    })
}

/// 429 with Retry-After when the client has used up `action` for now.
fn over_limit(
    app: &App,
    site: &Site,
    req: &Request,
    action: Action,
    now: OffsetDateTime,
) -> Option<Response> {
    let limits = &app.config.limits;
    let per_hour = match action {
        Action::Order => limits.orders_per_hour,
        Action::RefundRequest => limits.refund_requests_per_hour,
        Action::SignIn => limits.sign_ins_per_hour,
    };
    let client = client_ip(req, &limits.trusted_proxies)?;
    let wait = site.limiter.check(action, client, per_hour, now).err()?;
    tracing::warn!(%client, ?action, "rate limited");
    let minutes = (wait.whole_seconds() + 59) / 60;
    let text =
        format!("Too many requests from your address. Please try again in {minutes} minute(s).");
    let mut response = if wants_json(req) || super::is_api(&req.path) {
        Response::json_error(429, "rate_limited", &text)
    } else {
        message(app, site, 429, "Please wait a little", &text)
    };
    response
        .headers
        .push(("Retry-After", wait.whole_seconds().to_string()));
    Some(response)
}

fn healthz(app: &App) -> Response {
    match app.db.ping() {
        Ok(()) => Response::text(200, "ok\n"),
        Err(err) => {
            tracing::error!("health check failed: {err:#}");
            Response::text(503, "database unavailable\n")
        }
    }
}

fn asset(content_type: &str, text: &str) -> Response {
    let mut response = Response::text(200, text);
    response.headers = vec![
        ("Content-Type", format!("{content_type}; charset=utf-8")),
        ("Cache-Control", "public, max-age=3600".to_owned()),
    ];
    response
}

/// The method's logo, if it has one.
fn logo(app: &App) -> Option<Response> {
    let logo = app.method.brand.logo.as_ref()?;
    let bytes = app.method.files().get(&logo.path)?;
    Some(Response {
        status: 200,
        headers: vec![
            ("Content-Type", logo.mime.to_owned()),
            ("Cache-Control", "public, max-age=3600".to_owned()),
        ],
        body: bytes.clone(),
    })
}

fn webhook(app: &mut App, req: &Request, now: OffsetDateTime) -> Handled {
    let signature = req.header("stripe-signature");
    match payments::receive_webhook(app, &req.body, signature, now) {
        Ok(received) => Handled {
            response: Response::json(
                200,
                &json!({ "received": true, "duplicate": received == Received::Duplicate }),
            ),
            after: match received {
                Received::Stored(id) => Some(After::HandleEvent(id)),
                Received::Recorded | Received::Duplicate => None,
            },
        },
        Err(WebhookRejection::Signature(err)) => {
            tracing::warn!("webhook refused: {err}");
            Response::json_error(400, "bad_signature", &err.to_string()).into()
        }
        Err(WebhookRejection::Malformed(err)) => {
            tracing::warn!("webhook refused: {err}");
            Response::json_error(400, "malformed_event", "the body is not a Stripe event").into()
        }
        Err(WebhookRejection::Internal(err)) => {
            tracing::error!("webhook not stored: {err:#}");
            Response::json_error(500, "internal", "not stored; retry").into()
        }
    }
}
