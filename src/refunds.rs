//! Refunds, carried out. Every refund compass decides on (a customer's request inside the
//! rule, the operator's `compass refund`, the automatic one after an order failed for good)
//! is first a `pending` row, written with the step that decided it. This asks Stripe for each
//! such row with the row's own Idempotency-Key (`compass-refund-{order}-{n}`), so asking twice
//! (two runs at once, a crash between the call and the write) is still one refund, and stores
//! Stripe's answer through `order::step`. A refund Stripe leaves `pending` is settled later by
//! its `refund.updated` webhook.

use serde::Serialize;
use time::OffsetDateTime;

use crate::app::App;
use crate::db::{RefundToIssue, Violation};
use crate::order::Event;

/// How long a refund row is held by the process asking Stripe for it: far longer than the
/// call (with its retries) may take.
const CLAIM: time::Duration = time::Duration::minutes(1);

/// What asking Stripe for one refund came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result", content = "detail")]
pub enum Issued {
    /// The money is on its way back.
    Succeeded,
    /// Stripe accepted it and will settle it later (its status).
    Pending(String),
    /// Stripe refused it for good; the operator is alerted.
    Failed(String),
    /// Stripe could not be reached or was busy: asked again on the next pass.
    Later(String),
}

/// One refund asked for.
#[derive(Clone, Debug, Serialize)]
pub struct IssuedRefund {
    pub order_id: String,
    pub number: u32,
    pub amount_cents: i64,
    #[serde(flatten)]
    pub issued: Issued,
}

/// Asks Stripe for every pending refund not yet known to it: of `only` that order, or of all.
pub fn issue_pending(
    app: &mut App,
    only: Option<&str>,
    now: OffsetDateTime,
) -> anyhow::Result<Vec<IssuedRefund>> {
    let due = app.db.claim_refunds(only, now, CLAIM)?;
    let mut done = Vec::with_capacity(due.len());
    for refund in due {
        let issued = issue(app, &refund, now)?;
        match &issued {
            Issued::Succeeded | Issued::Pending(_) => {
                tracing::info!(order = %refund.order_id, refund = refund.number, "refund issued");
            }
            Issued::Failed(error) | Issued::Later(error) => {
                tracing::warn!(order = %refund.order_id, refund = refund.number, "refund not issued: {error}");
            }
        }
        done.push(IssuedRefund {
            order_id: refund.order_id,
            number: refund.number,
            amount_cents: refund.amount_cents,
            issued,
        });
    }
    Ok(done)
}

fn issue(app: &mut App, refund: &RefundToIssue, now: OffsetDateTime) -> anyhow::Result<Issued> {
    let policy = app.config.policy.clone();
    let fail = |app: &mut App, error: String| -> anyhow::Result<Issued> {
        let event = Event::RefundFailed {
            refund: refund.number,
            error: error.clone(),
        };
        // Refused when a webhook settled the refund meanwhile: then there is nothing to do.
        let _ = app
            .db
            .apply(&refund.order_id, &event, &policy, "stripe", now)?;
        Ok(Issued::Failed(error))
    };
    let Some(payment_intent) = refund.payment_intent.as_deref() else {
        return fail(app, "no payment is on record for this order".to_owned());
    };
    let number = refund.number.to_string();
    let answer = app.stripe()?.create_refund(
        payment_intent,
        refund.amount_cents,
        &[
            ("order_id", refund.order_id.as_str()),
            ("refund_number", number.as_str()),
        ],
        &refund.idempotency_key,
    );
    let stripe_refund = match answer {
        Ok(stripe_refund) => stripe_refund,
        Err(err) if err.is_transient() => {
            let error = err.to_string();
            app.db
                .refund_attempt_failed(&refund.order_id, refund.number, &error, now)?;
            return Ok(Issued::Later(error));
        }
        Err(err) => return fail(app, err.to_string()),
    };
    app.db
        .refund_issued(&refund.order_id, refund.number, &stripe_refund.id, now)?;
    match stripe_refund.status.as_deref() {
        Some("succeeded") => {
            let event = Event::RefundSucceeded {
                refund: Some(refund.number),
                refunded_total_cents: 0,
            };
            // Refused only when its webhook got there first: the same outcome.
            let _ = app
                .db
                .apply(&refund.order_id, &event, &policy, "stripe", now)?;
            Ok(Issued::Succeeded)
        }
        Some(status @ ("failed" | "canceled")) => fail(
            app,
            stripe_refund
                .failure_reason
                .clone()
                .unwrap_or_else(|| format!("Stripe {status} the refund")),
        ),
        status => Ok(Issued::Pending(status.unwrap_or("pending").to_owned())),
    }
}

/// What Stripe refunded per order (succeeded refunds created since `since`), with the
/// PaymentIntent refunded.
pub fn refunded_at_stripe(
    app: &App,
    since: OffsetDateTime,
) -> anyhow::Result<std::collections::BTreeMap<String, (i64, String)>> {
    let stripe = app.stripe()?;
    let mut by_order: std::collections::BTreeMap<String, (i64, String)> =
        std::collections::BTreeMap::new();
    let mut after: Option<String> = None;
    'pages: loop {
        let page = stripe
            .list_refunds(after.as_deref())
            .map_err(|err| anyhow::anyhow!("cannot list Stripe's refunds: {err}"))?;
        for refund in &page.data {
            if refund.created != 0 && refund.created < since.unix_timestamp() {
                break 'pages;
            }
            if refund.status.as_deref() != Some("succeeded") {
                continue;
            }
            let order = app
                .db
                .order_of_payment(refund.payment_intent.as_deref(), refund.charge.as_deref())?;
            if let Some(order) = order {
                let entry = by_order.entry(order).or_default();
                entry.0 += refund.amount;
                if let Some(intent) = &refund.payment_intent {
                    entry.1.clone_from(intent);
                }
            }
        }
        match (page.has_more, page.data.last()) {
            (true, Some(last)) => after = Some(last.id.clone()),
            _ => break,
        }
    }
    Ok(by_order)
}

/// Refunds Stripe made that compass does not account for: for each order, Stripe's succeeded
/// refunds since `since` must not add up to more than the order records as refunded. (A refund
/// made in the Dashboard is accounted for once its `charge.refunded` event is handled, or once
/// `reconcile` finds it.)
pub fn unknown_at_stripe(app: &App, since: OffsetDateTime) -> anyhow::Result<Vec<Violation>> {
    let by_order: Vec<(String, i64)> = refunded_at_stripe(app, since)?
        .into_iter()
        .map(|(order, (cents, _))| (order, cents))
        .collect();
    let mut found = Vec::new();
    for (order, at_stripe) in by_order {
        let recorded = app.db.order(&order)?.map_or(0, |o| o.order.refunded_cents);
        if at_stripe > recorded {
            found.push(Violation {
                rule: "refund_unknown_locally",
                order_id: Some(order),
                detail: format!(
                    "Stripe refunded {at_stripe} cents, compass records {recorded}: run `compass reconcile`"
                ),
            });
        }
    }
    Ok(found)
}
