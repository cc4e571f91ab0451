//! The consultant's review, end to end through the real binary against llmock: with
//! `[delivery] review = true` a written report waits, the operator is alerted (and reminded),
//! the customer's page says it is being reviewed and serves no report, and each decision
//! (approve, regenerate with a note, edit) is on the timeline and in the audit log; the
//! customer gets one "report ready" email, only after the approval.

use compass::db::Db;
use compass::order::Status;
use serde_json::json;
use time::Duration;

use crate::process::pdf_text;
use crate::services::service;
use crate::support::{Install, NOW, Serving, stdout, text};

fn model(name: &str) -> String {
    format!("claude-review-{name}-{}", std::process::id())
}

/// An installation that reviews reports, with its own llmock model replying with the sample
/// words, and one paid Premium order: (install, order id).
fn setup(name: &str) -> (String, Install, String) {
    let model = model(name);
    let install = Install::with_claude(&service("COMPASS_TEST_CLAUDE_URL"), &model)
        .edit_config(&[("review = false", "review = true")]);
    let tier = crate::seed::tier("premium");
    let words = serde_json::to_string(&crate::seed::sample_written("premium")).expect("json");
    crate::llmock::script(
        &model,
        json!([{ "type": "reply", "text": words, "times": null }]),
    );
    let order_id = crate::seed::paid_order(&mut install.db(), tier, "Harbour & Vale", NOW)
        .expect("a paid order");
    (model, install, order_id)
}

fn process_at(install: &Install, at: time::OffsetDateTime) -> String {
    let mut command = install.command(&["process"]);
    command.env("COMPASS_NOW", compass::clock::rfc3339(at));
    stdout(&command.output().expect("run process"))
}

/// `compass review ARGS` at `at`.
fn review(install: &Install, at: time::OffsetDateTime, args: &[&str]) -> String {
    let mut all = vec!["review"];
    all.extend_from_slice(args);
    let mut command = install.command(&all);
    command.env("COMPASS_NOW", compass::clock::rfc3339(at));
    stdout(&command.output().expect("run review"))
}

fn status(db: &Db, id: &str) -> Status {
    db.order(id).expect("read").expect("order").order.status
}

/// Of the order's emails, those of `kind` that went out.
fn sent(db: &Db, id: &str, kind: &str) -> usize {
    let detail = db.order_detail(id).expect("read").expect("order");
    detail
        .emails
        .iter()
        .filter(|e| e.kind == kind && e.status == "sent")
        .count()
}

fn alerts(install: &Install, id: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(install.database()).expect("open");
    let mut stmt = conn
        .prepare("SELECT message FROM emails WHERE kind = 'operator_alert' AND order_id = ?1 ORDER BY id")
        .expect("prepare");
    stmt.query_map([id], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// The order's timeline: (event, actor).
fn timeline(db: &Db, id: &str) -> Vec<(String, String)> {
    let detail = db.order_detail(id).expect("read").expect("order");
    detail
        .timeline
        .iter()
        .map(|e| (e.kind.clone(), e.actor.clone()))
        .collect()
}

#[test]
fn an_approved_report_goes_out_once_and_only_after_approval() {
    let (_, install, id) = setup("approve");
    let printed = process_at(&install, NOW);
    assert!(printed.contains("waits for your review"), "{printed}");
    let db = install.db();
    assert_eq!(status(&db, &id), Status::AwaitingReview);
    assert_eq!(
        sent(&db, &id, "report_ready"),
        0,
        "nothing for the customer yet"
    );
    let alerted = alerts(&install, &id);
    assert_eq!(alerted.len(), 1, "{alerted:?}");
    assert!(
        alerted[0].contains(&format!("`compass review {id}`")),
        "{alerted:?}"
    );

    // Reminded once a day it waits, however often process runs.
    let printed = process_at(&install, NOW + Duration::hours(25));
    assert!(
        printed.contains(&format!("reminded you again: the report of {id}")),
        "{printed}"
    );
    process_at(&install, NOW + Duration::hours(26));
    assert_eq!(alerts(&install, &id).len(), 2, "one reminder after a day");
    process_at(&install, NOW + Duration::hours(49));
    assert_eq!(alerts(&install, &id).len(), 3, "and another after two");

    // The customer's page says so, and serves no report yet.
    let token = db.order(&id).expect("read").expect("order").status_token;
    let server = Serving::start(install);
    let (code, page) = server.get(&format!("/status/{token}"));
    assert_eq!(code, 200);
    assert!(page.contains("Your report is being reviewed"), "{page}");
    assert!(page.contains("Review"), "a step of its own: {page}");
    let (code, _, _) = server.get_bytes(&format!("/status/{token}/report.pdf"));
    assert_eq!(code, 404, "no report before the approval");
    let (_, api) = server.get(&format!("/api/orders/{token}"));
    let api: serde_json::Value = serde_json::from_str(&api).expect("JSON");
    assert_eq!(api["status"], "awaiting_review");
    assert_eq!(api["report"], json!(null));

    // The operator lists what waits and reads it.
    let install = &server.install;
    let listed = review(install, NOW + Duration::hours(49), &[]);
    assert!(
        listed.contains(&id) && listed.contains("Harbour & Vale"),
        "{listed}"
    );
    let dir = install.dir.path().join("read");
    let shown = review(
        install,
        NOW + Duration::hours(49),
        &[&id, "--out", dir.to_str().expect("utf-8")],
    );
    assert!(shown.contains("waiting for your review"), "{shown}");
    let pdf = std::fs::read(dir.join("report.pdf")).expect("the PDF to read");
    assert!(pdf_text(&pdf).contains("Harbour & Vale"));

    let approved = review(install, NOW + Duration::hours(50), &[&id[..8], "--approve"]);
    assert!(approved.contains("approved"), "{approved}");
    assert_eq!(status(&db, &id), Status::Completed);
    process_at(install, NOW + Duration::hours(50));
    assert_eq!(
        sent(&db, &id, "report_ready"),
        1,
        "one email, after the approval"
    );
    let (code, _, _) = server.get_bytes(&format!("/status/{token}/report.pdf"));
    assert_eq!(code, 200, "the report is the customer's now");
    assert!(timeline(&db, &id).contains(&("review_approved".into(), "operator".into())));
    let audited: i64 = rusqlite::Connection::open(install.database())
        .expect("open")
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'review_approved' AND order_id = ?1",
            [&id],
            |row| row.get(0),
        )
        .expect("audit");
    assert_eq!(audited, 1);

    // A second approval is refused with nothing changed.
    let again = install.compass(&["review", &id, "--approve"]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("there is no report waiting for review"));

    // The stats count the review in the delivery time, and say how much of it it was.
    let stats = stdout(
        &install
            .command(&["stats", "--json"])
            .output()
            .expect("stats"),
    );
    let stats: serde_json::Value = serde_json::from_str(&stats).expect("JSON");
    assert_eq!(stats["review_p50_secs"], 50 * 3600);
}

#[test]
fn a_report_written_again_follows_the_note_given_outside_the_customers_answers() {
    let (model, install, id) = setup("regenerate");
    process_at(&install, NOW);
    assert_eq!(status(&install.db(), &id), Status::AwaitingReview);
    let blank = install.compass(&["review", &id, "--regenerate", "--note", "   "]);
    assert!(!blank.status.success());
    assert!(text(&blank.stderr).contains("--note must be 1 to 2000 characters"));
    let note = "Say more about their forklift fleet.";
    let said = review(
        &install,
        NOW + Duration::minutes(1),
        &[&id, "--regenerate", "--note", note],
    );
    assert!(said.contains("to be written again"), "{said}");
    let db = install.db();
    assert_eq!(status(&db, &id), Status::Paid);

    let printed = process_at(&install, NOW + Duration::minutes(5));
    assert!(printed.contains("waits for your review"), "{printed}");
    assert_eq!(status(&db, &id), Status::AwaitingReview);
    let requests = crate::llmock::requests(&model);
    assert_eq!(requests.len(), 2, "written twice");
    let first = requests[0]["body"]["messages"][0]["content"]
        .as_str()
        .expect("prompt");
    assert!(!first.contains(note));
    let prompt = requests[1]["body"]["messages"][0]["content"]
        .as_str()
        .expect("prompt");
    let answers_end = prompt.find("</customer_answers>").expect("the data block");
    let at = prompt.find(note).expect("the note reached the model");
    assert!(
        at > answers_end,
        "the note is outside the customer's data block: {prompt}"
    );
    assert!(
        prompt[answers_end..].contains("<consultant_note>"),
        "{prompt}"
    );
    assert_eq!(
        sent(&db, &id, "report_ready"),
        0,
        "nothing before the approval"
    );

    review(&install, NOW + Duration::minutes(8), &[&id, "--approve"]);
    process_at(&install, NOW + Duration::minutes(10));
    assert_eq!(sent(&db, &id, "report_ready"), 1);
    let events: Vec<String> = timeline(&db, &id).into_iter().map(|(e, _)| e).collect();
    let regenerate = events
        .iter()
        .position(|e| e == "review_regenerate")
        .expect("on the timeline");
    let approved = events
        .iter()
        .position(|e| e == "review_approved")
        .expect("on the timeline");
    assert!(regenerate < approved, "{events:?}");
}

#[test]
fn an_edit_is_checked_before_it_is_stored_and_goes_out_once_approved() {
    let (_, install, id) = setup("edit");
    process_at(&install, NOW);
    let db = install.db();
    let before = db.artifact(&id, "pdf").expect("read").expect("pdf");

    // Without an editor, or with one that fails, nothing changes.
    let mut command = install.command(&["review", &id, "--edit"]);
    command.env_remove("EDITOR").env_remove("VISUAL");
    let no_editor = command.output().expect("run review");
    assert!(!no_editor.status.success());
    assert!(
        text(&no_editor.stderr).contains("set $EDITOR"),
        "{}",
        text(&no_editor.stderr)
    );
    let mut command = install.command(&["review", &id, "--edit"]);
    command.env("EDITOR", "false");
    let failing = command.output().expect("run review");
    assert!(!failing.status.success());
    assert!(
        text(&failing.stderr).contains("the editor `false` stopped"),
        "{}",
        text(&failing.stderr)
    );
    assert_eq!(db.artifact(&id, "pdf").expect("read").expect("pdf"), before);

    // An edit that states a score compass did not compute is refused, and nothing changes.
    let mut command = install.command(&["review", &id, "--edit"]);
    command.env(
        "EDITOR",
        "sed -i -e 's/SAMPLE REPORT. This is the built-in sample/You scored 99\\/100. This is the built-in sample/'",
    );
    let refused = command.output().expect("run review");
    assert!(!refused.status.success());
    let error = text(&refused.stderr);
    assert!(error.contains("99/100"), "names the number: {error}");
    assert!(error.contains("your edit is kept in"), "{error}");
    assert_eq!(db.artifact(&id, "pdf").expect("read").expect("pdf"), before);
    assert_eq!(status(&db, &id), Status::AwaitingReview);

    // The next edit starts from the kept one; this one holds.
    let mut command = install.command(&["review", &id, "--edit"]);
    command.env(
        "EDITOR",
        "sed -i -e 's/You scored 99\\/100. This is the built-in sample/Reviewed by your consultant: the plan below is ours/'",
    );
    let stored = command.output().expect("run review");
    assert!(stored.status.success(), "{}", text(&stored.stderr));
    assert!(text(&stored.stdout).contains("checked and stored"));
    let report: serde_json::Value =
        serde_json::from_slice(&db.artifact(&id, "json").expect("read").expect("json"))
            .expect("JSON");
    let summary = report["written"]["summary"].as_str().expect("summary");
    assert!(
        summary.starts_with("Reviewed by your consultant"),
        "{summary}"
    );
    let pdf = pdf_text(&db.artifact(&id, "pdf").expect("read").expect("pdf"));
    let flat = pdf.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("Reviewed by your consultant: the plan below is ours"),
        "{flat}"
    );
    assert_eq!(
        status(&db, &id),
        Status::AwaitingReview,
        "still waits for approval"
    );
    assert_eq!(sent(&db, &id, "report_ready"), 0);
    assert!(timeline(&db, &id).contains(&("review_edited".into(), "operator".into())));

    review(&install, NOW + Duration::minutes(2), &[&id, "--approve"]);
    process_at(&install, NOW + Duration::minutes(5));
    assert_eq!(
        sent(&db, &id, "report_ready"),
        1,
        "one email, with the edited report"
    );

    // A delivered report is no longer the consultant's to edit.
    let mut command = install.command(&["review", &id, "--edit"]);
    command.env("EDITOR", "true");
    let late = command.output().expect("run review");
    assert!(!late.status.success());
    assert!(
        text(&late.stderr).contains("only a report waiting for review can be edited"),
        "{}",
        text(&late.stderr)
    );
}
