//! The questionnaire and the payment page: the intake form (HTML, with its bot checks and
//! optional CAPTCHA) and its JSON twin, which store the order and prepare its PaymentIntent.

use std::collections::BTreeMap;

use serde_json::json;
use time::OffsetDateTime;

use super::limits::client_ip;
use super::page::{self, base, message, not_found, render, wants_json};
use super::site::Site;
use super::{Request, Response, captcha, form_guard};
use crate::app::App;
use crate::db::StoredOrder;
use crate::money;
use crate::order::{Status, Tier};
use crate::payments;
use crate::questionnaire::{FieldError, Intake};

pub(super) fn intake_page(
    app: &App,
    site: &Site,
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
        .map(|tier| {
            json!({
                "id": tier.as_str(),
                "title": tier.title(),
                "price": money::format(app.config.prices.of(*tier), &app.config.prices.currency),
                "description": tier.description(),
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
    let mut data = base(&app.config, "AI readiness assessment");
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
    data["started"] = json!(site.form_key.started(now));
    data["captcha"] = match &app.config.captcha {
        Some(c) => json!({
            "class": c.provider.widget_class(),
            "site_key": c.site_key,
            "script": c.provider.script(),
        }),
        None => json!(null),
    };
    render(site, status, "intake", data)
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

pub(super) fn post_order(
    app: &mut App,
    site: &Site,
    req: &Request,
    now: OffsetDateTime,
) -> anyhow::Result<Response> {
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
        site.form_key
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
            site,
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
                site,
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
        Err(errors) => return intake_page(app, site, &fields, &errors, None, 422, now),
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

pub(super) fn payment_page(
    app: &mut App,
    site: &Site,
    token: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Response> {
    let Some(order) = page::order_by_token(app, token)? else {
        return Ok(not_found(app, site));
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
                site,
                503,
                "Payment is not available right now",
                "Your answers are saved. Reload this page in a minute to pay.",
            ));
        }
    };
    let mut data = base(&app.config, "Payment");
    data["tier"] = json!(order.tier.title());
    data["company"] = json!(order.company);
    data["price"] = json!(money::format(
        order.order.amount_cents,
        &order.order.currency
    ));
    data["publishable_key"] = json!(app.config.stripe.publishable_key);
    data["client_secret"] = json!(intent.client_secret.unwrap_or_default());
    data["return_url"] = json!(status_url(app, &order));
    let mut response = render(site, 200, "payment", data)?;
    response
        .headers
        .push(("Cache-Control", "no-store".to_owned()));
    Ok(response)
}
