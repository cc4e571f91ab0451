//! Scripting llmock, which every test shares: each test asks for its own model name and
//! scripts and reads only that model's requests.

use serde_json::json;

use crate::services::service;

/// Queues llmock behaviours (replies, faults, delays) for requests naming `model`.
pub fn script(model: &str, behaviors: serde_json::Value) {
    let control = service("COMPASS_TEST_CLAUDE_CONTROL_URL");
    let behaviors: Vec<serde_json::Value> = behaviors
        .as_array()
        .expect("a list of behaviours")
        .iter()
        .map(|b| {
            let mut b = b.clone();
            b["match"] = json!({ "model": model });
            b
        })
        .collect();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .post(&format!("{control}/_llmock/scenario"))
        .header("content-type", "application/json")
        .send(json!({ "behaviors": behaviors }).to_string())
        .expect("llmock answers");
    assert_eq!(response.status(), 201, "scenario queued");
}

/// The requests llmock received that named `model`, oldest first.
pub fn requests(model: &str) -> Vec<serde_json::Value> {
    let control = service("COMPASS_TEST_CLAUDE_CONTROL_URL");
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let body = agent
        .get(&format!("{control}/_llmock/requests"))
        .call()
        .expect("llmock answers")
        .body_mut()
        .read_to_string()
        .expect("body");
    let log: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    log["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter(|r| r["model"] == model)
        .cloned()
        .collect()
}
