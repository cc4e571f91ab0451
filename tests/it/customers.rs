//! The customer's side, end to end: the real binary's `serve` and `process` against
//! localstripe (payments, refunds, signed webhooks), llmock (the report) and maildev (the
//! emails the customer receives).

use compass::order::{Status, Tier};
use serde_json::json;

use crate::maildev::{inbox, recipient, subjects};
use crate::payments::{
    localstripe, order_detail, pay, place_json_order, register_webhook, status_of, wait_until_paid,
};
use crate::services::service;
use crate::support::{Install, STRIPE_KEY, Serving, eventually, stdout};

/// The origin the default configuration serves customers from (`business.public_url`).
const ORIGIN: &str = "http://127.0.0.1:8080";

fn model(test: &str) -> String {
    format!("claude-customers-{test}-{}", std::process::id())
}

/// An installation wired to all three fakes.
fn install(model: &str) -> Install {
    let install = Install::with_stripe(&localstripe());
    crate::seed::point_at_claude(
        &install.config(),
        &service("COMPASS_TEST_CLAUDE_URL"),
        model,
    )
    .expect("point at llmock");
    install.use_smtp(&service("COMPASS_TEST_SMTP"));
    let config = std::fs::read_to_string(install.config()).expect("read config");
    let config = config.replace(
        "operator = \"you@example.com\"",
        &format!("operator = \"{}\"", operator(model)),
    );
    std::fs::write(install.config(), config).expect("write config");
    install
}

/// The operator's address of the installation made for `model`.
fn operator(model: &str) -> String {
    format!("operator-{model}@example.com")
}

/// One `compass process` pass on the real clock (serve stamps orders with it).
fn process(install: &Install) -> String {
    let mut command = install.command(&["process"]);
    command
        .env_remove("COMPASS_NOW")
        .env("COMPASS_STRIPE_SECRET_KEY", STRIPE_KEY);
    stdout(&command.output().expect("run process"))
}

fn reply(model: &str, tier: Tier) {
    let text = serde_json::to_string(&crate::seed::sample_written(tier.as_str())).expect("json");
    crate::llmock::script(model, json!([{ "type": "reply", "text": text }]));
}

/// A paid order placed and paid through serve and localstripe: its id and status token.
fn paid_order(server: &Serving, tier: &str, email: &str) -> (String, String) {
    register_webhook(server);
    let (order_id, intent) = place_json_order(server, tier, email);
    assert_eq!(pay(&intent, "pm_card_visa"), 200);
    wait_until_paid(server, &order_id, &intent);
    let token = order_detail(server, &order_id).status_token;
    (order_id, token)
}

fn refund_form(server: &Serving, token: &str, reason: &str, origin: Option<&str>) -> u16 {
    let body = serde_urlencoded::to_string([("reason", reason)]).expect("form");
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(origin) = origin {
        headers.push(("Origin", origin));
    }
    server
        .post_with(
            &format!("/status/{token}/refund"),
            &headers,
            body.as_bytes(),
        )
        .0
}

pub fn localstripe_refunds(order: &compass::db::OrderDetail) -> Vec<serde_json::Value> {
    let intent = &order.payments[0].payment_intent_id;
    let list = crate::payments::stripe_get(&format!("/v1/refunds?payment_intent={intent}"));
    list["data"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_customer_pays_receives_the_report_downloads_it_and_the_operator_refunds() {
    let model = model("journey");
    let server = Serving::start(install(&model));
    let email = recipient("journey");
    let (order_id, token) = paid_order(&server, "standard", &email);

    let (status, page) = server.get(&format!("/status/{token}"));
    assert_eq!(status, 200);
    assert!(page.contains("Your report is being written"), "{page}");
    assert!(page.contains("class=\"steps\""), "the progress bar");
    assert!(
        page.contains("http-equiv=\"refresh\""),
        "refreshes without script"
    );
    let (status, api) = server.get(&format!("/api/orders/{token}"));
    assert_eq!(status, 200);
    let api: serde_json::Value = serde_json::from_str(&api).expect("JSON");
    assert_eq!(api["progress"], "paid");
    assert_eq!(api["pending"], true);

    reply(&model, crate::seed::tier("standard"));
    let printed = process(&server.install);
    assert!(printed.contains("1 completed"), "{printed}");
    assert!(printed.contains("emails: 2 sent"), "{printed}");
    eventually(10, "both emails in maildev", || inbox(&email).len() == 2);
    let mail = inbox(&email);
    assert!(
        mail[0]["subject"]
            .as_str()
            .expect("subject")
            .starts_with("Payment received")
    );
    assert!(
        mail[1]["subject"]
            .as_str()
            .expect("subject")
            .contains("is ready")
    );
    let attachments = mail[1]["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1, "{attachments:?}");
    assert_eq!(attachments[0]["contentType"], "application/pdf");
    assert!(
        mail[1]["text"]
            .as_str()
            .expect("text")
            .contains(&format!("/status/{token}")),
        "the status link"
    );
    // Another pass sends nothing twice.
    process(&server.install);
    assert_eq!(inbox(&email).len(), 2);

    let (_, page) = server.get(&format!("/status/{token}"));
    assert!(page.contains("Your report is ready"), "{page}");
    assert!(
        page.contains("<p class=\"score\"><span>"),
        "the score, kept beside the order: {page}"
    );
    assert!(page.contains(&format!("/status/{token}/report.pdf")));
    assert!(
        !page.contains("http-equiv=\"refresh\""),
        "nothing left to wait for"
    );
    let (status, inline) = server.get(&format!("/status/{token}/report"));
    assert_eq!(status, 200);
    assert!(
        inline.contains("<svg class=\"radar\""),
        "the report with its chart"
    );
    let (_, headers, _) = server.get_bytes(&format!("/status/{token}/report"));
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "x-frame-options" && v == "SAMEORIGIN"),
        "only the status page may frame the report: {headers:?}"
    );
    assert_eq!(
        order_detail(&server, &order_id).downloads,
        0,
        "viewing is not downloading"
    );
    let (status, headers, pdf) = server.get_bytes(&format!("/status/{token}/report.pdf"));
    assert_eq!(status, 200);
    assert!(pdf.starts_with(b"%PDF"));
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "application/pdf");
    assert!(
        header("content-disposition").starts_with("attachment; filename=\"ai-readiness-report-"),
        "{headers:?}"
    );
    assert_eq!(order_detail(&server, &order_id).downloads, 1);

    // Downloaded: the customer's request waits for the operator.
    assert_eq!(
        refund_form(&server, &token, "Not what I expected", Some(ORIGIN)),
        303
    );
    assert_eq!(status_of(&server, &order_id), Status::RefundRequested);
    process(&server.install);
    eventually(10, "the under-review email", || inbox(&email).len() == 3);
    assert!(subjects(&email)[2].contains("refund request"));
    assert!(localstripe_refunds(&order_detail(&server, &order_id)).is_empty());
    // The operator is told once, with the commands to run.
    let operator = operator(&model);
    eventually(10, "the operator's alert", || inbox(&operator).len() == 1);
    assert_eq!(
        subjects(&operator),
        ["Action needed: refund request waits for review"]
    );
    let alert = inbox(&operator)[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        alert.contains(&format!("`compass refund {order_id}`")),
        "{alert}"
    );
    assert!(alert.contains("the report was downloaded"), "{alert}");
    assert!(alert.contains(&format!("compass orders show {order_id}")));
    process(&server.install);

    let mut refund =
        server
            .install
            .command(&["refund", &order_id[..8], "--yes", "--reason", "goodwill"]);
    refund
        .env_remove("COMPASS_NOW")
        .env("COMPASS_STRIPE_SECRET_KEY", STRIPE_KEY);
    let printed = stdout(&refund.output().expect("run refund"));
    assert!(printed.contains("refunded $149.00 of order"), "{printed}");
    assert_eq!(status_of(&server, &order_id), Status::Refunded);
    let detail = order_detail(&server, &order_id);
    let refunds = localstripe_refunds(&detail);
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["amount"], 14_900);
    assert_eq!(
        detail.refunds[0].stripe_refund_id.as_deref(),
        refunds[0]["id"].as_str()
    );
    process(&server.install);
    eventually(10, "the refund email", || inbox(&email).len() == 4);
    assert!(subjects(&email)[3].contains("refund"));
    assert_eq!(inbox(&operator).len(), 1, "the alert went once");

    // Refunding again is refused with a reason, and Stripe is not asked.
    let mut again = server.install.command(&["refund", &order_id, "--yes"]);
    again
        .env_remove("COMPASS_NOW")
        .env("COMPASS_STRIPE_SECRET_KEY", STRIPE_KEY);
    let out = again.output().expect("run refund");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has nothing left to refund"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        localstripe_refunds(&order_detail(&server, &order_id)).len(),
        1
    );
}

#[test]
fn a_refund_inside_the_rule_is_refunded_at_once() {
    let server = Serving::start(install(&model("self-refund")));
    let email = recipient("self-refund");
    let (order_id, token) = paid_order(&server, "starter", &email);

    assert_eq!(
        refund_form(&server, &token, "Changed my mind", Some(ORIGIN)),
        303
    );
    eventually(20, "the refund to go through", || {
        status_of(&server, &order_id) == Status::Refunded
    });
    let detail = order_detail(&server, &order_id);
    assert_eq!(localstripe_refunds(&detail).len(), 1);
    assert_eq!(detail.refunds[0].source, "customer");
    assert_eq!(detail.refunds[0].status, "succeeded");
    let (_, page) = server.get(&format!("/status/{token}"));
    assert!(page.contains("Refunded"), "{page}");

    process(&server.install);
    eventually(10, "the refund email", || {
        subjects(&email).iter().any(|s| s.contains("refund"))
    });
    // Asking again changes nothing.
    assert_eq!(refund_form(&server, &token, "Again", Some(ORIGIN)), 409);
    assert_eq!(
        localstripe_refunds(&order_detail(&server, &order_id)).len(),
        1
    );
}

#[test]
fn refund_forms_from_elsewhere_or_too_long_change_nothing() {
    let server = Serving::start(install(&model("refund-bad")));
    let email = recipient("refund-bad");
    let (order_id, token) = paid_order(&server, "starter", &email);
    let before = order_detail(&server, &order_id);

    assert_eq!(refund_form(&server, &token, "csrf", None), 403);
    assert_eq!(
        refund_form(&server, &token, "csrf", Some("https://evil.example")),
        403
    );
    assert_eq!(
        refund_form(&server, &token, &"x".repeat(1_001), Some(ORIGIN)),
        422
    );
    assert_eq!(refund_form(&server, &token, "   ", Some(ORIGIN)), 422);
    // Another customer's order, or a made-up one: the same 404 as any unknown address.
    let other = "A".repeat(43);
    assert_eq!(refund_form(&server, &other, "mine now", Some(ORIGIN)), 404);
    let (status, _, _) = server.post_with(
        &format!("/status/{token}/refund"),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", ORIGIN),
        ],
        &vec![b'a'; 70 * 1024],
    );
    assert_eq!(status, 413);

    let after = order_detail(&server, &order_id);
    assert_eq!(after.summary.status, Status::Paid);
    assert_eq!(after.timeline.len(), before.timeline.len());
    assert!(after.refunds.is_empty());
}

#[test]
fn downloads_refuse_path_tricks_and_unfinished_reports() {
    let server = Serving::start(install(&model("downloads")));
    let (order_id, token) = paid_order(&server, "starter", &recipient("downloads"));
    // Not written yet: nothing to download.
    assert_eq!(server.get(&format!("/status/{token}/report.pdf")).0, 404);
    for path in [
        format!("/status/{token}/../../compass.db"),
        format!("/status/{token}/%2e%2e%2fcompass.db"),
        format!("/status/{token}/report.exe"),
        format!("/status/{token}/report.pdf/x"),
        "/status/..%2f..%2fetc%2fpasswd/report.pdf".to_owned(),
        format!("/status/{}/report.pdf", "B".repeat(43)),
    ] {
        let (status, body) = server.get(&path);
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("SQLite"), "{path}");
    }
    assert_eq!(order_detail(&server, &order_id).downloads, 0);
}

#[test]
fn emails_wait_while_smtp_is_down_and_go_out_once_when_it_is_back() {
    let model = model("smtp-down");
    let install = Install::with_claude(&service("COMPASS_TEST_CLAUDE_URL"), &model);
    // Nothing listens here: the port was free a moment ago.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_address = dead.local_addr().expect("address").to_string();
    drop(dead);
    install.use_smtp(&dead_address);
    let email = recipient("smtp-down");
    let now = crate::support::NOW;
    let order_id = crate::seed::paid_order_for(
        &mut install.db(),
        crate::seed::tier("starter"),
        "Offline Ltd",
        &email,
        now,
    )
    .expect("paid order");
    reply(&model, crate::seed::tier("starter"));

    let run = |at: time::OffsetDateTime| {
        let mut command = install.command(&["process"]);
        command.env("COMPASS_NOW", compass::clock::rfc3339(at));
        stdout(&command.output().expect("run process"))
    };
    let printed = run(now);
    assert!(printed.contains("1 completed"), "{printed}");
    assert!(printed.contains("emails: 0 sent, 2 to retry"), "{printed}");
    let detail = install
        .db()
        .order_detail(&order_id)
        .expect("read")
        .expect("order");
    assert!(detail.emails.iter().all(|e| e.status == "queued"));
    assert!(
        detail.emails[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("SMTP")
    );

    // Before the retry is due nothing is tried; SMTP back, both go out, once.
    let config = std::fs::read_to_string(install.config()).expect("config");
    let (_, port) = dead_address.rsplit_once(':').expect("port");
    let (_, maildev_port) = service("COMPASS_TEST_SMTP")
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .expect("port");
    std::fs::write(
        install.config(),
        config.replace(
            &format!("smtp_port = {port}"),
            &format!("smtp_port = {maildev_port}"),
        ),
    )
    .expect("write config");
    assert_eq!(run(now), "no orders due\n");
    let printed = run(now + time::Duration::minutes(2));
    assert!(printed.contains("emails: 2 sent"), "{printed}");
    assert_eq!(run(now + time::Duration::hours(2)), "no orders due\n");
    eventually(10, "both emails", || inbox(&email).len() == 2);
    let detail = install
        .db()
        .order_detail(&order_id)
        .expect("read")
        .expect("order");
    assert!(
        detail
            .emails
            .iter()
            .all(|e| e.status == "sent" && e.attempts == 2)
    );
}

#[test]
fn a_sign_in_link_shows_the_customers_orders_once() {
    let server = Serving::start(install(&model("sign-in")).without_rate_limits());
    let email = recipient("sign-in");
    let (_, token) = paid_order(&server, "premium", &email);
    let form = |address: &str| {
        let body = serde_urlencoded::to_string([("email", address)]).expect("form");
        server.post_with(
            "/my",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", ORIGIN),
            ],
            body.as_bytes(),
        )
    };

    let (status, _, known) = form(&email.to_uppercase());
    assert_eq!(status, 200);
    let (status, _, unknown) = form(&recipient("nobody"));
    assert_eq!(status, 200);
    assert_eq!(known, unknown, "no hint whether an address has orders");
    assert_eq!(form("not an address").0, 422);

    process(&server.install);
    eventually(10, "the sign-in email", || {
        subjects(&email).iter().any(|s| s.contains("sign-in link"))
    });
    let message = inbox(&email)
        .into_iter()
        .find(|m| m["subject"].as_str().is_some_and(|s| s.contains("sign-in")))
        .expect("sign-in email");
    let text = message["text"].as_str().expect("text");
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/my/"))
        .expect("a link");
    let path = &link[link.find("/my/").expect("path")..];

    // Following the link (as a mail scanner would) does not use it up.
    assert_eq!(server.get(path).0, 200);
    assert_eq!(server.get(path).0, 200);
    let (status, _, page) = server.post_with(path, &[("Origin", ORIGIN)], b"");
    assert_eq!(status, 200);
    assert!(page.contains(&format!("/status/{token}")), "{page}");
    // Once only.
    assert_eq!(server.post_with(path, &[("Origin", ORIGIN)], b"").0, 404);
    assert_eq!(server.get(path).0, 404);
    // Forged links.
    assert_eq!(server.get(&format!("/my/{}", "C".repeat(43))).0, 404);
    assert_eq!(
        server.post_with("/my/short", &[("Origin", ORIGIN)], b"").0,
        404
    );

    // Three links per quarter hour, then silence (same answer to the browser).
    for _ in 0..3 {
        assert_eq!(form(&email).0, 200);
    }
    process(&server.install);
    let links = || {
        subjects(&email)
            .iter()
            .filter(|s| s.contains("sign-in"))
            .count()
    };
    eventually(10, "the allowed links", || links() == 3);
    assert_eq!(links(), 3, "the fourth request in 15 minutes sent nothing");
}

#[test]
fn resend_email_sends_again_on_purpose_and_refuses_what_does_not_fit() {
    let model = model("resend");
    let install = Install::with_claude(&service("COMPASS_TEST_CLAUDE_URL"), &model);
    install.use_smtp(&service("COMPASS_TEST_SMTP"));
    let email = recipient("resend");
    let order_id = crate::seed::paid_order_for(
        &mut install.db(),
        crate::seed::tier("starter"),
        "Resend Ltd",
        &email,
        crate::support::NOW,
    )
    .expect("paid order");

    // No report yet: "report ready" does not fit, and nothing is queued.
    let out = install.compass(&["resend-email", &order_id, "--kind", "report_ready"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("a report_ready email does not apply to an order that is paid"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = install.compass(&["resend-email", "nosuchorder"]);
    assert_eq!(out.status.code(), Some(1));
    let out = install.compass(&["resend-email", &order_id, "--to", "not-an-address"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        install
            .db()
            .order_detail(&order_id)
            .expect("read")
            .expect("order")
            .emails
            .len(),
        1,
        "only the original confirmation"
    );

    reply(&model, crate::seed::tier("starter"));
    let mut command = install.command(&["process"]);
    command.output().expect("process");
    let cfo = recipient("resend-cfo");
    let printed = stdout(&install.compass(&["resend-email", &order_id, "--to", &cfo]));
    assert!(
        printed.contains(&format!(
            "sent the report_ready email of order {order_id} to {cfo}"
        )),
        "{printed}"
    );
    eventually(10, "the resend", || inbox(&cfo).len() == 1);
    assert_eq!(
        inbox(&cfo)[0]["attachments"].as_array().map(Vec::len),
        Some(1)
    );
    let detail = install
        .db()
        .order_detail(&order_id)
        .expect("read")
        .expect("order");
    let resend = detail
        .emails
        .iter()
        .find(|e| e.recipient == cfo)
        .expect("the resend row");
    assert!(resend.resend_of.is_some());

    // An operator alert about the order is not the customer's latest email: without --kind
    // the report is what goes again.
    install
        .db()
        .alert(
            "test",
            Some(&order_id),
            "something: look",
            crate::support::NOW,
        )
        .expect("alert");
    let again = recipient("resend-again");
    let printed = stdout(&install.compass(&["resend-email", &order_id, "--to", &again]));
    assert!(printed.contains("sent the report_ready email"), "{printed}");
}

#[test]
fn a_client_over_its_limit_gets_429_and_others_do_not() {
    let server = Serving::start(Install::with_stripe(&localstripe()));
    let email = recipient("limits");
    let sign_in = |client: &str| {
        let body = serde_urlencoded::to_string([("email", email.as_str())]).expect("form");
        server.post_with(
            "/my",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", ORIGIN),
                // serve is reached from 127.0.0.1, a trusted proxy by default, so this names
                // the client as Caddy or nginx would.
                ("X-Forwarded-For", client),
            ],
            body.as_bytes(),
        )
    };
    for _ in 0..3 {
        assert_eq!(sign_in("203.0.113.9").0, 200);
    }
    let response = Serving::agent()
        .post(&format!("{}/my", server.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Origin", ORIGIN)
        .header("X-Forwarded-For", "203.0.113.9")
        .send("email=a%40b.co")
        .expect("answered");
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=1200).contains(&retry_after), "{retry_after}");
    assert_eq!(
        sign_in("198.51.100.7").0,
        200,
        "another client is not limited"
    );

    // JSON clients get the JSON error shape.
    for _ in 0..5 {
        server.post_with(
            "/orders",
            &[
                ("Content-Type", "application/json"),
                ("X-Forwarded-For", "192.0.2.1"),
            ],
            b"{}",
        );
    }
    let (status, _, body) = server.post_with(
        "/orders",
        &[
            ("Content-Type", "application/json"),
            ("X-Forwarded-For", "192.0.2.1"),
        ],
        b"{}",
    );
    assert_eq!(status, 429);
    assert!(body.contains("\"rate_limited\""), "{body}");
}

#[test]
fn a_refund_made_at_stripe_behind_compass_back_is_caught_by_the_audit_and_reconciled() {
    let server = Serving::start(install(&model("audit-stripe")));
    let (order_id, _) = paid_order(&server, "starter", &recipient("audit-stripe"));
    let audit = || {
        let mut command = server.install.command(&["audit", "--stripe", "--json"]);
        command
            .env_remove("COMPASS_NOW")
            .env("COMPASS_STRIPE_SECRET_KEY", STRIPE_KEY);
        command.output().expect("run audit")
    };
    // Whether the audit names the order; the audit's findings.
    let names_the_order = || {
        let found: serde_json::Value = serde_json::from_slice(&audit().stdout).expect("JSON");
        let named = found
            .as_array()
            .expect("a list")
            .iter()
            .any(|v| v["order_id"] == order_id.as_str());
        (named, found)
    };
    let (named, found) = names_the_order();
    assert!(!named, "{found}");

    // Someone refunds in the Dashboard; localstripe sends no refund events, so compass never hears.
    let intent = order_detail(&server, &order_id).payments[0]
        .payment_intent_id
        .clone();
    let (status, _) = crate::payments::stripe_post(
        "/v1/refunds",
        &[("payment_intent", intent.as_str()), ("amount", "1000")],
    );
    assert_eq!(status, 200);
    let out = audit();
    assert_eq!(out.status.code(), Some(1));
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let violation = found
        .as_array()
        .expect("a list")
        .iter()
        .find(|v| v["order_id"] == order_id.as_str())
        .unwrap_or_else(|| panic!("not caught: {found}"));
    assert_eq!(violation["rule"], "refund_unknown_locally");
    assert!(
        violation["detail"]
            .as_str()
            .expect("detail")
            .contains("Stripe refunded 1000 cents, compass records 0"),
        "{violation}"
    );

    // reconcile records what Stripe returned; the audit is clean again, and stays so.
    for _ in 0..2 {
        let mut command = server.install.command(&["reconcile", "--since", "1d"]);
        command
            .env_remove("COMPASS_NOW")
            .env("COMPASS_STRIPE_SECRET_KEY", STRIPE_KEY);
        let printed = stdout(&command.output().expect("run reconcile"));
        let repaired = printed.contains("refunded at Stripe: 1000 cents, recorded 0");
        let detail = order_detail(&server, &order_id);
        assert_eq!(detail.summary.refunded_cents, 1000, "{printed}");
        assert!(
            repaired || printed.contains("repaired 0 order(s)"),
            "once, then nothing: {printed}"
        );
    }
    let (named, found) = names_the_order();
    assert!(!named, "{found}");
}
