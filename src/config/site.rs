//! `[captcha]` and `[limits]`: what the website asks of its visitors.

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde::Deserialize;

use super::non_empty;
use super::secrets::{CAPTCHA_SECRET, Refused, SecretSlot, secret};

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

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawCaptcha {
    provider: String,
    site_key: String,
    verify_url: String,
    secret_file: Option<PathBuf>,
    pub(super) secret: Refused,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawLimits {
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

impl RawCaptcha {
    pub(super) fn check(
        self,
        dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Option<Captcha>> {
        Ok(match self.provider.as_str() {
            "" => None,
            name @ ("turnstile" | "hcaptcha") => {
                let provider = if name == "turnstile" {
                    CaptchaProvider::Turnstile
                } else {
                    CaptchaProvider::Hcaptcha
                };
                non_empty("captcha.site_key", &self.site_key)?;
                let verify_url = if self.verify_url.is_empty() {
                    provider.verify_url().to_owned()
                } else {
                    self.verify_url
                };
                Some(Captcha {
                    provider,
                    site_key: self.site_key,
                    verify_url,
                    secret: secret(
                        "CAPTCHA secret key",
                        CAPTCHA_SECRET,
                        "captcha.secret_file",
                        self.secret_file,
                        dir,
                        env,
                    )?,
                })
            }
            other => bail!(
                "captcha.provider must be \"\" (none), \"turnstile\" or \"hcaptcha\", got \"{other}\""
            ),
        })
    }
}

impl RawLimits {
    pub(super) fn check(self) -> anyhow::Result<Limits> {
        if self.min_form_seconds > 600 {
            bail!(
                "limits.min_form_seconds must be at most 600, got {}",
                self.min_form_seconds
            );
        }
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|ip| {
                ip.parse::<std::net::IpAddr>().map_err(|_| {
                    anyhow::anyhow!("limits.trusted_proxies: `{ip}` is not an IP address")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Limits {
            orders_per_hour: self.orders_per_hour,
            refund_requests_per_hour: self.refund_requests_per_hour,
            sign_ins_per_hour: self.sign_ins_per_hour,
            trusted_proxies,
            min_form_seconds: self.min_form_seconds,
        })
    }
}
