//! Stripe's side of the store: received webhook events and the payments they confirm.

use anyhow::Context;
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::{Db, from_db, from_db_opt, to_db};

/// A webhook event as received, waiting to be handled or handled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip)]
    pub payload: String,
    pub object_id: Option<String>,
    pub order_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub handled_at: Option<OffsetDateTime>,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

/// A verified event, as it is stored.
#[derive(Clone, Debug)]
pub struct NewStripeEvent<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    /// The raw body, as signed (or as Stripe's API listed it).
    pub payload: &'a str,
    pub object_id: Option<&'a str>,
    pub stripe_created: i64,
    /// Set for an event there is nothing to handle for: stored as handled, with this note.
    pub done: Option<&'a str>,
}

/// A PaymentIntent as last read from Stripe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRecord<'a> {
    pub order_id: &'a str,
    pub payment_intent_id: &'a str,
    pub status: &'a str,
    pub amount_cents: i64,
    pub currency: &'a str,
    pub charge_id: Option<&'a str>,
    pub last_error: Option<&'a str>,
}

const EVENT_COLUMNS: &str = "id, type, payload, object_id, order_id, received_at, handled_at, \
     attempts, next_attempt_at, last_error";

fn stored_event(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        id: row.get(0)?,
        kind: row.get(1)?,
        payload: row.get(2)?,
        object_id: row.get(3)?,
        order_id: row.get(4)?,
        received_at: from_db(row.get(5)?)?,
        handled_at: from_db_opt(row.get(6)?)?,
        attempts: row.get(7)?,
        next_attempt_at: from_db_opt(row.get(8)?)?,
        last_error: row.get(9)?,
    })
}

impl Db {
    /// Stores a verified event once; false if its id was already stored (a redelivery).
    pub fn insert_stripe_event(
        &mut self,
        event: &NewStripeEvent<'_>,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        let at = to_db(now);
        // An event with nothing to handle is stored as handled, in the same statement.
        let (next_attempt_at, handled_at, attempts) = match event.done {
            Some(_) => (None, Some(at), 1),
            None => (Some(at), None, 0),
        };
        let inserted = self
            .execute(
                "INSERT INTO stripe_events (id, type, payload, object_id, stripe_created, \
                 received_at, next_attempt_at, handled_at, attempts, last_error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING",
                params![
                    event.id,
                    event.kind,
                    event.payload,
                    event.object_id,
                    event.stripe_created,
                    at,
                    next_attempt_at,
                    handled_at,
                    attempts,
                    event.done
                ],
            )
            .with_context(|| format!("cannot store Stripe event {}", event.id))?;
        Ok(inserted == 1)
    }

    /// One stored event.
    pub fn stripe_event(&self, id: &str) -> anyhow::Result<Option<StoredEvent>> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM stripe_events WHERE id = ?1"
            ))?
            .query_row([id], stored_event)
            .optional()
            .with_context(|| format!("cannot read Stripe event {id}"))
    }

    /// Unhandled events whose next attempt is due, oldest first.
    pub fn due_stripe_events(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM stripe_events \
             WHERE handled_at IS NULL AND next_attempt_at <= ?1 \
             ORDER BY next_attempt_at, received_at LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![to_db(now), limit], stored_event)?;
        rows.collect::<Result<_, _>>()
            .context("cannot read the due Stripe events")
    }

    /// Stored events, newest first; only those not handled (yet) with `unhandled`.
    pub fn stripe_events(&self, unhandled: bool, limit: u32) -> anyhow::Result<Vec<StoredEvent>> {
        let filter = if unhandled {
            "WHERE handled_at IS NULL"
        } else {
            ""
        };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM stripe_events {filter} \
             ORDER BY received_at DESC, id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit], stored_event)?;
        rows.collect::<Result<_, _>>()
            .context("cannot read the Stripe events")
    }

    /// Takes an unhandled, due event for handling until `until`; false if it is not due or
    /// someone else holds it.
    pub fn claim_event(
        &mut self,
        id: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        let claimed = self
            .execute(
                "UPDATE stripe_events SET next_attempt_at = ?3 \
                 WHERE id = ?1 AND handled_at IS NULL AND next_attempt_at <= ?2",
                params![id, to_db(now), to_db(until)],
            )
            .with_context(|| format!("cannot claim Stripe event {id}"))?;
        Ok(claimed == 1)
    }

    /// Marks an event handled, noting the order it concerned.
    pub fn event_handled(
        &mut self,
        id: &str,
        order_id: Option<&str>,
        note: Option<&str>,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        self.execute(
            "UPDATE stripe_events SET handled_at = ?2, order_id = COALESCE(?3, order_id), \
                 attempts = attempts + 1, next_attempt_at = NULL, last_error = ?4 WHERE id = ?1",
            params![id, to_db(now), order_id, note],
        )
        .with_context(|| format!("cannot mark Stripe event {id} handled"))?;
        Ok(())
    }

    /// Records a failed attempt at handling an event, and when to try again; `order_id` when
    /// the event's order is known (it waits for that order to move).
    pub fn event_failed(
        &mut self,
        id: &str,
        error: &str,
        retry_at: OffsetDateTime,
        order_id: Option<&str>,
    ) -> anyhow::Result<()> {
        self.execute(
            "UPDATE stripe_events SET attempts = attempts + 1, next_attempt_at = ?2, \
                 last_error = ?3, order_id = COALESCE(?4, order_id) WHERE id = ?1",
            params![id, to_db(retry_at), error, order_id],
        )
        .with_context(|| format!("cannot record the failure of Stripe event {id}"))?;
        Ok(())
    }

    /// Makes due now every event that waits for its order to move (it failed as `NotYet`,
    /// whose message starts `waiting_error`) when that order has moved since: a serve killed
    /// between applying a payment and handling the refund that waited for it leaves the refund
    /// to this, not to its backoff. How many were made due.
    pub fn requeue_moved_waiters(
        &mut self,
        waiting_error: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<usize> {
        let awaiting: Vec<String> = crate::order::AWAITING_PAYMENT
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let sql = format!(
            "UPDATE stripe_events SET next_attempt_at = ?1 \
             WHERE handled_at IS NULL AND next_attempt_at > ?1 AND order_id IS NOT NULL \
             AND substr(last_error, 1, length(?2)) = ?2 \
             AND order_id IN (SELECT id FROM orders WHERE status NOT IN ({}))",
            awaiting.join(", ")
        );
        self.execute(&sql, params![to_db(now), waiting_error])
            .context("cannot requeue the Stripe events that waited for their order")
    }

    /// Events of `order_id` not handled yet, but for `except`: those waiting for the order to
    /// move (a refund reported before its payment).
    pub fn events_waiting_for(&self, order_id: &str, except: &str) -> anyhow::Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM stripe_events WHERE order_id = ?1 AND handled_at IS NULL AND id <> ?2 \
             ORDER BY received_at",
        )?;
        let rows = stmt.query_map(params![order_id, except], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()
            .with_context(|| format!("cannot read the Stripe events waiting for order {order_id}"))
    }

    /// Makes an event due again now, handled or not: `compass events replay`.
    pub fn event_requeue(&mut self, id: &str, now: OffsetDateTime) -> anyhow::Result<bool> {
        let changed = self
            .execute(
                "UPDATE stripe_events SET handled_at = NULL, next_attempt_at = ?2 WHERE id = ?1",
                params![id, to_db(now)],
            )
            .with_context(|| format!("cannot requeue Stripe event {id}"))?;
        Ok(changed == 1)
    }

    /// Creates or updates the payment row of a PaymentIntent.
    pub fn upsert_payment(
        &mut self,
        payment: &PaymentRecord<'_>,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        self.execute(
            "INSERT INTO payments (order_id, payment_intent_id, status, amount_cents, currency, \
                 charge_id, last_error, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) \
                 ON CONFLICT (payment_intent_id) DO UPDATE SET status = excluded.status, \
                 amount_cents = excluded.amount_cents, currency = excluded.currency, \
                 charge_id = COALESCE(excluded.charge_id, charge_id), \
                 last_error = COALESCE(excluded.last_error, last_error), \
                 updated_at = excluded.updated_at",
            params![
                payment.order_id,
                payment.payment_intent_id,
                payment.status,
                payment.amount_cents,
                payment.currency,
                payment.charge_id,
                payment.last_error,
                to_db(now)
            ],
        )
        .with_context(|| {
            format!(
                "cannot store payment {} of order {}",
                payment.payment_intent_id, payment.order_id
            )
        })?;
        Ok(())
    }

    /// The order a PaymentIntent or a charge belongs to.
    pub fn order_of_payment(
        &self,
        payment_intent: Option<&str>,
        charge: Option<&str>,
    ) -> anyhow::Result<Option<String>> {
        self.conn
            .prepare_cached(
                "SELECT order_id FROM payments \
                 WHERE payment_intent_id = ?1 OR (?2 IS NOT NULL AND charge_id = ?2) LIMIT 1",
            )?
            .query_row(params![payment_intent, charge], |row| row.get(0))
            .optional()
            .context("cannot look up a payment")
    }

    /// PaymentIntents of an order that succeeded, other than `except`: a second payment.
    pub fn other_succeeded_payments(
        &self,
        order_id: &str,
        except: &str,
    ) -> anyhow::Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT payment_intent_id FROM payments \
             WHERE order_id = ?1 AND status = 'succeeded' AND payment_intent_id <> ?2",
        )?;
        let rows = stmt.query_map(params![order_id, except], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()
            .context("cannot read the payments of an order")
    }

    /// The PaymentIntent created for an order, if any.
    pub fn payment_intent_of(&self, order_id: &str) -> anyhow::Result<Option<String>> {
        self.conn
            .prepare_cached(
                "SELECT payment_intent_id FROM payments WHERE order_id = ?1 ORDER BY id LIMIT 1",
            )?
            .query_row([order_id], |row| row.get(0))
            .optional()
            .context("cannot read the payment of an order")
    }

    /// An order's Stripe ids, for the accounting export: its PaymentIntent and charge (the
    /// succeeded payment, else the first), and the ids of its succeeded refunds.
    pub fn stripe_ids(
        &self,
        order_id: &str,
    ) -> anyhow::Result<(Option<String>, Option<String>, Vec<String>)> {
        let (intent, charge) = self
            .conn
            .prepare_cached(
                "SELECT payment_intent_id, charge_id FROM payments WHERE order_id = ?1 \
                 ORDER BY status = 'succeeded' DESC, id LIMIT 1",
            )?
            .query_row([order_id], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?
            .unwrap_or((None, None));
        let refunds = self
            .conn
            .prepare_cached(
                "SELECT stripe_refund_id FROM refunds WHERE order_id = ?1 \
                 AND status = 'succeeded' AND stripe_refund_id IS NOT NULL ORDER BY number",
            )?
            .query_map([order_id], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok((intent, charge, refunds))
    }
}
