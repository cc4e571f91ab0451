//! `compass.toml` and the secrets beside it.
//!
//! The file is read into raw serde structs that refuse unknown keys, then checked into a
//! [`Config`] whose values are known good. Secrets never come from the file: each is read from an
//! environment variable, or from a file named by `<VAR>_FILE` or by a `*_file` key, and is held in
//! a [`Secret`] whose `Debug` shows nothing. A command asks for a secret only when it needs it, and
//! a missing one is an error that names the variable.

mod claude;
mod invoices;
mod mail;
mod rules;
mod secrets;
mod site;
mod stripe;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use time::Duration;

pub use claude::{ClaudeConfig, DEFAULT_CLAUDE_MODEL};
pub use mail::{MailConfig, MailTransport, SmtpSecurity};
pub use rules::Prices;
pub use secrets::{Secret, SecretSlot};
pub use site::{Captcha, CaptchaProvider, Limits};
pub use stripe::StripeConfig;

use crate::order::Policy;
use claude::RawClaude;
use invoices::RawInvoices;
use mail::RawMail;
use rules::{RawDelivery, RawProcessing, RawRefunds, RawRetention, RawTiers};
use secrets::{looks_secret, redact_secrets};
use site::{RawCaptcha, RawLimits};
use stripe::RawStripe;

/// The commented configuration `compass init` writes; its values are the defaults.
pub const EXAMPLE: &str = include_str!("../../examples/compass.example.toml");

/// The method folder's name beside compass.toml when `paths.method` is not set.
pub const DEFAULT_METHOD_DIR: &str = "method";

/// Where the method is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MethodDir {
    /// `paths.method` names it: it must be there.
    Required(PathBuf),
    /// The default place: the built-in method when there is no folder.
    IfPresent(PathBuf),
}

impl MethodDir {
    /// The folder to read, or `None` for the built-in method.
    pub fn folder(&self) -> Option<&Path> {
        match self {
            MethodDir::Required(dir) => Some(dir),
            MethodDir::IfPresent(dir) => dir.is_dir().then_some(dir.as_path()),
        }
    }

    /// The folder's path, whether or not it is there.
    pub fn path(&self) -> &Path {
        match self {
            MethodDir::Required(dir) | MethodDir::IfPresent(dir) => dir,
        }
    }
}

/// The checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// The business's name, as customers see it.
    pub business_name: String,
    /// Where customers reach compass, without a trailing slash.
    pub public_url: String,
    /// Where customers write to.
    pub support_email: String,
    /// Where customers book a call, offered in every report's next steps.
    pub booking_url: Option<String>,
    /// The SQLite file.
    pub database: PathBuf,
    /// The built-in method's prices, from `[tiers]`: kept for installations from before
    /// methods were files (a method folder has its own prices).
    pub prices: Option<Prices>,
    /// The Stripe API.
    pub stripe: StripeConfig,
    /// The Claude Messages API.
    pub claude: ClaudeConfig,
    /// Outgoing mail.
    pub mail: MailConfig,
    /// The rules of the order lifecycle.
    pub policy: Policy,
    /// How long a `process` run may hold an order.
    pub lease: Duration,
    /// How often the operator is reminded of a report waiting for review.
    pub review_reminder: Duration,
    /// What one client may ask of `serve`.
    pub limits: Limits,
    /// A CAPTCHA on the intake form, if configured.
    pub captcha: Option<Captcha>,
    /// Where the operator's own policy pages may replace the built-in ones.
    pub policies_dir: PathBuf,
    /// The operator's method folder.
    pub method_dir: MethodDir,
    /// How long answers and reports are kept; `None` keeps them.
    pub retention: Option<Duration>,
    /// Invoices and credit notes, when `[invoices] issue = true`.
    pub invoices: Option<crate::invoice::Rules>,
}

impl Config {
    /// Reads and checks the file at `path`; secrets are looked up through `env`.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Config::parse(&text, path, env)
    }

    /// Checks `text` as if read from `path`.
    pub fn parse(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Config> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|err| anyhow::anyhow!(describe_toml_error(path, text, &err)))?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        raw.check(path, &dir, env)
            .with_context(|| path.display().to_string())
    }
}

/// One line for a TOML error: where it is, which key, what is wrong.
fn describe_toml_error(path: &Path, text: &str, err: &toml::de::Error) -> String {
    let message = redact_secrets(err.message().trim_end_matches('\n'));
    let Some(span) = err.span() else {
        return format!("{}: {message}", path.display());
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    match key_at(text, line) {
        Some(key) => format!("{}:{line}:{column}: {key}: {message}", path.display()),
        None => format!("{}:{line}:{column}: {message}", path.display()),
    }
}

/// The dotted name of the key set on `line` (1-based), from the table header above it.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?;
    let (key, _) = here.split_once('=')?;
    let key = match key.trim() {
        key if looks_secret(key) => "[redacted]",
        key => key,
    };
    let table = lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    Some(match table {
        Some(table) => format!("{table}.{key}"),
        None => key.to_owned(),
    })
}

// ---- the file as written ------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    business: RawBusiness,
    paths: RawPaths,
    tiers: Option<RawTiers>,
    stripe: RawStripe,
    claude: RawClaude,
    mail: RawMail,
    refunds: RawRefunds,
    processing: RawProcessing,
    delivery: RawDelivery,
    limits: RawLimits,
    captcha: RawCaptcha,
    retention: RawRetention,
    invoices: RawInvoices,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct RawBusiness {
    name: String,
    public_url: String,
    support_email: String,
    booking_url: Option<String>,
}

impl Default for RawBusiness {
    fn default() -> Self {
        RawBusiness {
            name: "Compass AI Readiness".into(),
            public_url: "http://127.0.0.1:8080".into(),
            support_email: "hello@example.com".into(),
            booking_url: None,
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct RawPaths {
    database: PathBuf,
    policies: PathBuf,
    method: Option<PathBuf>,
}

impl Default for RawPaths {
    fn default() -> Self {
        RawPaths {
            database: "compass.db".into(),
            policies: "policies".into(),
            method: None,
        }
    }
}

// ---- checking -----------------------------------------------------------------------------

impl RawConfig {
    fn check(
        self,
        path: &Path,
        dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Config> {
        use secrets::{ANTHROPIC_KEY, CAPTCHA_SECRET, SMTP_PASSWORD, STRIPE_KEY, WEBHOOK_SECRETS};
        secrets::refuse_in_file(&[
            (
                "stripe.secret_key",
                self.stripe.secret_key.is_some(),
                STRIPE_KEY,
            ),
            (
                "stripe.webhook_secrets",
                self.stripe.webhook_secrets.is_some(),
                WEBHOOK_SECRETS,
            ),
            (
                "claude.api_key",
                self.claude.api_key.is_some(),
                ANTHROPIC_KEY,
            ),
            (
                "captcha.secret",
                self.captcha.secret.is_some(),
                CAPTCHA_SECRET,
            ),
            (
                "mail.smtp_password",
                self.mail.smtp_password.is_some(),
                SMTP_PASSWORD,
            ),
        ])?;

        let b = self.business;
        let public_url = b.public_url.trim_end_matches('/').to_owned();
        if !(public_url.starts_with("https://") || public_url.starts_with("http://"))
            || public_url.contains(['?', '#', ' '])
        {
            bail!("business.public_url must be an http:// or https:// address, got `{public_url}`");
        }
        check_address("business.support_email", &b.support_email)?;
        if let Some(url) = &b.booking_url
            && (!(url.starts_with("https://") || url.starts_with("http://")) || url.contains(' '))
        {
            bail!("business.booking_url must be an http:// or https:// address, got `{url}`");
        }
        non_empty("business.name", &b.name)?;

        let prices = self.tiers.map(RawTiers::check).transpose()?;
        let method_dir = match self.paths.method {
            Some(method) => MethodDir::Required(dir.join(method)),
            None => MethodDir::IfPresent(dir.join(DEFAULT_METHOD_DIR)),
        };
        let stripe = self.stripe.check(dir, env)?;
        let claude = self.claude.check(dir, env)?;
        let mail = self.mail.check(dir, env)?;
        let rules = rules::check_rules(
            self.refunds,
            self.retention,
            self.processing,
            self.delivery,
            claude.timeout,
        )?;
        let captcha = self.captcha.check(dir, env)?;
        let limits = self.limits.check()?;
        let invoices = self.invoices.check()?;

        Ok(Config {
            path: path.to_owned(),
            business_name: b.name,
            public_url,
            support_email: b.support_email,
            booking_url: b.booking_url,
            database: dir.join(self.paths.database),
            policies_dir: dir.join(self.paths.policies),
            method_dir,
            retention: rules.retention,
            prices,
            stripe,
            claude,
            mail,
            policy: rules.policy,
            lease: rules.lease,
            review_reminder: rules.review_reminder,
            captcha,
            limits,
            invoices,
        })
    }
}

fn non_empty(key: &str, value: &str) -> anyhow::Result<()> {
    if value.trim().is_empty() {
        bail!("{key} must not be empty");
    }
    Ok(())
}

fn check_url(key: &str, value: &str) -> anyhow::Result<()> {
    if !(value.starts_with("https://") || value.starts_with("http://")) {
        bail!("{key} must be an http:// or https:// address, got `{value}`");
    }
    Ok(())
}

/// An address, with or without a display name, that the mailer can send to.
fn check_address(key: &str, value: &str) -> anyhow::Result<()> {
    crate::address::check_mailbox(value).map_err(|_| {
        anyhow::anyhow!(
            "{key} must be an email address like `Name <you@example.com>`, got `{value}`"
        )
    })
}

#[cfg(test)]
mod tests;
