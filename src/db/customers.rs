//! Customers' data rights: everything held about one customer (export), erasing it while the
//! money records stay (forget), and erasing old answers and reports (retention).
//!
//! [`HELD`] names, for every table, the rows that belong to a customer; a test checks that it
//! covers every table of the schema, so a new table cannot be left out of an export or a
//! forget.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{Db, exec, new_token, normalize_email, to_db};

/// What replaces a forgotten person's data.
pub const FORGOTTEN: &str = "(forgotten)";

/// The orders of customer `?1`.
const THEIR_ORDERS: &str = "SELECT id FROM orders WHERE customer_id = ?1";

/// Every table, with the condition that picks customer `?1`'s rows.
pub(super) fn held() -> [(&'static str, String); 15] {
    let of_orders = format!("order_id IN ({THEIR_ORDERS})");
    [
        ("customers", "id = ?1".to_owned()),
        ("orders", "customer_id = ?1".to_owned()),
        ("payments", of_orders.clone()),
        ("refunds", of_orders.clone()),
        ("artifacts", of_orders.clone()),
        ("llm_calls", of_orders.clone()),
        ("order_events", of_orders.clone()),
        // Their emails, and the operator's alerts about their orders.
        ("emails", format!("customer_id = ?1 OR {of_orders}")),
        ("sign_in_links", "customer_id = ?1".to_owned()),
        // Events about their orders, or about their payments' objects.
        (
            "stripe_events",
            format!(
                "{of_orders} OR object_id IN (SELECT payment_intent_id FROM payments WHERE \
                 {of_orders} UNION SELECT charge_id FROM payments WHERE {of_orders} UNION \
                 SELECT stripe_refund_id FROM refunds WHERE {of_orders})"
            ),
        ),
        ("audit_log", of_orders.clone()),
        // Their invoices and the terms behind them: exported, and kept when they are
        // forgotten (a legal duty to keep invoices).
        ("sale_terms", of_orders.clone()),
        ("invoices", of_orders),
        // The operator's methods: nobody's data (no row matches a customer's id).
        ("method_versions", "?1 IS NULL".to_owned()),
        ("method_files", "?1 IS NULL".to_owned()),
    ]
}

/// Tables kept whole when a customer is forgotten: invoices, and the terms they were issued on.
const KEPT: [&str; 2] = ["sale_terms", "invoices"];

/// Columns left out of an export: report files (their metadata stays) and live link tokens.
const NOT_EXPORTED: [&str; 2] = ["content", "link_token"];

/// Text columns that hold JSON, exported as JSON.
const JSON_COLUMNS: [&str; 4] = ["questionnaire", "detail", "payload", "terms"];

/// Keys whose values are a person's data wherever they appear in a Stripe payload.
const PERSONAL_KEYS: [&str; 8] = [
    "billing_details",
    "shipping",
    "receipt_email",
    "email",
    "name",
    "phone",
    "address",
    "reason",
];

/// What forgetting a customer did (or, on a dry run, would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Forgotten {
    pub customer_id: i64,
    pub orders: Vec<String>,
    /// Rows changed or removed, by table.
    pub rows: BTreeMap<&'static str, i64>,
    /// Invoices and credit notes kept as issued, with the billing details on them: invoices
    /// must be kept for years, whoever asks.
    pub kept_documents: i64,
}

impl Db {
    /// Everything held about the customer with `email`, table by table; `None` if nobody with
    /// that address ever ordered.
    pub fn customer_export(&self, email: &str) -> anyhow::Result<Option<Value>> {
        let Some(customer) = self.customer_id(email)? else {
            return Ok(None);
        };
        let mut tables = serde_json::Map::new();
        for (table, condition) in held() {
            tables.insert(
                table.to_owned(),
                Value::Array(self.rows_of(table, &condition, customer)?),
            );
        }
        Ok(Some(json!({
            "email": normalize_email(email),
            "customer_id": customer,
            "tables": tables,
        })))
    }

    fn customer_id(&self, email: &str) -> anyhow::Result<Option<i64>> {
        self.conn
            .prepare_cached("SELECT id FROM customers WHERE email = ?1")?
            .query_row([normalize_email(email)], |row| row.get(0))
            .optional()
            .context("cannot look up the customer")
    }

    fn rows_of(&self, table: &str, condition: &str, customer: i64) -> anyhow::Result<Vec<Value>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT * FROM {table} WHERE {condition} ORDER BY rowid"
            ))
            .with_context(|| format!("cannot read {table}"))?;
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let rows = stmt.query_map([customer], |row| {
            let mut object = serde_json::Map::new();
            for (i, name) in names.iter().enumerate() {
                if NOT_EXPORTED.contains(&name.as_str()) {
                    continue;
                }
                let value = match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => json!(n),
                    ValueRef::Real(x) => json!(x),
                    ValueRef::Text(bytes) => {
                        let text = String::from_utf8_lossy(bytes);
                        if JSON_COLUMNS.contains(&name.as_str()) {
                            serde_json::from_str(&text).unwrap_or(json!(text))
                        } else {
                            json!(text)
                        }
                    }
                    // An invoice is theirs to keep: exported whole.
                    ValueRef::Blob(bytes) if name == "pdf" => json!({
                        "bytes": bytes.len(),
                        "base64": base64::Engine::encode(
                            &base64::engine::general_purpose::STANDARD,
                            bytes,
                        ),
                    }),
                    ValueRef::Blob(bytes) => json!({ "bytes": bytes.len() }),
                };
                object.insert(name.clone(), value);
            }
            Ok(Value::Object(object))
        })?;
        rows.collect::<Result<_, _>>()
            .with_context(|| format!("cannot read {table}"))
    }

    /// Erases the person behind `email`: their name, address, answers, reports, words and
    /// links. The orders, payments and refunds stay for the accounts, tied to a customer row
    /// that no longer names anyone. Refused while one of their orders is still in progress.
    /// `None` if nobody with that address is held (never was, or already forgotten). The file
    /// is vacuumed afterwards, so no erased byte survives in free pages or the WAL.
    pub fn forget_customer(
        &mut self,
        email: &str,
        dry_run: bool,
        now: OffsetDateTime,
    ) -> anyhow::Result<Option<Forgotten>> {
        let Some(customer) = self.customer_id(email)? else {
            return Ok(None);
        };
        refuse_while_in_progress(&self.conn, customer)?;
        let terms = self.terms_of(customer)?;
        let mut forgotten = Forgotten {
            customer_id: customer,
            ..Forgotten::default()
        };
        for (table, condition) in held() {
            let n: i64 = self.conn.query_row(
                &format!("SELECT count(*) FROM {table} WHERE {condition}"),
                [customer],
                |row| row.get(0),
            )?;
            if KEPT.contains(&table) {
                if table == "invoices" {
                    forgotten.kept_documents = n;
                }
            } else {
                forgotten.rows.insert(table, n);
            }
        }
        forgotten.orders = self
            .conn
            .prepare(THEIR_ORDERS)?
            .query_map([customer], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        if dry_run {
            return Ok(Some(forgotten));
        }
        self.conn
            .pragma_update(None, "secure_delete", true)
            .context("cannot turn on secure delete")?;
        let result = self.write(|tx| {
            // Again inside the transaction: serve may have moved an order meanwhile.
            refuse_while_in_progress(tx, customer)?;
            erase(tx, customer, &terms, &forgotten, now)
        });
        self.conn.pragma_update(None, "secure_delete", false)?;
        result?;
        self.conn
            .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
            .context(
                "the customer is forgotten, but the file could not be vacuumed: run \
                      `sqlite3 compass.db VACUUM` to clear the erased bytes",
            )?;
        Ok(Some(forgotten))
    }

    /// The strings that name customer `customer` anywhere: address, names, company, website.
    fn terms_of(&self, customer: i64) -> anyhow::Result<Vec<String>> {
        let mut terms: Vec<String> = self.conn.query_row(
            "SELECT email, name FROM customers WHERE id = ?1",
            [customer],
            |row| Ok(vec![row.get(0)?, row.get(1)?]),
        )?;
        let mut stmt = self.conn.prepare(
            "SELECT company, json_extract(questionnaire, '$.name'), \
             json_extract(questionnaire, '$.email'), json_extract(questionnaire, '$.website') \
             FROM orders WHERE customer_id = ?1",
        )?;
        let rows = stmt.query_map([customer], |row| {
            Ok([
                row.get::<_, Option<String>>(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
            ])
        })?;
        for row in rows {
            terms.extend(row?.into_iter().flatten());
        }
        terms.retain(|t| t.trim().chars().count() >= 2 && t != FORGOTTEN);
        // Longest first, so that a name inside an address goes with the address.
        terms.sort_by_key(|t| std::cmp::Reverse(t.len()));
        terms.dedup();
        Ok(terms)
    }

    /// Erases the answers and reports of finished orders placed before `cutoff`; the ids of
    /// the orders erased.
    pub fn erase_expired(
        &mut self,
        cutoff: OffsetDateTime,
        now: OffsetDateTime,
    ) -> anyhow::Result<Vec<String>> {
        // Every pass asks; most find nothing, and take no write lock for it.
        let due: Vec<String> = self
            .conn
            .prepare_cached(
                "SELECT id FROM orders WHERE created_at < ?1 AND erased_at IS NULL AND \
                 status IN ('completed', 'refunded', 'failed', 'expired') \
                 ORDER BY created_at LIMIT 500",
            )?
            .query_map([to_db(cutoff)], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        if due.is_empty() {
            return Ok(due);
        }
        self.conn.pragma_update(None, "secure_delete", true)?;
        let erased = self.write(|tx| {
            let mut ids = Vec::with_capacity(due.len());
            for id in due {
                // Still finished and not erased: checked again under the write lock.
                let changed = exec(
                    tx,
                    "UPDATE orders SET erased_at = ?2 WHERE id = ?1 AND erased_at IS NULL AND \
                     status IN ('completed', 'refunded', 'failed', 'expired')",
                    params![id, to_db(now)],
                )?;
                if changed == 1 {
                    ids.push(id);
                }
            }
            for id in &ids {
                erase_answers(tx, id, now)?;
                super::audit_in(
                    tx,
                    "compass",
                    "retention_erased",
                    Some(id),
                    &json!({ "before": to_db(cutoff) }),
                    now,
                )?;
            }
            Ok(ids)
        });
        self.conn.pragma_update(None, "secure_delete", false)?;
        erased.context("cannot erase the expired answers and reports")
    }
}

/// Refuses to forget a customer while one of their orders can still move: it could be paid,
/// written, refunded or disputed after their data is gone, and mail them at no address.
fn refuse_while_in_progress(conn: &rusqlite::Connection, customer: i64) -> anyhow::Result<()> {
    let busy: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT id, status FROM orders WHERE customer_id = ?1 AND status IN \
             ('pending_payment', 'paid', 'generating', 'failed', 'refund_requested', \
             'refunding', 'disputed') LIMIT 1",
        )?
        .query_row([customer], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    if let Some((id, status)) = busy {
        bail!(
            "order {id} of this customer is {status}: finish it first (deliver, refund, answer \
             the dispute, or let an unpaid order expire), then forget"
        );
    }
    Ok(())
}

fn erase(
    tx: &rusqlite::Connection,
    customer: i64,
    terms: &[String],
    forgotten: &Forgotten,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let at = to_db(now);
    exec(
        tx,
        "UPDATE customers SET email = 'forgotten-' || id, name = ?2, updated_at = ?3 \
         WHERE id = ?1",
        params![customer, FORGOTTEN, at],
    )?;
    for id in &forgotten.orders {
        erase_answers(tx, id, now)?;
        exec(
            tx,
            "UPDATE orders SET company = ?2, status_token = ?3 WHERE id = ?1",
            params![id, FORGOTTEN, new_token()?],
        )?;
    }
    exec(
        tx,
        "DELETE FROM sign_in_links WHERE customer_id = ?1",
        [customer],
    )?;
    // What was still to be sent to them is not sent: there is nobody to send it to.
    exec(
        tx,
        "UPDATE emails SET recipient = ?2, link_token = NULL, \
         status = CASE WHEN status IN ('queued', 'sending') THEN 'failed' ELSE status END, \
         last_error = CASE WHEN status IN ('queued', 'sending') THEN 'customer forgotten' \
         ELSE last_error END, claimed_until = NULL WHERE customer_id = ?1",
        params![customer, FORGOTTEN],
    )?;
    exec(
        tx,
        &format!(
            "UPDATE refunds SET reason = ?2 WHERE reason <> '' AND order_id IN ({THEIR_ORDERS})"
        ),
        params![customer, FORGOTTEN],
    )?;
    // Free text that may quote them: errors, alerts, the timeline, the audit log, and what
    // Stripe sent about their payments.
    let text_columns = [
        ("orders", "last_error", false),
        ("refunds", "last_error", false),
        ("llm_calls", "error", false),
        ("emails", "last_error", false),
        ("emails", "message", false),
        ("stripe_events", "last_error", false),
        ("stripe_events", "payload", true),
        ("order_events", "detail", true),
        ("audit_log", "detail", true),
    ];
    let held = held();
    for (table, column, is_json) in text_columns {
        let condition = &held
            .iter()
            .find(|(t, _)| *t == table)
            .expect("every table is held")
            .1;
        let rows: Vec<(i64, String)> = tx
            .prepare(&format!(
                "SELECT rowid, {column} FROM {table} WHERE ({condition}) AND {column} IS NOT NULL"
            ))?
            .query_map([customer], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (rowid, text) in rows {
            let redacted = if is_json {
                let mut value: Value = serde_json::from_str(&text)
                    .with_context(|| format!("{table}.{column} of row {rowid} is not JSON"))?;
                if !redact(&mut value, terms) {
                    continue;
                }
                if table == "order_events" {
                    value["redacted"] = json!(true);
                }
                value.to_string()
            } else {
                let replaced = replace_terms(&text, terms);
                if replaced == text {
                    continue;
                }
                replaced
            };
            exec(
                tx,
                &format!("UPDATE {table} SET {column} = ?2 WHERE rowid = ?1"),
                params![rowid, redacted],
            )?;
        }
    }
    super::audit_in(
        tx,
        "operator",
        "customer_forgotten",
        None,
        &json!({ "customer": customer, "orders": forgotten.orders, "rows": forgotten.rows }),
        now,
    )?;
    Ok(())
}

/// Erases one order's answers and report files.
fn erase_answers(tx: &rusqlite::Connection, id: &str, now: OffsetDateTime) -> anyhow::Result<()> {
    exec(
        tx,
        "UPDATE orders SET questionnaire = '{\"erased\":true}', score = NULL, \
         erased_at = COALESCE(erased_at, ?2) WHERE id = ?1",
        params![id, to_db(now)],
    )?;
    exec(tx, "DELETE FROM artifacts WHERE order_id = ?1", [id])?;
    Ok(())
}

/// `text` with every term replaced.
fn replace_terms(text: &str, terms: &[String]) -> String {
    terms.iter().fold(text.to_owned(), |text, term| {
        text.replace(term.as_str(), FORGOTTEN)
    })
}

/// Replaces the terms in every string of `value`, and the whole value of every key that holds
/// a person's data; true if anything changed.
fn redact(value: &mut Value, terms: &[String]) -> bool {
    match value {
        Value::String(text) => {
            let replaced = replace_terms(text, terms);
            let changed = replaced != *text;
            *text = replaced;
            changed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| redact(item, terms) | changed),
        Value::Object(map) => map.iter_mut().fold(false, |changed, (key, item)| {
            if PERSONAL_KEYS.contains(&key.as_str()) && !item.is_null() && *item != json!(FORGOTTEN)
            {
                *item = json!(FORGOTTEN);
                return true;
            }
            redact(item, terms) | changed
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_replaces_terms_in_values_and_personal_keys_whole() {
        let terms = vec!["ada@example.com".to_owned(), "Ada Lovelace".to_owned()];
        let mut payload = json!({
            "id": "evt_1", "type": "charge.succeeded",
            "data": { "object": {
                "billing_details": { "name": "A. L.", "email": "x@y.z" },
                "description": "for Ada Lovelace <ada@example.com>",
                "metadata": { "order_id": "0193" },
                "name": null,
            }},
        });
        assert!(redact(&mut payload, &terms));
        assert_eq!(
            payload["data"]["object"]["billing_details"],
            json!(FORGOTTEN)
        );
        assert_eq!(
            payload["data"]["object"]["description"],
            json!("for (forgotten) <(forgotten)>")
        );
        assert_eq!(
            payload["data"]["object"]["metadata"]["order_id"],
            json!("0193")
        );
        assert_eq!(payload["data"]["object"]["name"], Value::Null);
        assert!(
            !redact(&mut payload, &terms),
            "a second pass changes nothing"
        );
    }
}
