//! Screenshots of every customer page, at a phone's width and a desktop's, with headless
//! Chromium: the intake form, the payment page, the status page in each state, the report,
//! and "my orders". The orders are made through the library's own paths on a throwaway
//! installation served for real; the payment provider is the demo's stand-in.
//!
//! `cargo run --example screenshots -- docs/screenshots` (needs Debian's `chromium`; set
//! `CHROMIUM` to use another binary). Writes `{page}-{phone|desktop}.png`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use compass::db::{Db, NewOrder};
use compass::demo::{self, DemoStripe};
use compass::http;
use compass::method::Method;
use compass::order::{Event, Policy, RefundSource, Tier};
use compass::process::{self, Options, Silent, Writer};
use time::OffsetDateTime;

const WIDTHS: [(&str, u32, u32); 2] = [("phone", 390, 1100), ("desktop", 1280, 1000)];

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "docs/screenshots".into()),
    );
    std::fs::create_dir_all(&out)?;
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let dir = tempfile::tempdir()?;
    let stand_in = DemoStripe::start()?;
    let listener = http::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let config = dir.path().join("compass.toml");
    std::fs::write(&config, stand_in.config(&base)?)?;
    let mut db = Db::create(&dir.path().join("compass.db"))?.0;
    let env = demo::demo_env;

    let now = OffsetDateTime::now_utc();
    let policy = Policy::default();
    let tier = |id: &str| -> Tier { id.parse().expect("a built-in tier") };
    let order = |db: &mut Db, tier: Tier, company: &str| -> anyhow::Result<(String, String)> {
        let mut answers: serde_json::Value =
            serde_json::from_str(include_str!("questionnaire.json"))?;
        answers["tier"] = tier.as_str().into();
        answers["company"] = company.into();
        let fields = answers
            .as_object()
            .context("answers")?
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect();
        let method = Method::builtin();
        db.keep_method(&method.version, method.files())?;
        let intake = method
            .validate(&fields)
            .map_err(|errors| anyhow::anyhow!("{errors:?}"))?;
        let stored = db.create_order(
            &NewOrder {
                email: intake.email.clone(),
                name: intake.name.clone(),
                company: intake.company.clone(),
                amount_cents: method.tier(&tier).map_or(4_900, |t| t.price),
                tier,
                currency: "usd".into(),
                questionnaire: serde_json::to_value(&intake)?,
                method_version: method.version.clone(),
                terms: None,
            },
            now,
        )?;
        Ok((stored.id, stored.status_token))
    };
    let pay = |db: &mut Db, id: &str, cents: i64| -> anyhow::Result<()> {
        let event = Event::PaymentConfirmed {
            payment_intent: format!("pi_shot_{}", &id[..8]),
            amount_cents: cents,
            currency: "usd".into(),
        };
        db.apply(id, &event, &policy, "stripe", now)?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    };

    let ready = order(&mut db, tier("premium"), "Analytical Engines Ltd")?;
    pay(&mut db, &ready.0, 39_900)?;
    let review = order(&mut db, tier("standard"), "Babbage & Daughters")?;
    pay(&mut db, &review.0, 14_900)?;
    let clock = || Ok(OffsetDateTime::now_utc());
    let options = Options {
        limit: 10,
        concurrency: 2,
        writer: Writer::Sample,
    };
    process::run_once(&config, &env, &clock, &options, &Silent)?;
    db.record_download(&review.0, now)?;
    db.request_refund(
        &review.0,
        RefundSource::Customer,
        "Not for us",
        None,
        &policy,
        "customer",
        now,
    )?
    .map_err(|e| anyhow::anyhow!("{e}"))?;

    // Written and waiting for the consultant's review (`[delivery] review = true`): the
    // ready order's report stands in for its own.
    let reviewing = order(&mut db, tier("premium"), "Franklin Optics")?;
    pay(&mut db, &reviewing.0, 39_900)?;
    let reviewed = Policy {
        review_reports: true,
        ..Policy::default()
    };
    for event in [
        Event::Claim {
            owner: "shot".into(),
            lease_until: now + time::Duration::minutes(5),
        },
        Event::AttemptStarted {
            owner: "shot".into(),
        },
    ] {
        db.apply(&reviewing.0, &event, &reviewed, "process", now)?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let mut files = Vec::new();
    for kind in ["json", "html", "pdf"] {
        files.push((kind, db.artifact(&ready.0, kind)?.context("a report")?));
    }
    let artifacts: Vec<compass::db::Artifact<'_>> = files
        .iter()
        .map(|(kind, content)| compass::db::Artifact { kind, content })
        .collect();
    db.complete(&reviewing.0, "shot", &artifacts, &reviewed, now)?
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let writing = order(&mut db, tier("premium"), "Hopper Logistics")?;
    pay(&mut db, &writing.0, 39_900)?;
    let refunded = order(&mut db, tier("starter"), "Noether Labs GmbH")?;
    pay(&mut db, &refunded.0, 4_900)?;
    db.request_refund(
        &refunded.0,
        RefundSource::Operator,
        "goodwill",
        None,
        &policy,
        "operator",
        now,
    )?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    db.apply(
        &refunded.0,
        &Event::RefundSucceeded {
            refund: Some(1),
            refunded_total_cents: 4_900,
        },
        &policy,
        "stripe",
        now,
    )?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let failed = order(&mut db, tier("standard"), "Turing Bakeries")?;
    pay(&mut db, &failed.0, 14_900)?;
    db.apply(
        &failed.0,
        &Event::Claim {
            owner: "shot".into(),
            lease_until: now + time::Duration::minutes(5),
        },
        &policy,
        "process",
        now,
    )?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    db.apply(
        &failed.0,
        &Event::GenerationFailed {
            owner: "shot".into(),
            error: "schema".into(),
            retryable: false,
        },
        &policy,
        "process",
        now,
    )?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let unpaid = order(&mut db, tier("standard"), "Lamarr Wireless")?;
    let expired = order(&mut db, tier("starter"), "Lovelace Looms")?;
    db.apply(&expired.0, &Event::Expire, &policy, "process", now)?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(db);

    let pages = [
        ("intake", "/".to_owned()),
        ("payment", format!("/pay/{}", unpaid.1)),
        ("status-awaiting-payment", format!("/status/{}", unpaid.1)),
        ("status-writing", format!("/status/{}", writing.1)),
        ("status-being-reviewed", format!("/status/{}", reviewing.1)),
        ("status-ready", format!("/status/{}", ready.1)),
        ("report", format!("/status/{}/report", ready.1)),
        ("status-refund-review", format!("/status/{}", review.1)),
        ("status-failed-refunding", format!("/status/{}", failed.1)),
        ("status-refunded", format!("/status/{}", refunded.1)),
        ("status-expired", format!("/status/{}", expired.1)),
        ("my-orders", "/my".to_owned()),
        ("refund-policy", "/refund-policy".to_owned()),
        ("privacy", "/privacy".to_owned()),
    ];

    serve_and_shoot(&config, listener, &base, &pages, &chromium, &out)?;
    let second = second_method(&stand_in, &chromium, &out)?;
    println!(
        "wrote {} screenshots to {}",
        (pages.len() + second) * WIDTHS.len(),
        out.display()
    );
    Ok(())
}

/// Serves the installation of `config` on `listener` and shoots each of `pages` at each width.
fn serve_and_shoot(
    config: &Path,
    listener: std::net::TcpListener,
    base: &str,
    pages: &[(&str, String)],
    chromium: &str,
    out: &Path,
) -> anyhow::Result<()> {
    let shutdown = Arc::new(AtomicBool::new(false));
    let env = demo::demo_env;
    let serve_options = http::Serve::for_one_visitor(config, &env, Arc::clone(&shutdown));
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let server = scope.spawn(|| http::serve(listener, &serve_options));
        std::thread::sleep(Duration::from_millis(300));
        let shots = pages.iter().try_for_each(|(name, path)| {
            WIDTHS.iter().try_for_each(|(label, width, height)| {
                let file = out.join(format!("{name}-{label}.png"));
                // A form is shot whole: its questions are what the shot is for.
                let height = if name.ends_with("intake") {
                    height * 4
                } else {
                    *height
                };
                shoot(chromium, &format!("{base}{path}"), &file, *width, height)
            })
        });
        shutdown.store(true, Ordering::Relaxed);
        server
            .join()
            .map_err(|_| anyhow::anyhow!("serve panicked"))??;
        shots
    })
}

/// The second method of the tests (tests/methods/security: its own questions, levels, tiers,
/// colour and logo) on an installation of its own: its form, and one order's status page and
/// report. Returns how many pages it shot.
fn second_method(stand_in: &DemoStripe, chromium: &str, out: &Path) -> anyhow::Result<usize> {
    let dir = tempfile::tempdir()?;
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/methods/security");
    copy_dir(&source, &dir.path().join("method"))?;
    let listener = http::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let config = dir.path().join("compass.toml");
    std::fs::write(&config, stand_in.config(&base)?)?;
    let mut db = Db::create(&dir.path().join("compass.db"))?.0;
    let method = Method::load_dir(&dir.path().join("method"))
        .map_err(|problems| anyhow::anyhow!("{problems}"))?;
    db.keep_method(&method.version, method.files())?;
    let fields = [
        ("company", "Dent & Co"),
        ("industry", "Dental practice"),
        ("employees", "10-49"),
        ("country", "Ireland"),
        ("name", "Nora Dent"),
        ("email", "nora@example.com"),
        ("tier", "full"),
        ("mfa", "admins"),
        ("shared_accounts", "yes"),
        ("has_backups", "yes"),
        ("restore_test", "year"),
        ("patch_days", "12"),
        ("protections", "disk,firewall"),
        ("training", "never"),
        ("worry", "Ransomware locking the patient records."),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let intake = method
        .validate(&fields)
        .map_err(|errors| anyhow::anyhow!("{errors:?}"))?;
    let tier = method.tier(&intake.tier).context("a tier on sale")?;
    let now = OffsetDateTime::now_utc();
    let stored = db.create_order(
        &NewOrder {
            email: intake.email.clone(),
            name: intake.name.clone(),
            company: intake.company.clone(),
            tier: intake.tier.clone(),
            amount_cents: tier.price,
            currency: method.currency.clone(),
            questionnaire: serde_json::to_value(&intake)?,
            method_version: method.version.clone(),
            terms: None,
        },
        now,
    )?;
    let paid = Event::PaymentConfirmed {
        payment_intent: format!("pi_shot_{}", &stored.id[..8]),
        amount_cents: tier.price,
        currency: method.currency.clone(),
    };
    db.apply(&stored.id, &paid, &Policy::default(), "stripe", now)?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(db);
    let clock = || Ok(OffsetDateTime::now_utc());
    let options = Options {
        limit: 1,
        concurrency: 1,
        writer: Writer::Sample,
    };
    process::run_once(&config, &demo::demo_env, &clock, &options, &Silent)?;
    let token = stored.status_token;
    let pages = [
        ("second-method-intake", "/".to_owned()),
        ("second-method-status-ready", format!("/status/{token}")),
        ("second-method-report", format!("/status/{token}/report")),
    ];
    serve_and_shoot(&config, listener, &base, &pages, chromium, out)?;
    Ok(pages.len())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// One screenshot; the network beyond 127.0.0.1 is closed (Stripe.js cannot load offline).
fn shoot(chromium: &str, url: &str, file: &Path, width: u32, height: u32) -> anyhow::Result<()> {
    let status = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--disable-background-networking",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=5000",
            // Chromium 156 puts a sandboxed iframe (the report on its status page) in a
            // process of its own, which --screenshot does not capture: the frame came out
            // blank. Browsers show it; only the shot needs it in the page's process.
            "--disable-features=IsolateSandboxedIframes",
            &format!("--window-size={width},{height}"),
            &format!("--screenshot={}", file.display()),
            url,
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .with_context(|| {
            format!("cannot run {chromium}: install Debian's chromium or set CHROMIUM")
        })?;
    anyhow::ensure!(
        status.success() && file.exists(),
        "{chromium} could not shoot {url}"
    );
    Ok(())
}
