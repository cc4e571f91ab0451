//! `compass demo`: one sample order from the form to a delivered report, on this machine
//! alone, against the stand-in for Stripe in `stripe.rs`, with the built-in sample report
//! (`report::sample`, which `compass preview` and the tests use too) instead of Claude's.

mod stripe;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use crate::clock;
use crate::db::Db;
use crate::http;
use crate::order::{Status, Tier};
use crate::process::{self, Options, Silent, Writer};

pub use stripe::{DEMO_WEBHOOK_SECRET, DemoStripe, demo_env};

/// The sample customer's answers (the same file `compass preview` takes).
const SAMPLE_ANSWERS: &str = include_str!("../../examples/questionnaire.json");

/// What the demo is asked to do.
#[derive(Clone, Debug)]
pub struct Demo {
    /// Where to serve.
    pub listen: String,
    /// Where to keep the installation; a temporary directory, removed at the end, if `None`.
    pub dir: Option<PathBuf>,
    /// The tier the sample customer buys.
    pub tier: Tier,
    /// Stop once the report is delivered instead of serving until Ctrl-C.
    pub no_serve: bool,
}

/// Runs the demo, printing each step to `out`.
pub fn run(args: &Demo, out: &mut dyn Write) -> anyhow::Result<()> {
    let (dir, temporary) = match &args.dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("compass-demo-{}", uuid::Uuid::now_v7().simple())),
            true,
        ),
    };
    let result = demo(args, &dir, out);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn demo(args: &Demo, dir: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let listener = http::bind(&args.listen)?;
    let address = listener
        .local_addr()
        .context("the listener has no address")?;
    let base = format!("http://{address}");
    let stand_in = DemoStripe::start()?;

    let config = dir.join("compass.toml");
    let text = stand_in.config(&base)?;
    anyhow::ensure!(
        !config.exists(),
        "{} exists already: give --dir an empty directory",
        config.display()
    );
    std::fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
    Db::create(&dir.join("compass.db"))?;
    crate::db::restrict_to_owner(&dir.join("compass.db"))?;
    let env = demo_env;
    writeln!(out, "demo installation in {}", dir.display())?;

    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown))
            .context("cannot install the signal handlers")?;
    }
    let options = http::Serve::for_one_visitor(&config, &env, Arc::clone(&shutdown));
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let server = scope.spawn(|| {
            http::serve_with(listener, &options, move || {
                let _ = ready_tx.send(());
                Ok(())
            })
        });
        let walk = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| anyhow::anyhow!("serve did not start"))
            .and_then(|()| walk_through(args, &config, &env, &base, &stand_in, out));
        let serving = walk.and_then(|()| {
            if args.no_serve {
                return Ok(());
            }
            writeln!(out, "\nserving on {base} until Ctrl-C")?;
            out.flush()?;
            while !shutdown.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
            }
            Ok(())
        });
        shutdown.store(true, Ordering::Relaxed);
        let served = server
            .join()
            .map_err(|_| anyhow::anyhow!("serve panicked"))?;
        serving.and(served)
    })
}

/// The customer's part: form, payment, report, emails.
fn walk_through(
    args: &Demo,
    config: &Path,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    base: &str,
    stand_in: &DemoStripe,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut answers: serde_json::Value =
        serde_json::from_str(SAMPLE_ANSWERS).context("the sample answers are JSON")?;
    answers["tier"] = json!(args.tier.as_str());
    // A business in another EU country with a VAT number: its invoice is a reverse charge.
    answers["billing_name"] = json!("Analytical Engines GmbH");
    answers["billing_address"] = json!("Musterstraße 1\n10115 Berlin");
    answers["billing_country"] = json!("DE");
    answers["billing_tax_id"] = json!("DE136695976");
    let answer = agent
        .post(&format!("{base}/orders"))
        .header("Content-Type", "application/json")
        .send(answers.to_string())
        .context("cannot reach the demo's serve")?
        .body_mut()
        .read_to_string()
        .context("cannot read the order's answer")?;
    let placed: serde_json::Value =
        serde_json::from_str(&answer).context("the order's answer is not JSON")?;
    let order_id = placed["order_id"]
        .as_str()
        .with_context(|| format!("the order was not placed: {placed}"))?
        .to_owned();
    let status_url = placed["status_url"].as_str().unwrap_or_default().to_owned();
    let intent = placed["client_secret"]
        .as_str()
        .and_then(|s| s.split("_secret_").next())
        .context("no PaymentIntent")?
        .to_owned();
    writeln!(
        out,
        "1. the sample customer filled in the form: order {order_id}"
    )?;

    let paid = stand_in
        .succeed(&intent)
        .context("the demo Stripe lost the PaymentIntent")?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let event = json!({
        "id": format!("evt_demo_{}", uuid::Uuid::now_v7().simple()),
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": now,
        "livemode": false,
        "data": { "object": paid },
    })
    .to_string();
    let signature = crate::stripe::webhook::sign(event.as_bytes(), DEMO_WEBHOOK_SECRET, now);
    let status = agent
        .post(&format!("{base}/webhooks/stripe"))
        .header("Content-Type", "application/json")
        .header("Stripe-Signature", &signature)
        .send(&event)
        .context("cannot deliver the payment webhook")?
        .status();
    anyhow::ensure!(status == 200, "the webhook was answered {status}");
    let db = Db::open(&config.parent().unwrap_or(Path::new(".")).join("compass.db"))?;
    let mut waited = 0;
    while db.order(&order_id)?.map(|o| o.order.status) != Some(Status::Paid) {
        anyhow::ensure!(waited < 100, "the payment was not recorded");
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
    writeln!(
        out,
        "2. paid with a test card; Stripe's signed webhook arrived and the payment was read back"
    )?;

    let clock = || clock::now(env);
    let summary = process::run_once(
        config,
        env,
        &clock,
        &Options {
            limit: 10,
            concurrency: 1,
            writer: Writer::Sample,
        },
        &Silent,
    )?;
    anyhow::ensure!(
        summary.outcomes.iter().any(|o| o.order_id == order_id),
        "the order was not processed"
    );
    writeln!(
        out,
        "3. the report was written (the built-in SAMPLE text) and typeset: HTML and PDF"
    )?;
    let mail_dir = config.parent().unwrap_or(Path::new(".")).join("mail");
    writeln!(
        out,
        "4. {} emails written to {} (payment confirmation with the invoice, report ready with \
         the PDF)",
        summary.emails.sent,
        mail_dir.display()
    )?;
    writeln!(out, "\nopen the customer's status page: {status_url}")?;
    writeln!(
        out,
        "operator's view: compass --config {} orders show {}",
        config.display(),
        &order_id[..8]
    )?;
    Ok(())
}
