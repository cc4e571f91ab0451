//! The HTML report with hostile text in every place a customer's or the model's words go:
//! it renders, and the text appears only escaped. (The first version of this target asserted
//! that the raw text never appears anywhere in the page; `><` appears between any two tags,
//! so it now looks for the text between markers it cannot contain.)
#![no_main]

use compass::order::Tier;
use compass::questionnaire::Questionnaire;
use compass::report::{Report, html, sample};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if text.contains('|') {
        return;
    }
    let marked = format!("|{text}|");
    let questionnaire = Questionnaire::builtin();
    let mut written = sample::written(Tier::Premium, &questionnaire);
    written.summary = marked.clone();
    if let Some(pillar) = written.pillars.first_mut() {
        pillar.finding = marked.clone();
    }
    let scores = scores(&questionnaire);
    let report = Report {
        company: marked.clone(),
        tier: Tier::Premium,
        scores,
        written,
        sample: false,
    };
    let page = html::render(&report, "Compass").expect("renders");
    let escaped = format!("|{}|", handlebars::html_escape(text));
    assert!(page.contains(&escaped), "the text, escaped, is in the page");
    if escaped != marked {
        assert!(!page.contains(&marked), "the raw text is in the page");
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
