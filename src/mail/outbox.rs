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
use crate::db::{Db, OrderFacts, OutboxEmail};
use crate::invoice::Kind;
use crate::money;
use crate::order::{EmailKind, Tier};

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

/// Who an email is from, as its templates name them.
#[derive(Clone, Copy, Debug)]
pub struct Letterhead<'a> {
    /// `[business] name`; the method's brand name goes first (`Composer::business`).
    pub business: &'a str,
    pub support_email: &'a str,
    /// `public_url`, without a trailing slash.
    pub site: &'a str,
}

impl Letterhead<'_> {
    /// What every email's templates may use besides its own facts.
    fn data(&self, composer: &Composer) -> serde_json::Value {
        json!({
            "business": composer.business(self.business),
            "assessment": composer.assessment(),
            "support_email": self.support_email,
            "site": self.site,
        })
    }
}

/// An operator alert's data: `message` is what happened, then after a colon what to do.
pub fn alert_data(
    composer: &Composer,
    from: Letterhead<'_>,
    message: &str,
    order: Option<&str>,
) -> serde_json::Value {
    let mut data = from.data(composer);
    let what = message.split_once(": ").map_or(message, |(what, _)| what);
    data["what"] = json!(what);
    data["message"] = json!(message);
    data["order"] = json!(order);
    data
}

/// A sign-in link's data.
pub fn sign_in_data(
    composer: &Composer,
    from: Letterhead<'_>,
    name: &str,
    token: &str,
) -> serde_json::Value {
    let mut data = from.data(composer);
    data["name"] = json!(name);
    data["link_url"] = json!(format!("{}/my/{token}", from.site));
    data["minutes"] = json!(crate::db::SignInLimits::RULE.ttl.whole_minutes());
    data
}

/// The data of an email about an order.
pub fn order_data(
    composer: &Composer,
    from: Letterhead<'_>,
    facts: &OrderFacts,
) -> serde_json::Value {
    let mut data = from.data(composer);
    data["name"] = json!(facts.name);
    data["company"] = json!(facts.company);
    data["tier"] = json!(composer.tier_name(&facts.tier));
    data["amount"] = json!(money::format(facts.amount_cents, &facts.currency));
    data["refunded"] = json!(money::format(facts.refunded_cents, &facts.currency));
    data["status_url"] = json!(format!("{}/status/{}", from.site, facts.status_token));
    data
}

/// Every kind of email for a made-up order, as `check::render` renders them: a template that
/// names a value the outbox does not give it fails here, not at sending time.
pub fn samples(composer: &Composer, tier: Tier) -> Vec<(EmailKind, serde_json::Value)> {
    let from = Letterhead {
        business: "Sample Consulting",
        support_email: "hello@example.com",
        site: "https://example.com",
    };
    let facts = OrderFacts {
        name: "Sam Sample".into(),
        company: "Sample Company Ltd".into(),
        tier,
        status: crate::order::Status::Completed,
        amount_cents: 4_900,
        currency: "usd".into(),
        refunded_cents: 4_900,
        status_token: "sample".into(),
        last_error: None,
    };
    EmailKind::ALL
        .iter()
        .map(|kind| {
            let data = match kind {
                EmailKind::OperatorAlert => alert_data(
                    composer,
                    from,
                    "A sample alert: what to do about it",
                    Some("sample"),
                ),
                EmailKind::SignInLink => sign_in_data(composer, from, "Sam Sample", "sample"),
                _ => {
                    let mut data = order_data(composer, from, &facts);
                    data["invoice"] = json!("INV-2026-000001");
                    data["credit_notes"] = json!("CN-2026-000001");
                    data
                }
            };
            (*kind, data)
        })
        .collect()
}

/// The message for an outbox row, from the order as it is now.
fn compose(
    db: &Db,
    config: &Config,
    composer: &Composer,
    email: &OutboxEmail,
) -> anyhow::Result<Email> {
    let from = Letterhead {
        business: &config.business_name,
        support_email: &config.support_email,
        site: config.public_url.trim_end_matches('/'),
    };
    if email.kind == EmailKind::OperatorAlert {
        let message = email.message.as_deref().unwrap_or_default();
        let data = alert_data(composer, from, message, email.order_id.as_deref());
        return composer.compose(email.kind, &config.mail.operator, &data);
    }
    if email.kind == EmailKind::SignInLink {
        let token = email
            .link_token
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("the sign-in email has no link (already sent?)"))?;
        let customer = email
            .customer_id
            .ok_or_else(|| anyhow::anyhow!("a sign-in email without a customer"))?;
        let data = sign_in_data(composer, from, &db.customer_name(customer)?, token);
        return composer.compose(email.kind, &email.recipient, &data);
    }
    let order_id = email
        .order_id
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("a {} email without an order", email.kind))?;
    let facts = db
        .order_facts(order_id)?
        .ok_or_else(|| anyhow::anyhow!("order {order_id} is gone"))?;
    let documents = db.documents_of(order_id)?;
    let numbers = |kind: Kind| {
        let numbers: Vec<&str> = documents
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| d.number.as_str())
            .collect();
        (!numbers.is_empty()).then(|| numbers.join(", "))
    };
    let mut data = order_data(composer, from, &facts);
    data["invoice"] = json!(numbers(Kind::Invoice));
    data["credit_notes"] = json!(numbers(Kind::CreditNote));
    let mut message = composer.compose(email.kind, &email.recipient, &data)?;
    match email.kind {
        EmailKind::ReportReady => {
            let pdf = db
                .artifact(order_id, "pdf")?
                .ok_or_else(|| anyhow::anyhow!("order {order_id} has no PDF to attach"))?;
            message.attachments.push((
                format!("{}.pdf", composer.report_file_stem()),
                "application/pdf".to_owned(),
                pdf,
            ));
        }
        // The invoice with the confirmation, every credit note with the refund.
        EmailKind::PaymentConfirmation | EmailKind::RefundProcessed => {
            let wanted = match email.kind {
                EmailKind::PaymentConfirmation => Kind::Invoice,
                _ => Kind::CreditNote,
            };
            for doc in &documents {
                if doc.kind != wanted {
                    continue;
                }
                // `process` renders what was issued before it sends; until then it waits.
                let pdf = db.document_pdf(doc.id)?.ok_or_else(|| {
                    anyhow::anyhow!("{} of order {order_id} is not rendered yet", doc.number)
                })?;
                message
                    .attachments
                    .push((doc.file_name(), "application/pdf".to_owned(), pdf));
            }
        }
        _ => {}
    }
    Ok(message)
}
