//! Routing: a plain `Request` in, a plain `Response` out. No tiny_http here, so every route is
//! tested without a socket.

use std::collections::BTreeMap;

use serde_json::json;
use time::OffsetDateTime;

use super::limits::{Action, client_ip};
use super::{Request, Response, customer, openapi, policies};
use super::{captcha, form_guard};
use crate::app::App;
use crate::db::StoredOrder;
use crate::money;
use crate::order::{Status, Tier};
use crate::pages;
use crate::payments::{self, Received, WebhookRejection};
use crate::questionnaire::{FieldError, Intake};

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

/// Answers one request at `now`, with the security headers on every answer.
pub fn handle(app: &mut App, req: &Request, now: OffsetDateTime) -> Handled {
    let mut handled = route(app, req, now);
    let https = app.config.public_url.starts_with("https://");
    let captcha = app.config.captcha.as_ref().map(|c| c.provider.origins());
    secure(&mut handled.response, https, captcha);
    handled
}

/// Pages may load our own assets and Stripe.js (and Stripe's frames and API), nothing else;
/// no page may be framed except where a route says so (the report, by its own status page).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
     script-src 'self' https://js.stripe.com https://*.js.stripe.com; \
     frame-src 'self' https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com; \
     connect-src 'self' https://api.stripe.com; img-src 'self' data:; style-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds each security header the route did not set itself. A configured CAPTCHA's origins are
/// allowed to load its widget.
fn secure(response: &mut Response, https: bool, captcha: Option<&str>) {
    let csp = match captcha {
        None => CONTENT_SECURITY_POLICY.to_owned(),
        Some(origins) => CONTENT_SECURITY_POLICY
            .replace("script-src 'self'", &format!("script-src 'self' {origins}"))
            .replace("frame-src 'self'", &format!("frame-src 'self' {origins}"))
            .replace(
                "connect-src 'self'",
                &format!("connect-src 'self' {origins}"),
            ),
    };
    let mut defaults = vec![
        ("Content-Security-Policy", csp),
        ("X-Frame-Options", "DENY".to_owned()),
        ("X-Content-Type-Options", "nosniff".to_owned()),
        ("Referrer-Policy", "same-origin".to_owned()),
        (
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(), payment=(self \"https://js.stripe.com\")"
                .to_owned(),
        ),
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

fn route(app: &mut App, req: &Request, now: OffsetDateTime) -> Handled {
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let result = match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["healthz"]) => Ok(healthz(app)),
        ("GET", [""]) => intake_page(app, &BTreeMap::new(), &[], None, 200, now),
        ("GET", [page @ ("terms" | "privacy" | "refund-policy")]) => policies::page(app, page),
        ("GET", ["assets", "site.css"]) => Ok(asset("text/css", pages::SITE_CSS)),
        ("GET", ["assets", "pay.js"]) => Ok(asset("text/javascript", pages::PAY_JS)),
        ("GET", ["assets", "status.js"]) => Ok(asset("text/javascript", pages::STATUS_JS)),
        ("POST", ["orders"]) => match over_limit(app, req, Action::Order, now) {
            Some(refused) => Ok(refused),
            None => post_order(app, req, now),
        },
        ("GET", ["pay", token]) => payment_page(app, token, now),
        ("GET", ["status", token]) => customer::status_page(app, token),
        ("GET", ["status", token, file]) => customer::report_file(app, token, file, now),
        ("POST", ["status", token, "refund"]) => {
            if let Some(refused) = over_limit(app, req, Action::RefundRequest, now) {
                return refused.into();
            }
            return customer::request_refund(app, req, token, now).unwrap_or_else(|err| {
                tracing::error!(
                    route = super::metrics::route_of(&req.path),
                    "request failed: {err:#}"
                );
                failure(app).into()
            });
        }
        ("GET", ["api", "orders", token]) => customer::status_json(app, token),
        ("POST", ["api", "orders", token, "refund"]) => {
            match over_limit(app, req, Action::RefundRequest, now) {
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
        ("GET", ["api", "openapi.json"]) => Ok(openapi::response()),
        ("GET", ["my"]) => customer::my_page(app),
        ("POST", ["my"]) => match over_limit(app, req, Action::SignIn, now) {
            Some(refused) => Ok(refused),
            None => customer::request_sign_in(app, req, now),
        },
        ("GET", ["my", token]) => customer::sign_in_page(app, token, now),
        ("POST", ["my", token]) => customer::my_orders(app, req, token, now),
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
        _ => Ok(not_found(app)),
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
                failure(app)
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
fn over_limit(app: &App, req: &Request, action: Action, now: OffsetDateTime) -> Option<Response> {
    let limits = &app.config.limits;
    let per_hour = match action {
        Action::Order => limits.orders_per_hour,
        Action::RefundRequest => limits.refund_requests_per_hour,
        Action::SignIn => limits.sign_ins_per_hour,
    };
    let client = client_ip(req, &limits.trusted_proxies)?;
    let wait = app.limiter.check(action, client, per_hour, now).err()?;
    tracing::warn!(%client, ?action, "rate limited");
    let minutes = (wait.whole_seconds() + 59) / 60;
    let text =
        format!("Too many requests from your address. Please try again in {minutes} minute(s).");
    let mut response = if wants_json(req) || super::is_api(&req.path) {
        Response::json_error(429, "rate_limited", &text)
    } else {
        message(app, 429, "Please wait a little", &text)
    };
    response
        .headers
        .push(("Retry-After", wait.whole_seconds().to_string()));
    Some(response)
}

fn failure(app: &App) -> Response {
    message(
        app,
        500,
        "Something went wrong",
        "Please try again in a minute.",
    )
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

/// The page every page is built from.
pub(super) fn base(app: &App, title: &str) -> serde_json::Value {
    json!({
        "title": title,
        "business": app.config.business_name,
        "support_email": app.config.support_email,
    })
}

pub(super) fn render(
    app: &App,
    status: u16,
    page: &str,
    data: serde_json::Value,
) -> anyhow::Result<Response> {
    Ok(Response::html(status, app.pages.render_value(page, data)?))
}

pub(super) fn message(app: &App, status: u16, heading: &str, text: &str) -> Response {
    let mut data = base(app, heading);
    data["heading"] = json!(heading);
    data["message"] = json!(text);
    render(app, status, "message", data).unwrap_or_else(|_| Response::text(status, text))
}

pub(super) fn not_found(app: &App) -> Response {
    message(
        app,
        404,
        "Not found",
        "There is nothing at this address. If you followed a link from an email, check that \
         it was copied whole.",
    )
}

pub(super) const TIER_DESCRIPTIONS: [&str; 3] = [
    "Overall score, six pillar scores with findings, five quick wins.",
    "Starter, plus recommendations per pillar, risks and a 90-day roadmap.",
    "Standard, plus a use-case portfolio with effort and impact, a 12-month roadmap and budget ranges.",
];

fn intake_page(
    app: &App,
    values: &BTreeMap<String, String>,
    errors: &[FieldError],
    notice: Option<&str>,
    status: u16,
    now: OffsetDateTime,
) -> anyhow::Result<Response> {
    let q = &app.questionnaire;
    let error_of = |field: &str| {
        errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.clone())
    };
    let value = |field: &str| values.get(field).cloned().unwrap_or_default();
    let choices = |list: &[String], field: &str| -> Vec<serde_json::Value> {
        list.iter()
            .map(|name| json!({ "name": name, "selected": value(field) == *name }))
            .collect()
    };
    let mut industries = choices(&q.industries, "industry");
    industries.push(json!({ "name": "Other", "selected": value("industry") == "Other" }));
    let pillars: Vec<_> = q
        .pillars
        .iter()
        .map(|pillar| {
            let questions: Vec<_> = pillar
                .questions
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    let field = format!("{}_{}", pillar.id, i + 1);
                    let options: Vec<_> = (1..=5)
                        .map(|v| json!({ "value": v, "checked": value(&field) == v.to_string() }))
                        .collect();
                    json!({ "text": text, "field": field, "options": options, "error": error_of(&field) })
                })
                .collect();
            let note_field = format!("{}_note", pillar.id);
            json!({
                "title": pillar.title,
                "questions": questions,
                "note_field": note_field,
                "note": value(&note_field),
                "note_error": error_of(&note_field),
            })
        })
        .collect();
    let tiers: Vec<_> = Tier::ALL
        .iter()
        .zip(TIER_DESCRIPTIONS)
        .map(|(tier, description)| {
            json!({
                "id": tier.as_str(),
                "title": tier.title(),
                "price": money::format(app.config.prices.of(*tier), &app.config.prices.currency),
                "description": description,
                "checked": value("tier") == tier.as_str(),
            })
        })
        .collect();
    let error_map: BTreeMap<&str, &str> = errors
        .iter()
        .map(|e| (e.field.as_str(), e.message.as_str()))
        .collect();
    let known = [
        "company",
        "website",
        "industry_other",
        "country",
        "name",
        "email",
        "process",
        "anything_else",
    ];
    let shown_values: BTreeMap<&str, String> = known.iter().map(|f| (*f, value(f))).collect();
    let shown_errors: BTreeMap<&str, Option<&str>> = known
        .iter()
        .chain(&["industry", "employees", "tier"])
        .map(|f| (*f, error_map.get(f).copied()))
        .collect();
    let mut data = base(app, "AI readiness assessment");
    data["values"] = json!(shown_values);
    data["errors"] = if errors.is_empty() {
        json!(null)
    } else {
        json!(shown_errors)
    };
    data["industries"] = json!(industries);
    data["employees"] = json!(choices(&q.employees, "employees"));
    data["pillars"] = json!(pillars);
    data["free_text"] = json!(q.free_text);
    data["tiers"] = json!(tiers);
    data["notice"] = json!(notice);
    data["started"] = json!(app.form_key.started(now));
    data["captcha"] = match &app.config.captcha {
        Some(c) => json!({
            "class": c.provider.widget_class(),
            "site_key": c.site_key,
            "script": c.provider.script(),
        }),
        None => json!(null),
    };
    render(app, status, "intake", data)
}

/// The submitted fields: a form, or a JSON object of strings and numbers.
fn submitted_fields(req: &Request) -> Result<BTreeMap<String, String>, Response> {
    let content_type = req
        .header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        let value: serde_json::Value = serde_json::from_slice(&req.body).map_err(|err| {
            Response::json_error(
                400,
                "malformed_json",
                &format!("the body is not JSON: {err}"),
            )
        })?;
        let serde_json::Value::Object(object) = value else {
            return Err(Response::json_error(
                400,
                "malformed_json",
                "the body must be a JSON object",
            ));
        };
        let mut fields = BTreeMap::new();
        let mut errors = Vec::new();
        for (key, value) in object {
            // An answer (`{pillar}_{n}`) is a number, or its digit as text; the rest is text.
            let answer = key
                .rsplit_once('_')
                .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            let text = match value {
                serde_json::Value::String(s) => s,
                // JSON does not tell 4 from 4.0.
                serde_json::Value::Number(n) if answer => match n.as_f64() {
                    Some(x) if x.fract() == 0.0 && x.abs() < 1e6 => format!("{x:.0}"),
                    _ => n.to_string(),
                },
                serde_json::Value::Null => continue,
                _ => {
                    errors.push(FieldError {
                        message: if answer {
                            "must be a whole number from 1 to 5".to_owned()
                        } else {
                            "must be a string".to_owned()
                        },
                        field: key,
                    });
                    continue;
                }
            };
            fields.insert(key, text);
        }
        if !errors.is_empty() {
            return Err(Response::invalid_fields(&errors));
        }
        Ok(fields)
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&req.body)
            .map_err(|_| Response::text(400, "The form could not be read."))?;
        Ok(pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect())
    } else {
        Err(Response::json_error(
            415,
            "unsupported_media_type",
            "send the questionnaire as application/json (or as the web form)",
        ))
    }
}

fn wants_json(req: &Request) -> bool {
    req.header("content-type")
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"))
}

fn post_order(app: &mut App, req: &Request, now: OffsetDateTime) -> anyhow::Result<Response> {
    let json = wants_json(req);
    let mut fields = match submitted_fields(req) {
        Ok(fields) => fields,
        Err(response) => return Ok(response),
    };
    let honeypot = fields.remove(form_guard::HONEYPOT);
    let started = fields.remove(form_guard::STARTED);
    // API clients have no form to have been shown; the honeypot still applies if they send it.
    let min_seconds = app.config.limits.min_form_seconds;
    let checked = if json {
        form_guard::check_honeypot(honeypot.as_deref())
    } else {
        app.form_key
            .check(honeypot.as_deref(), started.as_deref(), min_seconds, now)
    };
    let captcha_answer = app
        .config
        .captcha
        .as_ref()
        .and_then(|c| fields.remove(c.provider.field()));
    if let Err(suspicion) = checked {
        tracing::warn!(?suspicion, "intake form refused as automated");
        if json {
            return Ok(Response::json_error(
                422,
                "rejected",
                "the submission was refused",
            ));
        }
        return intake_page(
            app,
            &fields,
            &[],
            Some("Please check your answers and send the form again."),
            422,
            now,
        );
    }
    if let Some(captcha) = &app.config.captcha {
        let client = client_ip(req, &app.config.limits.trusted_proxies);
        if let Err(why) = captcha::verify(captcha, captcha_answer.as_deref(), client) {
            tracing::warn!("intake form refused: {why}");
            if json {
                return Ok(Response::json_error(
                    422,
                    "captcha_failed",
                    "the CAPTCHA answer is missing or was not accepted",
                ));
            }
            return intake_page(
                app,
                &fields,
                &[],
                Some("Please complete the check at the end of the form and send it again."),
                422,
                now,
            );
        }
    }
    let intake: Intake = match app.questionnaire.validate(&fields) {
        Ok(intake) => intake,
        Err(errors) if json => return Ok(Response::invalid_fields(&errors)),
        Err(errors) => return intake_page(app, &fields, &errors, None, 422, now),
    };
    let (order, intent) = payments::place_order(app, &intake, now)?;
    let pay_url = format!("{}/pay/{}", app.config.public_url, order.status_token);
    let status_url = status_url(app, &order);
    if !json {
        // Post/Redirect/Get: reloading the payment page never places a second order.
        return Ok(Response::redirect(&pay_url));
    }
    // The order is stored either way: without a client secret (Stripe unreachable), the
    // payment page prepares the payment when the customer opens it.
    let client_secret = match intent {
        Ok(intent) => intent.client_secret,
        Err(err) => {
            tracing::error!(order = %order.id, "cannot create the PaymentIntent: {err}");
            None
        }
    };
    Ok(Response::json(
        201,
        &json!({
            "order_id": order.id,
            "client_secret": client_secret,
            "pay_url": pay_url,
            "status_url": status_url,
            "amount_cents": order.order.amount_cents,
            "currency": order.order.currency,
        }),
    ))
}

fn status_url(app: &App, order: &StoredOrder) -> String {
    format!("{}/status/{}", app.config.public_url, order.status_token)
}

fn payment_page(app: &mut App, token: &str, now: OffsetDateTime) -> anyhow::Result<Response> {
    let Some(order) = customer::order_by_token(app, token)? else {
        return Ok(not_found(app));
    };
    if order.order.status != Status::PendingPayment {
        return Ok(Response::redirect(&status_url(app, &order)));
    }
    let intent = match payments::ensure_payment_intent(app, &order, now)? {
        Ok(intent) if intent.status == "succeeded" => {
            return Ok(Response::redirect(&status_url(app, &order)));
        }
        Ok(intent) => intent,
        Err(err) => {
            tracing::error!(order = %order.id, "cannot prepare the payment: {err}");
            return Ok(message(
                app,
                503,
                "Payment is not available right now",
                "Your answers are saved. Reload this page in a minute to pay.",
            ));
        }
    };
    let company = app
        .db
        .order_facts(&order.id)?
        .map(|f| f.company)
        .unwrap_or_default();
    let mut data = base(app, "Payment");
    data["tier"] = json!(order.tier.title());
    data["company"] = json!(company);
    data["price"] = json!(money::format(
        order.order.amount_cents,
        &order.order.currency
    ));
    data["publishable_key"] = json!(app.config.stripe.publishable_key);
    data["client_secret"] = json!(intent.client_secret.unwrap_or_default());
    data["return_url"] = json!(status_url(app, &order));
    let mut response = render(app, 200, "payment", data)?;
    response
        .headers
        .push(("Cache-Control", "no-store".to_owned()));
    Ok(response)
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
