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

mod step;
mod tier;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

pub use step::step;
pub use tier::Tier;

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
        /// The report is written and waits for the consultant's review (`[delivery] review`).
        AwaitingReview = "awaiting_review",
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
    /// Since when a written report waits for the consultant's review (kept while a refund
    /// request or a dispute pauses the order).
    pub review_since: Option<OffsetDateTime>,
    /// How long its reports waited for review before `review_since`: the refund window's
    /// clock stops while a report waits.
    pub reviewed_for: Duration,
    /// The consultant's instruction for the report being written again; set from the review
    /// until the new report is stored.
    pub review_note: Option<String>,
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
            review_since: None,
            reviewed_for: Duration::ZERO,
            review_note: None,
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
    /// The consultant approved the report waiting for review: it goes to the customer.
    ReviewApproved,
    /// The consultant has the report written again, with an instruction for the model.
    ReviewRegenerate { note: String },
    /// The consultant edited the report waiting for review; it waits still.
    ReviewEdited,
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
            Event::ReviewApproved => "review_approved",
            Event::ReviewRegenerate { .. } => "review_regenerate",
            Event::ReviewEdited => "review_edited",
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
    /// The payment is confirmed: issue the order's invoice (when it was sold with terms).
    IssueInvoice,
    /// Money went back: issue a credit note for it (`refund` is our refund's number, `None`
    /// for one made in the Stripe dashboard).
    IssueCreditNote {
        refund: Option<u32>,
        amount_cents: i64,
    },
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
    /// Self-service refunds inside this time since payment (not counting the time a report
    /// waited for review) may be approved on their own.
    pub refund_window: Duration,
    /// Whether self-service refunds are ever approved without the operator.
    pub auto_approve_refunds: bool,
    /// Whether a written report waits for the consultant's review before it goes out.
    pub review_reports: bool,
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
            review_reports: false,
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
        // The window runs from the payment, but not while the report waited for review.
        let waiting = order
            .review_since
            .map_or(Duration::ZERO, |since| now - since);
        match order.paid_at {
            Some(paid_at) if now - paid_at - order.reviewed_for - waiting < self.refund_window => {}
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

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests;
