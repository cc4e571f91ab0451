//! Invoices and credit notes: the terms of a sale stored with its order, the documents
//! numbered inside the transactions that confirm a payment and record a refund (called from
//! `orders::record_step`), their PDFs stored once, and the accountant's list.

use anyhow::Context;
use rusqlite::{OptionalExtension, Row, params};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{Db, exec, from_db, from_db_opt, parse_col, to_db};
use crate::invoice::{self, Document, Kind, Terms};

const DOCUMENT: &str = "SELECT i.id, i.kind, i.number, i.issued_at, i.order_id, t.terms, \
     i.currency, i.net_cents, i.tax_cents, i.gross_cents, inv.number, inv.issued_at, o.paid_at, \
     (SELECT p.payment_intent_id FROM payments p WHERE p.order_id = i.order_id \
      AND p.status = 'succeeded' ORDER BY p.id DESC LIMIT 1), \
     o.tier, o.method_version, i.sha256 \
     FROM invoices i JOIN sale_terms t ON t.order_id = i.order_id \
     JOIN orders o ON o.id = i.order_id \
     LEFT JOIN invoices inv ON inv.order_id = i.order_id AND inv.kind = 'invoice' \
                            AND i.kind = 'credit_note'";

fn document(row: &Row<'_>) -> rusqlite::Result<Document> {
    let terms: String = row.get(5)?;
    let terms: Terms = serde_json::from_str(&terms)
        .map_err(|e| super::conversion_error(5, format!("the terms do not read: {e}")))?;
    let corrects = match (row.get::<_, Option<String>>(10)?, row.get(11)?) {
        (Some(number), Some(at)) => Some((number, from_db(at)?)),
        _ => None,
    };
    Ok(Document {
        id: row.get(0)?,
        kind: parse_col(row, 1)?,
        number: row.get(2)?,
        issued_at: from_db(row.get(3)?)?,
        order_id: row.get(4)?,
        terms,
        currency: row.get(6)?,
        net_cents: row.get(7)?,
        tax_cents: row.get(8)?,
        gross_cents: row.get(9)?,
        corrects,
        paid_at: from_db_opt(row.get(12)?)?,
        payment_intent: row.get(13)?,
        tier: parse_col(row, 14)?,
        method_version: row.get(15)?,
        sha256: row.get(16)?,
    })
}

impl Db {
    /// An order's documents, invoice first, then its credit notes in their order.
    pub fn documents_of(&self, order_id: &str) -> anyhow::Result<Vec<Document>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{DOCUMENT} WHERE i.order_id = ?1 ORDER BY i.id"))?;
        let rows = stmt.query_map([order_id], document)?;
        rows.collect::<Result<_, _>>()
            .with_context(|| format!("cannot read the invoices of order {order_id}"))
    }

    /// The document with this number.
    pub fn document(&self, number: &str) -> anyhow::Result<Option<Document>> {
        self.conn
            .prepare_cached(&format!("{DOCUMENT} WHERE i.number = ?1"))?
            .query_row([number], document)
            .optional()
            .with_context(|| format!("cannot read {number}"))
    }

    /// Every document issued in `[from, until)`, invoices and credit notes each in their
    /// sequence.
    pub fn documents_issued(
        &self,
        from: Option<OffsetDateTime>,
        until: OffsetDateTime,
    ) -> anyhow::Result<Vec<Document>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{DOCUMENT} WHERE i.issued_at >= ?1 AND i.issued_at < ?2 \
             ORDER BY i.kind DESC, i.year, i.seq"
        ))?;
        let rows = stmt.query_map(
            params![from.map_or(i64::MIN, to_db), to_db(until)],
            document,
        )?;
        rows.collect::<Result<_, _>>()
            .context("cannot read the invoices")
    }

    /// The terms the order was sold on, if it was sold with invoices.
    pub fn sale_terms(&self, order_id: &str) -> anyhow::Result<Option<Terms>> {
        terms_in(&self.conn, order_id)
    }

    /// Documents whose PDF is not stored yet, oldest first.
    pub fn unrendered_documents(&self, limit: u32) -> anyhow::Result<Vec<Document>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{DOCUMENT} WHERE i.pdf IS NULL ORDER BY i.id LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit], document)?;
        rows.collect::<Result<_, _>>()
            .context("cannot read the invoices to render")
    }

    /// The PDF of document `id` as issued, if it is stored.
    pub fn document_pdf(&self, id: i64) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .prepare_cached("SELECT pdf FROM invoices WHERE id = ?1")?
            .query_row([id], |row| row.get::<_, Option<Vec<u8>>>(0))
            .optional()?
            .flatten())
    }

    /// Stores the PDF of document `id` unless one is stored already (two renderers at once),
    /// and returns the one stored: a document is issued once.
    pub fn store_document_pdf(&mut self, id: i64, pdf: &[u8]) -> anyhow::Result<Vec<u8>> {
        let sha256 = hex::encode(Sha256::digest(pdf));
        self.write(|tx| {
            exec(
                tx,
                "UPDATE invoices SET pdf = ?2, sha256 = ?3 WHERE id = ?1 AND pdf IS NULL",
                params![id, pdf, sha256],
            )?;
            tx.prepare_cached("SELECT pdf FROM invoices WHERE id = ?1")?
                .query_row([id], |row| row.get::<_, Option<Vec<u8>>>(0))?
                .context("the PDF just stored is missing")
        })
        .with_context(|| format!("cannot store the PDF of document {id}"))
    }
}

/// Keeps the terms of an order's sale, in the transaction that creates it.
pub(super) fn store_terms_in(
    tx: &rusqlite::Connection,
    order_id: &str,
    terms: &Terms,
) -> anyhow::Result<()> {
    let sale = &terms.sale;
    exec(
        tx,
        "INSERT INTO sale_terms (order_id, terms, net_cents, tax_cents, tax_rate_bp, treatment) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            order_id,
            serde_json::to_string(terms).context("cannot encode the terms")?,
            sale.net_cents,
            sale.tax_cents,
            sale.rate.0,
            sale.treatment.as_str(),
        ],
    )
    .context("cannot store the terms of the sale")?;
    Ok(())
}

fn terms_in(tx: &rusqlite::Connection, order_id: &str) -> anyhow::Result<Option<Terms>> {
    let text: Option<String> = tx
        .prepare_cached("SELECT terms FROM sale_terms WHERE order_id = ?1")?
        .query_row([order_id], |row| row.get(0))
        .optional()?;
    text.map(|t| serde_json::from_str(&t).context("the terms of the sale do not read"))
        .transpose()
}

/// The next number of `kind` in `year`, under the caller's write transaction: the year's
/// highest plus one, so none is skipped, and (kind, year, seq) is unique, so none is repeated.
fn next_seq(tx: &rusqlite::Connection, kind: Kind, year: i32) -> anyhow::Result<i64> {
    Ok(tx
        .prepare_cached(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM invoices WHERE kind = ?1 AND year = ?2",
        )?
        .query_row(params![kind.as_str(), year], |row| row.get(0))?)
}

#[allow(clippy::too_many_arguments)]
fn insert(
    tx: &rusqlite::Connection,
    kind: Kind,
    prefix: &str,
    order_id: &str,
    refund: Option<u32>,
    currency: &str,
    (net, tax): (i64, i64),
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let year = now.year();
    let seq = next_seq(tx, kind, year)?;
    exec(
        tx,
        "INSERT INTO invoices (kind, year, seq, number, order_id, refund_number, issued_at, \
         currency, net_cents, tax_cents, gross_cents) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            kind.as_str(),
            year,
            seq,
            invoice::number(prefix, year, seq),
            order_id,
            refund,
            to_db(now),
            currency,
            net,
            tax,
            net + tax
        ],
    )
    .with_context(|| {
        format!(
            "cannot number the {} of order {order_id}",
            kind.title().to_lowercase()
        )
    })?;
    Ok(())
}

/// Issues the order's invoice, if it was sold with terms (`[invoices]` on when it was placed).
pub(super) fn issue_invoice_in(
    tx: &rusqlite::Connection,
    order_id: &str,
    currency: &str,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let Some(terms) = terms_in(tx, order_id)? else {
        return Ok(());
    };
    let sale = terms.sale;
    insert(
        tx,
        Kind::Invoice,
        &terms.invoice_prefix,
        order_id,
        None,
        currency,
        (sale.net_cents, sale.tax_cents),
        now,
    )
}

/// Issues a credit note for `amount_cents` refunded, if the order has an invoice: its tax is
/// the invoice's in proportion, so the notes of a whole refund add up to the invoice.
pub(super) fn issue_credit_note_in(
    tx: &rusqlite::Connection,
    order_id: &str,
    refund: Option<u32>,
    amount_cents: i64,
    currency: &str,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let Some(terms) = terms_in(tx, order_id)? else {
        return Ok(());
    };
    let has_invoice: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM invoices WHERE order_id = ?1 AND kind = 'invoice')",
        )?
        .query_row([order_id], |row| row.get(0))?;
    if !has_invoice {
        return Ok(());
    }
    let (credited, credited_tax): (i64, i64) = tx
        .prepare_cached(
            "SELECT COALESCE(SUM(gross_cents), 0), COALESCE(SUM(tax_cents), 0) FROM invoices \
             WHERE order_id = ?1 AND kind = 'credit_note'",
        )?
        .query_row([order_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let (net, tax) = invoice::tax::credit(&terms.sale, credited, credited_tax, amount_cents);
    if net + tax == 0 {
        return Ok(());
    }
    insert(
        tx,
        Kind::CreditNote,
        &terms.credit_note_prefix,
        order_id,
        refund,
        currency,
        (net, tax),
        now,
    )
}
