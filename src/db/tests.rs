use expect_test::expect;
use time::Duration;
use time::macros::datetime;

use super::*;
use crate::order::{EmailKind, Event, Policy, RefundSource, Status};

const T0: OffsetDateTime = datetime!(2026-11-02 09:00 UTC);

fn new_order(email: &str) -> NewOrder {
    NewOrder {
        email: email.into(),
        name: "Ada Lovelace".into(),
        company: "Analytical Engines Ltd".into(),
        tier: "standard".parse().expect("an id"),
        amount_cents: 14_900,
        currency: "USD".into(),
        questionnaire: serde_json::json!({ "strategy": [4, 3, 5] }),
        method_version: crate::method::Method::builtin().version,
        terms: None,
    }
}

/// A fresh in-memory store that keeps the built-in method, as every command's `App` does.
fn memory() -> Db {
    let mut db = Db::open_in_memory().expect("db");
    let method = crate::method::Method::builtin();
    db.keep_method(&method.version, method.files())
        .expect("the method is kept");
    db
}

fn confirm() -> Event {
    Event::PaymentConfirmed {
        payment_intent: "pi_1".into(),
        amount_cents: 14_900,
        currency: "usd".into(),
    }
}

fn count(db: &Db, sql: &str) -> i64 {
    db.conn
        .query_row(sql, [], |row| row.get(0))
        .expect("count query runs")
}

#[test]
fn released_migrations_are_never_edited() {
    // Editing a released migration changes its checksum, and refinery then refuses every
    // database migrated with the old text. Add a new V{n}__ file instead.
    let listed: Vec<_> = migrations()
        .iter()
        .map(|m| format!("V{}__{} {}", m.version, m.name, m.checksum))
        .collect();
    expect![[r#"
        [
            "V1__init 11871807138905593650",
            "V2__customers 8364569449095443846",
            "V3__refund_claims 14420552205075066461",
            "V4__operator_alerts 11709420491964133163",
            "V5__data_rights 11828194322226463518",
            "V6__attempts_count_tries 10651515155302399816",
            "V7__methods 12546670656075390102",
            "V8__review 4600006063656813491",
            "V9__invoices 16779040724890954492",
        ]
    "#]]
    .assert_debug_eq(&listed);
}

#[test]
fn every_older_schema_upgrades_to_the_fresh_one() {
    let fresh = Db::open_in_memory().expect("fresh database");
    let fresh_schema = fresh.schema_sql().expect("schema");
    assert!(fresh_schema.contains("CREATE TABLE orders"));

    let versions: Vec<i32> = migrations().iter().map(|m| m.version).collect();
    // From an empty database, and from the database each released migration leaves behind.
    for from in std::iter::once(0).chain(versions.iter().copied()) {
        let conn = rusqlite::Connection::open_in_memory().expect("in-memory database");
        let mut db = Db::configure(conn, None).expect("configure");
        if from > 0 {
            db.migrate_to(Some(from))
                .expect("migrate to an older version");
            assert_eq!(db.schema_version().expect("version"), Some(from));
        }
        let applied = db.migrate().expect("upgrade");
        assert_eq!(
            applied.iter().map(|m| m.version).collect::<Vec<_>>(),
            versions
                .iter()
                .copied()
                .filter(|v| *v > from)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            db.schema_sql().expect("schema"),
            fresh_schema,
            "from V{from}"
        );
        assert!(db.migrate().expect("a second run").is_empty(), "idempotent");
    }
}

#[test]
fn a_file_database_uses_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("compass.db");
    let (_, applied) = Db::create(&path).expect("create");
    assert_eq!(applied.len(), migrations().len());
    let db = Db::open(&path).expect("open");
    let mode: String = db
        .conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
    assert_eq!(count(&db, "PRAGMA foreign_keys"), 1);
    assert_eq!(count(&db, "PRAGMA busy_timeout"), 5000);
}

#[test]
fn open_refuses_what_is_not_a_current_compass_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let message =
        |path: &Path| format!("{:#}", Db::open(path).expect_err("the database is refused"));

    let missing = dir.path().join("missing.db");
    assert!(message(&missing).starts_with("no database at "));
    assert!(!missing.exists(), "nothing was created");

    let empty = dir.path().join("empty.db");
    rusqlite::Connection::open(&empty).expect("create an empty file");
    assert!(message(&empty).ends_with("is empty: run `compass migrate` to create the schema"));

    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .and_then(|c| c.execute_batch("CREATE TABLE notes (body TEXT)"))
        .expect("another application's database");
    assert!(
        message(&other)
            .ends_with("is an SQLite database but not a compass one (it has no schema history)")
    );
    let refused = Db::create(&other).expect_err("init refuses another application's database");
    assert!(format!("{refused:#}").ends_with("not a compass one (it has no schema history)"));
    let mut db = Db::open_for_migration(&other).expect("opens");
    assert!(db.migrate().is_err(), "migrate refuses it too");
    assert_eq!(
        db.table_count().expect("count"),
        1,
        "no compass table was added"
    );
    drop(db);

    let newer = dir.path().join("newer.db");
    let (db, _) = Db::create(&newer).expect("create");
    db.conn
        .execute(
            "INSERT INTO refinery_schema_history VALUES (99, 'future', '2030-01-01T00:00:00Z', '1')",
            [],
        )
        .expect("pretend a newer compass migrated it");
    drop(db);
    assert!(message(&newer).contains("is at schema version 99, newer than this compass knows"));

    let garbage = dir.path().join("garbage.db");
    let bytes = b"this is not a database, just some text that is long enough".repeat(100);
    std::fs::write(&garbage, &bytes).expect("write garbage");
    assert!(
        message(&garbage).ends_with("file is not a database"),
        "{}",
        message(&garbage)
    );
    assert_eq!(
        std::fs::read(&garbage).expect("read"),
        bytes,
        "nothing written"
    );
}

#[test]
fn customers_are_matched_by_normalised_email() {
    let mut db = memory();
    let first = db
        .create_order(&new_order("Ada@Example.COM "), T0)
        .expect("order");
    let mut renamed = new_order("ada@example.com");
    renamed.name = "Ada King".into();
    let second = db.create_order(&renamed, T0).expect("order");
    assert_ne!(first.id, second.id);
    assert_ne!(first.status_token, second.status_token);
    assert!(first.status_token.len() >= 43, "at least 256 bits, base64");
    assert_eq!(count(&db, "SELECT count(*) FROM customers"), 1);
    let name: String = db
        .conn
        .query_row("SELECT name FROM customers", [], |row| row.get(0))
        .expect("name");
    assert_eq!(name, "Ada King", "the newest name wins");

    let filter = OrderFilter {
        email: Some(" ADA@example.com".into()),
        limit: 10,
        ..OrderFilter::default()
    };
    assert_eq!(db.list_orders(&filter).expect("list").len(), 2);
    assert_eq!(db.count_orders(&filter).expect("count"), 2);
}

#[test]
fn a_step_stores_state_timeline_and_actions_together() {
    let mut db = memory();
    let policy = Policy::default();
    let order = db
        .create_order(&new_order("ada@example.com"), T0)
        .expect("order");
    assert_eq!(order.order.status, Status::PendingPayment);
    assert_eq!(order.order.currency, "usd");

    let step = db
        .apply(&order.id, &confirm(), &policy, "stripe", T0)
        .expect("stored")
        .expect("applies");
    assert_eq!(step.order.status, Status::Paid);
    // Stripe redelivers: the event is rejected and nothing more is queued.
    let again = db
        .apply(&order.id, &confirm(), &policy, "stripe", T0)
        .expect("stored");
    assert!(again.is_err());
    assert_eq!(count(&db, "SELECT count(*) FROM emails"), 1);

    let stored = db.order(&order.id).expect("read").expect("present");
    assert_eq!(stored.order, step.order);

    let refund = Event::RefundRequested {
        source: RefundSource::Operator,
        reason: "changed mind".into(),
        amount_cents: None,
        prior_refunds: 0,
    };
    db.apply(&order.id, &refund, &policy, "operator", T0)
        .expect("stored")
        .expect("applies");
    let stored = db.order(&order.id).expect("read").expect("present");
    assert_eq!(stored.order.status, Status::Refunding);
    assert_eq!(
        stored.order.refund_pending_cents(),
        14_900,
        "read back from refunds"
    );

    let detail = db.order_detail(&order.id).expect("read").expect("present");
    let timeline: Vec<_> = detail
        .timeline
        .iter()
        .map(|e| {
            format!(
                "{} {:?} -> {} by {}",
                e.kind, e.from_status, e.to_status, e.actor
            )
        })
        .collect();
    assert_eq!(
        timeline,
        [
            "created None -> pending_payment by web",
            "payment_confirmed Some(PendingPayment) -> paid by stripe",
            "refund_requested Some(Paid) -> refunding by operator",
        ]
    );
    assert_eq!(detail.timeline[1].detail["payment_intent"], "pi_1");
    assert_eq!(detail.emails.len(), 1);
    assert_eq!(
        detail.emails[0].kind,
        EmailKind::PaymentConfirmation.as_str()
    );
    assert_eq!(detail.emails[0].recipient, "ada@example.com");
    assert_eq!(detail.refunds.len(), 1);
    assert_eq!(detail.refunds[0].status, "pending");
    let key: String = db
        .conn
        .query_row("SELECT idempotency_key FROM refunds", [], |row| row.get(0))
        .expect("key");
    assert_eq!(key, format!("compass-refund-{}-1", order.id));
}

#[test]
fn refund_rows_follow_the_steps_that_settle_them() {
    let mut db = memory();
    let policy = Policy::default();
    let order = db
        .create_order(&new_order("ada@example.com"), T0)
        .expect("order");
    let mut apply = |event: Event| {
        db.apply(&order.id, &event, &policy, "test", T0)
            .expect("stored")
            .expect("applies")
            .order
    };
    apply(confirm());
    let operator = |amount_cents| Event::RefundRequested {
        source: RefundSource::Operator,
        reason: "goodwill".into(),
        amount_cents,
        prior_refunds: 0,
    };
    apply(operator(Some(1_000)));
    apply(operator(None));
    let after_failure = apply(Event::RefundFailed {
        refund: 1,
        error: "card_expired".into(),
    });
    apply(operator(None));
    let done = apply(Event::RefundSucceeded {
        refund: Some(2),
        refunded_total_cents: 13_900,
    });
    assert_eq!(after_failure.refundable_cents(), 1_000);
    assert_eq!(done.status, Status::Refunding, "1000 of #3 still pending");
    let stored = db.order(&order.id).expect("read").expect("present");
    assert_eq!(stored.order, done, "what is stored is what step returned");
    let final_step = db
        .apply(
            &order.id,
            &Event::RefundSucceeded {
                refund: Some(3),
                refunded_total_cents: 14_900,
            },
            &policy,
            "stripe",
            T0,
        )
        .expect("stored")
        .expect("applies");
    assert_eq!(final_step.order.status, Status::Refunded);

    let detail = db.order_detail(&order.id).expect("read").expect("present");
    let refunds: Vec<_> = detail
        .refunds
        .iter()
        .map(|r| (r.amount_cents, r.status.as_str(), r.last_error.as_deref()))
        .collect();
    assert_eq!(
        refunds,
        [
            (1_000, "failed", Some("card_expired")),
            (13_900, "succeeded", None),
            (1_000, "succeeded", None),
        ]
    );
    assert_eq!(
        db.order(&order.id).expect("read").expect("present").order,
        final_step.order
    );
}

#[test]
fn a_rejected_event_writes_nothing() {
    let mut db = memory();
    let order = db
        .create_order(&new_order("ada@example.com"), T0)
        .expect("order");
    let before = db.order_detail(&order.id).expect("read");
    let events_before = count(&db, "SELECT count(*) FROM order_events");
    let claim = Event::Claim {
        owner: "w1".into(),
        lease_until: T0 + Duration::minutes(5),
    };
    let rejected = db
        .apply(&order.id, &claim, &Policy::default(), "process", T0)
        .expect("stored")
        .expect_err("an unpaid order cannot be claimed");
    assert_eq!(rejected.from, Status::PendingPayment);
    assert_eq!(db.order_detail(&order.id).expect("read"), before);
    assert_eq!(
        count(&db, "SELECT count(*) FROM order_events"),
        events_before
    );
    assert!(
        db.apply("nope", &claim, &Policy::default(), "process", T0)
            .is_err()
    );
}

#[test]
fn the_timeline_is_append_only() {
    let mut db = memory();
    db.create_order(&new_order("ada@example.com"), T0)
        .expect("order");
    for sql in [
        "UPDATE order_events SET kind = 'x'",
        "DELETE FROM order_events",
    ] {
        let err = db.conn.execute(sql, []).expect_err("refused");
        assert!(
            err.to_string().contains("order_events is append-only"),
            "{err}"
        );
    }
}

#[test]
fn ids_resolve_from_a_unique_prefix() {
    let mut db = memory();
    let a = db
        .create_order(&new_order("a@example.com"), T0)
        .expect("order");
    let b = db
        .create_order(&new_order("b@example.com"), T0)
        .expect("order");
    assert_eq!(db.resolve_order_id(&a.id).expect("whole id"), a.id);
    assert_eq!(
        db.resolve_order_id(&a.id.to_uppercase()).expect("any case"),
        a.id
    );
    // Both were made in the same second, so they share their time prefix.
    let shared = &a.id[..8];
    assert_eq!(&b.id[..8], shared);
    let err = db.resolve_order_id(shared).expect_err("ambiguous");
    assert_eq!(
        err.to_string(),
        format!("{shared} names more than one order: type more of the id")
    );
    for typed in ["0000000000", "abc", "'; DROP TABLE orders; --"] {
        let err = db.resolve_order_id(typed).expect_err("unknown");
        assert!(err.to_string().starts_with("no order with id"), "{err}");
    }
}

#[test]
fn filters_narrow_the_list_newest_first() {
    let mut db = memory();
    let policy = Policy::default();
    for day in 0..5 {
        let at = T0 + Duration::days(day);
        let order = db
            .create_order(&new_order(&format!("c{day}@example.com")), at)
            .expect("order");
        if day % 2 == 0 {
            db.apply(&order.id, &confirm(), &policy, "stripe", at)
                .expect("stored")
                .expect("applies");
        }
    }
    let all = OrderFilter {
        limit: 100,
        ..OrderFilter::default()
    };
    let emails: Vec<_> = db
        .list_orders(&all)
        .expect("list")
        .into_iter()
        .map(|o| o.email)
        .collect();
    assert_eq!(
        emails,
        [
            "c4@example.com",
            "c3@example.com",
            "c2@example.com",
            "c1@example.com",
            "c0@example.com"
        ]
    );
    let paid_since = OrderFilter {
        status: Some(Status::Paid),
        since: Some(T0 + Duration::days(1)),
        limit: 100,
        ..OrderFilter::default()
    };
    let paid: Vec<_> = db.list_orders(&paid_since).expect("list");
    assert_eq!(paid.len(), 2);
    assert_eq!(db.count_orders(&paid_since).expect("count"), 2);
    let one = OrderFilter {
        limit: 1,
        ..OrderFilter::default()
    };
    assert_eq!(db.list_orders(&one).expect("list").len(), 1);
    assert_eq!(
        db.count_orders(&one).expect("count"),
        5,
        "count ignores the limit"
    );
}

#[test]
fn claude_attempts_are_recorded_with_their_cost() {
    let mut db = memory();
    let order = db
        .create_order(&new_order("ada@example.com"), T0)
        .expect("order");
    let attempt = crate::claude::Attempt {
        model: "claude-sonnet-4-5".into(),
        request_id: Some("req_1".into()),
        outcome: "retryable",
        http_status: Some(529),
        usage: crate::claude::Usage::default(),
        duration_ms: 120,
        error: Some("529 overloaded_error: Overloaded".into()),
    };
    db.record_llm_call(Some(&order.id), &attempt, 0, T0)
        .expect("recorded");
    db.record_llm_call(None, &attempt, 4_500_000, T0)
        .expect("a preview's call");
    assert_eq!(count(&db, "SELECT count(*) FROM llm_calls"), 2);
    assert_eq!(
        count(
            &db,
            "SELECT sum(cost_micros) FROM llm_calls WHERE order_id IS NULL"
        ),
        4_500_000
    );
}

#[test]
fn sign_in_links_work_once_within_their_time_and_are_rate_limited() {
    let mut db = memory();
    db.create_order(&new_order("Ada@Example.com"), T0)
        .expect("order");
    let limits = SignInLimits {
        ttl: Duration::minutes(30),
        per_window: 3,
        window: Duration::minutes(15),
    };
    assert_eq!(
        db.request_sign_in("nobody@example.com", limits, T0)
            .expect("asked"),
        SignInRequest::NoCustomer
    );
    assert_eq!(
        db.request_sign_in(" ada@example.COM ", limits, T0)
            .expect("asked"),
        SignInRequest::Queued
    );
    let first = db_token(&db);
    assert_eq!(first.len(), 43, "256 bits, URL-safe");
    assert_eq!(count(&db, "SELECT count(*) FROM sign_in_links"), 1);
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM sign_in_links WHERE token_sha256 = '{first}'")
        ),
        0,
        "only the hash is stored"
    );
    // Expired after 30 minutes; unused until then, and then once only.
    assert!(
        !db.sign_in_is_valid(&first, T0 + Duration::minutes(31))
            .expect("read")
    );
    assert_eq!(
        db.use_sign_in(&first, T0 + Duration::minutes(31))
            .expect("use"),
        None
    );
    assert!(
        db.sign_in_is_valid(&first, T0 + Duration::minutes(29))
            .expect("read")
    );
    let customer = db
        .use_sign_in(&first, T0 + Duration::minutes(29))
        .expect("use");
    assert!(customer.is_some());
    assert_eq!(
        db.use_sign_in(&first, T0 + Duration::minutes(29))
            .expect("use"),
        None,
        "used up"
    );
    assert_eq!(
        db.customer_orders(customer.expect("customer"))
            .expect("orders")
            .len(),
        1
    );
    // Three per quarter hour, counting the first.
    for _ in 0..2 {
        assert_eq!(
            db.request_sign_in("ada@example.com", limits, T0 + Duration::minutes(1))
                .expect("asked"),
            SignInRequest::Queued
        );
    }
    assert_eq!(
        db.request_sign_in("ada@example.com", limits, T0 + Duration::minutes(2))
            .expect("asked"),
        SignInRequest::TooMany
    );
    assert_eq!(
        db.request_sign_in("ada@example.com", limits, T0 + Duration::minutes(16))
            .expect("asked"),
        SignInRequest::Queued
    );
}

/// The token the newest queued sign-in email carries.
fn db_token(db: &Db) -> String {
    db.conn
        .query_row(
            "SELECT link_token FROM emails WHERE kind = 'sign_in_link' ORDER BY id DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .expect("a sign-in email")
}

#[test]
fn the_audit_finds_each_broken_money_invariant() {
    let mut db = memory();
    let policy = Policy::default();
    let paid_order = |db: &mut Db, email: &str| {
        let order = db.create_order(&new_order(email), T0).expect("order");
        db.apply(&order.id, &confirm(), &policy, "stripe", T0)
            .expect("stored")
            .expect("paid");
        db.conn
            .execute(
                "INSERT INTO payments (order_id, payment_intent_id, status, amount_cents, \
                 currency, created_at, updated_at) VALUES (?1, ?2, 'succeeded', 14900, 'usd', 0, 0)",
                rusqlite::params![order.id, format!("pi_{}", order.id)],
            )
            .expect("payment");
        order.id
    };
    let now = T0 + Duration::hours(1);
    assert_eq!(
        db.audit_violations(now).expect("audit"),
        vec![],
        "a fresh paid order is fine"
    );

    let late = paid_order(&mut db, "late@example.com");
    let owed = paid_order(&mut db, "owed@example.com");
    let apply = |db: &mut Db, id: &str, event: Event| {
        db.apply(id, &event, &Policy::default(), "test", T0)
            .expect("stored")
            .expect("applies");
    };
    apply(
        &mut db,
        &owed,
        Event::Claim {
            owner: "r:1".into(),
            lease_until: T0 + Duration::minutes(15),
        },
    );
    apply(
        &mut db,
        &owed,
        Event::GenerationFailed {
            owner: "r:1".into(),
            error: "x".into(),
            retryable: false,
        },
    );
    apply(
        &mut db,
        &owed,
        Event::RefundFailed {
            refund: 1,
            error: "card_expired".into(),
        },
    );
    let unreported = paid_order(&mut db, "files@example.com");
    apply(
        &mut db,
        &unreported,
        Event::Claim {
            owner: "r:1".into(),
            lease_until: T0 + Duration::minutes(15),
        },
    );
    apply(
        &mut db,
        &unreported,
        Event::Generated {
            owner: "r:1".into(),
        },
    );
    let unpaid = db
        .create_order(&new_order("nopay@example.com"), T0)
        .expect("order");
    apply(&mut db, &unpaid.id, confirm());
    let refunded = paid_order(&mut db, "refund@example.com");
    db.conn
        .execute_batch(&format!(
            "INSERT INTO refunds (id, order_id, number, idempotency_key, amount_cents, currency, \
             source, status, created_at, updated_at) VALUES ('r1', '{refunded}', 1, 'k1', 500, \
             'usd', 'operator', 'succeeded', 0, 0); \
             DROP INDEX emails_once; \
             INSERT INTO emails (order_id, customer_id, kind, recipient, status, next_attempt_at, \
             created_at, updated_at) SELECT id, customer_id, 'report_ready', 'a@b.co', 'sent', 0, 0, 0 \
             FROM orders WHERE id = '{refunded}'; \
             INSERT INTO emails (order_id, customer_id, kind, recipient, status, next_attempt_at, \
             created_at, updated_at) SELECT id, customer_id, 'report_ready', 'a@b.co', 'sent', 0, 0, 0 \
             FROM orders WHERE id = '{refunded}';"
        ))
        .expect("break things");

    let found: Vec<(&str, String)> = db
        .audit_violations(T0 + Duration::days(2))
        .expect("audit")
        .into_iter()
        .map(|v| (v.rule, v.order_id.unwrap_or_default()))
        .collect();
    for (rule, order) in [
        ("owed_without_refund", &owed),
        ("paid_not_delivered", &late),
        ("paid_without_payment", &unpaid.id),
        ("completed_without_report", &unreported),
        ("refunds_exceed_record", &refunded),
        ("refund_without_stripe_id", &refunded),
        ("email_twice", &refunded),
    ] {
        assert!(
            found.contains(&(rule, order.clone())),
            "{rule} for {order} not found in {found:?}"
        );
    }
}

#[test]
fn the_v4_rebuild_of_emails_keeps_every_row_and_link() {
    let conn = rusqlite::Connection::open_in_memory().expect("in-memory database");
    let mut db = Db::configure(conn, None).expect("configure");
    db.migrate_to(Some(3)).expect("V3");
    // Rows as V3 wrote them (today's code reads columns V3 does not have).
    let order_id = "01a2f000-0000-7000-8000-000000000001";
    db.conn
        .execute_batch(&format!(
            "INSERT INTO customers (id, email, name, created_at, updated_at) \
             VALUES (1, 'ada@example.com', 'Ada', 0, 0); \
             INSERT INTO orders (id, customer_id, company, tier, amount_cents, currency, status, \
             questionnaire, status_token, created_at, updated_at) VALUES ('{id}', 1, 'A', \
             'starter', 4900, 'usd', 'paid', '{{}}', 'tok', 0, 0);",
            id = order_id
        ))
        .expect("V3 order");
    db.conn
        .execute_batch(&format!(
            "INSERT INTO emails (id, order_id, customer_id, kind, recipient, status, attempts, \
             next_attempt_at, message_id, sent_at, created_at, updated_at) \
             VALUES (1, '{id}', 1, 'payment_confirmation', 'ada@example.com', 'sent', 1, 0, \
             '<m1@x>', 5, 0, 5); \
             INSERT INTO emails (id, order_id, customer_id, kind, recipient, resend_of, \
             next_attempt_at, created_at, updated_at) \
             VALUES (2, '{id}', 1, 'payment_confirmation', 'ada@work.example', 1, 9, 9, 9);",
            id = order_id
        ))
        .expect("V3 rows");
    let rows = |db: &Db| -> Vec<String> {
        let mut stmt = db
            .conn
            .prepare(
                "SELECT id, order_id, customer_id, kind, recipient, resend_of, status, attempts, \
                 next_attempt_at, message_id, sent_at FROM emails ORDER BY id",
            )
            .expect("prepare");
        stmt.query_map([], |row| {
            Ok((0..11)
                .map(|i| format!("{:?}", row.get_ref(i).expect("column")))
                .collect::<Vec<_>>()
                .join(" "))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    };
    let before = rows(&db);
    db.migrate().expect("V4");
    assert_eq!(rows(&db), before);
    assert_eq!(
        count(&db, "SELECT count(*) FROM pragma_foreign_key_check"),
        0
    );
    // The resend still points at its original, in the rebuilt table.
    let table: String = db
        .conn
        .query_row(
            "SELECT \"table\" FROM pragma_foreign_key_list('emails') WHERE \"from\" = 'resend_of'",
            [],
            |row| row.get(0),
        )
        .expect("the resend_of key");
    assert_eq!(table, "emails");
}

#[test]
fn an_alert_is_queued_once_per_fact_and_audited_once() {
    let mut db = memory();
    let now = datetime!(2026-11-22 12:00 UTC);
    let order = db
        .create_order(&new_order("ada@example.com"), now)
        .expect("order");
    let policy = Policy::default();
    db.apply(&order.id, &confirm(), &policy, "stripe", now)
        .expect("stored")
        .expect("paid");
    let dispute = Event::DisputeOpened {
        dispute: "dp_1".into(),
        reason: "fraudulent".into(),
    };
    db.apply(&order.id, &dispute, &policy, "stripe", now)
        .expect("stored")
        .expect("disputed");
    // The same dispute again (a redelivered webhook) is refused, and raises nothing.
    assert!(
        db.apply(&order.id, &dispute, &policy, "stripe", now)
            .expect("read")
            .is_err()
    );
    // A fact raised outside a step, twice.
    for _ in 0..2 {
        db.alert(
            "event evt_1 not handled",
            None,
            "Stripe event not handled: ...",
            now,
        )
        .expect("alert");
    }
    let alerts = "SELECT count(*) FROM emails WHERE kind = 'operator_alert'";
    assert_eq!(count(&db, alerts), 2);
    assert_eq!(
        count(&db, "SELECT count(*) FROM audit_log WHERE action = 'alert'"),
        2
    );
    let (recipient, customer, message): (String, Option<i64>, String) = db
        .conn
        .query_row(
            "SELECT recipient, customer_id, message FROM emails \
             WHERE kind = 'operator_alert' AND order_id IS NOT NULL",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .expect("the dispute's alert");
    assert_eq!((recipient.as_str(), customer), ("operator", None));
    assert!(
        message.starts_with("dispute dp_1 opened (fraudulent)"),
        "{message}"
    );
    // A payment that does not match, seen again by every reconcile: one alert, not one a run.
    let unpaid = db
        .create_order(&new_order("bob@example.com"), now)
        .expect("order");
    let short = Event::PaymentConfirmed {
        payment_intent: "pi_short".into(),
        amount_cents: 100,
        currency: "usd".into(),
    };
    for _ in 0..3 {
        db.apply(&unpaid.id, &short, &policy, "reconcile", now)
            .expect("stored")
            .expect("recorded, order held");
    }
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM emails WHERE kind = 'operator_alert' AND order_id = '{}'",
                unpaid.id
            )
        ),
        1
    );
    // The customer's own emails are untouched by the alert's (order, kind) sharing.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM emails WHERE kind = 'payment_confirmation'"
        ),
        1
    );
}

#[test]
fn every_table_says_which_rows_are_a_customers() {
    let db = Db::open_in_memory().expect("db");
    let mut tables: Vec<String> = db
        .conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name <> 'refinery_schema_history' ORDER BY name",
        )
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    let mut held: Vec<String> = super::customers::held()
        .iter()
        .map(|(table, _)| (*table).to_owned())
        .collect();
    tables.sort();
    held.sort();
    assert_eq!(
        held, tables,
        "a new table must say which of its rows are a customer's"
    );
}

#[test]
fn with_the_planner_stable_the_partial_indexes_still_serve_their_queries() {
    let db = Db::open_in_memory().expect("db");
    let plan = |sql: &str| -> String {
        db.conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("prepare")
            .query_map([], |row| row.get::<_, String>(3))
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .expect("plan")
            .join("; ")
    };
    let due = plan(
        "SELECT id FROM orders WHERE status = 'paid' AND \
         (next_attempt_at IS NULL OR next_attempt_at <= 5) ORDER BY next_attempt_at, created_at",
    );
    assert!(due.contains("orders_due"), "{due}");
    let pending = plan("SELECT id FROM refunds WHERE status = 'pending' ORDER BY created_at");
    assert!(pending.contains("refunds_pending"), "{pending}");
    let by_token = plan("SELECT id FROM orders WHERE status_token = 'x'");
    assert!(by_token.contains("status_token"), "{by_token}");
}

#[test]
fn a_timeline_detail_changes_only_into_a_redaction() {
    let mut db = memory();
    let order = db
        .create_order(&new_order("ada@example.com"), T0)
        .expect("order");
    let update = |detail: &str| {
        db.conn.execute(
            "UPDATE order_events SET detail = ?2 WHERE order_id = ?1",
            rusqlite::params![order.id, detail],
        )
    };
    let refused = update("{}").expect_err("an edit is refused");
    assert!(
        refused
            .to_string()
            .contains("only a redaction may change a detail"),
        "{refused}"
    );
    update(r#"{"tier":"standard","redacted":true}"#).expect("a redaction is allowed");
}

#[test]
fn an_event_waiting_for_its_order_is_due_as_soon_as_the_order_moves() {
    let mut db = memory();
    let order = db
        .create_order(&new_order("wait@example.com"), T0)
        .expect("order");
    let event = crate::db::NewStripeEvent {
        id: "evt_refund",
        kind: "charge.refunded",
        payload: "{}",
        object_id: Some("ch_1"),
        stripe_created: T0.unix_timestamp(),
        done: None,
    };
    db.insert_stripe_event(&event, T0).expect("stored");
    let later = T0 + Duration::minutes(8);
    let waiting = "cannot apply to order ";
    db.event_failed(
        "evt_refund",
        "cannot apply to order x yet: ...",
        later,
        Some(&order.id),
    )
    .expect("failed");
    let due = |db: &Db, at| db.due_stripe_events(at, 10).expect("due").len();
    assert_eq!(
        db.requeue_moved_waiters(waiting, T0).expect("requeue"),
        0,
        "unpaid"
    );
    assert_eq!(due(&db, T0), 0);
    db.apply(&order.id, &confirm(), &Policy::default(), "stripe", T0)
        .expect("stored")
        .expect("paid");
    assert_eq!(db.requeue_moved_waiters(waiting, T0).expect("requeue"), 1);
    assert_eq!(due(&db, T0), 1, "due now, not in eight minutes");
    // An event failing for another reason keeps its backoff.
    db.event_failed("evt_refund", "Stripe is down", later, None)
        .expect("failed");
    assert_eq!(db.requeue_moved_waiters(waiting, T0).expect("requeue"), 0);
}

#[test]
fn deferred_checkpoints_leave_commits_alone_and_start_the_wal_over() {
    use std::sync::atomic::Ordering::Relaxed;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("compass.db");
    drop(Db::create(&path).expect("create"));
    let (lock, wal) = (Arc::new(Mutex::new(())), Arc::new(WalFrames::default()));
    let open = || {
        let mut db = Db::open(&path).expect("open");
        db.share_write_lock(Arc::clone(&lock));
        db.defer_checkpoints(Arc::clone(&wal)).expect("deferred");
        db
    };
    let (mut writer, checkpointer) = (open(), open());
    let payload = "x".repeat(3000);
    let mut store = |n: usize| {
        for i in 0..n {
            let id = format!("evt_{i:08}_{}", wal.frames.load(Relaxed));
            let event = NewStripeEvent {
                id: &id,
                kind: "customer.created",
                payload: &payload,
                object_id: Some(&id),
                stripe_created: T0.unix_timestamp(),
                done: Some("not used"),
            };
            writer.insert_stripe_event(&event, T0).expect("stored");
        }
        wal.frames.load(Relaxed)
    };
    let grown = store(400);
    assert!(
        grown > RESTART_FRAMES,
        "no commit checkpointed on its own: {grown} frames"
    );
    checkpointer.checkpoint_if_due().expect("checkpointed");
    let after = store(1);
    assert!(
        after < CHECKPOINT_FRAMES,
        "the next commit starts the WAL over: {after} frames, {grown} before"
    );
    assert_eq!(
        wal.checkpointed.load(Relaxed),
        grown,
        "every frame was copied"
    );
}

#[test]
fn order_ids_are_uuid_v7_in_the_order_they_were_made() {
    let mut db = memory();
    let first = db
        .create_order(&new_order("a@example.com"), T0)
        .expect("order");
    let later = db
        .create_order(&new_order("b@example.com"), T0 + Duration::seconds(1))
        .expect("order");
    for id in [&first.id, &later.id] {
        let parsed = uuid::Uuid::parse_str(id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 7, "{id}");
    }
    assert!(first.id < later.id, "ids sort by when they were made");
}

#[test]
fn the_store_itself_refuses_a_second_email_of_a_kind_for_an_order() {
    let mut db = memory();
    let order = db
        .create_order(&new_order("ada@example.com"), T0)
        .expect("order");
    db.apply(&order.id, &confirm(), &Policy::default(), "stripe", T0)
        .expect("stored")
        .expect("applies");
    let customer: i64 = db
        .conn
        .query_row(
            "SELECT customer_id FROM orders WHERE id = ?1",
            [&order.id],
            |row| row.get(0),
        )
        .expect("customer");
    let insert = |resend_of: Option<i64>| {
        db.conn.execute(
            "INSERT INTO emails (order_id, customer_id, kind, recipient, next_attempt_at, \
             created_at, updated_at, resend_of) VALUES (?1, ?2, 'payment_confirmation', \
             'ada@example.com', 0, 0, 0, ?3)",
            rusqlite::params![order.id, customer, resend_of],
        )
    };
    assert!(insert(None).is_err(), "one payment confirmation per order");
    let first: i64 = db
        .conn
        .query_row(
            "SELECT id FROM emails WHERE order_id = ?1",
            [&order.id],
            |row| row.get(0),
        )
        .expect("the first");
    assert!(
        insert(Some(first)).is_ok(),
        "a deliberate resend is a row of its own"
    );
}

#[test]
fn tokens_carry_256_random_bits() {
    use base64::Engine as _;
    let tokens: std::collections::BTreeSet<String> = (0..1_000)
        .map(|_| super::new_token().expect("randomness"))
        .collect();
    assert_eq!(tokens.len(), 1_000, "no token twice");
    for token in &tokens {
        let bits = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .expect("URL-safe base64");
        assert_eq!(bits.len() * 8, 256, "{token}");
    }
}

/// Found under load (the suite under faketime): a dispute's `closed`, which overtook its
/// `created`, opened and closed it, and the late `created`, handled at the same time on
/// another event handler, opened it again on the refunded order, with an operator alert.
#[test]
fn a_dispute_is_opened_on_its_order_once_whoever_comes_first() {
    let mut db = memory();
    let policy = Policy::default();
    let order = db
        .create_order(&new_order("ada@example.com"), T0)
        .expect("order");
    db.apply(&order.id, &confirm(), &policy, "stripe", T0)
        .expect("stored")
        .expect("paid");
    let opened = Event::DisputeOpened {
        dispute: "dp_1".into(),
        reason: "fraudulent".into(),
    };
    let first = db
        .open_dispute(&order.id, "dp_1", &opened, &policy, T0)
        .expect("stored");
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    let closed = Event::DisputeClosed {
        dispute: "dp_1".into(),
        won: false,
    };
    db.apply(&order.id, &closed, &policy, "stripe", T0)
        .expect("stored")
        .expect("refunded");
    let alerts = count(
        &db,
        "SELECT count(*) FROM emails WHERE kind = 'operator_alert'",
    );
    let again = db
        .open_dispute(&order.id, "dp_1", &opened, &policy, T0)
        .expect("stored");
    assert!(
        again.is_none(),
        "the same dispute is not opened twice: {again:?}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM emails WHERE kind = 'operator_alert'"
        ),
        alerts,
        "and raises no alert"
    );
    // Another dispute on the refunded order is news for the operator.
    let other = Event::DisputeOpened {
        dispute: "dp_2".into(),
        reason: "duplicate".into(),
    };
    let news = db
        .open_dispute(&order.id, "dp_2", &other, &policy, T0)
        .expect("stored");
    assert!(matches!(news, Some(Ok(_))), "{news:?}");
}

/// An order taken to `completed` with a report whose scores are `scores`: its id.
fn delivered(db: &mut Db, email: &str, questionnaire: serde_json::Value, scores: &str) -> String {
    let policy = Policy::default();
    let mut order = new_order(email);
    order.questionnaire = questionnaire;
    let id = db.create_order(&order, T0).expect("order").id;
    db.apply(&id, &confirm(), &policy, "stripe", T0)
        .expect("stored")
        .expect("paid");
    let claim = Event::Claim {
        owner: "w".into(),
        lease_until: T0 + Duration::minutes(5),
    };
    db.apply(&id, &claim, &policy, "process", T0)
        .expect("stored")
        .expect("claimed");
    let start = Event::AttemptStarted { owner: "w".into() };
    db.apply(&id, &start, &policy, "process", T0)
        .expect("stored")
        .expect("started");
    let report = format!(r#"{{"scores": {scores}}}"#);
    // The PDF beside the JSON: found by the suite, a query that read JSON out of every
    // artifact failed on it ("malformed JSON") and stopped every report being written.
    let artifacts = [
        Artifact {
            kind: "json",
            content: report.as_bytes(),
        },
        Artifact {
            kind: "pdf",
            content: b"%PDF-1.7 \xff\xfe not JSON",
        },
        Artifact {
            kind: "html",
            content: b"<!doctype html><p>not JSON</p>",
        },
    ];
    db.complete(&id, "w", &artifacts, &policy, T0)
        .expect("stored")
        .expect("completed");
    id
}

#[test]
fn peers_are_the_kept_reports_of_other_orders() {
    let mut db = memory();
    let scores = r#"{"categories": [{"id": "data", "title": "Data", "score": 3.5, "out_of": 5}], "overall": 62, "level": "Chaser"}"#;
    let profile =
        |industry: &str| serde_json::json!({ "industry": industry, "employees": "11-50" });
    let own = delivered(&mut db, "a@example.com", profile("Logistics"), scores);
    let other = delivered(&mut db, "b@example.com", profile("Retail"), scores);
    let erased = delivered(&mut db, "c@example.com", profile("Retail"), scores);
    db.conn
        .execute(
            "UPDATE orders SET erased_at = 1, questionnaire = '{\"erased\":true}' WHERE id = ?1",
            [&erased],
        )
        .expect("erase");
    let peers = db.peer_scores(&own).expect("read");
    assert_eq!(peers.len(), 1, "not itself, not the erased one: {peers:?}");
    assert_eq!(peers[0].industry, "Retail");
    assert_eq!(peers[0].employees, "11-50");
    assert_eq!(peers[0].scores.overall, Some(62));
    assert_eq!(db.peer_scores(&other).expect("read").len(), 1);
    // A report whose scores do not read (stored by an older compass, say) is no one's peer,
    // and does not fail the others.
    delivered(
        &mut db,
        "d@example.com",
        profile("Retail"),
        r#""not scores""#,
    );
    assert_eq!(db.peer_scores(&own).expect("read").len(), 1);
}

#[test]
fn the_v8_rebuild_of_orders_keeps_every_order_and_takes_the_review_status() {
    let conn = rusqlite::Connection::open_in_memory().expect("in-memory database");
    let mut db = Db::configure(conn, None).expect("configure");
    db.migrate_to(Some(7)).expect("V7");
    let version = "a".repeat(64);
    let order_id = "01a2f000-0000-7000-8000-000000000008";
    db.conn
        .execute_batch(&format!(
            "INSERT INTO method_versions (version) VALUES ('{version}'); \
             INSERT INTO customers (id, email, name, created_at, updated_at) \
             VALUES (1, 'ada@example.com', 'Ada', 0, 0); \
             INSERT INTO orders (id, customer_id, company, tier, amount_cents, currency, status, \
             questionnaire, status_token, created_at, updated_at, paid_at, completed_at, score, \
             method_version) VALUES ('{order_id}', 1, 'A', 'gold', 4900, 'usd', 'completed', \
             '{{}}', 'tok', 1, 2, 3, 4, 61, '{version}'); \
             INSERT INTO artifacts (order_id, kind, content, sha256, size, created_at) \
             VALUES ('{order_id}', 'json', X'7B7D', 'x', 2, 4);"
        ))
        .expect("V7 rows");
    db.migrate().expect("to V8");
    let row: (
        String,
        String,
        i64,
        Option<String>,
        Option<i64>,
        i64,
        Option<String>,
    ) = db
        .conn
        .query_row(
            "SELECT status, tier, score, method_version, review_since, reviewed_secs, review_note \
             FROM orders WHERE id = ?1",
            [order_id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .expect("the order");
    assert_eq!(
        row,
        (
            "completed".into(),
            "gold".into(),
            61,
            Some(version),
            None,
            0,
            None
        )
    );
    let stored = db.order(order_id).expect("read").expect("the order");
    assert_eq!(stored.order.reviewed_for, time::Duration::ZERO);
    assert!(db.artifact(order_id, "json").expect("read").is_some());
    db.conn
        .execute(
            "UPDATE orders SET status = 'awaiting_review', review_since = 5 WHERE id = ?1",
            [order_id],
        )
        .expect("the new status is allowed");
}

/// An order sold with invoices (0 % tax: the whole 149.00 is net).
fn invoiced_order(db: &mut Db, email: &str, at: OffsetDateTime) -> String {
    use crate::invoice::{Contact, Party, Rate, Rules, TaxRules};
    let seller = Party {
        name: "Seller Ltd".into(),
        address: "1 Main Street".into(),
        country: "US".into(),
        tax_id: None,
    };
    let rules = Rules {
        seller,
        tax: TaxRules {
            seller_country: "US".into(),
            prices_include_tax: true,
            rate: Rate(0),
            rates: Default::default(),
            reverse_charge: false,
        },
        invoice_prefix: "INV".into(),
        credit_note_prefix: "CN".into(),
        reverse_charge_note: "Reverse charge".into(),
        tax_note: None,
        billing_required: false,
    };
    let contact = Contact {
        name: "Ada Lovelace".into(),
        email: email.into(),
        company: "Analytical Engines Ltd".into(),
    };
    let mut new = new_order(email);
    new.terms = Some(rules.terms(14_900, None, contact));
    db.create_order(&new, at).expect("order").id
}

#[test]
fn invoices_are_numbered_per_year_and_stored_once_as_issued() {
    let mut db = memory();
    let policy = Policy::default();
    let new_year = datetime!(2027-01-01 00:00 UTC);
    let mut numbers = Vec::new();
    for (n, at) in [T0, T0, new_year].into_iter().enumerate() {
        let id = invoiced_order(&mut db, &format!("buyer{n}@example.com"), at);
        db.apply(&id, &confirm(), &policy, "test", at)
            .expect("stored")
            .expect("paid");
        numbers.extend(
            db.documents_of(&id)
                .expect("read")
                .into_iter()
                .map(|d| d.number),
        );
    }
    assert_eq!(
        numbers,
        ["INV-2026-000001", "INV-2026-000002", "INV-2027-000001"]
    );

    // The first PDF stored is the one kept: a second renderer gets it back.
    let doc = db
        .document("INV-2026-000001")
        .expect("read")
        .expect("issued");
    assert_eq!(
        db.store_document_pdf(doc.id, b"%PDF first")
            .expect("stored"),
        b"%PDF first"
    );
    assert_eq!(
        db.store_document_pdf(doc.id, b"%PDF second").expect("kept"),
        b"%PDF first"
    );
    let stored = db
        .document("INV-2026-000001")
        .expect("read")
        .expect("issued");
    assert_eq!(
        stored.sha256.as_deref(),
        Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"%PDF first")).as_str())
    );

    // Nothing about an issued document changes, and none is deleted.
    for sql in [
        "UPDATE invoices SET net_cents = 1, gross_cents = 1 WHERE number = 'INV-2026-000001'",
        "UPDATE invoices SET pdf = X'00', sha256 = 'x' WHERE number = 'INV-2026-000001'",
        "DELETE FROM invoices WHERE number = 'INV-2026-000002'",
        "DELETE FROM sale_terms",
    ] {
        let err = db.conn.execute(sql, []).expect_err(sql);
        assert!(
            err.to_string().contains("never changes") || err.to_string().contains("kept"),
            "{sql}: {err}"
        );
    }
}
