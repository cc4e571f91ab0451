//! Cheap bot filters for the intake form: a honeypot field people never see, and a signed
//! "form shown at" time that must be at least a few seconds old. The signature uses a key
//! made at `serve`'s start, so a bot cannot forge an old time; a form shown before a restart
//! is simply shown again with the answers kept.

use hmac::{KeyInit, Mac};
use time::{Duration, OffsetDateTime};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The hidden field a person leaves empty.
pub const HONEYPOT: &str = "website_url";
/// The hidden field with the signed time the form was shown.
pub const STARTED: &str = "started";

/// A form older than this is shown again.
const MAX_AGE: Duration = Duration::days(1);

/// The key `started` is signed with; one per `serve` process.
#[derive(Clone)]
pub struct FormKey([u8; 32]);

impl std::fmt::Debug for FormKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormKey(..)")
    }
}

/// Why a submission looks automated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suspicion {
    /// The honeypot was filled in.
    Honeypot,
    /// No valid `started` (missing, forged, from before a restart, or a day old).
    NoValidStart,
    /// Sent sooner after the form was shown than a person could.
    TooFast,
}

/// Fails if the honeypot field was filled in.
pub fn check_honeypot(value: Option<&str>) -> Result<(), Suspicion> {
    if value.is_some_and(|v| !v.trim().is_empty()) {
        Err(Suspicion::Honeypot)
    } else {
        Ok(())
    }
}

impl FormKey {
    /// A fresh random key.
    pub fn random() -> anyhow::Result<FormKey> {
        let mut key = [0_u8; 32];
        getrandom::fill(&mut key).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
        Ok(FormKey(key))
    }

    fn mac(&self, at: i64) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(at.to_string().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// The `started` value for a form shown at `now`.
    pub fn started(&self, now: OffsetDateTime) -> String {
        let at = now.unix_timestamp();
        format!("{at}.{}", self.mac(at))
    }

    /// Checks a submitted form's hidden fields at `now`.
    pub fn check(
        &self,
        honeypot: Option<&str>,
        started: Option<&str>,
        min_seconds: u32,
        now: OffsetDateTime,
    ) -> Result<(), Suspicion> {
        check_honeypot(honeypot)?;
        let (at, mac) = started
            .and_then(|s| s.split_once('.'))
            .ok_or(Suspicion::NoValidStart)?;
        let at: i64 = at.parse().map_err(|_| Suspicion::NoValidStart)?;
        let expected = self.mac(at);
        // Constant time: the comparison must not tell a forger how close they are.
        let same = expected.len() == mac.len()
            && expected
                .bytes()
                .zip(mac.bytes())
                .fold(0_u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Err(Suspicion::NoValidStart);
        }
        let age =
            now - OffsetDateTime::from_unix_timestamp(at).map_err(|_| Suspicion::NoValidStart)?;
        if age > MAX_AGE {
            return Err(Suspicion::NoValidStart);
        }
        if age < Duration::seconds(i64::from(min_seconds)) {
            return Err(Suspicion::TooFast);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

    #[test]
    fn people_pass_and_bots_do_not() {
        let key = FormKey::random().expect("key");
        let started = key.started(T0);
        let check = |honeypot, started: Option<&str>, at| key.check(honeypot, started, 3, at);
        assert_eq!(
            check(None, Some(&started), T0 + Duration::seconds(40)),
            Ok(())
        );
        assert_eq!(
            check(Some(""), Some(&started), T0 + Duration::seconds(40)),
            Ok(())
        );
        assert_eq!(
            check(
                Some("http://spam.example"),
                Some(&started),
                T0 + Duration::seconds(40)
            ),
            Err(Suspicion::Honeypot)
        );
        assert_eq!(
            check(None, Some(&started), T0 + Duration::seconds(1)),
            Err(Suspicion::TooFast)
        );
        assert_eq!(check(None, None, T0), Err(Suspicion::NoValidStart));
        // An old time with a made-up signature, or another process's signature.
        let forged = format!(
            "{}.{}",
            (T0 - Duration::hours(1)).unix_timestamp(),
            "0".repeat(32)
        );
        assert_eq!(check(None, Some(&forged), T0), Err(Suspicion::NoValidStart));
        let other = FormKey::random().expect("key").started(T0);
        assert_eq!(
            check(None, Some(&other), T0 + Duration::minutes(1)),
            Err(Suspicion::NoValidStart)
        );
        assert_eq!(
            check(None, Some(&started), T0 + Duration::days(2)),
            Err(Suspicion::NoValidStart)
        );
    }
}
