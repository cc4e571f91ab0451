//! The Claude Messages API: one blocking client, errors split into transient and permanent.
//!
//! Headers and body follow Anthropic's reference and the official SDK (the key as a bearer
//! token, the SDK's `anthropic-version`, `model`, `max_tokens`, `system` as one text block
//! marked for the prompt cache, `messages`, and `output_config.format` with a JSON schema for a
//! structured answer). The answer's content blocks are read by type, and its `stop_reason`
//! and refusal details are handed to the caller, who decides what they mean. Retries follow Anthropic's
//! SDKs: `x-should-retry` decides when present; otherwise connection errors, 408, 409, 429 and
//! 5xx (529 "overloaded" included) are retried with backoff and jitter, honouring
//! `retry-after-ms` and `retry-after` up to 60 s; 400, 401, 403, 404, 413 and a 429 that says a
//! spend limit was reached are not. Every attempt is reported to the caller, which records it.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::config::{ClaudeConfig, Secret};
use crate::retry::{RetryPolicy, jitter, retry_after};

/// The API version this client speaks: the one the official SDK (`anthropic` 2.15 on PyPI)
/// sends. 2026-10-21 removed `temperature`, `top_p` and `top_k`, which compass never sends.
pub const ANTHROPIC_VERSION: &str = "2026-10-21";

/// A request for one structured answer.
#[derive(Clone, Debug)]
pub struct Ask<'a> {
    pub system: &'a str,
    /// The conversation so far: user, then assistant and user turns for a repair round.
    pub messages: &'a [(Role, String)],
    /// The JSON schema the answer must follow.
    pub schema: &'a serde_json::Value,
    /// The longest answer, in tokens.
    pub max_tokens: u32,
}

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// Tokens counted by the API.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The text blocks, joined.
    pub text: String,
    /// `end_turn`, `max_tokens`, `refusal`, ...
    pub stop_reason: Option<String>,
    /// With a refusal: the policy category the API names, if any.
    pub refusal_category: Option<String>,
    /// With a refusal: the API's explanation, if any.
    pub refusal_explanation: Option<String>,
    pub usage: Usage,
    pub request_id: Option<String>,
}

/// One HTTP attempt, as `llm_calls` records it.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub model: String,
    pub request_id: Option<String>,
    /// `ok`, `retryable` or `permanent`.
    pub outcome: &'static str,
    pub http_status: Option<u16>,
    pub usage: Usage,
    pub duration_ms: u64,
    pub error: Option<String>,
}

/// A call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClaudeError {
    /// Worth trying again later: overloaded, rate limited, a server or network fault.
    #[error("Claude is unavailable: {0}")]
    Transient(String),
    /// Trying again will not help: a bad request, a bad key, a spend limit.
    #[error("Claude refused the request: {0}")]
    Permanent(String),
}

impl ClaudeError {
    /// Whether a later attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ClaudeError::Transient(_))
    }
}

/// A blocking Messages API client.
pub struct ClaudeClient {
    agent: ureq::Agent,
    base: String,
    key: Secret,
    model: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for ClaudeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaudeClient")
            .field("base", &self.base)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl ClaudeClient {
    /// A client for the configured model; fails if the API key is not set.
    pub fn new(config: &ClaudeConfig) -> anyhow::Result<ClaudeClient> {
        let timeout = Duration::from_secs(config.timeout.whole_seconds().unsigned_abs());
        Ok(ClaudeClient::with(
            &config.api_base,
            config.api_key.get()?.clone(),
            &config.model,
            timeout,
            RetryPolicy::anthropic(),
        ))
    }

    /// A client for `base` (without `/v1`).
    pub fn with(
        base: &str,
        key: Secret,
        model: &str,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> ClaudeClient {
        let agent = crate::retry::agent(timeout);
        ClaudeClient {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            key,
            model: model.to_owned(),
            retry,
        }
    }

    /// The model asked.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// What the API says of the configured model: one `GET /v1/models/{id}` (free), no
    /// retries. `Ok(None)` when the API does not know the model (404); `Err` with the API's
    /// answer when the key or the connection fails.
    pub fn model_info(&self) -> Result<Option<ModelInfo>, String> {
        let mut response = self
            .agent
            .get(&format!("{}/v1/models/{}", self.base, self.model))
            .header("authorization", &format!("Bearer {}", self.key.expose()))
            .header("anthropic-version", ANTHROPIC_VERSION)
            .call()
            .map_err(|err| format!("cannot reach {}: {err}", self.base))?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        match status {
            200 => serde_json::from_str(&body)
                .map(Some)
                .map_err(|err| format!("unreadable answer: {err}")),
            404 => Ok(None),
            _ => {
                let message = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                Err(format!("the API answered {status} {message}")
                    .trim_end()
                    .to_owned())
            }
        }
    }

    /// Asks for one answer, retrying transient failures; `record` sees every attempt.
    pub fn ask(
        &self,
        ask: &Ask<'_>,
        mut record: impl FnMut(&Attempt),
    ) -> Result<Answer, ClaudeError> {
        let messages: Vec<_> = ask
            .messages
            .iter()
            .map(|(role, text)| {
                let role = match role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                json!({ "role": role, "content": text })
            })
            .collect();
        // The system prompt and the schema are the same for every order of a tier: marked for
        // the prompt cache, the second order of a run reads them at a tenth of the price.
        let body = json!({
            "model": self.model,
            "max_tokens": ask.max_tokens,
            "system": [{ "type": "text", "text": ask.system, "cache_control": { "type": "ephemeral" } }],
            "messages": messages,
            "output_config": { "format": { "type": "json_schema", "schema": ask.schema } },
        })
        .to_string();
        let mut retry = 0;
        loop {
            let started = Instant::now();
            let sent = self
                .agent
                .post(&format!("{}/v1/messages", self.base))
                .header("authorization", &format!("Bearer {}", self.key.expose()))
                .header("anthropic-version", ANTHROPIC_VERSION)
                .header("content-type", "application/json")
                .send(&body);
            let read = read(sent);
            let attempt = Attempt {
                model: self.model.clone(),
                request_id: read.request_id.clone(),
                outcome: match (&read.result, read.retry) {
                    (Ok(_), _) => "ok",
                    (Err(_), true) => "retryable",
                    (Err(_), false) => "permanent",
                },
                http_status: read.status,
                usage: read.result.as_ref().map(|a| a.usage).unwrap_or_default(),
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                error: read.result.as_ref().err().cloned(),
            };
            record(&attempt);
            match read.result {
                Ok(answer) => return Ok(answer),
                Err(error) if !read.retry => return Err(ClaudeError::Permanent(error)),
                Err(error) if retry >= self.retry.max_retries => {
                    return Err(ClaudeError::Transient(error));
                }
                Err(error) => {
                    retry += 1;
                    let delay = self.retry.delay(retry, read.retry_after, jitter());
                    tracing::info!(retry, ?delay, "retrying a Claude request: {error}");
                    std::thread::sleep(delay);
                }
            }
        }
    }
}

/// What the Models API says of one model.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct ModelInfo {
    pub id: String,
    /// `active`, `deprecated` or `retired`.
    #[serde(default)]
    pub lifecycle: Option<String>,
    /// RFC 3339, when the model stops answering.
    #[serde(default)]
    pub retires_at: Option<String>,
}

/// What one HTTP exchange gave.
struct Read {
    result: Result<Answer, String>,
    retry: bool,
    retry_after: Option<Duration>,
    status: Option<u16>,
    request_id: Option<String>,
}

fn read(sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Read {
    let mut response = match sent {
        Ok(response) => response,
        Err(err) => {
            return Read {
                result: Err(format!("connection failed: {err}")),
                retry: true,
                retry_after: None,
                status: None,
                request_id: None,
            };
        }
    };
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let request_id = header("request-id");
    let should_retry = header("x-should-retry");
    let wait = retry_after(
        header("retry-after").as_deref(),
        header("retry-after-ms").as_deref(),
    );
    let body = match response.body_mut().read_to_string() {
        Ok(body) => body,
        Err(err) => {
            return Read {
                result: Err(format!("the answer broke off: {err}")),
                retry: true,
                retry_after: None,
                status: Some(status),
                request_id,
            };
        }
    };
    if (200..300).contains(&status) {
        return Read {
            result: parse_answer(&body, request_id.clone()),
            retry: false,
            retry_after: None,
            status: Some(status),
            request_id,
        };
    }
    #[derive(Deserialize, Default)]
    struct Envelope {
        #[serde(default)]
        error: ErrorBody,
    }
    #[derive(Deserialize, Default)]
    struct ErrorBody {
        #[serde(rename = "type", default)]
        kind: String,
        #[serde(default)]
        message: String,
    }
    let envelope: Envelope = serde_json::from_str(&body).unwrap_or_default();
    let message = format!(
        "{status} {}: {}",
        envelope.error.kind, envelope.error.message
    );
    let spend_limit = status == 429 && {
        let text = envelope.error.message.to_ascii_lowercase();
        text.contains("spend") || text.contains("credit balance") || text.contains("billing")
    };
    let retry = match should_retry.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => !spend_limit && matches!(status, 408 | 409 | 429 | 500..=599),
    };
    Read {
        result: Err(message),
        retry,
        retry_after: wait,
        status: Some(status),
        request_id,
    }
}

/// The text of an answer's `text` blocks; other block types are skipped.
fn parse_answer(body: &str, request_id: Option<String>) -> Result<Answer, String> {
    #[derive(Deserialize)]
    struct Message {
        #[serde(default)]
        content: Vec<Block>,
        #[serde(default)]
        stop_reason: Option<String>,
        #[serde(default)]
        stop_details: Option<StopDetails>,
        #[serde(default)]
        usage: Usage,
    }
    #[derive(Deserialize)]
    struct StopDetails {
        #[serde(default)]
        category: Option<String>,
        #[serde(default)]
        explanation: Option<String>,
    }
    #[derive(Deserialize)]
    struct Block {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        text: Option<String>,
    }
    let message: Message =
        serde_json::from_str(body).map_err(|err| format!("unreadable answer: {err}"))?;
    let text: String = message
        .content
        .into_iter()
        .filter(|b| b.kind == "text")
        .filter_map(|b| b.text)
        .collect();
    let (refusal_category, refusal_explanation) = message
        .stop_details
        .map_or((None, None), |d| (d.category, d.explanation));
    Ok(Answer {
        text,
        stop_reason: message.stop_reason,
        refusal_category,
        refusal_explanation,
        usage: message.usage,
        request_id,
    })
}

/// What an attempt cost, in millionths of a US dollar, from the configured prices. Cache
/// reads are billed at a tenth of the input price, cache writes at 1.25 times.
pub fn cost_micros(usage: &Usage, input_usd_per_mtok: f64, output_usd_per_mtok: f64) -> i64 {
    // Tokens times dollars per million tokens is micro-dollars.
    let micros = usage.input_tokens as f64 * input_usd_per_mtok
        + usage.output_tokens as f64 * output_usd_per_mtok
        + usage.cache_read_input_tokens as f64 * input_usd_per_mtok * 0.1
        + usage.cache_creation_input_tokens as f64 * input_usd_per_mtok * 1.25;
    micros.round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_text_blocks_make_the_answer() {
        let body = r#"{"id":"msg_1","type":"message","role":"assistant","model":"m",
            "content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"{\"a\":"},
                       {"type":"text","text":"1}"}],
            "stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":5}}"#;
        let answer = parse_answer(body, Some("req_1".into())).expect("parses");
        assert_eq!(answer.text, "{\"a\":1}");
        assert_eq!(answer.usage.input_tokens, 10);
        assert_eq!(answer.stop_reason.as_deref(), Some("end_turn"));

        let refused = r#"{"content":[],"stop_reason":"refusal","usage":{"input_tokens":9,"output_tokens":0},
            "stop_details":{"type":"refusal","category":"cyber","explanation":"Not this."}}"#;
        let answer = parse_answer(refused, None).expect("parses");
        assert_eq!(answer.text, "");
        assert_eq!(answer.refusal_category.as_deref(), Some("cyber"));
        assert_eq!(answer.refusal_explanation.as_deref(), Some("Not this."));
    }

    #[test]
    fn cost_follows_the_configured_prices() {
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_read_input_tokens: 0,
            cache_creation_input_tokens: 0,
        };
        // $3 per million in, $15 per million out: $3 + $1.50.
        assert_eq!(cost_micros(&usage, 3.0, 15.0), 4_500_000);
        assert_eq!(cost_micros(&Usage::default(), 3.0, 15.0), 0);
    }
}
