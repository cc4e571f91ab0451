//! The HTML report with hostile text in every place a customer's or the model's words go:
//! it renders, and no markup from the text survives.
#![no_main]

use compass::order::Tier;
use compass::questionnaire::Questionnaire;
use compass::report::{Report, html, sample};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let questionnaire = Questionnaire::builtin();
    let mut written = sample::written(Tier::Premium, &questionnaire);
    written.summary = text.to_owned();
    if let Some(pillar) = written.pillars.first_mut() {
        pillar.finding = text.to_owned();
    }
    let scores = scores(&questionnaire);
    let report = Report {
        company: text.to_owned(),
        tier: Tier::Premium,
        scores,
        written,
        sample: false,
    };
    let page = html::render(&report, text).expect("renders");
    if text.contains('<') {
        assert!(!page.contains(text), "raw text in the page");
    }
    assert!(!page.to_ascii_lowercase().contains("<script"));
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
