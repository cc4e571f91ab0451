//! The business's own rules: `[tiers]` (the built-in method's prices), `[refunds]`, `[retention]` and
//! `[processing]` (attempts, backoff, leases), checked together where one bounds another.

use anyhow::bail;
use serde::Deserialize;
use time::Duration;

use crate::order::Policy;

/// What each of the built-in method's tiers costs, from `[tiers]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prices {
    /// Lower-case ISO 4217 code.
    pub currency: String,
    starter: i64,
    standard: i64,
    premium: i64,
}

impl Prices {
    /// The price of the built-in tier `id`, in the currency's smallest unit.
    pub fn of(&self, id: &str) -> Option<i64> {
        match id {
            "starter" => Some(self.starter),
            "standard" => Some(self.standard),
            "premium" => Some(self.premium),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawTiers {
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

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawRefunds {
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
pub(super) struct RawRetention {
    purge_after_days: i64,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawProcessing {
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

/// `[delivery]`: whether a written report waits for the consultant before it goes out.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawDelivery {
    review: bool,
    remind_after_hours: i64,
}

impl Default for RawDelivery {
    fn default() -> Self {
        RawDelivery {
            review: false,
            remind_after_hours: 24,
        }
    }
}

impl RawTiers {
    pub(super) fn check(self) -> anyhow::Result<Prices> {
        let currency = self.currency.to_ascii_lowercase();
        if currency.len() != 3 || !currency.bytes().all(|c| c.is_ascii_alphabetic()) {
            bail!(
                "tiers.currency must be a three-letter ISO 4217 code like usd, got `{}`",
                self.currency
            );
        }
        for (tier, price) in [
            ("starter", self.starter),
            ("standard", self.standard),
            ("premium", self.premium),
        ] {
            // Stripe's floor is about 50 cents and its ceiling 99,999,999 in the smallest unit.
            if !(50..=99_999_999).contains(&price) {
                bail!("tiers.{tier} must be a price in cents between 50 and 99999999, got {price}");
            }
        }
        Ok(Prices {
            currency,
            starter: self.starter,
            standard: self.standard,
            premium: self.premium,
        })
    }
}

/// The rules `order::step` and `process` follow, checked.
pub(super) struct Rules {
    pub policy: Policy,
    pub lease: Duration,
    pub retention: Option<Duration>,
    pub review_reminder: Duration,
}

/// Checks refunds, retention, processing and delivery together: the retention must outlast the refund
/// window, and a lease must outlast a report's two Claude calls (`claude_timeout` each).
pub(super) fn check_rules(
    refunds: RawRefunds,
    retention: RawRetention,
    processing: RawProcessing,
    delivery: RawDelivery,
    claude_timeout: Duration,
) -> anyhow::Result<Rules> {
    if !(1..=720).contains(&delivery.remind_after_hours) {
        bail!(
            "delivery.remind_after_hours must be between 1 and 720, got {}",
            delivery.remind_after_hours
        );
    }
    if !(0..=365).contains(&refunds.window_days) {
        bail!(
            "refunds.window_days must be between 0 and 365, got {}",
            refunds.window_days
        );
    }
    let retention = match retention.purge_after_days {
        0 => None,
        days if (30..=3650).contains(&days) && days > refunds.window_days => {
            Some(Duration::days(days))
        }
        days => bail!(
            "retention.purge_after_days must be 0 (keep everything) or between 30 and 3650 \
                 days, and longer than refunds.window_days ({}), got {days}",
            refunds.window_days
        ),
    };
    if !(1..=100).contains(&processing.max_attempts) {
        bail!(
            "processing.max_attempts must be between 1 and 100, got {}",
            processing.max_attempts
        );
    }
    for (key, secs) in [
        ("processing.backoff_base_secs", processing.backoff_base_secs),
        ("processing.backoff_cap_secs", processing.backoff_cap_secs),
        ("processing.lease_secs", processing.lease_secs),
    ] {
        if !(1..=86_400).contains(&secs) {
            bail!("{key} must be between 1 and 86400 seconds, got {secs}");
        }
    }
    if processing.lease_secs <= 2 * claude_timeout.whole_seconds() {
        bail!(
            "processing.lease_secs ({}) must be more than twice claude.timeout_secs ({}): a \
                 report may take a second, repairing call, and a run that outlives its lease \
                 loses the report it wrote",
            processing.lease_secs,
            claude_timeout.whole_seconds()
        );
    }
    if processing.backoff_cap_secs < processing.backoff_base_secs {
        bail!("processing.backoff_cap_secs must not be below processing.backoff_base_secs");
    }
    Ok(Rules {
        policy: Policy {
            max_attempts: processing.max_attempts,
            max_rescues: Policy::default().max_rescues,
            backoff_base: Duration::seconds(processing.backoff_base_secs),
            backoff_cap: Duration::seconds(processing.backoff_cap_secs),
            refund_window: Duration::days(refunds.window_days),
            auto_approve_refunds: refunds.auto_approve,
            review_reports: delivery.review,
        },
        lease: Duration::seconds(processing.lease_secs),
        retention,
        review_reminder: Duration::hours(delivery.remind_after_hours),
    })
}
