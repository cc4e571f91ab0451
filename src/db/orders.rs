//! Orders and their state: creating one, loading it, applying `order::step` with everything the
//! step writes (timeline, emails, refunds, audit) in one transaction, and the work queue.

use anyhow::{Context, bail};
use rusqlite::{OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::{
    Db, conversion_error, exec, from_db, from_db_opt, new_id, new_token, normalize_email,
    parse_col, to_db,
};
use crate::order::{
    self, Action, Event, InvalidTransition, Lease, PendingRefund, Policy, RefundOutcome, Status,
    Step, Tier,
};

/// What the intake form hands over to create an order.
#[derive(Clone, Debug)]
pub struct NewOrder {
    /// The contact's email as typed; stored normalised.
    pub email: String,
    /// The contact's name.
    pub name: String,
    /// The company the report is about.
    pub company: String,
    /// What was bought.
    pub tier: Tier,
    /// The price from configuration, in the currency's smallest unit.
    pub amount_cents: i64,
    /// Lower-case ISO 4217 code.
    pub currency: String,
    /// The validated answers, as JSON.
    pub questionnaire: serde_json::Value,
    /// The method it is sold with, kept in the store (`Db::keep_method`).
    pub method_version: String,
    /// The terms of the sale, when invoices are issued: `amount_cents` is their gross.
    pub terms: Option<crate::invoice::Terms>,
}

/// An order as stored: its identity beside the lifecycle that `order::step` works on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredOrder {
    /// UUID v7.
    pub id: String,
    /// The customer's key to the status page.
    pub status_token: String,
    /// What was bought.
    pub tier: Tier,
    /// The company the report is about.
    pub company: String,
    /// The delivered report's overall score, 0-100.
    pub score: Option<u8>,
    /// Whether its answers and report were erased (forgotten, or past retention).
    pub erased: bool,
    /// The method it was sold with; `None` for orders from before versions were kept, which
    /// were all the built-in method's.
    pub method_version: Option<String>,
    /// The lifecycle state.
    pub order: order::Order,
}

const ORDER_COLUMNS: &str = "o.id, o.status_token, o.tier, o.status, o.amount_cents, o.currency, \
     o.attempts, o.next_attempt_at, o.lease_owner, o.lease_expires_at, o.paid_at, \
     o.completed_at, o.refunded_cents, o.downloads, o.disputed_from, o.last_error, \
     (SELECT COALESCE(MAX(r.number), 0) FROM refunds r WHERE r.order_id = o.id), o.company, \
     o.score, o.erased_at IS NOT NULL, o.lease_tried, o.rescues, o.method_version, \
     o.review_since, o.reviewed_secs, o.review_note";

fn stored_order(row: &Row<'_>) -> rusqlite::Result<StoredOrder> {
    let lease = match (row.get::<_, Option<String>>(8)?, row.get(9)?) {
        (Some(owner), Some(expires_at)) => Some(Lease {
            owner,
            expires_at: from_db(expires_at)?,
            tried: row.get(20)?,
        }),
        _ => None,
    };
    Ok(StoredOrder {
        id: row.get(0)?,
        status_token: row.get(1)?,
        tier: parse_col(row, 2)?,
        company: row.get(17)?,
        score: row.get(18)?,
        erased: row.get(19)?,
        method_version: row.get(22)?,
        order: order::Order {
            status: parse_col(row, 3)?,
            amount_cents: row.get(4)?,
            currency: row.get(5)?,
            attempts: row.get(6)?,
            rescues: row.get(21)?,
            next_attempt_at: from_db_opt(row.get(7)?)?,
            lease,
            paid_at: from_db_opt(row.get(10)?)?,
            completed_at: from_db_opt(row.get(11)?)?,
            refunded_cents: row.get(12)?,
            pending_refunds: Vec::new(),
            refunds_issued: row.get(16)?,
            downloads: row.get(13)?,
            disputed_from: row
                .get::<_, Option<String>>(14)?
                .map(|s| s.parse().map_err(|e| conversion_error(14, e)))
                .transpose()?,
            last_error: row.get(15)?,
            review_since: from_db_opt(row.get(23)?)?,
            reviewed_for: time::Duration::seconds(row.get(24)?),
            review_note: row.get(25)?,
        },
    })
}

impl Db {
    /// Creates the customer (or updates their name) and a `pending_payment` order for them.
    pub fn create_order(
        &mut self,
        new: &NewOrder,
        now: OffsetDateTime,
    ) -> anyhow::Result<StoredOrder> {
        let id = new_id(now);
        let token = new_token()?;
        let email = normalize_email(&new.email);
        let at = to_db(now);
        self.write(|tx| {
        let customer_id: i64 = tx
            .prepare_cached(
                "INSERT INTO customers (email, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3) \
                 ON CONFLICT (email) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at \
                 RETURNING id",
            )?
            .query_row(
                params![email, new.name, at],
                |row| row.get(0),
            )
            .context("cannot store the customer")?;
        exec(
            tx,
            "INSERT INTO orders (id, customer_id, company, tier, amount_cents, currency, status, \
             questionnaire, status_token, created_at, updated_at, method_version) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11)",
            params![
                id,
                customer_id,
                new.company,
                new.tier.as_str(),
                new.amount_cents,
                new.currency.to_ascii_lowercase(),
                Status::PendingPayment.as_str(),
                new.questionnaire.to_string(),
                token,
                at,
                new.method_version
            ],
        )
        .context("cannot store the order")?;
        if let Some(terms) = &new.terms {
            anyhow::ensure!(
                terms.sale.gross_cents == new.amount_cents,
                "the order's amount is not its terms' gross"
            );
            super::invoices::store_terms_in(tx, &id, terms)?;
        }
        insert_event(
            tx,
            &id,
            now,
            "created",
            None,
            Status::PendingPayment,
            "web",
            &serde_json::json!({
                "tier": new.tier,
                "amount_cents": new.amount_cents,
                // As people read it; the whole version is the order's `method_version`.
                "method": new.method_version.get(..12).unwrap_or(&new.method_version),
            }),
        )?;
        load(tx, &id)?.context("the order just stored is missing")
        })
    }

    /// The order with this id, if there is one.
    pub fn order(&self, id: &str) -> anyhow::Result<Option<StoredOrder>> {
        load(&self.conn, id)
    }

    /// The order a status token opens, in one lookup (the customer's pages ask on every view).
    pub fn order_by_token(&self, token: &str) -> anyhow::Result<Option<StoredOrder>> {
        load_where(&self.conn, "o.status_token", token)
    }

    /// Resolves what an operator typed: a whole id or a prefix of at least 8 characters that
    /// names one order.
    pub fn resolve_order_id(&self, typed: &str) -> anyhow::Result<String> {
        let typed = typed.trim().to_ascii_lowercase();
        if typed.len() < 8 || !typed.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            bail!("no order with id {typed}");
        }
        let mut stmt = self.conn.prepare(
            "SELECT id FROM orders WHERE id >= ?1 AND id < ?1 || 'g' ORDER BY id LIMIT 2",
        )?;
        let ids: Vec<String> = stmt
            .query_map([&typed], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        match ids.as_slice() {
            [one] => Ok(one.clone()),
            [] => bail!("no order with id {typed}"),
            _ => bail!("{typed} names more than one order: type more of the id"),
        }
    }

    /// Applies `event` to the order through `order::step` and stores the outcome in one
    /// transaction. A rejected event is returned as data and changes nothing.
    pub fn apply(
        &mut self,
        id: &str,
        event: &Event,
        policy: &Policy,
        actor: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<Result<Step, InvalidTransition>> {
        self.write(|tx| apply_in(tx, id, event, policy, actor, now))
    }

    /// Applies `event` (a `DisputeOpened`) unless the order's timeline already holds the
    /// opening of the same dispute, in one transaction: two handlers of one dispute's events
    /// (its `created` and a `closed` that overtook it, which opens it too) open it once.
    /// `None` when it was opened already.
    pub fn open_dispute(
        &mut self,
        id: &str,
        dispute: &str,
        event: &Event,
        policy: &Policy,
        now: OffsetDateTime,
    ) -> anyhow::Result<Option<Result<Step, InvalidTransition>>> {
        self.write(|tx| {
            let opened: bool = tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM order_events WHERE order_id = ?1 \
                     AND kind = 'dispute_opened' AND json_extract(detail, '$.dispute') = ?2)",
                )?
                .query_row(params![id, dispute], |row| row.get(0))?;
            if opened {
                return Ok(None);
            }
            apply_in(tx, id, event, policy, "stripe", now).map(Some)
        })
    }

    /// Claims the oldest due order for `owner` (unique to this claim) until `now + lease`, in
    /// one transaction: the order and its claim, or `None` when nothing is due.
    pub fn claim_next(
        &mut self,
        owner: &str,
        lease: time::Duration,
        policy: &Policy,
        now: OffsetDateTime,
    ) -> anyhow::Result<Option<StoredOrder>> {
        self.write(|tx| {
            for id in due_in(tx, now, 1)? {
                let Some(stored) = load(tx, &id)? else {
                    continue;
                };
                let event = Event::Claim {
                    owner: owner.to_owned(),
                    lease_until: now + lease,
                };
                if let Ok(step) = apply_in(tx, &id, &event, policy, "process", now)? {
                    return Ok(Some(StoredOrder {
                        order: step.order,
                        ..stored
                    }));
                }
            }
            Ok(None)
        })
    }

    /// Orders `process` would claim now, oldest due first: for `--dry-run`.
    pub fn due_orders(&self, now: OffsetDateTime, limit: u32) -> anyhow::Result<Vec<String>> {
        due_in(&self.conn, now, limit)
    }

    /// Orders whose lease ran out: their run died or hangs.
    pub fn expired_leases(&self, now: OffsetDateTime) -> anyhow::Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM orders WHERE status = 'generating' AND lease_expires_at <= ?1",
        )?;
        let rows = stmt.query_map([to_db(now)], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()
            .context("cannot read expired leases")
    }

    /// The answers an order was placed with.
    pub fn questionnaire_of(&self, id: &str) -> anyhow::Result<serde_json::Value> {
        let text: String = self
            .conn
            .prepare_cached("SELECT questionnaire FROM orders WHERE id = ?1")?
            .query_row([id], |row| row.get(0))
            .with_context(|| format!("cannot read the answers of order {id}"))?;
        serde_json::from_str(&text)
            .with_context(|| format!("the answers of order {id} are not JSON"))
    }

    /// A stored artifact of an order (`html`, `pdf`, `json`).
    pub fn artifact(&self, id: &str, kind: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.conn
            .prepare_cached("SELECT content FROM artifacts WHERE order_id = ?1 AND kind = ?2")?
            .query_row([id, kind], |row| row.get(0))
            .optional()
            .with_context(|| format!("cannot read the {kind} of order {id}"))
    }

    /// Counts a download of the report (it feeds the self-service refund rule).
    pub fn record_download(&mut self, order_id: &str, now: OffsetDateTime) -> anyhow::Result<()> {
        self.execute(
            "UPDATE orders SET downloads = downloads + 1, last_downloaded_at = ?2 WHERE id = ?1",
            params![order_id, to_db(now)],
        )
        .with_context(|| format!("cannot count a download of order {order_id}"))?;
        Ok(())
    }
}

fn load(conn: &rusqlite::Connection, id: &str) -> anyhow::Result<Option<StoredOrder>> {
    load_where(conn, "o.id", id).with_context(|| format!("cannot read order {id}"))
}

/// The order whose `column` is `key` (its id, or its status token), with its pending refunds.
/// Errors never name the key: a status token is a secret.
fn load_where(
    conn: &rusqlite::Connection,
    column: &str,
    key: &str,
) -> anyhow::Result<Option<StoredOrder>> {
    let stored = conn
        .prepare_cached(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders o WHERE {column} = ?1"
        ))?
        .query_row([key], stored_order)
        .optional()
        .context("cannot read an order")?;
    let Some(mut stored) = stored else {
        return Ok(None);
    };
    let id = stored.id.clone();
    let mut pending = conn.prepare_cached(
        "SELECT number, amount_cents FROM refunds \
         WHERE order_id = ?1 AND status = 'pending' ORDER BY number",
    )?;
    stored.order.pending_refunds = pending
        .query_map([&id], |row| {
            Ok(PendingRefund {
                number: row.get(0)?,
                amount_cents: row.get(1)?,
            })
        })?
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read the pending refunds of order {id}"))?;
    Ok(Some(stored))
}

/// Paid orders whose next attempt is due, oldest due first.
fn due_in(
    conn: &rusqlite::Connection,
    now: OffsetDateTime,
    limit: u32,
) -> anyhow::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM orders WHERE status = 'paid' AND \
         (next_attempt_at IS NULL OR next_attempt_at <= ?1) \
         ORDER BY next_attempt_at, created_at LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![to_db(now), limit], |row| row.get(0))?;
    rows.collect::<Result<_, _>>()
        .context("cannot read the due orders")
}

/// `apply` inside a transaction the caller holds.
pub(super) fn apply_in(
    tx: &rusqlite::Connection,
    id: &str,
    event: &Event,
    policy: &Policy,
    actor: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Result<Step, InvalidTransition>> {
    let Some(stored) = load(tx, id)? else {
        bail!("no order with id {id}");
    };
    let step = match order::step(&stored.order, event, policy, now) {
        Ok(step) => step,
        // Nothing is written for a rejected event.
        Err(rejected) => return Ok(Err(rejected)),
    };
    record_step(tx, &stored, event, &step, actor, now)
        .with_context(|| format!("cannot store {} for order {id}", event.name()))?;
    Ok(Ok(step))
}

/// Stores a step: the order's new state, the timeline row and the rows its actions ask for.
fn record_step(
    tx: &rusqlite::Connection,
    before: &StoredOrder,
    event: &Event,
    step: &Step,
    actor: &str,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let id = &before.id;
    let next = &step.order;
    let at = to_db(now);
    exec(
        tx,
        "UPDATE orders SET status = ?2, attempts = ?3, next_attempt_at = ?4, lease_owner = ?5, \
         lease_expires_at = ?6, paid_at = ?7, completed_at = ?8, refunded_cents = ?9, \
         downloads = ?10, disputed_from = ?11, last_error = ?12, updated_at = ?13, \
         lease_tried = ?14, rescues = ?15, review_since = ?16, reviewed_secs = ?17, \
         review_note = ?18 WHERE id = ?1",
        params![
            id,
            next.status.as_str(),
            next.attempts,
            next.next_attempt_at.map(to_db),
            next.lease.as_ref().map(|l| l.owner.as_str()),
            next.lease.as_ref().map(|l| to_db(l.expires_at)),
            next.paid_at.map(to_db),
            next.completed_at.map(to_db),
            next.refunded_cents,
            next.downloads,
            next.disputed_from.map(Status::as_str),
            next.last_error,
            at,
            next.lease.as_ref().is_some_and(|l| l.tried),
            next.rescues,
            next.review_since.map(to_db),
            next.reviewed_for.whole_seconds(),
            next.review_note,
        ],
    )?;
    let detail = match serde_json::to_value(event).context("cannot encode the event")? {
        serde_json::Value::Null => serde_json::json!({}),
        detail => detail,
    };
    insert_event(
        tx,
        id,
        now,
        event.name(),
        Some(before.order.status),
        next.status,
        actor,
        &detail,
    )?;
    // The step's timeline row names the fact behind each alert it raises: a step is stored
    // once, so its alerts are queued once.
    let step_row = tx.last_insert_rowid();
    let mut alerts = 0;
    for action in &step.actions {
        match action {
            Action::SendEmail(kind) => {
                exec(
                    tx,
                    "INSERT INTO emails (order_id, customer_id, kind, recipient, next_attempt_at, \
                     created_at, updated_at) \
                     SELECT o.id, o.customer_id, ?2, c.email, ?3, ?3, ?3 \
                     FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = ?1 \
                     ON CONFLICT (order_id, kind) WHERE resend_of IS NULL AND fact IS NULL DO NOTHING",
                    params![id, kind.as_str(), at],
                )?;
            }
            Action::IssueRefund {
                number,
                amount_cents,
                source,
                reason,
            } => {
                // Derived from our ids only: a retried call can never become a second refund,
                // and a restored backup can never reuse a key (order ids are never reused).
                let key = format!("compass-refund-{id}-{number}");
                exec(
                    tx,
                    "INSERT INTO refunds (id, order_id, number, idempotency_key, amount_cents, \
                     currency, source, status, reason, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?9, ?9)",
                    params![
                        new_id(now),
                        id,
                        number,
                        key,
                        amount_cents,
                        next.currency,
                        source.as_str(),
                        reason,
                        at
                    ],
                )?;
            }
            Action::SettleRefund { number, outcome } => {
                let error = match outcome {
                    RefundOutcome::Failed(error) => Some(error.as_str()),
                    RefundOutcome::Succeeded | RefundOutcome::Canceled => None,
                };
                exec(
                    tx,
                    "UPDATE refunds SET status = ?3, last_error = COALESCE(?4, last_error), \
                     updated_at = ?5 WHERE order_id = ?1 AND number = ?2 AND status = 'pending'",
                    params![id, number, outcome.as_str(), error, at],
                )?;
            }
            Action::IssueInvoice => {
                super::invoices::issue_invoice_in(tx, id, &next.currency, now)?;
            }
            Action::IssueCreditNote {
                refund,
                amount_cents,
            } => {
                super::invoices::issue_credit_note_in(
                    tx,
                    id,
                    *refund,
                    *amount_cents,
                    &next.currency,
                    now,
                )?;
            }
            Action::AlertOperator(alert) => {
                alerts += 1;
                let fact = match &alert.fact {
                    Some(fact) => format!("order {id}: {fact}"),
                    None => format!("order {id} step {step_row}#{alerts}"),
                };
                let message = alert.message.replace("{order}", id);
                super::mail::alert_in(tx, &fact, Some(id), &message, now)?;
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn insert_event(
    tx: &rusqlite::Connection,
    order_id: &str,
    now: OffsetDateTime,
    kind: &str,
    from: Option<Status>,
    to: Status,
    actor: &str,
    detail: &serde_json::Value,
) -> anyhow::Result<()> {
    exec(
        tx,
        "INSERT INTO order_events (order_id, at, kind, from_status, to_status, actor, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            order_id,
            to_db(now),
            kind,
            from.map(Status::as_str),
            to.as_str(),
            actor,
            detail.to_string()
        ],
    )
    .with_context(|| format!("cannot append {kind} to the timeline of order {order_id}"))?;
    Ok(())
}
