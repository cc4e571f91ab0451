//! `init`, `migrate` and `orders` as an operator runs them.

use compass::db::NewOrder;
use compass::order::Policy;
use expect_test::expect;
use time::Duration;

use crate::seed::{Plan, plan_for, seed, seed_order, status_of};
use crate::support::{Install, NOW, one_error_line, redact, stdout};

const PLANS: [Plan; 9] = [
    Plan::Unpaid,
    Plan::Expired,
    Plan::Paid,
    Plan::Generating,
    Plan::Completed,
    Plan::PartlyRefunded,
    Plan::Refunded,
    Plan::Failed,
    Plan::Disputed,
];

/// One order in each status, an hour apart, the newest two hours before `NOW`.
fn seeded() -> (Install, Vec<String>) {
    let install = Install::new();
    let mut db = install.db();
    let policy = Policy::default();
    let ids = PLANS
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            let at = NOW - Duration::hours(2 + 9 - i as i64) - Duration::days(i as i64 % 3);
            seed_order(&mut db, i, i, *plan, at, &policy).expect("seed")
        })
        .collect();
    (install, ids)
}

fn fake_uuid(n: usize) -> String {
    format!("00000000-0000-7000-8000-{n:012}")
}

#[test]
fn init_writes_a_config_and_a_database_and_keeps_them_after() {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("srv");
    let config = target.join("compass.toml");
    let out = crate::support::compass_command(
        &config,
        &["init", "--dir", target.to_str().expect("utf-8")],
    )
    .output()
    .expect("run");
    let printed = stdout(&out).replace(&target.display().to_string(), "DIR");
    expect![[r#"
        wrote   DIR/compass.toml
        wrote   DIR/method/ (the built-in method)
        created DIR/compass.db (schema version 9)

        Next:
          1. Edit DIR/compass.toml: your business name, public_url and mail sender; and DIR/method/: your questions, prices, prompts and brand (`compass check` reads it).
          2. Set the secrets in the service's environment (never in the file):
             COMPASS_STRIPE_SECRET_KEY, COMPASS_STRIPE_WEBHOOK_SECRETS, COMPASS_ANTHROPIC_API_KEY, COMPASS_SMTP_PASSWORD
          3. `compass doctor` checks the setup; `compass orders` lists the orders as they come in.
    "#]]
    .assert_eq(&printed);
    assert_eq!(
        std::fs::read_to_string(&config).expect("config written"),
        compass::config::EXAMPLE
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(target.join("compass.db"))
            .expect("db")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the database is private to its owner");
    }

    std::fs::write(&config, "[business]\nname = \"Edited\"\n").expect("edit");
    let out = crate::support::compass_command(&config, &["init"])
        .output()
        .expect("run");
    let printed = stdout(&out).replace(&target.display().to_string(), "DIR");
    expect![[r#"
        kept    DIR/compass.toml
        kept    DIR/method/
        kept    DIR/compass.db (schema version 9)
    "#]]
    .assert_eq(&printed);
    assert_eq!(
        std::fs::read_to_string(&config).expect("config"),
        "[business]\nname = \"Edited\"\n",
        "an existing configuration is never overwritten"
    );
}

#[test]
fn migrate_reports_an_up_to_date_database() {
    let install = Install::new();
    let printed = stdout(&install.compass(&["migrate"]));
    let latest = compass::db::migrations()
        .last()
        .expect("a migration")
        .version;
    assert!(
        printed.ends_with(&format!(
            "compass.db is up to date (schema version {latest})\n"
        )),
        "{printed}"
    );
}

#[test]
fn migrate_creates_the_schema_of_an_empty_database_file() {
    let install = Install::new();
    std::fs::remove_file(install.database()).expect("remove");
    rusqlite::Connection::open(install.database()).expect("empty database file");
    let refused = one_error_line(&install.compass(&["orders"]));
    assert!(
        refused.ends_with("is empty: run `compass migrate` to create the schema"),
        "{refused}"
    );
    let printed = stdout(&install.compass(&["migrate"]));
    assert!(printed.starts_with("applied V1__init\n"), "{printed}");
    assert_eq!(stdout(&install.compass(&["orders"])), "no orders yet\n");
}

#[test]
fn orders_lists_the_newest_first_as_a_table() {
    let (install, ids) = seeded();
    let table = redact(&stdout(&install.compass(&["orders"])), &ids, fake_uuid);
    expect![[r#"
        ╭──────────────────────────────────────┬──────────────────┬──────────────────────┬──────────┬─────────┬─────────────────┬────────╮
        │ id                                   ┆ created (UTC)    ┆ customer             ┆ tier     ┆ amount  ┆ status          ┆ age    │
        ╞══════════════════════════════════════╪══════════════════╪══════════════════════╪══════════╪═════════╪═════════════════╪════════╡
        │ 00000000-0000-7000-8000-000000000001 ┆ 2026-11-22 07:00 ┆ contact6@example.com ┆ starter  ┆ $49.00  ┆ refunded        ┆ 5h     │
        │ 00000000-0000-7000-8000-000000000002 ┆ 2026-11-22 04:00 ┆ contact3@example.com ┆ starter  ┆ $49.00  ┆ generating      ┆ 8h     │
        │ 00000000-0000-7000-8000-000000000003 ┆ 2026-11-22 01:00 ┆ contact0@example.com ┆ starter  ┆ $49.00  ┆ pending_payment ┆ 11h    │
        │ 00000000-0000-7000-8000-000000000004 ┆ 2026-11-21 08:00 ┆ contact7@example.com ┆ standard ┆ $149.00 ┆ failed          ┆ 1d 4h  │
        │ 00000000-0000-7000-8000-000000000005 ┆ 2026-11-21 05:00 ┆ contact4@example.com ┆ standard ┆ $149.00 ┆ completed       ┆ 1d 7h  │
        │ 00000000-0000-7000-8000-000000000006 ┆ 2026-11-21 02:00 ┆ contact1@example.com ┆ standard ┆ $149.00 ┆ expired         ┆ 1d 10h │
        │ 00000000-0000-7000-8000-000000000007 ┆ 2026-11-20 09:00 ┆ contact8@example.com ┆ premium  ┆ $399.00 ┆ disputed        ┆ 2d 3h  │
        │ 00000000-0000-7000-8000-000000000008 ┆ 2026-11-20 06:00 ┆ contact5@example.com ┆ premium  ┆ $399.00 ┆ completed       ┆ 2d 6h  │
        │ 00000000-0000-7000-8000-000000000009 ┆ 2026-11-20 03:00 ┆ contact2@example.com ┆ premium  ┆ $399.00 ┆ paid            ┆ 2d 9h  │
        ╰──────────────────────────────────────┴──────────────────┴──────────────────────┴──────────┴─────────┴─────────────────┴────────╯
    "#]]
    .assert_eq(&table);
}

#[test]
fn orders_json_is_stable_for_scripts() {
    let (install, ids) = seeded();
    let json = stdout(&install.compass(&["orders", "--json", "--status", "completed"]));
    let orders: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let orders = orders.as_array().expect("an array");
    assert_eq!(
        orders.len(),
        2,
        "the completed and the partly refunded order"
    );
    let partly = orders
        .iter()
        .find(|o| o["refunded_cents"] == 1_000)
        .expect("the partly refunded order");
    let shown = redact(
        &serde_json::to_string_pretty(partly).expect("json"),
        &ids,
        fake_uuid,
    );
    expect![[r#"
        {
          "amount_cents": 39900,
          "company": "Lamarr Wireless",
          "created_at": "2026-11-20T06:00:00Z",
          "currency": "usd",
          "email": "contact5@example.com",
          "id": "00000000-0000-7000-8000-000000000001",
          "name": "Contact 5",
          "refunded_cents": 1000,
          "status": "completed",
          "tier": "premium",
          "updated_at": "2026-11-20T07:05:00Z"
        }"#]]
    .assert_eq(&shown);
}

#[test]
fn orders_filters_by_status_time_and_customer() {
    let (install, _) = seeded();
    let count = |args: &[&str]| -> usize {
        let mut all = vec!["orders", "--json"];
        all.extend_from_slice(args);
        let json: serde_json::Value =
            serde_json::from_str(&stdout(&install.compass(&all))).expect("JSON");
        json.as_array().expect("array").len()
    };
    assert_eq!(count(&[]), 9);
    for plan in PLANS {
        let status = status_of(plan).to_string();
        let expected = PLANS
            .iter()
            .filter(|p| status_of(**p) == status_of(plan))
            .count();
        assert_eq!(count(&["--status", &status]), expected, "{status}");
    }
    assert_eq!(count(&["--since", "1d"]), 3, "created in the last 24 hours");
    assert_eq!(count(&["--since", "2026-11-21"]), 6);
    assert_eq!(count(&["--email", "CONTACT4@example.com"]), 1);
    assert_eq!(count(&["--email", "nobody@example.com"]), 0);
    assert_eq!(count(&["--limit", "4"]), 4);
    assert_eq!(
        stdout(&install.compass(&["orders", "--email", "nobody@example.com"])),
        "no orders match\n"
    );

    let table = stdout(&install.compass(&["orders", "--limit", "2"]));
    assert_eq!(
        table.lines().count(),
        3 + 2 + 1 + 1,
        "header, 2 rows, border, footer"
    );
    assert!(
        table.ends_with("2 of 9 orders shown; --limit N shows more, --limit 0 all\n"),
        "{table}"
    );
}

#[test]
fn orders_show_tells_the_whole_story() {
    let (install, ids) = seeded();
    let refunded = &ids[6];
    let detail = install
        .db()
        .order_detail(refunded)
        .expect("read")
        .expect("present");
    let out = stdout(&install.compass(&["orders", "show", &refunded[..13]]));
    let out = redact(&out, &ids, fake_uuid);
    let refund_ids: Vec<String> = detail.refunds.iter().map(|r| r.id.clone()).collect();
    let out = redact(&out, &refund_ids, |n| {
        format!("00000000-0000-7000-9000-{n:012}")
    });
    let out = out.replace(&detail.status_token, &"T".repeat(detail.status_token.len()));
    // The built-in method's version changes with its text; the row says which one it was.
    let out = out.replace(
        compass::method::Method::builtin().short_version(),
        "VERSION_HASH",
    );
    expect![[r#"
        Order 00000000-0000-7000-8000-000000000001
        ╭─────────────┬──────────────────────────────────────────────────────────────────────────╮
        │ status      ┆ refunded                                                                 │
        │ company     ┆ Analytical Engines Ltd                                                   │
        │ customer    ┆ Contact 6 <contact6@example.com>                                         │
        │ tier        ┆ Starter                                                                  │
        │ method      ┆ AI readiness (VERSION_HASH)                                              │
        │ amount      ┆ $49.00, $49.00 refunded                                                  │
        │ created     ┆ 2026-11-22 07:00 (5h ago)                                                │
        │ paid        ┆ 2026-11-22 07:02                                                         │
        │ completed   ┆ 2026-11-22 07:04                                                         │
        │ attempts    ┆ 1 of 5                                                                   │
        │ downloads   ┆ 0                                                                        │
        │ status page ┆ http://127.0.0.1:8080/status/TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT │
        ╰─────────────┴──────────────────────────────────────────────────────────────────────────╯

        Refunds
        ╭──────────────────────────────────────┬────────┬──────────┬───────────┬───────────┬──────────────────┬──────────╮
        │ refund                               ┆ amount ┆ source   ┆ status    ┆ stripe id ┆ created          ┆ reason   │
        ╞══════════════════════════════════════╪════════╪══════════╪═══════════╪═══════════╪══════════════════╪══════════╡
        │ 00000000-0000-7000-9000-000000000001 ┆ $49.00 ┆ operator ┆ succeeded ┆           ┆ 2026-11-22 08:04 ┆ goodwill │
        ╰──────────────────────────────────────┴────────┴──────────┴───────────┴───────────┴──────────────────┴──────────╯

        Emails
        ╭──────────────────────┬──────────────────────┬────────┬──────────┬──────┬───────╮
        │ email                ┆ to                   ┆ status ┆ attempts ┆ sent ┆ error │
        ╞══════════════════════╪══════════════════════╪════════╪══════════╪══════╪═══════╡
        │ payment_confirmation ┆ contact6@example.com ┆ queued ┆ 0        ┆ -    ┆       │
        │ report_ready         ┆ contact6@example.com ┆ queued ┆ 0        ┆ -    ┆       │
        │ refund_processed     ┆ contact6@example.com ┆ queued ┆ 0        ┆ -    ┆       │
        ╰──────────────────────┴──────────────────────┴────────┴──────────┴──────┴───────╯

        Timeline
        ╭──────────────────┬───────────────────┬─────────────────────────┬──────────┬─────────────────────────────────────────────────────────╮
        │ at (UTC)         ┆ event             ┆ status                  ┆ by       ┆ detail                                                  │
        ╞══════════════════╪═══════════════════╪═════════════════════════╪══════════╪═════════════════════════════════════════════════════════╡
        │ 2026-11-22 07:00 ┆ created           ┆ pending_payment         ┆ web      ┆ amount_cents=4900 method=VERSION_HASH tier=starter      │
        │ 2026-11-22 07:02 ┆ payment_confirmed ┆ pending_payment -> paid ┆ stripe   ┆ amount_cents=4900 currency=usd payment_intent=pi_seed_6 │
        │ 2026-11-22 07:03 ┆ claimed           ┆ paid -> generating      ┆ process  ┆ lease_until=2026-11-22T07:13:00Z owner=seed             │
        │ 2026-11-22 07:03 ┆ attempt_started   ┆ generating              ┆ process  ┆ owner=seed                                              │
        │ 2026-11-22 07:04 ┆ generated         ┆ generating -> completed ┆ process  ┆ owner=seed                                              │
        │ 2026-11-22 08:04 ┆ refund_requested  ┆ completed -> refunding  ┆ operator ┆ prior_refunds=0 reason=goodwill source=operator         │
        │ 2026-11-22 08:05 ┆ refund_succeeded  ┆ refunding -> refunded   ┆ stripe   ┆ refund=1 refunded_total_cents=4900                      │
        ╰──────────────────┴───────────────────┴─────────────────────────┴──────────┴─────────────────────────────────────────────────────────╯
    "#]]
    .assert_eq(&out);

    let json: serde_json::Value = serde_json::from_str(&stdout(
        &install.compass(&["orders", "show", refunded, "--json"]),
    ))
    .expect("JSON");
    assert_eq!(json["id"], refunded.as_str());
    assert_eq!(json["status"], "refunded");
    assert_eq!(
        json["questionnaire"]["culture"],
        serde_json::json!([5, 4, 4])
    );
    assert_eq!(json["timeline"].as_array().expect("timeline").len(), 7);
}

#[test]
fn customer_text_is_shown_escaped() {
    let install = Install::new();
    let mut db = install.db();
    let hostile = "<script>alert(1)</script>\u{1b}[2J'; DROP TABLE orders; --";
    let method_version = crate::seed::builtin_version(&mut db);
    let order = db
        .create_order(
            &NewOrder {
                email: "mallory@example.com".into(),
                name: "Mallory\u{7}".into(),
                company: hostile.into(),
                tier: crate::seed::tier("starter"),
                amount_cents: 4_900,
                currency: "usd".into(),
                questionnaire: serde_json::json!({}),
                method_version,
                terms: None,
            },
            NOW,
        )
        .expect("stored verbatim");
    let out = stdout(&install.compass(&["orders", "show", &order.id]));
    assert!(
        out.contains("<script>alert(1)</script>\\u{1b}[2J'; DROP TABLE orders; --"),
        "{out}"
    );
    assert!(out.contains("Mallory\\u{7}"), "{out}");
    assert!(
        !out.contains('\u{1b}') && !out.contains('\u{7}'),
        "no raw control characters"
    );
    let json = stdout(&install.compass(&["orders", "show", &order.id, "--json"]));
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(json["company"], hostile, "JSON carries the exact text");
    assert_eq!(
        stdout(&install.compass(&["orders", "--json"]))
            .matches("mallory")
            .count(),
        1
    );
}

#[test]
fn the_benchmark_seed_is_a_realistic_mix() {
    let mut db = compass::db::Db::open_in_memory().expect("db");
    let ids = seed(&mut db, 200, NOW, Duration::minutes(7), &Policy::default()).expect("seed");
    assert_eq!(ids.len(), 200);
    for i in [0, 5, 7, 9, 10, 12, 13, 14, 15] {
        let status = db
            .order(&ids[i])
            .expect("read")
            .expect("present")
            .order
            .status;
        assert_eq!(status, status_of(plan_for(i)), "order {i}");
    }
    let filter = compass::db::OrderFilter {
        status: Some(compass::order::Status::Completed),
        limit: 1_000,
        ..Default::default()
    };
    assert_eq!(db.count_orders(&filter).expect("count"), 2 * (85 + 1));
}
