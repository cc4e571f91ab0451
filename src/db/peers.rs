//! The scores other companies' reports were written with, for the peer comparison: only
//! orders whose answers and report are still kept (an erased or forgotten order is no one's
//! peer), never the order being compared.

use anyhow::Context;
use rusqlite::params;

use super::Db;

/// One delivered report's scores, with the company's industry and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRow {
    pub industry: String,
    pub employees: String,
    /// The report's `scores`, as JSON.
    pub scores: String,
}

impl Db {
    /// The scores of every kept report but `except`'s.
    pub fn peer_scores(&self, except: &str) -> anyhow::Result<Vec<PeerRow>> {
        self.conn
            .prepare_cached(
                "SELECT json_extract(o.questionnaire, '$.industry'), \
                 json_extract(o.questionnaire, '$.employees'), \
                 json_extract(CAST(a.content AS TEXT), '$.scores') \
                 FROM orders o JOIN artifacts a ON a.order_id = o.id AND a.kind = 'json' \
                 WHERE o.erased_at IS NULL AND o.id <> ?1 \
                 AND json_extract(o.questionnaire, '$.industry') IS NOT NULL \
                 AND json_extract(CAST(a.content AS TEXT), '$.scores') IS NOT NULL",
            )?
            .query_map(params![except], |row| {
                Ok(PeerRow {
                    industry: row.get(0)?,
                    employees: row.get(1)?,
                    scores: row.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()
            .context("cannot read the peers' scores")
    }
}
