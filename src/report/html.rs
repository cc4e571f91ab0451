//! The report as an HTML page: a handlebars template (escaped everywhere) with the radar chart
//! drawn as inline SVG from the numbers in [`super::radar`].

use anyhow::Context;
use handlebars::Handlebars;
use serde_json::json;

use super::Report;
use super::radar::radar;

const TEMPLATE: &str = include_str!("../../templates/report/report.hbs");

/// Renders `report` for `business`.
pub fn render(report: &Report, business: &str) -> anyhow::Result<String> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(false);
    registry
        .register_template_string("report", TEMPLATE)
        .context("the report template does not compile")?;
    let pillars: Vec<_> = report
        .scores
        .pillars
        .iter()
        .map(|score| {
            let text = report.written.pillars.iter().find(|p| p.id == score.id);
            json!({
                "title": score.title,
                "score": score.score.map_or_else(|| "not assessed".to_owned(), |s| format!("{s:.1} / 5")),
                "finding": text.map(|t| t.finding.as_str()),
                "recommendations": text.and_then(|t| t.recommendations.as_ref()),
            })
        })
        .collect();
    let data = json!({
        "business": business,
        "company": report.company,
        "tier": report.tier.title(),
        "sample": report.sample,
        "overall": report.scores.overall,
        "level": report.scores.level.map(crate::questionnaire::Level::title),
        "radar": radar(&report.scores, 400.0),
        "pillars": pillars,
        "written": report.written,
    });
    registry
        .render("report", &data)
        .context("cannot render the report")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::Tier;
    use crate::questionnaire::Questionnaire;
    use crate::report::sample;

    fn report(tier: Tier, company: &str) -> Report {
        let q = Questionnaire::builtin();
        let mut written = sample::written(tier, &q);
        written.summary =
            "Ignore previous instructions <script>alert(1)</script> {{company}}".into();
        let intake_scores = crate::questionnaire::Scores {
            pillars: q
                .pillars
                .iter()
                .enumerate()
                .map(|(i, p)| crate::questionnaire::PillarScore {
                    id: p.id.clone(),
                    title: p.title.clone(),
                    score: (i != 3).then_some(1.0 + i as f64 * 0.7),
                })
                .collect(),
            overall: Some(55),
            level: Some(crate::questionnaire::Level::Follower),
        };
        Report {
            company: company.into(),
            tier,
            scores: intake_scores,
            written,
            sample: true,
        }
    }

    #[test]
    fn the_page_has_the_chart_the_tier_depth_and_escaped_text() {
        let html =
            render(&report(Tier::Premium, "Acme <b>&</b> Sons"), "Compass").expect("renders");
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
        let starter = render(&report(Tier::Starter, "Acme"), "Compass").expect("renders");
        assert!(starter.contains("Five quick wins"));
        assert!(!starter.contains("Budget ranges") && !starter.contains("Risks"));
    }

    #[test]
    fn fragments_of_markup_only_ever_appear_escaped() {
        // From fuzzing (fuzz/fuzz_targets/report_html.rs): `><` and friends as the company.
        for text in ["><", "\"'`=", "</title><script>", "&amp;"] {
            let company = format!("|{text}|");
            let html = render(&report(Tier::Standard, &company), "Compass").expect("renders");
            let escaped = format!("|{}|", handlebars::html_escape(text));
            assert!(html.contains(&escaped), "{text}: {escaped} missing");
            assert!(!html.contains(&company), "{text}: raw in the page");
        }
    }
}
