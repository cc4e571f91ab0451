//! Stripe: webhook signatures (pure, [`webhook`]) and a small blocking API client.
//!
//! compass needs four calls (create and read a PaymentIntent, create a Refund, list
//! PaymentIntents and Events), so the client is ureq plus serde structs rather than a Stripe
//! crate; ARCHITECTURE.md says why. Requests are form-encoded, pinned to the configured API
//! version, and every POST carries an Idempotency-Key derived from our own ids. Retries follow
//! the official libraries: `Stripe-Should-Retry` decides when present; otherwise connection
//! errors, 409, 429 `lock_timeout` and 5xx are retried with exponential backoff and jitter,
//! honouring `Retry-After`.

pub mod types;
pub mod webhook;

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::config::{Secret, StripeConfig};
pub use crate::retry::RetryPolicy;
use crate::retry::jitter;
pub use types::{ApiErrorBody, Charge, Dispute, Event, List, PaymentIntent, Refund};

/// A request that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe could not be reached, or the connection broke.
    #[error("cannot reach Stripe: {0}")]
    Network(String),
    /// Stripe answered with an error.
    #[error("Stripe answered {status}: {}", .body.message.as_deref().unwrap_or("no message"))]
    Api {
        /// The HTTP status.
        status: u16,
        /// Stripe's error object.
        body: ApiErrorBody,
        /// `Request-Id`, for Stripe's support.
        request_id: Option<String>,
    },
    /// Stripe answered 2xx with something that is not the object we asked for.
    #[error("Stripe's answer could not be read: {0}")]
    Decode(String),
}

impl StripeError {
    /// Worth trying again later (the request never took effect, or taking it again is safe).
    pub fn is_transient(&self) -> bool {
        match self {
            StripeError::Network(_) => true,
            StripeError::Api { status, .. } => *status == 409 || *status == 429 || *status >= 500,
            StripeError::Decode(_) => false,
        }
    }

    /// Stripe's error code (`card_declined`, `resource_missing`, ...), if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            StripeError::Api { body, .. } => body.code.as_deref(),
            _ => None,
        }
    }
}

/// What a PaymentIntent for an order is created with.
#[derive(Clone, Debug)]
pub struct NewPaymentIntent<'a> {
    pub amount: i64,
    pub currency: &'a str,
    pub order_id: &'a str,
}

/// A blocking Stripe API client.
pub struct StripeClient {
    agent: ureq::Agent,
    base: String,
    key: Secret,
    version: String,
    retry: RetryPolicy,
    /// How long one call may take.
    timeout: Duration,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("base", &self.base)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    /// A client for the configured account; fails if the secret key is not set.
    pub fn new(config: &StripeConfig) -> anyhow::Result<StripeClient> {
        Ok(StripeClient::with_timeout(
            &config.api_base,
            config.secret_key.get()?.clone(),
            &config.api_version,
            RetryPolicy::stripe(),
            config.timeout,
        ))
    }

    /// A client for `base` with `key`.
    pub fn with(base: &str, key: Secret, version: &str, retry: RetryPolicy) -> StripeClient {
        StripeClient::with_timeout(base, key, version, retry, Duration::from_secs(40))
    }

    /// This client with a deadline, for calls a person waits on (a customer placing an order):
    /// each call gives up after `per_call` (or sooner, if this client already does), and is
    /// retried at most `retries` times.
    pub fn with_deadline(&self, per_call: Duration, retries: u32) -> StripeClient {
        let retry = RetryPolicy {
            max_retries: retries.min(self.retry.max_retries),
            ..self.retry
        };
        let per_call = per_call.min(self.timeout);
        StripeClient::with_timeout(&self.base, self.key.clone(), &self.version, retry, per_call)
    }

    fn with_timeout(
        base: &str,
        key: Secret,
        version: &str,
        retry: RetryPolicy,
        timeout: Duration,
    ) -> StripeClient {
        let agent = crate::retry::agent(timeout);
        StripeClient {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            key,
            version: version.to_owned(),
            retry,
            timeout,
        }
    }

    /// Creates the PaymentIntent for an order; `metadata[order_id]` ties it back.
    pub fn create_payment_intent(
        &self,
        new: &NewPaymentIntent<'_>,
        idempotency_key: &str,
    ) -> Result<PaymentIntent, StripeError> {
        // Payment methods come from the Dashboard's settings (automatic since API 2023-08-16);
        // receipts are compass's own emails, so Stripe sends none.
        let form = [
            ("amount", new.amount.to_string()),
            ("currency", new.currency.to_owned()),
            ("metadata[order_id]", new.order_id.to_owned()),
        ];
        self.post("/v1/payment_intents", &form, idempotency_key)
    }

    /// Reads a PaymentIntent as Stripe has it now.
    pub fn payment_intent(&self, id: &str) -> Result<PaymentIntent, StripeError> {
        self.get(&format!("/v1/payment_intents/{}", path_segment(id)?), &[])
    }

    /// Refunds `amount` of a PaymentIntent; `metadata` ties the refund back to our row.
    pub fn create_refund(
        &self,
        payment_intent: &str,
        amount: i64,
        metadata: &[(&str, &str)],
        idempotency_key: &str,
    ) -> Result<Refund, StripeError> {
        let mut form = vec![
            ("payment_intent", payment_intent.to_owned()),
            ("amount", amount.to_string()),
        ];
        let keys: Vec<String> = metadata
            .iter()
            .map(|(k, _)| format!("metadata[{k}]"))
            .collect();
        for ((_, value), key) in metadata.iter().zip(&keys) {
            form.push((key.as_str(), (*value).to_owned()));
        }
        self.post("/v1/refunds", &form, idempotency_key)
    }

    /// One page of PaymentIntents, newest first (callers stop at the age they need: the
    /// `created` filter is left out because localstripe refuses it).
    pub fn list_payment_intents(
        &self,
        starting_after: Option<&str>,
    ) -> Result<List<PaymentIntent>, StripeError> {
        self.get("/v1/payment_intents", &page_query(starting_after))
    }

    /// One page of Refunds, newest first.
    pub fn list_refunds(&self, starting_after: Option<&str>) -> Result<List<Refund>, StripeError> {
        self.get("/v1/refunds", &page_query(starting_after))
    }

    /// One page of Disputes, newest first.
    pub fn list_disputes(
        &self,
        starting_after: Option<&str>,
    ) -> Result<List<Dispute>, StripeError> {
        self.get("/v1/disputes", &page_query(starting_after))
    }

    /// One page of Events, newest first, each kept as Stripe sent it (for the event store).
    pub fn list_events(
        &self,
        starting_after: Option<&str>,
    ) -> Result<List<serde_json::Value>, StripeError> {
        self.get("/v1/events", &page_query(starting_after))
    }

    fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, StripeError> {
        self.with_retries(|| {
            let mut request = self
                .agent
                .get(&format!("{}{path}", self.base))
                .header("Authorization", &format!("Bearer {}", self.key.expose()))
                .header("Stripe-Version", &self.version);
            for (key, value) in query {
                request = request.query(*key, value);
            }
            request.call()
        })
    }

    fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<T, StripeError> {
        self.with_retries(|| {
            self.agent
                .post(&format!("{}{path}", self.base))
                .header("Authorization", &format!("Bearer {}", self.key.expose()))
                .header("Stripe-Version", &self.version)
                .header("Idempotency-Key", idempotency_key)
                .send_form(form.iter().map(|(k, v)| (*k, v.as_str())))
        })
    }

    fn with_retries<T: DeserializeOwned>(
        &self,
        send: impl Fn() -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, StripeError> {
        let mut retry = 0;
        loop {
            let (outcome, should_retry, retry_after) = match send() {
                Err(err) => (Err(StripeError::Network(err.to_string())), true, None),
                Ok(response) => read(response),
            };
            if !should_retry || retry >= self.retry.max_retries {
                return outcome;
            }
            retry += 1;
            let delay = self.retry.delay(retry, retry_after, jitter());
            if let Err(err) = &outcome {
                tracing::info!(retry, ?delay, "retrying a Stripe request: {err}");
            }
            std::thread::sleep(delay);
        }
    }
}

fn page_query(starting_after: Option<&str>) -> Vec<(&'static str, String)> {
    let mut query = vec![("limit", "100".to_owned())];
    if let Some(after) = starting_after {
        query.push(("starting_after", after.to_owned()));
    }
    query
}

type Read<T> = (Result<T, StripeError>, bool, Option<Duration>);

/// Reads an answer: the object or the error, whether to retry, and `Retry-After`.
fn read<T: DeserializeOwned>(mut response: ureq::http::Response<ureq::Body>) -> Read<T> {
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let should_retry_header = header("stripe-should-retry");
    let retry_after = crate::retry::retry_after(header("retry-after").as_deref(), None);
    let request_id = header("request-id");
    let body = match response.body_mut().read_to_string() {
        Ok(body) => body,
        Err(err) => return (Err(StripeError::Network(err.to_string())), true, None),
    };
    if (200..300).contains(&status) {
        let parsed =
            serde_json::from_str(&body).map_err(|err| StripeError::Decode(err.to_string()));
        return (parsed, false, None);
    }
    #[derive(serde::Deserialize, Default)]
    struct Envelope {
        #[serde(default)]
        error: ApiErrorBody,
    }
    let envelope: Envelope = serde_json::from_str(&body).unwrap_or_default();
    let error = StripeError::Api {
        status,
        body: envelope.error,
        request_id,
    };
    let should_retry = match should_retry_header.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => {
            status == 409
                || status >= 500
                || (status == 429 && error.code() == Some("lock_timeout"))
        }
    };
    (Err(error), should_retry, retry_after)
}

/// An id as one URL path segment: Stripe ids are `[A-Za-z0-9_]`, anything else is refused
/// before it can change the path.
fn path_segment(id: &str) -> Result<&str, StripeError> {
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(id)
    } else {
        Err(StripeError::Decode(format!("`{id}` is not a Stripe id")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_change_the_path() {
        assert!(path_segment("pi_3Mtw").is_ok());
        for bad in ["", "../v1/charges", "pi_1?expand=x", "pi 1"] {
            assert!(path_segment(bad).is_err(), "{bad}");
        }
    }
}
