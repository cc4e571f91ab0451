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
}

impl Site {
    /// Compiles the pages, with the policy pages found in the configured folder.
    pub fn new(config: &Config) -> anyhow::Result<Site> {
        Ok(Site {
            pages: Pages::with_policies(Some(&config.policies_dir))?,
            limiter: RateLimiter::default(),
            form_key: FormKey::random()?,
        })
    }
}
