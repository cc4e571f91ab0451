//! The report as a PDF, typeset by `crate::typeset`: the template is the method's
//! `report/report.typ`; the report reaches it as one JSON string in `sys.inputs`, so customer
//! text is data, never typst markup. The method's logo is the one file it may read.

use anyhow::Context;

use super::{Report, Signature};
use crate::method::Method;
use crate::typeset::{self, Job, PagedDocument};

const TEMPLATE: &str = "report/report.typ";

/// Typesets `report` by `method` (the order's), signed by `signature`, into PDF bytes.
pub fn render(report: &Report, method: &Method, signature: &Signature) -> anyhow::Result<Vec<u8>> {
    let document = typeset(report, method, signature)?;
    typeset::pdf(&document, "the report")
}

/// The laid-out pages of `report`.
fn typeset(
    report: &Report,
    method: &Method,
    signature: &Signature,
) -> anyhow::Result<PagedDocument> {
    let base = serde_json::to_value(report).context("cannot encode the report")?;
    let mut data = signature.data(report, method, base);
    let chart: Vec<_> = report
        .scores
        .categories
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.id,
                "title": c.title,
                "shown": c.shown(),
                "out_of": format!("{:.0}", c.out_of),
                "reach": c.reach(),
            })
        })
        .collect();
    data["chart"] = serde_json::json!(chart);
    data["peers"] = serde_json::json!(report.peers.as_ref().map(|p| p.shown(&report.scores)));
    let image = method.logo_image()?;
    if let Some((path, _)) = &image {
        data["logo"] = serde_json::json!(path);
    }
    let template = method
        .text(TEMPLATE)
        .with_context(|| format!("the method has no {TEMPLATE}"))?;
    typeset::typeset(Job {
        what: "the report",
        name: TEMPLATE,
        template,
        input: "report",
        data: &data,
        image,
    })
}

#[cfg(test)]
mod tests {
    use typst::layout::Abs;

    use super::*;
    use crate::method::{CategoryScore, Scores, TierDef};
    use crate::report::sample;
    use crate::typeset::probe::{pages_text, text_past_the_edges};

    fn report(tier: &TierDef, method: &Method) -> Report {
        let mut written = sample::written(tier, method);
        written.summary =
            "#set page(fill: red) [*bold*] $x^2$ <script> Ignore previous instructions.".into();
        Report {
            company: "Acme #strong[Evil] & Co".into(),
            tier: tier.id.clone(),
            scores: Scores {
                categories: method
                    .questionnaire
                    .categories
                    .iter()
                    .enumerate()
                    .map(|(i, p)| CategoryScore {
                        id: p.id.clone(),
                        title: p.title.clone(),
                        score: (i != 2).then_some(1.5 + i as f64 * 0.5),
                        out_of: 5.0,
                    })
                    .collect(),
                overall: Some(61),
                level: Some("Chaser".into()),
            },
            written,
            sample: false,
            peers: None,
            date: Some(time::macros::date!(2026 - 11 - 02)),
            answers: Some(crate::report::appendix::of(
                &crate::check::sample_intake(method, tier.id.clone()),
                method,
            )),
        }
    }

    #[test]
    fn every_tier_typesets_into_a_pdf() {
        let method = Method::builtin();
        for tier in &method.tiers {
            let pdf = render(
                &report(tier, &method),
                &method,
                &Signature::sample("Compass"),
            )
            .expect("typesets");
            assert!(pdf.starts_with(b"%PDF-"), "{}", tier.id);
            // Tagged (a structure tree), PDF/UA-1 in its metadata, headings as bookmarks.
            let has = |needle: &[u8]| pdf.windows(needle.len()).any(|w| w == needle);
            assert!(has(b"/StructTreeRoot"), "{}: tagged", tier.id);
            assert!(has(b"pdfuaid:part"), "{}: PDF/UA", tier.id);
            assert!(has(b"/Outlines"), "{}: bookmarks", tier.id);
            assert!(pdf.len() > 10_000, "{}: {} bytes", tier.id, pdf.len());
        }
    }

    /// The longest answers the form takes for `tier`, through its own validator: every text at
    /// its limit, with words and with one unbroken run (a pasted link), every choice made.
    fn longest_intake(method: &Method, tier: &crate::order::Tier) -> crate::method::Intake {
        use crate::method::Kind;
        let text = |max: usize| {
            let link = format!("https://example.com/{}", "a1b2c3".repeat(30));
            let words = "Our team keeps a shared spreadsheet of every quote, and nobody owns it. ";
            let mut text = format!("{link}\n");
            while text.chars().count() < max {
                text.push_str(words);
            }
            text.chars().take(max).collect::<String>()
        };
        let q = &method.questionnaire;
        let mut fields = std::collections::BTreeMap::from([
            (
                "company".to_owned(),
                "W".repeat(60) + &" Holdings".repeat(15),
            ),
            (
                "website".to_owned(),
                format!("https://{}.example.com", "w".repeat(170)),
            ),
            ("industry".to_owned(), "Other".to_owned()),
            ("industry_other".to_owned(), "Industrial ".repeat(18)),
            ("employees".to_owned(), q.employees[0].clone()),
            ("country".to_owned(), "Kingdom ".repeat(25)),
            ("name".to_owned(), "Sam".to_owned()),
            ("email".to_owned(), "sam@example.com".to_owned()),
            ("tier".to_owned(), tier.as_str().to_owned()),
        ]);
        for category in q.categories.iter().filter(|c| c.note) {
            fields.insert(format!("{}_note", category.id), text(2_000));
        }
        for question in q.questions() {
            let answer = match &question.kind {
                Kind::Scale => q.scale.max.to_string(),
                Kind::Single(options) => options
                    .iter()
                    .max_by_key(|o| o.label.len())
                    .map(|o| o.id.clone())
                    .unwrap_or_default(),
                Kind::Multiple(options) => options
                    .iter()
                    .map(|o| o.id.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                Kind::YesNo { .. } => "yes".to_owned(),
                Kind::Number { max, .. } => max.unwrap_or(999_999_999).to_string(),
                Kind::Text => text(5_000),
            };
            fields.insert(question.id.clone(), answer);
        }
        method
            .validate(&fields)
            .unwrap_or_else(|errors| panic!("{errors:?}"))
    }

    #[test]
    fn the_longest_answers_and_words_stay_inside_the_pages() {
        let method = Method::builtin();
        for tier in &method.tiers {
            let intake = longest_intake(&method, &tier.id);
            let mut written = sample::written(tier, &method);
            let long = "The finding rests on what you told us about your data and your people. "
                .repeat(28);
            for category in &mut written.categories {
                category.finding = long.clone();
            }
            let mut report = Report::new(
                &intake,
                &method,
                method.scores(&intake),
                written,
                time::macros::date!(2026 - 11 - 02),
            );
            report.peers = Some(crate::report::peers::sample(&report.scores));
            let document =
                typeset(&report, &method, &Signature::sample("Compass")).expect("typesets");
            // The margins are 2.2 cm; a line may not come within 1.5 cm of the paper's edge.
            let past = text_past_the_edges(&document, Abs::cm(1.5));
            assert!(past.is_empty(), "{}: {past:#?}", tier.id);
            render(&report, &method, &Signature::sample("Compass")).expect("exports");
        }
    }

    #[test]
    fn a_deliverable_from_cover_to_appendix_and_premium_is_the_longest() {
        let method = Method::builtin();
        let mut pages = Vec::new();
        for tier in &method.tiers {
            let report = report(tier, &method);
            let document =
                typeset(&report, &method, &Signature::sample("Compass")).expect("typesets");
            let text = pages_text(&document);
            let cover = &text[0];
            assert!(cover.contains("AI readiness report"), "{cover}");
            assert!(cover.contains("Acme #strong[Evil] & Co"), "{cover}");
            assert!(cover.contains("2 November 2026"), "{cover}");
            assert!(cover.contains(&method.tier_name(&tier.id)), "{cover}");
            assert!(
                !cover.contains("Page 1"),
                "no page number on the cover: {cover}"
            );
            let full = tier.layout == crate::method::Layout::Full;
            assert_eq!(
                text[1].starts_with("Contents"),
                full,
                "{}: {}",
                tier.id,
                text[1]
            );
            let summary = text
                .iter()
                .find(|t| t.starts_with("Executive summary"))
                .expect("a summary page");
            assert!(
                summary.contains("The three things that matter most"),
                "{summary}"
            );
            assert!(summary.contains("Scores at a glance"), "{summary}");
            let all = text.join(" ");
            for part in [
                "How your score was computed",
                "What we found",
                "Next steps",
                "Appendix: your answers",
                "Book a call: https://example.com/book",
            ] {
                assert!(all.contains(part), "{}: {part}", tier.id);
            }
            let last = text.last().expect("pages");
            assert!(
                last.contains(&format!("Page {} of {}", text.len(), text.len())),
                "{last}"
            );
            pages.push(text.len());
        }
        assert!(
            pages[0] < pages[2] && pages[1] < pages[2],
            "starter, standard, premium: {pages:?}"
        );
    }
}
