//! `compass invoices`: the invoices and credit notes for the accountant.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use comfy_table::{Cell, CellAlignment};
use serde_json::json;
use time::OffsetDateTime;

use super::orders::{new_table, printable, spreadsheet_text};
use crate::app::App;
use crate::invoice::{Document, Kind};
use crate::{clock, money};

/// Every invoice and credit note issued in a period, each kind in its sequence, with totals
///
/// Invoices are issued when a payment is confirmed, credit notes when money goes back. Amounts
/// are net, tax and gross; a credit note's are negative, so the totals are what stayed with
/// you. For orders placed, paid and refunded within the period, the invoices' gross equals
/// `compass stats`'s revenue and the credit notes' its refunds (stats counts the orders
/// created in the period, this the documents issued in it).
///
/// Examples:
///   compass invoices --since 2026-10-01 --until 2027-01-01       the quarter
///   compass invoices --since 2026-10-01 --csv > q4.csv           for the accountant
///   compass invoices --since 30d --out invoices/                 the PDFs, as issued
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// From when: an age (90m, 12h, 30d, 2w) or a date (2026-11-01, midnight UTC)
    #[arg(long, default_value = "30d", value_name = "WHEN")]
    since: String,

    /// Until when (not included), the same way; now if not given
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,

    /// Print one row per document as CSV (amounts in the currency's units, like 499.00)
    #[arg(long, conflicts_with = "json")]
    csv: bool,

    /// Print the documents and the totals as JSON (amounts in cents)
    #[arg(long)]
    json: bool,

    /// Also write each document's PDF, as issued, into this folder (made if missing)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// What the period comes to.
#[derive(Debug, Default, serde::Serialize)]
struct Totals {
    invoices: usize,
    credit_notes: usize,
    net_cents: i64,
    tax_cents: i64,
    gross_cents: i64,
    /// Of which invoiced (gross), and credited (gross, as a positive amount).
    invoiced_cents: i64,
    credited_cents: i64,
}

/// A document's amounts with a credit note's sign.
fn signed(doc: &Document) -> (i64, i64, i64) {
    let sign = match doc.kind {
        Kind::Invoice => 1,
        Kind::CreditNote => -1,
    };
    (
        sign * doc.net_cents,
        sign * doc.tax_cents,
        sign * doc.gross_cents,
    )
}

pub fn run(
    args: Args,
    config: &Path,
    now: OffsetDateTime,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let since = clock::parse_since(&args.since, now).context("invalid --since")?;
    let until = match &args.until {
        Some(until) => clock::parse_since(until, now).context("invalid --until")?,
        None => now + time::Duration::seconds(1),
    };
    anyhow::ensure!(since < until, "--since must come before --until");
    let mut app = App::open(config, env)?;
    let documents = app.db.documents_issued(Some(since), until)?;
    let mut totals = Totals::default();
    for doc in &documents {
        let (net, tax, gross) = signed(doc);
        totals.net_cents += net;
        totals.tax_cents += tax;
        totals.gross_cents += gross;
        match doc.kind {
            Kind::Invoice => {
                totals.invoices += 1;
                totals.invoiced_cents += gross;
            }
            Kind::CreditNote => {
                totals.credit_notes += 1;
                totals.credited_cents -= gross;
            }
        }
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
        for doc in &documents {
            let pdf = crate::billing::pdf(&mut app, doc)?;
            let path = dir.join(doc.file_name());
            std::fs::write(&path, pdf)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    let currency = documents
        .first()
        .map_or_else(|| app.method.currency.clone(), |d| d.currency.clone());
    if args.json {
        let rows: Vec<_> = documents
            .iter()
            .map(|doc| {
                let (net, tax, gross) = signed(doc);
                let buyer = doc.terms.buyer.as_ref();
                json!({
                    "number": doc.number,
                    "kind": doc.kind.as_str(),
                    "issued_at": clock::rfc3339(doc.issued_at),
                    "order_id": doc.order_id,
                    "credits": doc.corrects.as_ref().map(|(number, _)| number),
                    "buyer": buyer.map_or(&doc.terms.contact.company, |b| &b.name),
                    "country": buyer.map(|b| &b.country),
                    "tax_id": buyer.and_then(|b| b.tax_id.as_ref()),
                    "treatment": doc.terms.sale.treatment.as_str(),
                    "tax_rate": doc.terms.sale.rate.to_string(),
                    "currency": doc.currency,
                    "net_cents": net,
                    "tax_cents": tax,
                    "gross_cents": gross,
                    "sha256": doc.sha256,
                })
            })
            .collect();
        let value = json!({
            "since": clock::rfc3339(since),
            "until": clock::rfc3339(until),
            "documents": rows,
            "totals": totals,
        });
        serde_json::to_writer_pretty(&mut *out, &value)?;
        writeln!(out)?;
        return Ok(());
    }
    if args.csv {
        let mut writer = ::csv::Writer::from_writer(out);
        writer.write_record([
            "number",
            "kind",
            "issued_at",
            "order_id",
            "credits",
            "buyer",
            "country",
            "tax_id",
            "treatment",
            "tax_rate",
            "currency",
            "net",
            "tax",
            "gross",
            "sha256",
        ])?;
        for doc in &documents {
            let (net, tax, gross) = signed(doc);
            let buyer = doc.terms.buyer.as_ref();
            writer.write_record([
                doc.number.as_str(),
                doc.kind.as_str(),
                &clock::rfc3339(doc.issued_at),
                &doc.order_id,
                doc.corrects
                    .as_ref()
                    .map_or("", |(number, _)| number.as_str()),
                &spreadsheet_text(buyer.map_or(&doc.terms.contact.company, |b| &b.name)),
                buyer.map_or("", |b| b.country.as_str()),
                &spreadsheet_text(buyer.and_then(|b| b.tax_id.as_deref()).unwrap_or("")),
                doc.terms.sale.treatment.as_str(),
                &doc.terms.sale.rate.to_string(),
                &doc.currency,
                &money::decimal(net, &doc.currency),
                &money::decimal(tax, &doc.currency),
                &money::decimal(gross, &doc.currency),
                doc.sha256.as_deref().unwrap_or(""),
            ])?;
        }
        writer.flush()?;
        return Ok(());
    }
    if documents.is_empty() {
        writeln!(
            out,
            "no invoices or credit notes issued from {} to {} UTC",
            clock::minute(since),
            clock::minute(until)
        )?;
        if app.config.invoices.is_none() {
            writeln!(
                out,
                "compass issues none: set [invoices] issue = true and your legal details in {}",
                app.config.path.display()
            )?;
        }
        return Ok(());
    }
    let mut table = new_table();
    table.set_header([
        "number", "issued", "order", "buyer", "tax", "net", "tax", "gross",
    ]);
    for doc in &documents {
        let (net, tax, gross) = signed(doc);
        let buyer = match &doc.terms.buyer {
            Some(b) => format!(
                "{} ({}{})",
                b.name,
                b.country,
                b.tax_id
                    .as_ref()
                    .map(|id| format!(", {id}"))
                    .unwrap_or_default()
            ),
            None => doc.terms.contact.company.clone(),
        };
        let treatment = match doc.terms.sale.treatment {
            crate::invoice::Treatment::ReverseCharge => "reverse charge".to_owned(),
            crate::invoice::Treatment::Taxed => doc.terms.sale.rate.to_string(),
        };
        let amount = |cents| {
            Cell::new(money::format(cents, &doc.currency)).set_alignment(CellAlignment::Right)
        };
        table.add_row([
            Cell::new(&doc.number),
            Cell::new(doc.issued_at.date()),
            Cell::new(&doc.order_id[..8]),
            Cell::new(printable(&buyer)),
            Cell::new(treatment),
            amount(net),
            amount(tax),
            amount(gross),
        ]);
    }
    writeln!(out, "{table}")?;
    writeln!(
        out,
        "{} invoice(s) {}, {} credit note(s) {}; net {}, tax {}, total {}",
        totals.invoices,
        money::format(totals.invoiced_cents, &currency),
        totals.credit_notes,
        money::format(-totals.credited_cents, &currency),
        money::format(totals.net_cents, &currency),
        money::format(totals.tax_cents, &currency),
        money::format(totals.gross_cents, &currency),
    )?;
    if let Some(dir) = &args.out {
        writeln!(out, "PDFs written to {}", dir.display())?;
    }
    Ok(())
}
