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
    /// The scores of every kept report but `except`'s. A report or answers that do not read
    /// as JSON are left out (JSON is only ever taken apart here, never in SQL, so one odd row
    /// cannot fail the query).
    pub fn peer_scores(&self, except: &str) -> anyhow::Result<Vec<PeerRow>> {
        let rows: Vec<(String, Vec<u8>)> = self
            .conn
            .prepare_cached(
                "SELECT o.questionnaire, a.content \
                 FROM orders o JOIN artifacts a ON a.order_id = o.id \
                 WHERE a.kind = 'json' AND o.erased_at IS NULL AND o.id <> ?1",
            )?
            .query_map(params![except], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()
            .context("cannot read the peers' scores")?;
        Ok(rows
            .into_iter()
            .filter_map(|(questionnaire, report)| {
                let answers: serde_json::Value = serde_json::from_str(&questionnaire).ok()?;
                let report: serde_json::Value = serde_json::from_slice(&report).ok()?;
                Some(PeerRow {
                    industry: answers["industry"].as_str()?.to_owned(),
                    employees: answers["employees"].as_str()?.to_owned(),
                    scores: report.get("scores")?.to_string(),
                })
            })
            .collect())
    }
}
