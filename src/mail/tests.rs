use serde_json::json;

use super::*;

fn data() -> serde_json::Value {
    json!({
        "business": "Compass & Co",
        "support_email": "help@example.com",
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
    let composer = Composer::new().expect("templates compile");
    for kind in EmailKind::ALL {
        let email = composer
            .compose(*kind, "ada@example.com", &data())
            .unwrap_or_else(|err| panic!("{kind}: {err:#}"));
        assert!(!email.subject.is_empty(), "{kind}");
        assert!(email.text.contains("Hello Ada"), "{kind}: {}", email.text);
        assert!(email.html.contains("<!doctype html>"), "{kind}");
        assert!(email.html.contains("Compass &amp; Co"), "{kind}");
    }
}

#[test]
fn customer_text_is_escaped_in_html_and_kept_to_one_line_in_the_subject() {
    let composer = Composer::new().expect("templates compile");
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
    let composer = Composer::new().expect("templates compile");
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
    let composer = Composer::new().expect("templates");
    let mut email = composer
        .compose(EmailKind::ReportReady, "ada@example.com", &data())
        .expect("renders");
    email.attachment = Some((
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
    let composer = Composer::new().expect("templates compile");
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
    "#]]
    .assert_eq(&format!("{}\n---\n{}", email.subject, email.text));
}
