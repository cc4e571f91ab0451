//! The scores other companies' reports were written with, for the peer comparison: only
//! orders whose answers and report are still kept (an erased or forgotten order is no one's
//! peer), never the order being compared.

use anyhow::Context;
use rusqlite::params;
use serde::Deserialize;

use super::Db;
use crate::method::Scores;

/// One kept report's scores, with the company's industry and size.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerRow {
    pub industry: String,
    pub employees: String,
    pub scores: Scores,
}

/// The part of the stored answers a comparison reads (the rest, free text included, is
/// skipped unread).
#[derive(Deserialize)]
struct Profile {
    industry: String,
    employees: String,
}

/// The part of a stored report a comparison reads.
#[derive(Deserialize)]
struct Scored {
    scores: Scores,
}

impl Db {
    /// The scores of every kept report but `except`'s. A report or answers that do not read
    /// (one stored by an older compass, say) are left out: JSON is only ever taken apart here,
    /// never in SQL, so one odd row cannot fail the query.
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
                let profile: Profile = serde_json::from_str(&questionnaire).ok()?;
                let report: Scored = serde_json::from_slice(&report).ok()?;
                Some(PeerRow {
                    industry: profile.industry,
                    employees: profile.employees,
                    scores: report.scores,
                })
            })
            .collect())
    }
}
