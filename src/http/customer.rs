//! The customer's own pages: the status page and its JSON, report downloads, the refund
//! request, and "my orders" by sign-in link.
//!
//! A status token is the only key to an order: an unknown or malformed one answers the same
//! 404 as a path that does not exist. Forms that change something (refund, sign-in) answer 403
//! unless the browser says they came from our own origin, and change nothing then.

use std::collections::BTreeMap;

use serde_json::json;
use time::OffsetDateTime;

use super::documents;
use super::page::{
    base, message, no_store, not_found, order_by_token, plausible_token, refund_rule, render,
    wants_json,
};
use super::site::{Site, origin_of};
use super::{After, Handled, Request, Response};
use crate::app::App;
use crate::db::{SignInLimits, SignInRequest};
use crate::money;
use crate::order::{RefundSource, Rejection, Status};

/// Longest refund reason a customer may send.
pub const MAX_REASON: usize = 1_000;

/// Where the order is, as the customer's progress bar shows it.
fn progress(status: Status) -> &'static str {
    match status {
        Status::PendingPayment => "awaiting_payment",
        Status::Paid => "paid",
        Status::Generating => "generating",
        Status::AwaitingReview => "reviewing",
        Status::Completed | Status::RefundRequested => "ready",
        Status::Failed | Status::Refunding => "refunding",
        Status::Refunded => "refunded",
        Status::Expired => "expired",
        Status::Disputed => "disputed",
    }
}

/// Still changing on its own: the page keeps refreshing.
fn pending(status: Status) -> bool {
    matches!(
        status,
        Status::PendingPayment
            | Status::Paid
            | Status::Generating
            | Status::AwaitingReview
            | Status::Failed
            | Status::Refunding
    )
}

/// The report went out to the customer (and may be shown): a refund request keeps it shown,
/// but not one made while the report still waited for review.
fn delivered(order: &crate::order::Order) -> bool {
    matches!(order.status, Status::Completed | Status::RefundRequested)
        && order.completed_at.is_some()
}

/// `GET /status/{token}`.
pub fn status_page(app: &App, site: &Site, token: &str, query: &str) -> anyhow::Result<Response> {
    let Some(order) = order_by_token(app, token)? else {
        return Ok(not_found(app, site));
    };
    let status = order.order.status;
    let back = (status == Status::PendingPayment)
        .then(|| BackFromStripe::read(query))
        .flatten();
    let written = delivered(&order.order);
    // A finished report erased under the retention policy: the page says so.
    let erased = written && order.erased;
    let (heading, text) = match status {
        Status::Completed if erased => (
            "Your report was erased",
            "As our privacy notice says, answers and reports are erased some time after the order. Write to us if you need anything about this order.",
        ),
        // Back from Stripe, which says the payment went through: the notice says it is being
        // confirmed, and the order stays unpaid until compass has read it from Stripe.
        Status::PendingPayment if back == Some(BackFromStripe::Confirming) => {
            ("Confirming your payment", "")
        }
        Status::PendingPayment => (
            "Waiting for your payment",
            "We have not seen your payment yet. If you paid a moment ago, this page updates by itself.",
        ),
        Status::Paid | Status::Generating => (
            "Your report is being written",
            "Payment received. Your report usually takes a few minutes; this page updates by itself, and we email you when it is ready.",
        ),
        Status::AwaitingReview => (
            "Your report is being reviewed",
            "Your report is written, and a consultant reads it before it is sent to you; this page updates by itself, and we email you when it is ready.",
        ),
        Status::Completed => ("Your report is ready", ""),
        Status::RefundRequested => (
            "Your refund request is with us",
            "A person looks at it, usually within one business day, and writes to you.",
        ),
        Status::Failed => (
            "We could not write your report",
            "We are sorry: even after several attempts your report could not be written. Your payment is being refunded in full; we email you when it is done.",
        ),
        Status::Refunding => (
            "Your refund is on its way",
            "Your payment is being refunded; we email you when it is done. Refunds reach your card within 5 to 10 business days.",
        ),
        Status::Refunded => (
            "Refunded",
            "This order was refunded. Refunds reach your card within 5 to 10 business days.",
        ),
        Status::Expired => (
            "This order expired",
            "It was not paid in time. You are welcome to start again.",
        ),
        Status::Disputed => (
            "This payment is disputed",
            "Your bank told us you disputed the payment. Write to us if this is a mistake.",
        ),
    };
    let method = app.method_of(order.method_version.as_deref())?;
    let step = |name: &str, done: bool, current: bool| json!({ "name": name, "done": done, "current": current });
    // With the consultant's review, a step of its own between writing and ready.
    let mut names = vec!["Paid", "Writing"];
    if app.config.policy.review_reports || status == Status::AwaitingReview {
        names.push("Review");
    }
    names.push("Ready");
    let last = names.len() - 1;
    let current = match status {
        Status::Paid | Status::Generating => Some(1),
        Status::AwaitingReview => Some(2),
        Status::Completed | Status::RefundRequested if written => Some(last),
        _ => None,
    };
    let steps: Vec<_> = current.map_or_else(Vec::new, |at| {
        let names = names.iter().enumerate();
        names
            .map(|(n, name)| step(name, n < at || at == last, n == at))
            .collect()
    });
    let report = if written && !erased {
        json!({
            "overall": order.score,
            "level": order
                .score
                .and_then(|score| method.level_of(score).map(|l| l.name.clone())),
            "pdf_url": format!("/status/{token}/report.pdf"),
            "html_url": format!("/status/{token}/report.html"),
            "view_url": format!("/status/{token}/report"),
        })
    } else {
        json!(null)
    };
    let refundable = order.order.refundable_cents() > 0
        && matches!(
            status,
            Status::Paid | Status::Generating | Status::AwaitingReview | Status::Completed
        );
    let mut data = base(app, heading);
    data["heading"] = json!(heading);
    data["text"] = json!(text);
    data["token"] = json!(token);
    data["order_number"] = json!(order.id[..8].to_ascii_uppercase());
    data["tier"] = json!(method.tier_name(&order.tier));
    data["company"] = json!(order.company);
    let amount = money::format(order.order.amount_cents, &order.order.currency);
    data["amount"] = json!(match status {
        Status::PendingPayment => format!("{amount}, not paid yet"),
        Status::Expired => format!("{amount}, not paid"),
        _ => format!("paid {amount}"),
    });
    // Unpaid, and not being confirmed: the way to the payment page (a customer who closed it
    // has only this link), in the notice after a decline, as a button otherwise.
    data["pay_url"] = json!(
        (status == Status::PendingPayment && back != Some(BackFromStripe::Confirming))
            .then(|| format!("/pay/{token}"))
    );
    data["refunded"] = if order.order.refunded_cents > 0 {
        json!(money::format(
            order.order.refunded_cents,
            &order.order.currency
        ))
    } else {
        json!(null)
    };
    data["progress"] = json!(progress(status));
    data["steps"] = json!(steps);
    data["report"] = report;
    data["refundable"] = json!(refundable);
    data["max_reason"] = json!(MAX_REASON);
    data["refund_rule"] = json!(refund_rule(&app.config));
    data["refresh"] = json!(pending(status));
    data["documents"] = json!(documents::listed(&app.db, &order.id, token)?);
    data["payment_notice"] = json!(back.map(|back| json!({
        "text": back.notice(),
        "declined": back == BackFromStripe::Declined,
    })));
    Ok(no_store(render(site, 200, "status", data)?))
}

/// What Stripe's redirect back from the payment says (`redirect_status`), for an order not
/// paid yet. Never proof of payment: an order is paid only when compass reads the
/// PaymentIntent back from Stripe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BackFromStripe {
    /// Stripe took the payment (or a bank is still answering): it is being confirmed.
    Confirming,
    /// Declined or abandoned: nothing was charged, the payment page may be tried again.
    Declined,
}

impl BackFromStripe {
    fn read(query: &str) -> Option<BackFromStripe> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        let (_, said) = pairs.iter().find(|(name, _)| name == "redirect_status")?;
        match said.as_str() {
            "succeeded" | "processing" => Some(BackFromStripe::Confirming),
            "failed" | "requires_payment_method" => Some(BackFromStripe::Declined),
            _ => None,
        }
    }

    /// Words for the customer.
    fn notice(self) -> &'static str {
        match self {
            BackFromStripe::Confirming => {
                "Stripe is confirming your payment. This page updates by itself as soon as it \
                 is confirmed; there is nothing more to do."
            }
            BackFromStripe::Declined => {
                "Your payment did not go through, and nothing was charged. You can try again \
                 with another card."
            }
        }
    }
}

/// `GET /api/orders/{token}`: what the status page polls.
pub fn status_json(app: &App, token: &str) -> anyhow::Result<Response> {
    let Some(order) = order_by_token(app, token)? else {
        return Ok(Response::json_error(404, "not_found", "no such order"));
    };
    let status = order.order.status;
    let ready = delivered(&order.order) && !order.erased;
    Ok(no_store(Response::json(
        200,
        &json!({
            "order": order.id[..8].to_ascii_uppercase(),
            "status": status.as_str(),
            "progress": progress(status),
            "pending": pending(status),
            "tier": order.tier.as_str(),
            "amount_cents": order.order.amount_cents,
            "refunded_cents": order.order.refunded_cents,
            "currency": order.order.currency,
            "report": if ready { json!({
                "pdf_url": format!("/status/{token}/report.pdf"),
                "html_url": format!("/status/{token}/report.html"),
            }) } else { json!(null) },
            "documents": documents::listed(&app.db, &order.id, token)?,
        }),
    )))
}

/// `GET /status/{token}/report.pdf`, `report.html` (downloads, counted) and `report` (the page
/// shows it inline; not a download).
pub fn report_file(
    app: &mut App,
    site: &Site,
    token: &str,
    file: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Response> {
    let (kind, content_type, download) = match file {
        "report.pdf" => ("pdf", "application/pdf", true),
        "report.html" => ("html", "text/html; charset=utf-8", true),
        "report" => ("html", "text/html; charset=utf-8", false),
        _ => return Ok(not_found(app, site)),
    };
    let Some(order) = order_by_token(app, token)? else {
        return Ok(not_found(app, site));
    };
    if !delivered(&order.order) {
        return Ok(not_found(app, site));
    }
    let Some(content) = app.db.artifact(&order.id, kind)? else {
        return Ok(not_found(app, site));
    };
    if download {
        app.db.record_download(&order.id, now)?;
    }
    let disposition = if download {
        let method = app.method_of(order.method_version.as_deref())?;
        format!(
            "attachment; filename=\"{}-{}.{kind}\"",
            method.report_file_stem(),
            &order.id[..8]
        )
    } else {
        "inline".to_owned()
    };
    Ok(no_store(Response {
        status: 200,
        headers: vec![
            ("Content-Type", content_type.to_owned()),
            ("Content-Disposition", disposition),
            // The report is our own HTML with the customer's words escaped; no script runs in
            // it, and only its own status page may frame it.
            (
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
                    .to_owned(),
            ),
            ("X-Frame-Options", "SAMEORIGIN".to_owned()),
        ],
        body: content,
    }))
}

/// Whether a state-changing form came from our own pages: the browser's `Origin` (or, from
/// older browsers, `Referer`) must be our public origin.
fn same_origin(app: &App, req: &Request) -> bool {
    let ours = origin_of(&app.config.public_url);
    match (req.header("origin"), req.header("referer")) {
        (Some(origin), _) => origin_of(origin) == ours,
        (None, Some(referer)) => origin_of(referer) == ours,
        (None, None) => false,
    }
}

fn forbidden(app: &App, site: &Site) -> Response {
    message(
        app,
        site,
        403,
        "Not sent from our page",
        "For your safety this form only works from our own page. Open your status page and try again.",
    )
}

fn form(req: &Request) -> BTreeMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(&req.body)
        .map(|pairs| pairs.into_iter().collect())
        .unwrap_or_default()
}

/// `POST /status/{token}/refund`: the customer asks for their money back.
pub fn request_refund(
    app: &mut App,
    site: &Site,
    req: &Request,
    token: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Handled> {
    let Some(order) = order_by_token(app, token)? else {
        return Ok(not_found(app, site).into());
    };
    if !same_origin(app, req) {
        return Ok(forbidden(app, site).into());
    }
    let reason = form(req)
        .get("reason")
        .map(|r| r.trim().to_owned())
        .unwrap_or_default();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Ok(message(app, site,
            422,
            "Tell us why, briefly",
            &format!("A refund request needs a reason of 1 to {MAX_REASON} characters. Go back and try again."),
        )
        .into());
    }
    match customer_refund(app, &order.id, &reason, now)? {
        Ok(after) => Ok(Handled {
            response: Response::redirect(&format!("{}/status/{token}", app.config.public_url)),
            after,
        }),
        Err(rejected) => {
            let text = match rejected.why {
                Rejection::AlreadyApplied => {
                    "You have already asked for a refund of this order; we are on it."
                }
                _ => {
                    "This order cannot be refunded from this page. Write to us and we will sort it out."
                }
            };
            Ok(message(app, site, 409, "No refund requested", text).into())
        }
    }
}

/// A customer's refund request, decided by the configured rule: on approval, the refund to
/// ask Stripe for after the answer.
fn customer_refund(
    app: &mut App,
    order_id: &str,
    reason: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Result<Option<After>, crate::order::InvalidTransition>> {
    let policy = app.config.policy.clone();
    let step = app.db.request_refund(
        order_id,
        RefundSource::Customer,
        reason,
        None,
        &policy,
        "customer",
        now,
    )?;
    Ok(step.map(|step| {
        (step.order.status == Status::Refunding).then(|| After::IssueRefunds(order_id.to_owned()))
    }))
}

/// `POST /api/orders/{token}/refund`: the refund request as JSON, `{"reason": "..."}`. The
/// status token in the path is the credential; a browser on another site cannot send JSON
/// here without a CORS preflight, which compass never grants.
pub fn request_refund_json(
    app: &mut App,
    req: &Request,
    token: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Handled> {
    let Some(order) = order_by_token(app, token)? else {
        return Ok(Response::json_error(404, "not_found", "no such order").into());
    };
    if !wants_json(req) {
        return Ok(Response::json_error(
            415,
            "unsupported_media_type",
            "send the request as application/json",
        )
        .into());
    }
    #[derive(serde::Deserialize)]
    struct Body {
        reason: Option<serde_json::Value>,
    }
    let Ok(body) = serde_json::from_slice::<Body>(&req.body) else {
        return Ok(
            Response::json_error(400, "malformed_json", "the body must be a JSON object").into(),
        );
    };
    let reason = match body.reason {
        Some(serde_json::Value::String(reason)) => reason.trim().to_owned(),
        _ => String::new(),
    };
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Ok(Response::invalid_fields(&[crate::method::FieldError {
            field: "reason".to_owned(),
            message: format!("a reason of 1 to {MAX_REASON} characters is needed"),
        }])
        .into());
    }
    match customer_refund(app, &order.id, &reason, now)? {
        Ok(after) => {
            let status = match after {
                Some(_) => Status::Refunding,
                None => Status::RefundRequested,
            };
            Ok(Handled {
                response: Response::json(
                    202,
                    &json!({ "status": status.as_str(), "approved": after.is_some() }),
                ),
                after,
            })
        }
        Err(rejected) => {
            let (code, message) = match rejected.why {
                Rejection::AlreadyApplied => (
                    "already_requested",
                    "a refund of this order was already requested",
                ),
                _ => (
                    "not_refundable",
                    "this order cannot be refunded by request; write to support",
                ),
            };
            Ok(Response::json_error(409, code, message).into())
        }
    }
}

/// `GET /my`: ask for a sign-in link.
pub fn my_page(app: &App, site: &Site) -> anyhow::Result<Response> {
    let mut data = base(app, "My orders");
    data["sent"] = json!(false);
    render(site, 200, "my", data)
}

/// `POST /my`: send a sign-in link. The answer is the same whether or not the address has
/// orders, and whether or not it asked too often.
pub fn request_sign_in(
    app: &mut App,
    site: &Site,
    req: &Request,
    now: OffsetDateTime,
) -> anyhow::Result<Response> {
    if !same_origin(app, req) {
        return Ok(forbidden(app, site));
    }
    let email = form(req)
        .get("email")
        .map(|e| e.trim().to_owned())
        .unwrap_or_default();
    if crate::address::check(&email).is_err() {
        let mut data = base(app, "My orders");
        data["sent"] = json!(false);
        data["error"] = json!("Enter the email address you ordered with.");
        return render(site, 422, "my", data);
    }
    match app.db.request_sign_in(&email, SignInLimits::RULE, now)? {
        SignInRequest::Queued => tracing::info!("sign-in link queued"),
        SignInRequest::NoCustomer => tracing::info!("sign-in asked for an address without orders"),
        SignInRequest::TooMany => tracing::warn!("sign-in links asked for too often"),
    }
    let mut data = base(app, "My orders");
    data["sent"] = json!(true);
    data["minutes"] = json!(SignInLimits::RULE.ttl.whole_minutes());
    render(site, 200, "my", data)
}

/// `GET /my/{token}`: a button that uses the link. A GET never uses it up, so mail scanners
/// that follow links cannot spend it.
pub fn sign_in_page(
    app: &App,
    site: &Site,
    token: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Response> {
    if !plausible_token(token) || !app.db.sign_in_is_valid(token, now)? {
        return Ok(link_gone(app, site));
    }
    let mut data = base(app, "My orders");
    data["token"] = json!(token);
    Ok(no_store(render(site, 200, "sign_in", data)?))
}

/// `POST /my/{token}`: uses the link up and lists the customer's orders.
pub fn my_orders(
    app: &mut App,
    site: &Site,
    req: &Request,
    token: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Response> {
    if !same_origin(app, req) {
        return Ok(forbidden(app, site));
    }
    if !plausible_token(token) {
        return Ok(link_gone(app, site));
    }
    let Some(customer) = app.db.use_sign_in(token, now)? else {
        return Ok(link_gone(app, site));
    };
    let mut orders = Vec::new();
    for o in app.db.customer_orders(customer)? {
        orders.push(json!({
            "number": o.id[..8].to_ascii_uppercase(),
            "company": o.company,
            "tier": app.method.tier_name(&o.tier),
            "amount": money::format(o.amount_cents, &o.currency),
            "status": o.status.as_str().replace('_', " "),
            "date": o.created_at.date().to_string(),
            "status_url": format!("/status/{}", o.status_token),
            "documents": documents::listed(&app.db, &o.id, &o.status_token)?,
        }));
    }
    let mut data = base(app, "My orders");
    data["orders"] = json!(orders);
    Ok(no_store(render(site, 200, "my_orders", data)?))
}

fn link_gone(app: &App, site: &Site) -> Response {
    message(
        app,
        site,
        404,
        "This sign-in link does not work any more",
        "Sign-in links work once, for 30 minutes. Ask for a new one on the My orders page.",
    )
}
