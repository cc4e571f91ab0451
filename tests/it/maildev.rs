//! Reading what maildev received. maildev is shared by every test, so each test mails its own
//! recipients and reads only theirs.

use crate::services::service;

/// The messages maildev holds for `recipient`, oldest first.
pub fn inbox(recipient: &str) -> Vec<serde_json::Value> {
    let base = service("COMPASS_TEST_MAILDEV_URL");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let body = agent
        .get(&format!("{base}/api/email"))
        .call()
        .unwrap_or_else(|err| panic!("maildev at {base} is not reachable: {err}"))
        .body_mut()
        .read_to_string()
        .expect("maildev's answer");
    let all: Vec<serde_json::Value> = serde_json::from_str(&body).expect("a JSON list");
    all.into_iter()
        .filter(|m| {
            m["to"]
                .as_array()
                .is_some_and(|to| to.iter().any(|a| a["address"].as_str() == Some(recipient)))
        })
        .collect()
}

/// The subjects of `recipient`'s messages, oldest first.
pub fn subjects(recipient: &str) -> Vec<String> {
    inbox(recipient)
        .iter()
        .map(|m| m["subject"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A recipient address no other test uses.
pub fn recipient(test: &str) -> String {
    format!("{test}-{}@example.com", std::process::id())
}
