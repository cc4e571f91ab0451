//! Payments: an order and its PaymentIntent (here), verified webhooks into the event store
//! (`webhook.rs`), the handling of each event through `order::step` (`events.rs`), and the
//! repair of what missed webhooks left behind (`reconcile.rs`).
//!
//! A webhook is stored (verified, keyed by its event id) and answered before it is handled;
//! handling is idempotent and retried with backoff until it succeeds, so an event for an order
//! that is not there yet is kept, never dropped. `payment_intent.succeeded` is only a trigger:
//! the PaymentIntent is read back from the Stripe API before any order is marked paid.

mod events;
mod reconcile;
mod webhook;

use anyhow::Context;
use time::OffsetDateTime;

use crate::app::App;
use crate::db::{NewOrder, PaymentRecord, StoredOrder};
use crate::invoice::{Contact, Party};
use crate::method::Intake;
use crate::stripe::{NewPaymentIntent, PaymentIntent, StripeError};

pub use events::{
    Drained, EVENT_ALERT_AFTER, drain_events, event_backoff, handle_event, handle_stored,
};
pub use reconcile::{Reconciled, Repair, reconcile};
pub use webhook::{Received, WebhookRejection, receive_webhook};

/// What compass does with an event type: the one list of the types it acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handling {
    /// The PaymentIntent is read back from Stripe and its order stepped.
    PaymentIntent,
    /// A charge refunded in full or in part, in the Dashboard or by compass.
    ChargeRefunded,
    /// One refund's progress.
    Refund,
    /// A dispute opened or closed.
    Dispute,
}

/// The Stripe event types compass acts on. Every other type is stored and acknowledged; the
/// webhook endpoint in the Stripe Dashboard needs exactly these.
const HANDLED: [(&str, Handling); 10] = [
    ("payment_intent.succeeded", Handling::PaymentIntent),
    ("payment_intent.payment_failed", Handling::PaymentIntent),
    ("payment_intent.processing", Handling::PaymentIntent),
    ("payment_intent.canceled", Handling::PaymentIntent),
    ("charge.refunded", Handling::ChargeRefunded),
    ("refund.created", Handling::Refund),
    ("refund.updated", Handling::Refund),
    ("refund.failed", Handling::Refund),
    ("charge.dispute.created", Handling::Dispute),
    ("charge.dispute.closed", Handling::Dispute),
];

/// The note an event of a type compass does not act on is stored with (done at once).
fn unused_note(kind: &str) -> Option<String> {
    handling(kind)
        .is_none()
        .then(|| format!("{kind} is not used by compass"))
}

/// How compass handles events of type `kind`, if it acts on them.
fn handling(kind: &str) -> Option<Handling> {
    HANDLED
        .iter()
        .find(|(name, _)| *name == kind)
        .map(|(_, handling)| *handling)
}

/// The Idempotency-Key of an order's PaymentIntent: one order, one PaymentIntent, however
/// often its creation is retried.
pub fn payment_intent_key(order_id: &str) -> String {
    format!("compass-pi-{order_id}")
}

/// Creates the order for a checked intake, then tries to create its PaymentIntent. The order
/// is stored even if Stripe is down: the payment page creates the PaymentIntent later, with
/// the same Idempotency-Key.
pub fn place_order(
    app: &mut App,
    intake: &Intake,
    billing: Option<Party>,
    now: OffsetDateTime,
) -> anyhow::Result<(StoredOrder, Result<PaymentIntent, StripeError>)> {
    let tier = app
        .method
        .tier(&intake.tier)
        .with_context(|| format!("the method sells no tier `{}`", intake.tier))?;
    // With invoices on, the terms decide what is charged (tax added, or a reverse charge).
    let terms = app.config.invoices.as_ref().map(|rules| {
        rules.terms(
            tier.price,
            billing,
            Contact {
                name: intake.name.clone(),
                email: intake.email.clone(),
                company: intake.company.clone(),
            },
        )
    });
    let order = app.db.create_order(
        &NewOrder {
            email: intake.email.clone(),
            name: intake.name.clone(),
            company: intake.company.clone(),
            tier: intake.tier.clone(),
            amount_cents: terms.as_ref().map_or(tier.price, |t| t.sale.gross_cents),
            currency: app.method.currency.clone(),
            questionnaire: serde_json::to_value(intake).context("cannot encode the answers")?,
            method_version: app.method.version.clone(),
            terms,
        },
        now,
    )?;
    let intent = ensure_payment_intent(app, &order, now)?;
    Ok((order, intent))
}

/// The order's PaymentIntent: read back if it exists, created (idempotently) if not.
pub fn ensure_payment_intent(
    app: &mut App,
    order: &StoredOrder,
    now: OffsetDateTime,
) -> anyhow::Result<Result<PaymentIntent, StripeError>> {
    let stripe = app.stripe()?;
    let intent = match app.db.payment_intent_of(&order.id)? {
        Some(id) => stripe.payment_intent(&id),
        None => stripe.create_payment_intent(
            &NewPaymentIntent {
                amount: order.order.amount_cents,
                currency: &order.order.currency,
                order_id: &order.id,
            },
            &payment_intent_key(&order.id),
        ),
    };
    if let Ok(intent) = &intent {
        record_payment(app, &order.id, intent, now)?;
    }
    Ok(intent)
}

fn record_payment(
    app: &mut App,
    order_id: &str,
    intent: &PaymentIntent,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let error = intent
        .last_payment_error
        .as_ref()
        .and_then(|e| e.message.as_deref().or(e.code.as_deref()));
    app.db.upsert_payment(
        &PaymentRecord {
            order_id,
            payment_intent_id: &intent.id,
            status: &intent.status,
            amount_cents: intent.amount,
            currency: &intent.currency,
            charge_id: intent.latest_charge.as_deref(),
            last_error: error,
        },
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_the_one_list_of_handled_types() {
        let names: std::collections::BTreeSet<&str> = HANDLED.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), HANDLED.len(), "each type once");
        for (name, kind) in HANDLED {
            assert_eq!(handling(name), Some(kind));
            assert_eq!(unused_note(name), None);
        }
        assert_eq!(handling("customer.created"), None);
        assert_eq!(
            unused_note("customer.created").as_deref(),
            Some("customer.created is not used by compass")
        );
        // The README tells operators which events to send; each is one compass handles.
        let readme = include_str!("../../README.md");
        let listed = readme
            .split("In the Stripe Dashboard, point a webhook endpoint")
            .nth(1)
            .and_then(|rest| rest.split("put its signing secret").next())
            .expect("the README's webhook paragraph");
        for (name, _) in HANDLED {
            if !matches!(
                name,
                "payment_intent.processing" | "payment_intent.canceled"
            ) {
                assert!(listed.contains(&format!("`{name}`")), "README lacks {name}");
            }
        }
    }
}
