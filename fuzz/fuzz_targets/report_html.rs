//! The HTML report with hostile text in every place a customer's or the model's words go:
//! it renders, and the text appears only escaped. (The first version of this target asserted
//! that the raw text never appears anywhere in the page; `><` appears between any two tags,
//! so it now looks for the text between markers it cannot contain.)
#![no_main]

use compass::method::Method;
use compass::report::{Report, html, sample};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if text.contains('|') {
        return;
    }
    let marked = format!("|{text}|");
    let method = Method::builtin();
    let tier = method
        .tiers
        .iter()
        .find(|t| t.id.as_str() == "premium")
        .expect("a built-in tier");
    let mut written = sample::written(tier, &method);
    written.summary = marked.clone();
    if let Some(pillar) = written.categories.first_mut() {
        pillar.finding = marked.clone();
    }
    let scores = method.scores(&compass::check::sample_intake(&method, tier.id.clone()));
    let report = Report {
        company: marked.clone(),
        tier: tier.id.clone(),
        scores,
        written,
        sample: false,
        peers: None,
    };
    let page = html::render(&report, &method, "Compass").expect("renders");
    let escaped = format!("|{}|", handlebars::html_escape(text));
    assert!(page.contains(&escaped), "the text, escaped, is in the page");
    if escaped != marked {
        assert!(!page.contains(&marked), "the raw text is in the page");
    }
    assert!(!page.to_ascii_lowercase().contains("<script"));
});
