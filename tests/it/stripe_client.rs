//! The Stripe client against localstripe (real wire format) and against scripted answers for
//! what localstripe cannot do (retry signals). Which is which is said in each test.

use std::time::Duration;

use compass::config::Secret;
use compass::stripe::{NewPaymentIntent, RetryPolicy, StripeClient, StripeError};

use crate::fake_http::{Answer, FakeHttp};
use crate::services::service;

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(2),
    }
}

fn client(base: &str) -> StripeClient {
    StripeClient::with(
        base,
        Secret::new("sk_test_compass"),
        "2026-09-30.endive",
        fast_retries(),
    )
}

/// localstripe: a PaymentIntent created, read back, confirmed with a test card, refunded.
#[test]
fn localstripe_payment_intent_round_trip() {
    let stripe = client(&service("COMPASS_TEST_STRIPE_URL"));
    let order_id = format!("order-{}", std::process::id());
    let new = NewPaymentIntent {
        amount: 14_900,
        currency: "usd",
        order_id: &order_id,
    };
    let created = stripe
        .create_payment_intent(&new, &format!("compass-pi-{order_id}"))
        .expect("created");
    assert!(created.id.starts_with("pi_"));
    assert_eq!((created.amount, created.currency.as_str()), (14_900, "usd"));
    assert_eq!(created.order_id(), Some(order_id.as_str()));
    assert!(created.client_secret.is_some());

    let read = stripe.payment_intent(&created.id).expect("read back");
    assert_eq!(read.id, created.id);
    assert_eq!(read.status, "requires_payment_method");

    let err = stripe
        .payment_intent("pi_doesnotexist")
        .expect_err("unknown id");
    assert!(
        matches!(err, StripeError::Api { status: 404, .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());
}

/// Scripted: Stripe-Should-Retry, 409 and 5xx are retried with the same Idempotency-Key.
#[test]
fn transient_answers_are_retried_with_the_same_key() {
    let intent = serde_json::json!({
        "id": "pi_1", "amount": 4900, "currency": "usd", "status": "requires_payment_method",
        "created": 1, "client_secret": "pi_1_secret_x", "metadata": {"order_id": "o1"}
    });
    let server = FakeHttp::start(vec![
        Answer::json(500, serde_json::json!({"error": {"type": "api_error"}})),
        Answer::json(
            409,
            serde_json::json!({"error": {"type": "idempotency_error"}}),
        ),
        Answer::json(400, serde_json::json!({"error": {"type": "api_error"}}))
            .header("Stripe-Should-Retry", "true"),
        Answer::json(200, intent),
    ]);
    let stripe = client(&server.base);
    let new = NewPaymentIntent {
        amount: 4_900,
        currency: "usd",
        order_id: "o1",
    };
    let created = stripe
        .create_payment_intent(&new, "compass-pi-o1")
        .expect("fourth try");
    assert_eq!(created.id, "pi_1");
    let received = server.received();
    assert_eq!(received.len(), 4);
    for request in &received {
        assert_eq!(request.request_line, "POST /v1/payment_intents HTTP/1.1");
        assert_eq!(request.header("Idempotency-Key"), Some("compass-pi-o1"));
        assert_eq!(
            request.header("Authorization"),
            Some("Bearer sk_test_compass")
        );
        assert_eq!(request.header("Stripe-Version"), Some("2026-09-30.endive"));
    }
    let form: Vec<(String, String)> =
        serde_urlencoded::from_str(&received[0].body).expect("form-encoded");
    assert!(form.contains(&("metadata[order_id]".into(), "o1".into())));
    assert!(form.contains(&("amount".into(), "4900".into())));
}

/// Scripted: a 500 that says Stripe-Should-Retry: false, and a card error, are not retried.
#[test]
fn permanent_answers_are_not_retried() {
    let server = FakeHttp::start(vec![
        Answer::json(500, serde_json::json!({"error": {"message": "no"}}))
            .header("Stripe-Should-Retry", "false"),
        Answer::json(
            402,
            serde_json::json!({"error": {"type": "card_error", "code": "card_declined"}}),
        )
        .header("Request-Id", "req_123"),
    ]);
    let stripe = client(&server.base);
    let err = stripe.payment_intent("pi_1").expect_err("refused");
    assert!(matches!(err, StripeError::Api { status: 500, .. }));
    let err = stripe.payment_intent("pi_1").expect_err("declined");
    match &err {
        StripeError::Api {
            status, request_id, ..
        } => {
            assert_eq!(*status, 402);
            assert_eq!(request_id.as_deref(), Some("req_123"));
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    assert_eq!(err.code(), Some("card_declined"));
    assert_eq!(server.received().len(), 2, "one request each");
}

/// Scripted: Retry-After is waited for; retries stop after the policy's maximum.
#[test]
fn retry_after_is_honoured_and_retries_end() {
    let server = FakeHttp::start(vec![
        Answer::json(503, serde_json::json!({})).header("Retry-After", "1"),
        Answer::json(503, serde_json::json!({})),
        Answer::json(503, serde_json::json!({})),
        Answer::json(503, serde_json::json!({})),
    ]);
    let stripe = client(&server.base);
    let started = std::time::Instant::now();
    let err = stripe.payment_intent("pi_1").expect_err("gives up");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );
    assert!(err.is_transient());
    assert_eq!(
        server.received().len(),
        4,
        "the first try and three retries"
    );
}

/// Nothing listens: a connection error, retried, then reported as transient.
#[test]
fn an_unreachable_stripe_is_a_transient_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let err = client(&format!("http://127.0.0.1:{port}"))
        .payment_intent("pi_1")
        .expect_err("nobody listens");
    assert!(matches!(err, StripeError::Network(_)), "{err:?}");
    assert!(err.is_transient());
}
