use std::collections::{HashMap, VecDeque};
use std::fmt::Write;

use expect_test::expect;
use proptest::prelude::*;
use time::macros::datetime;

use super::*;

const T0: OffsetDateTime = datetime!(2026-11-02 09:00 UTC);
const PRICE: i64 = 14_900;

fn policy() -> Policy {
    Policy::default()
}

fn apply(order: &Order, event: Event, now: OffsetDateTime) -> Order {
    match step(order, &event, &policy(), now) {
        Ok(step) => step.order,
        Err(err) => panic!("{} should apply: {err}", event.name()),
    }
}

fn confirm() -> Event {
    Event::PaymentConfirmed {
        payment_intent: "pi_1".into(),
        amount_cents: PRICE,
        currency: "USD".into(),
    }
}

fn claim(owner: &str, now: OffsetDateTime) -> Event {
    Event::Claim {
        owner: owner.into(),
        lease_until: now + Duration::minutes(10),
    }
}

fn customer_refund(prior_refunds: u32) -> Event {
    Event::RefundRequested {
        source: RefundSource::Customer,
        reason: "not what I expected".into(),
        amount_cents: None,
        prior_refunds,
    }
}

fn operator_refund(amount_cents: Option<i64>) -> Event {
    Event::RefundRequested {
        source: RefundSource::Operator,
        reason: "goodwill".into(),
        amount_cents,
        prior_refunds: 0,
    }
}

/// Stripe settles our refund number `refund` (or, with `None`, reports one made elsewhere).
fn refunded(refund: Option<u32>, total: i64) -> Event {
    Event::RefundSucceeded {
        refund,
        refunded_total_cents: total,
    }
}

fn refund_failed(refund: u32) -> Event {
    Event::RefundFailed {
        refund,
        error: "charge_expired_for_refund".into(),
    }
}

fn dispute() -> Event {
    Event::DisputeOpened {
        dispute: "dp_1".into(),
        reason: "fraudulent".into(),
    }
}

fn paid() -> Order {
    apply(&Order::new(PRICE, "usd"), confirm(), T0)
}

/// Claimed by run `w1`, which has started its attempt (asked for the report).
fn generating() -> Order {
    let claimed = apply(&paid(), claim("w1", T0), T0);
    apply(&claimed, started("w1"), T0)
}

fn started(owner: &str) -> Event {
    Event::AttemptStarted {
        owner: owner.into(),
    }
}

/// Written, under a policy that has the consultant review reports.
fn awaiting_review() -> Order {
    let generated = Event::Generated { owner: "w1".into() };
    step(&generating(), &generated, &reviewed(), T0)
        .expect("generated")
        .order
}

fn reviewed() -> Policy {
    Policy {
        review_reports: true,
        ..Policy::default()
    }
}

fn completed() -> Order {
    apply(&generating(), Event::Generated { owner: "w1".into() }, T0)
}

/// One realistic order in every status, reached through `step` itself.
fn order_in(status: Status) -> Order {
    let order = match status {
        Status::PendingPayment => Order::new(PRICE, "usd"),
        Status::Paid => paid(),
        Status::Generating => generating(),
        Status::Completed => completed(),
        Status::Failed => {
            let failed = Event::GenerationFailed {
                owner: "w1".into(),
                error: "schema".into(),
                retryable: false,
            };
            apply(&generating(), failed, T0)
        }
        Status::RefundRequested => {
            let downloaded = Order {
                downloads: 1,
                ..completed()
            };
            apply(&downloaded, customer_refund(0), T0)
        }
        Status::Refunding => apply(&completed(), customer_refund(0), T0),
        Status::Refunded => apply(&order_in(Status::Refunding), refunded(Some(1), PRICE), T0),
        Status::Expired => apply(&Order::new(PRICE, "usd"), Event::Expire, T0),
        Status::Disputed => apply(&completed(), dispute(), T0),
        Status::AwaitingReview => awaiting_review(),
    };
    assert_eq!(order.status, status);
    order
}

fn sample_events(now: OffsetDateTime) -> Vec<Event> {
    vec![
        confirm(),
        Event::PaymentFailed {
            payment_intent: "pi_1".into(),
            reason: "card_declined".into(),
        },
        Event::Expire,
        claim("w2", now),
        started("w1"),
        Event::LeaseExpired,
        Event::Generated { owner: "w1".into() },
        Event::GenerationFailed {
            owner: "w1".into(),
            error: "overloaded".into(),
            retryable: true,
        },
        customer_refund(0),
        operator_refund(None),
        Event::RefundDeclined {
            reason: "report delivered".into(),
        },
        refunded(Some(1), PRICE),
        refunded(None, PRICE),
        refund_failed(1),
        dispute(),
        Event::DisputeClosed {
            dispute: "dp_1".into(),
            won: true,
        },
        Event::ReviewApproved,
        Event::ReviewRegenerate {
            note: "Say more about the forklifts.".into(),
        },
        Event::ReviewEdited,
    ]
}

fn describe(result: &Result<Step, InvalidTransition>) -> String {
    match result {
        Err(err) => format!("- {}", err.why),
        Ok(step) => {
            let mut out = format!("{}", step.order.status);
            for action in &step.actions {
                let _ = match action {
                    Action::SendEmail(kind) => write!(out, " +mail:{}", kind.as_str()),
                    Action::IssueRefund {
                        number,
                        amount_cents,
                        source,
                        ..
                    } => write!(out, " +refund#{number}:{amount_cents}:{}", source.as_str()),
                    Action::SettleRefund { number, outcome } => {
                        write!(out, " +settle#{number}:{}", outcome.as_str())
                    }
                    Action::AlertOperator(_) => write!(out, " +alert"),
                    Action::IssueInvoice => write!(out, " +invoice"),
                    Action::IssueCreditNote { amount_cents, .. } => {
                        write!(out, " +credit:{amount_cents}")
                    }
                };
            }
            out
        }
    }
}

/// Every event against every status: what happens, or why nothing does.
#[test]
fn transition_table() {
    let now = T0 + Duration::hours(1);
    let mut table = String::new();
    for &status in Status::ALL {
        let order = order_in(status);
        for event in sample_events(now) {
            let result = step(&order, &event, &policy(), now);
            if let Err(err) = &result {
                assert_eq!(err.from, status);
                assert_eq!(err.event, event.name());
            }
            let _ = writeln!(
                table,
                "{:<16} {:<18} {}",
                status.as_str(),
                event.name(),
                describe(&result)
            );
        }
    }
    expect![[r#"
        pending_payment  payment_confirmed  paid +invoice +mail:payment_confirmation
        pending_payment  payment_failed     pending_payment
        pending_payment  expired            expired
        pending_payment  claimed            - not allowed
        pending_payment  attempt_started    - the lease belongs to another run
        pending_payment  lease_expired      - not allowed
        pending_payment  generated          - the lease belongs to another run
        pending_payment  generation_failed  - the lease belongs to another run
        pending_payment  refund_requested   - the order was never paid
        pending_payment  refund_requested   - the order was never paid
        pending_payment  refund_declined    - not allowed
        pending_payment  refund_succeeded   - its payment is not recorded yet
        pending_payment  refund_succeeded   - its payment is not recorded yet
        pending_payment  refund_failed      - its payment is not recorded yet
        pending_payment  dispute_opened     pending_payment +alert
        pending_payment  dispute_closed     - not allowed
        pending_payment  review_approved    - not allowed
        pending_payment  review_regenerate  - not allowed
        pending_payment  review_edited      - not allowed
        paid             payment_confirmed  - already applied
        paid             payment_failed     - not allowed
        paid             expired            - not allowed
        paid             claimed            generating
        paid             attempt_started    - the lease belongs to another run
        paid             lease_expired      - not allowed
        paid             generated          - the lease belongs to another run
        paid             generation_failed  - the lease belongs to another run
        paid             refund_requested   refunding +refund#1:14900:customer
        paid             refund_requested   refunding +refund#1:14900:operator
        paid             refund_declined    - not allowed
        paid             refund_succeeded   refunded +credit:14900 +mail:refund_processed
        paid             refund_succeeded   refunded +credit:14900 +mail:refund_processed
        paid             refund_failed      - already applied
        paid             dispute_opened     disputed +alert
        paid             dispute_closed     - not allowed
        paid             review_approved    - not allowed
        paid             review_regenerate  - not allowed
        paid             review_edited      - not allowed
        generating       payment_confirmed  - already applied
        generating       payment_failed     - not allowed
        generating       expired            - not allowed
        generating       claimed            - leased until 2026-11-02T09:10:00Z
        generating       attempt_started    - already applied
        generating       lease_expired      paid
        generating       generated          completed +mail:report_ready
        generating       generation_failed  paid
        generating       refund_requested   refunding +refund#1:14900:customer
        generating       refund_requested   refunding +refund#1:14900:operator
        generating       refund_declined    - not allowed
        generating       refund_succeeded   refunded +credit:14900 +mail:refund_processed
        generating       refund_succeeded   refunded +credit:14900 +mail:refund_processed
        generating       refund_failed      - already applied
        generating       dispute_opened     disputed +alert
        generating       dispute_closed     - not allowed
        generating       review_approved    - not allowed
        generating       review_regenerate  - not allowed
        generating       review_edited      - not allowed
        completed        payment_confirmed  - already applied
        completed        payment_failed     - not allowed
        completed        expired            - not allowed
        completed        claimed            - not allowed
        completed        attempt_started    - the lease belongs to another run
        completed        lease_expired      - not allowed
        completed        generated          - the lease belongs to another run
        completed        generation_failed  - the lease belongs to another run
        completed        refund_requested   refunding +refund#1:14900:customer
        completed        refund_requested   refunding +refund#1:14900:operator
        completed        refund_declined    - not allowed
        completed        refund_succeeded   refunded +credit:14900 +mail:refund_processed
        completed        refund_succeeded   refunded +credit:14900 +mail:refund_processed
        completed        refund_failed      - already applied
        completed        dispute_opened     disputed +alert
        completed        dispute_closed     - not allowed
        completed        review_approved    - not allowed
        completed        review_regenerate  - not allowed
        completed        review_edited      - not allowed
        failed           payment_confirmed  - already applied
        failed           payment_failed     - not allowed
        failed           expired            - not allowed
        failed           claimed            - not allowed
        failed           attempt_started    - the lease belongs to another run
        failed           lease_expired      - not allowed
        failed           generated          - the lease belongs to another run
        failed           generation_failed  - the lease belongs to another run
        failed           refund_requested   - already applied
        failed           refund_requested   - nothing left to refund
        failed           refund_declined    - not allowed
        failed           refund_succeeded   refunded +settle#1:succeeded +credit:14900 +mail:refund_processed
        failed           refund_succeeded   refunded +credit:14900 +settle#1:canceled +mail:refund_processed
        failed           refund_failed      failed +settle#1:failed +alert
        failed           dispute_opened     disputed +alert
        failed           dispute_closed     - not allowed
        failed           review_approved    - not allowed
        failed           review_regenerate  - not allowed
        failed           review_edited      - not allowed
        refund_requested payment_confirmed  - already applied
        refund_requested payment_failed     - not allowed
        refund_requested expired            - not allowed
        refund_requested claimed            - not allowed
        refund_requested attempt_started    - the lease belongs to another run
        refund_requested lease_expired      - not allowed
        refund_requested generated          - the lease belongs to another run
        refund_requested generation_failed  - the lease belongs to another run
        refund_requested refund_requested   - already applied
        refund_requested refund_requested   refunding +refund#1:14900:operator
        refund_requested refund_declined    completed
        refund_requested refund_succeeded   refunded +credit:14900 +mail:refund_processed
        refund_requested refund_succeeded   refunded +credit:14900 +mail:refund_processed
        refund_requested refund_failed      - already applied
        refund_requested dispute_opened     disputed +alert
        refund_requested dispute_closed     - not allowed
        refund_requested review_approved    - not allowed
        refund_requested review_regenerate  - not allowed
        refund_requested review_edited      - not allowed
        refunding        payment_confirmed  - already applied
        refunding        payment_failed     - not allowed
        refunding        expired            - not allowed
        refunding        claimed            - not allowed
        refunding        attempt_started    - the lease belongs to another run
        refunding        lease_expired      - not allowed
        refunding        generated          - the lease belongs to another run
        refunding        generation_failed  - the lease belongs to another run
        refunding        refund_requested   - already applied
        refunding        refund_requested   - nothing left to refund
        refunding        refund_declined    - not allowed
        refunding        refund_succeeded   refunded +settle#1:succeeded +credit:14900 +mail:refund_processed
        refunding        refund_succeeded   refunded +credit:14900 +settle#1:canceled +mail:refund_processed
        refunding        refund_failed      refunding +settle#1:failed +alert
        refunding        dispute_opened     disputed +alert
        refunding        dispute_closed     - not allowed
        refunding        review_approved    - not allowed
        refunding        review_regenerate  - not allowed
        refunding        review_edited      - not allowed
        refunded         payment_confirmed  - already applied
        refunded         payment_failed     - not allowed
        refunded         expired            - not allowed
        refunded         claimed            - not allowed
        refunded         attempt_started    - not allowed
        refunded         lease_expired      - not allowed
        refunded         generated          - not allowed
        refunded         generation_failed  - not allowed
        refunded         refund_requested   - nothing left to refund
        refunded         refund_requested   - nothing left to refund
        refunded         refund_declined    - not allowed
        refunded         refund_succeeded   - already applied
        refunded         refund_succeeded   - already applied
        refunded         refund_failed      - not allowed
        refunded         dispute_opened     refunded +alert
        refunded         dispute_closed     - not allowed
        refunded         review_approved    - not allowed
        refunded         review_regenerate  - not allowed
        refunded         review_edited      - not allowed
        expired          payment_confirmed  paid +invoice +mail:payment_confirmation
        expired          payment_failed     - not allowed
        expired          expired            - already applied
        expired          claimed            - not allowed
        expired          attempt_started    - the lease belongs to another run
        expired          lease_expired      - not allowed
        expired          generated          - the lease belongs to another run
        expired          generation_failed  - the lease belongs to another run
        expired          refund_requested   - the order was never paid
        expired          refund_requested   - the order was never paid
        expired          refund_declined    - not allowed
        expired          refund_succeeded   - its payment is not recorded yet
        expired          refund_succeeded   - its payment is not recorded yet
        expired          refund_failed      - its payment is not recorded yet
        expired          dispute_opened     expired +alert
        expired          dispute_closed     - not allowed
        expired          review_approved    - not allowed
        expired          review_regenerate  - not allowed
        expired          review_edited      - not allowed
        disputed         payment_confirmed  - already applied
        disputed         payment_failed     - not allowed
        disputed         expired            - not allowed
        disputed         claimed            - not allowed
        disputed         attempt_started    - the lease belongs to another run
        disputed         lease_expired      - not allowed
        disputed         generated          - the lease belongs to another run
        disputed         generation_failed  - the lease belongs to another run
        disputed         refund_requested   - not allowed
        disputed         refund_requested   - not allowed
        disputed         refund_declined    - not allowed
        disputed         refund_succeeded   refunded +credit:14900 +mail:refund_processed
        disputed         refund_succeeded   refunded +credit:14900 +mail:refund_processed
        disputed         refund_failed      - already applied
        disputed         dispute_opened     - already applied
        disputed         dispute_closed     completed
        disputed         review_approved    - not allowed
        disputed         review_regenerate  - not allowed
        disputed         review_edited      - not allowed
        awaiting_review  payment_confirmed  - already applied
        awaiting_review  payment_failed     - not allowed
        awaiting_review  expired            - not allowed
        awaiting_review  claimed            - not allowed
        awaiting_review  attempt_started    - the lease belongs to another run
        awaiting_review  lease_expired      - not allowed
        awaiting_review  generated          - the lease belongs to another run
        awaiting_review  generation_failed  - the lease belongs to another run
        awaiting_review  refund_requested   refunding +refund#1:14900:customer
        awaiting_review  refund_requested   refunding +refund#1:14900:operator
        awaiting_review  refund_declined    - not allowed
        awaiting_review  refund_succeeded   refunded +credit:14900 +mail:refund_processed
        awaiting_review  refund_succeeded   refunded +credit:14900 +mail:refund_processed
        awaiting_review  refund_failed      - already applied
        awaiting_review  dispute_opened     disputed +alert
        awaiting_review  dispute_closed     - not allowed
        awaiting_review  review_approved    completed +mail:report_ready
        awaiting_review  review_regenerate  paid
        awaiting_review  review_edited      awaiting_review
    "#]]
    .assert_eq(&table);
}

#[test]
fn payment_must_match_the_order() {
    let order = Order::new(PRICE, "usd");
    let cheaper = Event::PaymentConfirmed {
        payment_intent: "pi_1".into(),
        amount_cents: 4_900,
        currency: "usd".into(),
    };
    // Recorded and brought to the operator, never silently dropped; the order stays unpaid.
    let held = step(&order, &cheaper, &policy(), T0).expect("recorded");
    assert_eq!(held.order.status, Status::PendingPayment);
    assert_eq!(
        held.actions,
        [Alert::about(
            "payment pi_1 does not match".into(),
            "payment pi_1 of 4900 usd does not match the order's 14900 usd: the order stays \
             unpaid; refund the payment in the Stripe dashboard"
                .into()
        )]
    );
    let euros = Event::PaymentConfirmed {
        payment_intent: "pi_1".into(),
        amount_cents: PRICE,
        currency: "eur".into(),
    };
    let held = step(&order, &euros, &policy(), T0).expect("recorded");
    assert_eq!(held.order.status, Status::PendingPayment);

    let paid = apply(&order, confirm(), T0);
    assert_eq!(paid.paid_at, Some(T0));
    assert_eq!(paid.next_attempt_at, Some(T0), "due for process at once");
}

#[test]
fn backoff_doubles_from_thirty_seconds_and_stops_at_an_hour() {
    let waits: Vec<_> = (1..=9)
        .map(|n| policy().backoff(n).whole_seconds())
        .collect();
    assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
    assert_eq!(policy().backoff(u32::MAX).whole_seconds(), 3600);
}

#[test]
fn transient_failures_retry_with_backoff_then_fail_with_a_refund() {
    let mut order = paid();
    let mut now = T0;
    for attempt in 1..=5 {
        order = apply(&order, claim("w1", now), now);
        assert_eq!(order.attempts, attempt - 1, "a claim is not an attempt");
        order = apply(&order, started("w1"), now);
        assert_eq!(order.attempts, attempt);
        let failed = Event::GenerationFailed {
            owner: "w1".into(),
            error: "529 overloaded".into(),
            retryable: true,
        };
        let step = step(&order, &failed, &policy(), now).expect("a failure applies");
        order = step.order;
        if attempt < 5 {
            assert_eq!(order.status, Status::Paid);
            let due = order.next_attempt_at.expect("a retry is scheduled");
            assert_eq!(due - now, policy().backoff(attempt));
            let early = step_err(&order, &claim("w1", due), due - Duration::seconds(1));
            assert_eq!(early, Rejection::NotDue(due));
            now = due;
        } else {
            assert_eq!(order.status, Status::Failed);
            assert_eq!(
                step.actions,
                [
                    Action::IssueRefund {
                        number: 1,
                        amount_cents: PRICE,
                        source: RefundSource::Automatic,
                        reason: "report could not be written: 529 overloaded".into(),
                    },
                    Action::SendEmail(EmailKind::ProcessingFailed),
                    Alert::of_step(
                        "order failed after 5 attempts: 529 overloaded; refund queued".into()
                    ),
                ]
            );
            assert_eq!(order.refund_pending_cents(), PRICE);
        }
    }
}

fn step_err(order: &Order, event: &Event, now: OffsetDateTime) -> Rejection {
    match step(order, event, &policy(), now) {
        Ok(step) => panic!(
            "{} should not apply, got {:?}",
            event.name(),
            step.order.status
        ),
        Err(err) => err.why,
    }
}

#[test]
fn a_permanent_failure_fails_at_once() {
    let failed = Event::GenerationFailed {
        owner: "w1".into(),
        error: "invalid request".into(),
        retryable: false,
    };
    let order = apply(&generating(), failed, T0);
    assert_eq!(order.status, Status::Failed);
    assert_eq!(order.attempts, 1);
}

#[test]
fn an_expired_lease_makes_the_order_due_again_and_fences_the_old_run() {
    let order = generating();
    let lease_end = T0 + Duration::minutes(10);
    assert_eq!(
        step_err(
            &order,
            &Event::LeaseExpired,
            lease_end - Duration::seconds(1)
        ),
        Rejection::LeaseHeld(lease_end)
    );
    let rescued = apply(&order, Event::LeaseExpired, lease_end);
    assert_eq!(rescued.status, Status::Paid);
    assert_eq!(rescued.lease, None);
    let reclaimed = apply(
        &rescued,
        claim("w2", lease_end + Duration::minutes(1)),
        lease_end + Duration::minutes(1),
    );
    let reclaimed = apply(&reclaimed, started("w2"), lease_end + Duration::minutes(1));
    assert_eq!(reclaimed.attempts, 2);

    // The first run finishes late: its answer is refused, the second run's is taken.
    let late = Event::Generated { owner: "w1".into() };
    assert_eq!(step_err(&reclaimed, &late, lease_end), Rejection::LeaseLost);
    let done = apply(
        &reclaimed,
        Event::Generated { owner: "w2".into() },
        lease_end,
    );
    assert_eq!(done.status, Status::Completed);
}

/// A run killed while the order waited for a worker (claimed, attempt not started) used no
/// attempt: the order is due again at once, attempts unchanged. Such rescues are capped, so a
/// run that dies at every start still ends the order, failed and refunded.
#[test]
fn a_lease_that_ran_out_before_the_attempt_started_costs_no_attempt() {
    let mut order = paid();
    let mut now = T0;
    let mut rescues = 0;
    while order.status == Status::Paid {
        order = apply(&order, claim("w1", now), now);
        assert_eq!(order.lease.as_ref().map(|l| l.tried), Some(false));
        now += Duration::minutes(10);
        order = apply(&order, Event::LeaseExpired, now);
        rescues += 1;
        assert_eq!(order.attempts, 0, "no attempt was used");
        if order.status == Status::Paid {
            assert_eq!(order.next_attempt_at, Some(now), "due again at once");
        }
    }
    assert_eq!(rescues, policy().max_rescues);
    assert_eq!(order.status, Status::Failed);
    assert_eq!(order.refund_pending_cents(), PRICE);
    assert!(
        order
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("stopped before it asked for the report (10 times)")),
        "{:?}",
        order.last_error
    );

    // Started twice is one attempt; a stranger cannot start it.
    let claimed = apply(&paid(), claim("w1", T0), T0);
    let once = apply(&claimed, started("w1"), T0);
    assert_eq!(
        step_err(&once, &started("w1"), T0),
        Rejection::AlreadyApplied
    );
    assert_eq!(step_err(&claimed, &started("w2"), T0), Rejection::LeaseLost);
}

#[test]
fn a_run_killed_on_its_last_attempt_fails_the_order() {
    let mut order = generating();
    order.attempts = policy().max_attempts;
    let order = apply(&order, Event::LeaseExpired, T0 + Duration::hours(1));
    assert_eq!(order.status, Status::Failed);
    assert_eq!(order.refund_pending_cents(), PRICE);
}

#[test]
fn refund_rule_approves_only_a_first_undownloaded_refund_within_seven_days() {
    let order = completed();
    let policy = policy();
    let just_inside = T0 + Duration::days(7) - Duration::seconds(1);
    assert_eq!(
        policy.refund_decision(&order, 0, just_inside),
        RefundDecision::Approve
    );
    let cases = [
        (
            order.clone(),
            0,
            T0 + Duration::days(7),
            vec![ReviewReason::OutsideWindow],
        ),
        (
            Order {
                downloads: 2,
                ..order.clone()
            },
            0,
            T0,
            vec![ReviewReason::Downloaded],
        ),
        (order.clone(), 1, T0, vec![ReviewReason::NotFirstRefund]),
        (
            Order {
                downloads: 1,
                ..order.clone()
            },
            3,
            T0 + Duration::days(30),
            vec![
                ReviewReason::OutsideWindow,
                ReviewReason::Downloaded,
                ReviewReason::NotFirstRefund,
            ],
        ),
    ];
    for (order, prior, now, reasons) in cases {
        assert_eq!(
            policy.refund_decision(&order, prior, now),
            RefundDecision::Review(reasons)
        );
    }
    let off = Policy {
        auto_approve_refunds: false,
        ..policy
    };
    assert_eq!(
        off.refund_decision(&order, 0, T0),
        RefundDecision::Review(vec![ReviewReason::AutoApprovalOff])
    );
}

#[test]
fn a_refund_under_review_waits_for_the_operator() {
    let order = apply(&completed(), customer_refund(1), T0);
    assert_eq!(order.status, Status::RefundRequested);
    let declined = apply(
        &order,
        Event::RefundDeclined {
            reason: "second refund".into(),
        },
        T0,
    );
    assert_eq!(declined.status, Status::Completed);

    let step = step(&order, &operator_refund(None), &policy(), T0).expect("operator approves");
    assert_eq!(step.order.status, Status::Refunding);
    assert_eq!(step.order.refund_pending_cents(), PRICE);
}

#[test]
fn a_declined_request_before_delivery_goes_back_to_the_queue() {
    let order = apply(&paid(), customer_refund(2), T0);
    assert_eq!(order.status, Status::RefundRequested);
    let now = T0 + Duration::hours(2);
    let back = apply(
        &order,
        Event::RefundDeclined {
            reason: "no".into(),
        },
        now,
    );
    assert_eq!(back.status, Status::Paid);
    assert_eq!(back.next_attempt_at, Some(now));
}

#[test]
fn partial_refunds_keep_the_order_and_add_up_to_a_full_one() {
    let order = completed();
    assert_eq!(
        step_err(&order, &operator_refund(Some(PRICE + 1)), T0),
        Rejection::BadRefundAmount {
            asked_cents: PRICE + 1,
            refundable_cents: PRICE,
        }
    );
    assert_eq!(
        step_err(&order, &operator_refund(Some(0)), T0),
        Rejection::BadRefundAmount {
            asked_cents: 0,
            refundable_cents: PRICE,
        }
    );
    let partial = apply(&order, operator_refund(Some(4_000)), T0);
    assert_eq!(partial.status, Status::Completed);
    assert_eq!(partial.refundable_cents(), PRICE - 4_000);

    // While 4000 is under way, at most the rest can be asked for.
    assert_eq!(
        step_err(&partial, &operator_refund(Some(PRICE)), T0),
        Rejection::BadRefundAmount {
            asked_cents: PRICE,
            refundable_cents: PRICE - 4_000,
        }
    );
    let settled = step(&partial, &refunded(Some(1), 4_000), &policy(), T0).expect("settles #1");
    assert_eq!(
        settled.actions,
        [
            Action::SettleRefund {
                number: 1,
                outcome: RefundOutcome::Succeeded,
            },
            Action::IssueCreditNote {
                refund: Some(1),
                amount_cents: 4_000,
            },
        ]
    );
    let partial = settled.order;
    assert_eq!(partial.refunded_cents, 4_000);
    assert!(partial.pending_refunds.is_empty());
    assert_eq!(
        partial.refundable_cents(),
        PRICE - 4_000,
        "the rest is refundable"
    );
    assert_eq!(
        step_err(&partial, &refunded(Some(1), 4_000), T0),
        Rejection::AlreadyApplied,
        "a redelivered webhook changes nothing"
    );

    let rest = apply(&partial, operator_refund(None), T0);
    assert_eq!(rest.status, Status::Refunding);
    assert_eq!(
        rest.pending_refunds,
        [PendingRefund {
            number: 2,
            amount_cents: PRICE - 4_000
        }]
    );
    let done = step(&rest, &refunded(Some(2), PRICE), &policy(), T0).expect("full refund applies");
    assert_eq!(done.order.status, Status::Refunded);
    assert_eq!(done.order.refunded_cents, PRICE);
    assert_eq!(
        done.actions,
        [
            Action::SettleRefund {
                number: 2,
                outcome: RefundOutcome::Succeeded,
            },
            Action::IssueCreditNote {
                refund: Some(2),
                amount_cents: PRICE - 4_000,
            },
            Action::SendEmail(EmailKind::RefundProcessed),
        ]
    );
}

#[test]
fn a_failed_refund_can_be_issued_again_but_never_twice_at_once() {
    let refunding = order_in(Status::Refunding);
    assert_eq!(
        step_err(&refunding, &operator_refund(None), T0),
        Rejection::NothingToRefund
    );
    let failed = step(&refunding, &refund_failed(1), &policy(), T0).expect("settles #1");
    assert!(matches!(
        failed.actions[..],
        [
            Action::SettleRefund {
                number: 1,
                outcome: RefundOutcome::Failed(_),
            },
            Action::AlertOperator(_),
        ]
    ));
    let failed = failed.order;
    assert_eq!(failed.refundable_cents(), PRICE);
    assert_eq!(
        step_err(&failed, &refund_failed(1), T0),
        Rejection::AlreadyApplied,
        "the same failure delivered twice alerts once"
    );
    let again = step(&failed, &operator_refund(None), &policy(), T0).expect("reissue applies");
    assert_eq!(again.order.refund_pending_cents(), PRICE);
    assert!(matches!(
        again.actions[..],
        [Action::IssueRefund {
            number: 2,
            amount_cents: PRICE,
            ..
        }]
    ));
}

#[test]
fn a_failed_partial_refund_frees_only_its_own_amount() {
    let order = apply(&completed(), operator_refund(Some(1_000)), T0);
    let order = apply(&order, operator_refund(None), T0);
    assert_eq!(
        order.refund_pending_cents(),
        PRICE,
        "#1 for 1000 and #2 for the rest"
    );
    let order = apply(&order, refund_failed(1), T0);
    assert_eq!(
        order.pending_refunds,
        [PendingRefund {
            number: 2,
            amount_cents: PRICE - 1_000
        }]
    );
    assert_eq!(
        order.refundable_cents(),
        1_000,
        "only the failed 1000 can be issued again"
    );
    let again = step(&order, &operator_refund(None), &policy(), T0).expect("reissue");
    assert!(matches!(
        again.actions[..],
        [Action::IssueRefund {
            number: 3,
            amount_cents: 1_000,
            ..
        }]
    ));
}

#[test]
fn a_dashboard_refund_ends_the_order_and_cancels_ours() {
    let order = apply(&completed(), operator_refund(Some(1_000)), T0);
    let done = step(&order, &refunded(None, PRICE), &policy(), T0).expect("applies");
    assert_eq!(done.order.status, Status::Refunded);
    assert!(done.order.pending_refunds.is_empty());
    assert_eq!(
        done.actions,
        [
            Action::IssueCreditNote {
                refund: None,
                amount_cents: PRICE,
            },
            Action::SettleRefund {
                number: 1,
                outcome: RefundOutcome::Canceled,
            },
            Action::SendEmail(EmailKind::RefundProcessed),
        ]
    );
}

#[test]
fn a_dispute_on_a_refunded_order_still_reaches_the_operator() {
    for status in [Status::Refunded, Status::PendingPayment, Status::Expired] {
        let order = order_in(status);
        let step = step(&order, &dispute(), &policy(), T0).expect("recorded");
        assert_eq!(step.order, order, "nothing about the order changes");
        assert!(
            matches!(step.actions[..], [Action::AlertOperator(_)]),
            "{status}"
        );
    }
}

#[test]
fn disputes_stop_work_and_resume_where_they_interrupted() {
    let won = |order: &Order| {
        let event = Event::DisputeClosed {
            dispute: "dp_1".into(),
            won: true,
        };
        step(order, &event, &policy(), T0 + Duration::days(1)).expect("closing applies")
    };
    let disputed = apply(&generating(), dispute(), T0);
    assert_eq!(disputed.lease, None);
    assert_eq!(disputed.disputed_from, Some(Status::Generating));
    let resumed = won(&disputed).order;
    assert_eq!(resumed.status, Status::Paid);
    assert_eq!(resumed.next_attempt_at, Some(T0 + Duration::days(1)));

    assert_eq!(
        won(&order_in(Status::Disputed)).order.status,
        Status::Completed
    );

    // A dispute during an automatic refund whose refund then failed: winning re-issues it.
    let failed = apply(&order_in(Status::Failed), refund_failed(1), T0);
    let disputed = apply(&failed, dispute(), T0);
    let after = won(&disputed);
    assert_eq!(after.order.status, Status::Failed);
    assert!(matches!(
        after.actions[..],
        [Action::IssueRefund {
            amount_cents: PRICE,
            source: RefundSource::Automatic,
            ..
        }]
    ));

    let lost = Event::DisputeClosed {
        dispute: "dp_1".into(),
        won: false,
    };
    assert_eq!(apply(&disputed, lost, T0).status, Status::Refunded);
}

#[test]
fn names_round_trip() {
    for &status in Status::ALL {
        assert_eq!(status.as_str().parse::<Status>(), Ok(status));
    }
    for id in ["starter", "security_2", "a"] {
        let tier: Tier = id.parse().expect("an id");
        assert_eq!(tier.as_str(), id);
        assert_eq!(serde_json::to_value(&tier).expect("encodes"), id);
    }
    for bad in ["", "Premium", "2x", "a-b", "x y", &"a".repeat(41)] {
        assert!(bad.parse::<Tier>().is_err(), "{bad}");
        assert!(serde_json::from_value::<Tier>(serde_json::json!(bad)).is_err());
    }
    for &kind in EmailKind::ALL {
        assert_eq!(kind.as_str().parse::<EmailKind>(), Ok(kind));
    }
    for &source in RefundSource::ALL {
        assert_eq!(source.as_str().parse::<RefundSource>(), Ok(source));
    }
    assert_eq!(
        "payed".parse::<Status>().expect_err("not a status"),
        "unknown status `payed`, expected one of pending_payment, paid, generating, completed, \
         failed, refund_requested, refunding, refunded, expired, disputed, awaiting_review"
    );
}

// ---- the consultant's review --------------------------------------------------------------

fn step_with(order: &Order, event: Event, policy: &Policy, now: OffsetDateTime) -> Step {
    step(order, &event, policy, now).unwrap_or_else(|err| panic!("{}: {err}", event.name()))
}

#[test]
fn a_reviewed_report_reaches_the_customer_only_when_approved() {
    let waiting = step_with(
        &generating(),
        Event::Generated { owner: "w1".into() },
        &reviewed(),
        T0,
    );
    assert_eq!(waiting.order.status, Status::AwaitingReview);
    assert_eq!(waiting.order.review_since, Some(T0));
    assert_eq!(waiting.order.completed_at, None);
    assert!(
        matches!(&waiting.actions[..], [Action::AlertOperator(alert)] if alert.message.contains("`compass review {order}`")),
        "{:?}",
        waiting.actions
    );
    let later = T0 + Duration::hours(5);
    let approved = step_with(&waiting.order, Event::ReviewApproved, &reviewed(), later);
    assert_eq!(approved.order.status, Status::Completed);
    assert_eq!(approved.order.completed_at, Some(later));
    assert_eq!(approved.order.review_since, None);
    assert_eq!(approved.order.reviewed_for, Duration::hours(5));
    assert_eq!(
        approved.actions,
        [Action::SendEmail(EmailKind::ReportReady)]
    );
}

#[test]
fn a_report_written_again_carries_the_note_and_waits_again() {
    let later = T0 + Duration::hours(2);
    let again = step_with(
        &awaiting_review(),
        Event::ReviewRegenerate {
            note: "Say more about the forklifts.".into(),
        },
        &reviewed(),
        later,
    );
    assert_eq!(again.order.status, Status::Paid);
    assert_eq!(again.order.next_attempt_at, Some(later));
    assert_eq!(again.order.attempts, 0, "a new round of writing");
    assert_eq!(
        again.order.review_note.as_deref(),
        Some("Say more about the forklifts.")
    );
    assert!(again.actions.is_empty(), "no email: {:?}", again.actions);
    let claimed = step_with(&again.order, claim("w2", later), &reviewed(), later);
    let started = step_with(&claimed.order, started("w2"), &reviewed(), later);
    let written = step_with(
        &started.order,
        Event::Generated { owner: "w2".into() },
        &reviewed(),
        later,
    );
    assert_eq!(written.order.status, Status::AwaitingReview);
    assert_eq!(written.order.review_note, None, "the note was used");
}

#[test]
fn a_rewrite_that_fails_for_good_leaves_the_reviewed_report_waiting_and_refunds_nothing() {
    let again = apply_with(
        &awaiting_review(),
        Event::ReviewRegenerate {
            note: "Shorter.".into(),
        },
    );
    let claimed = apply_with(&again, claim("w2", T0));
    let started = apply_with(&claimed, started("w2"));
    let failed = step_with(
        &started,
        Event::GenerationFailed {
            owner: "w2".into(),
            error: "the answer failed the report checks".into(),
            retryable: false,
        },
        &reviewed(),
        T0,
    );
    assert_eq!(failed.order.status, Status::AwaitingReview);
    assert_eq!(failed.order.review_note, None);
    assert!(failed.order.pending_refunds.is_empty());
    assert!(
        matches!(&failed.actions[..], [Action::AlertOperator(alert)] if alert.message.contains("could not be written again")),
        "{:?}",
        failed.actions
    );
}

fn apply_with(order: &Order, event: Event) -> Order {
    step_with(order, event, &reviewed(), T0).order
}

#[test]
fn the_refund_windows_clock_stops_while_the_report_waits_for_review() {
    // A 7-day window. The report waits 10 days for the consultant, then is delivered.
    let waiting = awaiting_review();
    let ten_days = T0 + Duration::days(10);
    let rule = reviewed();
    assert_eq!(
        rule.refund_decision(&waiting, 0, ten_days),
        RefundDecision::Approve,
        "still waiting: none of the window is used"
    );
    let approved = apply_with(&waiting, Event::ReviewApproved);
    let approved = Order {
        review_since: None,
        reviewed_for: Duration::days(10),
        completed_at: Some(ten_days),
        ..approved
    };
    assert_eq!(
        rule.refund_decision(&approved, 0, ten_days + Duration::days(6)),
        RefundDecision::Approve
    );
    assert_eq!(
        rule.refund_decision(&approved, 0, ten_days + Duration::days(8)),
        RefundDecision::Review(vec![ReviewReason::OutsideWindow])
    );
}

#[test]
fn a_paused_review_resumes_where_it_was() {
    let waiting = awaiting_review();
    let asked = apply_with(
        &Order {
            downloads: 0,
            ..waiting.clone()
        },
        operator_refund(Some(100)),
    );
    assert_eq!(
        asked.status,
        Status::AwaitingReview,
        "a partial refund is goodwill"
    );
    let no_auto = Policy {
        auto_approve_refunds: false,
        ..reviewed()
    };
    let requested = step_with(&waiting, customer_refund(0), &no_auto, T0).order;
    assert_eq!(requested.status, Status::RefundRequested);
    let declined = apply_with(
        &requested,
        Event::RefundDeclined {
            reason: "the report is on its way".into(),
        },
    );
    assert_eq!(declined.status, Status::AwaitingReview);
    let disputed = apply_with(&waiting, dispute());
    let won = apply_with(
        &disputed,
        Event::DisputeClosed {
            dispute: "dp_1".into(),
            won: true,
        },
    );
    assert_eq!(won.status, Status::AwaitingReview);
}

// ---- properties ---------------------------------------------------------------------------

fn arb_event() -> impl Strategy<Value = (Event, i64)> {
    let owner = prop_oneof![Just("w1".to_string()), Just("w2".to_string())];
    let amount = prop_oneof![Just(PRICE), Just(PRICE / 2), Just(1), Just(PRICE + 100)];
    let event = prop_oneof![
        (
            amount.clone(),
            prop_oneof![Just("usd"), Just("USD"), Just("eur")]
        )
            .prop_map(|(amount_cents, currency)| Event::PaymentConfirmed {
                payment_intent: "pi_1".into(),
                amount_cents,
                currency: currency.into(),
            }),
        Just(Event::PaymentFailed {
            payment_intent: "pi_1".into(),
            reason: "declined".into(),
        }),
        Just(Event::Expire),
        (owner.clone(), 1..60_i64).prop_map(|(owner, minutes)| Event::Claim {
            owner,
            lease_until: T0 + Duration::minutes(minutes),
        }),
        Just(Event::LeaseExpired),
        owner.clone().prop_map(|owner| Event::Generated { owner }),
        (owner, any::<bool>()).prop_map(|(owner, retryable)| Event::GenerationFailed {
            owner,
            error: "boom".into(),
            retryable,
        }),
        (0..3_u32).prop_map(customer_refund),
        proptest::option::of(amount.clone()).prop_map(operator_refund),
        Just(Event::RefundDeclined {
            reason: "no".into()
        }),
        (proptest::option::of(1..4_u32), amount).prop_map(|(n, total)| refunded(n, total)),
        (1..4_u32).prop_map(refund_failed),
        Just(dispute()),
        any::<bool>().prop_map(|won| Event::DisputeClosed {
            dispute: "dp_1".into(),
            won,
        }),
        Just(Event::ReviewApproved),
        Just(Event::ReviewRegenerate {
            note: "again".into()
        }),
        Just(Event::ReviewEdited),
    ];
    // Time moves on by up to two hours between events, or now and then by ten days.
    let gap = prop_oneof![9 => 0..7_200_i64, 1 => Just(864_000_i64)];
    (event, gap)
}

/// Whether events that compass and Stripe produce on their own can still take the order to
/// `completed` or `refunded`: nobody is left holding money without a report.
fn can_finish(order: &Order, now: OffsetDateTime, policy: &Policy) -> bool {
    let mut queue = VecDeque::from([(order.clone(), now, 0)]);
    while let Some((order, now, depth)) = queue.pop_front() {
        if matches!(order.status, Status::Completed | Status::Refunded) {
            return true;
        }
        if depth == 6 {
            continue;
        }
        let now = now + Duration::days(1);
        let mut moves = vec![
            claim("sys", now),
            Event::Generated {
                owner: "sys".into(),
            },
            Event::LeaseExpired,
            refunded(None, order.amount_cents),
            operator_refund(None),
            Event::RefundDeclined {
                reason: "no".into(),
            },
            Event::DisputeClosed {
                dispute: "dp_1".into(),
                won: true,
            },
            Event::ReviewApproved,
        ];
        for refund in &order.pending_refunds {
            let total = order.refunded_cents + refund.amount_cents;
            moves.push(refunded(Some(refund.number), total));
        }
        for event in &moves {
            if let Ok(step) = step(&order, event, policy, now) {
                queue.push_back((step.order, now, depth + 1));
            }
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn lifecycle_invariants(
        events in proptest::collection::vec(arb_event(), 1..40),
        review_reports in any::<bool>(),
    ) {
        let policy = Policy { review_reports, ..policy() };
        let mut order = Order::new(PRICE, "usd");
        let mut now = T0;
        let mut once: HashMap<EmailKind, u32> = HashMap::new();
        // What the actions say about our refunds, as `db` would store them.
        let mut live: HashMap<u32, i64> = HashMap::new();
        let mut ours_succeeded = 0;
        let (mut invoices, mut credited) = (0, 0);
        for (event, gap) in events {
            now += Duration::seconds(gap);
            let result = step(&order, &event, &policy, now);
            prop_assert_eq!(&result, &step(&order, &event, &policy, now), "step is deterministic");
            let Ok(step) = result else {
                continue;
            };
            let next = step.order;

            if order.status.is_terminal() {
                prop_assert_eq!(&next, &order, "{} changed a terminal order", event.name());
            }
            prop_assert!(next.refunded_cents >= order.refunded_cents, "refunds never shrink");
            prop_assert!(next.refunded_cents <= next.amount_cents);
            prop_assert!(next.attempts <= policy.max_attempts);
            prop_assert_eq!(next.status == Status::Generating, next.lease.is_some());
            if next.status.is_paid() {
                prop_assert!(next.paid_at.is_some());
            }
            for action in &step.actions {
                match action {
                    Action::SendEmail(kind) => *once.entry(*kind).or_default() += 1,
                    Action::IssueRefund { number, amount_cents, .. } => {
                        prop_assert!(*amount_cents > 0 && *amount_cents <= order.refundable_cents());
                        prop_assert!(*number > order.refunds_issued, "refund numbers are never reused");
                        live.insert(*number, *amount_cents);
                    }
                    Action::SettleRefund { number, outcome } => {
                        let amount = live.remove(number);
                        prop_assert!(amount.is_some(), "settled #{} that was not pending", number);
                        if *outcome == RefundOutcome::Succeeded {
                            ours_succeeded += amount.unwrap_or_default();
                        }
                    }
                    Action::AlertOperator(_) => {}
                    Action::IssueInvoice => invoices += 1,
                    Action::IssueCreditNote { amount_cents, .. } => {
                        prop_assert!(*amount_cents > 0);
                        credited += amount_cents;
                    }
                }
            }
            prop_assert!(invoices <= 1, "one invoice per order");
            prop_assert_eq!(invoices == 1, next.status.is_paid() || next.paid_at.is_some(), "an invoice exactly when paid");
            prop_assert_eq!(credited, next.refunded_cents, "credit notes for every cent refunded");
            let mut pending: Vec<_> = next.pending_refunds.iter().map(|r| (r.number, r.amount_cents)).collect();
            let mut stored: Vec<_> = live.iter().map(|(n, a)| (*n, *a)).collect();
            pending.sort_unstable();
            stored.sort_unstable();
            prop_assert_eq!(pending, stored, "the order's pending refunds are the stored ones");
            prop_assert!(
                ours_succeeded + next.refund_pending_cents() <= next.amount_cents,
                "never more back than was paid: {:?}", next
            );
            order = next;
            if order.status.is_paid() {
                prop_assert!(can_finish(&order, now, &policy), "stuck: {:?}", order);
            }
        }
        for kind in [
            EmailKind::PaymentConfirmation,
            EmailKind::ReportReady,
            EmailKind::ProcessingFailed,
            EmailKind::RefundProcessed,
        ] {
            prop_assert!(once.get(&kind).copied().unwrap_or(0) <= 1, "{:?} twice", kind);
        }
    }

    #[test]
    fn refunded_is_final(events in proptest::collection::vec(arb_event(), 1..20)) {
        let order = order_in(Status::Refunded);
        for (event, gap) in events {
            let now = T0 + Duration::seconds(gap);
            if let Ok(step) = step(&order, &event, &policy(), now) {
                // Only a dispute is recorded on a refunded order, and only to alert.
                prop_assert_eq!(&step.order, &order);
                prop_assert!(matches!(step.actions[..], [Action::AlertOperator(_)]));
            }
        }
    }
}
