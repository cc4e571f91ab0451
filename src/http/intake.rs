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
use crate::method::questionnaire::{Questionnaire, Test};
use crate::method::{Condition, FieldError, Kind, Question};
use crate::money;
use crate::order::Status;
use crate::payments;

pub(super) fn intake_page(
    app: &App,
    site: &Site,
    values: &BTreeMap<String, String>,
    errors: &[FieldError],
    notice: Option<&str>,
    status: u16,
    now: OffsetDateTime,
) -> anyhow::Result<Response> {
    let method = &app.method;
    let q = &method.questionnaire;
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
    let question = |question: &Question| question_json(question, q, &value, error_of(&question.id));
    let categories: Vec<_> = q
        .categories
        .iter()
        .map(|category| {
            let note_field = format!("{}_note", category.id);
            let on_scale = category.questions.iter().any(|q| q.kind == Kind::Scale);
            json!({
                "title": category.title,
                "scale_hint": on_scale.then_some(&q.scale.hint),
                "questions": category.questions.iter().map(question).collect::<Vec<_>>(),
                "note": category.note.then(|| json!({
                    "field": note_field,
                    "value": value(&note_field),
                    "error": error_of(&note_field),
                })),
            })
        })
        .collect();
    let free_text: Vec<_> = q.free_text.iter().map(question).collect();
    let tiers: Vec<_> = method
        .tiers
        .iter()
        .map(|tier| {
            json!({
                "id": tier.id.as_str(),
                "title": tier.name,
                "price": price_label(app, tier.price, &method.currency),
                "description": tier.description,
                "checked": value("tier") == tier.id.as_str(),
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
    ];
    let shown_values: BTreeMap<&str, String> = known.iter().map(|f| (*f, value(f))).collect();
    let shown_errors: BTreeMap<&str, Option<&str>> = known
        .iter()
        .chain(&["industry", "employees", "tier"])
        .chain(&crate::invoice::FIELDS)
        .map(|f| (*f, error_map.get(f).copied()))
        .collect();
    let mut data = base(app, &format!("{} assessment", method.assessment.name));
    data["assessment"] = json!(method.assessment);
    data["values"] = json!(shown_values);
    data["errors"] = if errors.is_empty() {
        json!(null)
    } else {
        json!(shown_errors)
    };
    data["industries"] = json!(industries);
    data["employees"] = json!(choices(&q.employees, "employees"));
    data["categories"] = json!(categories);
    data["free_text"] = json!(free_text);
    data["conditional"] = json!(q.questions().any(|question| question.show_when.is_some()));
    data["tiers"] = json!(tiers);
    data["billing"] = match &app.config.invoices {
        Some(rules) => billing_json(rules, &value),
        None => json!(null),
    };
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

/// What the price holds of tax, for the payment page: the customer sees what the invoice says.
fn tax_line(terms: &crate::invoice::Terms, currency: &str) -> String {
    let sale = &terms.sale;
    let invoice = "Your invoice comes with the payment confirmation.";
    match sale.treatment {
        crate::invoice::Treatment::ReverseCharge => format!(
            "No VAT: reverse charge, to {} ({}). {invoice}",
            terms.buyer.as_ref().map_or("", |b| b.name.as_str()),
            terms
                .buyer
                .as_ref()
                .and_then(|b| b.tax_id.as_deref())
                .unwrap_or_default()
        ),
        crate::invoice::Treatment::Taxed if sale.tax_cents > 0 => format!(
            "Including {} tax ({}). {invoice}",
            money::format(sale.tax_cents, currency),
            sale.rate
        ),
        crate::invoice::Treatment::Taxed => invoice.to_owned(),
    }
}

/// A tier's price as the form shows it: with the tax inside, or "+ tax" when it is added.
fn price_label(app: &App, cents: i64, currency: &str) -> String {
    let price = money::format(cents, currency);
    match &app.config.invoices {
        Some(rules) if !rules.tax.prices_include_tax => format!("{price} + tax"),
        _ => price,
    }
}

/// The billing fields as the form shows them, with what they change about the tax.
fn billing_json(
    rules: &crate::invoice::Rules,
    value: &dyn Fn(&str) -> String,
) -> serde_json::Value {
    let chosen = value("billing_country").trim().to_ascii_uppercase();
    let countries: Vec<_> = crate::invoice::country::all()
        .into_iter()
        .map(|(code, name)| json!({ "code": code, "name": name, "selected": code == chosen }))
        .collect();
    let values: BTreeMap<&str, String> = crate::invoice::FIELDS
        .iter()
        .map(|f| (*f, value(f)))
        .collect();
    let tax = &rules.tax;
    let mut hint = if tax.prices_include_tax {
        "Prices include tax.".to_owned()
    } else {
        "Tax is added to the price at payment.".to_owned()
    };
    if tax.reverse_charge && crate::invoice::country::is_eu(&tax.seller_country) {
        hint.push_str(
            " A business in another EU country with a VAT number pays no VAT (reverse charge).",
        );
    }
    json!({
        "required": rules.billing_required,
        "countries": countries,
        "values": values,
        "tax_hint": hint,
    })
}

/// A condition as intake.js reads it: `{"question", and one of "equals", "any_of",
/// "at_least", "at_most"}`.
fn when_json(condition: &Condition) -> String {
    let mut when = json!({ "question": condition.question });
    match &condition.test {
        Test::Equals(value) => when["equals"] = json!(value),
        Test::AnyOf(values) => when["any_of"] = json!(values),
        Test::AtLeast(n) => when["at_least"] = json!(n),
        Test::AtMost(n) => when["at_most"] = json!(n),
    }
    when.to_string()
}

/// One question as the form shows it, with the answer given so far.
fn question_json(
    question: &Question,
    q: &Questionnaire,
    value: &dyn Fn(&str) -> String,
    error: Option<String>,
) -> serde_json::Value {
    let given = value(&question.id);
    let chosen: Vec<&str> = given.split(',').map(str::trim).collect();
    let option = |id: &str, label: &str| json!({ "value": id, "label": label, "checked": chosen.contains(&id) });
    let (kind, options) = match &question.kind {
        Kind::Scale => (
            "scale",
            (q.scale.min..=q.scale.max)
                .map(|v| {
                    let v = v.to_string();
                    option(&v, &v)
                })
                .collect(),
        ),
        Kind::Single(options) => (
            "single",
            options.iter().map(|o| option(&o.id, &o.label)).collect(),
        ),
        Kind::Multiple(options) => (
            "multiple",
            options.iter().map(|o| option(&o.id, &o.label)).collect(),
        ),
        Kind::YesNo { .. } => ("yes_no", vec![option("yes", "Yes"), option("no", "No")]),
        Kind::Number { .. } => ("number", Vec::new()),
        Kind::Text => ("text", Vec::new()),
    };
    let unit = match &question.kind {
        Kind::Number { unit, .. } => unit.clone(),
        _ => None,
    };
    json!({
        "field": question.id,
        "text": question.text,
        "hint": question.hint,
        "required": question.required,
        "condition": question.show_when.as_ref().map(|c| c.describe(q)),
        // For intake.js, which hides the question until its condition holds.
        "when": question.show_when.as_ref().map(when_json),
        "scale": kind == "scale",
        "choice": kind == "single" || kind == "yes_no",
        "multiple": kind == "multiple",
        "number": kind == "number",
        "text_answer": kind == "text",
        "unit": unit,
        "options": options,
        "value": given,
        "error": error,
    })
}

/// The submitted fields: a form, or a JSON object of strings, numbers, booleans (yes/no
/// questions) and lists of strings (multiple choice). Several values of one field (a form's
/// checkboxes, a JSON list) arrive as one, comma-separated.
fn submitted_fields(
    req: &Request,
    q: &Questionnaire,
) -> Result<BTreeMap<String, String>, Response> {
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
            let kind = q.question(&key).map(|question| &question.kind);
            let text = match (value, kind) {
                (serde_json::Value::Null, _) => continue,
                (serde_json::Value::String(s), _) => s,
                // JSON does not tell 4 from 4.0.
                (serde_json::Value::Number(n), Some(Kind::Scale | Kind::Number { .. })) => {
                    match n.as_f64() {
                        Some(x) if x.fract() == 0.0 && x.abs() < 1e12 => format!("{x:.0}"),
                        _ => n.to_string(),
                    }
                }
                (serde_json::Value::Bool(yes), Some(Kind::YesNo { .. })) => {
                    if yes { "yes" } else { "no" }.to_owned()
                }
                (serde_json::Value::Array(items), Some(Kind::Multiple(_)))
                    if items.iter().all(serde_json::Value::is_string) =>
                {
                    items
                        .iter()
                        .filter_map(serde_json::Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                }
                (_, kind) => {
                    let message = match kind {
                        Some(Kind::Scale | Kind::Number { .. }) => "must be a whole number",
                        Some(Kind::YesNo { .. }) => "must be true or false",
                        Some(Kind::Multiple(_)) => "must be a list of the options' ids",
                        _ => "must be a string",
                    };
                    errors.push(FieldError {
                        message: message.to_owned(),
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
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in pairs.into_iter().filter(|(_, v)| !v.is_empty()) {
            fields
                .entry(key)
                .and_modify(|all| {
                    all.push(',');
                    all.push_str(&value);
                })
                .or_insert(value);
        }
        Ok(fields)
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
    let mut fields = match submitted_fields(req, &app.method.questionnaire) {
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
    // The billing fields go to the invoice, the rest to the questionnaire; the form shows
    // every problem of both at once.
    let shown = fields.clone();
    let billing = match &app.config.invoices {
        Some(rules) => rules.billing(&mut fields),
        None => Ok(None),
    };
    let (intake, billing) = match (app.method.validate(&fields), billing) {
        (Ok(intake), Ok(billing)) => (intake, billing),
        (intake, billing) => {
            let mut errors = intake.err().unwrap_or_default();
            errors.extend(billing.err().unwrap_or_default());
            if json {
                return Ok(Response::invalid_fields(&errors));
            }
            return intake_page(app, site, &shown, &errors, None, 422, now);
        }
    };
    let (order, intent) = payments::place_order(app, &intake, billing, now)?;
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
        // Paid, or being paid (a bank's answer pending): the order's status, never a second
        // payment form.
        Ok(intent) if matches!(intent.status.as_str(), "succeeded" | "processing") => {
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
    let mut data = base(app, "Payment");
    data["tier"] = json!(
        app.method_of(order.method_version.as_deref())?
            .tier_name(&order.tier)
    );
    data["company"] = json!(order.company);
    data["price"] = json!(money::format(
        order.order.amount_cents,
        &order.order.currency
    ));
    data["tax_line"] = json!(
        app.db
            .sale_terms(&order.id)?
            .map(|terms| tax_line(&terms, &order.order.currency))
    );
    data["publishable_key"] = json!(app.config.stripe.publishable_key);
    data["stripe_js"] = json!(app.config.stripe.js_url);
    data["client_secret"] = json!(intent.client_secret.unwrap_or_default());
    data["return_url"] = json!(status_url(app, &order));
    let mut response = render(site, 200, "payment", data)?;
    response
        .headers
        .push(("Cache-Control", "no-store".to_owned()));
    Ok(response)
}
