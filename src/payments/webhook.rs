//! Verified webhooks into the event store: the signature checked over the raw body against
//! every configured secret, the event stored by its id (a redelivery changes nothing), and the
//! answer given only after the commit.

use time::OffsetDateTime;

use super::unused_note;
use crate::app::App;
use crate::db::NewStripeEvent;
use crate::stripe;

/// Why a webhook is turned away; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum WebhookRejection {
    /// The signature does not verify: 400.
    #[error("bad signature: {0}")]
    Signature(#[from] stripe::webhook::SignatureError),
    /// Signed, but not an event: 400.
    #[error("not a Stripe event: {0}")]
    Malformed(String),
    /// Our side failed (database): 500, and Stripe retries.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Whether a verified event was new.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// Stored for handling, under this id.
    Stored(String),
    /// Stored for the record; compass does not act on its type.
    Recorded,
    /// Already stored: a redelivery.
    Duplicate,
}

/// Verifies and stores a webhook. Answer 2xx only after this returns `Ok`.
pub fn receive_webhook(
    app: &mut App,
    body: &[u8],
    signature: Option<&str>,
    now: OffsetDateTime,
) -> Result<Received, WebhookRejection> {
    let secrets = app.webhook_secrets()?;
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    stripe::webhook::verify(body, signature, &secrets, now, stripe::webhook::TOLERANCE)?;
    let event: stripe::Event =
        serde_json::from_slice(body).map_err(|err| WebhookRejection::Malformed(err.to_string()))?;
    let payload =
        std::str::from_utf8(body).map_err(|err| WebhookRejection::Malformed(err.to_string()))?;
    let unused = unused_note(&event.kind);
    let stored = app.db.insert_stripe_event(
        &NewStripeEvent {
            id: &event.id,
            kind: &event.kind,
            payload,
            object_id: event.object_id(),
            stripe_created: event.created,
            done: unused.as_deref(),
        },
        now,
    )?;
    Ok(match (stored, unused) {
        (false, _) => Received::Duplicate,
        (true, Some(_)) => Received::Recorded,
        (true, None) => Received::Stored(event.id),
    })
}
