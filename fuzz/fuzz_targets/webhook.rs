//! The webhook path before any database: the `Stripe-Signature` header and the event JSON.
//! Input: the header, a newline, then the body. Verifying must never panic and must accept
//! exactly what `sign` produced for the same body.
#![no_main]

use compass::stripe::webhook::{TOLERANCE, sign, verify};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a valid time");
    let secrets = ["whsec_fuzz", "whsec_old"];
    if let Ok(header) = std::str::from_utf8(header) {
        let _ = verify(body, Some(header), &secrets, now, TOLERANCE);
    }
    let signed = sign(body, "whsec_old", now.unix_timestamp());
    assert!(verify(body, Some(&signed), &secrets, now, TOLERANCE).is_ok());
    assert!(verify(body, Some(&signed), &["whsec_other"], now, TOLERANCE).is_err());
    if let Ok(event) = serde_json::from_slice::<compass::stripe::Event>(body) {
        let _ = event.object_id();
        let _ = event.object::<compass::stripe::PaymentIntent>();
        let _ = event.object::<compass::stripe::Refund>();
        let _ = event.object::<compass::stripe::Charge>();
    }
});
