//! Work after the answer, off the web workers: Stripe's events and the refunds a customer's
//! approved request issues.
//!
//! Handling a `payment_intent.succeeded` reads the PaymentIntent back from Stripe, which can
//! take seconds; done on the worker that answered the webhook, a burst of events held every
//! worker and the site stopped answering. Here a small pool of handlers, each with its own
//! `App`, takes that work from a bounded queue that the web workers fill without ever waiting.
//! Nothing is lost when the queue is full or serve dies: the event is already committed and
//! handler 0's retry pass (every ten seconds) picks up every due event, and a pending refund is
//! asked for again by the next `process` pass.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::app::App;
use crate::clock;

/// Work for the handlers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Work {
    /// Handle the stored Stripe event with this id.
    Event(String),
    /// Ask Stripe for this order's pending refunds.
    Refunds(String),
}

/// Where web workers hand work over; `push` never blocks.
#[derive(Clone, Debug)]
pub struct Queue(SyncSender<Work>);

/// Work waiting for a handler at most; beyond it, the retry pass and `process` take over.
pub const QUEUE_CAPACITY: usize = 1024;

/// How often handler 0 handles the events that are due again (failed earlier, or dropped from
/// a full queue).
const RETRY_EVERY: Duration = Duration::from_secs(10);

/// A queue and the receiving end the handlers share.
pub fn queue() -> (Queue, Mutex<Receiver<Work>>) {
    let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUE_CAPACITY);
    (Queue(sender), Mutex::new(receiver))
}

impl Queue {
    /// Hands `work` to the handlers, or leaves it to the retry pass when they are behind.
    pub fn push(&self, work: Work) {
        match self.0.try_send(work) {
            Ok(()) => {}
            Err(TrySendError::Full(work)) => {
                tracing::warn!(
                    ?work,
                    "the event handlers are behind; the retry pass takes it"
                );
            }
            Err(TrySendError::Disconnected(work)) => {
                tracing::warn!(?work, "the event handlers stopped; the retry pass takes it");
            }
        }
    }
}

/// Runs handler `n` until `stopping()` says so and the queue is empty.
pub fn handle(
    n: usize,
    app: &mut App,
    work: &Mutex<Receiver<Work>>,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    stopping: &dyn Fn() -> bool,
) {
    let mut last_retry = Instant::now();
    loop {
        let (stop, next) = {
            // Whether to stop is asked with the lock held: a handler that waited for the lock
            // while another waited for work must not then wait out a whole timeout itself.
            let receiver = work.lock().unwrap_or_else(PoisonError::into_inner);
            let stop = stopping();
            let next = if stop {
                receiver.try_recv().ok()
            } else {
                receiver.recv_timeout(Duration::from_millis(200)).ok()
            };
            (stop, next)
        };
        match (next, clock::now(env)) {
            (Some(work), Ok(now)) => do_work(app, &work, now),
            (Some(work), Err(err)) => tracing::error!(?work, "no clock: {err:#}"),
            (None, _) if stop => return,
            (None, _) => {}
        }
        // Also when serve is idle: the WAL the last answers grew is copied back meanwhile.
        if let Err(err) = app.db.checkpoint_if_due() {
            tracing::warn!("{err:#}");
        }
        if n == 0 && last_retry.elapsed() >= RETRY_EVERY {
            last_retry = Instant::now();
            if let Ok(now) = clock::now(env)
                && let Err(err) = crate::payments::drain_events(app, now, 100)
            {
                tracing::error!("cannot handle stored Stripe events: {err:#}");
            }
        }
    }
}

fn do_work(app: &mut App, work: &Work, now: time::OffsetDateTime) {
    match work {
        Work::Event(id) => {
            if let Err(err) = crate::payments::handle_event(app, id, now) {
                tracing::error!(event = %id, "cannot handle the event: {err:#}");
            }
        }
        Work::Refunds(order) => {
            // A refund Stripe cannot take now stays pending; `process` asks again.
            if let Err(err) = crate::refunds::issue_pending(app, Some(order), now) {
                tracing::error!(%order, "cannot issue the refund: {err:#}");
            }
        }
    }
}
