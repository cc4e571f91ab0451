//! Intake and payment through the real binary: `compass serve` against localstripe, which
//! confirms payments and sends signed webhooks. Events localstripe cannot emit (refunds,
//! disputes) are signed fixtures built from Stripe's API reference, delivered by the test.

use std::time::{Duration, Instant};

use compass::order::{Event, Policy, Status};
use serde_json::json;

use crate::services::service;
use crate::support::{Install, STRIPE_KEY, Serving, WEBHOOK_SECRET, eventually};

pub fn localstripe() -> String {
    service("COMPASS_TEST_STRIPE_URL")
}

/// A form-encoded call to localstripe, as Stripe.js or the Dashboard would make it.
pub fn stripe_post(path: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(&format!("{}{path}", localstripe()))
        .header("Authorization", &format!("Bearer {STRIPE_KEY}"))
        .send_form(form.iter().copied())
        .expect("localstripe answers");
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().expect("body");
    (status, serde_json::from_str(&body).unwrap_or(json!(null)))
}

/// A GET from localstripe with the secret key, as JSON.
pub fn stripe_get(path: &str) -> serde_json::Value {
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let body = agent
        .get(&format!("{}{path}", localstripe()))
        .header("Authorization", &format!("Bearer {STRIPE_KEY}"))
        .call()
        .expect("localstripe answers")
        .body_mut()
        .read_to_string()
        .expect("a body");
    serde_json::from_str(&body).expect("JSON")
}

/// Points localstripe's webhooks at `server` (localstripe sends every event to every hook).
pub fn register_webhook(server: &Serving) {
    let id = format!("compass-{}", server.base.rsplit(':').next().unwrap_or("x"));
    let (status, _) = stripe_post(
        &format!("/_config/webhooks/{id}"),
        &[
            ("url", &format!("{}/webhooks/stripe", server.base)),
            ("secret", WEBHOOK_SECRET),
        ],
    );
    assert_eq!(status, 200, "webhook registered");
}

pub fn order_json(tier: &str, email: &str) -> String {
    json!({
        "company": "Analytical Engines Ltd", "industry": "Manufacturing", "employees": "11-50",
        "country": "United Kingdom", "name": "Ada Lovelace", "email": email, "tier": tier,
        "strategy_1": 4, "data_2": "3", "process": "Quoting takes a week."
    })
    .to_string()
}

pub fn place_json_order(server: &Serving, tier: &str, email: &str) -> (String, String) {
    let (status, _, body) = server.post(
        "/orders",
        "application/json",
        order_json(tier, email).as_bytes(),
    );
    assert_eq!(status, 201, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let order_id = answer["order_id"].as_str().expect("order id").to_owned();
    let intent = match answer["client_secret"].as_str() {
        Some(secret) => secret.split("_secret_").next().expect("pi id").to_owned(),
        // Stripe did not answer within serve's deadline (seen under faketime on a busy
        // machine): the order is kept, and its payment page prepares the payment, as a
        // customer's browser would find it.
        None => {
            let pay_url = answer["pay_url"].as_str().expect("pay url");
            let path = &pay_url[pay_url.find("/pay/").expect("a payment path")..];
            let (status, page) = server.get(path);
            assert_eq!(status, 200, "the payment page prepares the payment: {page}");
            order_detail(server, &order_id).payments[0]
                .payment_intent_id
                .clone()
        }
    };
    (order_id, intent)
}

/// Confirms a PaymentIntent with a test card, as Stripe.js does in the browser.
pub fn pay(intent: &str, card: &str) -> u16 {
    let (status, body) = stripe_post(
        &format!("/v1/payment_intents/{intent}"),
        &[("payment_method", card)],
    );
    assert_eq!(status, 200, "{body}");
    stripe_post(&format!("/v1/payment_intents/{intent}/confirm"), &[]).0
}

/// Waits for the webhook to mark the order paid. localstripe sends each event once and its
/// sender crashes when a webhook is registered mid-delivery ("dictionary changed size during
/// iteration", seen when tests run in parallel); real Stripe retries a delivery that did not
/// arrive, so after a few seconds this does what Stripe would: it takes the event from the
/// API's event list and delivers it, signed, again.
pub fn wait_until_paid(server: &Serving, order_id: &str, intent: &str) {
    let paid = || status_of(server, order_id) == Status::Paid;
    for _ in 0..50 {
        if paid() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let events = stripe_get("/v1/events?type=payment_intent.succeeded&limit=100");
    let event = events["data"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|e| e["type"] == "payment_intent.succeeded" && e["data"]["object"]["id"] == intent)
        .expect("localstripe recorded the payment's event");
    let (status, _) = server.deliver(&event.to_string());
    assert_eq!(status, 200);
    eventually(20, "the order to be paid", paid);
}

pub fn status_of(server: &Serving, order_id: &str) -> Status {
    server
        .install
        .db()
        .order(order_id)
        .expect("read")
        .expect("order")
        .order
        .status
}

pub fn order_detail(server: &Serving, order_id: &str) -> compass::db::OrderDetail {
    server
        .install
        .db()
        .order_detail(order_id)
        .expect("read")
        .expect("order")
}

fn timeline(server: &Serving, order_id: &str) -> Vec<String> {
    order_detail(server, order_id)
        .timeline
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[test]
fn a_form_order_gets_a_payment_page() {
    let server = Serving::start(Install::with_stripe(&localstripe()).without_rate_limits());
    let form = format!(
        "company=Acme+%3Cb%3ELtd%3C%2Fb%3E&industry=Manufacturing&employees=11-50\
         &country=UK&name=Ada&email=ada%40example.com&tier=standard&strategy_1=4&started={}",
        server.form_started()
    );
    let (status, location, _) = server.post(
        "/orders",
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    );
    assert_eq!(status, 303);
    let location = location.expect("redirects to the payment page");
    let path = location
        .strip_prefix("http://127.0.0.1:8080")
        .expect("public_url");
    assert!(path.starts_with("/pay/"), "{path}");

    let (status, page) = server.get(path);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-publishable-key=\"pk_test_compass\""));
    // Stripe.js from Stripe, on the release train of the pinned API version.
    assert!(
        page.contains("<script src=\"https://js.stripe.com/endive/stripe.js\"></script>"),
        "{page}"
    );
    assert!(
        page.contains("Acme &lt;b&gt;Ltd&lt;/b&gt;"),
        "the company is shown escaped"
    );
    let secret = page
        .split("data-client-secret=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("client secret on the page")
        .to_owned();
    assert!(secret.starts_with("pi_"), "{secret}");
    let (_, again) = server.get(path);
    assert!(
        again.contains(&secret),
        "a reload shows the same PaymentIntent"
    );

    let orders = server
        .install
        .db()
        .list_orders(&compass::db::OrderFilter {
            limit: 10,
            ..Default::default()
        })
        .expect("list");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].status, Status::PendingPayment);
    assert_eq!(orders[0].company, "Acme <b>Ltd</b>", "stored verbatim");
    assert_eq!(
        orders[0].amount_cents, 14_900,
        "the price comes from the configuration"
    );
    let detail = server
        .install
        .db()
        .order_detail(&orders[0].id)
        .expect("read")
        .expect("order");
    assert_eq!(detail.payments.len(), 1);
    let intent = secret.split("_secret_").next().unwrap_or_default();
    assert_eq!(detail.payments[0].payment_intent_id, intent);

    // Paid at Stripe, and no webhook here yet (none is registered): back on the payment page,
    // the customer finds the order's status, never a second payment form.
    assert_eq!(pay(intent, "pm_card_visa"), 200);
    let (status, headers, _) = server.get_bytes(path);
    assert_eq!(status, 303);
    let location = headers.iter().find(|(name, _)| name == "location");
    assert_eq!(
        location.map(|(_, to)| to.as_str()),
        Some(format!("http://127.0.0.1:8080/status/{}", detail.status_token).as_str())
    );
}

/// A webhook is a trigger, never the truth: a signed `payment_intent.succeeded` whose payload
/// says "succeeded" for a PaymentIntent that Stripe's API says is unpaid pays nothing.
#[test]
fn an_order_is_paid_only_when_stripes_api_says_so_whatever_the_event_says() {
    let server = Serving::start(Install::with_stripe(&localstripe()));
    let (order_id, intent) = place_json_order(&server, "standard", "payload@example.com");
    let claimed = event(
        &format!("evt_claimed_paid_{}", std::process::id()),
        "payment_intent.succeeded",
        json!({
            "id": intent, "object": "payment_intent", "amount": 14900, "currency": "usd",
            "status": "succeeded", "metadata": {"order_id": order_id},
        }),
    );
    let (status, body) = server.deliver(&claimed);
    assert_eq!(status, 200, "{body}");
    let id = format!("evt_claimed_paid_{}", std::process::id());
    eventually(10, "the event to be handled", || {
        server
            .install
            .db()
            .stripe_event(&id)
            .expect("read")
            .is_some_and(|e| e.handled_at.is_some())
    });
    assert_eq!(status_of(&server, &order_id), Status::PendingPayment);
    let kinds = timeline(&server, &order_id);
    assert!(!kinds.iter().any(|k| k == "payment_confirmed"), "{kinds:?}");
}

/// A webhook is answered 2xx only once it is committed: while the store cannot take it, the
/// answer is 500 (Stripe then sends it again), nothing is kept, and the next delivery is.
#[test]
fn a_webhook_the_store_cannot_take_is_answered_500_and_taken_when_sent_again() {
    let server = Serving::start(Install::new());
    let id = format!("evt_store_busy_{}", std::process::id());
    let payload = event(
        &id,
        "customer.created",
        json!({"id": "cus_1", "object": "customer"}),
    );
    let stored = || {
        server
            .install
            .db()
            .stripe_event(&id)
            .expect("read")
            .is_some()
    };
    let blocker = rusqlite::Connection::open(server.install.database()).expect("open");
    blocker
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("hold the write lock");
    let (status, body) = server.deliver(&payload);
    assert_eq!(status, 500, "{body}");
    blocker.execute_batch("ROLLBACK").expect("let go");
    assert!(!stored(), "nothing kept from a delivery answered 500");
    let (status, body) = server.deliver(&payload);
    assert_eq!(status, 200, "{body}");
    assert!(stored());
}

#[test]
fn paying_with_a_card_marks_the_order_paid_exactly_once() {
    let server = Serving::start(Install::with_stripe(&localstripe()));
    register_webhook(&server);
    let (order_id, intent) = place_json_order(&server, "premium", "grace@example.com");
    assert_eq!(pay(&intent, "pm_card_visa"), 200);
    wait_until_paid(&server, &order_id, &intent);

    let detail = order_detail(&server, &order_id);
    assert_eq!(detail.summary.amount_cents, 39_900);
    assert_eq!(detail.payments[0].status, "succeeded");
    assert!(detail.payments[0].charge_id.is_some());
    assert_eq!(detail.emails.len(), 1, "one payment confirmation queued");
    assert_eq!(detail.emails[0].kind, "payment_confirmation");

    // Stripe delivers it again, and again with a fresh signature: nothing changes.
    let events = server
        .install
        .db()
        .stripe_events(false, 100)
        .expect("events");
    let succeeded = events
        .iter()
        .find(|e| {
            e.kind == "payment_intent.succeeded" && e.object_id.as_deref() == Some(intent.as_str())
        })
        .expect("the event is stored");
    let stored = server
        .install
        .db()
        .stripe_event(&succeeded.id)
        .expect("read")
        .expect("event");
    for _ in 0..2 {
        let (status, body) = server.deliver(&stored.payload);
        assert_eq!(status, 200);
        assert!(body.contains("\"duplicate\":true"), "{body}");
    }
    let kinds = timeline(&server, &order_id);
    assert_eq!(
        kinds.iter().filter(|k| *k == "payment_confirmed").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(order_detail(&server, &order_id).emails.len(), 1);
}

#[test]
fn a_declined_card_leaves_the_order_payable() {
    let server = Serving::start(Install::with_stripe(&localstripe()));
    register_webhook(&server);
    let (order_id, intent) = place_json_order(&server, "starter", "linus@example.com");
    // localstripe answers the confirmation, then reports the decline as payment_failed.
    pay(&intent, "pm_card_chargeCustomerFail");
    eventually(20, "the failure to be recorded", || {
        timeline(&server, &order_id).contains(&"payment_failed".to_owned())
    });
    let detail = order_detail(&server, &order_id);
    assert_eq!(detail.summary.status, Status::PendingPayment);
    assert!(detail.last_error.is_some(), "the decline is recorded");
    assert!(detail.emails.is_empty(), "no confirmation");
}

/// A paid order set up through the library, with its PaymentIntent and charge recorded.
fn paid_order(server: &Serving, n: u32) -> (String, String, String) {
    let mut db = server.install.db();
    let now = time::OffsetDateTime::now_utc();
    let method_version = crate::seed::builtin_version(&mut db);
    let order = db
        .create_order(
            &compass::db::NewOrder {
                email: format!("fixture{n}@example.com"),
                name: "Fixture".into(),
                company: "Fixture Ltd".into(),
                tier: crate::seed::tier("standard"),
                amount_cents: 14_900,
                currency: "usd".into(),
                questionnaire: json!({}),
                method_version,
                terms: None,
            },
            now,
        )
        .expect("order");
    let (intent, charge) = (
        format!("pi_fixture_{n}_{}", std::process::id()),
        format!("ch_fixture_{n}_{}", std::process::id()),
    );
    db.upsert_payment(
        &compass::db::PaymentRecord {
            order_id: &order.id,
            payment_intent_id: &intent,
            status: "succeeded",
            amount_cents: 14_900,
            currency: "usd",
            charge_id: Some(&charge),
            last_error: None,
        },
        now,
    )
    .expect("payment");
    let confirmed = Event::PaymentConfirmed {
        payment_intent: intent.clone(),
        amount_cents: 14_900,
        currency: "usd".into(),
    };
    db.apply(&order.id, &confirmed, &Policy::default(), "test", now)
        .expect("stored")
        .expect("applies");
    (order.id, intent, charge)
}

/// A Stripe event envelope (API reference: "The Event object").
fn event(id: &str, kind: &str, object: serde_json::Value) -> String {
    json!({
        "id": id, "object": "event", "type": kind, "api_version": "2026-09-30.endive",
        "created": time::OffsetDateTime::now_utc().unix_timestamp(), "livemode": false,
        "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
        "data": { "object": object },
    })
    .to_string()
}

/// Fixture (API reference, "The Charge object"): a charge refunded in full from the Dashboard.
pub fn charge_refunded(n: u32, intent: &str, charge: &str) -> String {
    event(
        &format!("evt_charge_refunded_{n}_{}", std::process::id()),
        "charge.refunded",
        json!({
            "id": charge, "object": "charge", "amount": 14900, "amount_captured": 14900,
            "amount_refunded": 14900, "currency": "usd", "payment_intent": intent,
            "refunded": true, "status": "succeeded", "metadata": {},
        }),
    )
}

/// Fixture (API reference, "The Refund object"): compass's refund number 1, succeeded.
fn refund_updated(n: u32, order_id: &str, intent: &str, charge: &str) -> String {
    event(
        &format!("evt_refund_updated_{n}_{}", std::process::id()),
        "refund.updated",
        json!({
            "id": format!("re_fixture_{n}"), "object": "refund", "amount": 14900,
            "currency": "usd", "charge": charge, "payment_intent": intent, "status": "succeeded",
            "metadata": {"order_id": order_id, "refund_number": "1"},
        }),
    )
}

/// Fixture (API reference, "The Dispute object").
fn dispute(n: u32, kind: &str, status: &str, intent: &str, charge: &str) -> String {
    event(
        &format!("evt_{}_{n}_{}", kind.replace('.', "_"), std::process::id()),
        kind,
        json!({
            "id": format!("dp_fixture_{n}_{}", std::process::id()), "object": "dispute",
            "amount": 14900, "currency": "usd", "charge": charge, "payment_intent": intent,
            "reason": "fraudulent", "status": status,
        }),
    )
}

/// The order's timeline holds one dispute, opened once and closed once.
fn opened_and_closed_once(server: &Serving, order_id: &str) {
    let kinds = timeline(server, order_id);
    for kind in ["dispute_opened", "dispute_closed"] {
        assert_eq!(kinds.iter().filter(|k| *k == kind).count(), 1, "{kinds:?}");
    }
}

fn deliver_twice(server: &Serving, payloads: &[String]) {
    for payload in payloads.iter().chain(payloads) {
        let (status, body) = server.deliver(payload);
        assert_eq!(status, 200, "{body}");
    }
}

#[test]
fn refund_fixtures_settle_once_in_either_order() {
    let server = Serving::start(Install::with_stripe(&localstripe()));
    for (n, refund_first) in [(1, true), (2, false)] {
        let (order_id, intent, charge) = paid_order(&server, n);
        // compass issued refund number 1 (as `compass refund` will); Stripe then reports it.
        let request = Event::RefundRequested {
            source: compass::order::RefundSource::Operator,
            reason: "goodwill".into(),
            amount_cents: None,
            prior_refunds: 0,
        };
        server
            .install
            .db()
            .apply(
                &order_id,
                &request,
                &Policy::default(),
                "operator",
                time::OffsetDateTime::now_utc(),
            )
            .expect("stored")
            .expect("applies");
        let mut payloads = vec![
            refund_updated(n, &order_id, &intent, &charge),
            charge_refunded(n, &intent, &charge),
        ];
        if !refund_first {
            payloads.reverse();
        }
        deliver_twice(&server, &payloads);
        eventually(10, "the order to be refunded", || {
            status_of(&server, &order_id) == Status::Refunded
        });
        let detail = order_detail(&server, &order_id);
        assert_eq!(
            detail.summary.refunded_cents, 14_900,
            "refunded once, not twice"
        );
        let emails: Vec<_> = detail.emails.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            emails,
            ["payment_confirmation", "refund_processed"],
            "order {n}"
        );
        assert_eq!(detail.refunds.len(), 1);
        assert_ne!(detail.refunds[0].status, "pending", "settled");
    }
}

/// Stripe does not promise the order of its events: a refund made in the Dashboard can be
/// reported before the payment it returns. The refund waits for the payment (it is not marked
/// handled), and is applied as soon as the payment is, so the order ends refunded and no report
/// is ever written for money already returned.
#[test]
fn a_refund_reported_before_its_payment_waits_for_it_and_the_order_ends_refunded() {
    let server = Serving::start(Install::with_stripe(&localstripe()).without_rate_limits());
    let (order_id, intent) = place_json_order(&server, "standard", "early-refund@example.com");
    assert_eq!(pay(&intent, "pm_card_visa"), 200);
    let refunded = charge_refunded(9, &intent, &format!("ch_early_{}", std::process::id()));
    let (status, body) = server.deliver(&refunded);
    assert_eq!(status, 200, "{body}");
    let waiting = || {
        server
            .install
            .db()
            .stripe_events(true, 10)
            .expect("events")
            .into_iter()
            .filter(|e| e.kind == "charge.refunded")
            .collect::<Vec<_>>()
    };
    eventually(10, "the refund to fail once and wait", || {
        waiting().first().is_some_and(|e| e.attempts == 1)
    });
    assert_eq!(status_of(&server, &order_id), Status::PendingPayment);
    let stored = &waiting()[0];
    assert_eq!(stored.order_id.as_deref(), Some(order_id.as_str()));
    assert!(
        stored
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("its payment is not recorded yet")),
        "{stored:?}"
    );

    let succeeded = event(
        &format!("evt_pi_succeeded_9_{}", std::process::id()),
        "payment_intent.succeeded",
        json!({ "id": intent, "object": "payment_intent", "status": "succeeded",
                "amount": 14900, "currency": "usd", "metadata": { "order_id": order_id } }),
    );
    let (status, body) = server.deliver(&succeeded);
    assert_eq!(status, 200, "{body}");
    eventually(10, "the order to end refunded", || {
        status_of(&server, &order_id) == Status::Refunded
    });
    assert_eq!(
        timeline(&server, &order_id)
            .iter()
            .filter(|k| *k != "created")
            .collect::<Vec<_>>(),
        ["payment_confirmed", "refund_succeeded"],
        "paid, then refunded at once: never claimed for a report"
    );
    assert!(waiting().is_empty(), "every event handled");
}

/// Handling a payment reads the PaymentIntent back from Stripe, which can be slow. With Stripe
/// taking 3 s a call, a burst of payment events (more than serve has web workers) leaves the
/// pages answering at once: the events wait for the event handlers, never for a web worker.
/// (Before, each web worker handled its webhook's event after answering, and the fifth request
/// waited out a whole Stripe call.)
#[test]
fn a_slow_stripe_never_holds_the_pages_while_payments_are_handled() {
    let slow = crate::fake_http::SlowProxy::start(&localstripe(), Duration::from_secs(3));
    let server = Serving::start(Install::with_stripe(&slow.base).without_rate_limits());
    let mut orders = Vec::new();
    for n in 0..6 {
        let mut db = server.install.db();
        let method_version = crate::seed::builtin_version(&mut db);
        let order = db
            .create_order(
                &compass::db::NewOrder {
                    email: format!("burst{n}@example.com"),
                    name: "Burst".into(),
                    company: "Burst Ltd".into(),
                    tier: crate::seed::tier("standard"),
                    amount_cents: 14_900,
                    currency: "usd".into(),
                    questionnaire: json!({}),
                    method_version,
                    terms: None,
                },
                time::OffsetDateTime::now_utc(),
            )
            .expect("order");
        let (status, intent) = stripe_post(
            "/v1/payment_intents",
            &[
                ("amount", "14900"),
                ("currency", "usd"),
                ("metadata[order_id]", &order.id),
            ],
        );
        assert_eq!(status, 200, "{intent}");
        let intent = intent["id"].as_str().expect("id").to_owned();
        assert_eq!(pay(&intent, "pm_card_visa"), 200);
        orders.push((order.id, intent));
    }
    for (n, (_, intent)) in orders.iter().enumerate() {
        let succeeded = event(
            &format!("evt_burst_{n}_{}", std::process::id()),
            "payment_intent.succeeded",
            json!({ "id": intent, "object": "payment_intent", "status": "succeeded" }),
        );
        let started = Instant::now();
        let (status, body) = server.deliver(&succeeded);
        assert_eq!(status, 200, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the webhook is answered at once"
        );
    }
    let slowest = (0..5)
        .map(|_| {
            let started = Instant::now();
            assert_eq!(server.get("/").0, 200);
            assert_eq!(server.get("/healthz").0, 200);
            started.elapsed()
        })
        .max()
        .expect("timed");
    assert!(
        slowest < Duration::from_secs(1),
        "pages waited {slowest:?} while Stripe was slow"
    );
    eventually(30, "every order paid", || {
        orders
            .iter()
            .all(|(id, _)| status_of(&server, id) == Status::Paid)
    });
}

/// Creating an order's PaymentIntent happens while the customer waits: with Stripe hanging,
/// the order is kept and answered (201, no client secret yet, the payment page to retry from)
/// within the web workers' deadline, and the other workers go on serving meanwhile. (Before,
/// the call had 40 s and three retries: minutes, for the customer and for the worker.)
#[test]
fn a_hanging_stripe_costs_a_customer_seconds_and_holds_no_other_page() {
    let hanging = crate::fake_http::SlowProxy::start(&localstripe(), Duration::from_secs(120));
    let server = Serving::start(Install::with_stripe(&hanging.base).without_rate_limits());
    std::thread::scope(|scope| {
        let placing = scope.spawn(|| {
            let started = Instant::now();
            let answer = server.post(
                "/orders",
                "application/json",
                order_json("starter", "hanging@example.com").as_bytes(),
            );
            (answer, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(500));
        let started = Instant::now();
        assert_eq!(server.get("/").0, 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "another visitor is served while Stripe hangs"
        );
        let ((status, _, body), took) = placing.join().expect("the order request");
        assert_eq!(status, 201, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(answer["client_secret"], serde_json::Value::Null, "{answer}");
        assert!(answer["pay_url"].is_string(), "{answer}");
        assert!(
            took < Duration::from_secs(15),
            "the customer waited {took:?} for a hanging Stripe"
        );
        let order_id = answer["order_id"].as_str().expect("order id");
        assert_eq!(status_of(&server, order_id), Status::PendingPayment);
    });
}

#[test]
fn dispute_fixtures_stop_work_and_survive_reordering() {
    let server = Serving::start(Install::with_stripe(&localstripe()));
    for (n, created_first) in [(3, true), (4, false)] {
        let (order_id, intent, charge) = paid_order(&server, n);
        let mut payloads = vec![
            dispute(
                n,
                "charge.dispute.created",
                "needs_response",
                &intent,
                &charge,
            ),
            dispute(n, "charge.dispute.closed", "lost", &intent, &charge),
        ];
        if !created_first {
            payloads.reverse();
        }
        deliver_twice(&server, &payloads);
        eventually(10, "the dispute to close", || {
            status_of(&server, &order_id) == Status::Refunded
        });
        opened_and_closed_once(&server, &order_id);
    }
    // A dispute left open stops the order and tells the operator.
    let (order_id, intent, charge) = paid_order(&server, 5);
    deliver_twice(
        &server,
        &[dispute(
            5,
            "charge.dispute.created",
            "needs_response",
            &intent,
            &charge,
        )],
    );
    eventually(10, "the order to be disputed", || {
        status_of(&server, &order_id) == Status::Disputed
    });

    // Each dispute reached the operator once, however often its events were delivered.
    let operator = crate::maildev::recipient("dispute-operator");
    server
        .install
        .use_smtp(&crate::services::service("COMPASS_TEST_SMTP"));
    let config = std::fs::read_to_string(server.install.config()).expect("read config");
    let config = config.replace(
        "operator = \"you@example.com\"",
        &format!("operator = \"{operator}\""),
    );
    std::fs::write(server.install.config(), config).expect("write config");
    for _ in 0..2 {
        let out = server
            .install
            .command(&["process"])
            .env_remove("COMPASS_NOW")
            .env("COMPASS_ANTHROPIC_API_KEY", "sk-ant-test")
            .env("COMPASS_STRIPE_SECRET_KEY", crate::support::STRIPE_KEY)
            .output()
            .expect("run process");
        assert!(
            out.status.success(),
            "{}",
            crate::support::text(&out.stderr)
        );
    }
    let alerts = server
        .install
        .db()
        .store_counts()
        .expect("counts")
        .emails
        .into_iter()
        .filter(|(kind, _, _)| kind == "operator_alert")
        .map(|(_, _, n)| n)
        .sum::<i64>();
    assert!(alerts >= 2, "orders 3 and 5 at least: {alerts}");
    eventually(10, "the alerts in maildev", || {
        crate::maildev::inbox(&operator).len() == usize::try_from(alerts).expect("count")
    });
    let about_order_5: Vec<_> = crate::maildev::inbox(&operator)
        .into_iter()
        .filter(|m| m["text"].as_str().unwrap_or_default().contains(&order_id))
        .collect();
    assert_eq!(about_order_5.len(), 1, "one alert for one dispute");
    assert!(
        about_order_5[0]["subject"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Action needed: dispute dp_fixture_5_"),
        "{:?}",
        about_order_5[0]["subject"]
    );
}

/// An inquiry (`warning_needs_response`) that closes without a chargeback (`warning_closed`)
/// leaves the money with the business: the order goes back to work, nothing is refunded.
#[test]
fn an_inquiry_that_closes_gives_the_order_back_and_refunds_nothing() {
    let server = Serving::start(Install::with_stripe(&localstripe()));
    let (order_id, intent, charge) = paid_order(&server, 7);
    deliver_twice(
        &server,
        &[dispute(
            7,
            "charge.dispute.created",
            "warning_needs_response",
            &intent,
            &charge,
        )],
    );
    eventually(10, "the order to wait for the inquiry", || {
        status_of(&server, &order_id) == Status::Disputed
    });
    deliver_twice(
        &server,
        &[dispute(
            7,
            "charge.dispute.closed",
            "warning_closed",
            &intent,
            &charge,
        )],
    );
    eventually(10, "the inquiry to close", || {
        status_of(&server, &order_id) == Status::Paid
    });
    assert_eq!(order_detail(&server, &order_id).summary.refunded_cents, 0);
}

#[test]
fn an_event_for_an_order_not_here_yet_is_kept_and_retried() {
    let server = Serving::start(Install::with_stripe(&localstripe()));
    let payload = charge_refunded(6, "pi_not_yet", "ch_not_yet");
    let (status, _) = server.deliver(&payload);
    assert_eq!(status, 200, "acknowledged");
    let id = format!("evt_charge_refunded_6_{}", std::process::id());
    eventually(10, "a failed attempt", || {
        server
            .install
            .db()
            .stripe_event(&id)
            .expect("read")
            .is_some_and(|e| e.attempts >= 1)
    });
    let stored = server
        .install
        .db()
        .stripe_event(&id)
        .expect("read")
        .expect("kept");
    assert!(stored.handled_at.is_none());
    assert!(stored.next_attempt_at.is_some(), "scheduled for a retry");
    assert!(
        stored
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("no order has payment")
    );

    // Failing on: after its fifth failure the operator is alerted, once, whatever follows.
    let attempts = || {
        server
            .install
            .db()
            .stripe_event(&id)
            .expect("read")
            .map_or(0, |e| e.attempts)
    };
    for _ in 0..30 {
        if attempts() >= compass::payments::EVENT_ALERT_AFTER + 2 {
            break;
        }
        let out = server
            .install
            .command(&["events", "replay", &id])
            .env_remove("COMPASS_NOW")
            .output()
            .expect("run events replay");
        assert_eq!(out.status.code(), Some(1), "still not handled");
    }
    assert!(attempts() >= compass::payments::EVENT_ALERT_AFTER + 2);
    let fact = format!("event {id} not handled");
    let conn = rusqlite::Connection::open(server.install.database()).expect("open");
    let alerts: Vec<(String, String)> = conn
        .prepare("SELECT fact, message FROM emails WHERE kind = 'operator_alert'")
        .expect("prepare")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].0, fact);
    assert!(
        alerts[0]
            .1
            .contains(&format!("`compass events replay {id}`")),
        "{}",
        alerts[0].1
    );
}

#[test]
fn reconcile_repairs_an_order_whose_webhook_never_came() {
    // No webhook is registered for this server: the payment succeeds at Stripe unseen.
    let server = Serving::start(Install::with_stripe(&localstripe()));
    let (order_id, intent) = place_json_order(&server, "standard", "barbara@example.com");
    assert_eq!(pay(&intent, "pm_card_visa"), 200);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(status_of(&server, &order_id), Status::PendingPayment);

    let reconcile = |args: &[&str]| {
        let mut command = server.install.command(args);
        command
            .env_remove("COMPASS_NOW")
            .env("COMPASS_STRIPE_SECRET_KEY", STRIPE_KEY);
        command.output().expect("run reconcile")
    };
    let dry = reconcile(&["reconcile", "--since", "1h", "--dry-run"]);
    let printed = crate::support::stdout(&dry);
    assert!(
        printed.contains(&order_id) && printed.contains("would become paid"),
        "{printed}"
    );
    assert!(printed.contains("dry run: nothing was changed"));
    assert_eq!(
        status_of(&server, &order_id),
        Status::PendingPayment,
        "a dry run changes nothing"
    );

    let out = reconcile(&["reconcile", "--since", "1h"]);
    let printed = crate::support::stdout(&out);
    assert!(printed.contains(intent.as_str()), "{printed}");
    assert!(printed.contains("pending_payment -> paid"), "{printed}");
    assert_eq!(status_of(&server, &order_id), Status::Paid);
    let kinds = timeline(&server, &order_id);
    assert_eq!(
        kinds.iter().filter(|k| *k == "payment_confirmed").count(),
        1
    );

    // Run again: nothing more to repair for this order.
    let again = crate::support::stdout(&reconcile(&["reconcile", "--since", "1h", "--json"]));
    let report: serde_json::Value = serde_json::from_str(&again).expect("JSON");
    let repaired: Vec<_> = report["repairs"]
        .as_array()
        .expect("repairs")
        .iter()
        .filter(|r| r["order_id"] == order_id.as_str())
        .collect();
    assert!(repaired.is_empty(), "{again}");
    assert_eq!(
        timeline(&server, &order_id)
            .iter()
            .filter(|k| *k == "payment_confirmed")
            .count(),
        1
    );
}

/// Disputes whose events never came (or came before compass could apply them, or longer ago
/// than Stripe keeps events): reconcile reads them from Stripe's Disputes API (the fake's
/// disputes carry exactly the fields of the official SDK's `Dispute`) and moves each order as
/// the events would have, once.
#[test]
fn reconcile_applies_the_disputes_an_order_does_not_show() {
    // No webhook is registered for this server: Stripe's events never reach it.
    let server = Serving::start(Install::with_stripe(&localstripe()));
    let reconcile = |args: &[&str]| {
        let mut command = server.install.command(args);
        command
            .env_remove("COMPASS_NOW")
            .env("COMPASS_STRIPE_SECRET_KEY", STRIPE_KEY);
        crate::support::stdout(&command.output().expect("run reconcile"))
    };
    let dispute = |intent: &str, status: &str| {
        let (code, body) = stripe_post(
            "/_config/disputes",
            &[
                ("payment_intent", intent),
                ("reason", "fraudulent"),
                ("status", status),
            ],
        );
        assert_eq!(code, 200, "{body}");
        body["id"].as_str().expect("dispute id").to_owned()
    };
    let moved = |id: &str, status: &str| {
        let (code, body) = stripe_post(&format!("/_config/disputes/{id}"), &[("status", status)]);
        assert_eq!(code, 200, "{body}");
    };
    let mut orders = Vec::new();
    for who in ["open", "lost", "inquiry"] {
        let (order_id, intent) =
            place_json_order(&server, "standard", &format!("dispute-{who}@example.com"));
        assert_eq!(pay(&intent, "pm_card_visa"), 200);
        orders.push((order_id, intent));
    }
    reconcile(&["reconcile", "--since", "1h"]);
    for (order_id, _) in &orders {
        assert_eq!(status_of(&server, order_id), Status::Paid);
    }
    let [(open, open_pi), (lost, lost_pi), (inquiry, inquiry_pi)] = &orders[..] else {
        unreachable!("three orders");
    };
    let chargeback = dispute(open_pi, "needs_response");
    let lost_one = dispute(lost_pi, "needs_response");
    moved(&lost_one, "lost");
    let question = dispute(inquiry_pi, "warning_needs_response");

    let dry = reconcile(&["reconcile", "--since", "1h", "--dry-run"]);
    assert!(
        dry.contains(&format!(
            "dispute {chargeback} needs_response at Stripe: paid would become disputed"
        )),
        "{dry}"
    );
    assert!(
        dry.contains(&format!(
            "dispute {lost_one} lost at Stripe: paid would become refunded"
        )),
        "{dry}"
    );
    assert_eq!(
        status_of(&server, open),
        Status::Paid,
        "a dry run changes nothing"
    );

    let printed = reconcile(&["reconcile", "--since", "1h"]);
    assert!(
        printed.contains(&format!(
            "dispute {chargeback} needs_response at Stripe: paid -> disputed"
        )),
        "{printed}"
    );
    assert_eq!(status_of(&server, open), Status::Disputed);
    assert_eq!(
        status_of(&server, lost),
        Status::Refunded,
        "the bank took the money back"
    );
    assert_eq!(
        status_of(&server, inquiry),
        Status::Disputed,
        "work waits for the inquiry"
    );

    // The chargeback is won, the inquiry closes without one: both orders go back to work,
    // and neither is recorded as refunded.
    moved(&chargeback, "won");
    moved(&question, "warning_closed");
    let printed = reconcile(&["reconcile", "--since", "1h"]);
    assert!(
        printed.contains(&format!(
            "dispute {question} warning_closed at Stripe: disputed -> paid"
        )),
        "{printed}"
    );
    for order in [open, inquiry] {
        assert_eq!(status_of(&server, order), Status::Paid);
        assert_eq!(order_detail(&server, order).summary.refunded_cents, 0);
    }
    for (order_id, _) in &orders {
        opened_and_closed_once(&server, order_id);
    }

    // Once applied, a dispute is never applied again.
    let again: serde_json::Value =
        serde_json::from_str(&reconcile(&["reconcile", "--since", "1h", "--json"])).expect("JSON");
    let ours: Vec<_> = again["repairs"]
        .as_array()
        .expect("repairs")
        .iter()
        .filter(|r| orders.iter().any(|(id, _)| r["order_id"] == id.as_str()))
        .collect();
    assert!(ours.is_empty(), "{ours:?}");
}

#[test]
fn events_lists_and_replays_what_was_received() {
    let server = Serving::start(Install::with_stripe(&localstripe()));
    let (order_id, intent, charge) = paid_order(&server, 7);
    let payload = charge_refunded(7, &intent, &charge);
    server.deliver(&payload);
    let id = format!("evt_charge_refunded_7_{}", std::process::id());
    eventually(10, "the refund to be handled", || {
        status_of(&server, &order_id) == Status::Refunded
    });

    let list = crate::support::stdout(&server.install.compass(&["events"]));
    assert!(
        list.contains(&id) && list.contains("charge.refunded"),
        "{list}"
    );
    let failed = crate::support::stdout(&server.install.compass(&["events", "--failed"]));
    assert_eq!(failed, "every event is handled\n");

    let mut replay = server.install.command(&["events", "replay", &id]);
    replay.env("COMPASS_STRIPE_SECRET_KEY", STRIPE_KEY);
    let printed = crate::support::stdout(&replay.output().expect("replay"));
    assert!(
        printed.contains("handled") && printed.contains("already applied"),
        "{printed}"
    );
    let detail = order_detail(&server, &order_id);
    assert_eq!(
        detail
            .emails
            .iter()
            .filter(|e| e.kind == "refund_processed")
            .count(),
        1
    );

    let unknown = server.install.compass(&["events", "replay", "evt_nope"]);
    assert_eq!(
        crate::support::one_error_line(&unknown),
        "error: no stored event evt_nope"
    );
}

#[test]
fn a_burst_of_webhooks_leaves_a_wal_of_at_most_4_mib() {
    // compass checkpoints the WAL every 250 pages (about 1 MiB) and starts it over at the
    // next write; a WAL that grew longer while a long read held checkpoints back is cut back
    // to journal_size_limit (4 MiB) when it starts over.
    let server = Serving::start(Install::new());
    let padding = "x".repeat(1_000);
    for i in 0..3_000 {
        let payload = json!({
            "id": format!("evt_wal_{i}"), "object": "event", "type": "customer.created",
            "created": 1, "data": { "object": { "id": format!("cus_wal_{i}"), "note": padding } },
        })
        .to_string();
        assert_eq!(server.deliver(&payload).0, 200);
    }
    let wal = server.install.database().with_extension("db-wal");
    let size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let during = size();
    assert!(during < 32 * 1024 * 1024, "the WAL is {during} bytes");
    // The next write after a complete checkpoint starts the WAL over.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let payload = json!({
        "id": "evt_wal_last", "object": "event", "type": "customer.created", "created": 1,
        "data": { "object": { "id": "cus_wal_last" } },
    })
    .to_string();
    assert_eq!(server.deliver(&payload).0, 200);
    let after = size();
    assert!(
        after <= 4 * 1024 * 1024,
        "the WAL is {after} bytes ({during} before)"
    );
    let stored = server
        .install
        .db()
        .stripe_events(false, 5_000)
        .expect("read")
        .len();
    assert_eq!(stored, 3_001);
}
