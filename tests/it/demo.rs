//! `compass demo`, the README's first command: one sample order all the way to a report,
//! with no keys and no services.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::eventually;

#[test]
fn the_demo_takes_a_sample_order_to_a_delivered_report_and_serves_its_status_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_compass"))
        .args(["demo", "--listen", "127.0.0.1:0", "--dir"])
        .arg(&home)
        // A live key in the environment must not reach the demo.
        .env("COMPASS_STRIPE_SECRET_KEY", "sk_live_must_not_be_used")
        .env_remove("COMPASS_NOW")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = Vec::new();
    let status_url = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the demo stopped early: {printed:?}"))
            .expect("a line");
        printed.push(line.clone());
        if let Some(url) = line.strip_prefix("open the customer's status page: ") {
            break url.to_owned();
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let page = agent
        .get(&status_url)
        .call()
        .expect("the status page answers")
        .body_mut()
        .read_to_string()
        .expect("page");
    assert!(page.contains("Your report is ready"), "{page}");
    let mails = std::fs::read_dir(home.join("mail"))
        .expect("mail dir")
        .count();
    assert_eq!(mails, 2, "{printed:?}");

    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let mut status = None;
    eventually(20, "the demo to stop on Ctrl-C", || {
        status = child.try_wait().expect("wait");
        status.is_some()
    });
    assert!(status.expect("stopped").success());
}
