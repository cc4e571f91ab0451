//! What only the website needs, made once by `serve` and shared by its workers: the page
//! templates (with the operator's policy pages), the per-client rate limits and the key that
//! signs the intake form. Other commands never build it, so a policy page that does not
//! compile stops `serve` at its start and nothing else.

use super::form_guard::FormKey;
use super::limits::RateLimiter;
use crate::config::Config;
use crate::pages::Pages;

/// The website's own parts.
#[derive(Debug)]
pub struct Site {
    /// The customer-facing pages.
    pub pages: Pages,
    /// Per-client rate limits.
    pub limiter: RateLimiter,
    /// Signs the intake form's "shown at" time; a new one each start.
    pub form_key: FormKey,
    /// What the pages may load, from the configuration.
    pub policy: SecurityPolicy,
}

/// The Content-Security-Policy and Permissions-Policy of every answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityPolicy {
    pub content: String,
    pub permissions: String,
}

impl SecurityPolicy {
    /// Pages may load our own assets, Stripe.js from where it is configured (with Stripe's
    /// frames, and its API at `stripe.api_base`) and a configured CAPTCHA's widget, nothing
    /// else; no page may be framed except where a route says so (the report, by its own
    /// status page).
    pub fn of(config: &Config) -> SecurityPolicy {
        let js = origin_of(&config.stripe.js_url);
        let api = origin_of(&config.stripe.api_base);
        // Stripe.js loads more of itself from its subdomains, and 3-D Secure from hooks.
        let (scripts, frames) = if js == "https://js.stripe.com" {
            (
                format!("{js} https://*.js.stripe.com"),
                format!("{js} https://*.js.stripe.com https://hooks.stripe.com"),
            )
        } else {
            (js.clone(), js.clone())
        };
        let captcha = config
            .captcha
            .as_ref()
            .map(|c| format!(" {}", c.provider.origins()))
            .unwrap_or_default();
        SecurityPolicy {
            content: format!(
                "default-src 'self'; script-src 'self'{captcha} {scripts}; \
                 frame-src 'self'{captcha} {frames}; connect-src 'self'{captcha} {api}; \
                 img-src 'self' data:; style-src 'self'; object-src 'none'; base-uri 'none'; \
                 form-action 'self'; frame-ancestors 'none'"
            ),
            permissions: format!(
                "camera=(), microphone=(), geolocation=(), payment=(self \"{js}\")"
            ),
        }
    }
}

impl Site {
    /// Compiles the pages, with the policy pages found in the configured folder.
    pub fn new(config: &Config) -> anyhow::Result<Site> {
        Ok(Site {
            pages: Pages::with_policies(Some(&config.policies_dir))?,
            limiter: RateLimiter::default(),
            form_key: FormKey::random()?,
            policy: SecurityPolicy::of(config),
        })
    }
}

/// `scheme://host[:port]` of a URL, lower-cased.
pub(super) fn origin_of(url: &str) -> String {
    let url = url.trim().to_ascii_lowercase();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{host}")
}
