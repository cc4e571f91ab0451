//! What the operator's commands show of orders: the list with its filters and counts, and one
//! order in detail (payments, refunds, emails, timeline).

use anyhow::Context;
use rusqlite::{OptionalExtension, Row, ToSql};
use serde::Serialize;
use time::OffsetDateTime;

use super::{Db, conversion_error, from_db, from_db_opt, normalize_email, parse_col, to_db};
use crate::order::{Status, Tier};

/// Which orders `compass orders` lists.
#[derive(Clone, Debug, Default)]
pub struct OrderFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only orders created at or after this.
    pub since: Option<OffsetDateTime>,
    /// Only this customer's (normalised before the lookup).
    pub email: Option<String>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// One line of the orders list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrderSummary {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub email: String,
    pub name: String,
    pub company: String,
    pub tier: Tier,
    pub amount_cents: i64,
    pub currency: String,
    pub status: Status,
    pub refunded_cents: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Everything known about one order, for `compass orders show`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OrderDetail {
    #[serde(flatten)]
    pub summary: OrderSummary,
    pub status_token: String,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    pub lease_owner: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub lease_expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub paid_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    pub downloads: u32,
    pub last_error: Option<String>,
    pub questionnaire: serde_json::Value,
    /// The method it was sold with; `None` before versions were kept (the built-in one).
    pub method_version: Option<String>,
    pub payments: Vec<PaymentRow>,
    pub refunds: Vec<RefundRow>,
    pub emails: Vec<EmailRow>,
    pub timeline: Vec<EventRow>,
}

/// A Stripe PaymentIntent of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PaymentRow {
    pub payment_intent_id: String,
    pub status: String,
    pub amount_cents: i64,
    pub currency: String,
    pub charge_id: Option<String>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A refund of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefundRow {
    pub id: String,
    pub stripe_refund_id: Option<String>,
    pub amount_cents: i64,
    pub currency: String,
    pub source: String,
    pub status: String,
    pub reason: String,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An outbox row of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EmailRow {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub status: String,
    pub resend_of: Option<i64>,
    pub attempts: u32,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A row of an order's timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventRow {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub kind: String,
    pub from_status: Option<Status>,
    pub to_status: Status,
    pub actor: String,
    pub detail: serde_json::Value,
}

impl Db {
    /// Orders matching `filter`, newest first.
    pub fn list_orders(&self, filter: &OrderFilter) -> anyhow::Result<Vec<OrderSummary>> {
        let (conditions, args) = filter_sql(filter);
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM orders o JOIN customers c ON c.id = o.customer_id \
             {conditions} ORDER BY o.created_at DESC, o.id DESC LIMIT {}",
            filter.limit
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), summary)?;
        rows.collect::<Result<_, _>>()
            .context("cannot read the orders")
    }

    /// How many orders match `filter`, ignoring its limit.
    pub fn count_orders(&self, filter: &OrderFilter) -> anyhow::Result<i64> {
        let (conditions, args) = filter_sql(filter);
        let sql = format!("SELECT count(*) FROM orders o {conditions}");
        self.conn
            .query_row(&sql, rusqlite::params_from_iter(args.iter()), |row| {
                row.get(0)
            })
            .context("cannot count the orders")
    }

    /// Everything about one order, or `None` if there is no such order.
    pub fn order_detail(&self, id: &str) -> anyhow::Result<Option<OrderDetail>> {
        let conn = &self.conn;
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, o.status_token, o.attempts, o.next_attempt_at, \
             o.lease_owner, o.lease_expires_at, o.paid_at, o.completed_at, o.downloads, \
             o.last_error, o.questionnaire, o.method_version \
             FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = ?1"
        );
        let detail = conn
            .query_row(&sql, [id], |row| {
                let questionnaire: String = row.get(20)?;
                Ok(OrderDetail {
                    summary: summary(row)?,
                    status_token: row.get(11)?,
                    attempts: row.get(12)?,
                    next_attempt_at: from_db_opt(row.get(13)?)?,
                    lease_owner: row.get(14)?,
                    lease_expires_at: from_db_opt(row.get(15)?)?,
                    paid_at: from_db_opt(row.get(16)?)?,
                    completed_at: from_db_opt(row.get(17)?)?,
                    downloads: row.get(18)?,
                    last_error: row.get(19)?,
                    questionnaire: serde_json::from_str(&questionnaire)
                        .map_err(|e| conversion_error(20, e.to_string()))?,
                    method_version: row.get(21)?,
                    payments: Vec::new(),
                    refunds: Vec::new(),
                    emails: Vec::new(),
                    timeline: Vec::new(),
                })
            })
            .optional()
            .with_context(|| format!("cannot read order {id}"))?;
        let Some(mut detail) = detail else {
            return Ok(None);
        };
        detail.payments = query_all(
            conn,
            "SELECT payment_intent_id, status, amount_cents, currency, charge_id, last_error, \
             updated_at FROM payments WHERE order_id = ?1 ORDER BY id",
            id,
            |row| {
                Ok(PaymentRow {
                    payment_intent_id: row.get(0)?,
                    status: row.get(1)?,
                    amount_cents: row.get(2)?,
                    currency: row.get(3)?,
                    charge_id: row.get(4)?,
                    last_error: row.get(5)?,
                    updated_at: from_db(row.get(6)?)?,
                })
            },
        )?;
        detail.refunds = query_all(
            conn,
            "SELECT id, stripe_refund_id, amount_cents, currency, source, status, reason, \
             last_error, created_at FROM refunds WHERE order_id = ?1 ORDER BY number",
            id,
            |row| {
                Ok(RefundRow {
                    id: row.get(0)?,
                    stripe_refund_id: row.get(1)?,
                    amount_cents: row.get(2)?,
                    currency: row.get(3)?,
                    source: row.get(4)?,
                    status: row.get(5)?,
                    reason: row.get(6)?,
                    last_error: row.get(7)?,
                    created_at: from_db(row.get(8)?)?,
                })
            },
        )?;
        detail.emails = query_all(
            conn,
            "SELECT id, kind, recipient, status, resend_of, attempts, last_error, sent_at, \
             created_at FROM emails WHERE order_id = ?1 ORDER BY id",
            id,
            |row| {
                Ok(EmailRow {
                    id: row.get(0)?,
                    kind: row.get(1)?,
                    recipient: row.get(2)?,
                    status: row.get(3)?,
                    resend_of: row.get(4)?,
                    attempts: row.get(5)?,
                    last_error: row.get(6)?,
                    sent_at: from_db_opt(row.get(7)?)?,
                    created_at: from_db(row.get(8)?)?,
                })
            },
        )?;
        detail.timeline = query_all(
            conn,
            "SELECT at, kind, from_status, to_status, actor, detail FROM order_events \
             WHERE order_id = ?1 ORDER BY id",
            id,
            |row| {
                let detail: String = row.get(5)?;
                Ok(EventRow {
                    at: from_db(row.get(0)?)?,
                    kind: row.get(1)?,
                    from_status: row
                        .get::<_, Option<String>>(2)?
                        .map(|s| s.parse().map_err(|e| conversion_error(2, e)))
                        .transpose()?,
                    to_status: parse_col(row, 3)?,
                    actor: row.get(4)?,
                    detail: serde_json::from_str(&detail)
                        .map_err(|e| conversion_error(5, e.to_string()))?,
                })
            },
        )?;
        Ok(Some(detail))
    }
}

const SUMMARY_COLUMNS: &str = "o.id, o.created_at, c.email, c.name, o.company, o.tier, \
     o.amount_cents, o.currency, o.status, o.refunded_cents, o.updated_at";

fn summary(row: &Row<'_>) -> rusqlite::Result<OrderSummary> {
    Ok(OrderSummary {
        id: row.get(0)?,
        created_at: from_db(row.get(1)?)?,
        email: row.get(2)?,
        name: row.get(3)?,
        company: row.get(4)?,
        tier: parse_col(row, 5)?,
        amount_cents: row.get(6)?,
        currency: row.get(7)?,
        status: parse_col(row, 8)?,
        refunded_cents: row.get(9)?,
        updated_at: from_db(row.get(10)?)?,
    })
}

/// The WHERE clause for a filter, on `orders o` alone: only the conditions in use, so SQLite
/// can pick an index.
fn filter_sql(filter: &OrderFilter) -> (String, Vec<Box<dyn ToSql>>) {
    let mut conditions = Vec::new();
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    if let Some(status) = filter.status {
        args.push(Box::new(status.as_str()));
        conditions.push(format!("o.status = ?{}", args.len()));
    }
    if let Some(since) = filter.since {
        args.push(Box::new(to_db(since)));
        conditions.push(format!("o.created_at >= ?{}", args.len()));
    }
    if let Some(email) = &filter.email {
        args.push(Box::new(normalize_email(email)));
        conditions.push(format!(
            "o.customer_id = (SELECT id FROM customers WHERE email = ?{})",
            args.len()
        ));
    }
    let clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    (clause, args)
}

fn query_all<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    id: &str,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> anyhow::Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([id], map)?;
    rows.collect::<Result<_, _>>()
        .with_context(|| format!("cannot read the rows of order {id}"))
}
