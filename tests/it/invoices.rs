//! Invoices and credit notes end to end: orders placed through `serve` with and without billing
//! details, paid at localstripe all at once, refunded in part and in full with `compass refund`,
//! the PDFs rendered by `compass process`, mailed, downloaded, and listed for the accountant.

use std::collections::BTreeSet;

use compass::invoice::{Document, Kind, Treatment};
use serde_json::json;

use crate::payments::{localstripe, pay, register_webhook, wait_until_paid};
use crate::process::pdf_text;
use crate::support::{Install, STRIPE_KEY, Serving, stdout};

/// The built-in Starter's price, which a consumer pays with 23 % VAT inside.
const PRICE: i64 = 4_900;

/// An installation that issues invoices as an Irish business: 23 % at home, 19 % for Germany,
/// prices with the tax inside, reverse charge for EU businesses.
fn install() -> Install {
    Install::with_stripe(&localstripe())
        .without_rate_limits()
        .edit_config(&[
            ("issue = false", "issue = true"),
            (
                "seller_name = \"\"",
                "seller_name = \"Compass Consulting Ltd\"",
            ),
            (
                "seller_address = \"\"",
                "seller_address = \"1 Main Street\\nDublin D02 XY45\"",
            ),
            ("seller_country = \"\"", "seller_country = \"IE\""),
            (
                "# seller_tax_id = \"IE6388047V\"",
                "seller_tax_id = \"IE6388047V\"",
            ),
            ("tax_rate = \"0\"", "tax_rate = \"23\""),
            ("# DE = \"19\"", "DE = \"19\""),
        ])
}

/// A German business with a valid VAT number (who pays the price less Germany's 19 %), or a
/// consumer who gave no billing details.
fn order_json(email: &str, business: bool) -> serde_json::Value {
    let mut order = json!({
        "company": "Analytical Engines Ltd", "industry": "Manufacturing", "employees": "11-50",
        "country": "Germany", "name": "Ada Lovelace", "email": email, "tier": "starter",
        "strategy_1": 4, "data_2": "3", "process": "Quoting takes a week.",
    });
    if business {
        order["billing_name"] = json!("Analytical Engines GmbH");
        order["billing_address"] = json!("Musterstraße 1\n10115 Berlin");
        order["billing_country"] = json!("DE");
        order["billing_tax_id"] = json!("DE 136 695 976");
    }
    order
}

/// Places an order through serve: its id, PaymentIntent and the amount charged.
fn place(server: &Serving, email: &str, business: bool) -> (String, String, i64) {
    let body = order_json(email, business).to_string();
    let (status, _, answer) = server.post("/orders", "application/json", body.as_bytes());
    assert_eq!(status, 201, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
    let secret = answer["client_secret"].as_str().expect("a PaymentIntent");
    (
        answer["order_id"].as_str().expect("id").to_owned(),
        secret.split("_secret_").next().expect("pi id").to_owned(),
        answer["amount_cents"].as_i64().expect("amount"),
    )
}

fn email(test: &str, i: usize) -> String {
    format!("buyer{i}-{test}-{}@example.com", std::process::id())
}

/// A compass command on the real clock, as serve stamped the orders (with Stripe's key).
fn compass_now(install: &Install, args: &[&str]) -> String {
    let mut command = install.command(args);
    command
        .env_remove("COMPASS_NOW")
        .env("COMPASS_STRIPE_SECRET_KEY", STRIPE_KEY);
    let out = command.output().expect("run compass");
    assert!(
        out.status.success(),
        "compass {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

/// One `compass process` pass that writes no report (--limit 0 claims no order, so Claude is
/// never asked): it renders the documents and sends the emails. Its JSON summary.
fn process_pass(install: &Install) -> String {
    let mut process = install.command(&["process", "--limit", "0", "--json"]);
    process
        .env_remove("COMPASS_NOW")
        .env("COMPASS_STRIPE_SECRET_KEY", STRIPE_KEY)
        .env("COMPASS_ANTHROPIC_API_KEY", "sk-ant-not-used");
    stdout(&process.output().expect("run process"))
}

fn documents(install: &Install) -> Vec<Document> {
    let far = time::OffsetDateTime::now_utc() + time::Duration::days(3_650);
    install
        .db()
        .documents_issued(None, far)
        .expect("read the invoices")
}

/// `499.00` or `-10.00` as cents.
fn cents(units: &str) -> i64 {
    let (sign, units) = match units.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, units),
    };
    let (whole, fraction) = units.split_once('.').expect("two decimals");
    sign * (whole.parse::<i64>().expect("whole") * 100 + fraction.parse::<i64>().expect("cents"))
}

#[test]
fn fifty_orders_paid_at_once_are_invoiced_one_to_fifty_refunds_credited_and_the_csv_is_stats() {
    let _alone = crate::support::stripe_burst();
    let server = Serving::start(install());
    register_webhook(&server);
    let placed: Vec<_> = (0..50)
        .map(|i| place(&server, &email("fifty", i), i % 2 == 0))
        .collect();
    // Consumers pay the price; a German business with a VAT number the price less Germany's
    // 19 % (reverse charge): what Stripe was asked to charge.
    for (i, (_, _, amount)) in placed.iter().enumerate() {
        let expected = if i % 2 == 0 { 4_118 } else { PRICE };
        assert_eq!(*amount, expected, "order {i}");
    }
    std::thread::scope(|scope| {
        for (order_id, intent, _) in &placed {
            let server = &server;
            scope.spawn(move || {
                assert_eq!(pay(intent, "pm_card_visa"), 200);
                wait_until_paid(server, order_id, intent);
            });
        }
    });

    let issued = documents(&server.install);
    assert_eq!(issued.len(), 50);
    let year = issued[0].issued_at.year();
    let numbers: Vec<&str> = issued.iter().map(|d| d.number.as_str()).collect();
    let expected: Vec<String> = (1..=50).map(|n| format!("INV-{year}-{n:06}")).collect();
    assert_eq!(numbers, expected, "1 to 50, no gap, no repeat");
    let orders: BTreeSet<&str> = issued.iter().map(|d| d.order_id.as_str()).collect();
    assert_eq!(orders.len(), 50, "one invoice per order");
    for doc in &issued {
        let i = placed
            .iter()
            .position(|p| p.0 == doc.order_id)
            .expect("ours");
        assert_eq!(doc.kind, Kind::Invoice);
        if i % 2 == 0 {
            assert_eq!(doc.terms.sale.treatment, Treatment::ReverseCharge);
            assert_eq!(
                (doc.net_cents, doc.tax_cents, doc.gross_cents),
                (4_118, 0, 4_118)
            );
            let buyer = doc.terms.buyer.as_ref().expect("billing details");
            assert_eq!(buyer.tax_id.as_deref(), Some("DE136695976"));
            assert!(
                doc.terms
                    .note
                    .as_deref()
                    .is_some_and(|n| n.contains("Reverse charge"))
            );
        } else {
            assert_eq!(doc.terms.sale.treatment, Treatment::Taxed);
            // 49.00 with 23 % inside: 39.84 net, 9.16 tax.
            assert_eq!(
                (doc.net_cents, doc.tax_cents, doc.gross_cents),
                (3_984, 916, PRICE)
            );
            assert_eq!(doc.terms.note, None);
        }
    }

    // A consumer's order refunded in part, then the rest; a business's in full.
    let consumer = &placed[1].0;
    let business = &placed[0].0;
    compass_now(
        &server.install,
        &["refund", consumer, "--amount", "1000", "--yes"],
    );
    compass_now(&server.install, &["refund", consumer, "--yes"]);
    compass_now(&server.install, &["refund", business, "--yes"]);
    let notes: Vec<Document> = documents(&server.install)
        .into_iter()
        .filter(|d| d.kind == Kind::CreditNote)
        .collect();
    let numbers: Vec<&str> = notes.iter().map(|d| d.number.as_str()).collect();
    assert_eq!(
        numbers,
        [1, 2, 3].map(|n| format!("CN-{year}-{n:06}")),
        "credit notes run in their own sequence"
    );
    let amounts: Vec<_> = notes
        .iter()
        .map(|d| (d.order_id.as_str(), d.net_cents, d.tax_cents, d.gross_cents))
        .collect();
    assert_eq!(
        amounts,
        [
            // 10.00 of 49.00: the tax in proportion, 1.87.
            (consumer.as_str(), 813, 187, 1_000),
            // The rest: with the first, exactly the invoice.
            (consumer.as_str(), 3_171, 729, 3_900),
            (business.as_str(), 4_118, 0, 4_118),
        ]
    );
    for note in &notes {
        let (invoice, _) = note.corrects.as_ref().expect("names its invoice");
        assert!(invoice.starts_with(&format!("INV-{year}-")), "{invoice}");
    }

    // process renders every document once and mails the invoices and credit notes.
    let summary = process_pass(&server.install);
    let summary: serde_json::Value = serde_json::from_str(&summary).expect("JSON");
    assert_eq!(summary["documents"], 53, "{summary}");
    let mail = crate::support::files(&server.install.config().with_file_name("mail"));
    let attached = |name: &str| {
        mail.iter()
            .filter(|(_, eml)| {
                String::from_utf8_lossy(eml).contains(&format!("filename=\"{name}\""))
            })
            .count()
    };
    assert_eq!(
        attached(&format!("INV-{year}-000001.pdf")),
        1,
        "the invoice, with its confirmation"
    );
    for note in &notes {
        assert_eq!(
            attached(&format!("{}.pdf", note.number)),
            1,
            "{}",
            note.number
        );
    }

    // The invoice goes again with a resent confirmation.
    let third = issued
        .iter()
        .find(|d| d.order_id == placed[3].0)
        .expect("invoiced");
    compass_now(
        &server.install,
        &[
            "resend-email",
            &placed[3].0,
            "--kind",
            "payment_confirmation",
        ],
    );
    process_pass(&server.install);
    let mail = crate::support::files(&server.install.config().with_file_name("mail"));
    let sent = mail
        .iter()
        .filter(|(_, eml)| {
            String::from_utf8_lossy(eml).contains(&format!("filename=\"{}\"", third.file_name()))
        })
        .count();
    assert_eq!(sent, 2, "{} sent twice", third.number);

    // The accountant's CSV adds up to what `stats` says of the same orders.
    let csv = compass_now(&server.install, &["invoices", "--since", "1d", "--csv"]);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let (mut invoiced, mut credited, mut rows) = (0, 0, 0);
    for row in reader.deserialize::<std::collections::BTreeMap<String, String>>() {
        let row = row.expect("a CSV row");
        let (net, tax, gross) = (cents(&row["net"]), cents(&row["tax"]), cents(&row["gross"]));
        assert_eq!(net + tax, gross, "{row:?}");
        match row["kind"].as_str() {
            "invoice" => invoiced += gross,
            "credit_note" => credited -= gross,
            other => panic!("unknown kind {other}"),
        }
        rows += 1;
    }
    assert_eq!(rows, 53);
    let stats = compass_now(&server.install, &["stats", "--since", "1d", "--json"]);
    let stats: serde_json::Value = serde_json::from_str(&stats).expect("JSON");
    assert_eq!(invoiced, stats["revenue_cents"].as_i64().expect("revenue"));
    assert_eq!(
        credited,
        stats["refunded_cents"].as_i64().expect("refunded")
    );
    assert_eq!(invoiced, 25 * 4_118 + 25 * PRICE);
}

#[test]
fn an_invalid_vat_number_is_refused_at_intake_by_its_field_and_nothing_is_stored() {
    let server = Serving::start(install());
    let mut order = order_json(&email("vat", 0), true);
    order["billing_tax_id"] = json!("DE12345678");
    let (status, _, body) =
        server.post("/orders", "application/json", order.to_string().as_bytes());
    assert_eq!(status, 422, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let errors = answer["error"]["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let fields: Vec<_> = errors
        .iter()
        .map(|e| e["field"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(fields, ["billing_tax_id"], "{answer}");
    assert!(body.contains("not a VAT number of Germany"), "{body}");

    // The form says it beside the field, with the answers kept.
    let mut form: Vec<(String, String)> = order
        .as_object()
        .expect("object")
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect();
    form.push(("started".into(), server.form_started()));
    let body = serde_urlencoded::to_string(&form).expect("form");
    let (status, _, page) = server.post(
        "/orders",
        "application/x-www-form-urlencoded",
        body.as_bytes(),
    );
    assert_eq!(status, 422);
    assert!(
        page.contains("DE12345678 is not a VAT number of Germany"),
        "{page}"
    );
    assert!(page.contains("value=\"Analytical Engines GmbH\""), "{page}");
    let count = server
        .install
        .db()
        .count_orders(&compass::db::OrderFilter::default())
        .expect("count");
    assert_eq!(count, 0, "nothing stored");
}

#[test]
fn the_customer_downloads_the_invoice_as_issued_and_it_reads_as_an_invoice() {
    let server = Serving::start(install());
    register_webhook(&server);
    let (order_id, intent, _) = place(&server, &email("pdf", 0), true);
    assert_eq!(pay(&intent, "pm_card_visa"), 200);
    wait_until_paid(&server, &order_id, &intent);
    let token = crate::payments::order_detail(&server, &order_id).status_token;

    let (_, page) = server.get(&format!("/status/{token}"));
    let doc = documents(&server.install).remove(0);
    let url = format!("/status/{token}/invoices/{}.pdf", doc.number);
    assert!(page.contains(&url), "the status page links it: {page}");
    let (status, headers, pdf) = server.get_bytes(&url);
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v == "application/pdf")
    );
    let (_, _, again) = server.get_bytes(&url);
    assert_eq!(pdf, again, "rendered once, served as stored");
    let stored = documents(&server.install).remove(0);
    let sha = stored.sha256.expect("stored with its SHA-256");
    assert_eq!(
        sha,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&pdf))
    );

    let text = pdf_text(&pdf);
    for field in [
        "Invoice",
        doc.number.as_str(),
        "Date of issue",
        "Date of supply",
        "Compass Consulting Ltd",
        "1 Main Street",
        "Dublin D02 XY45",
        "Ireland",
        "IE6388047V",
        "Analytical Engines GmbH",
        "Musterstraße 1",
        "10115 Berlin",
        "Germany",
        "DE136695976",
        "Ada Lovelace",
        "Starter AI readiness report for Analytical Engines Ltd",
        "$41.18",
        "0 %",
        "Total (USD)",
        "Reverse charge: VAT to be accounted for by the recipient",
        intent.as_str(),
        order_id.as_str(),
    ] {
        assert!(
            text.contains(field),
            "{field} missing from the PDF:\n{text}"
        );
    }

    // Another order's page does not open it; a made-up number is the ordinary 404.
    let (other, other_intent, _) = place(&server, &email("pdf", 1), false);
    let other_token = crate::payments::order_detail(&server, &other).status_token;
    drop(other_intent);
    let (status, _, _) = server.get_bytes(&format!(
        "/status/{other_token}/invoices/{}.pdf",
        doc.number
    ));
    assert_eq!(status, 404);
    let (status, _, _) = server.get_bytes(&format!("/status/{token}/invoices/INV-1999-000001.pdf"));
    assert_eq!(status, 404);
}

#[test]
fn a_forgotten_customers_invoices_stay_as_issued_and_their_export_holds_them() {
    let server = Serving::start(install());
    register_webhook(&server);
    let address = email("forget", 0);
    let (order_id, intent, _) = place(&server, &address, true);
    assert_eq!(pay(&intent, "pm_card_visa"), 200);
    wait_until_paid(&server, &order_id, &intent);
    // Refunded, so nothing of theirs is still in progress.
    compass_now(&server.install, &["refund", &order_id, "--yes"]);
    let before = documents(&server.install);
    assert_eq!(before.len(), 2, "an invoice and its credit note");
    let token = crate::payments::order_detail(&server, &order_id).status_token;
    for doc in &before {
        let (status, _, _) =
            server.get_bytes(&format!("/status/{token}/invoices/{}", doc.file_name()));
        assert_eq!(status, 200, "{} rendered and stored", doc.number);
    }
    let pdfs: Vec<Vec<u8>> = before
        .iter()
        .map(|d| {
            server
                .install
                .db()
                .document_pdf(d.id)
                .expect("read")
                .expect("stored")
        })
        .collect();

    let export = compass_now(&server.install, &["customers", "export", &address]);
    let export: serde_json::Value = serde_json::from_str(&export).expect("JSON");
    let invoices = export["tables"]["invoices"]
        .as_array()
        .expect("invoices exported");
    assert_eq!(invoices.len(), 2);
    assert_eq!(invoices[0]["number"], before[0].number);
    assert!(
        invoices[0]["pdf"]["base64"]
            .as_str()
            .is_some_and(|b| b.len() > 1_000)
    );
    assert_eq!(
        export["tables"]["sale_terms"][0]["terms"]["buyer"]["tax_id"],
        "DE136695976"
    );

    let said = compass_now(&server.install, &["customers", "forget", &address, "--yes"]);
    assert!(
        said.contains("kept 2 invoice(s) and credit note(s)"),
        "{said}"
    );
    let after = documents(&server.install);
    assert_eq!(after.len(), 2);
    for ((doc, pdf), kept) in before.iter().zip(&pdfs).zip(&after) {
        assert_eq!(kept.number, doc.number);
        assert_eq!(
            kept.terms, doc.terms,
            "the billing details stay on the invoice"
        );
        let stored = server
            .install
            .db()
            .document_pdf(kept.id)
            .expect("read")
            .expect("kept");
        assert_eq!(&stored, pdf, "byte for byte as issued");
    }
    let (_, privacy) = server.get("/privacy");
    assert!(privacy.contains("invoices and credit notes"), "{privacy}");
}
