//! A second method, entirely unlike the built-in one (tests/methods/security: a cybersecurity
//! check with five weighted categories, single and multiple choice, yes/no with a condition, a
//! number with bands, four other levels, two tiers in euros, its own colour and logo), sold
//! end to end through the real binary against localstripe and llmock: the form asks its
//! questions, the order is paid, the scores are the ones its rules give (worked out by hand
//! below), and the report's PDF and HTML show its categories, level and brand. Then the folder
//! is edited: the next `serve` shows the new text without a rebuild, and an order placed before
//! the edit is still written and rendered by the method it was sold with.

use std::path::{Path, PathBuf};

use compass::method::Method;
use serde_json::json;

use crate::payments::{localstripe, order_detail, pay, register_webhook, wait_until_paid};
use crate::process::pdf_text;
use crate::services::service;
use crate::support::{Install, Serving, stdout};

fn security_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/methods/security")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("readable") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// An installation selling the security method, wired to localstripe and llmock.
fn install(model: &str) -> Install {
    let install = Install::with_stripe(&localstripe()).without_rate_limits();
    let method = install.dir.path().join("method");
    std::fs::remove_dir_all(&method).expect("init wrote the built-in method");
    copy_dir(&security_dir(), &method);
    crate::seed::point_at_claude(
        &install.config(),
        &service("COMPASS_TEST_CLAUDE_URL"),
        model,
    )
    .expect("point at llmock");
    install
}

/// The answers worked out by hand in `the_second_method_is_sold_scored_and_reported_as_its_own`.
fn answers(email: &str) -> serde_json::Value {
    json!({
        "company": "Dent & Co", "industry": "Dental practice", "employees": "10-49",
        "country": "Ireland", "name": "Nora Dent", "email": email, "tier": "full",
        "mfa": "admins", "shared_accounts": true, "has_backups": "yes", "restore_test": "year",
        "patch_days": 12, "protections": ["firewall", "disk"], "training": "never",
        "worry": "Ransomware locking the patient records.",
    })
}

/// Places and pays an order for `answers`: its id and status token.
fn paid_order(server: &Serving, answers: &serde_json::Value) -> (String, String) {
    let (status, _, body) = server.post(
        "/orders",
        "application/json",
        answers.to_string().as_bytes(),
    );
    assert_eq!(status, 201, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["amount_cents"], 29_900, "the method's price");
    assert_eq!(answer["currency"], "eur");
    let order_id = answer["order_id"].as_str().expect("order id").to_owned();
    let secret = answer["client_secret"].as_str().expect("client secret");
    let intent = secret.split("_secret_").next().expect("pi id").to_owned();
    assert_eq!(pay(&intent, "pm_card_visa"), 200);
    wait_until_paid(server, &order_id, &intent);
    let token = order_detail(server, &order_id).status_token;
    (order_id, token)
}

/// llmock answers every request for `model` with the sample words for the method's `full`
/// tier, which its checks accept.
fn reply(model: &str, method: &Method) {
    let tier = method
        .tier(&"full".parse().expect("an id"))
        .expect("the method sells full");
    let text =
        serde_json::to_string(&compass::report::sample::written(tier, method)).expect("json");
    crate::llmock::script(
        model,
        json!([{ "type": "reply", "text": text, "times": null }]),
    );
}

fn process(install: &Install) -> String {
    let mut command = install.command(&["process"]);
    command.env_remove("COMPASS_NOW");
    stdout(&command.output().expect("run process"))
}

#[test]
fn the_second_method_is_sold_scored_and_reported_as_its_own() {
    let model = format!("claude-method-{}", std::process::id());
    let mut server = Serving::start(install(&model));
    register_webhook(&server);

    // The form asks the method's questions, in its brand.
    let (status, form) = server.get("/");
    assert_eq!(status, 200);
    for expected in [
        "Is your firm ready for a cyber attack?",
        "Who signs in with a second factor (an app or a key)?",
        "type=\"checkbox\" name=\"protections\" value=\"disk\"",
        "name=\"patch_days\"",
        "Only if you answered “Yes” to “Do you back up your files and systems?”",
        "Bastion Cyber",
        "src=\"/assets/logo\"",
        "Full audit",
        "€299.00",
        // intake.js hides the restore question until backups are answered "yes".
        "data-when=\"{&quot;equals&quot;:&quot;yes&quot;,&quot;question&quot;:&quot;has_backups&quot;}\"",
        "<script src=\"/assets/intake.js\" defer>",
    ] {
        assert!(form.contains(expected), "the form has {expected}: {form}");
    }
    assert!(
        !form.contains("Pillar"),
        "none of the built-in method's words"
    );
    assert!(!form.contains("strategy_1"));
    let (_, brand) = server.get("/assets/brand.css");
    assert!(brand.contains("#0b7a4b"), "{brand}");
    let (status, _, logo) = server.get_bytes("/assets/logo");
    assert_eq!(status, 200);
    assert!(logo.starts_with(b"<svg"));

    let (order_id, token) = paid_order(&server, &answers(&format!("nora-{model}@example.com")));
    let method = Method::load_dir(&server.install.dir.path().join("method")).expect("valid");
    reply(&model, &method);
    let printed = process(&server.install);
    assert!(printed.contains("1 completed"), "{printed}");

    let db = server.install.db();
    let report: serde_json::Value = serde_json::from_slice(
        &db.artifact(&order_id, "json")
            .expect("read")
            .expect("a report"),
    )
    .expect("JSON");
    // Worked out by hand from method.toml's points:
    // access (weight 2): mfa "admins" 2 of 0-4 = 1/2; shared logins "yes" 0 of 0-2 = 0;
    //   (1/2 + 0) / 2 = 1/4 -> 25.
    // backups: has backups 2 of 0-2 = 1; restored in the last year 2 of 0-4 = 1/2 -> 75.
    // devices: 12 days falls in the band below 31, 2 of 0-4 = 1/2; disk and firewall 2 of 0-3
    //   = 2/3; (1/2 + 2/3) / 2 = 7/12 -> 58.
    // people: phishing training never, 0 of 0-3 -> 0. response: not answered.
    // overall: (2 * 1/4 + 3/4 + 7/12 + 0) / (2 + 1 + 1 + 1) = 11/30 = 36.7 -> 37: Exposed.
    let scores: Vec<_> = report["scores"]["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .map(|c| (c["title"].as_str().expect("title"), c["score"].as_f64()))
        .collect();
    assert_eq!(
        scores,
        [
            ("Access", Some(25.0)),
            ("Backups", Some(75.0)),
            ("Devices", Some(58.0)),
            ("People", Some(0.0)),
            ("Response", None),
        ]
    );
    assert_eq!(report["scores"]["overall"], 37);
    assert_eq!(report["scores"]["level"], "Exposed");

    let pdf = pdf_text(&db.artifact(&order_id, "pdf").expect("read").expect("a PDF"));
    let flat = pdf.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        "Cyber readiness report",
        "Dent & Co",
        "Report Full audit",
        "Prepared by Bastion Cyber",
        "Appendix: your answers",
        "Ransomware locking the patient records.",
        "Exposed",
        "Access",
        "Backups",
        "Devices",
        "People",
        "Response",
        "Common attacks would succeed today.",
    ] {
        assert!(flat.contains(expected), "the PDF shows {expected}: {flat}");
    }
    assert!(!flat.contains("AI readiness"), "{flat}");
    let html = String::from_utf8(db.artifact(&order_id, "html").expect("read").expect("HTML"))
        .expect("UTF-8");
    assert_eq!(
        html.matches("<line class=\"spoke\"").count(),
        5,
        "five axes"
    );
    for expected in [
        "Cyber readiness report",
        "Bastion Cyber",
        "Exposed",
        "#0b7a4b",
    ] {
        assert!(html.contains(expected), "the page shows {expected}");
    }
    let (_, status_page) = server.get(&format!("/status/{token}"));
    assert!(status_page.contains("Exposed"), "{status_page}");
    assert!(status_page.contains("Full audit"));
    // The emails speak of the method's report, signed by its brand, the PDF named for it.
    let mail: Vec<String> = std::fs::read_dir(server.install.dir.path().join("mail"))
        .expect("the mail folder")
        .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).expect("an .eml"))
        .collect();
    let ready = mail
        .iter()
        .find(|m| m.contains("Subject: Your Cyber readiness report for Dent & Co is ready"))
        .unwrap_or_else(|| panic!("the report email: {mail:?}"));
    assert!(ready.contains("cyber-readiness-report.pdf"), "{ready}");
    assert!(ready.contains("Bastion Cyber"), "{ready}");
    assert!(!ready.contains("AI readiness"), "{ready}");

    // An order placed now, written after the folder is edited, keeps the method it was sold
    // with; the form shows the edit on the next start, with no rebuild.
    let (before_id, _) = paid_order(&server, &answers(&format!("ola-{model}@example.com")));
    let toml = server.install.dir.path().join("method/method.toml");
    let text = std::fs::read_to_string(&toml).expect("read");
    std::fs::write(
        &toml,
        text.replace(
            "Who signs in with a second factor (an app or a key)?",
            "Who uses two-factor sign-in?",
        )
        .replace("title = \"Access\"", "title = \"Sign-in\""),
    )
    .expect("write");
    server.restart_hard();
    let (_, form) = server.get("/");
    assert!(form.contains("Who uses two-factor sign-in?"), "{form}");
    assert!(!form.contains("Who signs in with a second factor"));
    let printed = process(&server.install);
    assert!(printed.contains("1 completed"), "{printed}");
    let html = String::from_utf8(
        server
            .install
            .db()
            .artifact(&before_id, "html")
            .expect("read")
            .expect("HTML"),
    )
    .expect("UTF-8");
    assert!(html.contains("Access"), "the method it was sold with");
    assert!(!html.contains("Sign-in"));
    let before = stdout(&server.install.compass(&["orders", "show", &before_id]));
    let first = stdout(&server.install.compass(&["orders", "show", &order_id]));
    let version_line = |shown: &str| {
        shown
            .lines()
            .find(|l| l.contains("Cyber readiness ("))
            .map(str::to_owned)
            .expect("the method's line")
    };
    assert_eq!(
        version_line(&before),
        version_line(&first),
        "both sold before the edit"
    );
    assert!(version_line(&before).contains(method.short_version()));
}

#[test]
fn a_broken_method_stops_serve_and_check_names_the_place() {
    let install = install("claude-method-broken");
    let toml = install.dir.path().join("method/method.toml");
    let text = std::fs::read_to_string(&toml).expect("read");
    std::fs::write(&toml, text.replace("to = 84", "to = 80")).expect("write");
    // The 1-based line of `[[levels]]` above the top level (which the gap is below).
    let line = text
        .lines()
        .position(|l| l.contains("name = \"Hardened\""))
        .expect("the top level");
    let out = install.compass(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "method.toml:{line}: no level covers the scores 81 to 84"
        )),
        "{err}"
    );
    let out = install.compass(&["check", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["ok"], false);
    assert_eq!(json["problems"][0]["line"], line);
    let out = install.compass(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1), "serve refuses to start");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no level covers the scores 81 to 84"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
