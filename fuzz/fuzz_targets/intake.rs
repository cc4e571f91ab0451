//! The intake form: a form body decoded and validated against the built-in method.
//! Never a panic; what passes validation scores within 0-100 and 1-5.
#![no_main]

use std::collections::BTreeMap;

use compass::method::Method;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) else {
        return;
    };
    let fields: BTreeMap<String, String> = pairs.into_iter().collect();
    let method = Method::builtin();
    if let Ok(intake) = method.validate(&fields) {
        let scores = method.scores(&intake);
        assert!(scores.overall.is_none_or(|o| o <= 100));
        for category in &scores.categories {
            assert!(category.score.is_none_or(|s| (1.0..=5.0).contains(&s)));
        }
        // What is stored must read back.
        let json = serde_json::to_value(&intake).expect("encodes");
        let _: compass::method::Intake = serde_json::from_value(json).expect("decodes");
    }
});
