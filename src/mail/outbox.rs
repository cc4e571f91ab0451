//! Sending the outbox: claim a due email, compose it from the order as it is now, send it,
//! and record the outcome. A failed send is due again later (1 min, doubling, at most 1 h);
//! after the last attempt the email is `failed`, visible in `orders show`, and the operator is
//! alerted. Nothing here decides *whether* an email exists: the state change that caused it
//! inserted its row.

use serde::Serialize;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::{Composer, Email, Mailer};
use crate::config::Config;
use crate::db::{Db, OutboxEmail};
use crate::money;
use crate::order::EmailKind;

/// Attempts at one email before it is given up.
pub const MAX_ATTEMPTS: u32 = 8;

/// How long a claimed email is held before another sender may take it over: far longer than
/// one SMTP conversation may take.
const HOLD: Duration = Duration::minutes(5);

/// What one pass over the outbox did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sent {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Sends up to `limit` due emails, one claim at a time.
pub fn send_due(
    db: &mut Db,
    config: &Config,
    mailer: &Mailer,
    composer: &Composer,
    clock: &dyn Fn() -> anyhow::Result<OffsetDateTime>,
    limit: u32,
) -> anyhow::Result<Sent> {
    let mut sent = Sent::default();
    for _ in 0..limit {
        let now = clock()?;
        let Some(email) = db.claim_emails(now, 1, HOLD)?.pop() else {
            break;
        };
        let outcome = compose(db, config, composer, &email)
            .map_err(|err| format!("{err:#}"))
            .and_then(|message| mailer.send(&message).map_err(|err| err.to_string()));
        let now = clock()?;
        match outcome {
            Ok(message_id) => {
                db.email_sent(email.id, &message_id, now)?;
                tracing::info!(email = email.id, kind = %email.kind, "sent");
                sent.sent += 1;
            }
            Err(error) if email.attempts < MAX_ATTEMPTS => {
                let wait = crate::backoff::doubling_wait(
                    Duration::minutes(1),
                    email.attempts,
                    Duration::hours(1),
                );
                let retry_at = now + wait;
                tracing::warn!(email = email.id, kind = %email.kind, "not sent, retrying: {error}");
                db.email_not_sent(email.id, &error, retry_at, now)?;
                sent.retrying += 1;
            }
            Err(error) => {
                tracing::error!(email = email.id, kind = %email.kind, "given up: {error}");
                // An alert that cannot be sent is not alerted about: it would fail the same way.
                let alert = (email.kind != EmailKind::OperatorAlert).then(|| {
                    let resend = match &email.order_id {
                        Some(order) => {
                            format!("`compass resend-email {order} --kind {}`", email.kind)
                        }
                        None => "ask the customer to request it again".to_owned(),
                    };
                    (
                        format!("email {} given up", email.id),
                        format!(
                            "email not delivered: the {} email failed {MAX_ATTEMPTS} times \
                             ({error}); fix the cause (`compass doctor` checks the mail \
                             settings), then {resend}",
                            email.kind
                        ),
                    )
                });
                db.email_given_up(
                    email.id,
                    &error,
                    alert.as_ref().map(|(fact, message)| {
                        (fact.as_str(), email.order_id.as_deref(), message.as_str())
                    }),
                    now,
                )?;
                sent.failed += 1;
            }
        }
    }
    Ok(sent)
}

/// The message for an outbox row, from the order as it is now.
fn compose(
    db: &Db,
    config: &Config,
    composer: &Composer,
    email: &OutboxEmail,
) -> anyhow::Result<Email> {
    let base = config.public_url.trim_end_matches('/');
    if email.kind == EmailKind::OperatorAlert {
        let message = email.message.as_deref().unwrap_or_default();
        // The subject is what happened; the text after the first colon says what to do.
        let what = message.split_once(": ").map_or(message, |(what, _)| what);
        let data = json!({
            "business": composer.business(&config.business_name),
            "assessment": composer.assessment(),
            "support_email": config.support_email,
            "site": base,
            "what": what,
            "message": message,
            "order": email.order_id,
        });
        return composer.compose(email.kind, &config.mail.operator, &data);
    }
    if email.kind == EmailKind::SignInLink {
        let token = email
            .link_token
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("the sign-in email has no link (already sent?)"))?;
        let data = json!({
            "business": composer.business(&config.business_name),
            "assessment": composer.assessment(),
            "support_email": config.support_email,
            "site": base,
            "name": db.customer_name(
                email
                    .customer_id
                    .ok_or_else(|| anyhow::anyhow!("a sign-in email without a customer"))?
            )?,
            "link_url": format!("{base}/my/{token}"),
            "minutes": crate::db::SignInLimits::RULE.ttl.whole_minutes(),
        });
        return composer.compose(email.kind, &email.recipient, &data);
    }
    let order_id = email
        .order_id
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("a {} email without an order", email.kind))?;
    let facts = db
        .order_facts(order_id)?
        .ok_or_else(|| anyhow::anyhow!("order {order_id} is gone"))?;
    let data = json!({
        "business": composer.business(&config.business_name),
            "assessment": composer.assessment(),
        "support_email": config.support_email,
        "site": base,
        "name": facts.name,
        "company": facts.company,
        "tier": composer.tier_name(&facts.tier),
        "amount": money::format(facts.amount_cents, &facts.currency),
        "refunded": money::format(facts.refunded_cents, &facts.currency),
        "status_url": format!("{base}/status/{}", facts.status_token),
    });
    let mut message = composer.compose(email.kind, &email.recipient, &data)?;
    if email.kind == EmailKind::ReportReady {
        let pdf = db
            .artifact(order_id, "pdf")?
            .ok_or_else(|| anyhow::anyhow!("order {order_id} has no PDF to attach"))?;
        message.attachment = Some((
            format!("{}.pdf", composer.report_file_stem()),
            "application/pdf".to_owned(),
            pdf,
        ));
    }
    Ok(message)
}
