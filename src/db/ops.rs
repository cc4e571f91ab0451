//! The operator's view of the whole file: backups, the money audit and the business figures.

use std::path::Path;

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::{Db, to_db};

/// What a backup file holds, read back from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackupInfo {
    pub schema_version: i32,
    pub orders: i64,
    pub bytes: u64,
}

/// A broken money invariant, with the order it concerns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which rule: `owed_without_refund`, `paid_not_delivered`, `email_twice`, ...
    pub rule: &'static str,
    pub order_id: Option<String>,
    pub detail: String,
}

/// The business in figures, over a period.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    pub orders: i64,
    pub paid: i64,
    /// Paid of created, 0 to 1.
    pub conversion: f64,
    pub by_status: Vec<(String, i64)>,
    pub revenue_cents: i64,
    pub refunded_cents: i64,
    pub refunded_orders: i64,
    /// Orders with any refund, of paid orders.
    pub refund_rate: f64,
    /// Paid to completed (delivered to the customer), in seconds: with the time the report
    /// waited for the consultant's review.
    pub delivery_p50_secs: Option<i64>,
    pub delivery_p95_secs: Option<i64>,
    /// Of delivered reports that waited for review, how long they waited, in seconds.
    pub review_p50_secs: Option<i64>,
    pub review_p95_secs: Option<i64>,
    pub claude_cost_micros: i64,
    pub completed: i64,
    /// Claude cost per completed order, in millionths of a dollar.
    pub claude_cost_per_order_micros: Option<i64>,
    /// Revenue less refunds less Claude's cost (cents; Stripe's fees are not known here).
    pub margin_cents: i64,
    pub currency: String,
}

impl Db {
    /// Writes a consistent copy of the database to `out` (which must not exist) while other
    /// connections go on reading and writing: `VACUUM INTO` reads one snapshot.
    pub fn backup_to(&self, out: &Path) -> anyhow::Result<()> {
        if out.exists() {
            bail!("{} exists already: choose a new file", out.display());
        }
        let target = out
            .to_str()
            .with_context(|| format!("{} is not a UTF-8 path", out.display()))?;
        self.conn
            .execute("VACUUM INTO ?1", [target])
            .with_context(|| format!("cannot write the backup {}", out.display()))?;
        Ok(())
    }

    /// SQLite's quick integrity check of the open database; the number of orders if it passes.
    pub fn integrity(&self) -> anyhow::Result<i64> {
        let verdict: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            .context("cannot check the database")?;
        if verdict != "ok" {
            bail!("database {} is damaged: {verdict}", self.name());
        }
        self.conn
            .query_row("SELECT count(*) FROM orders", [], |row| row.get(0))
            .context("cannot count the orders")
    }

    /// Checks a backup (or any copy) read-only: SQLite's integrity check, and that it is a
    /// compass database this binary can run or migrate.
    pub fn inspect_backup(path: &Path) -> anyhow::Result<BackupInfo> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open {}", path.display()))?;
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .with_context(|| format!("cannot read {}", path.display()))?;
        if integrity != "ok" {
            bail!("{} is damaged: {integrity}", path.display());
        }
        let schema_version: Option<i32> = conn
            .query_row(
                "SELECT MAX(version) FROM refinery_schema_history",
                [],
                |row| row.get(0),
            )
            .with_context(|| format!("{} is not a compass database", path.display()))?;
        let schema_version =
            schema_version.with_context(|| format!("{} has no schema", path.display()))?;
        if schema_version > super::latest_version() {
            bail!(
                "{} is at schema version {schema_version}, newer than this compass knows",
                path.display()
            );
        }
        let orders = conn
            .query_row("SELECT count(*) FROM orders", [], |row| row.get(0))
            .with_context(|| format!("{} has no orders table", path.display()))?;
        let bytes = std::fs::metadata(path)?.len();
        Ok(BackupInfo {
            schema_version,
            orders,
            bytes,
        })
    }

    /// Every broken money invariant. `now` decides what counts as late.
    pub fn audit_violations(&self, now: OffsetDateTime) -> anyhow::Result<Vec<Violation>> {
        let day_ago = to_db(now - time::Duration::days(1));
        let rules: [(&'static str, &str, String); 7] = [
            (
                "owed_without_refund",
                "SELECT o.id, o.status || ': ' || (o.amount_cents - o.refunded_cents) || ' cents owed' \
                 FROM orders o WHERE o.status IN ('failed', 'refunding') \
                 AND o.refunded_cents < o.amount_cents AND NOT EXISTS \
                 (SELECT 1 FROM refunds r WHERE r.order_id = o.id AND r.status = 'pending')",
                String::new(),
            ),
            (
                "paid_not_delivered",
                "SELECT id, status || ' since ' || datetime(paid_at, 'unixepoch') FROM orders \
                 WHERE status IN ('paid', 'generating') AND paid_at < ?1",
                day_ago.to_string(),
            ),
            (
                "paid_without_payment",
                "SELECT o.id, o.status FROM orders o WHERE o.paid_at IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM payments p WHERE p.order_id = o.id AND p.status = 'succeeded')",
                String::new(),
            ),
            (
                "completed_without_report",
                "SELECT o.id, (SELECT count(*) FROM artifacts a WHERE a.order_id = o.id) || ' of 3 files' \
                 FROM orders o WHERE o.completed_at IS NOT NULL AND o.erased_at IS NULL \
                 AND (SELECT count(*) FROM artifacts a WHERE a.order_id = o.id) < 3",
                String::new(),
            ),
            (
                "refunds_exceed_record",
                "SELECT o.id, (SELECT sum(amount_cents) FROM refunds r WHERE r.order_id = o.id \
                 AND r.status = 'succeeded') || ' cents in refunds, ' || o.refunded_cents || ' recorded' \
                 FROM orders o WHERE (SELECT coalesce(sum(amount_cents), 0) FROM refunds r \
                 WHERE r.order_id = o.id AND r.status = 'succeeded') > o.refunded_cents",
                String::new(),
            ),
            (
                "refund_without_stripe_id",
                "SELECT order_id, 'refund ' || number || ' succeeded without a Stripe id' FROM refunds \
                 WHERE status = 'succeeded' AND stripe_refund_id IS NULL",
                String::new(),
            ),
            (
                "email_twice",
                "SELECT order_id, kind || ' sent ' || count(*) || ' times' FROM emails \
                 WHERE resend_of IS NULL AND fact IS NULL AND order_id IS NOT NULL AND status = 'sent' \
                 GROUP BY order_id, kind HAVING count(*) > 1",
                String::new(),
            ),
        ];
        let mut found = Vec::new();
        for (rule, sql, arg) in rules {
            let mut stmt = self.conn.prepare(sql)?;
            let map = |row: &rusqlite::Row<'_>| {
                Ok(Violation {
                    rule,
                    order_id: row.get(0)?,
                    detail: row.get(1)?,
                })
            };
            let rows: Vec<Violation> = if sql.contains("?1") {
                stmt.query_map([arg], map)?.collect::<Result<_, _>>()?
            } else {
                stmt.query_map([], map)?.collect::<Result<_, _>>()?
            };
            found.extend(rows);
        }
        Ok(found)
    }

    /// The business since `since`: orders created then, and what became of them.
    pub fn stats(&self, since: OffsetDateTime) -> anyhow::Result<Stats> {
        let since = to_db(since);
        let mut stats = Stats::default();
        let (orders, paid, revenue, refunded, refunded_orders, completed): (
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = self
            .conn
            .query_row(
                "SELECT count(*), count(paid_at), \
                 coalesce(sum(CASE WHEN paid_at IS NOT NULL THEN amount_cents END), 0), \
                 coalesce(sum(refunded_cents), 0), count(*) FILTER (WHERE refunded_cents > 0), \
                 count(completed_at) FROM orders WHERE created_at >= ?1",
                [since],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                    ))
                },
            )
            .context("cannot read the orders' figures")?;
        stats.orders = orders;
        stats.paid = paid;
        stats.revenue_cents = revenue;
        stats.refunded_cents = refunded;
        stats.refunded_orders = refunded_orders;
        stats.completed = completed;
        stats.conversion = if orders > 0 {
            paid as f64 / orders as f64
        } else {
            0.0
        };
        stats.refund_rate = if paid > 0 {
            refunded_orders as f64 / paid as f64
        } else {
            0.0
        };
        let mut stmt = self.conn.prepare(
            "SELECT status, count(*) FROM orders WHERE created_at >= ?1 GROUP BY status ORDER BY count(*) DESC, status",
        )?;
        stats.by_status = stmt
            .query_map([since], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let sorted = |sql: &str| -> anyhow::Result<Vec<i64>> {
            let mut stmt = self.conn.prepare(sql)?;
            let values = stmt
                .query_map([since], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(values)
        };
        let at = |values: &[i64], q: f64| {
            (!values.is_empty()).then(|| values[((values.len() - 1) as f64 * q).round() as usize])
        };
        let delivery = sorted(
            "SELECT completed_at - paid_at FROM orders WHERE created_at >= ?1 \
             AND completed_at IS NOT NULL AND paid_at IS NOT NULL ORDER BY 1",
        )?;
        stats.delivery_p50_secs = at(&delivery, 0.5);
        stats.delivery_p95_secs = at(&delivery, 0.95);
        let review = sorted(
            "SELECT reviewed_secs FROM orders WHERE created_at >= ?1 \
             AND completed_at IS NOT NULL AND reviewed_secs > 0 ORDER BY 1",
        )?;
        stats.review_p50_secs = at(&review, 0.5);
        stats.review_p95_secs = at(&review, 0.95);
        stats.claude_cost_micros = self.conn.query_row(
            "SELECT coalesce(sum(l.cost_micros), 0) FROM llm_calls l \
             JOIN orders o ON o.id = l.order_id WHERE o.created_at >= ?1",
            [since],
            |row| row.get(0),
        )?;
        stats.claude_cost_per_order_micros =
            (completed > 0).then(|| stats.claude_cost_micros / completed);
        stats.margin_cents = revenue - refunded - (stats.claude_cost_micros + 5_000) / 10_000;
        stats.currency = self
            .conn
            .query_row(
                "SELECT currency FROM orders WHERE created_at >= ?1 GROUP BY currency \
                 ORDER BY count(*) DESC LIMIT 1",
                params![since],
                |row| row.get(0),
            )
            .unwrap_or_else(|_| "usd".to_owned());
        Ok(stats)
    }
}

/// What `/metrics` reports from the store: it covers `process`'s work as well as `serve`'s,
/// and survives restarts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreCounts {
    /// (status, orders)
    pub orders: Vec<(String, i64)>,
    /// (kind, status, emails)
    pub emails: Vec<(String, String, i64)>,
    /// (type, handled|failing|pending, events)
    pub stripe_events: Vec<(String, String, i64)>,
    /// (outcome, calls, input tokens, output tokens, cost in micro-dollars, milliseconds)
    pub claude_calls: Vec<(String, i64, i64, i64, i64, i64)>,
}

impl Db {
    /// The counts `/metrics` exposes.
    pub fn store_counts(&self) -> anyhow::Result<StoreCounts> {
        let pairs = |sql: &str| -> anyhow::Result<Vec<(String, i64)>> {
            let mut stmt = self.conn.prepare_cached(sql)?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        let triples = |sql: &str| -> anyhow::Result<Vec<(String, String, i64)>> {
            let mut stmt = self.conn.prepare_cached(sql)?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT outcome, count(*), sum(input_tokens), sum(output_tokens), sum(cost_micros), \
             sum(duration_ms) FROM llm_calls GROUP BY outcome ORDER BY outcome",
        )?;
        let claude_calls = stmt
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let counts: anyhow::Result<StoreCounts> = Ok(StoreCounts {
            orders: pairs("SELECT status, count(*) FROM orders GROUP BY status ORDER BY status")?,
            emails: triples(
                "SELECT kind, status, count(*) FROM emails GROUP BY kind, status ORDER BY 1, 2",
            )?,
            stripe_events: triples(
                "SELECT type, CASE WHEN handled_at IS NOT NULL THEN 'handled' \
                 WHEN attempts > 0 THEN 'failing' ELSE 'pending' END, count(*) \
                 FROM stripe_events GROUP BY 1, 2 ORDER BY 1, 2",
            )?,
            claude_calls,
        });
        counts.context("cannot count for the metrics")
    }
}
