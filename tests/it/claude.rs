//! compass held to the real Claude API. The contract gate in front of llmock
//! (scripts/claude-gate.py) judges every request by the official `anthropic` SDK and answers a
//! broken one as the API does; these tests take each way an answer can go wrong to the end of
//! the order's path: retried later, or failed with one refund at Stripe (localstripe) and one
//! alert, and never a repair round built from an empty or a cut-off answer. Realistic replies
//! (tests/fixtures/claude) give the tokens and cost of one report per tier.

use compass::order::{Status, Tier};
use serde_json::{Value, json};
use time::Duration;

use crate::payments::stripe_post;
use crate::services::service;
use crate::support::{Install, NOW, STRIPE_KEY, stdout};

/// The test's own route; one named `wrong-...` breaks the API's rules on purpose.
fn route(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

/// An installation wired to localstripe and to the gate on `route`, with `edits` to its config.
fn install(route: &str, edits: &[(&str, &str)]) -> Install {
    let install = Install::with_stripe(&service("COMPASS_TEST_STRIPE_URL"));
    crate::seed::point_at_claude(
        &install.config(),
        &service("COMPASS_TEST_CLAUDE_URL"),
        route,
    )
    .expect("point at the gate");
    install.edit_config(edits)
}

/// A `tier` order of the realistic customer, paid for at localstripe: its id.
fn paid(install: &Install, tier: Tier) -> String {
    let amount = crate::seed::price_cents(&tier).to_string();
    let (status, intent) = stripe_post(
        "/v1/payment_intents",
        &[("amount", &amount), ("currency", "usd")],
    );
    assert_eq!(status, 200, "{intent}");
    let intent = intent["id"].as_str().expect("an id").to_owned();
    assert_eq!(crate::payments::pay(&intent, "pm_card_visa"), 200);
    let fields = crate::seed::realistic_answers(tier, "ada@harbourvale.example");
    crate::seed::paid_order_from(&mut install.db(), &fields, Some(&intent), NOW)
        .expect("a paid order")
}

/// One `compass process` pass at `at`, as JSON.
fn process(install: &Install, at: time::OffsetDateTime) -> Value {
    let mut command = install.command(&["process", "--json", "--concurrency", "1"]);
    command
        .env("COMPASS_NOW", compass::clock::rfc3339(at))
        .env("COMPASS_STRIPE_SECRET_KEY", STRIPE_KEY);
    serde_json::from_str(&stdout(&command.output().expect("run process"))).expect("JSON")
}

fn fixture(tier: Tier) -> String {
    let path = format!(
        "{}/tests/fixtures/claude/{}.json",
        env!("CARGO_MANIFEST_DIR"),
        tier.as_str()
    );
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// The operator alerts queued, their messages in order.
fn alerts(install: &Install) -> Vec<String> {
    let conn = rusqlite::Connection::open(install.database()).expect("open");
    conn.prepare("SELECT message FROM emails WHERE kind = 'operator_alert' ORDER BY id")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Asserts the order failed for good, was refunded in full once at Stripe and alerted once;
/// the alert's message.
fn failed_refunded_and_alerted_once(install: &Install, order_id: &str) -> String {
    let detail = install
        .db()
        .order_detail(order_id)
        .expect("read")
        .expect("order");
    assert_eq!(detail.summary.status, Status::Refunded, "{detail:#?}");
    assert_eq!(detail.refunds.len(), 1, "{:#?}", detail.refunds);
    assert_eq!(detail.refunds[0].source, "automatic");
    let at_stripe = crate::customers::localstripe_refunds(&detail);
    assert_eq!(at_stripe.len(), 1, "one refund at Stripe: {at_stripe:?}");
    assert_eq!(at_stripe[0]["status"], "succeeded");
    let alerts = alerts(install);
    assert_eq!(alerts.len(), 1, "one alert: {alerts:?}");
    alerts[0].clone()
}

/// Whether any request on `route` carried an assistant turn (a repair round).
fn repaired(route: &str) -> bool {
    crate::llmock::requests(route).iter().any(|r| {
        r["body"]["messages"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["role"] == "assistant"))
    })
}

#[test]
fn the_gate_answers_a_request_the_api_would_refuse_as_the_api_does() {
    let base = service("COMPASS_TEST_CLAUDE_URL");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let send = |body: Value| {
        let mut response = agent
            .post(&format!("{base}/v1/messages"))
            .header("authorization", "Bearer sk-ant-test-wrong-gate")
            .header("anthropic-version", compass::claude::ANTHROPIC_VERSION)
            .send(body.to_string())
            .expect("the gate answers");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("body");
        let error: Value = serde_json::from_str(&text).expect("JSON");
        (
            status,
            error["error"]["type"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            error["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let user = json!([{ "role": "user", "content": "Hello" }]);
    let (status, kind, message) = send(json!({
        "model": "claude-sonnet-4-5", "max_tokens": 10, "messages": user,
    }));
    assert_eq!((status, kind.as_str()), (404, "not_found_error"));
    assert_eq!(message, "model: claude-sonnet-4-5");

    let (status, kind, message) = send(json!({
        "model": compass::config::DEFAULT_CLAUDE_MODEL, "max_tokens": 10, "messages": user,
        "output_config": { "format": { "type": "json_schema", "schema": {
            "type": "object", "additionalProperties": false, "required": ["a"],
            "properties": { "a": { "type": "string", "minLength": 1 } },
        } } },
    }));
    assert_eq!((status, kind.as_str()), (400, "invalid_request_error"));
    assert!(
        message.contains("'minLength' is not supported"),
        "{message}"
    );

    let (status, _, message) = send(json!({
        "model": compass::config::DEFAULT_CLAUDE_MODEL, "max_tokens": 10,
        "messages": [
            { "role": "user", "content": "Hello" },
            { "role": "assistant", "content": "" },
            { "role": "user", "content": "Again" },
        ],
    }));
    assert_eq!(status, 400);
    assert_eq!(
        message,
        "messages.1: all messages must have non-empty content except for the optional final \
         assistant message"
    );

    let (status, _, message) = send(json!({
        "model": compass::config::DEFAULT_CLAUDE_MODEL, "max_tokens": 10, "messages": user,
        "temperature": 1.0,
    }));
    assert_eq!(status, 400);
    assert!(
        message.contains("temperature: Extra inputs are not permitted"),
        "{message}"
    );
}

#[test]
fn a_refusal_is_never_argued_with_and_fails_the_order_after_its_attempts() {
    let route = route("refusal");
    let install = install(&route, &[("max_attempts = 5", "max_attempts = 2")]);
    let order_id = paid(&install, crate::seed::tier("standard"));
    crate::llmock::script(
        &route,
        // As the API refuses: no text at all, the reason in stop_details.
        json!([{ "type": "reply", "text": "", "finish_reason": "refusal", "times": 2 }]),
    );
    let first = process(&install, NOW);
    assert_eq!(first["outcomes"][0]["result"], "retrying", "{first}");
    assert!(
        first["outcomes"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Claude declined to write this report")),
        "{first}"
    );
    let second = process(&install, NOW + Duration::hours(2));
    assert_eq!(second["outcomes"][0]["result"], "failed", "{second}");
    let alert = failed_refunded_and_alerted_once(&install, &order_id);
    assert!(alert.contains("order failed after 2 attempts"), "{alert}");
    assert!(alert.contains("stop reason refusal"), "{alert}");
    assert_eq!(
        crate::llmock::requests(&route).len(),
        2,
        "one call per attempt"
    );
    assert!(!repaired(&route), "a refusal is not sent back for repair");
}

/// An answer with no text is retried later, never sent back as an empty assistant turn.
#[test]
fn an_empty_answer_is_retried_later_and_never_sent_back() {
    let route = route("empty");
    let install = install(&route, &[]);
    paid(&install, crate::seed::tier("starter"));
    crate::llmock::script(&route, json!([{ "type": "reply", "text": "" }]));
    let run = process(&install, NOW);
    assert_eq!(run["outcomes"][0]["result"], "retrying", "{run}");
    assert!(
        run["outcomes"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Claude answered with no text")),
        "{run}"
    );
    assert_eq!(crate::llmock::requests(&route).len(), 1);
    assert!(!repaired(&route));
}

#[test]
fn an_answer_cut_off_at_max_tokens_is_asked_for_once_more_with_the_cap_and_never_repaired() {
    let route = route("max-tokens");
    let install = install(&route, &[]);
    let whole = fixture(crate::seed::tier("premium"));
    let cut = &whole[..whole.len() / 2];
    let order_id = paid(&install, crate::seed::tier("premium"));
    crate::llmock::script(
        &route,
        json!([
            { "type": "reply", "text": cut, "finish_reason": "max_tokens" },
            { "type": "reply", "text": whole },
        ]),
    );
    let run = process(&install, NOW);
    assert_eq!(run["outcomes"][0]["result"], "completed", "{run}");
    let asked: Vec<Value> = crate::llmock::requests(&route)
        .iter()
        .map(|r| r["body"]["max_tokens"].clone())
        .collect();
    assert_eq!(asked, [json!(16_000), json!(32_000)]);
    assert!(!repaired(&route), "the cut-off text is never sent back");
    let status = install.db().order(&order_id).expect("read").expect("order");
    assert_eq!(status.order.status, Status::Completed);
}

/// One way an attempt ends for good: its config edits, llmock's script, what the alert says.
struct Refusal {
    name: &'static str,
    edits: Vec<(&'static str, &'static str)>,
    script: Value,
    says: &'static str,
}

#[test]
fn each_answer_the_api_refuses_for_good_fails_the_order_once_with_a_refund_and_an_alert() {
    let premium = fixture(crate::seed::tier("premium"));
    let half = &premium[..premium.len() / 2];
    let mut wrong_order: Value = serde_json::from_str(&premium).expect("JSON");
    wrong_order["pillars"]
        .as_array_mut()
        .expect("pillars")
        .swap(0, 1);
    let cases = [
        Refusal {
            name: "wrong-retired-model",
            edits: vec![(
                "model = \"claude-sonnet-5-5\"",
                "model = \"claude-sonnet-4-5\"",
            )],
            script: json!([]),
            says: "404 not_found_error: model: claude-sonnet-4-5; set claude.model to a current model",
        },
        Refusal {
            name: "schema-refused",
            edits: vec![],
            script: json!([{ "type": "fail", "status": 400, "message":
                "output_config.format.schema: For 'integer' type, property 'minimum' is not supported" }]),
            says: "property 'minimum' is not supported",
        },
        Refusal {
            name: "empty-content-refused",
            edits: vec![],
            script: json!([{ "type": "fail", "status": 400, "message":
                "messages.1: all messages must have non-empty content except for the optional final assistant message" }]),
            says: "all messages must have non-empty content",
        },
        Refusal {
            name: "cut-off-twice",
            edits: vec![],
            script: json!([{ "type": "reply", "text": half, "finish_reason": "max_tokens", "times": 2 }]),
            says: "cut off at 32000 output tokens (claude.max_tokens_cap); raise claude.max_tokens_cap",
        },
        Refusal {
            name: "spending-cap",
            edits: vec![
                ("max_tokens = 16000", "max_tokens = 8000"),
                ("max_tokens_cap = 32000", "max_tokens_cap = 8000"),
                (
                    "max_cost_per_order_usd = 1.0",
                    "max_cost_per_order_usd = 0.1",
                ),
            ],
            script: json!([{ "type": "reply", "text": wrong_order.to_string() }]),
            says: "past claude.max_cost_per_order_usd ($0.10)",
        },
    ];
    for Refusal {
        name,
        edits,
        script,
        says,
    } in cases
    {
        let route = route(name);
        let install = install(&route, &edits);
        let order_id = paid(&install, crate::seed::tier("premium"));
        if script != json!([]) {
            crate::llmock::script(&route, script);
        }
        let run = process(&install, NOW);
        assert_eq!(run["outcomes"][0]["result"], "failed", "{name}: {run}");
        let alert = failed_refunded_and_alerted_once(&install, &order_id);
        assert!(
            alert.contains("order failed after 1 attempts"),
            "{name}: {alert}"
        );
        assert!(alert.contains(says), "{name}: {alert}");
        assert!(!repaired(&route), "{name}: no repair round");
        // A second pass changes nothing: no second refund, no second alert.
        process(&install, NOW + Duration::hours(2));
        assert_eq!(failed_refunded_and_alerted_once(&install, &order_id), alert);
    }
}

#[test]
fn a_reply_that_claims_another_score_is_repaired_and_a_second_fails_the_attempt() {
    let route = route("numbers");
    let install = install(&route, &[]);
    let order_id = paid(&install, crate::seed::tier("starter"));
    let mut boast: Value =
        serde_json::from_str(&fixture(crate::seed::tier("starter"))).expect("JSON");
    boast["summary"] =
        json!("Harbour & Vale is ready. You scored 100/100, a true Pacesetter. Keep going.");
    crate::llmock::script(
        &route,
        json!([
            { "type": "reply", "text": boast.to_string() },
            { "type": "reply", "text": boast.to_string() },
        ]),
    );
    let run = process(&install, NOW);
    assert_eq!(run["outcomes"][0]["result"], "retrying", "{run}");
    let requests = crate::llmock::requests(&route);
    assert_eq!(requests.len(), 2, "one repair round");
    let repair = requests[1]["body"]["messages"][2]["content"]
        .as_str()
        .expect("the repair message");
    assert!(
        repair.contains(
            "the sentence \"You scored 100/100, a true Pacesetter.\" states an overall score \
             of 100, but the computed overall score is 46/100 (Follower)"
        ),
        "{repair}"
    );
    assert!(
        repair.contains("names the readiness level Pacesetter"),
        "{repair}"
    );

    // The next attempt: the same claim, repaired this time.
    crate::llmock::script(
        &route,
        json!([
            { "type": "reply", "text": boast.to_string() },
            { "type": "reply", "text": fixture(crate::seed::tier("starter")) },
        ]),
    );
    let run = process(&install, NOW + Duration::hours(2));
    assert_eq!(run["outcomes"][0]["result"], "completed", "{run}");
    let json = install
        .db()
        .artifact(&order_id, "json")
        .expect("read")
        .expect("the report");
    let report: Value = serde_json::from_slice(&json).expect("JSON");
    assert_eq!(report["scores"]["overall"], 46);
    assert!(
        !report["written"]["summary"]
            .as_str()
            .expect("summary")
            .contains("100/100")
    );
}

/// Tokens and cost of one realistic report per tier at the configured prices, and the cache
/// read of the second report in one run. Printed for the record (the README's goal: Premium
/// under $0.25, Starter under $0.05), and held to those goals: the figures come from the
/// gate's token estimate, not from a clock, so they do not flake.
#[test]
fn a_realistic_report_costs_what_its_tier_allows_and_the_second_reads_the_cache() {
    let mut rows = Vec::new();
    for tier in &["starter", "standard", "premium"].map(crate::seed::tier) {
        let route = route(&format!("cost-{}", tier.as_str()));
        let install = install(&route, &[]);
        let count = if *tier == crate::seed::tier("premium") {
            2
        } else {
            1
        };
        for _ in 0..count {
            paid(&install, tier.clone());
        }
        crate::llmock::script(
            &route,
            json!([{ "type": "reply", "text": fixture(tier.clone()), "times": count }]),
        );
        let run = process(&install, NOW);
        let outcomes = run["outcomes"].as_array().expect("outcomes");
        assert_eq!(outcomes.len(), count, "{run}");
        for (n, outcome) in outcomes.iter().enumerate() {
            assert_eq!(outcome["result"], "completed", "{run}");
            let figure = |key: &str| outcome[key].as_u64().expect("a number");
            let cost = outcome["cost_micros"].as_i64().expect("cost");
            let (read, write) = (figure("cache_read_tokens"), figure("cache_write_tokens"));
            println!(
                "{:<8} report {}: {:>5} input tokens ({:>5} read from the cache, {:>5} written \
                 to it), {:>5} output tokens, ${:.4}",
                compass::method::Method::builtin().tier_name(tier),
                n + 1,
                figure("input_tokens") + read + write,
                read,
                write,
                figure("output_tokens"),
                cost as f64 / 1e6
            );
            rows.push((tier.clone(), n, cost, figure("cache_read_tokens")));
        }
    }
    let cost_of = |tier: Tier| {
        rows.iter()
            .filter(|(t, n, _, _)| *t == tier && *n == 0)
            .map(|r| r.2)
            .sum::<i64>()
    };
    assert!(
        cost_of(crate::seed::tier("premium")) < 250_000,
        "Premium: {rows:?}"
    );
    assert!(
        cost_of(crate::seed::tier("starter")) < 50_000,
        "Starter: {rows:?}"
    );
    let second_premium = rows
        .iter()
        .find(|(t, n, _, _)| *t == crate::seed::tier("premium") && *n == 1)
        .expect("two Premium reports");
    assert!(
        second_premium.3 > 0,
        "the second report reads the cached prefix: {rows:?}"
    );
}
