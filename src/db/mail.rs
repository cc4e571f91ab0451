//! The email outbox: what is due, claimed, sent, put back or given up, and operator alerts.
//!
//! Email rows are inserted by the state change that causes them (`orders.rs`), by a resend, or
//! by a sign-in request (`signin.rs`); here they are claimed, marked sent, or put back with a later due time.

use anyhow::Context;
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::{Db, exec, parse_col, to_db};
use crate::order::{EmailKind, Status, Tier};

/// A queued email, claimed for sending.
#[derive(Clone, Debug)]
pub struct OutboxEmail {
    pub id: i64,
    pub order_id: Option<String>,
    /// None for an operator alert.
    pub customer_id: Option<i64>,
    pub kind: EmailKind,
    pub recipient: String,
    /// Attempts including this one.
    pub attempts: u32,
    /// Set on a deliberate resend.
    pub resend_of: Option<i64>,
    /// The sign-in link's token, for a sign-in email only.
    pub link_token: Option<String>,
    /// An operator alert's text.
    pub message: Option<String>,
}

/// An order as its emails and pages describe it.
#[derive(Clone, Debug, Serialize)]
pub struct OrderFacts {
    pub name: String,
    pub company: String,
    pub tier: Tier,
    pub status: Status,
    pub amount_cents: i64,
    pub currency: String,
    pub refunded_cents: i64,
    pub status_token: String,
    pub last_error: Option<String>,
}

const OUTBOX_COLUMNS: &str =
    "id, order_id, customer_id, kind, recipient, attempts, resend_of, link_token, message";

fn outbox_email(row: &Row<'_>) -> rusqlite::Result<OutboxEmail> {
    Ok(OutboxEmail {
        id: row.get(0)?,
        order_id: row.get(1)?,
        customer_id: row.get(2)?,
        kind: parse_col(row, 3)?,
        recipient: row.get(4)?,
        attempts: row.get(5)?,
        resend_of: row.get(6)?,
        link_token: row.get(7)?,
        message: row.get(8)?,
    })
}

/// Queues an alert to the operator about `fact`, unless one about it was queued before, and
/// records it in the audit log; true if it is new. Inside the caller's transaction, so the
/// alert exists exactly when the change that raised it does.
pub(super) fn alert_in(
    tx: &rusqlite::Connection,
    fact: &str,
    order_id: Option<&str>,
    message: &str,
    now: OffsetDateTime,
) -> anyhow::Result<bool> {
    let at = to_db(now);
    let queued = exec(
        tx,
        "INSERT INTO emails (order_id, kind, recipient, fact, message, next_attempt_at, \
         created_at, updated_at) VALUES (?1, 'operator_alert', 'operator', ?2, ?3, ?4, ?4, ?4) \
         ON CONFLICT (fact) WHERE fact IS NOT NULL DO NOTHING",
        params![order_id, fact, message, at],
    )
    .with_context(|| format!("cannot queue the alert about {fact}"))?;
    if queued == 0 {
        return Ok(false);
    }
    tracing::warn!(order = ?order_id, "operator alert: {message}");
    super::audit_in(
        tx,
        "compass",
        "alert",
        order_id,
        &serde_json::json!({ "fact": fact, "message": message }),
        now,
    )?;
    Ok(true)
}

impl Db {
    /// Alerts the operator about `fact` by email, once however often it is raised.
    pub fn alert(
        &mut self,
        fact: &str,
        order_id: Option<&str>,
        message: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        self.write(|tx| alert_in(tx, fact, order_id, message, now))
    }

    /// Claims up to `limit` due emails until `now + hold`, counting an attempt on each. An
    /// email whose sender died mid-send is due again once its claim ends: it may then go out
    /// twice, never not at all.
    pub fn claim_emails(
        &mut self,
        now: OffsetDateTime,
        limit: u32,
        hold: Duration,
    ) -> anyhow::Result<Vec<OutboxEmail>> {
        self.write(|tx| {
            let ids: Vec<i64> = tx
                .prepare_cached(
                    "SELECT id FROM emails WHERE \
                     (status = 'queued' AND next_attempt_at <= ?1) OR \
                     (status = 'sending' AND claimed_until <= ?1) \
                     ORDER BY next_attempt_at, id LIMIT ?2",
                )?
                .query_map(params![to_db(now), limit], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            let mut claimed = Vec::with_capacity(ids.len());
            for id in ids {
                exec(
                    tx,
                    "UPDATE emails SET status = 'sending', attempts = attempts + 1, \
                     claimed_until = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, to_db(now + hold), to_db(now)],
                )?;
                claimed.push(
                    tx.prepare_cached(&format!(
                        "SELECT {OUTBOX_COLUMNS} FROM emails WHERE id = ?1"
                    ))?
                    .query_row([id], outbox_email)?,
                );
            }
            Ok(claimed)
        })
        .context("cannot claim the due emails")
    }

    /// Records that email `id` went out.
    pub fn email_sent(
        &mut self,
        id: i64,
        message_id: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        self.execute(
            "UPDATE emails SET status = 'sent', message_id = ?2, sent_at = ?3, \
             claimed_until = NULL, link_token = NULL, last_error = NULL, updated_at = ?3 \
             WHERE id = ?1",
            params![id, message_id, to_db(now)],
        )
        .with_context(|| format!("cannot record that email {id} was sent"))?;
        Ok(())
    }

    /// Records that sending email `id` failed: due again at `retry_at`, or failed for good.
    pub fn email_not_sent(
        &mut self,
        id: i64,
        error: &str,
        retry_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        self.execute(
            "UPDATE emails SET status = 'queued', next_attempt_at = ?3, last_error = ?2, \
             claimed_until = NULL, updated_at = ?4 WHERE id = ?1",
            params![id, error, to_db(retry_at), to_db(now)],
        )
        .with_context(|| format!("cannot record that email {id} failed"))?;
        Ok(())
    }

    /// Records that an email failed for good, and the alert that says so (`fact`, order,
    /// message) in the same transaction: neither can be stored without the other.
    pub fn email_given_up(
        &mut self,
        id: i64,
        error: &str,
        alert: Option<(&str, Option<&str>, &str)>,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE emails SET status = 'failed', last_error = ?2, claimed_until = NULL, \
                 link_token = NULL, updated_at = ?3 WHERE id = ?1",
                params![id, error, to_db(now)],
            )?;
            if let Some((fact, order_id, message)) = alert {
                alert_in(tx, fact, order_id, message, now)?;
            }
            Ok(())
        })
        .with_context(|| format!("cannot record that email {id} was given up"))
    }

    /// An order as its emails and pages describe it (one query).
    pub fn order_facts(&self, order_id: &str) -> anyhow::Result<Option<OrderFacts>> {
        self.conn
            .prepare_cached(
                "SELECT c.name, o.company, o.tier, o.status, o.amount_cents, o.currency, \
                 o.refunded_cents, o.status_token, o.last_error \
                 FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = ?1",
            )?
            .query_row([order_id], |row| {
                Ok(OrderFacts {
                    name: row.get(0)?,
                    company: row.get(1)?,
                    tier: parse_col(row, 2)?,
                    status: parse_col(row, 3)?,
                    amount_cents: row.get(4)?,
                    currency: row.get(5)?,
                    refunded_cents: row.get(6)?,
                    status_token: row.get(7)?,
                    last_error: row.get(8)?,
                })
            })
            .optional()
            .with_context(|| format!("cannot read order {order_id} for its email"))
    }

    /// The customer's name, for a sign-in email.
    pub fn customer_name(&self, customer_id: i64) -> anyhow::Result<String> {
        self.conn
            .prepare_cached("SELECT name FROM customers WHERE id = ?1")?
            .query_row([customer_id], |row| row.get(0))
            .with_context(|| format!("cannot read customer {customer_id}"))
    }

    /// Queues email `kind` of order `order_id` again, to `to`, as a deliberate resend of the
    /// last one of its kind; audited. Returns the new row's id.
    pub fn queue_resend(
        &mut self,
        order_id: &str,
        kind: EmailKind,
        to: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<i64> {
        self.write(|tx| {
            let original: Option<i64> = tx
                .prepare_cached(
                    "SELECT id FROM emails WHERE order_id = ?1 AND kind = ?2 \
                     AND resend_of IS NULL",
                )?
                .query_row(params![order_id, kind.as_str()], |row| row.get(0))
                .optional()?;
            exec(
                tx,
                "INSERT INTO emails (order_id, customer_id, kind, recipient, resend_of, \
                 next_attempt_at, created_at, updated_at) \
                 SELECT id, customer_id, ?2, ?3, ?4, ?5, ?5, ?5 FROM orders WHERE id = ?1",
                params![order_id, kind.as_str(), to, original, to_db(now)],
            )?;
            let id = tx.last_insert_rowid();
            super::audit_in(
                tx,
                actor,
                "resend_email",
                Some(order_id),
                &serde_json::json!({ "kind": kind.as_str(), "to": to, "email": id }),
                now,
            )?;
            Ok(id)
        })
        .with_context(|| format!("cannot queue a resend for order {order_id}"))
    }
}
