//! Customers' data rights through the real binary: `customers export` holds every row of the
//! customer and nothing of another, `customers forget` leaves no byte of them in the database
//! file while the accounts still add up, and `[retention]` erases only what is old enough.

use std::collections::BTreeSet;

use compass::db::{Artifact, Db, NewOrder, NewStripeEvent, PaymentRecord, SignInLimits};
use compass::order::{Event, Policy, RefundSource, Status};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::seed::{Plan, seed_order};
use crate::support::{Install, NOW, stdout, text};

/// What identifies one person in the store: each must be gone after they are forgotten.
struct Person {
    email: String,
    name: String,
    company: String,
    note: String,
    reason: String,
}

impl Person {
    fn new(tag: &str) -> Person {
        Person {
            email: format!("{}.lovelace@analytical.example", tag.to_lowercase()),
            name: format!("{tag} Lovelace-Byron"),
            company: format!("{tag} Analytical Engines Ltd"),
            note: format!("{tag}-note: we punch cards for the Jacquard loom"),
            reason: format!("{tag}-reason: the engine was never built"),
        }
    }

    fn secrets(&self) -> [&str; 5] {
        [
            &self.email,
            &self.name,
            &self.company,
            &self.note,
            &self.reason,
        ]
    }
}

/// The terms of a sale with invoices, with the person as the contact (0 % tax: 149.00 net).
fn terms_for(person: &Person) -> compass::invoice::Terms {
    use compass::invoice::{Contact, Party, Rate, Rules, TaxRules};
    let seller = Party {
        name: "Compass Consulting Ltd".into(),
        address: "1 Main Street".into(),
        country: "IE".into(),
        tax_id: None,
    };
    let rules = Rules {
        seller: seller.clone(),
        tax: TaxRules {
            seller_country: "IE".into(),
            prices_include_tax: true,
            rate: Rate(0),
            rates: Default::default(),
            reverse_charge: true,
        },
        invoice_prefix: "INV".into(),
        credit_note_prefix: "CN".into(),
        reverse_charge_note: "Reverse charge".into(),
        tax_note: None,
        billing_required: false,
    };
    let contact = Contact {
        name: person.name.clone(),
        email: person.email.clone(),
        company: person.company.clone(),
    };
    rules.terms(14_900, None, contact)
}

/// A customer with a row in every table: a refunded order with its payment, Stripe events,
/// report files, a Claude call, emails, a sign-in link, an alert and an audit row; `invoiced`,
/// its invoice and credit note too (which forgetting keeps, with the person on them).
fn full_customer(
    db: &mut Db,
    person: &Person,
    n: u32,
    at: OffsetDateTime,
    invoiced: bool,
) -> String {
    let policy = Policy::default();
    let questionnaire = json!({
        "company": person.company, "website": "https://analytical.example", "industry": "Other",
        "employees": "10-49", "country": "GB", "name": person.name,
        "email": person.email.to_uppercase(), "tier": "standard",
        "answers": { "strategy_1": 4 }, "notes": { "strategy": person.note },
        "process": null, "anything_else": null,
    });
    let method_version = crate::seed::builtin_version(db);
    let order = db
        .create_order(
            &NewOrder {
                email: person.email.clone(),
                name: person.name.clone(),
                company: person.company.clone(),
                tier: crate::seed::tier("standard"),
                amount_cents: 14_900,
                currency: "usd".into(),
                questionnaire,
                method_version,
                terms: invoiced.then(|| terms_for(person)),
            },
            at,
        )
        .expect("order");
    let id = order.id;
    let intent = format!("pi_rights_{n}");
    let charge = format!("ch_rights_{n}");
    let payload = json!({
        "id": format!("evt_rights_{n}"), "type": "charge.succeeded",
        "data": { "object": {
            "id": charge, "payment_intent": intent,
            "billing_details": { "name": person.name, "email": person.email },
            "receipt_email": person.email, "metadata": { "order_id": id },
        }},
    })
    .to_string();
    db.insert_stripe_event(
        &NewStripeEvent {
            id: &format!("evt_rights_{n}"),
            kind: "charge.succeeded",
            payload: &payload,
            object_id: Some(&charge),
            stripe_created: 1,
            done: Some("nothing to do"),
        },
        at,
    )
    .expect("event");
    db.upsert_payment(
        &PaymentRecord {
            order_id: &id,
            payment_intent_id: &intent,
            status: "succeeded",
            amount_cents: 14_900,
            currency: "usd",
            charge_id: Some(&charge),
            last_error: None,
        },
        at,
    )
    .expect("payment");
    let mut t = at;
    let mut apply = |db: &mut Db, event: Event| {
        t += Duration::minutes(1);
        db.apply(&id, &event, &policy, "test", t)
            .expect("stored")
            .expect("applies");
    };
    apply(
        db,
        Event::PaymentConfirmed {
            payment_intent: intent.clone(),
            amount_cents: 14_900,
            currency: "usd".into(),
        },
    );
    apply(
        db,
        Event::Claim {
            owner: "w".into(),
            lease_until: at + Duration::hours(1),
        },
    );
    let html = format!("<h1>{}</h1><p>for {}</p>", person.company, person.name);
    db.complete(
        &id,
        "w",
        &[
            Artifact {
                kind: "html",
                content: html.as_bytes(),
            },
            Artifact {
                kind: "pdf",
                content: html.as_bytes(),
            },
            Artifact {
                kind: "json",
                content: br#"{"scores":{"overall":60}}"#,
            },
        ],
        &policy,
        at + Duration::seconds(150),
    )
    .expect("stored")
    .expect("completed");
    apply(
        db,
        Event::RefundRequested {
            source: RefundSource::Customer,
            reason: person.reason.clone(),
            amount_cents: None,
            prior_refunds: 0,
        },
    );
    apply(
        db,
        Event::RefundSucceeded {
            refund: Some(1),
            refunded_total_cents: 14_900,
        },
    );
    db.request_sign_in(
        &person.email,
        SignInLimits {
            ttl: Duration::minutes(30),
            per_window: 3,
            window: Duration::minutes(15),
        },
        t,
    )
    .expect("sign-in link");
    db.alert(
        &format!("test alert {n}"),
        Some(&id),
        &format!("email not delivered: to {}", person.email),
        t,
    )
    .expect("alert");
    db.audit(
        "operator",
        "resend_email",
        Some(&id),
        &json!({ "to": person.email }),
        t,
    )
    .expect("audit");
    let conn = rusqlite_conn(db);
    // The refund as Stripe numbered it (the issuing path is tested elsewhere).
    conn.execute(
        "UPDATE refunds SET stripe_refund_id = 're_rights_' || ?2 WHERE order_id = ?1",
        rusqlite::params![id, n],
    )
    .expect("refund id");
    conn.execute(
        "INSERT INTO llm_calls (order_id, model, outcome, duration_ms, created_at) \
         VALUES (?1, 'claude', 'ok', 10, 0)",
        [&id],
    )
    .expect("llm call");
    id
}

/// A second connection to the same file, for what the library has no call for.
fn rusqlite_conn(db: &Db) -> rusqlite::Connection {
    rusqlite::Connection::open(db.name()).expect("open")
}

fn tables(conn: &rusqlite::Connection) -> Vec<String> {
    conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> 'refinery_schema_history' ORDER BY name",
    )
    .expect("prepare")
    .query_map([], |row| row.get(0))
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("names")
}

/// Every row's key, by table: its id, or a sign-in link's hash.
fn keys(conn: &rusqlite::Connection, table: &str) -> BTreeSet<String> {
    let key = match table {
        "sign_in_links" => "token_sha256",
        "sale_terms" => "order_id",
        _ => "id",
    };
    conn.prepare(&format!("SELECT CAST({key} AS TEXT) FROM {table}"))
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("keys")
}

fn export(install: &Install, email: &str) -> Value {
    let out = install.compass(&["customers", "export", email]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_str(&stdout(&out)).expect("JSON")
}

fn exported_keys(export: &Value, table: &str) -> BTreeSet<String> {
    let key = match table {
        "sign_in_links" => "token_sha256",
        "sale_terms" => "order_id",
        _ => "id",
    };
    export["tables"][table]
        .as_array()
        .unwrap_or_else(|| panic!("the export has {table}"))
        .iter()
        .map(|row| match &row[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

#[test]
fn an_export_holds_every_row_of_the_customer_and_nothing_of_another() {
    let install = Install::new();
    let (ada, bob) = (Person::new("Ada"), Person::new("Bob"));
    let mut db = install.db();
    let ada_order = full_customer(&mut db, &ada, 1, NOW - Duration::days(3), true);
    let bob_order = full_customer(&mut db, &bob, 2, NOW - Duration::days(2), true);
    // Rows that belong to nobody: an alert and an event about no order.
    db.alert("nobody's", None, "Stripe event not handled: x", NOW)
        .expect("alert");

    let (a, b) = (
        export(&install, &ada.email.to_uppercase()),
        export(&install, &bob.email),
    );
    let conn = rusqlite_conn(&db);
    let all_tables = tables(&conn);
    assert_eq!(all_tables.len(), 15, "{all_tables:?}");
    for table in &all_tables {
        if ["method_files", "method_versions"].contains(&table.as_str()) {
            // The operator's method: nobody's data, in no export.
            let rows = |export: &Value| {
                export["tables"][table.as_str()]
                    .as_array()
                    .map_or(0, Vec::len)
            };
            assert_eq!((rows(&a), rows(&b)), (0, 0), "{table}");
            continue;
        }
        let (in_a, in_b) = (exported_keys(&a, table), exported_keys(&b, table));
        assert!(!in_a.is_empty(), "Ada has rows in {table}");
        assert!(in_a.is_disjoint(&in_b), "{table}: a row in both exports");
        let all = keys(&conn, table);
        let unowned: BTreeSet<_> = all.difference(&in_a).cloned().collect();
        let unowned: BTreeSet<_> = unowned.difference(&in_b).cloned().collect();
        assert!(in_a.is_subset(&all) && in_b.is_subset(&all), "{table}");
        // Only rows about no customer are in neither: the alert above, and nothing else.
        let expected = usize::from(table == "emails") + usize::from(table == "audit_log");
        assert_eq!(unowned.len(), expected, "{table}: {unowned:?}");
    }
    // Ada's export carries her answers and none of Bob's data.
    let text = a.to_string();
    for secret in ada.secrets().into_iter().take(4) {
        assert!(text.contains(secret), "Ada's export has {secret}");
    }
    for secret in bob.secrets() {
        assert!(!text.contains(secret), "Ada's export has Bob's {secret}");
    }
    assert!(!text.contains(&bob_order));
    assert_eq!(a["tables"]["orders"][0]["id"], json!(ada_order));
    assert_eq!(
        a["tables"]["orders"][0]["questionnaire"]["notes"]["strategy"],
        json!(ada.note),
        "answers as JSON"
    );
    assert!(
        a["tables"]["artifacts"][0].get("content").is_none(),
        "no files"
    );
    assert!(
        a["tables"]["emails"]
            .as_array()
            .expect("emails")
            .iter()
            .all(|e| e.get("link_token").is_none())
    );

    // To a file, private; and nobody is nobody.
    let file = install.dir.path().join("ada.json");
    let out = install.compass(&[
        "customers",
        "export",
        &ada.email,
        "--out",
        file.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success());
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&file).expect("file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = install.compass(&["customers", "export", "nobody@example.com"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text_of_err(&out).contains("no customer with the address nobody@example.com"));
}

fn text_of_err(out: &std::process::Output) -> String {
    text(&out.stderr)
}

/// The database file and its WAL, as bytes.
fn file_bytes(install: &Install) -> Vec<u8> {
    let mut bytes = std::fs::read(install.database()).expect("database file");
    if let Ok(wal) = std::fs::read(install.database().with_extension("db-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn json_out(install: &Install, args: &[&str]) -> Value {
    let out = install.compass(args);
    serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|err| panic!("{args:?}: {err}: {}", text(&out.stderr)))
}

#[test]
fn forgetting_leaves_no_byte_of_the_person_and_the_accounts_still_add_up() {
    let install = Install::new();
    let (ada, bob) = (Person::new("Ada"), Person::new("Bob"));
    let mut db = install.db();
    full_customer(&mut db, &ada, 1, NOW - Duration::days(3), false);
    seed_order(
        &mut db,
        0,
        0,
        Plan::Expired,
        NOW - Duration::days(2),
        &Policy::default(),
    )
    .expect("seeded");
    full_customer(&mut db, &bob, 2, NOW - Duration::days(1), false);
    drop(db);
    let stats_before = json_out(&install, &["stats", "--json"]);
    let audit_before = json_out(&install, &["audit", "--json"]);
    let bytes = file_bytes(&install);
    for secret in ada.secrets() {
        assert!(contains(&bytes, secret), "before: the file holds {secret}");
    }

    // A dry run changes nothing.
    let planned = json_out(
        &install,
        &["customers", "forget", &ada.email, "--dry-run", "--json"],
    );
    assert_eq!(planned["dry_run"], json!(true));
    assert_eq!(planned["rows"]["artifacts"], json!(3));
    assert!(contains(&file_bytes(&install), &ada.email));

    // No terminal, no --yes: refused, nothing done.
    let out = install.compass(&["customers", "forget", &ada.email]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text_of_err(&out).contains("add --yes"));

    let out = install.compass(&["customers", "forget", &ada.email, "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout(&out).contains("erased ada.lovelace@analytical.example"),
        "{}",
        stdout(&out)
    );

    let bytes = file_bytes(&install);
    for secret in ada.secrets() {
        assert!(
            !contains(&bytes, secret),
            "after: the file still holds {secret}"
        );
    }
    assert!(
        !contains(&bytes, &ada.email.to_uppercase()),
        "nor as typed in the form"
    );
    for secret in bob.secrets() {
        assert!(contains(&bytes, secret), "Bob is untouched: {secret}");
    }
    // The money is all still there, and the audit finds what it found before.
    assert_eq!(json_out(&install, &["stats", "--json"]), stats_before);
    assert_eq!(json_out(&install, &["audit", "--json"]), audit_before);
    let db = install.db();
    let conn = rusqlite_conn(&db);
    let forgotten: (String, String) = conn
        .query_row(
            "SELECT action, detail FROM audit_log ORDER BY id DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("audited");
    assert_eq!(forgotten.0, "customer_forgotten");
    assert!(
        !forgotten.1.contains('@'),
        "the audit names no address: {}",
        forgotten.1
    );
    let statuses: Vec<String> = conn
        .prepare("SELECT status FROM orders ORDER BY created_at")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("statuses");
    assert_eq!(statuses, ["refunded", "expired", "refunded"]);
    // Ada's sign-in email, still queued, is not sent to nobody.
    let waiting: i64 = conn
        .query_row(
            "SELECT count(*) FROM emails e JOIN customers c ON c.id = e.customer_id \
             WHERE c.name = '(forgotten)' AND e.status IN ('queued', 'sending')",
            [],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(waiting, 0);

    // Again: nothing held, nothing changed, no error.
    let out = install.compass(&["customers", "forget", &ada.email, "--yes"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("nothing held about"),
        "{}",
        stdout(&out)
    );
    let out = install.compass(&["customers", "export", &ada.email]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn forgetting_waits_for_orders_that_can_still_move() {
    let install = Install::new();
    let mut db = install.db();
    for (customer, plan, status) in [
        (7, Plan::Paid, "paid"),
        (8, Plan::Unpaid, "pending_payment"),
        (9, Plan::Failed, "failed"),
    ] {
        let id = seed_order(&mut db, 0, customer, plan, NOW, &Policy::default()).expect("seeded");
        let email = format!("contact{customer}@example.com");
        let out = install.compass(&["customers", "forget", &email, "--yes"]);
        assert_eq!(out.status.code(), Some(1));
        let error = text_of_err(&out);
        assert!(
            error.contains(&format!(
                "order {id} of this customer is {status}: finish it first"
            )),
            "{error}"
        );
        assert!(contains(&file_bytes(&install), &email), "nothing changed");
    }
}

#[test]
fn retention_erases_only_finished_orders_older_than_its_days() {
    let install = Install::new();
    let config = std::fs::read_to_string(install.config()).expect("read config");
    std::fs::write(
        install.config(),
        config.replace("purge_after_days = 0", "purge_after_days = 30"),
    )
    .expect("write config");
    let (ada, bob) = (Person::new("Ada"), Person::new("Bob"));
    let mut db = install.db();
    let old = full_customer(&mut db, &ada, 1, NOW - Duration::days(31), false);
    let young = full_customer(&mut db, &bob, 2, NOW - Duration::days(29), false);
    let old_but_disputed = seed_order(
        &mut db,
        0,
        3,
        Plan::Disputed,
        NOW - Duration::days(40),
        &Policy::default(),
    )
    .expect("seeded");
    let old_completed = crate::seed::completed_order(
        &mut db,
        crate::seed::tier("starter"),
        "Lamarr Wireless",
        NOW - Duration::days(35),
    )
    .expect("a delivered report");
    assert!(db.artifact(&old_completed, "pdf").expect("read").is_some());
    drop(db);

    let out = install
        .command(&["process", "--json"])
        .env("COMPASS_ANTHROPIC_API_KEY", "sk-ant-test")
        .output()
        .expect("run process");
    let summary: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(summary["erased"], json!([old_completed, old]), "{summary}");
    let db = install.db();
    assert!(db.artifact(&old, "pdf").expect("read").is_none(), "erased");
    assert!(
        db.artifact(&young, "pdf").expect("read").is_some(),
        "29 days: kept"
    );
    assert_eq!(
        db.questionnaire_of(&old).expect("read"),
        json!({ "erased": true })
    );
    assert_ne!(
        db.questionnaire_of(&young).expect("read"),
        json!({ "erased": true })
    );
    assert_ne!(
        db.questionnaire_of(&old_but_disputed).expect("read"),
        json!({ "erased": true }),
        "a disputed order keeps its evidence"
    );
    let conn = rusqlite_conn(&db);
    let audited: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'retention_erased' AND order_id = ?1",
            [&old],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(audited, 1);
    let erased = db.order(&old).expect("read").expect("order");
    assert_eq!(
        erased.order.status,
        Status::Refunded,
        "the money record stays"
    );
    drop((conn, db));
    // Once only: the next pass erases nothing more.
    let out = install
        .command(&["process", "--json"])
        .env("COMPASS_ANTHROPIC_API_KEY", "sk-ant-test")
        .output()
        .expect("run process");
    let summary: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert!(summary.get("erased").is_none(), "{summary}");

    // The customer's page says the report is gone, rather than showing an empty one.
    let token = install
        .db()
        .order(&old_completed)
        .expect("read")
        .expect("order")
        .status_token;
    let server = crate::support::Serving::start(install);
    let (status, page) = server.get(&format!("/status/{token}"));
    assert_eq!(status, 200);
    assert!(page.contains("Your report was erased"), "{page}");
    assert!(!page.contains("<iframe"), "{page}");
    let (_, api) = server.get(&format!("/api/orders/{token}"));
    let api: Value = serde_json::from_str(&api).expect("JSON");
    assert_eq!(
        api["report"],
        Value::Null,
        "no links to files that are gone"
    );
}
