//! `compass preview`: the whole report pipeline for a sample questionnaire, without an order.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::app::App;
use crate::ask::{self, Limits};
use crate::claude::ClaudeClient;
use crate::order::Tier;
use crate::report::{self, Figures, Report, Signature, prompt::Prompts};

/// Write a report from a questionnaire file, without an order or a payment
///
/// For checking prompts, templates and looks. Writes report.html, report.pdf and report.json
/// into --out and prints what the Claude call cost. Without COMPASS_ANTHROPIC_API_KEY the
/// built-in sample text is used, labelled SAMPLE in the report.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The answers, as a JSON object with the intake form's fields (examples/questionnaire.json)
    #[arg(long, value_name = "FILE")]
    answers: PathBuf,

    /// Override the tier in the answers: one of the method's tier ids (starter, standard or
    /// premium in the built-in method)
    #[arg(long, value_parser = parse_tier)]
    tier: Option<Tier>,

    /// Where to write the files
    #[arg(long, default_value = "preview", value_name = "DIR")]
    out: PathBuf,
}

fn parse_tier(text: &str) -> Result<Tier, String> {
    text.parse()
}

pub fn run(
    args: Args,
    config: &Path,
    now: time::OffsetDateTime,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut app = App::open(config, env)?;
    let text = std::fs::read_to_string(&args.answers)
        .with_context(|| format!("cannot read {}", args.answers.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.answers.display()))?;
    let object = value
        .as_object()
        .with_context(|| format!("{} must hold a JSON object", args.answers.display()))?;
    let mut fields: BTreeMap<String, String> = object
        .iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k.clone(), s.clone())),
            serde_json::Value::Number(n) => Some((k.clone(), n.to_string())),
            serde_json::Value::Bool(yes) => {
                Some((k.clone(), if *yes { "yes" } else { "no" }.into()))
            }
            serde_json::Value::Array(items) => Some((
                k.clone(),
                items
                    .iter()
                    .filter_map(serde_json::Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            _ => None,
        })
        .collect();
    if let Some(tier) = args.tier {
        fields.insert("tier".into(), tier.as_str().into());
    }
    let method = app.method.clone();
    let intake = method.validate(&fields).map_err(|errors| {
        let list: Vec<_> = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        anyhow::anyhow!("the answers are not valid: {}", list.join("; "))
    })?;
    let scores = method.scores(&intake);
    // Against every kept report: a preview has no order of its own to leave out.
    let peers = report::peers::for_intake(&app.db.peer_scores("")?, &intake, &scores, &method);
    let tier = method
        .tier(&intake.tier)
        .context("the method sells that tier (checked)")?;
    let (written, sample, cost) = if app.config.claude.api_key.is_set() {
        let config = &app.config.claude;
        let claude = ClaudeClient::new(config)?;
        let prompt = Prompts::new(&method)?.render(
            &app.config.business_name,
            &intake,
            &method,
            Figures {
                scores: &scores,
                peers: peers.as_ref(),
            },
        )?;
        let schema = report::schema(tier, &method);
        let limits = Limits::of(config, 0);
        let mut cost = 0;
        let written = ask::written(
            &claude,
            &prompt,
            &schema,
            tier,
            &method,
            Figures {
                scores: &scores,
                peers: peers.as_ref(),
            },
            &limits,
            &mut |attempt| {
                let spent = limits.cost_of(&attempt.usage);
                cost += spent;
                if let Err(err) = app.db.record_llm_call(None, attempt, spent, now) {
                    tracing::error!("cannot record a Claude call: {err:#}");
                }
                spent
            },
        )
        .map_err(|failure| match failure {
            ask::Failure::Retryable(message) | ask::Failure::Permanent(message) => {
                anyhow::anyhow!("no report: {message}")
            }
        })?;
        (written, false, cost)
    } else {
        (report::sample::written(tier, &method), true, 0)
    };
    let report = Report {
        sample,
        peers,
        ..Report::new(&intake, &method, scores, written, now.date())
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let files = report.files(&method, &Signature::of(&app.config))?;
    for (kind, bytes) in &files {
        let path = args.out.join(format!("report.{kind}"));
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(out, "wrote {} ({} bytes)", path.display(), bytes.len())?;
    }
    if sample {
        writeln!(
            out,
            "SAMPLE text (no COMPASS_ANTHROPIC_API_KEY): nothing was spent"
        )?;
    } else {
        writeln!(out, "Claude cost ${:.4}", cost as f64 / 1_000_000.0)?;
    }
    Ok(())
}
