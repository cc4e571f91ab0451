//! Bad input gets one clear line on stderr, exit status 1 (2 for usage), and changes nothing.

use std::process::Command;

use crate::support::{Install, files, one_error_line, text};

#[test]
fn a_corrupt_database_is_refused_untouched() {
    let install = Install::new();
    let garbage = b"not a database at all; somebody copied a log file here\n".repeat(200);
    std::fs::write(install.database(), &garbage).expect("corrupt the database");
    let before = files(install.dir.path());
    for args in [
        &["orders"][..],
        &["migrate"],
        &["orders", "show", "01234567"],
    ] {
        let line = one_error_line(&install.compass(args));
        assert!(
            line.starts_with("error: cannot read database ")
                && line.ends_with("compass.db: file is not a database"),
            "{args:?}: {line}"
        );
    }
    assert_eq!(files(install.dir.path()), before, "nothing written");
}

#[test]
fn a_truncated_database_is_refused_untouched() {
    let install = Install::new();
    let bytes = std::fs::read(install.database()).expect("read");
    std::fs::write(install.database(), &bytes[..bytes.len() / 3]).expect("truncate");
    let before = files(install.dir.path());
    let line = one_error_line(&install.compass(&["orders"]));
    assert!(line.contains("database disk image is malformed"), "{line}");
    assert_eq!(files(install.dir.path()), before, "nothing written");
}

/// Root ignores file permissions, so as root the binary runs as `nobody` through setpriv.
fn as_unprivileged(mut command: Command) -> Command {
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if !root {
        return command;
    }
    let mut setpriv = Command::new("setpriv");
    setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
    setpriv.arg(command.get_program());
    setpriv.args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => setpriv.env(key, value),
            None => setpriv.env_remove(key),
        };
    }
    command = setpriv;
    command
}

#[test]
fn a_read_only_database_is_refused_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let install = Install::new();
    let dir = install.dir.path();
    let chmod = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    chmod(&install.database(), 0o444);
    chmod(&install.config(), 0o444);
    chmod(dir, 0o555);
    let before = files(dir);
    let out = as_unprivileged(install.command(&["orders"]))
        .output()
        .expect("run compass");
    chmod(dir, 0o755);
    let line = one_error_line(&out);
    assert!(
        line.ends_with(
            "compass.db is read-only: compass writes to it and to its directory (check their \
             owner and permissions)"
        ),
        "{line}"
    );
    assert_eq!(files(dir), before, "nothing written");
}

#[test]
fn a_config_with_a_syntax_error_is_refused() {
    let install = Install::new();
    std::fs::write(install.config(), "[tiers]\nstarter = 49 00\n").expect("write");
    let before = files(install.dir.path());
    let line = one_error_line(&install.compass(&["orders"]));
    let path = install.config().display().to_string();
    assert!(
        line.starts_with(&format!("error: invalid configuration: {path}:2:")),
        "{line}"
    );
    assert!(line.contains("tiers.starter"), "names the key: {line}");
    assert_eq!(files(install.dir.path()), before, "nothing written");
}

#[test]
fn a_config_with_an_unknown_key_names_it() {
    let install = Install::new();
    std::fs::write(
        install.config(),
        "[refunds]\nwindow_days = 7\nwindow_hours = 3\n",
    )
    .expect("write");
    let line = one_error_line(&install.compass(&["orders"]));
    assert!(
        line.contains(":3:1: refunds.window_hours: unknown field `window_hours`, expected"),
        "{line}"
    );
}

#[test]
fn a_bad_price_names_the_tier() {
    let install = Install::new();
    std::fs::write(install.config(), "[tiers]\nstandard = 0\n").expect("write");
    let line = one_error_line(&install.compass(&["init"]));
    assert!(
        line.ends_with("tiers.standard must be a price in cents between 50 and 99999999, got 0"),
        "{line}"
    );
}

#[test]
fn an_unknown_order_is_an_error() {
    let install = Install::new();
    let before = files(install.dir.path());
    let line = one_error_line(&install.compass(&[
        "orders",
        "show",
        "0193e0a0-0000-7000-8000-000000000000",
    ]));
    assert_eq!(
        line,
        "error: no order with id 0193e0a0-0000-7000-8000-000000000000"
    );
    let line = one_error_line(&install.compass(&["orders", "show", "x"]));
    assert_eq!(line, "error: no order with id x");
    assert_eq!(files(install.dir.path()), before, "nothing written");
}

#[test]
fn usage_mistakes_exit_with_two() {
    let install = Install::new();
    for args in [
        &["orders", "--status", "payed"][..],
        &["orders", "--limit", "many"],
        &["frobnicate"],
        &["orders", "show"],
    ] {
        let out = install.compass(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let out = install.compass(&["orders", "--since", "last tuesday"]);
    let line = one_error_line(&out);
    assert_eq!(
        line,
        "error: invalid --since: `last tuesday` is not an age like 3d, 12h, 90m or 2w, nor a date \
         like 2026-11-01"
    );
}

#[test]
fn a_missing_config_says_how_to_make_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("compass.toml");
    let out = crate::support::compass_command(&config, &["orders"])
        .output()
        .expect("run");
    let line = one_error_line(&out);
    assert!(line.contains("create one with `compass init`"), "{line}");
    assert!(files(dir.path()).is_empty(), "nothing written");
}

#[test]
fn refunds_the_order_cannot_take_are_refused_before_stripe_is_asked() {
    use compass::order::Policy;
    let install = Install::new();
    let now = crate::support::NOW;
    let mut db = install.db();
    let paid = crate::seed::paid_order(&mut db, crate::seed::tier("starter"), "Paid Ltd", now)
        .expect("paid");
    let unpaid = crate::seed::seed_order(
        &mut db,
        1,
        1,
        crate::seed::Plan::Unpaid,
        now,
        &Policy::default(),
    )
    .expect("unpaid");
    let disputed = crate::seed::seed_order(
        &mut db,
        2,
        2,
        crate::seed::Plan::Disputed,
        now,
        &Policy::default(),
    )
    .expect("disputed");
    drop(db);
    let before = files(install.dir.path());
    // No Stripe key is set: each of these is refused for what the order is, not for the key.
    for (args, expected) in [
        (
            vec!["refund", unpaid.as_str(), "--yes"],
            "was never paid: nothing to refund".to_owned(),
        ),
        (
            vec!["refund", disputed.as_str(), "--yes"],
            "is disputed: the card network holds the money".to_owned(),
        ),
        (
            vec!["refund", paid.as_str(), "--amount", "5000", "--yes"],
            format!("cannot refund $50.00 of order {paid}: at most $49.00 can be refunded"),
        ),
        (
            vec!["refund", paid.as_str(), "--decline"],
            "there is no refund request to decline".to_owned(),
        ),
        (
            vec!["refund", paid.as_str(), "--reason", " ", "--yes"],
            "--reason must be 1 to 500 characters".to_owned(),
        ),
    ] {
        let line = one_error_line(&install.compass(&args));
        assert!(line.contains(&expected), "{args:?}: {line}");
    }
    // Allowed, but there is no Stripe key: refused before anything is written.
    let line = one_error_line(&install.compass(&["refund", &paid, "--yes"]));
    assert!(line.contains("COMPASS_STRIPE_SECRET_KEY"), "{line}");
    // With a key but no terminal to confirm at, and no --yes: nothing is done.
    let mut command = install.command(&["refund", &paid]);
    command.env("COMPASS_STRIPE_SECRET_KEY", "sk_test_unused");
    let line = one_error_line(&command.output().expect("run refund"));
    assert!(line.contains("not at a terminal: add --yes"), "{line}");
    assert_eq!(files(install.dir.path()), before, "nothing written");
}

/// A paid order with its payment on record, against a scripted Stripe.
fn paid_with_payment(stripe: &crate::fake_http::FakeHttp) -> (Install, String) {
    let install = Install::with_stripe(&stripe.base);
    let now = crate::support::NOW;
    let mut db = install.db();
    let id = crate::seed::paid_order(&mut db, crate::seed::tier("starter"), "Refused Ltd", now)
        .expect("paid");
    db.upsert_payment(
        &compass::db::PaymentRecord {
            order_id: &id,
            payment_intent_id: "pi_refused",
            status: "succeeded",
            amount_cents: 4_900,
            currency: "usd",
            charge_id: Some("ch_refused"),
            last_error: None,
        },
        now,
    )
    .expect("payment");
    (install, id)
}

fn refund(install: &Install, id: &str) -> std::process::Output {
    let mut command = install.command(&["refund", id, "--yes"]);
    command.env("COMPASS_STRIPE_SECRET_KEY", "sk_test_compass");
    command.output().expect("run refund")
}

#[test]
fn a_refund_stripe_refuses_is_recorded_as_failed_and_the_audit_shows_the_money_owed() {
    use crate::fake_http::{Answer, FakeHttp};
    let stripe = FakeHttp::start(vec![Answer::json(
        400,
        serde_json::json!({ "error": {
            "type": "invalid_request_error",
            "message": "Charge ch_refused has already been refunded.",
        }}),
    )]);
    let (install, id) = paid_with_payment(&stripe);
    let out = refund(&install, &id);
    assert_eq!(out.status.code(), Some(1));
    // The warnings logged on the way (the operator alert) come before the one error line.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.starts_with("error: "), "{stderr}");
    assert!(
        line.contains("Stripe refused the refund of $49.00")
            && line.contains("has already been refunded"),
        "{line}"
    );
    let asked = stripe.received();
    assert_eq!(asked.len(), 1, "a refusal is not retried");
    assert_eq!(
        asked[0].header("Idempotency-Key"),
        Some(format!("compass-refund-{id}-1").as_str())
    );
    let detail = install
        .db()
        .order_detail(&id)
        .expect("read")
        .expect("order");
    assert_eq!(detail.refunds[0].status, "failed");
    assert!(
        detail.refunds[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("already been refunded"))
    );
    // Nothing is refunding any more, yet the money is owed: the audit says so.
    let out = install.compass(&["audit", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(found[0]["rule"], "owed_without_refund", "{found}");
}

#[test]
fn a_refund_stripe_cannot_take_now_stays_pending_for_the_next_pass() {
    use crate::fake_http::{Answer, FakeHttp};
    // One 503, then nothing listens: every retry fails to connect.
    let stripe = FakeHttp::start(vec![Answer::json(
        503,
        serde_json::json!({ "error": { "type": "api_error", "message": "overloaded" } }),
    )]);
    let (install, id) = paid_with_payment(&stripe);
    let out = refund(&install, &id);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("the refund of $49.00 is recorded but Stripe was not reached"),
        "{printed}"
    );
    let detail = install
        .db()
        .order_detail(&id)
        .expect("read")
        .expect("order");
    assert_eq!(detail.refunds[0].status, "pending");
    assert!(detail.refunds[0].stripe_refund_id.is_none());
    assert!(detail.refunds[0].last_error.is_some());
    // Its claim was let go: the next pass may ask at once.
    let again = install
        .db()
        .claim_refunds(Some(&id), crate::support::NOW, time::Duration::minutes(1))
        .expect("claim");
    assert_eq!(again.len(), 1);
}
