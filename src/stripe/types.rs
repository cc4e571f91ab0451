//! The parts of Stripe's objects compass reads. Unknown fields are ignored, so Stripe adding
//! fields never breaks us; a field we rely on going missing does, loudly.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer};

/// A PaymentIntent (`pi_...`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct PaymentIntent {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    /// `requires_payment_method`, `requires_confirmation`, `requires_action`, `processing`,
    /// `requires_capture`, `canceled` or `succeeded`.
    pub status: String,
    /// Only in answers to our own secret key; handed to Stripe.js, never logged.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    /// Real Stripe sends the charge's id; localstripe sends the charge itself.
    #[serde(default, deserialize_with = "id_or_object")]
    pub latest_charge: Option<String>,
    #[serde(default)]
    pub last_payment_error: Option<ApiErrorBody>,
    pub created: i64,
    #[serde(default)]
    pub livemode: bool,
}

impl PaymentIntent {
    /// The order this PaymentIntent pays for, from `metadata[order_id]`.
    pub fn order_id(&self) -> Option<&str> {
        self.metadata.get("order_id").map(String::as_str)
    }
}

/// A Charge (`ch_...`), as carried by `charge.*` events.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Charge {
    pub id: String,
    pub amount: i64,
    #[serde(default)]
    pub amount_refunded: i64,
    pub currency: String,
    #[serde(default, deserialize_with = "id_or_object")]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

/// A Refund (`re_...`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub payment_intent: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub charge: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// When it was made (Unix seconds).
    #[serde(default)]
    pub created: i64,
}

/// A Dispute (`dp_...`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Dispute {
    pub id: String,
    pub amount: i64,
    #[serde(default, deserialize_with = "id_or_object")]
    pub charge: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// `needs_response`, `under_review`, `won`, `lost`, `warning_closed`, ...
    pub status: String,
    /// When it was opened (Unix seconds).
    #[serde(default)]
    pub created: i64,
}

impl Dispute {
    /// Whether the card network has still to decide: an inquiry (`warning_...`), a chargeback
    /// or its appeal that is waiting for evidence or under review.
    pub fn is_open(&self) -> bool {
        matches!(
            self.status.as_str(),
            "warning_needs_response"
                | "warning_under_review"
                | "needs_response"
                | "under_review"
                | "appeal_needs_response"
                | "appeal_under_review"
        )
    }

    /// Whether the money went back to the customer's bank for good. A dispute won, an inquiry
    /// closed without a chargeback (`warning_closed`) and a chargeback stopped before it was
    /// filed (`prevented`) all leave it with the business.
    pub fn is_lost(&self) -> bool {
        self.status == "lost"
    }
}

/// An Event (`evt_...`), as delivered to the webhook or listed by `/v1/events`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    pub data: EventData,
    #[serde(default)]
    pub livemode: bool,
}

/// The object an event is about, kept raw until its type says what it is.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct EventData {
    pub object: serde_json::Value,
}

impl Event {
    /// The `id` of the object the event is about.
    pub fn object_id(&self) -> Option<&str> {
        self.data.object.get("id").and_then(|id| id.as_str())
    }

    /// The event's object as `T`.
    pub fn object<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        T::deserialize(&self.data.object)
    }
}

/// One page of a list.
#[derive(Clone, Debug, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

/// The `error` object of a failed request.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct ApiErrorBody {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// `"ch_1"` or `{"id": "ch_1", ...}` (an expanded object) or null, as the id.
fn id_or_object<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::String(id)) => Some(id),
        Some(serde_json::Value::Object(object)) => object
            .get("id")
            .and_then(|id| id.as_str())
            .map(str::to_owned),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expanded_and_plain_references_read_the_same() {
        let plain: PaymentIntent = serde_json::from_value(serde_json::json!({
            "id": "pi_1", "amount": 4900, "currency": "usd", "status": "succeeded",
            "created": 1, "latest_charge": "ch_1", "metadata": {"order_id": "o1"},
            "some_new_field": {"ignored": true}
        }))
        .expect("plain");
        let expanded: PaymentIntent = serde_json::from_value(serde_json::json!({
            "id": "pi_1", "amount": 4900, "currency": "usd", "status": "succeeded",
            "created": 1, "latest_charge": {"id": "ch_1", "object": "charge"},
            "metadata": {"order_id": "o1"}
        }))
        .expect("expanded");
        assert_eq!(plain.latest_charge.as_deref(), Some("ch_1"));
        assert_eq!(plain, expanded);
        assert_eq!(plain.order_id(), Some("o1"));
    }
}
