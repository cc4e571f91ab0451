//! Verifying (and, for demo mode and tests, making) `Stripe-Signature` headers. Pure: the
//! clock and the secrets are arguments.
//!
//! The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=...]`; each `v1` is
//! HMAC-SHA256 over `"{t}.{raw body}"`. Every `v1` is compared in constant time against every
//! configured secret, so a secret roll (two secrets, two signatures) never drops an event.
//! Timestamps older than the tolerance are refused; like Stripe's own libraries, a timestamp in
//! the future is not.

use hmac::{KeyInit, Mac};
use time::{Duration, OffsetDateTime};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// How old a signature may be: Stripe's libraries use five minutes.
pub const TOLERANCE: Duration = Duration::minutes(5);

/// Why a webhook is refused; each answers 400 and stores nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Stripe-Signature` header.
    #[error("no Stripe-Signature header")]
    Missing,
    /// The header has no timestamp, or no `v1` signature.
    #[error("malformed Stripe-Signature header")]
    Malformed,
    /// The timestamp is older than the tolerance: a replay, or a very late retry.
    #[error("signature timestamp is {age_secs} s old, more than the {tolerance_secs} s allowed")]
    Stale { age_secs: i64, tolerance_secs: i64 },
    /// No `v1` matches any configured secret.
    #[error("no signature matches")]
    Mismatch,
}

/// Checks `header` against the raw `body` with any of `secrets`.
pub fn verify(
    body: &[u8],
    header: Option<&str>,
    secrets: &[&str],
    now: OffsetDateTime,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => timestamp = value.parse::<i64>().ok(),
            // A v1 that is not hex cannot match; it is skipped, not fatal, as in Stripe's code.
            "v1" => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let age = now.unix_timestamp().saturating_sub(timestamp);
    if age > tolerance.whole_seconds() {
        return Err(SignatureError::Stale {
            age_secs: age,
            tolerance_secs: tolerance.whole_seconds(),
        });
    }
    for secret in secrets {
        let mac = mac(secret, timestamp, body);
        if signatures
            .iter()
            .any(|signature| mac.clone().verify_slice(signature).is_ok())
        {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// The `Stripe-Signature` header Stripe would send for `body` at `timestamp`.
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let signature = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(signature))
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);
    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    fn check(header: Option<&str>, body: &[u8], secrets: &[&str]) -> Result<(), SignatureError> {
        verify(body, header, secrets, NOW, TOLERANCE)
    }

    #[test]
    fn signs_as_stripe_does() {
        // Computed independently: printf '%s' '1700000000.{"id":"evt_test","object":"event"}' |
        //   openssl dgst -sha256 -hmac whsec_example
        let header = sign(
            br#"{"id":"evt_test","object":"event"}"#,
            "whsec_example",
            1_700_000_000,
        );
        assert_eq!(
            header,
            "t=1700000000,v1=64a65d617e9017424c0ed85115ea28429ba55e2151416caaeb804cf0b0fab0b7"
        );
    }

    #[test]
    fn a_fresh_signature_verifies() {
        let header = sign(BODY, SECRET, NOW.unix_timestamp() - 10);
        assert_eq!(check(Some(&header), BODY, &[SECRET]), Ok(()));
    }

    #[test]
    fn attacks_are_refused() {
        let t = NOW.unix_timestamp();
        let good = sign(BODY, SECRET, t);
        let cases: Vec<(&str, Option<String>, &[u8], SignatureError)> = vec![
            ("missing header", None, BODY, SignatureError::Missing),
            (
                "empty header",
                Some(String::new()),
                BODY,
                SignatureError::Malformed,
            ),
            (
                "no timestamp",
                Some(good.replace(&format!("t={t},"), "")),
                BODY,
                SignatureError::Malformed,
            ),
            (
                "no v1",
                Some(format!("t={t},v0=abcd")),
                BODY,
                SignatureError::Malformed,
            ),
            (
                "garbage",
                Some("t=abc,v1=zz".into()),
                BODY,
                SignatureError::Malformed,
            ),
            (
                "wrong secret",
                Some(sign(BODY, "whsec_other", t)),
                BODY,
                SignatureError::Mismatch,
            ),
            (
                "tampered body",
                Some(good.clone()),
                br#"{"id":"evt_1","type":"charge.refunded"}"#,
                SignatureError::Mismatch,
            ),
            (
                "stale timestamp",
                Some(sign(BODY, SECRET, t - 301)),
                BODY,
                SignatureError::Stale {
                    age_secs: 301,
                    tolerance_secs: 300,
                },
            ),
            (
                "timestamp swapped on a valid signature",
                Some(good.replace(&format!("t={t}"), &format!("t={}", t + 1))),
                BODY,
                SignatureError::Mismatch,
            ),
        ];
        for (name, header, body, expected) in cases {
            assert_eq!(
                check(header.as_deref(), body, &[SECRET]),
                Err(expected),
                "{name}"
            );
        }
    }

    #[test]
    fn a_future_timestamp_is_accepted_as_stripes_libraries_do() {
        let header = sign(BODY, SECRET, NOW.unix_timestamp() + 3_600);
        assert_eq!(check(Some(&header), BODY, &[SECRET]), Ok(()));
    }

    #[test]
    fn any_v1_may_match_and_any_secret_may_sign() {
        let t = NOW.unix_timestamp();
        let old = sign(BODY, "whsec_old", t);
        let new = sign(BODY, "whsec_new", t);
        let v1 = |h: &str| h.split_once(",v1=").map(|(_, s)| s.to_owned()).expect("v1");
        // During a roll Stripe signs with both secrets; either one configured here is enough.
        let both = format!("t={t},v1={},v1={},v0=deadbeef", v1(&old), v1(&new));
        assert_eq!(check(Some(&both), BODY, &["whsec_new"]), Ok(()));
        assert_eq!(check(Some(&both), BODY, &["whsec_old"]), Ok(()));
        // And with two secrets configured, an event signed with either verifies.
        assert_eq!(check(Some(&old), BODY, &["whsec_new", "whsec_old"]), Ok(()));
        // One invalid v1 beside a valid one does not spoil it.
        let mixed = format!("t={t},v1={},v1=nothex", "00".repeat(32));
        assert_eq!(
            check(Some(&mixed), BODY, &["whsec_new"]),
            Err(SignatureError::Mismatch)
        );
        let mixed = format!("t={t},v1={},v1={}", "00".repeat(32), v1(&new));
        assert_eq!(check(Some(&mixed), BODY, &["whsec_new"]), Ok(()));
    }
}
