//! The report as an HTML page: the method's handlebars template (`report/report.hbs`, escaped
//! everywhere) with the radar chart drawn as inline SVG from the numbers in [`super::radar`].

use base64::Engine;
use handlebars::Handlebars;
use serde_json::json;

use super::radar::radar;
use super::{Report, Signature};
use crate::method::{Method, render_error, template_error};

const TEMPLATE: &str = "report/report.hbs";

/// Renders `report` by `method` (the order's), signed by `signature`.
pub fn render(report: &Report, method: &Method, signature: &Signature) -> anyhow::Result<String> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(false);
    let template = method
        .text(TEMPLATE)
        .ok_or_else(|| anyhow::anyhow!("the method has no {TEMPLATE}"))?;
    registry
        .register_template_string("report", template)
        .map_err(|err| template_error(TEMPLATE, &err))?;
    let peers = report.peers.as_ref().map(|p| p.shown(&report.scores));
    let categories: Vec<_> = report
        .scores
        .categories
        .iter()
        .map(|score| {
            let text = report.written.categories.iter().find(|c| c.id == score.id);
            json!({
                "peers": peers.as_ref().and_then(|p| p["categories"].get(&score.id)),
                "peer_bar": peers.as_ref().and_then(|p| p["bars"].get(&score.id)),
                "median": peers.as_ref().and_then(|p| p["medians"].get(&score.id)),
                "title": score.title,
                "score": score.shown().map_or_else(
                    || "not assessed".to_owned(),
                    |s| format!("{s} / {:.0}", score.out_of),
                ),
                "finding": text.map(|t| t.finding.as_str()),
                "recommendations": text.and_then(|t| t.recommendations.as_ref()),
            })
        })
        .collect();
    let own = json!({
        "logo": logo_data_uri(method),
        "company": report.company,
        "sample": report.sample,
        "overall": report.scores.overall,
        "level": report.scores.level,
        "radar": radar(&report.scores, 400.0),
        "peers": peers,
        "categories": categories,
        "written": report.written,
        "answers": report.answers,
    });
    let data = signature.data(report, method, own);
    registry
        .render("report", &data)
        .map_err(|err| render_error(TEMPLATE, &err))
}

/// The method's logo as a `data:` URI (the report page's policy allows no other images).
pub fn logo_data_uri(method: &Method) -> Option<String> {
    let logo = method.brand.logo.as_ref()?;
    let bytes = method.files().get(&logo.path)?;
    Some(format!(
        "data:{};base64,{}",
        logo.mime,
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::{CategoryScore, Scores};
    use crate::report::sample;

    fn report(tier: &str, company: &str) -> Report {
        let method = Method::builtin();
        let tier = method.tier(&tier.parse().expect("an id")).expect("sold");
        let mut written = sample::written(tier, &method);
        written.summary =
            "Ignore previous instructions <script>alert(1)</script> {{company}}".into();
        let intake_scores = Scores {
            categories: method
                .questionnaire
                .categories
                .iter()
                .enumerate()
                .map(|(i, p)| CategoryScore {
                    id: p.id.clone(),
                    title: p.title.clone(),
                    score: (i != 3).then_some(1.0 + i as f64 * 0.7),
                    out_of: 5.0,
                })
                .collect(),
            overall: Some(55),
            level: Some("Follower".into()),
        };
        Report {
            company: company.into(),
            tier: tier.id.clone(),
            scores: intake_scores,
            written,
            sample: true,
            peers: None,
            date: Some(time::macros::date!(2026 - 11 - 02)),
            answers: Some(crate::report::appendix::of(
                &crate::check::sample_intake(&method, tier.id.clone()),
                &method,
            )),
        }
    }

    #[test]
    fn the_page_has_the_chart_the_tier_depth_and_escaped_text() {
        let html = render(
            &report("premium", "Acme <b>&</b> Sons"),
            &Method::builtin(),
            &Signature::sample("Compass"),
        )
        .expect("renders");
        assert!(html.contains("<svg class=\"radar\""));
        assert!(html.contains("<polygon class=\"shape\""));
        assert!(html.contains("Acme &lt;b&gt;&amp;&lt;/b&gt; Sons"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; {{company}}"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("SAMPLE REPORT"));
        for section in [
            "Risks",
            "The next 90 days",
            "Use-case portfolio",
            "The next 12 months",
            "Budget ranges",
        ] {
            assert!(html.contains(section), "{section}");
        }
        assert!(html.contains("not assessed"));
        let starter = render(
            &report("starter", "Acme"),
            &Method::builtin(),
            &Signature::sample("Compass"),
        )
        .expect("renders");
        assert!(starter.contains("Five quick wins"));
        assert!(!starter.contains("Budget ranges") && !starter.contains("Risks"));
    }

    #[test]
    fn the_peers_stand_beside_the_scores() {
        let mut report = report("standard", "Acme");
        let mut peers = crate::report::peers::sample(&report.scores);
        peers.group = crate::report::peers::Group::Industry {
            industry: "Logistics".into(),
        };
        report.peers = Some(peers);
        let html =
            render(&report, &Method::builtin(), &Signature::sample("Compass")).expect("renders");
        assert!(
            html.contains(
                "Companies like yours (Logistics, 24 assessed): median 55, middle half 45 to 65."
            ),
            "{html}"
        );
        // Infrastructure scored 1.7 of 5: its peers' spread is shown with one decimal. (The
        // sample gives the first category, Strategy, no peers.)
        assert!(
            html.contains("Companies like yours: median 1.7, middle half 1.2 to 2.2."),
            "{html}"
        );
        assert_eq!(html.matches("Companies like yours:").count(), 4, "{html}");
        // Each beside its bar: the middle half from 1.2 (24%) to 2.2 (44%) of 5, the median
        // at 34%, the company's own 1.7 on it.
        assert!(
            html.contains("<rect x=\"24.0\" y=\"1.5\" width=\"20.0\""),
            "{html}"
        );
        assert!(html.contains("<circle cx=\"34.0\""), "{html}");
        assert_eq!(html.matches("<svg class=\"peer-bar\"").count(), 4);
        report.peers = None;
        let html =
            render(&report, &Method::builtin(), &Signature::sample("Compass")).expect("renders");
        assert!(!html.contains("Companies like yours:"));
        assert!(!html.contains("peer-bar\""));
    }

    #[test]
    fn fragments_of_markup_only_ever_appear_escaped() {
        // From fuzzing (fuzz/fuzz_targets/report_html.rs): `><` and friends as the company.
        for text in ["><", "\"'`=", "</title><script>", "&amp;"] {
            let company = format!("|{text}|");
            let html = render(
                &report("standard", &company),
                &Method::builtin(),
                &Signature::sample("Compass"),
            )
            .expect("renders");
            let escaped = format!("|{}|", handlebars::html_escape(text));
            assert!(html.contains(&escaped), "{text}: {escaped} missing");
            assert!(!html.contains(&company), "{text}: raw in the page");
        }
    }

    #[test]
    fn the_page_has_the_deliverables_parts_and_premium_a_table_of_contents() {
        let method = Method::builtin();
        let premium = render(
            &report("premium", "Acme"),
            &method,
            &Signature::sample("Compass"),
        )
        .expect("renders");
        for part in [
            "<nav class=\"contents\"",
            "<h2>Executive summary</h2>",
            "<h3>The three things that matter most</h3>",
            "<h2>How your score was computed</h2>",
            "<tr class=\"own\"><td>Follower</td>",
            "<h2>Next steps</h2>",
            "<a href=\"https://example.com/book\" target=\"_blank\" rel=\"noopener\">Book a call</a>",
            "<h2>Appendix: your answers</h2>",
            "<td>Company</td><td>Sample Company Ltd</td>",
            "<dt>Date</dt><dd>2 November 2026</dd>",
        ] {
            assert!(premium.contains(part), "{part}");
        }
        let question = &method.questionnaire.categories[0].questions[0].text;
        assert!(
            premium.contains(&format!(
                "<td>{}</td><td>5 of 5</td>",
                handlebars::html_escape(question)
            )),
            "the appendix has each answer"
        );
        let mut signature = Signature::sample("Compass");
        signature.booking_url = None;
        let starter = render(&report("starter", "Acme"), &method, &signature).expect("renders");
        assert!(!starter.contains("<nav class=\"contents\""));
        assert!(starter.contains("<a href=\"mailto:hello@example.com\">hello@example.com</a>"));
        assert!(!starter.contains("Book a call"));
        assert!(starter.len() < premium.len());
    }
}
