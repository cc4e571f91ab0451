//! Refunds: asking for one, and the bookkeeping of carrying it out at Stripe.

use anyhow::Context;
use rusqlite::params;
use time::OffsetDateTime;

use super::orders::apply_in;
use super::{Db, exec, to_db};
use crate::order::{Event, InvalidTransition, Policy, RefundSource, Step};

/// A refund row that Stripe has not been asked for yet (or whose asking failed on the way).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundToIssue {
    pub order_id: String,
    pub number: u32,
    pub amount_cents: i64,
    pub idempotency_key: String,
    /// The PaymentIntent the money came in on.
    pub payment_intent: Option<String>,
}

impl Db {
    /// A refund request through `order::step`, with the customer's earlier refunds (on any of
    /// their orders, by normalised email) counted in the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn request_refund(
        &mut self,
        order_id: &str,
        source: RefundSource,
        reason: &str,
        amount_cents: Option<i64>,
        policy: &Policy,
        actor: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<Result<Step, InvalidTransition>> {
        self.write(|tx| {
            let prior_refunds: u32 = tx
                .prepare_cached(
                    "SELECT count(*) FROM refunds r JOIN orders o ON o.id = r.order_id \
                     WHERE o.customer_id = (SELECT customer_id FROM orders WHERE id = ?1) \
                     AND r.status IN ('pending', 'succeeded')",
                )?
                .query_row([order_id], |row| row.get(0))?;
            let event = Event::RefundRequested {
                source,
                reason: reason.to_owned(),
                amount_cents,
                prior_refunds,
            };
            apply_in(tx, order_id, &event, policy, actor, now)
        })
    }

    /// Claims the pending refunds not yet known to Stripe (of one order, or of all), oldest
    /// first, until `now + hold`: a refund another process is asking for is left alone.
    pub fn claim_refunds(
        &mut self,
        order_id: Option<&str>,
        now: OffsetDateTime,
        hold: time::Duration,
    ) -> anyhow::Result<Vec<RefundToIssue>> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "UPDATE refunds SET claimed_until = ?3 \
                 WHERE status = 'pending' AND stripe_refund_id IS NULL \
                 AND (claimed_until IS NULL OR claimed_until <= ?2) \
                 AND (?1 IS NULL OR order_id = ?1) \
                 RETURNING order_id, number, amount_cents, idempotency_key, \
                 (SELECT p.payment_intent_id FROM payments p WHERE p.order_id = refunds.order_id \
                  ORDER BY p.status = 'succeeded' DESC, p.id LIMIT 1), created_at",
            )?;
            let mut claimed: Vec<(RefundToIssue, i64)> = stmt
                .query_map(params![order_id, to_db(now), to_db(now + hold)], |row| {
                    Ok((
                        RefundToIssue {
                            order_id: row.get(0)?,
                            number: row.get(1)?,
                            amount_cents: row.get(2)?,
                            idempotency_key: row.get(3)?,
                            payment_intent: row.get(4)?,
                        },
                        row.get(5)?,
                    ))
                })?
                .collect::<Result<_, _>>()?;
            claimed.sort_by_key(|(r, created)| (*created, r.number));
            Ok(claimed.into_iter().map(|(r, _)| r).collect())
        })
        .context("cannot claim the refunds to issue")
    }

    /// Records Stripe's id for our refund `number` of `order_id`.
    pub fn refund_issued(
        &mut self,
        order_id: &str,
        number: u32,
        stripe_refund_id: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE refunds SET stripe_refund_id = ?3, updated_at = ?4 \
                 WHERE order_id = ?1 AND number = ?2",
                params![order_id, number, stripe_refund_id, to_db(now)],
            )?;
            Ok(())
        })
        .with_context(|| format!("cannot record refund {number} of order {order_id}"))
    }

    /// Notes why asking Stripe for a refund failed this time (it is asked again later).
    pub fn refund_attempt_failed(
        &mut self,
        order_id: &str,
        number: u32,
        error: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        // The claim goes: the next pass asks again.
        self.execute(
            "UPDATE refunds SET last_error = ?3, updated_at = ?4, claimed_until = NULL \
             WHERE order_id = ?1 AND number = ?2",
            params![order_id, number, error, to_db(now)],
        )
        .with_context(|| format!("cannot record refund {number} of order {order_id}"))?;
        Ok(())
    }
}
