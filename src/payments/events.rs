//! The handling of stored events through `order::step`: each claimed first, retried with
//! backoff until it succeeds, and alerted after its fifth failure. An event the order's state
//! refuses for now (`NotYet`, a refund reported before its payment) waits for that order and
//! is handled the moment another event moves it.

use anyhow::Context;
use time::{Duration, OffsetDateTime};

use super::{Handling, handling, record_payment};
use crate::app::App;
use crate::db::StoredEvent;
use crate::order::{Event as OrderEvent, Rejection};
use crate::stripe::{self, Charge, Dispute, Refund};

/// What one pass over the due events did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Events handled for good.
    pub handled: usize,
    /// Events that failed and wait for a retry.
    pub failed: usize,
}

/// Handles every due event (at most `limit`), recording each outcome.
pub fn drain_events(app: &mut App, now: OffsetDateTime, limit: u32) -> anyhow::Result<Drained> {
    app.db.requeue_moved_waiters(NotYet::PREFIX, now)?;
    let mut drained = Drained::default();
    for event in app.db.due_stripe_events(now, limit)? {
        if handle_stored(app, &event, now)? {
            drained.handled += 1;
        } else {
            drained.failed += 1;
        }
    }
    Ok(drained)
}

/// Handles the event `id` if it is due and no one else is handling it.
pub fn handle_event(app: &mut App, id: &str, now: OffsetDateTime) -> anyhow::Result<()> {
    if let Some(event) = app.db.stripe_event(id)? {
        handle_stored(app, &event, now)?;
    }
    Ok(())
}

/// Failed attempts at an event before the operator is alerted (about 15 minutes of retries).
pub const EVENT_ALERT_AFTER: u32 = 5;

/// How long a handler holds an event before another may take it over.
const EVENT_LEASE: Duration = Duration::minutes(2);

/// Handles one stored event and records the outcome; true if it is done with. The event is
/// claimed first, so two workers (or `serve` and `reconcile`) never handle it at once.
pub fn handle_stored(
    app: &mut App,
    event: &StoredEvent,
    now: OffsetDateTime,
) -> anyhow::Result<bool> {
    let Some(order_id) = handle_one(app, event, now)? else {
        return Ok(false);
    };
    // Events that waited for this order to move (a refund reported before its payment) are
    // handled now, before `process` can write a report for money already returned.
    if let Some(order_id) = order_id {
        for id in app.db.events_waiting_for(&order_id, &event.id)? {
            if app.db.event_requeue(&id, now)?
                && let Some(waiting) = app.db.stripe_event(&id)?
            {
                handle_one(app, &waiting, now)?;
            }
        }
    }
    Ok(true)
}

/// Handles one stored event and records the outcome: `Some(order)` when it is done with.
fn handle_one(
    app: &mut App,
    event: &StoredEvent,
    now: OffsetDateTime,
) -> anyhow::Result<Option<Option<String>>> {
    if !app.db.claim_event(&event.id, now, now + EVENT_LEASE)? {
        return Ok(None);
    }
    match handle(app, event, now) {
        Ok(done) => {
            app.db.event_handled(
                &event.id,
                done.order_id.as_deref(),
                done.note.as_deref(),
                now,
            )?;
            tracing::info!(event = %event.id, kind = %event.kind, order = ?done.order_id, "handled");
            Ok(Some(done.order_id))
        }
        Err(err) => {
            let attempts = event.attempts + 1;
            let retry_at = now + event_backoff(attempts);
            let error = format!("{err:#}");
            tracing::warn!(event = %event.id, kind = %event.kind, %retry_at, "not handled yet: {error}");
            let waits_for = err.downcast_ref::<NotYet>().map(|n| n.order_id.as_str());
            app.db
                .event_failed(&event.id, &error, retry_at, waits_for)?;
            if attempts >= EVENT_ALERT_AFTER {
                app.db.alert(
                    &format!("event {} not handled", event.id),
                    event.order_id.as_deref(),
                    &format!(
                        "Stripe event not handled: {} ({}) failed {attempts} times, last with \
                         \"{error}\"; it is retried every hour at most. Look at it with \
                         `compass events --failed`, fix the cause, then `compass events replay \
                         {}`",
                        event.id, event.kind, event.id
                    ),
                    now,
                )?;
            }
            Ok(None)
        }
    }
}

/// An event that the order's state refuses for now but that will apply once an earlier fact
/// arrives: kept, and retried when the order moves or its backoff ends.
#[derive(Debug, thiserror::Error)]
#[error("cannot apply to order {order_id} yet: {why}")]
struct NotYet {
    order_id: String,
    why: String,
}

impl NotYet {
    /// How the stored error of such an event starts (the retry pass looks for it).
    const PREFIX: &str = "cannot apply to order ";
}

/// 30 s after the first failure, doubling, at most an hour apart; never given up.
pub fn event_backoff(attempts: u32) -> Duration {
    crate::backoff::doubling_wait(Duration::seconds(30), attempts, Duration::hours(1))
}

/// The result of handling an event.
#[derive(Debug, Default)]
struct Done {
    order_id: Option<String>,
    note: Option<String>,
}

impl Done {
    fn note(order_id: Option<String>, note: impl Into<String>) -> Done {
        Done {
            order_id,
            note: Some(note.into()),
        }
    }
}

/// Handles one event; an `Err` means "try again later" (Stripe down, order not there yet).
fn handle(app: &mut App, stored: &StoredEvent, now: OffsetDateTime) -> anyhow::Result<Done> {
    let event: stripe::Event =
        serde_json::from_str(&stored.payload).context("the stored payload is not an event")?;
    match handling(&event.kind) {
        Some(Handling::PaymentIntent) => payment_intent_event(app, &event, now),
        Some(Handling::ChargeRefunded) => {
            let charge: Charge = event.object().context("charge.refunded without a charge")?;
            let order_id = order_of(app, charge.payment_intent.as_deref(), Some(&charge.id))?;
            let step = OrderEvent::RefundSucceeded {
                refund: None,
                refunded_total_cents: charge.amount_refunded,
            };
            apply(app, &order_id, &step, now)
        }
        Some(Handling::Refund) => {
            let refund: Refund = event.object().context("refund event without a refund")?;
            refund_event(app, &refund, now)
        }
        Some(Handling::Dispute) => {
            let dispute: Dispute = event.object().context("dispute event without a dispute")?;
            let order_id = order_of(
                app,
                dispute.payment_intent.as_deref(),
                dispute.charge.as_deref(),
            )?;
            dispute_event(app, &event, &dispute, &order_id, now)
        }
        None => Ok(Done::note(
            None,
            format!("{} is not used by compass", event.kind),
        )),
    }
}

fn payment_intent_event(
    app: &mut App,
    event: &stripe::Event,
    now: OffsetDateTime,
) -> anyhow::Result<Done> {
    let id = event.object_id().context("event without an object id")?;
    // The payload is a trigger, not the truth: read the PaymentIntent back.
    let intent = app
        .stripe()?
        .payment_intent(id)
        .with_context(|| format!("cannot read PaymentIntent {id} back from Stripe"))?;
    let Some(order_id) = intent.order_id().map(str::to_owned) else {
        return Ok(Done::note(
            None,
            "not a compass PaymentIntent (no metadata[order_id])",
        ));
    };
    if app.db.order(&order_id)?.is_none() {
        anyhow::bail!("order {order_id} is not here yet");
    }
    record_payment(app, &order_id, &intent, now)?;
    let step = match intent.status.as_str() {
        "succeeded" => OrderEvent::PaymentConfirmed {
            payment_intent: intent.id.clone(),
            amount_cents: intent.amount,
            currency: intent.currency.clone(),
        },
        _ if event.kind == "payment_intent.payment_failed" => OrderEvent::PaymentFailed {
            payment_intent: intent.id.clone(),
            reason: intent
                .last_payment_error
                .as_ref()
                .and_then(|e| e.message.clone().or_else(|| e.code.clone()))
                .unwrap_or_else(|| "the payment failed".into()),
        },
        status => {
            return Ok(Done::note(
                Some(order_id),
                format!("PaymentIntent is {status}; nothing to do"),
            ));
        }
    };
    let done = apply(app, &order_id, &step, now)?;
    if intent.status == "succeeded" {
        let others = app.db.other_succeeded_payments(&order_id, &intent.id)?;
        if !others.is_empty() {
            let message = format!(
                "order paid twice: {order_id} was paid by {} and by {}; refund {} in the Stripe \
                 dashboard",
                others.join(", "),
                intent.id,
                intent.id
            );
            app.db.alert(
                &format!("paid twice {}", intent.id),
                Some(&order_id),
                &message,
                now,
            )?;
        }
    }
    Ok(done)
}

/// Disputes arrive out of order too: a `closed` that overtakes its `created` opens and closes
/// the dispute at once, and the late `created` then finds it opened and changes nothing. A
/// dispute is opened on its order once, by whichever handler comes first (`open_dispute`
/// checks and applies in one transaction: the two may run at once on two event handlers).
fn dispute_event(
    app: &mut App,
    event: &stripe::Event,
    dispute: &Dispute,
    order_id: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Done> {
    let opened = OrderEvent::DisputeOpened {
        dispute: dispute.id.clone(),
        reason: dispute.reason.clone().unwrap_or_else(|| "unknown".into()),
    };
    let policy = app.config.policy.clone();
    let open = app
        .db
        .open_dispute(order_id, &dispute.id, &opened, &policy, now)?;
    if event.kind == "charge.dispute.created" {
        return match open {
            None => Ok(Done::note(
                Some(order_id.to_owned()),
                "the dispute was opened already (its closing arrived first)",
            )),
            Some(step) => outcome(order_id, &opened, step),
        };
    }
    if let Some(step) = open {
        outcome(order_id, &opened, step)?;
    }
    let closed = OrderEvent::DisputeClosed {
        dispute: dispute.id.clone(),
        won: !dispute.is_lost(),
    };
    apply(app, order_id, &closed, now)
}

fn refund_event(app: &mut App, refund: &Refund, now: OffsetDateTime) -> anyhow::Result<Done> {
    let ours = refund.metadata.get("order_id").zip(
        refund
            .metadata
            .get("refund_number")
            .and_then(|n| n.parse::<u32>().ok()),
    );
    let Some((order_id, number)) = ours else {
        return Ok(Done::note(
            None,
            "refund made outside compass; charge.refunded carries the total",
        ));
    };
    let order_id = order_id.clone();
    let step = match refund.status.as_deref() {
        Some("succeeded") => OrderEvent::RefundSucceeded {
            refund: Some(number),
            refunded_total_cents: 0,
        },
        Some("failed" | "canceled") => OrderEvent::RefundFailed {
            refund: number,
            error: refund
                .failure_reason
                .clone()
                .unwrap_or_else(|| "refund failed".into()),
        },
        status => {
            return Ok(Done::note(
                Some(order_id),
                format!("refund is {}; waiting", status.unwrap_or("pending")),
            ));
        }
    };
    apply(app, &order_id, &step, now)
}

/// The order of a payment, or an error (retried) while the payment is not recorded yet.
fn order_of(
    app: &App,
    payment_intent: Option<&str>,
    charge: Option<&str>,
) -> anyhow::Result<String> {
    app.db
        .order_of_payment(payment_intent, charge)?
        .with_context(|| {
            format!(
                "no order has payment {} yet",
                payment_intent.or(charge).unwrap_or("(none)")
            )
        })
}

/// Applies an order event. A rejected one is done with (it changes nothing), with a note,
/// unless it can apply later (`NotYet`): then it is an error, and the event is retried.
fn apply(
    app: &mut App,
    order_id: &str,
    event: &OrderEvent,
    now: OffsetDateTime,
) -> anyhow::Result<Done> {
    let policy = app.config.policy.clone();
    let step = app.db.apply(order_id, event, &policy, "stripe", now)?;
    outcome(order_id, event, step)
}

/// What applying `event` to `order_id` came to: done, or `NotYet` to wait for the order.
fn outcome(
    order_id: &str,
    event: &OrderEvent,
    step: Result<crate::order::Step, crate::order::InvalidTransition>,
) -> anyhow::Result<Done> {
    match step {
        Ok(step) => Ok(Done::note(
            Some(order_id.to_owned()),
            format!("{} -> {}", event.name(), step.order.status),
        )),
        Err(rejected) if matches!(rejected.why, Rejection::NotYet) => Err(NotYet {
            order_id: order_id.to_owned(),
            why: rejected.to_string(),
        }
        .into()),
        Err(rejected) => {
            if !matches!(rejected.why, Rejection::AlreadyApplied) {
                tracing::warn!(order = %order_id, "{rejected}");
            }
            Ok(Done::note(Some(order_id.to_owned()), rejected.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_retries_back_off_to_an_hour() {
        let waits: Vec<_> = (1..=9).map(|n| event_backoff(n).whole_seconds()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
    }
}
