//! The intake form: a form body decoded and validated against the built-in questionnaire.
//! Never a panic; what passes validation scores within 0-100 and 1-5.
#![no_main]

use std::collections::BTreeMap;

use compass::questionnaire::Questionnaire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) else {
        return;
    };
    let fields: BTreeMap<String, String> = pairs.into_iter().collect();
    let questionnaire = Questionnaire::builtin();
    if let Ok(intake) = questionnaire.validate(&fields) {
        let scores = questionnaire.scores(&intake);
        assert!(scores.overall.is_none_or(|o| o <= 100));
        for pillar in &scores.pillars {
            assert!(pillar.score.is_none_or(|s| (1.0..=5.0).contains(&s)));
        }
        // What is stored must read back.
        let json = serde_json::to_value(&intake).expect("encodes");
        let _: compass::questionnaire::Intake = serde_json::from_value(json).expect("decodes");
    }
});
