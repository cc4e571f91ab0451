use serde_json::json;

use super::*;

fn data() -> serde_json::Value {
    json!({
        "business": "Compass & Co",
        "assessment": "AI readiness",
        "support_email": "help@example.com",
        "site": "https://compass.example",
        "name": "Ada <script>alert(1)</script>",
        "company": "{{#each}} Ltd\r\nBcc: victim@example.com",
        "tier": "Premium",
        "amount": "$399.00",
        "refunded": "$399.00",
        "status_url": "https://compass.example/status/abc",
        "link_url": "https://compass.example/my/xyz",
        "minutes": 30,
    })
}

#[test]
fn every_kind_renders_its_three_parts() {
    let composer = Composer::new(&crate::method::Method::builtin()).expect("templates compile");
    for kind in EmailKind::ALL
        .iter()
        .filter(|kind| **kind != EmailKind::OperatorAlert)
    {
        let email = composer
            .compose(*kind, "ada@example.com", &data())
            .unwrap_or_else(|err| panic!("{kind}: {err:#}"));
        assert!(!email.subject.is_empty(), "{kind}");
        assert!(email.text.contains("Hello Ada"), "{kind}: {}", email.text);
        assert!(email.html.contains("<!doctype html>"), "{kind}");
        assert!(email.html.contains("Compass &amp; Co"), "{kind}");
        // Every email links the policies, in both parts.
        for page in ["terms", "privacy", "refund-policy"] {
            let link = format!("https://compass.example/{page}");
            assert!(email.text.contains(&link), "{kind}: {page}");
            assert!(
                email.html.contains(&format!("href=\"{link}\"")),
                "{kind}: {page}"
            );
        }
    }
}

#[test]
fn customer_text_is_escaped_in_html_and_kept_to_one_line_in_the_subject() {
    let composer = Composer::new(&crate::method::Method::builtin()).expect("templates compile");
    let email = composer
        .compose(EmailKind::ReportReady, "ada@example.com", &data())
        .expect("renders");
    assert!(email.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!email.html.contains("<script>"));
    // Text parts are not HTML: no entities there.
    assert!(email.text.contains("Ada <script>"));
    assert!(!email.subject.contains('\n') && !email.subject.contains('\r'));
    assert!(
        email
            .subject
            .contains("{{#each}} Ltd Bcc: victim@example.com")
    );
}

#[test]
fn a_missing_value_is_an_error() {
    let composer = Composer::new(&crate::method::Method::builtin()).expect("templates compile");
    assert!(
        composer
            .compose(EmailKind::ReportReady, "a@b.co", &json!({}))
            .is_err()
    );
}

#[test]
fn a_resend_must_fit_the_order() {
    assert!(applies(EmailKind::ReportReady, Status::Completed, 0).is_ok());
    assert_eq!(
        applies(EmailKind::ReportReady, Status::Paid, 0),
        Err("a report_ready email does not apply to an order that is paid".to_owned())
    );
    assert!(applies(EmailKind::RefundProcessed, Status::Completed, 100).is_ok());
    assert!(applies(EmailKind::SignInLink, Status::Completed, 0).is_err());
    assert!(applies(EmailKind::PaymentConfirmation, Status::PendingPayment, 0).is_err());
}

#[test]
fn the_file_transport_writes_a_message_with_the_attachment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = MailConfig {
        from: "Compass <reports@compass.example>".into(),
        operator: "op@compass.example".into(),
        transport: MailTransport::File {
            dir: dir.path().join("mail"),
        },
    };
    let mailer = Mailer::new(&config).expect("mailer");
    let composer = Composer::new(&crate::method::Method::builtin()).expect("templates");
    let mut email = composer
        .compose(EmailKind::ReportReady, "ada@example.com", &data())
        .expect("renders");
    email.attachments.push((
        "r.pdf".into(),
        "application/pdf".into(),
        b"%PDF-1.7".to_vec(),
    ));
    let id = mailer.send(&email).expect("written");
    assert!(id.ends_with("@compass.example>"), "{id}");
    let files: Vec<_> = std::fs::read_dir(dir.path().join("mail"))
        .expect("dir")
        .collect::<Result<_, _>>()
        .expect("entries");
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(files[0].path()).expect("eml");
    assert!(eml.contains("To: ada@example.com"), "{eml}");
    assert!(eml.contains("Content-Type: application/pdf"), "{eml}");
    assert!(eml.contains(&format!("Message-ID: {id}")), "{eml}");
}

#[test]
fn the_report_ready_text_reads_well() {
    let composer = Composer::new(&crate::method::Method::builtin()).expect("templates compile");
    let mut data = data();
    data["name"] = json!("Ada");
    data["company"] = json!("Analytical Engines Ltd");
    let email = composer
        .compose(EmailKind::ReportReady, "ada@example.com", &data)
        .expect("renders");
    expect_test::expect![[r#"
        Your AI readiness report for Analytical Engines Ltd is ready
        ---
        Hello Ada,

        your Premium AI readiness report for Analytical Engines Ltd is ready. The PDF is attached, and the report is on your status page:

        https://compass.example/status/abc

        -- 
        Compass & Co · help@example.com
        Terms: https://compass.example/terms · Privacy: https://compass.example/privacy · Refunds: https://compass.example/refund-policy
    "#]]
    .assert_eq(&format!("{}\n---\n{}", email.subject, email.text));
}

#[test]
fn an_email_that_keeps_failing_is_given_up_after_its_last_attempt() {
    use crate::db::{Db, NewOrder};
    use crate::order::{Event, Policy};
    use time::macros::datetime;

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("compass.toml");
    let config = crate::config::Config::parse(crate::config::EXAMPLE, &path, &|_| None)
        .expect("the example config");
    let mut db = Db::open_in_memory().expect("db");
    let method = crate::method::Method::builtin();
    db.keep_method(&method.version, method.files())
        .expect("kept");
    let t0 = datetime!(2026-11-22 12:00 UTC);
    let order = db
        .create_order(
            &NewOrder {
                email: "ada@example.com".into(),
                name: "Ada".into(),
                company: "Analytical Engines Ltd".into(),
                tier: "starter".parse().expect("an id"),
                amount_cents: 4_900,
                currency: "usd".into(),
                questionnaire: json!({}),
                method_version: method.version.clone(),
                terms: None,
            },
            t0,
        )
        .expect("order");
    let paid = Event::PaymentConfirmed {
        payment_intent: "pi_1".into(),
        amount_cents: 4_900,
        currency: "usd".into(),
    };
    db.apply(&order.id, &paid, &Policy::default(), "stripe", t0)
        .expect("stored")
        .expect("paid");
    let bad = db
        .queue_resend(
            &order.id,
            EmailKind::PaymentConfirmation,
            "not an address",
            "operator",
            t0,
        )
        .expect("queued");
    let mailer = Mailer::new(&config.mail).expect("mailer");
    let composer = Composer::new(&crate::method::Method::builtin()).expect("templates");

    let mut totals = Vec::new();
    for pass in 0..outbox::MAX_ATTEMPTS + 1 {
        let now = t0 + time::Duration::hours(2 * i64::from(pass));
        let sent = outbox::send_due(&mut db, &config, &mailer, &composer, &|| Ok(now), 10)
            .expect("a pass");
        totals.push((sent.sent, sent.retrying, sent.failed));
    }
    assert_eq!(totals[0], (1, 1, 0), "the good one goes, the bad one waits");
    assert_eq!(
        totals[7],
        (1, 0, 1),
        "given up on the eighth attempt, and the operator's alert sent in the same pass"
    );
    assert_eq!(totals[8], (0, 0, 0), "and never tried again");
    let detail = db.order_detail(&order.id).expect("read").expect("order");
    let row = detail.emails.iter().find(|e| e.id == bad).expect("the row");
    assert_eq!(row.status, "failed");
    assert_eq!(row.attempts, outbox::MAX_ATTEMPTS);
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("not an address"),
        "{row:?}"
    );
    let mut written: Vec<String> = std::fs::read_dir(dir.path().join("mail"))
        .expect("mail dir")
        .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).expect("read"))
        .collect();
    written.sort_by_key(|message| message.contains("Action needed"));
    assert_eq!(written.len(), 2, "the good one and the alert");
    // Quoted-printable folds long lines: unfold them.
    let alert = written[1].replace("=\r\n", "");
    assert!(alert.contains("To: you@example.com"), "{alert}");
    assert!(
        alert.contains("Subject: Action needed: email not delivered"),
        "{alert}"
    );
    assert!(
        alert.contains(&format!(
            "`compass resend-email {} --kind payment_confirmation`",
            order.id
        )),
        "{alert}"
    );
}
