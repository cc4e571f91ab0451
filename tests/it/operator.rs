//! The operator's upkeep commands: `stats`, `audit`, `backup` and `restore`.

use compass::order::Policy;
use expect_test::expect;
use time::Duration;

use crate::seed::{Plan, seed, seed_order};
use crate::support::{Install, NOW, files, one_error_line, stdout};

#[test]
fn stats_sum_up_a_seeded_month() {
    let install = Install::new();
    let mut db = install.db();
    seed(&mut db, 200, NOW, Duration::hours(3), &Policy::default()).expect("seed");
    drop(db);
    let printed = stdout(&install.compass(&["stats", "--since", "30d"]));
    expect![[r#"
        ╭─────────────────────────────┬──────────────────────────────────────╮
        │ since                       ┆ 2026-10-23 12:00 UTC                 │
        ╞═════════════════════════════╪══════════════════════════════════════╡
        │ orders created              ┆ 200                                  │
        │ paid                        ┆ 186 (93.0% of created)               │
        │ reports delivered           ┆ 178                                  │
        │ revenue                     ┆ $37014.00                            │
        │ refunded                    ┆ $1016.00 on 6 order(s), 3.2% of paid │
        │ paid to delivered, p50      ┆ 2m 00s                               │
        │ paid to delivered, p95      ┆ 2m 00s                               │
        │ Claude cost                 ┆ $0.0000                              │
        │ Claude cost per report      ┆ $0.0000                              │
        │ margin (before Stripe fees) ┆ $35998.00                            │
        ╰─────────────────────────────┴──────────────────────────────────────╯
        by status: completed 172, pending_payment 10, expired 4, paid 4, refunded 4, disputed 2, failed 2, generating 2
    "#]]
    .assert_eq(&printed);
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&install.compass(&["stats", "--json"]))).expect("JSON");
    assert_eq!(json["orders"], 200);
}

#[test]
fn the_audit_passes_a_healthy_database_and_fails_a_broken_one() {
    let install = Install::new();
    let mut db = install.db();
    for i in 0..20 {
        seed_order(&mut db, i, i, Plan::Unpaid, NOW, &Policy::default()).expect("seed");
    }
    drop(db);
    assert_eq!(
        stdout(&install.compass(&["audit"])),
        "audit: every invariant holds\n"
    );
    // A paid order with no payment on record (seeded past the payment flow).
    let mut db = install.db();
    seed_order(&mut db, 99, 99, Plan::Paid, NOW, &Policy::default()).expect("seed");
    drop(db);
    let out = install.compass(&["audit", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let found: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the violations as JSON");
    assert_eq!(found[0]["rule"], "paid_without_payment", "{found}");
    let out = install.compass(&["audit"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("paid_without_payment"));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("error: 1 violation(s) of the money invariants")
    );
}

#[test]
fn a_backup_taken_under_write_load_restores_to_a_sound_database() {
    let install = Install::new();
    let database = install.database();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let backup = install.dir.path().join("backup.db");
    let written = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut db = compass::db::Db::open(&database).expect("open");
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seed_order(&mut db, n, n, Plan::Unpaid, NOW, &Policy::default()).expect("write");
                n += 1;
            }
            n
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        let printed =
            stdout(&install.compass(&["backup", "--out", backup.to_str().expect("utf-8")]));
        assert!(printed.contains("integrity ok"), "{printed}");
        std::thread::sleep(std::time::Duration::from_millis(100));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().expect("writer")
    });
    assert!(
        written > 10,
        "the backup ran under load ({written} orders written)"
    );

    // Restoring into another installation: a consistent database that passes the audit.
    let other = Install::new();
    let before = files(other.dir.path());
    let refused = other.compass(&["restore", "--from", backup.to_str().expect("utf-8")]);
    assert!(
        one_error_line(&refused).contains("add --yes"),
        "no terminal, no --yes"
    );
    assert_eq!(files(other.dir.path()), before, "nothing changed");
    let printed = stdout(&other.compass(&[
        "restore",
        "--from",
        backup.to_str().expect("utf-8"),
        "--yes",
    ]));
    assert!(printed.starts_with("restored "), "{printed}");
    let restored: usize = printed
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(
        restored > 0 && restored <= written,
        "{restored} of {written}"
    );
    assert_eq!(
        stdout(&other.compass(&["audit"])),
        "audit: every invariant holds\n"
    );
    let listed = stdout(&other.compass(&["orders", "--json", "--limit", "0"]));
    let listed: Vec<serde_json::Value> = serde_json::from_str(&listed).expect("JSON");
    assert_eq!(listed.len(), restored);

    // A file that is not a backup is refused before anything is touched.
    let junk = other.dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database").expect("write");
    let before = files(other.dir.path());
    let line = one_error_line(&other.compass(&[
        "restore",
        "--from",
        junk.to_str().expect("utf-8"),
        "--yes",
    ]));
    assert!(line.contains("junk.db"), "{line}");
    assert_eq!(files(other.dir.path()), before);
}

/// An installation wired to the three fakes, with an https address and its own sender.
fn ready_install() -> Install {
    let install = Install::with_stripe(&crate::services::service("COMPASS_TEST_STRIPE_URL"));
    crate::seed::point_at_claude(
        &install.config(),
        &crate::services::service("COMPASS_TEST_CLAUDE_URL"),
        "claude-doctor",
    )
    .expect("point at llmock");
    install.use_smtp(&crate::services::service("COMPASS_TEST_SMTP"));
    let config = std::fs::read_to_string(install.config()).expect("config");
    let config = config
        .replace(
            "public_url = \"http://127.0.0.1:8080\"",
            "public_url = \"https://compass.example.org\"",
        )
        .replace("reports@example.com", "reports@compass.example.org")
        .replace("you@example.com", "owner@compass.example.org");
    std::fs::write(install.config(), config).expect("write config");
    install
}

fn doctor(install: &Install, keys: bool) -> std::process::Output {
    let mut command = install.command(&["doctor"]);
    if keys {
        command
            .env("COMPASS_STRIPE_SECRET_KEY", crate::support::STRIPE_KEY)
            .env("COMPASS_STRIPE_WEBHOOK_SECRETS", "whsec_doctor")
            .env(
                "COMPASS_ANTHROPIC_API_KEY",
                crate::seed::claude_key("claude-doctor"),
            );
    }
    command.output().expect("run doctor")
}

#[test]
fn doctor_passes_a_ready_installation_against_the_fakes() {
    let install = ready_install();
    let out = doctor(&install, true);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let levels: Vec<&str> = printed.lines().map(|l| &l[..4]).collect();
    assert!(levels.iter().all(|l| *l == "ok  "), "{printed}");
    for name in [
        "config",
        "config file",
        "database",
        "database file",
        "public url",
        "method",
        "policy pages",
        "stripe key",
        "stripe publishable key",
        "webhook secret",
        "anthropic model",
        "mail",
    ] {
        assert!(
            printed.lines().any(|l| l[6..].starts_with(name)),
            "{name} missing: {printed}"
        );
    }
    assert!(printed.contains("test-mode key accepted"), "{printed}");
    assert!(printed.contains("SMTP server accepts"), "{printed}");
}

/// The API's word on the configured model: a retired or misspelt one fails (every report
/// would), a deprecated one warns with its retirement date. The gate answers the Models API
/// from the official SDK's model list and its list of deprecations.
#[test]
fn doctor_checks_the_configured_model_with_the_models_api() {
    for (model, level, says) in [
        (
            "claude-sonnet-4-5",
            "FAIL",
            "the API does not know claude-sonnet-4-5 (retired or misspelt): every report would \
             fail; set claude.model to a current model, e.g. claude-sonnet-5-5",
        ),
        (
            "claude-opus-4-5",
            "warn",
            "claude-opus-4-5 is deprecated and retires 2027-01-22T00:00:00Z: set claude.model \
             to a current model before then",
        ),
    ] {
        let install = ready_install();
        let config = std::fs::read_to_string(install.config()).expect("config");
        std::fs::write(
            install.config(),
            config.replace(
                "model = \"claude-sonnet-5-5\"",
                &format!("model = \"{model}\""),
            ),
        )
        .expect("write config");
        let printed = String::from_utf8_lossy(&doctor(&install, true).stdout).into_owned();
        let line = printed
            .lines()
            .find(|l| l[6..].starts_with("anthropic model"))
            .unwrap_or_else(|| panic!("no model line: {printed}"));
        assert_eq!(line[..4].trim(), level, "{printed}");
        assert!(line.ends_with(says), "{line}");
    }
}

#[test]
fn doctor_names_what_is_broken() {
    let install = ready_install();
    // SMTP and Stripe where nothing listens; a database others can write.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = dead.local_addr().expect("address").port();
    drop(dead);
    let config = std::fs::read_to_string(install.config()).expect("config");
    let smtp = crate::services::service("COMPASS_TEST_SMTP");
    let (_, smtp_port) = smtp.rsplit_once(':').expect("port");
    let config = config
        .replace(
            &format!("smtp_port = {smtp_port}"),
            &format!("smtp_port = {port}"),
        )
        .replace(
            "api_key_file = \"anthropic-api-key\"",
            "# no Anthropic key anywhere",
        )
        .replace(
            &crate::services::service("COMPASS_TEST_STRIPE_URL"),
            &format!("http://127.0.0.1:{port}"),
        );
    std::fs::write(install.config(), config).expect("write config");
    std::fs::set_permissions(
        install.database(),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .expect("chmod");

    let out = doctor(&install, false);
    assert_eq!(out.status.code(), Some(1));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let level_of = |name: &str| {
        printed
            .lines()
            .find(|l| l[6..].starts_with(&format!("{name} ")))
            .map(|l| l[..4].trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} line: {printed}"))
    };
    assert_eq!(level_of("database file"), "FAIL");
    assert_eq!(level_of("stripe key"), "FAIL", "no key set");
    assert_eq!(level_of("webhook secret"), "FAIL");
    assert_eq!(level_of("anthropic key"), "FAIL");
    assert_eq!(level_of("mail"), "FAIL");
    assert_eq!(level_of("database"), "ok");
    assert!(
        printed.contains("COMPASS_ANTHROPIC_API_KEY"),
        "says what to set: {printed}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("check(s) failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // With keys, an unreachable Stripe is named too.
    let printed = String::from_utf8_lossy(&doctor(&install, true).stdout).into_owned();
    assert!(
        printed
            .lines()
            .any(|l| l.starts_with("FAIL  stripe key") && l.contains("cannot reach Stripe")),
        "{printed}"
    );
}

#[test]
fn metrics_count_a_scripted_flow_on_their_own_address_only() {
    let install = Install::with_stripe(&crate::services::service("COMPASS_TEST_STRIPE_URL"));
    let mut db = install.db();
    for (i, plan) in [Plan::Unpaid, Plan::Completed, Plan::Failed]
        .into_iter()
        .enumerate()
    {
        seed_order(&mut db, i, i, plan, NOW, &Policy::default()).expect("seed");
    }
    drop(db);
    let (mut child, lines) = spawn_serve(&install, &["--metrics-listen", "127.0.0.1:0"], false);
    let base = lines[0].trim_start_matches("listening on ").to_owned();
    let metrics_url = lines[1].trim_start_matches("metrics on ").to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let get = |url: &str| {
        let mut response = agent.get(url).call().expect("answered");
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap_or_default(),
        )
    };
    for _ in 0..3 {
        assert_eq!(get(&format!("{base}/")).0, 200);
    }
    assert_eq!(get(&format!("{base}/status/{}", "Q".repeat(43))).0, 404);
    assert_eq!(
        get(&format!("{base}/metrics")).0,
        404,
        "not on the public address"
    );

    let (status, text) = get(&metrics_url);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert_eq!(status, 200);
    for expected in [
        r#"compass_http_requests_total{route="/",method="GET",status="200"} 3"#,
        r#"compass_http_requests_total{route="/status/{token}",method="GET",status="404"} 1"#,
        r#"compass_http_requests_total{route="/metrics",method="GET",status="404"} 1"#,
        r#"compass_orders{status="pending_payment"} 1"#,
        r#"compass_orders{status="completed"} 1"#,
        r#"compass_orders{status="failed"} 1"#,
        r#"compass_orders{status="refunded"} 0"#,
        r#"compass_emails{kind="payment_confirmation",status="queued"} 2"#,
        r#"compass_emails{kind="processing_failed",status="queued"} 1"#,
        "compass_http_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    assert!(!text.contains(&"Q".repeat(43)), "no token in a label");
}

/// `compass serve` on a free port, with `extra` arguments: the child and its first lines
/// (`listening on`, and `metrics on` when asked for). With `logs`, stderr is kept at info.
fn spawn_serve(
    install: &Install,
    extra: &[&str],
    logs: bool,
) -> (std::process::Child, Vec<String>) {
    use std::io::BufRead;
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut command = install.command(&args);
    command
        .env("COMPASS_STRIPE_SECRET_KEY", crate::support::STRIPE_KEY)
        .env(
            "COMPASS_STRIPE_WEBHOOK_SECRETS",
            crate::support::WEBHOOK_SECRET,
        )
        .env("COMPASS_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(if logs {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        });
    let mut child = command.spawn().expect("serve");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let count = 1 + extra.iter().filter(|a| **a == "--metrics-listen").count();
    let lines = (0..count)
        .map(|_| stdout.next().expect("a line").expect("text"))
        .collect();
    (child, lines)
}

#[test]
fn logs_carry_request_ids_and_never_a_status_token() {
    use std::io::Read;
    let install = Install::with_stripe(&crate::services::service("COMPASS_TEST_STRIPE_URL"));
    let mut db = install.db();
    let id = seed_order(&mut db, 0, 0, Plan::Completed, NOW, &Policy::default()).expect("seed");
    let token = db.order(&id).expect("read").expect("order").status_token;
    drop(db);
    let (mut child, lines) = spawn_serve(&install, &[], true);
    let base = lines[0].trim_start_matches("listening on ").to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .get(&format!("{base}/status/{token}"))
        .call()
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200);
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("X-Request-Id")
        .to_owned();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut logs)
        .expect("logs");
    let _ = child.wait();
    assert!(
        !logs.contains(&token),
        "a status token reached the logs:\n{logs}"
    );
    let line = logs
        .lines()
        .find(|l| l.contains(&request_id))
        .unwrap_or_else(|| panic!("no log line with {request_id}:\n{logs}"));
    let json: serde_json::Value = serde_json::from_str(line).expect("JSON lines off a terminal");
    assert_eq!(json["fields"]["route"], "/status/{token}", "{line}");
    assert_eq!(json["fields"]["status"], 200, "{line}");
}

#[test]
fn the_csv_export_parses_and_its_revenue_matches_stats() {
    let install = Install::new();
    let mut db = install.db();
    seed(&mut db, 120, NOW, Duration::hours(5), &Policy::default()).expect("seed");
    // A company name a spreadsheet would run as a formula.
    let formula = "=HYPERLINK(\"https://evil.example\",\"open\")";
    crate::seed::paid_order(&mut db, crate::seed::tier("starter"), formula, NOW).expect("order");
    drop(db);
    let printed = stdout(&install.compass(&["orders", "--csv", "--limit", "0"]));
    let mut reader = csv::Reader::from_reader(printed.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[..3], ["created_at", "order_id", "email"]);
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("CSV");
    assert_eq!(rows.len(), 121);
    let column = |name: &str| header.iter().position(|h| h == name).expect("column");
    let company = column("company");
    assert!(
        rows.iter().any(|r| r[company] == format!("'{formula}")),
        "the formula is text, not a formula"
    );
    assert!(rows.iter().all(|r| !r[company].starts_with('=')));
    let (amount, refunded, status) = (
        column("amount_cents"),
        column("refunded_cents"),
        column("status"),
    );
    let paid = |row: &csv::StringRecord| !matches!(&row[status], "pending_payment" | "expired");
    let cents = |row: &csv::StringRecord, i: usize| row[i].parse::<i64>().expect("cents");
    let revenue: i64 = rows
        .iter()
        .filter(|r| paid(r))
        .map(|r| cents(r, amount))
        .sum();
    let refunds: i64 = rows.iter().map(|r| cents(r, refunded)).sum();
    let stats: serde_json::Value = serde_json::from_str(&stdout(
        &install.compass(&["stats", "--since", "90d", "--json"]),
    ))
    .expect("JSON");
    assert_eq!(stats["revenue_cents"], revenue);
    assert_eq!(stats["refunded_cents"], refunds);
    let conflict = install.compass(&["orders", "--csv", "--json"]);
    assert_eq!(
        conflict.status.code(),
        Some(2),
        "--csv and --json together is a usage mistake"
    );
}
