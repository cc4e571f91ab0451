//! Per-client rate limits: a token bucket per (action, IP address), shared by all workers.
//! A client may spend `per_hour` at once and earns them back evenly over the hour. The clock
//! is the request's `now`, so tests drive it. Only a trusted proxy's `X-Forwarded-For` can name
//! the client; from anyone else the header is ignored.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use time::{Duration, OffsetDateTime};

use super::Request;

/// What a client is limited in.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Action {
    /// `POST /orders`.
    Order,
    /// `POST /status/{token}/refund`.
    RefundRequest,
    /// `POST /my`.
    SignIn,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: OffsetDateTime,
}

/// Above this many tracked clients, buckets that have filled up again are forgotten.
const MAX_TRACKED: usize = 10_000;

/// The buckets of every client.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<(Action, IpAddr), Bucket>>,
}

impl RateLimiter {
    /// Spends one of `client`'s `per_hour` for `action` at `now`, or says how long until one
    /// is earned back. A limit of 0 is no limit.
    pub fn check(
        &self,
        action: Action,
        client: IpAddr,
        per_hour: u32,
        now: OffsetDateTime,
    ) -> Result<(), Duration> {
        if per_hour == 0 {
            return Ok(());
        }
        let capacity = f64::from(per_hour);
        let per_second = capacity / 3_600.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED {
            buckets.retain(|_, b| (now - b.at).as_seconds_f64() * per_second + b.tokens < capacity);
        }
        let bucket = buckets.entry((action, client)).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = (now - bucket.at).as_seconds_f64().max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) / per_second).ceil();
            Err(Duration::seconds(wait as i64).max(Duration::SECOND))
        }
    }
}

/// The client's address: the socket's peer, or, when that peer is a trusted proxy, the
/// nearest address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(req: &Request, trusted: &[IpAddr]) -> Option<IpAddr> {
    let remote = req.remote?;
    if !trusted.contains(&remote) {
        return Some(remote);
    }
    let Some(forwarded) = req.header("x-forwarded-for") else {
        return Some(remote);
    };
    let mut client = remote;
    for hop in forwarded.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => client = ip,
            Ok(ip) => return Some(ip),
            // A garbled hop: trust nothing further to its left.
            Err(_) => return Some(client),
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

    #[test]
    fn the_bucket_empties_and_refills_over_the_hour() {
        let limiter = RateLimiter::default();
        let ip: IpAddr = "203.0.113.9".parse().expect("ip");
        let other: IpAddr = "198.51.100.7".parse().expect("ip");
        for _ in 0..5 {
            assert_eq!(limiter.check(Action::Order, ip, 5, T0), Ok(()));
        }
        // The sixth waits for a token: 3600 s / 5 = 720 s.
        assert_eq!(
            limiter.check(Action::Order, ip, 5, T0),
            Err(Duration::seconds(720))
        );
        // Other clients and other actions are untouched.
        assert_eq!(limiter.check(Action::Order, other, 5, T0), Ok(()));
        assert_eq!(limiter.check(Action::SignIn, ip, 3, T0), Ok(()));
        // One token back after 12 minutes; all five after an hour.
        assert!(
            limiter
                .check(Action::Order, ip, 5, T0 + Duration::minutes(11))
                .is_err()
        );
        assert_eq!(
            limiter.check(Action::Order, ip, 5, T0 + Duration::minutes(12)),
            Ok(())
        );
        for _ in 0..5 {
            assert_eq!(
                limiter.check(Action::Order, ip, 5, T0 + Duration::hours(2)),
                Ok(())
            );
        }
        assert!(
            limiter
                .check(Action::Order, ip, 5, T0 + Duration::hours(2))
                .is_err()
        );
        assert_eq!(
            limiter.check(Action::Order, ip, 0, T0),
            Ok(()),
            "0 is no limit"
        );
    }

    fn request(remote: &str, forwarded: Option<&str>) -> Request {
        Request {
            remote: remote.parse().ok(),
            headers: forwarded
                .map(|f| vec![("X-Forwarded-For".to_owned(), f.to_owned())])
                .unwrap_or_default(),
            ..Request::default()
        }
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let trusted: Vec<IpAddr> = vec![
            "127.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        ];
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert_eq!(
            client_ip(&request("203.0.113.9", Some("1.2.3.4")), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(&request("127.0.0.1", None), &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_ip(&request("127.0.0.1", Some("1.2.3.4")), &trusted),
            ip("1.2.3.4")
        );
        // A client cannot prepend a fake address: the nearest untrusted hop counts.
        assert_eq!(
            client_ip(
                &request("127.0.0.1", Some("6.6.6.6, 1.2.3.4, 10.0.0.2")),
                &trusted
            ),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_ip(&request("127.0.0.1", Some("nonsense")), &trusted),
            ip("127.0.0.1")
        );
    }
}
