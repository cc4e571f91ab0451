//! Retrying HTTP calls to Stripe and Anthropic: exponential backoff with jitter, honouring the
//! server's `Retry-After`, as both companies' official libraries do.

use std::time::Duration;

/// How a failed request is retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first wait; it doubles with each retry.
    pub initial_delay: Duration,
    /// The longest computed wait.
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// Stripe's libraries: 0.5 s doubling, at most 5 s.
    pub fn stripe() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(60),
        }
    }

    /// Anthropic's SDKs: 0.5 s doubling, at most 8 s; a `Retry-After` up to 60 s is honoured.
    pub fn anthropic() -> RetryPolicy {
        RetryPolicy {
            max_retries: 4,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }

    /// The wait before retry number `retry` (1-based): [`crate::backoff::doubling`] from the
    /// initial delay,
    /// with jitter between 50% and 100%, and never shorter than a `Retry-After` we honour.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let capped = crate::backoff::doubling(self.initial_delay, retry, self.max_delay);
        let jittered = capped.mul_f64(0.5 * (1.0 + jitter.clamp(0.0, 1.0)));
        match retry_after {
            Some(after) if after <= self.max_retry_after => jittered.max(after),
            _ => jittered,
        }
    }
}

/// The HTTP agent both API clients use: a 10 s connect timeout, `timeout` for the whole
/// call, and error statuses returned as answers (so their bodies and `Retry-After` can be
/// read) rather than as errors.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_global(Some(timeout))
        .user_agent(concat!("compass/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// A uniform number in [0, 1) for backoff jitter.
pub fn jitter() -> f64 {
    let mut bytes = [0_u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

/// `Retry-After` as seconds, or `retry-after-ms` (Anthropic) as milliseconds.
pub fn retry_after(seconds: Option<&str>, millis: Option<&str>) -> Option<Duration> {
    if let Some(ms) = millis.and_then(|v| v.trim().parse::<f64>().ok()) {
        return (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1000.0));
    }
    seconds
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_jitters_and_honours_retry_after() {
        let policy = RetryPolicy::stripe();
        let ms = |d: Duration| d.as_millis();
        assert_eq!(ms(policy.delay(1, None, 1.0)), 500);
        assert_eq!(ms(policy.delay(1, None, 0.0)), 250);
        assert_eq!(ms(policy.delay(2, None, 1.0)), 1_000);
        assert_eq!(ms(policy.delay(3, None, 1.0)), 2_000);
        assert_eq!(ms(policy.delay(10, None, 1.0)), 5_000);
        assert_eq!(ms(RetryPolicy::anthropic().delay(10, None, 1.0)), 8_000);
        assert_eq!(
            ms(policy.delay(1, Some(Duration::from_secs(7)), 0.0)),
            7_000
        );
        assert_eq!(
            ms(policy.delay(1, Some(Duration::from_secs(600)), 1.0)),
            500,
            "a Retry-After past the maximum is not waited for"
        );
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        assert_eq!(retry_after(Some("2"), None), Some(Duration::from_secs(2)));
        assert_eq!(
            retry_after(Some("1.5"), None),
            Some(Duration::from_millis(1_500))
        );
        assert_eq!(
            retry_after(Some("2"), Some("250")),
            Some(Duration::from_millis(250))
        );
        assert_eq!(retry_after(Some("soon"), None), None);
        assert_eq!(retry_after(Some("-1"), None), None);
        assert_eq!(retry_after(None, None), None);
    }
}
