//! Scripting llmock, which every test shares behind the contract gate (scripts/claude-gate.py):
//! each test has its own route, named by its API key (`seed::claude_key`), and scripts and
//! reads only that route's requests.

use serde_json::json;

use crate::services::service;

/// Queues llmock behaviours (replies, faults, delays) for requests on `route`.
pub fn script(route: &str, behaviors: serde_json::Value) {
    let control = service("COMPASS_TEST_CLAUDE_CONTROL_URL");
    let behaviors: Vec<serde_json::Value> = behaviors
        .as_array()
        .expect("a list of behaviours")
        .iter()
        .map(|b| {
            let mut b = b.clone();
            // The gate hands llmock the route as the model.
            b["match"] = json!({ "model": route });
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

/// The requests compass sent on `route`, as it sent them, oldest first: `body` and the rules
/// of the real API each one broke (`broken`).
pub fn requests(route: &str) -> Vec<serde_json::Value> {
    let control = service("COMPASS_TEST_CLAUDE_CONTROL_URL");
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let body = agent
        .get(&format!("{control}/_gate/report"))
        .call()
        .expect("the gate answers")
        .body_mut()
        .read_to_string()
        .expect("body");
    let log: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    log["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter(|r| r["route"] == route)
        .cloned()
        .collect()
}
