//! `[claude]`: the API, the model, what one answer and one order may cost, and prices.

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde::Deserialize;
use time::Duration;

use super::secrets::{ANTHROPIC_KEY, Refused, SecretSlot, secret};
use super::{check_url, non_empty};

/// The model reports are written with unless `claude.model` says otherwise: Claude Sonnet
/// 5.5, from the official SDK's model list (anthropic 2.15, 2026-12).
pub const DEFAULT_CLAUDE_MODEL: &str = "claude-sonnet-5-5";

/// How to reach Claude.
#[derive(Clone, Debug)]
pub struct ClaudeConfig {
    /// `https://api.anthropic.com`, or a local fake in tests.
    pub api_base: String,
    /// The model id.
    pub model: String,
    /// The longest answer, in tokens.
    pub max_tokens: u32,
    /// The one larger limit tried after an answer was cut off at `max_tokens`.
    pub max_tokens_cap: u32,
    /// What one order's calls may cost in all, in millionths of a US dollar.
    pub max_cost_per_order_micros: i64,
    /// The longest a request may take.
    pub timeout: Duration,
    /// US dollars per million input tokens.
    pub input_usd_per_mtok: f64,
    /// US dollars per million output tokens.
    pub output_usd_per_mtok: f64,
    /// The API key.
    pub api_key: SecretSlot,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawClaude {
    api_base: String,
    model: String,
    max_tokens: u32,
    max_tokens_cap: u32,
    max_cost_per_order_usd: f64,
    timeout_secs: u32,
    input_usd_per_mtok: f64,
    output_usd_per_mtok: f64,
    api_key_file: Option<PathBuf>,
    pub(super) api_key: Refused,
}

impl Default for RawClaude {
    fn default() -> Self {
        RawClaude {
            api_base: "https://api.anthropic.com".into(),
            model: DEFAULT_CLAUDE_MODEL.into(),
            max_tokens: 16_000,
            max_tokens_cap: 32_000,
            max_cost_per_order_usd: 1.0,
            timeout_secs: 300,
            input_usd_per_mtok: 2.0,
            output_usd_per_mtok: 10.0,
            api_key_file: None,
            api_key: None,
        }
    }
}

impl RawClaude {
    pub(super) fn check(
        self,
        dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<ClaudeConfig> {
        check_url("claude.api_base", &self.api_base)?;
        non_empty("claude.model", &self.model)?;
        if self.max_tokens == 0 {
            bail!("claude.max_tokens must be at least 1");
        }
        if self.max_tokens_cap < self.max_tokens {
            bail!(
                "claude.max_tokens_cap ({}) must be at least claude.max_tokens ({})",
                self.max_tokens_cap,
                self.max_tokens
            );
        }
        if !self.max_cost_per_order_usd.is_finite() || self.max_cost_per_order_usd <= 0.0 {
            bail!(
                "claude.max_cost_per_order_usd must be more than zero, got {}",
                self.max_cost_per_order_usd
            );
        }
        if self.timeout_secs == 0 {
            bail!("claude.timeout_secs must be at least 1");
        }
        for (key, price) in [
            ("claude.input_usd_per_mtok", self.input_usd_per_mtok),
            ("claude.output_usd_per_mtok", self.output_usd_per_mtok),
        ] {
            if !price.is_finite() || price < 0.0 {
                bail!("{key} must be zero or more, got {price}");
            }
        }
        Ok(ClaudeConfig {
            api_base: self.api_base.trim_end_matches('/').to_owned(),
            model: self.model,
            max_tokens: self.max_tokens,
            max_tokens_cap: self.max_tokens_cap,
            max_cost_per_order_micros: (self.max_cost_per_order_usd * 1_000_000.0).round() as i64,
            timeout: Duration::seconds(self.timeout_secs.into()),
            input_usd_per_mtok: self.input_usd_per_mtok,
            output_usd_per_mtok: self.output_usd_per_mtok,
            api_key: secret(
                "Anthropic API key",
                ANTHROPIC_KEY,
                "claude.api_key_file",
                self.api_key_file,
                dir,
                env,
            )?,
        })
    }
}
