//! Calls to Claude: one row per HTTP attempt, with tokens, cost and duration.

use anyhow::Context;
use rusqlite::params;
use time::OffsetDateTime;

use super::{Db, to_db};
use crate::claude::Attempt;

impl Db {
    /// Records one attempt at a Claude call, for an order or for a preview (`None`).
    pub fn record_llm_call(
        &mut self,
        order_id: Option<&str>,
        attempt: &Attempt,
        cost_micros: i64,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        self.execute(
            "INSERT INTO llm_calls (order_id, model, request_id, outcome, http_status, \
             input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, cost_micros, \
             duration_ms, error, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                order_id,
                attempt.model,
                attempt.request_id,
                attempt.outcome,
                attempt.http_status,
                int(attempt.usage.input_tokens),
                int(attempt.usage.output_tokens),
                int(attempt.usage.cache_read_input_tokens),
                int(attempt.usage.cache_creation_input_tokens),
                cost_micros,
                int(attempt.duration_ms),
                attempt.error,
                to_db(now)
            ],
        )
        .context("cannot record a Claude call")?;
        Ok(())
    }

    /// What an order's Claude calls have cost so far, in millionths of a dollar.
    pub fn llm_cost_of(&self, order_id: &str) -> anyhow::Result<i64> {
        self.conn
            .prepare_cached(
                "SELECT coalesce(sum(cost_micros), 0) FROM llm_calls WHERE order_id = ?1",
            )?
            .query_row([order_id], |row| row.get(0))
            .with_context(|| format!("cannot read the Claude cost of order {order_id}"))
    }
}

/// SQLite integers are signed; counts past i64::MAX do not occur, and are pinned if they did.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
