//! The PDF report with hostile text (typst markup, code, unicode) as the company, the summary
//! and a finding: typst gets it as data, so it always renders a PDF.
#![no_main]

use compass::method::Method;
use compass::report::{Report, pdf, sample};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let method = Method::builtin();
    let tier = method
        .tiers
        .iter()
        .find(|t| t.id.as_str() == "starter")
        .expect("a built-in tier");
    let mut written = sample::written(tier, &method);
    written.summary = text.to_owned();
    if let Some(pillar) = written.categories.first_mut() {
        pillar.finding = text.to_owned();
    }
    let report = Report {
        company: text.to_owned(),
        tier: tier.id.clone(),
        scores: method.scores(&compass::check::sample_intake(&method, tier.id.clone())),
        written,
        sample: false,
        peers: None,
    };
    let bytes = pdf::render(&report, &method, "Compass").expect("renders");
    assert!(bytes.starts_with(b"%PDF"));
});
