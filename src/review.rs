//! The consultant's review (`[delivery] review = true`): a written report waits in
//! `awaiting_review` until the operator approves it, has it written again with a note, or edits
//! it. The decisions are events of the order (`order::step`); this holds what surrounds them:
//! the edited words checked as the model's are and the report rendered again, and the reminders
//! about reports that have waited long.

use anyhow::{Context, bail};
use time::OffsetDateTime;

use crate::app::App;
use crate::db::{Artifact, StoredOrder};
use crate::order::{Event, InvalidTransition, Status};
use crate::report::{self, Figures, Report, Signature};

/// What the actor is called in the timeline and the audit log.
pub const OPERATOR: &str = "operator";

/// The report of order `id` as stored (`report.json`), with the order.
pub fn stored_report(app: &App, id: &str) -> anyhow::Result<(Report, StoredOrder)> {
    let order = app
        .db
        .order(id)?
        .with_context(|| format!("no order {id}"))?;
    let json = app
        .db
        .artifact(id, "json")?
        .with_context(|| format!("order {id} has no report ({})", order.order.status))?;
    let report = serde_json::from_slice(&json).context("the stored report does not read")?;
    Ok((report, order))
}

/// Replaces the words of order `id`'s report waiting for review with `text` (the JSON of
/// `report::Written`): checked as the model's answer is (schema, counts, lengths, and no number
/// compass did not compute), rendered again and stored with a `review_edited` event in one
/// transaction. The problems, one a line, when it does not hold; nothing changes then.
pub fn store_edit(app: &mut App, id: &str, text: &str, now: OffsetDateTime) -> anyhow::Result<()> {
    let (report, order) = stored_report(app, id)?;
    let status = order.order.status;
    if status != Status::AwaitingReview {
        bail!("order {id} is {status}: only a report waiting for review can be edited");
    }
    let method = app.method_of(order.method_version.as_deref())?;
    let tier = method
        .tier(&report.tier)
        .with_context(|| format!("the order's method sells no tier `{}`", report.tier))?;
    let figures = Figures {
        scores: &report.scores,
        peers: report.peers.as_ref(),
    };
    let written = report::check(text, tier, &method, figures).map_err(|problems| {
        anyhow::anyhow!(
            "the edited report does not hold, nothing was changed:\n- {}",
            problems.join("\n- ")
        )
    })?;
    let edited = Report { written, ..report };
    let files = edited.files(&method, &Signature::of(&app.config))?;
    let artifacts: Vec<Artifact<'_>> = files
        .iter()
        .map(|(kind, content)| Artifact { kind, content })
        .collect();
    let policy = app.config.policy.clone();
    app.db
        .store_edited_report(id, &artifacts, &policy, OPERATOR, now)?
        .map_err(|rejected| refused(id, &rejected))?;
    app.db.audit(
        OPERATOR,
        "review_edited",
        Some(id),
        &serde_json::json!({ "summary": edited.written.summary }),
        now,
    )?;
    Ok(())
}

/// Applies a review decision (`ReviewApproved` or `ReviewRegenerate`) to order `id` and keeps
/// it in the audit log.
pub fn decide(app: &mut App, id: &str, event: &Event, now: OffsetDateTime) -> anyhow::Result<()> {
    let policy = app.config.policy.clone();
    app.db
        .apply(id, event, &policy, OPERATOR, now)?
        .map_err(|rejected| refused(id, &rejected))?;
    let detail = serde_json::to_value(event).context("cannot encode the decision")?;
    app.db
        .audit(OPERATOR, event.name(), Some(id), &detail, now)?;
    Ok(())
}

fn refused(id: &str, rejected: &InvalidTransition) -> anyhow::Error {
    anyhow::anyhow!(
        "order {id} is {}: there is no report waiting for review ({})",
        rejected.from,
        rejected.why
    )
}

/// Alerts the operator again about each report that has waited for review another whole
/// `[delivery] remind_after_hours`: once a period, however often `process` runs (each reminder
/// is its own fact, and an alert is sent once per fact). The orders reminded of.
pub fn remind(app: &mut App, now: OffsetDateTime) -> anyhow::Result<Vec<String>> {
    let every = app.config.review_reminder.whole_seconds().max(1);
    let mut reminded = Vec::new();
    for (id, since) in app.db.waiting_for_review()? {
        let periods = (now - since).whole_seconds() / every;
        if periods < 1 {
            continue;
        }
        let fact = format!(
            "review of {id} waiting since {} reminder {periods}",
            crate::clock::rfc3339(since)
        );
        let message = format!(
            "the report of order {id} has waited {} for your review: read it with `compass \
             review {id}`, then --approve, --regenerate --note \"...\" or --edit",
            crate::clock::age(since, now)
        );
        if app.db.alert(&fact, Some(&id), &message, now)? {
            reminded.push(id);
        }
    }
    Ok(reminded)
}
