//! compass: the back office of an AI readiness consultancy, as one library and a thin binary.
//!
//! Reading order: the pure core first, then the store, then the edges.

/// Email addresses, checked one way everywhere (the mailer's own parser is the judge).
pub mod address;
/// What a command works with, built from the configuration.
pub mod app;
/// One attempt's conversation with Claude for a report's words: `process` and `preview`.
pub mod ask;
/// The one backoff rule.
pub mod backoff;
/// The invoices' PDFs, rendered once and stored.
pub mod billing;
/// A method rendered whole (every prompt, report and email template) before it is used.
pub mod check;
/// The Claude Messages API: structured answers, retries, every attempt reported.
pub mod claude;
/// The command line.
pub mod cli;
/// The clock as a value, and times as people read and type them.
pub mod clock;
/// compass.toml, checked, and secrets from the environment.
pub mod config;
/// The SQLite store: schema, migrations, and the only SQL.
pub mod db;
/// `compass demo`: a sample order taken through, against a stand-in for Stripe.
pub mod demo;
/// `compass doctor`: configuration, files, database and every outside service, checked.
pub mod doctor;
/// The web server: connections under deadlines, workers, routes, and the handlers of the
/// work after an answer.
pub mod http;
/// Invoices and credit notes: billing details, the tax of a sale, numbered documents as PDF.
pub mod invoice;
/// Email: templates, SMTP or `.eml` files, and the outbox sender.
pub mod mail;
/// The operator's method as files: questions, scoring, levels, tiers, prompts, templates,
/// brand; checked with file and line, versioned by content.
pub mod method;
/// Amounts of money as people read them.
pub mod money;
/// The order lifecycle as a pure state machine: `step(order, event, policy, now)`.
pub mod order;
/// Customer-facing pages: embedded handlebars templates, escaped.
pub mod pages;
/// Orders and their payments: PaymentIntents, the webhook event store, event handling.
pub mod payments;
/// `compass process`: claims paid orders one by one and turns them into reports.
pub mod process;
/// Refunds carried out at Stripe, each with its own Idempotency-Key.
pub mod refunds;
/// The report: the schema per tier, checking the model's answer, prompts, the sample.
pub mod report;
/// Retrying HTTP calls: backoff with jitter, `Retry-After`.
pub mod retry;
/// The consultant's review of a written report before it goes out.
pub mod review;
/// Stripe: webhook signatures and a small blocking API client.
pub mod stripe;
/// typst as a library: one template and its data into pages, exported as PDF/UA-1.
pub mod typeset;
