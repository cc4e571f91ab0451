//! Getting a report's words from Claude: one conversation per attempt, held to the API's rules
//! and to compass's checks.
//!
//! A conversation is the prompt, the answer, and at most one repair round that quotes the
//! checks the answer failed. What the API says about its answer decides the rest: a `refusal`
//! is never argued with (the attempt fails and is retried later, like a transient error); an
//! answer cut off at `max_tokens` is never repaired from its truncated text but asked for once
//! more with the larger limit; an empty answer is never sent back. No call is made that could
//! take the order's recorded Claude cost past its cap.

use crate::claude::{Answer, Ask, Attempt, ClaudeClient, ClaudeError, Role, Usage, cost_micros};
use crate::config::ClaudeConfig;
use crate::method::{Method, TierDef};

use crate::report::prompt::Prompt;
use crate::report::{Figures, Written, check};

/// How long an answer may be and what one order may spend on Claude.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// The first call's `max_tokens`.
    pub max_tokens: u32,
    /// The one larger call after an answer cut off at `max_tokens`.
    pub max_tokens_cap: u32,
    /// What the order's calls may cost in all, in millionths of a US dollar.
    pub cap_micros: i64,
    /// What its earlier attempts already cost.
    pub spent_micros: i64,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
}

impl Limits {
    /// The configured limits, for an order whose earlier calls cost `spent_micros`.
    pub fn of(config: &ClaudeConfig, spent_micros: i64) -> Limits {
        Limits {
            max_tokens: config.max_tokens,
            max_tokens_cap: config.max_tokens_cap,
            cap_micros: config.max_cost_per_order_micros,
            spent_micros,
            input_usd_per_mtok: config.input_usd_per_mtok,
            output_usd_per_mtok: config.output_usd_per_mtok,
        }
    }

    /// What `usage` cost at these prices, in millionths of a dollar.
    pub fn cost_of(&self, usage: &Usage) -> i64 {
        cost_micros(usage, self.input_usd_per_mtok, self.output_usd_per_mtok)
    }

    /// The most one call can cost: its prompt (bytes over three, more tokens than any English
    /// or JSON text has) at the input price and `max_tokens` of answer at the output price.
    fn most_a_call_costs(&self, prompt_bytes: usize, max_tokens: u32) -> i64 {
        let input = prompt_bytes as f64 / 3.0 * self.input_usd_per_mtok;
        let output = f64::from(max_tokens) * self.output_usd_per_mtok;
        (input + output).ceil() as i64
    }
}

/// Why an attempt gave no report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A later attempt may succeed: Claude unavailable, a refusal, an answer that failed the
    /// checks twice.
    Retryable(String),
    /// Trying again cannot help until the operator changes something; the message says what.
    Permanent(String),
}

/// Asks for the words of a `tier` report, with one repair round; `record` stores each HTTP
/// attempt and returns what it cost, in millionths of a dollar.
#[allow(clippy::too_many_arguments)]
pub fn written(
    claude: &ClaudeClient,
    prompt: &Prompt,
    schema: &serde_json::Value,
    tier: &TierDef,
    method: &Method,
    figures: Figures<'_>,
    limits: &Limits,
    record: &mut dyn FnMut(&Attempt) -> i64,
) -> Result<Written, Failure> {
    let mut messages = vec![(Role::User, prompt.user.clone())];
    let mut max_tokens = limits.max_tokens;
    let mut spent = limits.spent_micros;
    let mut repaired = false;
    let schema_bytes = schema.to_string().len();
    loop {
        let prompt_bytes = prompt.system.len()
            + schema_bytes
            + messages.iter().map(|(_, text)| text.len()).sum::<usize>();
        let most = limits.most_a_call_costs(prompt_bytes, max_tokens);
        if spent + most > limits.cap_micros {
            return Err(Failure::Permanent(format!(
                "stopped before spending more on Claude: this order's calls cost {} so far and \
                 the next could cost up to {}, past claude.max_cost_per_order_usd ({}); raise \
                 it to let the report be written",
                dollars(spent),
                dollars(most),
                dollars(limits.cap_micros)
            )));
        }
        let ask = Ask {
            system: &prompt.system,
            messages: &messages,
            schema,
            max_tokens,
        };
        let answer = claude
            .ask(&ask, |attempt| spent += record(attempt))
            .map_err(|err| match err {
                ClaudeError::Transient(message) => Failure::Retryable(message),
                ClaudeError::Permanent(message) => Failure::Permanent(advice(message)),
            })?;
        match answer.stop_reason.as_deref() {
            Some("refusal") => return Err(Failure::Retryable(refusal(&answer))),
            Some("max_tokens") if max_tokens < limits.max_tokens_cap => {
                tracing::info!(
                    max_tokens,
                    cap = limits.max_tokens_cap,
                    "the answer was cut off at max_tokens; asking once more with the cap"
                );
                max_tokens = limits.max_tokens_cap;
                continue;
            }
            Some("max_tokens") => {
                return Err(Failure::Permanent(format!(
                    "the answer was cut off at {max_tokens} output tokens (claude.max_tokens_cap); \
                     raise claude.max_tokens_cap, up to the model's limit, so that a whole \
                     {} report fits",
                    tier.name
                )));
            }
            Some("model_context_window_exceeded") => {
                return Err(Failure::Permanent(
                    "the prompt and the answer do not fit the model's context window; lower \
                     claude.max_tokens_cap or choose a model with a larger window"
                        .to_owned(),
                ));
            }
            _ => {}
        }
        if answer.text.trim().is_empty() {
            return Err(Failure::Retryable(format!(
                "Claude answered with no text (stop reason {})",
                answer.stop_reason.as_deref().unwrap_or("none")
            )));
        }
        match check(&answer.text, tier, method, figures) {
            Ok(written) => return Ok(written),
            Err(problems) if !repaired => {
                repaired = true;
                tracing::info!("repairing the answer: {}", problems.join("; "));
                messages.push((Role::Assistant, answer.text));
                messages.push((
                    Role::User,
                    format!(
                        "Your answer did not pass these checks:\n- {}\nAnswer again with the \
                         complete, corrected JSON object and nothing else.",
                        problems.join("\n- ")
                    ),
                ));
            }
            Err(problems) => {
                return Err(Failure::Retryable(format!(
                    "the answer failed the report checks after a repair round: {}",
                    problems.join("; ")
                )));
            }
        }
    }
}

fn refusal(answer: &Answer) -> String {
    let mut text = "Claude declined to write this report (stop reason refusal".to_owned();
    if let Some(category) = answer.refusal_category.as_deref() {
        text.push_str(&format!(", category {category}"));
    }
    text.push(')');
    if let Some(explanation) = answer.refusal_explanation.as_deref() {
        text.push_str(&format!(": {explanation}"));
    }
    text
}

/// The API's refusal of a request, with what the operator can do about the common ones.
fn advice(message: String) -> String {
    if message.starts_with("404") && message.contains("model:") {
        format!(
            "{message}; set claude.model to a current model (compass doctor checks the \
             configured one)"
        )
    } else {
        message
    }
}

fn dollars(micros: i64) -> String {
    format!("${:.2}", micros as f64 / 1_000_000.0)
}
