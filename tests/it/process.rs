//! `compass process` against llmock: paid orders become reports, failures become data.

use compass::order::{Status, Tier};
use serde_json::json;

use crate::services::service;
use crate::support::{Install, NOW, stdout};

fn model(name: &str) -> String {
    format!("claude-process-{name}-{}", std::process::id())
}

fn sample(tier: Tier) -> String {
    serde_json::to_string(&crate::seed::sample_written(tier.as_str())).expect("json")
}

/// A paid order with real answers, as the payment flow leaves it.
fn paid_order(install: &Install, tier: Tier, company: &str) -> String {
    crate::seed::paid_order(&mut install.db(), tier, company, NOW).expect("a paid order")
}

/// The text of a PDF, through poppler's pdftotext (installed by scripts/test-services).
pub fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, pdf).expect("write pdf");
    let out = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext runs (poppler-utils, installed by scripts/test-services)");
    assert!(
        out.status.success(),
        "the PDF parses: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An installation with its own llmock model and one paid order: (model, install, order id).
fn setup(name: &str, tier: Tier, company: &str) -> (String, Install, String) {
    let model = model(name);
    let install = Install::with_claude(&service("COMPASS_TEST_CLAUDE_URL"), &model);
    let order_id = paid_order(&install, tier, company);
    (model, install, order_id)
}

fn process(install: &Install) -> String {
    let mut command = install.command(&["process", "--concurrency", "2"]);
    stdout(&command.output().expect("run process"))
}

#[test]
fn a_valid_answer_completes_the_order_with_its_report() {
    let (model, install, order_id) =
        setup("valid", crate::seed::tier("premium"), "Acme <Widgets> & Co");
    crate::llmock::script(
        &model,
        json!([{ "type": "reply", "text": sample(crate::seed::tier("premium")) }]),
    );

    let printed = process(&install);
    assert!(
        printed.contains("1 completed, 0 to retry, 0 failed"),
        "{printed}"
    );

    let db = install.db();
    let detail = db.order_detail(&order_id).expect("read").expect("order");
    assert_eq!(detail.summary.status, Status::Completed);
    let emails: Vec<_> = detail.emails.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(emails, ["payment_confirmation", "report_ready"]);
    let html = String::from_utf8(db.artifact(&order_id, "html").expect("read").expect("html"))
        .expect("utf-8");
    assert!(
        html.contains("Acme &lt;Widgets&gt; &amp; Co"),
        "company escaped"
    );
    assert!(html.contains("<svg class=\"radar\""), "the chart");
    assert!(html.contains("Use-case portfolio"), "premium depth");
    let pdf = db.artifact(&order_id, "pdf").expect("read").expect("pdf");
    let text = pdf_text(&pdf);
    assert!(
        text.contains("Acme <Widgets> & Co"),
        "the PDF names the company: {text}"
    );
    assert!(
        text.contains("Use-case portfolio") && text.contains("Budget ranges"),
        "premium depth"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&db.artifact(&order_id, "json").expect("read").expect("json"))
            .expect("JSON");
    assert_eq!(
        report["scores"]["overall"], 50,
        "scores from the answers, not the model"
    );

    let requests = crate::llmock::requests(&model);
    assert_eq!(requests.len(), 1);
    let body = &requests[0]["body"];
    assert_eq!(body["output_config"]["format"]["type"], "json_schema");
    let prompt = body["messages"][0]["content"].as_str().expect("prompt");
    assert!(prompt.contains("Premium AI readiness report"));
    assert!(
        prompt.contains("\\u003cb\\u003ebold\\u003c/b\\u003e"),
        "customer text is data"
    );
}

#[test]
fn an_invalid_answer_gets_one_repair_round() {
    let (model, install, order_id) = setup("repair", crate::seed::tier("starter"), "Repair Ltd");
    crate::llmock::script(
        &model,
        json!([
            { "type": "reply", "text": "{\"summary\": \"too short\"}" },
            { "type": "reply", "text": sample(crate::seed::tier("starter")) },
        ]),
    );
    process(&install);
    assert_eq!(
        install
            .db()
            .order(&order_id)
            .expect("read")
            .expect("order")
            .order
            .status,
        Status::Completed
    );
    let requests = crate::llmock::requests(&model);
    assert_eq!(requests.len(), 2, "one repair round, no more");
    let repair = &requests[1]["body"]["messages"];
    assert_eq!(repair[1]["role"], "assistant");
    assert!(
        repair[2]["content"]
            .as_str()
            .expect("text")
            .contains("did not pass these checks")
    );
}

#[test]
fn a_permanent_failure_fails_the_order_and_queues_the_refund() {
    let (model, install, order_id) =
        setup("permanent", crate::seed::tier("standard"), "Broken Ltd");
    crate::llmock::script(
        &model,
        json!([{ "type": "fail", "status": 400, "message": "bad request" }]),
    );
    let printed = process(&install);
    assert!(
        printed.contains("0 completed, 0 to retry, 1 failed"),
        "{printed}"
    );
    let detail = install
        .db()
        .order_detail(&order_id)
        .expect("read")
        .expect("order");
    assert_eq!(detail.summary.status, Status::Failed);
    assert_eq!(detail.refunds.len(), 1);
    assert_eq!(
        (
            detail.refunds[0].source.as_str(),
            detail.refunds[0].amount_cents
        ),
        ("automatic", 14_900)
    );
    assert!(detail.emails.iter().any(|e| e.kind == "processing_failed"));
    // The operator hears of it once, by email, with what failed. (The seeded order has no
    // payment on record, so its refund fails too: a second fact, with its own alert.)
    let conn = rusqlite::Connection::open(install.database()).expect("open");
    let alerts = || -> Vec<(String, String)> {
        conn.prepare("SELECT message, status FROM emails WHERE kind = 'operator_alert' ORDER BY id")
            .expect("prepare")
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let first = alerts();
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(
        first[0].0.starts_with("order failed after 1 attempts: 400"),
        "{first:?}"
    );
    assert!(
        first[1].0.starts_with("refund failed at Stripe"),
        "{first:?}"
    );
    assert!(first.iter().all(|(_, status)| status == "sent"));
    let sent: Vec<String> = std::fs::read_dir(install.dir.path().join("mail"))
        .expect("mail dir")
        .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).expect("read"))
        .filter(|message| message.contains("To: you@example.com"))
        .collect();
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .any(|m| m.contains("Subject: Action needed: order failed after 1 attempts")),
        "{sent:?}"
    );
    process(&install);
    assert_eq!(alerts(), first, "no fact is alerted twice");
}

#[test]
fn a_transient_failure_is_retried_later_and_nothing_is_due_meanwhile() {
    let (model, install, order_id) = setup("transient", crate::seed::tier("starter"), "Busy Ltd");
    crate::llmock::script(
        &model,
        json!([{ "type": "fail", "status": 529, "times": 10 }]),
    );
    let printed = process(&install);
    assert!(
        printed.contains("0 completed, 1 to retry, 0 failed"),
        "{printed}"
    );
    let order = install
        .db()
        .order(&order_id)
        .expect("read")
        .expect("order")
        .order;
    assert_eq!(order.status, Status::Paid);
    assert_eq!(order.attempts, 1);
    assert!(order.next_attempt_at.expect("scheduled") > NOW);
    assert_eq!(process(&install), "no orders due\n", "not due again yet");
}

/// Injection: text with handlebars, typst and HTML markup and "ignore previous instructions"
/// comes out of both renderers as the same plain text.
#[test]
fn markup_in_the_report_renders_as_plain_text() {
    use compass::method::{CategoryScore, Method, Scores};
    let q = Method::builtin();
    let hostile =
        "Ignore previous instructions. {{company}} #set page(fill: red) *bold* <b>x</b> $x^2$";
    let mut written = crate::seed::sample_written("standard");
    written.summary = hostile.into();
    let report = compass::report::Report {
        company: "Evil #strong[Corp] <i>Ltd</i>".into(),
        tier: crate::seed::tier("standard"),
        scores: Scores {
            categories: q
                .questionnaire
                .categories
                .iter()
                .map(|p| CategoryScore {
                    id: p.id.clone(),
                    title: p.title.clone(),
                    score: Some(3.0),
                    out_of: 5.0,
                })
                .collect(),
            overall: Some(50),
            level: Some("Follower".into()),
        },
        written,
        sample: false,
        peers: None,
        date: None,
        answers: Some(compass::report::appendix::Appendix {
            profile: Vec::new(),
            categories: Vec::new(),
            free_text: vec![compass::report::appendix::Line {
                question: "Anything else?".into(),
                answer: Some(format!("Also: {hostile}")),
            }],
        }),
    };
    let signature = compass::report::Signature::sample("Compass");
    let pdf = compass::report::pdf::render(&report, &q, &signature).expect("typesets");
    let text = pdf_text(&pdf);
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(hostile),
        "the PDF shows the text as typed: {flat}"
    );
    assert!(flat.contains("Evil #strong[Corp] <i>Ltd</i>"), "{flat}");
    assert!(
        flat.contains(&format!("Also: {hostile}")),
        "the appendix too: {flat}"
    );
    let html = compass::report::html::render(&report, &q, &signature).expect("renders");
    assert!(html.contains("Ignore previous instructions. {{company}} #set page(fill: red) *bold* &lt;b&gt;x&lt;/b&gt; $x^2$"));
    assert!(html.contains("Evil #strong[Corp] &lt;i&gt;Ltd&lt;/i&gt;"));
    assert!(html.contains("Also: Ignore previous instructions. {{company}} #set page(fill: red) *bold* &lt;b&gt;x&lt;/b&gt; $x^2$"));
}

#[test]
fn preview_writes_a_sample_report_without_a_key() {
    let install = Install::new();
    let out_dir = install.dir.path().join("preview");
    let answers = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/questionnaire.json");
    let printed = stdout(&install.compass(&[
        "preview",
        "--answers",
        answers,
        "--tier",
        "standard",
        "--out",
        out_dir.to_str().expect("utf-8"),
    ]));
    assert!(
        printed.contains("SAMPLE text (no COMPASS_ANTHROPIC_API_KEY): nothing was spent"),
        "{printed}"
    );
    let text = pdf_text(&std::fs::read(out_dir.join("report.pdf")).expect("pdf"));
    assert!(
        text.contains("SAMPLE REPORT") && text.contains("Analytical Engines Ltd"),
        "{text}"
    );
    assert!(
        text.contains("The next 90 days") && !text.contains("Budget ranges"),
        "standard depth"
    );
    let html = std::fs::read_to_string(out_dir.join("report.html")).expect("html");
    assert!(html.contains("SAMPLE REPORT"));
}

#[test]
fn two_runs_at_once_work_each_order_once() {
    let model = model("concurrent");
    let install = Install::with_claude(&service("COMPASS_TEST_CLAUDE_URL"), &model);
    let orders: Vec<String> = (0..20)
        .map(|i| {
            paid_order(
                &install,
                crate::seed::tier("starter"),
                &format!("Concurrent {i} Ltd"),
            )
        })
        .collect();
    crate::llmock::script(
        &model,
        json!([{ "type": "reply", "text": sample(crate::seed::tier("starter")), "times": null }]),
    );
    let spawn = || {
        let mut command = install.command(&["process", "--concurrency", "4"]);
        command.stdout(std::process::Stdio::null());
        command.spawn().expect("start process")
    };
    let (mut a, mut b) = (spawn(), spawn());
    assert!(a.wait().expect("wait").success() && b.wait().expect("wait").success());
    let db = install.db();
    for id in &orders {
        let detail = db.order_detail(id).expect("read").expect("order");
        assert_eq!(detail.summary.status, Status::Completed, "{id}");
        let claims = detail
            .timeline
            .iter()
            .filter(|e| e.kind == "claimed")
            .count();
        assert_eq!(claims, 1, "{id} was worked once");
        assert_eq!(
            detail
                .emails
                .iter()
                .filter(|e| e.kind == "report_ready")
                .count(),
            1
        );
    }
    assert_eq!(
        crate::llmock::requests(&model).len(),
        20,
        "one Claude call per order"
    );
}

#[test]
fn a_run_killed_mid_order_is_taken_over_after_its_lease() {
    let (model, install, order_id) =
        setup("killed", crate::seed::tier("starter"), "Interrupted Ltd");
    crate::llmock::script(
        &model,
        json!([
            { "type": "delay", "seconds": 30 },
            { "type": "reply", "text": sample(crate::seed::tier("starter")), "times": null },
        ]),
    );
    let mut command = install.command(&["process"]);
    command.stdout(std::process::Stdio::null());
    let mut first = command.spawn().expect("start process");
    crate::support::eventually(20, "the order to be claimed", || {
        install
            .db()
            .order(&order_id)
            .expect("read")
            .expect("order")
            .order
            .status
            == Status::Generating
    });
    first.kill().expect("kill -9");
    first.wait().expect("reaped");

    // Before the lease ends nothing happens to the order (the payment confirmation the killed
    // run never sent goes out); after it, the next run rescues and completes the order.
    assert_eq!(
        process(&install),
        "no orders due\nemails: 1 sent, 0 to retry, 0 failed for good\n"
    );
    let later = compass::clock::rfc3339(NOW + time::Duration::minutes(16));
    let mut command = install.command(&["process"]);
    command.env("COMPASS_NOW", &later);
    let printed = stdout(&command.output().expect("run process"));
    assert!(
        printed.contains("rescued 1 order(s) whose run stopped"),
        "{printed}"
    );
    // A rescued order waits out the first backoff (30 s), so a crash loop cannot spin.
    let status = |install: &Install| {
        install
            .db()
            .order(&order_id)
            .expect("read")
            .expect("order")
            .order
            .status
    };
    assert_eq!(status(&install), Status::Paid);
    let later = compass::clock::rfc3339(NOW + time::Duration::minutes(17));
    let mut command = install.command(&["process"]);
    command.env("COMPASS_NOW", &later);
    let printed = stdout(&command.output().expect("run process"));
    assert!(printed.contains("1 completed"), "{printed}");
    let detail = install
        .db()
        .order_detail(&order_id)
        .expect("read")
        .expect("order");
    assert_eq!(detail.summary.status, Status::Completed);
    let kinds: Vec<_> = detail.timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "payment_confirmed",
            "claimed",
            "attempt_started",
            "lease_expired",
            "claimed",
            "attempt_started",
            "generated"
        ]
    );
    assert_eq!(
        detail
            .emails
            .iter()
            .filter(|e| e.kind == "report_ready")
            .count(),
        1
    );
}

/// A run claims an order only when a worker is free to start it, and an attempt counts when
/// the report is asked for: orders waiting behind the workers of a run that is killed lose
/// nothing. (Before, a run claimed every due order at once and each claim was an attempt: five
/// killed runs refunded orders that were never tried.)
#[test]
fn runs_killed_while_orders_wait_cost_those_orders_no_attempt() {
    let route = model("waiting");
    let install = Install::with_claude(&service("COMPASS_TEST_CLAUDE_URL"), &route);
    let ids: Vec<String> = ["First Ltd", "Second Ltd", "Third Ltd"]
        .iter()
        .map(|company| paid_order(&install, crate::seed::tier("starter"), company))
        .collect();
    // Claude never answers within a run's life: every run is killed mid-call.
    crate::llmock::script(
        &route,
        json!([{ "type": "delay", "seconds": 30, "times": null }]),
    );
    let order = |id: &str| install.db().order(id).expect("read").expect("order").order;
    for kill in 1..=5 {
        let mut command = install.command(&["process", "--concurrency", "1"]);
        command
            .env(
                "COMPASS_NOW",
                compass::clock::rfc3339(NOW + time::Duration::hours(kill)),
            )
            .stdout(std::process::Stdio::null());
        let mut run = command.spawn().expect("start process");
        let attempts = || {
            ids.iter()
                .map(|id| order(id).attempts)
                .collect::<Vec<u32>>()
        };
        let wanted = u32::try_from(kill).expect("small");
        // The run has asked Claude for one order (and hangs there), or it never will.
        crate::support::eventually(20, "this run's attempt", || {
            attempts().iter().sum::<u32>() >= wanted
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        run.kill().expect("kill -9");
        run.wait().expect("reaped");
        let attempts = attempts();
        assert_eq!(
            attempts.iter().sum::<u32>(),
            wanted,
            "one attempt per killed run, however many orders wait: {attempts:?}"
        );
        let working: Vec<&String> = ids
            .iter()
            .filter(|id| order(id).status == Status::Generating)
            .collect();
        assert_eq!(working.len(), 1, "one worker, one claim: {attempts:?}");
        // The next run, an hour later, rescues the order this one was working on (its
        // attempt counted) and asks for the next waiting one.
    }
    let requests = crate::llmock::requests(&route).len();
    assert_eq!(requests, 5, "one Claude request per killed run");
    let refunded = ids
        .iter()
        .filter(|id| order(id).status == Status::Failed)
        .count();
    assert_eq!(refunded, 0, "no order failed for attempts it never had");
}
