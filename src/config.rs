//! `compass.toml` and the secrets beside it.
//!
//! The file is read into raw serde structs that refuse unknown keys, then checked into a
//! [`Config`] whose values are known good. Secrets never come from the file: each is read from an
//! environment variable, or from a file named by `<VAR>_FILE` or by a `*_file` key, and is held in
//! a [`Secret`] whose `Debug` shows nothing. A command asks for a secret only when it needs it, and
//! a missing one is an error that names the variable.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use time::Duration;

use crate::order::{Policy, Tier};

/// The commented configuration `compass init` writes; its values are the defaults.
pub const EXAMPLE: &str = include_str!("../examples/compass.example.toml");

/// A secret value: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value read from the environment or a file.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A secret that may or may not be set, and how to set it.
#[derive(Clone, Debug)]
pub struct SecretSlot {
    value: Option<Secret>,
    what: &'static str,
    var: &'static str,
    key: &'static str,
}

impl SecretSlot {
    /// The secret, or an error that says how to provide it.
    pub fn get(&self) -> anyhow::Result<&Secret> {
        self.value.as_ref().with_context(|| {
            format!(
                "missing the {}: set {} (or {}_FILE, or {} in compass.toml, to a file that holds it)",
                self.what, self.var, self.var, self.key
            )
        })
    }

    /// Whether it is set.
    pub fn is_set(&self) -> bool {
        self.value.is_some()
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
    /// The SQLite file.
    pub database: PathBuf,
    /// Prices and currency.
    pub prices: Prices,
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
    /// What one client may ask of `serve`.
    pub limits: Limits,
    /// A CAPTCHA on the intake form, if configured.
    pub captcha: Option<Captcha>,
    /// Where the operator's own policy pages may replace the built-in ones.
    pub policies_dir: PathBuf,
    /// How long answers and reports are kept; `None` keeps them.
    pub retention: Option<Duration>,
}

/// A CAPTCHA provider whose answer the intake form must carry.
#[derive(Clone, Debug)]
pub struct Captcha {
    pub provider: CaptchaProvider,
    /// Public: the widget on the form shows it.
    pub site_key: String,
    /// Where the answer is checked (the provider's, unless a test points elsewhere).
    pub verify_url: String,
    pub secret: SecretSlot,
}

/// The CAPTCHA services compass knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptchaProvider {
    /// Cloudflare Turnstile.
    Turnstile,
    /// hCaptcha.
    Hcaptcha,
}

impl CaptchaProvider {
    /// The provider's server-side check.
    pub fn verify_url(self) -> &'static str {
        match self {
            CaptchaProvider::Turnstile => {
                "https://challenges.cloudflare.com/turnstile/v0/siteverify"
            }
            CaptchaProvider::Hcaptcha => "https://api.hcaptcha.com/siteverify",
        }
    }

    /// The form field its widget fills in.
    pub fn field(self) -> &'static str {
        match self {
            CaptchaProvider::Turnstile => "cf-turnstile-response",
            CaptchaProvider::Hcaptcha => "h-captcha-response",
        }
    }

    /// Its script, and the origins the page must allow for script, frames and requests.
    pub fn script(self) -> &'static str {
        match self {
            CaptchaProvider::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/api.js",
            CaptchaProvider::Hcaptcha => "https://js.hcaptcha.com/1/api.js",
        }
    }

    /// The origins its widget loads from.
    pub fn origins(self) -> &'static str {
        match self {
            CaptchaProvider::Turnstile => "https://challenges.cloudflare.com",
            CaptchaProvider::Hcaptcha => "https://hcaptcha.com https://*.hcaptcha.com",
        }
    }

    /// The class of the widget's element.
    pub fn widget_class(self) -> &'static str {
        match self {
            CaptchaProvider::Turnstile => "cf-turnstile",
            CaptchaProvider::Hcaptcha => "h-captcha",
        }
    }
}

/// Requests per client (IP address) and hour; 0 turns a limit off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub orders_per_hour: u32,
    pub refund_requests_per_hour: u32,
    pub sign_ins_per_hour: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client; anyone else's is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The intake form sent sooner than this after it was shown is taken for a bot.
    pub min_form_seconds: u32,
}

/// What each tier costs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prices {
    /// Lower-case ISO 4217 code.
    pub currency: String,
    starter: i64,
    standard: i64,
    premium: i64,
}

impl Prices {
    /// The price of `tier`, in the currency's smallest unit.
    pub fn of(&self, tier: Tier) -> i64 {
        match tier {
            Tier::Starter => self.starter,
            Tier::Standard => self.standard,
            Tier::Premium => self.premium,
        }
    }
}

/// How to reach Stripe.
#[derive(Clone, Debug)]
pub struct StripeConfig {
    /// `https://api.stripe.com`, or a local fake in tests.
    pub api_base: String,
    /// The pinned `Stripe-Version`.
    pub api_version: String,
    /// For Stripe.js on the payment page.
    pub publishable_key: String,
    /// `sk_...` or `rk_...`.
    pub secret_key: SecretSlot,
    /// `whsec_...` values, comma-separated: several while rolling.
    pub webhook_secrets: SecretSlot,
    /// How long one call may take before it is given up (and retried, if it may be).
    pub timeout: std::time::Duration,
}

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

/// Outgoing mail.
#[derive(Clone, Debug)]
pub struct MailConfig {
    /// The sender, `Name <address>`.
    pub from: String,
    /// Where alerts go.
    pub operator: String,
    /// How mail leaves.
    pub transport: MailTransport,
}

/// How mail leaves.
#[derive(Clone, Debug)]
pub enum MailTransport {
    /// Each message becomes an `.eml` file in this directory.
    File {
        /// Where the files go.
        dir: PathBuf,
    },
    /// An SMTP relay.
    Smtp {
        /// The relay's host name.
        host: String,
        /// Its port.
        port: u16,
        /// How the connection is protected.
        security: SmtpSecurity,
        /// Empty for no authentication.
        username: String,
        /// The password for `username`.
        password: SecretSlot,
    },
}

/// How an SMTP connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on localhost.
    None,
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

/// A message with its quoted values and anything shaped like a key taken out: a secret pasted
/// into the wrong line must not end up in a terminal or a log.
fn redact_secrets(message: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut unquoted = String::with_capacity(message.len());
    for (i, part) in message.split('"').enumerate() {
        unquoted.push_str(if i % 2 == 1 { "\"…\"" } else { part });
    }
    unquoted
        .split_inclusive(|c: char| !is_word(c))
        .map(|piece| {
            let word = piece.trim_end_matches(|c: char| !is_word(c));
            if looks_secret(word) {
                piece.replacen(word, "[redacted]", 1)
            } else {
                piece.to_owned()
            }
        })
        .collect()
}

/// Whether a word looks like an API key or password rather than a name: a known key prefix, or
/// a long run of letters and digits.
fn looks_secret(word: &str) -> bool {
    const PREFIXES: [&str; 5] = ["sk_", "rk_", "whsec_", "sk-ant-", "sk-"];
    if PREFIXES.iter().any(|p| word.starts_with(p)) {
        return true;
    }
    word.len() >= 24
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_alphabetic())
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

// ---- the file as written ------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    business: RawBusiness,
    paths: RawPaths,
    tiers: RawTiers,
    stripe: RawStripe,
    claude: RawClaude,
    mail: RawMail,
    refunds: RawRefunds,
    processing: RawProcessing,
    limits: RawLimits,
    captcha: RawCaptcha,
    retention: RawRetention,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct RawBusiness {
    name: String,
    public_url: String,
    support_email: String,
}

impl Default for RawBusiness {
    fn default() -> Self {
        RawBusiness {
            name: "Compass AI Readiness".into(),
            public_url: "http://127.0.0.1:8080".into(),
            support_email: "hello@example.com".into(),
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct RawPaths {
    database: PathBuf,
    policies: PathBuf,
}

impl Default for RawPaths {
    fn default() -> Self {
        RawPaths {
            database: "compass.db".into(),
            policies: "policies".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct RawRetention {
    purge_after_days: i64,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct RawTiers {
    currency: String,
    starter: i64,
    standard: i64,
    premium: i64,
}

impl Default for RawTiers {
    fn default() -> Self {
        RawTiers {
            currency: "usd".into(),
            starter: 4_900,
            standard: 14_900,
            premium: 39_900,
        }
    }
}

/// A key that would hold a secret: present only to refuse it with a useful message.
type Refused = Option<toml::Value>;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct RawStripe {
    api_base: String,
    api_version: String,
    publishable_key: String,
    secret_key_file: Option<PathBuf>,
    webhook_secrets_file: Option<PathBuf>,
    secret_key: Refused,
    webhook_secrets: Refused,
    timeout_secs: u32,
}

impl Default for RawStripe {
    fn default() -> Self {
        RawStripe {
            api_base: "https://api.stripe.com".into(),
            api_version: "2026-09-30.endive".into(),
            publishable_key: String::new(),
            secret_key_file: None,
            webhook_secrets_file: None,
            secret_key: None,
            webhook_secrets: None,
            timeout_secs: 40,
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct RawClaude {
    api_base: String,
    model: String,
    max_tokens: u32,
    max_tokens_cap: u32,
    max_cost_per_order_usd: f64,
    timeout_secs: u32,
    input_usd_per_mtok: f64,
    output_usd_per_mtok: f64,
    api_key_file: Option<PathBuf>,
    api_key: Refused,
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

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct RawMail {
    from: String,
    operator: String,
    transport: String,
    file_dir: PathBuf,
    smtp_host: String,
    smtp_port: u16,
    smtp_security: SmtpSecurity,
    smtp_username: String,
    smtp_password_file: Option<PathBuf>,
    smtp_password: Refused,
}

impl Default for RawMail {
    fn default() -> Self {
        RawMail {
            from: "Compass AI Readiness <reports@example.com>".into(),
            operator: "you@example.com".into(),
            transport: "file".into(),
            file_dir: "mail".into(),
            smtp_host: "localhost".into(),
            smtp_port: 587,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: String::new(),
            smtp_password_file: None,
            smtp_password: None,
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct RawRefunds {
    window_days: i64,
    auto_approve: bool,
}

impl Default for RawRefunds {
    fn default() -> Self {
        RawRefunds {
            window_days: 7,
            auto_approve: true,
        }
    }
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct RawCaptcha {
    provider: String,
    site_key: String,
    verify_url: String,
    secret_file: Option<PathBuf>,
    secret: Refused,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct RawLimits {
    orders_per_hour: u32,
    refund_requests_per_hour: u32,
    sign_ins_per_hour: u32,
    trusted_proxies: Vec<String>,
    min_form_seconds: u32,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            orders_per_hour: 5,
            refund_requests_per_hour: 5,
            sign_ins_per_hour: 3,
            trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
            min_form_seconds: 3,
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct RawProcessing {
    max_attempts: u32,
    backoff_base_secs: i64,
    backoff_cap_secs: i64,
    lease_secs: i64,
}

impl Default for RawProcessing {
    fn default() -> Self {
        RawProcessing {
            max_attempts: 5,
            backoff_base_secs: 30,
            backoff_cap_secs: 3_600,
            lease_secs: 900,
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
        let refused = [
            ("stripe.secret_key", &self.stripe.secret_key, STRIPE_KEY),
            (
                "stripe.webhook_secrets",
                &self.stripe.webhook_secrets,
                WEBHOOK_SECRETS,
            ),
            ("claude.api_key", &self.claude.api_key, ANTHROPIC_KEY),
            ("captcha.secret", &self.captcha.secret, CAPTCHA_SECRET),
            (
                "mail.smtp_password",
                &self.mail.smtp_password,
                SMTP_PASSWORD,
            ),
        ];
        for (key, value, var) in refused {
            if value.is_some() {
                bail!(
                    "{key}: secrets are not read from compass.toml; set {var} in the environment, \
                     or {key}_file to a file that holds it"
                );
            }
        }

        let b = self.business;
        let public_url = b.public_url.trim_end_matches('/').to_owned();
        if !(public_url.starts_with("https://") || public_url.starts_with("http://"))
            || public_url.contains(['?', '#', ' '])
        {
            bail!("business.public_url must be an http:// or https:// address, got `{public_url}`");
        }
        check_address("business.support_email", &b.support_email)?;
        non_empty("business.name", &b.name)?;

        let t = self.tiers;
        let currency = t.currency.to_ascii_lowercase();
        if currency.len() != 3 || !currency.bytes().all(|c| c.is_ascii_alphabetic()) {
            bail!(
                "tiers.currency must be a three-letter ISO 4217 code like usd, got `{}`",
                t.currency
            );
        }
        for (tier, price) in [
            ("starter", t.starter),
            ("standard", t.standard),
            ("premium", t.premium),
        ] {
            // Stripe's floor is about 50 cents and its ceiling 99,999,999 in the smallest unit.
            if !(50..=99_999_999).contains(&price) {
                bail!("tiers.{tier} must be a price in cents between 50 and 99999999, got {price}");
            }
        }

        let s = self.stripe;
        check_url("stripe.api_base", &s.api_base)?;
        non_empty("stripe.api_version", &s.api_version)?;
        if !(1..=600).contains(&s.timeout_secs) {
            bail!(
                "stripe.timeout_secs must be between 1 and 600, got {}",
                s.timeout_secs
            );
        }
        let stripe = StripeConfig {
            api_base: s.api_base.trim_end_matches('/').to_owned(),
            api_version: s.api_version,
            publishable_key: s.publishable_key,
            timeout: std::time::Duration::from_secs(s.timeout_secs.into()),
            secret_key: secret(
                "Stripe secret key",
                STRIPE_KEY,
                "stripe.secret_key_file",
                s.secret_key_file,
                dir,
                env,
            )?,
            webhook_secrets: secret(
                "Stripe webhook signing secret",
                WEBHOOK_SECRETS,
                "stripe.webhook_secrets_file",
                s.webhook_secrets_file,
                dir,
                env,
            )?,
        };

        let c = self.claude;
        let claude_timeout_secs = c.timeout_secs;
        check_url("claude.api_base", &c.api_base)?;
        non_empty("claude.model", &c.model)?;
        if c.max_tokens == 0 {
            bail!("claude.max_tokens must be at least 1");
        }
        if c.max_tokens_cap < c.max_tokens {
            bail!(
                "claude.max_tokens_cap ({}) must be at least claude.max_tokens ({})",
                c.max_tokens_cap,
                c.max_tokens
            );
        }
        if !c.max_cost_per_order_usd.is_finite() || c.max_cost_per_order_usd <= 0.0 {
            bail!(
                "claude.max_cost_per_order_usd must be more than zero, got {}",
                c.max_cost_per_order_usd
            );
        }
        if c.timeout_secs == 0 {
            bail!("claude.timeout_secs must be at least 1");
        }
        for (key, price) in [
            ("claude.input_usd_per_mtok", c.input_usd_per_mtok),
            ("claude.output_usd_per_mtok", c.output_usd_per_mtok),
        ] {
            if !price.is_finite() || price < 0.0 {
                bail!("{key} must be zero or more, got {price}");
            }
        }
        let claude = ClaudeConfig {
            api_base: c.api_base.trim_end_matches('/').to_owned(),
            model: c.model,
            max_tokens: c.max_tokens,
            max_tokens_cap: c.max_tokens_cap,
            max_cost_per_order_micros: (c.max_cost_per_order_usd * 1_000_000.0).round() as i64,
            timeout: Duration::seconds(c.timeout_secs.into()),
            input_usd_per_mtok: c.input_usd_per_mtok,
            output_usd_per_mtok: c.output_usd_per_mtok,
            api_key: secret(
                "Anthropic API key",
                ANTHROPIC_KEY,
                "claude.api_key_file",
                c.api_key_file,
                dir,
                env,
            )?,
        };

        let m = self.mail;
        check_address("mail.from", &m.from)?;
        check_address("mail.operator", &m.operator)?;
        let transport = match m.transport.as_str() {
            "file" => MailTransport::File {
                dir: dir.join(&m.file_dir),
            },
            "smtp" => {
                non_empty("mail.smtp_host", &m.smtp_host)?;
                if m.smtp_security == SmtpSecurity::None
                    && !matches!(m.smtp_host.as_str(), "localhost" | "127.0.0.1" | "::1")
                {
                    bail!(
                        "mail.smtp_security = \"none\" is only allowed for a relay on localhost, \
                         not {}",
                        m.smtp_host
                    );
                }
                MailTransport::Smtp {
                    host: m.smtp_host,
                    port: m.smtp_port,
                    security: m.smtp_security,
                    username: m.smtp_username,
                    password: secret(
                        "SMTP password",
                        SMTP_PASSWORD,
                        "mail.smtp_password_file",
                        m.smtp_password_file,
                        dir,
                        env,
                    )?,
                }
            }
            other => bail!("mail.transport must be \"file\" or \"smtp\", got \"{other}\""),
        };

        let r = self.refunds;
        if !(0..=365).contains(&r.window_days) {
            bail!(
                "refunds.window_days must be between 0 and 365, got {}",
                r.window_days
            );
        }
        let retention = match self.retention.purge_after_days {
            0 => None,
            days if (30..=3650).contains(&days) && days > r.window_days => {
                Some(Duration::days(days))
            }
            days => bail!(
                "retention.purge_after_days must be 0 (keep everything) or between 30 and 3650 \
                 days, and longer than refunds.window_days ({}), got {days}",
                r.window_days
            ),
        };
        let p = self.processing;
        if !(1..=100).contains(&p.max_attempts) {
            bail!(
                "processing.max_attempts must be between 1 and 100, got {}",
                p.max_attempts
            );
        }
        for (key, secs) in [
            ("processing.backoff_base_secs", p.backoff_base_secs),
            ("processing.backoff_cap_secs", p.backoff_cap_secs),
            ("processing.lease_secs", p.lease_secs),
        ] {
            if !(1..=86_400).contains(&secs) {
                bail!("{key} must be between 1 and 86400 seconds, got {secs}");
            }
        }
        if p.lease_secs <= 2 * i64::from(claude_timeout_secs) {
            bail!(
                "processing.lease_secs ({}) must be more than twice claude.timeout_secs ({}): a \
                 report may take a second, repairing call, and a run that outlives its lease \
                 loses the report it wrote",
                p.lease_secs,
                claude_timeout_secs
            );
        }
        if p.backoff_cap_secs < p.backoff_base_secs {
            bail!("processing.backoff_cap_secs must not be below processing.backoff_base_secs");
        }
        let c = self.captcha;
        let captcha = match c.provider.as_str() {
            "" => None,
            name @ ("turnstile" | "hcaptcha") => {
                let provider = if name == "turnstile" {
                    CaptchaProvider::Turnstile
                } else {
                    CaptchaProvider::Hcaptcha
                };
                non_empty("captcha.site_key", &c.site_key)?;
                let verify_url = if c.verify_url.is_empty() {
                    provider.verify_url().to_owned()
                } else {
                    c.verify_url
                };
                Some(Captcha {
                    provider,
                    site_key: c.site_key,
                    verify_url,
                    secret: secret(
                        "CAPTCHA secret key",
                        CAPTCHA_SECRET,
                        "captcha.secret_file",
                        c.secret_file,
                        dir,
                        env,
                    )?,
                })
            }
            other => bail!(
                "captcha.provider must be \"\" (none), \"turnstile\" or \"hcaptcha\", got \"{other}\""
            ),
        };
        let l = self.limits;
        if l.min_form_seconds > 600 {
            bail!(
                "limits.min_form_seconds must be at most 600, got {}",
                l.min_form_seconds
            );
        }
        let trusted_proxies = l
            .trusted_proxies
            .iter()
            .map(|ip| {
                ip.parse::<std::net::IpAddr>().map_err(|_| {
                    anyhow::anyhow!("limits.trusted_proxies: `{ip}` is not an IP address")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;

        Ok(Config {
            path: path.to_owned(),
            business_name: b.name,
            public_url,
            support_email: b.support_email,
            database: dir.join(self.paths.database),
            policies_dir: dir.join(self.paths.policies),
            retention,
            prices: Prices {
                currency,
                starter: t.starter,
                standard: t.standard,
                premium: t.premium,
            },
            stripe,
            claude,
            mail: MailConfig {
                from: m.from,
                operator: m.operator,
                transport,
            },
            policy: Policy {
                max_attempts: p.max_attempts,
                max_rescues: Policy::default().max_rescues,
                backoff_base: Duration::seconds(p.backoff_base_secs),
                backoff_cap: Duration::seconds(p.backoff_cap_secs),
                refund_window: Duration::days(r.window_days),
                auto_approve_refunds: r.auto_approve,
            },
            lease: Duration::seconds(p.lease_secs),
            captcha,
            limits: Limits {
                orders_per_hour: l.orders_per_hour,
                refund_requests_per_hour: l.refund_requests_per_hour,
                sign_ins_per_hour: l.sign_ins_per_hour,
                trusted_proxies,
                min_form_seconds: l.min_form_seconds,
            },
        })
    }
}

const STRIPE_KEY: &str = "COMPASS_STRIPE_SECRET_KEY";
const WEBHOOK_SECRETS: &str = "COMPASS_STRIPE_WEBHOOK_SECRETS";
const ANTHROPIC_KEY: &str = "COMPASS_ANTHROPIC_API_KEY";
const SMTP_PASSWORD: &str = "COMPASS_SMTP_PASSWORD";
const CAPTCHA_SECRET: &str = "COMPASS_CAPTCHA_SECRET";

/// Reads a secret from `var`, else from the file named by `var_FILE`, else from the file named
/// in compass.toml. A named file that cannot be read is an error now, not when it is needed.
fn secret(
    what: &'static str,
    var: &'static str,
    key: &'static str,
    file: Option<PathBuf>,
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<SecretSlot> {
    let from_file = |path: PathBuf, named_by: &str| -> anyhow::Result<Option<Secret>> {
        if looks_secret(&path.to_string_lossy()) {
            bail!(
                "{named_by} should name a file that holds the {what}, but its value looks like \
                 the secret itself: set {var} instead"
            );
        }
        let path = dir.join(path);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read the {what} from {} ({named_by})",
                path.display()
            )
        })?;
        let value = text.trim();
        if value.is_empty() {
            bail!("the {what} file {} ({named_by}) is empty", path.display());
        }
        Ok(Some(Secret::new(value)))
    };
    let value = match env(var).filter(|v| !v.trim().is_empty()) {
        Some(value) => Some(Secret::new(value.trim())),
        None => match (env(&format!("{var}_FILE")), file) {
            (Some(path), _) => from_file(path.into(), &format!("{var}_FILE"))?,
            (None, Some(path)) => from_file(path, key)?,
            (None, None) => None,
        },
    };
    Ok(SecretSlot {
        value,
        what,
        var,
        key,
    })
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
