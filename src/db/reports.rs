//! A report's stored files, and the consultant's review of a report before it goes out.

use anyhow::Context;
use rusqlite::params;
use sha2::Digest as _;
use time::OffsetDateTime;

use super::orders::apply_in;
use super::{Db, exec, from_db, to_db};
use crate::order::{Event, InvalidTransition, Policy, Status, Step};

/// A file of a finished report.
#[derive(Clone, Copy, Debug)]
pub struct Artifact<'a> {
    /// `html`, `pdf` or `json`.
    pub kind: &'a str,
    pub content: &'a [u8],
}

/// Stores (or replaces) order `id`'s report files and keeps its overall score beside the order,
/// inside the caller's transaction.
pub(super) fn store_in(
    tx: &rusqlite::Connection,
    id: &str,
    artifacts: &[Artifact<'_>],
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    for artifact in artifacts {
        let digest = sha2::Sha256::digest(artifact.content);
        exec(
            tx,
            "INSERT INTO artifacts (order_id, kind, content, sha256, size, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (order_id, kind) DO UPDATE \
             SET content = excluded.content, sha256 = excluded.sha256, \
             size = excluded.size, created_at = excluded.created_at",
            params![
                id,
                artifact.kind,
                artifact.content,
                hex::encode(digest),
                artifact.content.len() as i64,
                to_db(now)
            ],
        )
        .with_context(|| format!("cannot store the {} of order {id}", artifact.kind))?;
    }
    exec(
        tx,
        "UPDATE orders SET score = (SELECT json_extract(CAST(content AS TEXT), \
         '$.scores.overall') FROM artifacts WHERE order_id = ?1 AND kind = 'json') \
         WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

impl Db {
    /// Stores a finished report's artifacts and applies `Generated` in one transaction: the
    /// order is `completed` (and the "report ready" email queued), or waits for review, only
    /// with its report stored. If the run lost its lease, nothing is written.
    pub fn complete(
        &mut self,
        id: &str,
        owner: &str,
        artifacts: &[Artifact<'_>],
        policy: &Policy,
        now: OffsetDateTime,
    ) -> anyhow::Result<Result<Step, InvalidTransition>> {
        let event = Event::Generated {
            owner: owner.to_owned(),
        };
        self.write(|tx| {
            let step = apply_in(tx, id, &event, policy, "process", now)?;
            if step.is_ok() {
                store_in(tx, id, artifacts, now)?;
            }
            Ok(step)
        })
    }

    /// Stores the consultant's edit of the report waiting for review and records it
    /// (`ReviewEdited`, by `actor`) in one transaction; nothing is written if the order no
    /// longer waits.
    pub fn store_edited_report(
        &mut self,
        id: &str,
        artifacts: &[Artifact<'_>],
        policy: &Policy,
        actor: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<Result<Step, InvalidTransition>> {
        self.write(|tx| {
            let step = apply_in(tx, id, &Event::ReviewEdited, policy, actor, now)?;
            if step.is_ok() {
                store_in(tx, id, artifacts, now)?;
            }
            Ok(step)
        })
    }

    /// The orders whose report waits for review, with since when: the longest waiting first.
    pub fn waiting_for_review(&self) -> anyhow::Result<Vec<(String, OffsetDateTime)>> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, review_since FROM orders WHERE status = ?1 AND review_since IS NOT NULL \
             ORDER BY review_since, id",
        )?;
        let rows = statement.query_map([Status::AwaitingReview.as_str()], |row| {
            Ok((row.get::<_, String>(0)?, from_db(row.get(1)?)?))
        })?;
        rows.collect::<Result<_, _>>()
            .context("cannot list the reports waiting for review")
    }
}
