//! `[stripe]`: the API, its version, the keys and how long a call may take.

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde::Deserialize;

use super::secrets::{Refused, STRIPE_KEY, SecretSlot, WEBHOOK_SECRETS, secret};
use super::{check_url, non_empty};

/// How to reach Stripe.
#[derive(Clone, Debug)]
pub struct StripeConfig {
    /// `https://api.stripe.com`, or a local fake in tests.
    pub api_base: String,
    /// The pinned `Stripe-Version`.
    pub api_version: String,
    /// For Stripe.js on the payment page.
    pub publishable_key: String,
    /// Where the payment page loads Stripe.js from: Stripe's own address in production (the
    /// release train of `api_version`), a stand-in on the loopback interface in tests. The
    /// pages' Content-Security-Policy follows it.
    pub js_url: String,
    /// `sk_...` or `rk_...`.
    pub secret_key: SecretSlot,
    /// `whsec_...` values, comma-separated: several while rolling.
    pub webhook_secrets: SecretSlot,
    /// How long one call may take before it is given up (and retried, if it may be).
    pub timeout: std::time::Duration,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawStripe {
    api_base: String,
    api_version: String,
    publishable_key: String,
    js_url: String,
    secret_key_file: Option<PathBuf>,
    webhook_secrets_file: Option<PathBuf>,
    pub(super) secret_key: Refused,
    pub(super) webhook_secrets: Refused,
    timeout_secs: u32,
}

impl Default for RawStripe {
    fn default() -> Self {
        RawStripe {
            api_base: "https://api.stripe.com".into(),
            api_version: "2026-09-30.endive".into(),
            publishable_key: String::new(),
            js_url: "https://js.stripe.com/endive/stripe.js".into(),
            secret_key_file: None,
            webhook_secrets_file: None,
            secret_key: None,
            webhook_secrets: None,
            timeout_secs: 40,
        }
    }
}

impl RawStripe {
    pub(super) fn check(
        self,
        dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<StripeConfig> {
        check_url("stripe.api_base", &self.api_base)?;
        // Stripe.js must come from Stripe over https; only a test's stand-in on this machine
        // may be plain http.
        let local = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
        if !(self.js_url.starts_with("https://")
            || local.iter().any(|l| self.js_url.starts_with(l)))
            || self.js_url.contains([' ', '"', '\'', '<', '>'])
        {
            bail!(
                "stripe.js_url must be an https:// address (Stripe's is \
                 https://js.stripe.com/endive/stripe.js), got `{}`",
                self.js_url
            );
        }
        non_empty("stripe.api_version", &self.api_version)?;
        if !(1..=600).contains(&self.timeout_secs) {
            bail!(
                "stripe.timeout_secs must be between 1 and 600, got {}",
                self.timeout_secs
            );
        }
        Ok(StripeConfig {
            api_base: self.api_base.trim_end_matches('/').to_owned(),
            api_version: self.api_version,
            publishable_key: self.publishable_key,
            js_url: self.js_url,
            timeout: std::time::Duration::from_secs(self.timeout_secs.into()),
            secret_key: secret(
                "Stripe secret key",
                STRIPE_KEY,
                "stripe.secret_key_file",
                self.secret_key_file,
                dir,
                env,
            )?,
            webhook_secrets: secret(
                "Stripe webhook signing secret",
                WEBHOOK_SECRETS,
                "stripe.webhook_secrets_file",
                self.webhook_secrets_file,
                dir,
                env,
            )?,
        })
    }
}
