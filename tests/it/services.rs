//! The local fakes that later suites drive are installed, running on 127.0.0.1 and speak the
//! wire formats we rely on. `scripts/test-services start` runs them and `scripts/test` exports
//! their addresses; a missing one fails here, loudly.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The address of a running fake, from the variables `scripts/test` exports.
pub fn service(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run the tests with `scripts/test` (or `eval \"$(scripts/test-services env)\"` \
             after `scripts/test-services start`)"
        )
    })
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

#[test]
fn localstripe_creates_a_payment_intent() {
    let base = service("COMPASS_TEST_STRIPE_URL");
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let mut response = agent()
        .post(&format!("{base}/v1/payment_intents"))
        .header("Authorization", "Bearer sk_test_compass")
        .send_form([
            ("amount", "4900"),
            ("currency", "usd"),
            ("metadata[order_id]", "test-order"),
        ])
        .unwrap_or_else(|err| panic!("localstripe at {base} is not reachable: {err}"));
    let body = response.body_mut().read_to_string().expect("body");
    assert_eq!(response.status(), 200, "{body}");
    let intent: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(
        intent["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("pi_")),
        "{body}"
    );
    assert_eq!(intent["amount"], 4900);
    assert_eq!(intent["metadata"]["order_id"], "test-order");
    assert!(intent["client_secret"].is_string());
}

/// The Stripe fake confirms a PaymentIntent from the browser as Stripe does, and refuses what
/// Stripe refuses: another intent's secret, a parameter the stripe SDK does not declare, a
/// second payment of a paid intent; a declined card is a 402 `card_error`.
#[test]
fn localstripe_confirms_from_the_browser_only_as_stripe_would() {
    let base = service("COMPASS_TEST_STRIPE_URL");
    let (intent, secret) = {
        let (status, created) = crate::payments::stripe_post(
            "/v1/payment_intents",
            &[("amount", "4900"), ("currency", "usd")],
        );
        assert_eq!(status, 200, "{created}");
        let id = created["id"].as_str().expect("an id").to_owned();
        let secret = created["client_secret"].as_str().expect("a secret");
        (id, secret.to_owned())
    };
    let confirm = |secret: &str, number: &str, extra: &[(&str, &str)]| {
        let mut form = vec![
            ("key", "pk_test_compass"),
            ("client_secret", secret),
            ("payment_method_data[type]", "card"),
            ("payment_method_data[card][number]", number),
            ("payment_method_data[card][exp_month]", "12"),
            ("payment_method_data[card][exp_year]", "34"),
            ("payment_method_data[card][cvc]", "123"),
            ("return_url", "http://127.0.0.1:8080/status/t"),
        ];
        form.extend_from_slice(extra);
        let mut response = agent()
            .post(&format!("{base}/v1/payment_intents/{intent}/confirm"))
            .send_form(form)
            .expect("the fake answers");
        let body = response.body_mut().read_to_string().expect("body");
        let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        (response.status().as_u16(), answer)
    };
    let visa = "4242424242424242";
    let wrong = format!("{intent}_secret_wrong");
    assert_eq!(confirm(&wrong, visa, &[]).0, 401);
    let (status, refused) = confirm(&secret, visa, &[("payment_behaviour", "x")]);
    assert_eq!(status, 400);
    assert_eq!(
        refused["error"]["message"],
        "Received unknown parameter: payment_behaviour"
    );
    let (status, declined) = confirm(&secret, "4000000000000002", &[]);
    assert_eq!(status, 402);
    assert_eq!(declined["error"]["type"], "card_error");
    assert_eq!(declined["error"]["code"], "card_declined");
    assert_eq!(
        declined["error"]["payment_intent"]["status"],
        "requires_payment_method"
    );
    let (status, paid) = confirm(&secret, visa, &[]);
    assert_eq!((status, paid["status"].as_str()), (200, Some("succeeded")));
    let (status, again) = confirm(&secret, visa, &[]);
    assert_eq!(status, 400);
    assert_eq!(again["error"]["code"], "payment_intent_unexpected_state");
}

#[test]
fn llmock_answers_the_messages_api() {
    let base = service("COMPASS_TEST_CLAUDE_URL");
    let body = serde_json::json!({
        "model": compass::config::DEFAULT_CLAUDE_MODEL,
        "max_tokens": 64,
        "messages": [{ "role": "user", "content": "Say hello." }],
    });
    let mut response = agent()
        .post(&format!("{base}/v1/messages"))
        .header("authorization", "Bearer sk-ant-test-services")
        .header("anthropic-version", compass::claude::ANTHROPIC_VERSION)
        .header("content-type", "application/json")
        .send(body.to_string())
        .unwrap_or_else(|err| panic!("llmock at {base} is not reachable: {err}"));
    let text = response.body_mut().read_to_string().expect("body");
    assert_eq!(response.status(), 200, "{text}");
    let message: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(message["type"], "message", "{text}");
    assert_eq!(message["content"][0]["type"], "text", "{text}");
    assert!(message["usage"]["input_tokens"].is_u64(), "{text}");
}

#[test]
fn maildev_speaks_smtp_and_lists_mail() {
    let smtp = service("COMPASS_TEST_SMTP");
    let stream = TcpStream::connect(&smtp)
        .unwrap_or_else(|err| panic!("maildev's SMTP at {smtp} is not reachable: {err}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut greeting = String::new();
    reader.read_line(&mut greeting).expect("greeting");
    assert!(greeting.starts_with("220"), "{greeting}");
    (&stream).write_all(b"QUIT\r\n").expect("quit");

    let web = service("COMPASS_TEST_MAILDEV_URL");
    let mut response = agent()
        .get(&format!("{web}/api/email"))
        .call()
        .unwrap_or_else(|err| panic!("maildev's API at {web} is not reachable: {err}"));
    assert_eq!(response.status(), 200);
    let list: serde_json::Value =
        serde_json::from_str(&response.body_mut().read_to_string().expect("body")).expect("JSON");
    assert!(list.is_array());
}
