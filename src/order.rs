//! The order lifecycle as a pure state machine.
//!
//! Every change of an order's state goes through [`step`]: it takes the order as it is, the event
//! that happened, the policy and the time, and returns the order as it must become together with
//! the side effects to carry out, as data. It does no IO, never reads the clock and imports nothing
//! from `db`, `http`, `mail`, `claude` or `stripe`; `db` stores a step and its event in one
//! transaction and the drivers carry out the actions.
//!
//! An event that does not apply returns [`InvalidTransition`] and changes nothing, so that a
//! webhook delivered twice or a worker that lost its lease is harmless.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// Declares an enum stored in the database and shown to people by name, with `ALL`, `as_str`,
/// `Display` and `FromStr` from one list of names.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The name stored in the database and shown to people.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<_> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    format!(concat!("unknown ", $what, " `{}`, expected one of {}"), s, names.join(", "))
                })
            }
        }
    };
}

named_enum! {
    /// Where an order is in its life.
    pub enum Status ("status") {
        /// Created from the form; waiting for Stripe to confirm the payment.
        PendingPayment = "pending_payment",
        /// Payment confirmed from the Stripe API; waiting for `process`.
        Paid = "paid",
        /// A `process` run holds a lease on it and is writing the report.
        Generating = "generating",
        /// The report is stored and the customer told.
        Completed = "completed",
        /// Generation failed for good; the automatic refund is under way.
        Failed = "failed",
        /// The customer asked for a refund that the policy does not approve on its own.
        RefundRequested = "refund_requested",
        /// A full refund is approved and being carried out.
        Refunding = "refunding",
        /// All the money went back to the customer. Terminal.
        Refunded = "refunded",
        /// Never paid and given up on; a late payment still revives it.
        Expired = "expired",
        /// The customer's bank opened a dispute; work stops until it closes.
        Disputed = "disputed",
    }
}

impl Status {
    /// No event leaves this status.
    pub fn is_terminal(self) -> bool {
        self == Status::Refunded
    }

    /// Money has been taken in this status (it may since have gone back).
    pub fn is_paid(self) -> bool {
        !matches!(self, Status::PendingPayment | Status::Expired)
    }
}

named_enum! {
    /// What the customer bought; it decides the depth of the report.
    pub enum Tier ("tier") {
        /// Scores, findings and quick wins.
        Starter = "starter",
        /// Starter plus recommendations, risks and a 90-day roadmap.
        Standard = "standard",
        /// Standard plus a use-case portfolio, a 12-month roadmap and budget ranges.
        Premium = "premium",
    }
}

impl Tier {
    /// The name shown to customers.
    pub fn title(self) -> &'static str {
        match self {
            Tier::Starter => "Starter",
            Tier::Standard => "Standard",
            Tier::Premium => "Premium",
        }
    }

    /// What the tier's report holds, as the intake form and the terms describe it.
    pub fn description(self) -> &'static str {
        match self {
            Tier::Starter => "Overall score, six pillar scores with findings, five quick wins.",
            Tier::Standard => {
                "Starter, plus recommendations per pillar, risks and a 90-day roadmap."
            }
            Tier::Premium => {
                "Standard, plus a use-case portfolio with effort and impact, a 12-month roadmap \
                 and budget ranges."
            }
        }
    }
}

named_enum! {
    /// Who asked for a refund.
    pub enum RefundSource ("refund source") {
        /// The customer, from the status page.
        Customer = "customer",
        /// The operator, with `compass refund`.
        Operator = "operator",
        /// compass itself, after generation failed for good.
        Automatic = "automatic",
    }
}

named_enum! {
    /// The emails an order can cause; each is sent at most once per order (see `db`).
    pub enum EmailKind ("email kind") {
        /// The payment went through; the report is on its way.
        PaymentConfirmation = "payment_confirmation",
        /// The report is ready: PDF attached, status link.
        ReportReady = "report_ready",
        /// We could not write the report; the money is on its way back.
        ProcessingFailed = "processing_failed",
        /// The refund went through.
        RefundProcessed = "refund_processed",
        /// The refund request waits for the operator.
        RefundUnderReview = "refund_under_review",
        /// A link to all of a customer's orders (not tied to one order).
        SignInLink = "sign_in_link",
        /// Something the operator must look at, to `mail.operator` (not tied to a customer).
        OperatorAlert = "operator_alert",
    }
}

/// A `process` run's hold on an order while it writes the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Who holds it (a run id).
    pub owner: String,
    /// When others may take the order over.
    pub expires_at: OffsetDateTime,
    /// Whether the run started its attempt (asked for the report). A lease that runs out
    /// before that costs no attempt.
    pub tried: bool,
}

/// The part of an order that its lifecycle reads and changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    /// Where it is.
    pub status: Status,
    /// The price charged, in the currency's smallest unit.
    pub amount_cents: i64,
    /// Lower-case ISO 4217 code.
    pub currency: String,
    /// Generation attempts started so far: counted when a run asks for the report, not when
    /// it claims the order.
    pub attempts: u32,
    /// Leases that ran out before their run asked for the report (a run killed while the
    /// order waited for a worker): free, up to `Policy::max_rescues`.
    pub rescues: u32,
    /// When `process` may next claim it.
    pub next_attempt_at: Option<OffsetDateTime>,
    /// Held by a `process` run while generating.
    pub lease: Option<Lease>,
    /// When the payment was confirmed.
    pub paid_at: Option<OffsetDateTime>,
    /// When the report was delivered.
    pub completed_at: Option<OffsetDateTime>,
    /// Money already back with the customer.
    pub refunded_cents: i64,
    /// Refunds issued but not yet settled by Stripe.
    pub pending_refunds: Vec<PendingRefund>,
    /// Refunds ever issued for this order: the next one is number `refunds_issued + 1`.
    pub refunds_issued: u32,
    /// How often the customer downloaded the report.
    pub downloads: u32,
    /// The status a dispute interrupted, to return to if we win it.
    pub disputed_from: Option<Status>,
    /// The last thing that went wrong, for the operator.
    pub last_error: Option<String>,
}

impl Order {
    /// A new, unpaid order.
    pub fn new(amount_cents: i64, currency: &str) -> Order {
        Order {
            status: Status::PendingPayment,
            amount_cents,
            currency: currency.to_ascii_lowercase(),
            attempts: 0,
            rescues: 0,
            next_attempt_at: None,
            lease: None,
            paid_at: None,
            completed_at: None,
            refunded_cents: 0,
            pending_refunds: Vec::new(),
            refunds_issued: 0,
            downloads: 0,
            disputed_from: None,
            last_error: None,
        }
    }

    /// Money in refunds issued but not yet settled.
    pub fn refund_pending_cents(&self) -> i64 {
        self.pending_refunds.iter().map(|r| r.amount_cents).sum()
    }

    /// What could still be refunded: paid, less refunded, less refunds under way.
    pub fn refundable_cents(&self) -> i64 {
        if !self.status.is_paid() {
            return 0;
        }
        (self.amount_cents - self.refunded_cents - self.refund_pending_cents()).max(0)
    }
}

/// A refund issued and not yet settled. Its number is unique within the order, and the
/// refund's Idempotency-Key derives from the order id and this number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRefund {
    /// 1 for the order's first refund, 2 for its second...
    pub number: u32,
    /// How much it gives back.
    pub amount_cents: i64,
}

/// Something that happened to an order. Serialized (its fields only) into the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Event {
    /// The PaymentIntent succeeded, as read back from the Stripe API.
    PaymentConfirmed {
        payment_intent: String,
        amount_cents: i64,
        currency: String,
    },
    /// A payment attempt failed; the order stays payable.
    PaymentFailed {
        payment_intent: String,
        reason: String,
    },
    /// Unpaid for too long.
    Expire,
    /// A `process` run takes the order to write its report.
    Claim {
        owner: String,
        #[serde(with = "time::serde::rfc3339")]
        lease_until: OffsetDateTime,
    },
    /// The run holding the lease starts its attempt: it asks for the report now.
    AttemptStarted { owner: String },
    /// The lease ran out without an answer (the run died); the order is due again.
    LeaseExpired,
    /// The report is stored.
    Generated { owner: String },
    /// Writing the report failed.
    GenerationFailed {
        owner: String,
        error: String,
        retryable: bool,
    },
    /// Someone asks for money back: `amount_cents` only from the operator, for a partial refund.
    RefundRequested {
        source: RefundSource,
        reason: String,
        amount_cents: Option<i64>,
        /// Refunds this customer (by normalised email) had before, for the auto-approval rule.
        prior_refunds: u32,
    },
    /// The operator turns down a refund request.
    RefundDeclined { reason: String },
    /// Stripe reports money refunded: `refund` is our refund's number if it was ours (`None` for
    /// one made in the Stripe dashboard); `refunded_total_cents` is the total for the charge.
    RefundSucceeded {
        refund: Option<u32>,
        refunded_total_cents: i64,
    },
    /// A refund we issued failed at Stripe.
    RefundFailed { refund: u32, error: String },
    /// The customer's bank opened a dispute.
    DisputeOpened { dispute: String, reason: String },
    /// The dispute closed.
    DisputeClosed { dispute: String, won: bool },
}

impl Event {
    /// The name stored in the timeline.
    pub fn name(&self) -> &'static str {
        match self {
            Event::PaymentConfirmed { .. } => "payment_confirmed",
            Event::PaymentFailed { .. } => "payment_failed",
            Event::Expire => "expired",
            Event::Claim { .. } => "claimed",
            Event::AttemptStarted { .. } => "attempt_started",
            Event::LeaseExpired => "lease_expired",
            Event::Generated { .. } => "generated",
            Event::GenerationFailed { .. } => "generation_failed",
            Event::RefundRequested { .. } => "refund_requested",
            Event::RefundDeclined { .. } => "refund_declined",
            Event::RefundSucceeded { .. } => "refund_succeeded",
            Event::RefundFailed { .. } => "refund_failed",
            Event::DisputeOpened { .. } => "dispute_opened",
            Event::DisputeClosed { .. } => "dispute_closed",
        }
    }
}

/// A side effect that a step asks for; `db` records it in the step's transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Queue this email for the order's customer.
    SendEmail(EmailKind),
    /// Give money back through Stripe, as this order's refund number `number`.
    IssueRefund {
        number: u32,
        amount_cents: i64,
        source: RefundSource,
        reason: String,
    },
    /// Record how an issued refund ended.
    SettleRefund { number: u32, outcome: RefundOutcome },
    /// Something the operator must look at.
    AlertOperator(Alert),
}

/// An alert for the operator: said with what to do (`{order}` in it stands for the order's
/// id), and what it is about, so that it is sent once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// The fact the alert is about, when it outlives one step (a payment that a reconcile may
    /// bring again, a dispute); otherwise the step that raised it is the fact.
    pub fact: Option<String>,
    pub message: String,
}

impl Alert {
    /// An alert about this step only.
    pub fn of_step(message: String) -> Action {
        Action::AlertOperator(Alert {
            fact: None,
            message,
        })
    }

    /// An alert about `fact`, however many steps see it.
    pub fn about(fact: String, message: String) -> Action {
        Action::AlertOperator(Alert {
            fact: Some(fact),
            message,
        })
    }
}

/// How an issued refund ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundOutcome {
    /// The money went back.
    Succeeded,
    /// Stripe refused or failed it.
    Failed(String),
    /// No longer needed: the money went back another way.
    Canceled,
}

impl RefundOutcome {
    /// The refund row's status.
    pub fn as_str(&self) -> &'static str {
        match self {
            RefundOutcome::Succeeded => "succeeded",
            RefundOutcome::Failed(_) => "failed",
            RefundOutcome::Canceled => "canceled",
        }
    }
}

/// The outcome of a legal event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The order as it is after the event.
    pub order: Order,
    /// What must happen because of it.
    pub actions: Vec<Action>,
}

/// The statuses in which a refund reported by Stripe is `NotYet`: its payment is not applied.
pub const AWAITING_PAYMENT: [Status; 2] = [Status::PendingPayment, Status::Expired];

/// The rules `step` applies, from configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Generation attempts before an order fails for good.
    pub max_attempts: u32,
    /// Leases that may run out before their run asked for the report, before the order fails
    /// for good (a run that dies at every start would otherwise never end).
    pub max_rescues: u32,
    /// Wait after the first failed attempt; doubles with each further one.
    pub backoff_base: Duration,
    /// The longest wait between attempts.
    pub backoff_cap: Duration,
    /// Self-service refunds inside this time since payment may be approved on their own.
    pub refund_window: Duration,
    /// Whether self-service refunds are ever approved without the operator.
    pub auto_approve_refunds: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_attempts: 5,
            max_rescues: 10,
            backoff_base: Duration::seconds(30),
            backoff_cap: Duration::hours(1),
            refund_window: Duration::days(7),
            auto_approve_refunds: true,
        }
    }
}

impl Policy {
    /// The wait after the `attempts`-th failed attempt: base * 2^(attempts - 1), capped.
    pub fn backoff(&self, attempts: u32) -> Duration {
        crate::backoff::doubling_wait(self.backoff_base, attempts, self.backoff_cap)
    }

    /// Whether a customer's refund request may be approved without the operator, and if not, why.
    pub fn refund_decision(
        &self,
        order: &Order,
        prior_refunds: u32,
        now: OffsetDateTime,
    ) -> RefundDecision {
        let mut reasons = Vec::new();
        if !self.auto_approve_refunds {
            reasons.push(ReviewReason::AutoApprovalOff);
        }
        match order.paid_at {
            Some(paid_at) if now - paid_at < self.refund_window => {}
            _ => reasons.push(ReviewReason::OutsideWindow),
        }
        if order.downloads > 0 {
            reasons.push(ReviewReason::Downloaded);
        }
        if prior_refunds > 0 {
            reasons.push(ReviewReason::NotFirstRefund);
        }
        if reasons.is_empty() {
            RefundDecision::Approve
        } else {
            RefundDecision::Review(reasons)
        }
    }
}

/// What the refund rule says of a customer's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundDecision {
    /// Refund now.
    Approve,
    /// Wait for the operator, for these reasons.
    Review(Vec<ReviewReason>),
}

/// Why a refund request needs the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewReason {
    /// Auto-approval is switched off in the configuration.
    AutoApprovalOff,
    /// The purchase is older than the refund window.
    OutsideWindow,
    /// The report was downloaded.
    Downloaded,
    /// This customer had a refund before.
    NotFirstRefund,
}

impl fmt::Display for ReviewReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReviewReason::AutoApprovalOff => "automatic approval is off",
            ReviewReason::OutsideWindow => "the purchase is outside the refund window",
            ReviewReason::Downloaded => "the report was downloaded",
            ReviewReason::NotFirstRefund => "the customer had a refund before",
        })
    }
}

/// Why an event does not apply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The event has no meaning in this status.
    #[error("not allowed")]
    NotAllowed,
    /// The fact is already reflected: a redelivery or a replay.
    #[error("already applied")]
    AlreadyApplied,
    /// Claimed before its next attempt is due.
    #[error("not due until {}", rfc3339(*.0))]
    NotDue(OffsetDateTime),
    /// The lease is still held.
    #[error("leased until {}", rfc3339(*.0))]
    LeaseHeld(OffsetDateTime),
    /// The report came from a run that no longer holds the lease.
    #[error("the lease belongs to another run")]
    LeaseLost,
    /// A refund of an order that was never paid.
    #[error("the order was never paid")]
    NotPaid,
    /// A fact from Stripe that presupposes one the order has not seen yet: a refund reported
    /// before the payment it returns (Stripe does not promise the order of its events).
    #[error("its payment is not recorded yet")]
    NotYet,
    /// No money is left to refund.
    #[error("nothing left to refund")]
    NothingToRefund,
    /// A refund amount that is zero, negative or more than is left.
    #[error("refund of {asked_cents} is not possible: {refundable_cents} can be refunded")]
    BadRefundAmount {
        asked_cents: i64,
        refundable_cents: i64,
    },
}

/// An event that does not apply to the order as it is; nothing changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("order is {from}: cannot apply {event} ({why})")]
pub struct InvalidTransition {
    /// The order's status when the event came.
    pub from: Status,
    /// The event's name.
    pub event: &'static str,
    /// Why it does not apply.
    pub why: Rejection,
}

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
            next.status = S::Completed;
            next.completed_at = Some(now);
            next.lease = None;
            next.next_attempt_at = None;
            next.last_error = None;
            actions.push(Action::SendEmail(EmailKind::ReportReady));
        }
        (_, Event::Generated { .. }) => return Err(reject(Rejection::LeaseLost)),

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
            S::Paid | S::Generating | S::Completed | S::RefundRequested | S::Failed | S::Refunding,
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
            S::Paid | S::Generating | S::Completed | S::Failed | S::RefundRequested | S::Refunding,
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
                Some(from @ (S::Completed | S::RefundRequested)) => next.status = from,
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

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
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

/// Back to where a paused order was: delivered if it was, otherwise due for `process` now.
fn resume(next: &mut Order, now: OffsetDateTime) {
    if next.completed_at.is_some() {
        next.status = Status::Completed;
    } else {
        next.status = Status::Paid;
        next.next_attempt_at = Some(now);
    }
}

#[cfg(test)]
mod tests;
