//! The one backoff rule: the wait after the `nth` failure (counting from 1) is the first wait
//! doubled `nth - 1` times, and never more than a cap. Orders, Stripe events, emails and the
//! HTTP retries all wait by it, each with its own first wait and cap.

use std::time::Duration;

/// The wait after the `nth` failure: `first` doubled `nth - 1` times, at most `cap`.
pub fn doubling(first: Duration, nth: u32, cap: Duration) -> Duration {
    first
        .saturating_mul(1_u32 << nth.saturating_sub(1).min(31))
        .min(cap)
}

/// [`doubling`], for the waits that are stored (as `time::Duration`).
pub fn doubling_wait(first: time::Duration, nth: u32, cap: time::Duration) -> time::Duration {
    let wait = doubling(first.unsigned_abs(), nth, cap.unsigned_abs());
    time::Duration::try_from(wait).unwrap_or(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wait_doubles_from_its_first_to_its_cap() {
        let minutes = |nth| {
            doubling_wait(time::Duration::minutes(1), nth, time::Duration::hours(1)).whole_minutes()
        };
        let waits: Vec<i64> = (1..=8).map(minutes).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(minutes(0), 1, "before any failure, the first wait");
        assert_eq!(minutes(u32::MAX), 60, "no overflow, however many failures");
    }
}
