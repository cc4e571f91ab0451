//! `compass process`: the batch driver that turns paid orders into reports.
//!
//! One pass rescues orders whose lease expired (their run died), then works on up to C due
//! orders at once, each worker with its own database connection claiming its next order only
//! when it is free to start it (each claim's lease owner unique to it). An attempt counts when
//! the worker starts it (`AttemptStarted`, just before asking Claude), not at the claim, so a
//! run killed while orders wait costs them nothing. Every outcome goes through `order::step`:
//! a report is stored together with the step that completes the order, and a failure is data
//! (a retry later, or `failed` with the refund queued), never an `Err` that stops the batch.
//! A run that lost its lease while working writes nothing: the later run's work stands.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use serde::Serialize;
use time::OffsetDateTime;

use crate::app::{App, Methods};
use crate::ask::{self, Limits};
use crate::claude::ClaudeClient;
use crate::config::Config;
use crate::db::{Artifact, Db, StoredOrder};
use crate::mail::outbox::{self, Sent};
use crate::mail::{Composer, Mailer};
use crate::method::{Intake, Method};
use crate::order::{Event, Status};
use crate::refunds::{self, IssuedRefund};
use crate::report::{self, Figures, Report, Signature, Written, prompt::Prompts};

/// How much one pass takes on.
#[derive(Clone, Debug)]
pub struct Options {
    /// Orders claimed in this pass at most.
    pub limit: u32,
    /// Orders worked on at once.
    pub concurrency: usize,
    /// Who writes the reports.
    pub writer: Writer,
}

/// Who writes the reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// Claude, through the Messages API.
    Claude,
    /// The built-in sample text, labelled SAMPLE: `compass demo` only.
    Sample,
}

/// How an order's attempt ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result", content = "detail")]
pub enum Finished {
    /// The report is stored and the order completed.
    Completed,
    /// The report is stored and waits for the consultant's review (`[delivery] review`).
    AwaitingReview,
    /// Writing it again after the consultant's review failed for good; the report they read
    /// waits for them again.
    RewriteFailed(String),
    /// It failed and will be tried again later.
    Retrying(String),
    /// It failed for good: refund and email queued.
    Failed(String),
    /// Another run took the order over; this run's work was dropped.
    LeaseLost,
}

/// One order's attempt in this pass.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub order_id: String,
    #[serde(flatten)]
    pub result: Finished,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache (billed at a tenth of the input price).
    pub cache_read_tokens: u64,
    /// Input tokens written to the prompt cache (billed at 1.25 times).
    pub cache_write_tokens: u64,
    pub cost_micros: i64,
    /// The whole attempt, wall clock.
    pub millis: u64,
    /// Of which waiting on Claude (retries included); the rest is compass's own work.
    pub claude_millis: u64,
}

/// What one pass did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Orders whose expired lease was rescued.
    pub rescued: usize,
    pub outcomes: Vec<Outcome>,
    /// Refunds asked of Stripe.
    pub refunds: Vec<IssuedRefund>,
    /// Why refunds could not be asked for at all (no Stripe key, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_error: Option<String>,
    /// Invoices and credit notes rendered and stored (issued since the last pass).
    #[serde(skip_serializing_if = "is_zero")]
    pub documents: usize,
    /// The outbox.
    pub emails: Sent,
    /// Orders whose answers and report were erased under `[retention]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub erased: Vec<String>,
    /// Reports the operator was reminded of again: they have waited long for review.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub review_reminders: Vec<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Told about progress, for a progress bar or log lines.
pub trait Progress: Sync {
    /// `total` orders were claimed.
    fn claimed(&self, total: usize);
    /// An order is being worked on.
    fn working(&self, order_id: &str);
    /// An order is done with.
    fn done(&self, outcome: &Outcome);
}

/// Progress nobody watches (the demo, the screenshots).
pub struct Silent;

impl Progress for Silent {
    fn claimed(&self, _total: usize) {}
    fn working(&self, _order_id: &str) {}
    fn done(&self, _outcome: &Outcome) {}
}

/// The clock, read at each step of a long batch.
pub type Clock<'a> = &'a (dyn Fn() -> anyhow::Result<OffsetDateTime> + Sync);

/// One pass: rescue, claim, work and record; then ask Stripe for the refunds that are due,
/// send the emails that are due, and erase what `[retention]` no longer keeps. A refund or an
/// email that cannot go out now stays queued.
pub fn run_once(
    config_path: &Path,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    clock: Clock<'_>,
    options: &Options,
    progress: &dyn Progress,
) -> anyhow::Result<Summary> {
    let mut app = App::open(config_path, env)?;
    let claude = match options.writer {
        Writer::Claude => Some(ClaudeClient::new(&app.config.claude)?),
        Writer::Sample => None,
    };
    let mailer = Mailer::new(&app.config.mail)?;
    let composer = Composer::new(&app.method)?;
    let mut summary = Summary::default();
    work_orders(
        &mut app,
        claude.as_ref(),
        clock,
        options,
        progress,
        &mut summary,
    )?;
    summary.review_reminders = crate::review::remind(&mut app, clock()?)?;

    match refunds::issue_pending(&mut app, None, clock()?) {
        Ok(issued) => summary.refunds = issued,
        Err(err) => {
            tracing::error!("cannot issue refunds: {err:#}");
            summary.refund_error = Some(format!("{err:#}"));
        }
    }
    // Before the emails that carry them; one that does not render waits with its email.
    match crate::billing::render_pending(&mut app) {
        Ok(n) => summary.documents = n,
        Err(err) => tracing::error!("cannot render the invoices: {err:#}"),
    }
    summary.emails = outbox::send_due(
        &mut app.db,
        &app.config,
        &mailer,
        &composer,
        clock,
        EMAILS_PER_PASS,
    )?;
    if let Some(keep) = app.config.retention {
        let now = clock()?;
        summary.erased = app.db.erase_expired(now - keep, now)?;
        if !summary.erased.is_empty() {
            tracing::info!(
                orders = summary.erased.len(),
                "answers and reports erased (retention)"
            );
        }
    }
    Ok(summary)
}

/// Emails sent per pass at most; the rest wait for the next.
const EMAILS_PER_PASS: u32 = 500;

/// Rescues expired leases, claims due orders and works on them.
fn work_orders(
    app: &mut App,
    claude: Option<&ClaudeClient>,
    clock: Clock<'_>,
    options: &Options,
    progress: &dyn Progress,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let policy = app.config.policy.clone();

    let now = clock()?;
    for id in app.db.expired_leases(now)? {
        if app
            .db
            .apply(&id, &Event::LeaseExpired, &policy, "process", now)?
            .is_ok()
        {
            tracing::warn!(order = %id, "rescued an order whose lease expired");
            summary.rescued += 1;
        }
    }

    // Each worker claims its next order only when it is free to start it: an order waiting
    // for a worker holds no lease, so a run killed meanwhile costs it nothing.
    let due = app.db.due_orders(clock()?, options.limit)?.len();
    progress.claimed(due);
    if due == 0 {
        return Ok(());
    }
    let run = uuid::Uuid::now_v7().to_string();
    let claims = AtomicU32::new(0);
    let outcomes = Mutex::new(Vec::new());
    let write_lock = Arc::new(Mutex::new(()));
    let config = &app.config;
    let methods = app.methods();
    let methods = &*methods;
    let workers = options.concurrency.clamp(1, 64).min(due);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let worker = Worker {
                    config,
                    claude,
                    clock,
                    methods,
                };
                let (claims, outcomes, write_lock) = (&claims, &outcomes, Arc::clone(&write_lock));
                let run = &run;
                scope.spawn(move || -> anyhow::Result<()> {
                    let mut db = Db::open(&config.database)?;
                    db.share_write_lock(write_lock);
                    loop {
                        let n = claims.fetch_add(1, Ordering::Relaxed);
                        if n >= options.limit {
                            return Ok(());
                        }
                        // Unique to this claim: the run, and the claim's number in it.
                        let owner = format!("{run}:{}", n + 1);
                        let policy = &config.policy;
                        let Some(order) = db.claim_next(&owner, config.lease, policy, clock()?)?
                        else {
                            return Ok(());
                        };
                        progress.working(&order.id);
                        let outcome = worker.attempt(&mut db, &order, &owner)?;
                        progress.done(&outcome);
                        outcomes
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(outcome);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("a worker panicked"))??;
        }
        Ok(())
    })?;
    summary.outcomes = outcomes
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    Ok(())
}

/// What a worker thread shares with the others.
struct Worker<'a> {
    config: &'a Config,
    /// `None` in demo mode: the built-in sample text, labelled as a sample.
    claude: Option<&'a ClaudeClient>,
    clock: Clock<'a>,
    /// The methods orders were sold with: each order is written by its own.
    methods: &'a Methods,
}

/// Tokens and cost of the calls for one order.
#[derive(Default)]
struct Spent {
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    cost_micros: i64,
    claude: std::time::Duration,
}

impl Worker<'_> {
    /// Works on one claimed order and records the outcome; `Err` only if the database fails.
    fn attempt(&self, db: &mut Db, order: &StoredOrder, owner: &str) -> anyhow::Result<Outcome> {
        let started = std::time::Instant::now();
        let mut spent = Spent::default();
        let policy = &self.config.policy;
        // The attempt counts from here, as the report is asked for.
        let start = Event::AttemptStarted {
            owner: owner.to_owned(),
        };
        if db
            .apply(&order.id, &start, policy, "process", (self.clock)()?)?
            .is_err()
        {
            return Ok(Outcome {
                order_id: order.id.clone(),
                result: Finished::LeaseLost,
                input_tokens: 0,
                output_tokens: 0,
                cache_read_tokens: 0,
                cache_write_tokens: 0,
                cost_micros: 0,
                millis: millis(started.elapsed()),
                claude_millis: 0,
            });
        }
        let written = self.write(db, order, &mut spent);
        let now = (self.clock)()?;
        let result = match written {
            Ok(artifacts) => {
                let files: Vec<Artifact<'_>> = artifacts
                    .iter()
                    .map(|(kind, content)| Artifact {
                        kind,
                        content: content.as_slice(),
                    })
                    .collect();
                match db.complete(&order.id, owner, &files, policy, now)? {
                    Ok(step) if step.order.status == Status::AwaitingReview => {
                        Finished::AwaitingReview
                    }
                    Ok(_) => Finished::Completed,
                    Err(_) => Finished::LeaseLost,
                }
            }
            Err(failure) => {
                let event = Event::GenerationFailed {
                    owner: owner.to_owned(),
                    error: failure.message.clone(),
                    retryable: failure.retryable,
                };
                match db.apply(&order.id, &event, policy, "process", now)? {
                    Ok(step) if step.order.status == Status::Failed => {
                        Finished::Failed(failure.message)
                    }
                    Ok(step) if step.order.status == Status::AwaitingReview => {
                        Finished::RewriteFailed(failure.message)
                    }
                    Ok(_) => Finished::Retrying(failure.message),
                    Err(_) => Finished::LeaseLost,
                }
            }
        };
        Ok(Outcome {
            order_id: order.id.clone(),
            result,
            input_tokens: spent.input_tokens,
            output_tokens: spent.output_tokens,
            cache_read_tokens: spent.cache_read_tokens,
            cache_write_tokens: spent.cache_write_tokens,
            cost_micros: spent.cost_micros,
            millis: millis(started.elapsed()),
            claude_millis: millis(spent.claude),
        })
    }

    /// Asks for the report (with one repair round) and renders it; the files to store.
    fn write(
        &self,
        db: &mut Db,
        order: &StoredOrder,
        spent: &mut Spent,
    ) -> Result<Vec<(&'static str, Vec<u8>)>, Failure> {
        let method = self
            .methods
            .of(db, order.method_version.as_deref())
            .map_err(|err| Failure::permanent(format!("{err:#}")))?;
        let intake: Intake = db
            .questionnaire_of(&order.id)
            .and_then(|v| {
                serde_json::from_value(v).context("the stored answers do not fit the questionnaire")
            })
            .map_err(|err| Failure::permanent(format!("{err:#}")))?;
        let tier = method.tier(&intake.tier).ok_or_else(|| {
            Failure::permanent(format!(
                "the order's method sells no tier `{}`",
                intake.tier
            ))
        })?;
        let scores = method.scores(&intake);
        let peers = db
            .peer_scores(&order.id)
            .map_err(|err| Failure::retryable(format!("{err:#}")))
            .map(|rows| report::peers::for_intake(&rows, &intake, &scores, &method))?;
        let (written, sample) = match self.claude {
            Some(claude) => {
                let figures = Figures {
                    scores: &scores,
                    peers: peers.as_ref(),
                };
                let asked = self.ask(claude, db, &method, order, &intake, figures, spent)?;
                (asked, false)
            }
            None => (report::sample::written(tier, &method), true),
        };
        let today = (self.clock)()
            .map_err(|err| Failure::retryable(format!("{err:#}")))?
            .date();
        let report = Report {
            sample,
            peers,
            ..Report::new(&intake, &method, scores, written, today)
        };
        let files = report
            .files(&method, &Signature::of(self.config))
            .map_err(|err| Failure::permanent(format!("{err:#}")))?;
        Ok(files.into())
    }

    /// Asks Claude for the report's words (`ask`), recording every call.
    #[allow(clippy::too_many_arguments)]
    fn ask(
        &self,
        claude: &ClaudeClient,
        db: &mut Db,
        method: &Method,
        order: &StoredOrder,
        intake: &Intake,
        figures: Figures<'_>,
        spent: &mut Spent,
    ) -> Result<Written, Failure> {
        let tier = method.tier(&intake.tier).ok_or_else(|| {
            Failure::permanent(format!(
                "the order's method sells no tier `{}`",
                intake.tier
            ))
        })?;
        let business = &self.config.business_name;
        let prompt = Prompts::new(method)
            .and_then(|prompts| prompts.render(business, intake, method, figures))
            .map(|prompt| match &order.order.review_note {
                Some(note) => prompt.with_consultant_note(business, note),
                None => prompt,
            })
            .map_err(|err| Failure::permanent(format!("{err:#}")))?;
        let schema = report::schema(tier, method);
        let spent_before = db
            .llm_cost_of(&order.id)
            .map_err(|err| Failure::retryable(format!("{err:#}")))?;
        let limits = Limits::of(&self.config.claude, spent_before);
        let asked = std::time::Instant::now();
        let written = ask::written(
            claude,
            &prompt,
            &schema,
            tier,
            method,
            figures,
            &limits,
            &mut |attempt| {
                let cost = limits.cost_of(&attempt.usage);
                spent.input_tokens += attempt.usage.input_tokens;
                spent.output_tokens += attempt.usage.output_tokens;
                spent.cache_read_tokens += attempt.usage.cache_read_input_tokens;
                spent.cache_write_tokens += attempt.usage.cache_creation_input_tokens;
                spent.cost_micros += cost;
                let now = (self.clock)().unwrap_or_else(|_| OffsetDateTime::now_utc());
                if let Err(err) = db.record_llm_call(Some(&order.id), attempt, cost, now) {
                    tracing::error!(order = %order.id, "cannot record a Claude call: {err:#}");
                }
                cost
            },
        );
        spent.claude += asked.elapsed();
        written.map_err(|failure| match failure {
            ask::Failure::Retryable(message) => Failure::retryable(message),
            ask::Failure::Permanent(message) => Failure::permanent(message),
        })
    }
}

fn millis(elapsed: std::time::Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// Why writing a report failed, and whether trying again may help.
struct Failure {
    message: String,
    retryable: bool,
}

impl Failure {
    fn retryable(message: String) -> Failure {
        Failure {
            message,
            retryable: true,
        }
    }

    fn permanent(message: String) -> Failure {
        Failure {
            message,
            retryable: false,
        }
    }
}
