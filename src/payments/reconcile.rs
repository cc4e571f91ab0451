//! `compass reconcile`: what missed webhooks left behind, repaired from Stripe's own records.

use anyhow::Context;
use time::OffsetDateTime;

use super::{drain_events, record_payment, unused_note};
use crate::app::App;
use crate::db::NewStripeEvent;
use crate::order::{Event as OrderEvent, Status};
use crate::stripe::{self, Dispute, PaymentIntent};

/// One order that reconciliation changed (or, in a dry run, would change).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Repair {
    pub order_id: String,
    pub payment_intent: String,
    pub change: String,
}

/// What `reconcile` found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Reconciled {
    /// PaymentIntents created since the cutoff.
    pub payment_intents: usize,
    /// Events created since the cutoff.
    pub events: usize,
    /// Of those, events no webhook had delivered.
    pub missed_events: usize,
    /// Orders repaired from their PaymentIntent.
    pub repairs: Vec<Repair>,
    /// Missed events handled now.
    pub handled: usize,
    /// Missed events that failed and wait for a retry.
    pub failed: usize,
}

/// Repairs what missed webhooks left behind: every PaymentIntent since `since` that succeeded
/// for an unpaid order pays it, every event since `since` that is not in the store is stored
/// (it comes from Stripe's API with our key, so it needs no signature) and handled, every
/// order Stripe refunded more than it records gets the refund recorded, and every dispute
/// (however old: one can stay open for months) that an order does not show is applied.
pub fn reconcile(
    app: &mut App,
    since: OffsetDateTime,
    now: OffsetDateTime,
    dry_run: bool,
) -> anyhow::Result<Reconciled> {
    let cutoff = since.unix_timestamp();
    let mut report = Reconciled::default();
    let mut after: Option<String> = None;
    loop {
        let page = app
            .stripe()?
            .list_payment_intents(after.as_deref())
            .context("cannot list PaymentIntents")?;
        let mut older = true;
        for intent in &page.data {
            if intent.created < cutoff {
                continue;
            }
            older = false;
            report.payment_intents += 1;
            if let Some(repair) = reconcile_intent(app, intent, now, dry_run)? {
                report.repairs.push(repair);
            }
        }
        after = page.data.last().map(|i| i.id.clone());
        if !page.has_more || older || after.is_none() {
            break;
        }
    }
    let mut after: Option<String> = None;
    loop {
        let page = app
            .stripe()?
            .list_events(after.as_deref())
            .context("cannot list events")?;
        let mut older = true;
        for raw in &page.data {
            let event: stripe::Event = serde_json::from_value(raw.clone())
                .context("Stripe listed something that is not an event")?;
            if event.created < cutoff {
                continue;
            }
            older = false;
            report.events += 1;
            if app.db.stripe_event(&event.id)?.is_some() {
                continue;
            }
            report.missed_events += 1;
            if !dry_run {
                let unused = unused_note(&event.kind);
                app.db.insert_stripe_event(
                    &NewStripeEvent {
                        id: &event.id,
                        kind: &event.kind,
                        payload: &raw.to_string(),
                        object_id: event.object_id(),
                        stripe_created: event.created,
                        done: unused.as_deref(),
                    },
                    now,
                )?;
            }
        }
        after = page
            .data
            .last()
            .and_then(|e| e["id"].as_str().map(str::to_owned));
        if !page.has_more || older || after.is_none() {
            break;
        }
    }
    if !dry_run {
        let drained = drain_events(app, now, u32::MAX)?;
        report.handled = drained.handled;
        report.failed = drained.failed;
    }
    // Whatever the events said: money Stripe returned that an order does not record yet (a
    // refund event lost, or older than Stripe keeps events) is recorded now.
    for (order_id, (at_stripe, intent)) in crate::refunds::refunded_at_stripe(app, since)? {
        let Some(order) = app.db.order(&order_id)? else {
            continue;
        };
        if at_stripe <= order.order.refunded_cents {
            continue;
        }
        let change = format!(
            "refunded at Stripe: {at_stripe} cents, recorded {}",
            order.order.refunded_cents
        );
        let event = OrderEvent::RefundSucceeded {
            refund: None,
            refunded_total_cents: at_stripe,
        };
        if !dry_run {
            let policy = app.config.policy.clone();
            if let Err(rejected) = app.db.apply(&order_id, &event, &policy, "reconcile", now)? {
                tracing::warn!(order = %order_id, "cannot record Stripe's refund: {rejected}");
                continue;
            }
        }
        report.repairs.push(Repair {
            order_id,
            payment_intent: intent,
            change,
        });
    }
    let mut after: Option<String> = None;
    loop {
        let page = app
            .stripe()?
            .list_disputes(after.as_deref())
            .context("cannot list disputes")?;
        for dispute in &page.data {
            if let Some(repair) = reconcile_dispute(app, dispute, now, dry_run)? {
                report.repairs.push(repair);
            }
        }
        after = page.data.last().map(|d| d.id.clone());
        if !page.has_more || after.is_none() {
            break;
        }
    }
    Ok(report)
}

/// What a dispute means for its order, if the order does not show it yet: an open one stops
/// the work (`disputed`), a lost one ends the order `refunded` (the bank took the money
/// back), and one that ended well returns a `disputed` order to where it was.
fn reconcile_dispute(
    app: &mut App,
    dispute: &Dispute,
    now: OffsetDateTime,
    dry_run: bool,
) -> anyhow::Result<Option<Repair>> {
    let found = app
        .db
        .order_of_payment(dispute.payment_intent.as_deref(), dispute.charge.as_deref())?;
    let Some(order) = found.map(|id| app.db.order(&id)).transpose()?.flatten() else {
        return Ok(None);
    };
    let opened = OrderEvent::DisputeOpened {
        dispute: dispute.id.clone(),
        reason: dispute.reason.clone().unwrap_or_else(|| "unknown".into()),
    };
    let closed = OrderEvent::DisputeClosed {
        dispute: dispute.id.clone(),
        won: !dispute.is_lost(),
    };
    let disputed = order.order.status == Status::Disputed;
    // Only what moves the order: a dispute on an order already refunded, or one that ended
    // well for an order it never stopped, changes nothing.
    let events: Vec<&OrderEvent> = match (dispute.is_open(), dispute.is_lost(), disputed) {
        (true, _, false) => vec![&opened],
        (false, true, false) => vec![&opened, &closed],
        (false, _, true) => vec![&closed],
        _ => return Ok(None),
    };
    let policy = app.config.policy.clone();
    let mut state = order.order.clone();
    for event in &events {
        match crate::order::step(&state, event, &policy, now) {
            Ok(step) => state = step.order,
            // The order's state refuses it (refunded, expired, never paid): nothing to repair.
            Err(_) => return Ok(None),
        }
    }
    if state.status == order.order.status {
        return Ok(None);
    }
    if !dry_run {
        for event in &events {
            if let Err(rejected) = app.db.apply(&order.id, event, &policy, "reconcile", now)? {
                tracing::warn!(order = %order.id, "cannot apply Stripe's dispute: {rejected}");
                return Ok(None);
            }
        }
    }
    let verb = if dry_run { "would become" } else { "->" };
    Ok(Some(Repair {
        order_id: order.id.clone(),
        payment_intent: dispute.payment_intent.clone().unwrap_or_default(),
        change: format!(
            "dispute {} {} at Stripe: {} {verb} {}",
            dispute.id, dispute.status, order.order.status, state.status
        ),
    }))
}

fn reconcile_intent(
    app: &mut App,
    intent: &PaymentIntent,
    now: OffsetDateTime,
    dry_run: bool,
) -> anyhow::Result<Option<Repair>> {
    let Some(order_id) = intent.order_id() else {
        return Ok(None);
    };
    let Some(order) = app.db.order(order_id)? else {
        return Ok(None);
    };
    if intent.status != "succeeded" || order.order.status.is_paid() {
        if !dry_run && app.db.payment_intent_of(order_id)?.is_none() {
            record_payment(app, order_id, intent, now)?;
        }
        return Ok(None);
    }
    let event = OrderEvent::PaymentConfirmed {
        payment_intent: intent.id.clone(),
        amount_cents: intent.amount,
        currency: intent.currency.clone(),
    };
    let policy = app.config.policy.clone();
    let outcome = if dry_run {
        crate::order::step(&order.order, &event, &policy, now).map(|step| step.order.status)
    } else {
        record_payment(app, order_id, intent, now)?;
        app.db
            .apply(order_id, &event, &policy, "reconcile", now)?
            .map(|step| step.order.status)
    };
    Ok(Some(Repair {
        order_id: order_id.to_owned(),
        payment_intent: intent.id.clone(),
        change: match outcome {
            Ok(status) if dry_run => format!("would become {status}"),
            Ok(status) => format!("{} -> {status}", order.order.status),
            Err(rejected) => format!("not changed: {rejected}"),
        },
    }))
}
