//! The policy pages: they name the configured business, state the configured refund rule (the
//! rule the refund requests are then held to), are linked from every page a customer passes,
//! and can be replaced by the operator's own.

use compass::order::{Policy, Status};
use time::Duration;

use crate::seed::{Plan, seed_order};
use crate::support::{Install, Serving, wall_clock};

fn install_with(edit: &[(&str, &str)]) -> Install {
    Install::new().without_rate_limits().edit_config(edit)
}

/// A completed order paid `days` ago by the clock `serve` runs on, and its status token.
fn completed_days_ago(install: &Install, days: i64) -> (String, String) {
    let mut db = install.db();
    let id = seed_order(
        &mut db,
        0,
        1,
        Plan::Completed,
        wall_clock() - Duration::days(days),
        &Policy::default(),
    )
    .expect("seeded");
    let token = db.order(&id).expect("read").expect("order").status_token;
    (id, token)
}

#[test]
fn the_pages_name_the_business_and_state_the_configured_rule_which_requests_then_follow() {
    let server = Serving::start(install_with(&[
        (
            "name = \"Compass AI Readiness\"",
            "name = \"Lovelace Advisory\"",
        ),
        (
            "support_email = \"hello@example.com\"",
            "support_email = \"ada@lovelace.example\"",
        ),
        ("window_days = 7", "window_days = 14"),
    ]));
    for page in ["/terms", "/privacy", "/refund-policy"] {
        let (status, body) = server.get(page);
        assert_eq!(status, 200, "{page}");
        assert!(body.contains("Lovelace Advisory"), "{page}");
        assert!(body.contains("ada@lovelace.example"), "{page}");
    }
    let (_, refunds) = server.get("/refund-policy");
    assert!(refunds.contains("Within 14 days of payment"), "{refunds}");
    assert!(refunds.contains("you paid less than 14 days ago"));
    let (_, terms) = server.get("/terms");
    assert!(terms.contains("Within 14 days of payment"));
    assert!(
        terms.contains("$399.00"),
        "the prices are the configured ones"
    );
    let (_, privacy) = server.get("/privacy");
    assert!(privacy.contains("sets no cookies"));
    assert!(privacy.contains("The only third-party\nscript is Stripe.js"));

    // The status page states the same rule, and a request 10 days in is inside it.
    let (id, token) = completed_days_ago(&server.install, 10);
    let (_, status_page) = server.get(&format!("/status/{token}"));
    assert!(status_page.contains("Within 14 days of payment"));
    assert_eq!(server.ask_for_refund(&token, "Not for us").0, 303);
    let order = server
        .install
        .db()
        .order(&id)
        .expect("read")
        .expect("order");
    assert_eq!(
        order.order.status,
        Status::Refunding,
        "approved without review"
    );
}

#[test]
fn a_shorter_window_or_no_auto_approval_sends_the_same_request_to_review() {
    for (edit, says) in [
        (
            ("window_days = 7", "window_days = 5"),
            "Within 5 days of payment",
        ),
        (
            ("auto_approve = true", "auto_approve = false"),
            "Every refund request is reviewed by a person",
        ),
    ] {
        let server = Serving::start(install_with(&[edit]));
        let (_, page) = server.get("/refund-policy");
        assert!(page.contains(says), "{page}");
        let (id, token) = completed_days_ago(&server.install, 6);
        assert_eq!(server.ask_for_refund(&token, "Not for us").0, 303);
        let order = server
            .install
            .db()
            .order(&id)
            .expect("read")
            .expect("order");
        assert_eq!(order.order.status, Status::RefundRequested, "{edit:?}");
    }
}

#[test]
fn every_customer_page_links_the_policies() {
    let server = Serving::start(Install::new());
    let (_, token) = completed_days_ago(&server.install, 1);
    for path in ["/", "/my", "/terms", &format!("/status/{token}")] {
        let (status, body) = server.get(path);
        assert_eq!(status, 200, "{path}");
        for link in [
            "href=\"/terms\"",
            "href=\"/privacy\"",
            "href=\"/refund-policy\"",
        ] {
            assert!(body.contains(link), "{path} links {link}");
        }
    }
    let (_, intake) = server.get("/");
    assert!(intake.contains("By continuing you accept our <a href=\"/terms\">terms</a>"));
}

#[test]
fn the_operators_own_page_replaces_the_built_in_one_and_a_broken_one_is_refused() {
    let install = Install::new();
    let dir = install.dir.path().join("policies");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(
        dir.join("terms.hbs"),
        "{{#> layout}}<h1>Our own terms</h1><p>{{business}} · {{refund_rule}}</p>{{/layout}}",
    )
    .expect("write");
    let server = Serving::start(install);
    let (_, terms) = server.get("/terms");
    assert!(terms.contains("<h1>Our own terms</h1>"), "{terms}");
    assert!(terms.contains("Compass AI Readiness · Within 7 days"));
    let (_, privacy) = server.get("/privacy");
    assert!(
        privacy.contains("Privacy notice"),
        "the others stay built in"
    );

    // A page that does not compile is found by `compass doctor` and stops `serve` at its
    // start, each naming the file; the commands that show no page go on working.
    std::fs::write(dir.join("privacy.hbs"), "{{#if}}").expect("write");
    let install = &server.install;
    let out = install.compass(&["orders"]);
    assert!(
        out.status.success(),
        "{}",
        crate::support::text(&out.stderr)
    );
    let out = install.compass(&["doctor"]);
    assert!(!out.status.success());
    let printed = crate::support::text(&out.stdout);
    let line = printed
        .lines()
        .find(|l| l.contains("policy pages"))
        .unwrap_or_else(|| panic!("no policy pages line: {printed}"));
    assert!(
        line.starts_with("FAIL") && line.contains("privacy.hbs does not compile"),
        "{line}"
    );
    let mut serve = install
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env("COMPASS_STRIPE_SECRET_KEY", crate::support::STRIPE_KEY)
        .env(
            "COMPASS_STRIPE_WEBHOOK_SECRETS",
            crate::support::WEBHOOK_SECRET,
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start serve");
    let mut exited = None;
    crate::support::eventually(20, "serve refuses to start", || {
        exited = serve.try_wait().expect("wait");
        exited.is_some()
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(serve.stderr.as_mut().expect("stderr"), &mut stderr)
        .expect("read");
    assert!(!exited.expect("exited").success());
    assert!(stderr.contains("privacy.hbs does not compile"), "{stderr}");

    // A page that compiles but names a value compass does not give fails the same way.
    std::fs::write(
        dir.join("privacy.hbs"),
        "{{#> layout}}{{no_such_value}}{{/layout}}",
    )
    .expect("write");
    let out = install.compass(&["doctor"]);
    let printed = crate::support::text(&out.stdout);
    assert!(
        printed.contains("no_such_value"),
        "doctor names the missing value: {printed}"
    );
}
