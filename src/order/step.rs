//! The transition table: every (status, event) pair an order can meet, and what it becomes.

use time::OffsetDateTime;

use super::*;

/// Applies `event` to `order` at `now`: the new order and its actions, or why nothing changes.
pub fn step(
    order: &Order,
    event: &Event,
    policy: &Policy,
    now: OffsetDateTime,
) -> Result<Step, InvalidTransition> {
    use Status as S;

    let reject = |why| InvalidTransition {
        from: order.status,
        event: event.name(),
        why,
    };
    let mut next = order.clone();
    let mut actions = Vec::new();

    match (order.status, event) {
        (S::Refunded, Event::RefundRequested { .. }) => {
            return Err(reject(Rejection::NothingToRefund));
        }
        (S::Refunded, Event::RefundSucceeded { .. } | Event::PaymentConfirmed { .. }) => {
            return Err(reject(Rejection::AlreadyApplied));
        }
        (
            S::Refunded | S::PendingPayment | S::Expired,
            Event::DisputeOpened { dispute, reason },
        ) => {
            // Nothing to stop, but a dispute nobody answers is lost by default.
            actions.push(Alert::about(
                format!("dispute {dispute} opened"),
                format!(
                    "dispute {dispute} ({reason}) opened on a {} order: answer it in the Stripe \
                     dashboard, or the customer is paid twice",
                    order.status
                ),
            ));
        }
        (S::Refunded, _) => return Err(reject(Rejection::NotAllowed)),

        (
            S::PendingPayment | S::Expired,
            Event::PaymentConfirmed {
                payment_intent,
                amount_cents,
                currency,
            },
        ) => {
            if *amount_cents != order.amount_cents
                || !currency.eq_ignore_ascii_case(&order.currency)
            {
                // Money came in that does not pay for this order: keep it unpaid, and make sure
                // a person looks at the payment rather than dropping the event.
                let error = format!(
                    "payment {payment_intent} of {amount_cents} {} does not match the order's {} {}",
                    currency.to_ascii_lowercase(),
                    order.amount_cents,
                    order.currency
                );
                next.last_error = Some(error.clone());
                actions.push(Alert::about(
                    format!("payment {payment_intent} does not match"),
                    format!(
                        "{error}: the order stays unpaid; refund the payment in the Stripe dashboard"
                    ),
                ));
                return Ok(Step {
                    order: next,
                    actions,
                });
            }
            next.status = S::Paid;
            next.paid_at = Some(now);
            next.next_attempt_at = Some(now);
            next.last_error = None;
            actions.push(Action::IssueInvoice);
            actions.push(Action::SendEmail(EmailKind::PaymentConfirmation));
        }
        (_, Event::PaymentConfirmed { .. }) => return Err(reject(Rejection::AlreadyApplied)),

        (S::PendingPayment, Event::PaymentFailed { reason, .. }) => {
            next.last_error = Some(reason.clone());
        }
        (_, Event::PaymentFailed { .. }) => return Err(reject(Rejection::NotAllowed)),

        (S::PendingPayment, Event::Expire) => next.status = S::Expired,
        (S::Expired, Event::Expire) => return Err(reject(Rejection::AlreadyApplied)),
        (_, Event::Expire) => return Err(reject(Rejection::NotAllowed)),

        (S::Paid, Event::Claim { owner, lease_until }) => {
            if let Some(due) = order.next_attempt_at.filter(|due| *due > now) {
                return Err(reject(Rejection::NotDue(due)));
            }
            next.status = S::Generating;
            next.lease = Some(Lease {
                owner: owner.clone(),
                expires_at: *lease_until,
                tried: false,
            });
        }
        (S::Generating, Event::Claim { .. }) => {
            let until = order.lease.as_ref().map_or(now, |lease| lease.expires_at);
            return Err(reject(Rejection::LeaseHeld(until)));
        }
        (_, Event::Claim { .. }) => return Err(reject(Rejection::NotAllowed)),

        (S::Generating, Event::AttemptStarted { owner }) => {
            check_owner(order, owner).map_err(reject)?;
            if order.lease.as_ref().is_some_and(|lease| lease.tried) {
                return Err(reject(Rejection::AlreadyApplied));
            }
            next.attempts = order.attempts.saturating_add(1);
            if let Some(lease) = next.lease.as_mut() {
                lease.tried = true;
            }
        }
        (_, Event::AttemptStarted { .. }) => return Err(reject(Rejection::LeaseLost)),

        (S::Generating, Event::LeaseExpired) => {
            if let Some(lease) = order.lease.as_ref().filter(|lease| lease.expires_at > now) {
                return Err(reject(Rejection::LeaseHeld(lease.expires_at)));
            }
            if order.lease.as_ref().is_some_and(|lease| lease.tried) {
                let error = "the run writing the report stopped without an answer";
                retry_or_fail(&mut next, &mut actions, policy, now, error, true);
            } else {
                // The run died before it asked for the report: no attempt was used.
                next.rescues = order.rescues.saturating_add(1);
                let error = format!(
                    "the run that claimed the order stopped before it asked for the report \
                     ({} times)",
                    next.rescues
                );
                if next.rescues < policy.max_rescues {
                    next.lease = None;
                    next.status = S::Paid;
                    next.next_attempt_at = Some(now);
                    next.last_error = Some(error);
                } else {
                    retry_or_fail(&mut next, &mut actions, policy, now, &error, false);
                }
            }
        }
        (_, Event::LeaseExpired) => return Err(reject(Rejection::NotAllowed)),

        (S::Generating, Event::Generated { owner }) => {
            check_owner(order, owner).map_err(reject)?;
            next.lease = None;
            next.next_attempt_at = None;
            next.last_error = None;
            next.review_note = None;
            if policy.review_reports {
                await_review(
                    &mut next,
                    &mut actions,
                    now,
                    "is written and waits for your review",
                );
            } else {
                deliver(&mut next, &mut actions, now);
            }
        }
        (_, Event::Generated { .. }) => return Err(reject(Rejection::LeaseLost)),

        (S::AwaitingReview, Event::ReviewApproved) => {
            end_review(&mut next, now);
            deliver(&mut next, &mut actions, now);
        }
        (S::AwaitingReview, Event::ReviewRegenerate { note }) => {
            end_review(&mut next, now);
            next.review_note = Some(note.clone());
            next.status = S::Paid;
            next.next_attempt_at = Some(now);
            // A new round of writing: its attempts count from zero.
            next.attempts = 0;
            next.rescues = 0;
        }
        (S::AwaitingReview, Event::ReviewEdited) => {}
        (_, Event::ReviewApproved | Event::ReviewRegenerate { .. } | Event::ReviewEdited) => {
            return Err(reject(Rejection::NotAllowed));
        }

        (
            S::Generating,
            Event::GenerationFailed {
                owner,
                error,
                retryable,
            },
        ) => {
            check_owner(order, owner).map_err(reject)?;
            if order.lease.as_ref().is_some_and(|lease| !lease.tried) {
                // It failed before asking: still an attempt, so a failing step cannot loop.
                next.attempts = order.attempts.saturating_add(1);
            }
            retry_or_fail(&mut next, &mut actions, policy, now, error, *retryable);
        }
        (_, Event::GenerationFailed { .. }) => return Err(reject(Rejection::LeaseLost)),

        (
            S::Paid
            | S::Generating
            | S::AwaitingReview
            | S::Completed
            | S::RefundRequested
            | S::Failed
            | S::Refunding,
            Event::RefundRequested {
                source,
                reason,
                amount_cents,
                prior_refunds,
            },
        ) => {
            // A customer asking again while their money is already on its way back (or under
            // review) asked already; that comes before "nothing left to refund", which is what
            // a fully pending refund would otherwise say.
            if *source == RefundSource::Customer
                && matches!(order.status, S::RefundRequested | S::Failed | S::Refunding)
            {
                return Err(reject(Rejection::AlreadyApplied));
            }
            let refundable = order.refundable_cents();
            if refundable == 0 {
                return Err(reject(Rejection::NothingToRefund));
            }
            match source {
                RefundSource::Customer => {
                    match policy.refund_decision(order, *prior_refunds, now) {
                        RefundDecision::Approve => {
                            begin_refund(&mut next, &mut actions, refundable, *source, reason);
                        }
                        RefundDecision::Review(why) => {
                            let why: Vec<_> = why.iter().map(ToString::to_string).collect();
                            next.status = S::RefundRequested;
                            next.lease = None;
                            actions.push(Action::SendEmail(EmailKind::RefundUnderReview));
                            actions.push(Alert::of_step(format!(
                                "refund request waits for review: {}; refund it with `compass \
                                 refund {{order}}`, or decline it with `compass refund {{order}} \
                                 --decline --reason \"...\"`",
                                why.join(", ")
                            )));
                        }
                    }
                }
                RefundSource::Operator | RefundSource::Automatic => {
                    let amount = amount_cents.unwrap_or(refundable);
                    if amount <= 0 || amount > refundable {
                        return Err(reject(Rejection::BadRefundAmount {
                            asked_cents: amount,
                            refundable_cents: refundable,
                        }));
                    }
                    if amount == refundable {
                        begin_refund(&mut next, &mut actions, amount, *source, reason);
                    } else {
                        // A partial refund is goodwill: the order carries on where it is.
                        issue_refund(&mut next, &mut actions, amount, *source, reason);
                    }
                }
            }
        }
        (S::PendingPayment | S::Expired, Event::RefundRequested { .. }) => {
            return Err(reject(Rejection::NotPaid));
        }
        (S::Disputed, Event::RefundRequested { .. }) => return Err(reject(Rejection::NotAllowed)),

        (S::RefundRequested, Event::RefundDeclined { .. }) => resume(&mut next, now),
        (_, Event::RefundDeclined { .. }) => return Err(reject(Rejection::NotAllowed)),

        (
            S::Paid
            | S::Generating
            | S::AwaitingReview
            | S::Completed
            | S::Failed
            | S::RefundRequested
            | S::Refunding
            | S::Disputed,
            Event::RefundSucceeded {
                refund,
                refunded_total_cents,
            },
        ) => {
            let total = (*refunded_total_cents).min(order.amount_cents);
            let ours = refund.filter(|n| order.pending_refunds.iter().any(|r| r.number == *n));
            if ours.is_none() && total <= order.refunded_cents {
                return Err(reject(Rejection::AlreadyApplied));
            }
            let mut settled_cents = 0;
            if let Some(number) = ours {
                settled_cents = order
                    .pending_refunds
                    .iter()
                    .filter(|r| r.number == number)
                    .map(|r| r.amount_cents)
                    .sum();
                next.pending_refunds.retain(|r| r.number != number);
                actions.push(Action::SettleRefund {
                    number,
                    outcome: RefundOutcome::Succeeded,
                });
            }
            // A stale total from Stripe never undercounts a refund we know went through.
            next.refunded_cents = total
                .max(order.refunded_cents + settled_cents)
                .min(order.amount_cents);
            if next.refunded_cents > order.refunded_cents {
                actions.push(Action::IssueCreditNote {
                    refund: ours,
                    amount_cents: next.refunded_cents - order.refunded_cents,
                });
            }
            if next.refunded_cents == order.amount_cents {
                finish_refunded(&mut next, &mut actions);
                actions.push(Action::SendEmail(EmailKind::RefundProcessed));
            }
        }
        (S::PendingPayment | S::Expired, Event::RefundSucceeded { .. }) => {
            // Listed in AWAITING_PAYMENT, which the event store's retry pass reads.
            return Err(reject(Rejection::NotYet));
        }

        (
            S::Paid
            | S::Generating
            | S::AwaitingReview
            | S::Completed
            | S::Failed
            | S::RefundRequested
            | S::Refunding
            | S::Disputed,
            Event::RefundFailed { refund, error },
        ) => {
            if !order.pending_refunds.iter().any(|r| r.number == *refund) {
                return Err(reject(Rejection::AlreadyApplied));
            }
            // That refund is settled as failed: the operator can issue the money again.
            next.pending_refunds.retain(|r| r.number != *refund);
            next.last_error = Some(error.clone());
            actions.push(Action::SettleRefund {
                number: *refund,
                outcome: RefundOutcome::Failed(error.clone()),
            });
            actions.push(Alert::of_step(format!(
                "refund failed at Stripe: {error}; retry with `compass refund {{order}}`"
            )));
        }
        (S::PendingPayment | S::Expired, Event::RefundFailed { .. }) => {
            return Err(reject(Rejection::NotYet));
        }

        (
            S::Paid
            | S::Generating
            | S::AwaitingReview
            | S::Completed
            | S::Failed
            | S::RefundRequested
            | S::Refunding,
            Event::DisputeOpened { dispute, reason },
        ) => {
            next.status = S::Disputed;
            next.disputed_from = Some(order.status);
            next.lease = None;
            actions.push(Alert::about(
                format!("dispute {dispute} opened"),
                format!(
                    "dispute {dispute} opened ({reason}): work on the order stopped; answer it in the Stripe dashboard"
                ),
            ));
        }
        (S::Disputed, Event::DisputeOpened { .. }) => {
            return Err(reject(Rejection::AlreadyApplied));
        }

        (S::Disputed, Event::DisputeClosed { won: false, .. }) => {
            // The bank took the money back: the customer has it, as after a refund.
            next.disputed_from = None;
            finish_refunded(&mut next, &mut actions);
        }
        (S::Disputed, Event::DisputeClosed { won: true, .. }) => {
            next.disputed_from = None;
            match order.disputed_from {
                Some(from @ (S::Completed | S::RefundRequested | S::AwaitingReview)) => {
                    next.status = from;
                }
                Some(from @ (S::Failed | S::Refunding)) => {
                    // The refund owed before the dispute is still owed.
                    next.status = from;
                    let refundable = order.refundable_cents();
                    if refundable > 0 {
                        let source = if from == S::Failed {
                            RefundSource::Automatic
                        } else {
                            RefundSource::Operator
                        };
                        let reason = "dispute won; completing the refund it interrupted";
                        issue_refund(&mut next, &mut actions, refundable, source, reason);
                    }
                }
                _ => resume(&mut next, now),
            }
        }
        (_, Event::DisputeClosed { .. }) => return Err(reject(Rejection::NotAllowed)),
    }

    Ok(Step {
        order: next,
        actions,
    })
}

fn check_owner(order: &Order, owner: &str) -> Result<(), Rejection> {
    match &order.lease {
        Some(lease) if lease.owner == owner => Ok(()),
        _ => Err(Rejection::LeaseLost),
    }
}

/// After a failed or abandoned attempt: back to `paid` after the backoff, or `failed` for good.
fn retry_or_fail(
    next: &mut Order,
    actions: &mut Vec<Action>,
    policy: &Policy,
    now: OffsetDateTime,
    error: &str,
    retryable: bool,
) {
    next.lease = None;
    next.last_error = Some(error.to_owned());
    if retryable && next.attempts < policy.max_attempts {
        next.status = Status::Paid;
        next.next_attempt_at = Some(now + policy.backoff(next.attempts));
        return;
    }
    if next.review_note.take().is_some() {
        // Writing it again for the consultant failed: the report they reviewed is still
        // stored, and waits for them again; the customer paid for that one.
        next.next_attempt_at = None;
        let what = format!(
            "could not be written again ({error}): the earlier report waits for your review"
        );
        await_review(next, actions, now, &what);
        return;
    }
    next.status = Status::Failed;
    next.next_attempt_at = None;
    let refundable = next.refundable_cents();
    if refundable > 0 {
        let reason = format!("report could not be written: {error}");
        issue_refund(next, actions, refundable, RefundSource::Automatic, &reason);
    }
    actions.push(Action::SendEmail(EmailKind::ProcessingFailed));
    actions.push(Alert::of_step(format!(
        "order failed after {} attempts: {error}; refund queued",
        next.attempts
    )));
}

fn begin_refund(
    next: &mut Order,
    actions: &mut Vec<Action>,
    amount_cents: i64,
    source: RefundSource,
    reason: &str,
) {
    next.status = Status::Refunding;
    next.lease = None;
    next.next_attempt_at = None;
    issue_refund(next, actions, amount_cents, source, reason);
}

/// Issues the order's next refund: numbered, pending until Stripe settles it.
fn issue_refund(
    next: &mut Order,
    actions: &mut Vec<Action>,
    amount_cents: i64,
    source: RefundSource,
    reason: &str,
) {
    next.refunds_issued += 1;
    let number = next.refunds_issued;
    next.pending_refunds.push(PendingRefund {
        number,
        amount_cents,
    });
    actions.push(Action::IssueRefund {
        number,
        amount_cents,
        source,
        reason: reason.to_owned(),
    });
}

/// All the money is back: the order ends, and refunds still pending are no longer needed.
fn finish_refunded(next: &mut Order, actions: &mut Vec<Action>) {
    next.status = Status::Refunded;
    next.lease = None;
    next.next_attempt_at = None;
    for refund in next.pending_refunds.drain(..) {
        actions.push(Action::SettleRefund {
            number: refund.number,
            outcome: RefundOutcome::Canceled,
        });
    }
}

/// The report is stored and goes to the customer.
fn deliver(next: &mut Order, actions: &mut Vec<Action>, now: OffsetDateTime) {
    next.status = Status::Completed;
    next.completed_at = Some(now);
    actions.push(Action::SendEmail(EmailKind::ReportReady));
}

/// The stored report waits for the consultant, who is told what happened (`what`).
fn await_review(next: &mut Order, actions: &mut Vec<Action>, now: OffsetDateTime, what: &str) {
    next.status = Status::AwaitingReview;
    next.review_since = Some(now);
    actions.push(Alert::of_step(format!(
        "the report {what}: read it with `compass review {{order}}`, then --approve, \
         --regenerate --note \"...\" or --edit"
    )));
}

/// The report no longer waits: the time it waited stops the refund window's clock.
fn end_review(next: &mut Order, now: OffsetDateTime) {
    if let Some(since) = next.review_since.take() {
        // A clock set back since (another machine's, say) never makes the wait negative.
        next.reviewed_for += (now - since).max(time::Duration::ZERO);
    }
}

/// Back to where a paused order was: delivered if it was, waiting for review if its report
/// was, otherwise due for `process` now.
fn resume(next: &mut Order, now: OffsetDateTime) {
    if next.completed_at.is_some() {
        next.status = Status::Completed;
    } else if next.review_since.is_some() {
        next.status = Status::AwaitingReview;
    } else {
        next.status = Status::Paid;
        next.next_attempt_at = Some(now);
    }
}
