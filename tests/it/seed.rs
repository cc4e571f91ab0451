//! Orders in every status, made through the library's own paths (`create_order`, `apply`):
//! for tests, and for `benches/orders.rs`, which includes this file.

use compass::db::{Db, NewOrder};
use compass::order::{Event, Policy, RefundSource, Status, Tier};
use time::{Duration, OffsetDateTime};

/// The status an order is taken to, and how.
#[derive(Clone, Copy, Debug)]
pub enum Plan {
    Unpaid,
    Expired,
    Paid,
    Generating,
    Completed,
    PartlyRefunded,
    Refunded,
    Failed,
    Disputed,
}

/// A realistic mix: most orders complete, a few of everything else.
pub fn plan_for(i: usize) -> Plan {
    match i % 100 {
        0..=4 => Plan::Unpaid,
        5..=6 => Plan::Expired,
        7..=8 => Plan::Paid,
        9 => Plan::Generating,
        10..=11 => Plan::Refunded,
        12 => Plan::PartlyRefunded,
        13 => Plan::Failed,
        14 => Plan::Disputed,
        _ => Plan::Completed,
    }
}

const COMPANIES: [&str; 6] = [
    "Analytical Engines Ltd",
    "Babbage & Daughters",
    "Hopper Logistics",
    "Noether Labs GmbH",
    "Turing Bakeries",
    "Lamarr Wireless",
];

/// Creates order number `i` at `at` and takes it through `plan`; returns its id.
pub fn seed_order(
    db: &mut Db,
    i: usize,
    customer: usize,
    plan: Plan,
    at: OffsetDateTime,
    policy: &Policy,
) -> anyhow::Result<String> {
    let tier = Tier::ALL[i % 3];
    let amount_cents = [4_900, 14_900, 39_900][i % 3];
    let order = db.create_order(
        &NewOrder {
            email: format!("contact{customer}@example.com"),
            name: format!("Contact {customer}"),
            company: COMPANIES[customer % COMPANIES.len()].to_owned(),
            tier,
            amount_cents,
            currency: "usd".into(),
            questionnaire: serde_json::json!({ "strategy": [3, 4, 2], "culture": [5, 4, 4] }),
        },
        at,
    )?;
    let id = order.id;
    let mut t = at;
    let mut apply = |event: Event, actor: &str, minutes: i64| -> anyhow::Result<()> {
        t += Duration::minutes(minutes);
        db.apply(&id, &event, policy, actor, t)?
            .map_err(|rejected| anyhow::anyhow!("seed step refused: {rejected}"))?;
        Ok(())
    };
    let paid = !matches!(plan, Plan::Unpaid | Plan::Expired);
    if matches!(plan, Plan::Expired) {
        apply(Event::Expire, "process", 24 * 60)?;
    }
    if paid {
        apply(
            Event::PaymentConfirmed {
                payment_intent: format!("pi_seed_{i}"),
                amount_cents,
                currency: "usd".into(),
            },
            "stripe",
            2,
        )?;
    }
    if matches!(plan, Plan::Paid) {
        return Ok(id);
    }
    if paid {
        apply(
            Event::Claim {
                owner: "seed".into(),
                lease_until: at + Duration::minutes(13),
            },
            "process",
            1,
        )?;
    }
    match plan {
        Plan::Unpaid | Plan::Expired | Plan::Paid | Plan::Generating => {}
        Plan::Failed => apply(
            Event::GenerationFailed {
                owner: "seed".into(),
                error: "the answer did not match the report schema".into(),
                retryable: false,
            },
            "process",
            1,
        )?,
        Plan::Completed | Plan::PartlyRefunded | Plan::Refunded | Plan::Disputed => {
            apply(
                Event::Generated {
                    owner: "seed".into(),
                },
                "process",
                1,
            )?;
        }
    }
    let refund = |amount_cents| Event::RefundRequested {
        source: RefundSource::Operator,
        reason: "goodwill".into(),
        amount_cents,
        prior_refunds: 0,
    };
    match plan {
        Plan::PartlyRefunded => {
            apply(refund(Some(1_000)), "operator", 60)?;
            apply(
                Event::RefundSucceeded {
                    refund: Some(1),
                    refunded_total_cents: 1_000,
                },
                "stripe",
                1,
            )?;
        }
        Plan::Refunded => {
            apply(refund(None), "operator", 60)?;
            apply(
                Event::RefundSucceeded {
                    refund: Some(1),
                    refunded_total_cents: amount_cents,
                },
                "stripe",
                1,
            )?;
        }
        Plan::Disputed => apply(
            Event::DisputeOpened {
                dispute: format!("dp_seed_{i}"),
                reason: "fraudulent".into(),
            },
            "stripe",
            60 * 24,
        )?,
        _ => {}
    }
    Ok(id)
}

/// `count` orders, one every `spacing`, the last at `end`; returns their ids, oldest first.
pub fn seed(
    db: &mut Db,
    count: usize,
    end: OffsetDateTime,
    spacing: Duration,
    policy: &Policy,
) -> anyhow::Result<Vec<String>> {
    let customers = count / 2 + 1;
    (0..count)
        .map(|i| {
            let steps_back = i32::try_from(count - i).unwrap_or(i32::MAX);
            let at = end - spacing * steps_back;
            seed_order(db, i, i % customers, plan_for(i), at, policy)
        })
        .collect()
}

/// The status `plan` leaves an order in.
pub fn status_of(plan: Plan) -> Status {
    match plan {
        Plan::Unpaid => Status::PendingPayment,
        Plan::Expired => Status::Expired,
        Plan::Paid => Status::Paid,
        Plan::Generating => Status::Generating,
        Plan::Completed | Plan::PartlyRefunded => Status::Completed,
        Plan::Refunded => Status::Refunded,
        Plan::Failed => Status::Failed,
        Plan::Disputed => Status::Disputed,
    }
}
