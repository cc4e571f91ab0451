//! The PDF report with hostile text (typst markup, code, unicode) as the company, the summary
//! and a finding: typst gets it as data, so it always renders a PDF.
#![no_main]

use compass::order::Tier;
use compass::questionnaire::Questionnaire;
use compass::report::{Report, pdf, sample};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let questionnaire = Questionnaire::builtin();
    let mut written = sample::written(Tier::Starter, &questionnaire);
    written.summary = text.to_owned();
    if let Some(pillar) = written.pillars.first_mut() {
        pillar.finding = text.to_owned();
    }
    let report = Report {
        company: text.to_owned(),
        tier: Tier::Starter,
        scores: scores(&questionnaire),
        written,
        sample: false,
    };
    let bytes = pdf::render(&report, "Compass").expect("renders");
    assert!(bytes.starts_with(b"%PDF"));
});

/// The scores of a plain, valid submission.
fn scores(questionnaire: &Questionnaire) -> compass::questionnaire::Scores {
    let fields = [
        ("company", "Acme"),
        ("industry", "Manufacturing"),
        ("employees", "11-50"),
        ("country", "UK"),
        ("name", "Ada"),
        ("email", "ada@example.com"),
        ("tier", "premium"),
        ("strategy_1", "4"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let intake = questionnaire.validate(&fields).expect("a valid submission");
    questionnaire.scores(&intake)
}
