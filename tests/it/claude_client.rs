//! The Claude client against llmock behind the contract gate (the real Messages wire format,
//! scripted faults) and against scripted answers for headers llmock does not produce
//! (x-should-retry). llmock is shared by parallel tests, so each test has its own route (the
//! API key names it) and scripts only it.

use std::time::Duration;

use compass::claude::{Ask, ClaudeClient, ClaudeError, Role};
use compass::config::{DEFAULT_CLAUDE_MODEL, Secret};
use compass::retry::RetryPolicy;
use serde_json::json;

use crate::fake_http::{Answer, FakeHttp};
use crate::services::service;

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(5),
    }
}

fn unique_route(name: &str) -> String {
    format!("claude-test-{name}-{}", std::process::id())
}

/// A client for the default model whose requests go to `route`'s script.
fn client(base: &str, route: &str) -> ClaudeClient {
    ClaudeClient::with(
        base,
        Secret::new(crate::seed::claude_key(route)),
        DEFAULT_CLAUDE_MODEL,
        Duration::from_secs(20),
        fast(),
    )
}

fn ask<'a>(messages: &'a [(Role, String)], schema: &'a serde_json::Value) -> Ask<'a> {
    Ask {
        system: "You write AI readiness reports.",
        messages,
        schema,
        max_tokens: 2_000,
    }
}

/// A schema the API accepts as it is.
fn object() -> serde_json::Value {
    json!({ "type": "object", "properties": {}, "additionalProperties": false, "required": [] })
}

#[test]
fn llmock_answers_with_the_scripted_json_and_usage() {
    let model = unique_route("reply");
    crate::llmock::script(
        &model,
        json!([{ "type": "reply", "text": "{\"overall\": 72}" }]),
    );
    let schema = object();
    let messages = [(Role::User, "Assess Acme.".to_owned())];
    let mut attempts = Vec::new();
    let answer = client(&service("COMPASS_TEST_CLAUDE_URL"), &model)
        .ask(&ask(&messages, &schema), |a| attempts.push(a.clone()))
        .expect("answered");
    assert_eq!(answer.text, "{\"overall\": 72}");
    assert!(answer.usage.input_tokens > 0 && answer.usage.output_tokens > 0);
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (attempts[0].outcome, attempts[0].http_status),
        ("ok", Some(200))
    );

    let requests = crate::llmock::requests(&model);
    assert_eq!(requests.len(), 1);
    let body = &requests[0]["body"];
    assert_eq!(body["model"], DEFAULT_CLAUDE_MODEL);
    assert_eq!(body["max_tokens"], 2_000);
    assert_eq!(
        body["system"],
        json!([{ "type": "text", "text": "You write AI readiness reports.",
                 "cache_control": { "type": "ephemeral" } }]),
        "the system prompt is one block, marked for the prompt cache"
    );
    assert_eq!(requests[0]["broken"], json!([]), "the API would take it");
    assert_eq!(body["messages"][0]["role"], "user");
    assert_eq!(body["output_config"]["format"]["type"], "json_schema");
    assert_eq!(body["output_config"]["format"]["schema"], schema);
}

#[test]
fn overload_and_rate_limits_are_retried_then_succeed() {
    let model = unique_route("retry");
    crate::llmock::script(
        &model,
        json!([
            { "type": "fail", "status": 429, "retry_after": 1 },
            { "type": "fail", "status": 529 },
            { "type": "fail", "status": 500 },
            { "type": "reply", "text": "{}" },
        ]),
    );
    let schema = object();
    let messages = [(Role::User, "Assess Acme.".to_owned())];
    let mut attempts = Vec::new();
    let started = std::time::Instant::now();
    let answer = client(&service("COMPASS_TEST_CLAUDE_URL"), &model)
        .ask(&ask(&messages, &schema), |a| attempts.push(a.clone()))
        .expect("the fourth attempt answers");
    assert_eq!(answer.text, "{}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for retry-after"
    );
    let seen: Vec<_> = attempts
        .iter()
        .map(|a| (a.outcome, a.http_status))
        .collect();
    assert_eq!(
        seen,
        [
            ("retryable", Some(429)),
            ("retryable", Some(529)),
            ("retryable", Some(500)),
            ("ok", Some(200))
        ]
    );
    assert_eq!(
        crate::llmock::requests(&model).len(),
        4,
        "no retry storm: one request per attempt"
    );
}

#[test]
fn a_bad_request_is_not_retried() {
    let model = unique_route("permanent");
    crate::llmock::script(
        &model,
        json!([{ "type": "fail", "status": 400, "message": "max_tokens too large" }]),
    );
    let schema = object();
    let messages = [(Role::User, "x".to_owned())];
    let mut attempts = 0;
    let err = client(&service("COMPASS_TEST_CLAUDE_URL"), &model)
        .ask(&ask(&messages, &schema), |_| attempts += 1)
        .expect_err("refused");
    assert!(matches!(err, ClaudeError::Permanent(_)), "{err}");
    assert_eq!(attempts, 1);
}

#[test]
fn retries_end_with_a_transient_error() {
    let model = unique_route("exhausted");
    crate::llmock::script(
        &model,
        json!([{ "type": "fail", "status": 529, "times": 10 }]),
    );
    let schema = object();
    let messages = [(Role::User, "x".to_owned())];
    let err = client(&service("COMPASS_TEST_CLAUDE_URL"), &model)
        .ask(&ask(&messages, &schema), |_| {})
        .expect_err("gives up");
    assert!(err.is_transient(), "{err}");
    assert_eq!(
        crate::llmock::requests(&model).len(),
        4,
        "the first try and three retries"
    );
}

/// Scripted: headers, x-should-retry both ways, and a spend-limit 429 that is final.
#[test]
fn headers_and_retry_signals_follow_anthropics_reference() {
    let ok = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [{ "type": "text", "text": "{}" }], "stop_reason": "end_turn",
        "usage": { "input_tokens": 3, "output_tokens": 1 }
    });
    let server = FakeHttp::start(vec![
        Answer::json(400, json!({ "error": { "type": "invalid_request_error" } }))
            .header("x-should-retry", "true"),
        Answer::json(200, ok).header("request-id", "req_42"),
        Answer::json(503, json!({ "error": { "type": "api_error" } }))
            .header("x-should-retry", "false"),
        Answer::json(
            429,
            json!({ "error": { "type": "rate_limit_error", "message": "You have reached your spend limit." } }),
        ),
    ]);
    let claude = client(&server.base, "m");
    let schema = object();
    let messages = [
        (Role::User, "x".to_owned()),
        (Role::Assistant, "{".to_owned()),
        (Role::User, "That was not valid JSON.".to_owned()),
    ];
    let answer = claude
        .ask(&ask(&messages, &schema), |_| {})
        .expect("second attempt");
    assert_eq!(answer.request_id.as_deref(), Some("req_42"));
    let requests = server.received();
    assert_eq!(requests[0].request_line, "POST /v1/messages HTTP/1.1");
    let bearer = format!("Bearer {}", crate::seed::claude_key("m"));
    assert_eq!(requests[0].header("authorization"), Some(bearer.as_str()));
    assert_eq!(
        requests[0].header("x-api-key"),
        None,
        "the SDK sends a bearer token"
    );
    assert_eq!(requests[0].header("anthropic-version"), Some("2026-10-21"));
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&requests[0].body).expect("JSON");
    assert_eq!(body["messages"][1]["role"], "assistant");

    let err = claude
        .ask(&ask(&messages, &schema), |_| {})
        .expect_err("x-should-retry: false");
    assert!(matches!(err, ClaudeError::Permanent(_)));
    let err = claude
        .ask(&ask(&messages, &schema), |_| {})
        .expect_err("spend limit");
    assert!(matches!(err, ClaudeError::Permanent(_)), "{err}");
    assert_eq!(server.received().len(), 4);
}
