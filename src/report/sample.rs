//! A built-in report, clearly labelled as a sample: what demo mode and a preview without an
//! Anthropic key show, and what the tests script the fake model to answer.

use super::{BudgetLine, CategoryText, Milestone, Rating, Risk, UseCase, Written};
use crate::method::{Method, Section, TierDef};

/// A valid answer for `tier` of `method`, written for any company.
pub fn written(tier: &TierDef, method: &Method) -> Written {
    let has = |section| tier.has(section);
    let categories = method
        .questionnaire
        .categories
        .iter()
        .map(|pillar| CategoryText {
            id: pillar.id.clone(),
            finding: format!(
                "SAMPLE. Your answers on {} show where you start from; this paragraph would tie \
                 them to what good looks like for a company of your size.",
                pillar.title.to_lowercase()
            ),
            recommendations: has(Section::Recommendations).then(|| {
                vec![
                    format!(
                        "Name one owner for {} and agree what success means.",
                        pillar.title.to_lowercase()
                    ),
                    "Review progress every month against the roadmap.".to_owned(),
                ]
            }),
        })
        .collect();
    let milestone = |when: &str, what: &str| Milestone {
        when: when.to_owned(),
        what: what.to_owned(),
    };
    Written {
        summary: "SAMPLE REPORT. This is the built-in sample that compass shows without a Claude \
                  key. A real report reads your answers and explains, in four to six sentences, \
                  where your company stands and what matters most."
            .to_owned(),
        priorities: vec![
            "SAMPLE. The first thing that matters most for your company, tied to your answers."
                .to_owned(),
            "SAMPLE. The second: what stands between you and the next level.".to_owned(),
            "SAMPLE. The third: the risk to settle before you scale.".to_owned(),
        ],
        categories,
        quick_wins: if !has(Section::QuickWins) {
            Vec::new()
        } else {
            vec![
                "Write down the three processes where AI could save the most time.".to_owned(),
                "Agree a one-page policy on what staff may paste into AI tools.".to_owned(),
                "Give five volunteers a paid AI assistant for a month and collect their notes."
                    .to_owned(),
                "List where your key data lives and who owns each source.".to_owned(),
                "Book a monthly half hour for the team to share what worked.".to_owned(),
            ]
        },
        risks: has(Section::Risks).then(|| {
            vec![
                Risk {
                    title: "Customer data pasted into public tools".to_owned(),
                    mitigation:
                        "Adopt the one-page policy and a business-grade tool with data controls."
                            .to_owned(),
                },
                Risk {
                    title: "Pilots that never reach daily work".to_owned(),
                    mitigation: "Give every pilot an owner, a metric and a decision date."
                        .to_owned(),
                },
            ]
        }),
        roadmap_90_days: has(Section::Roadmap90Days).then(|| {
            vec![
                milestone(
                    "Weeks 1-2",
                    "Policy agreed, owners named, pilot group chosen.",
                ),
                milestone(
                    "Weeks 3-6",
                    "Pilot runs on one process with a baseline measured.",
                ),
                milestone(
                    "Weeks 7-12",
                    "Decide to scale, change or stop; plan the next process.",
                ),
            ]
        }),
        use_cases: has(Section::UseCases).then(|| {
            vec![
                UseCase {
                    name: "Drafting customer replies".to_owned(),
                    description:
                        "An assistant drafts answers from your help articles; staff approve them."
                            .to_owned(),
                    effort: Rating::Low,
                    impact: Rating::Medium,
                },
                UseCase {
                    name: "Quote preparation".to_owned(),
                    description: "Pull specifications and past quotes together into a first draft."
                        .to_owned(),
                    effort: Rating::Medium,
                    impact: Rating::High,
                },
                UseCase {
                    name: "Invoice matching".to_owned(),
                    description: "Match invoices to orders and flag the exceptions for a person."
                        .to_owned(),
                    effort: Rating::Medium,
                    impact: Rating::Medium,
                },
            ]
        }),
        roadmap_12_months: has(Section::Roadmap12Months).then(|| {
            vec![
                milestone(
                    "Q1",
                    "First pilot in production; policy and training in place.",
                ),
                milestone("Q2", "Second use case live; data sources consolidated."),
                milestone("Q3", "Measure savings; extend to a second team."),
                milestone("Q4", "Review the portfolio and set next year's budget."),
            ]
        }),
        budget: has(Section::Budget).then(|| {
            vec![
                BudgetLine {
                    item: "AI assistant licences for the pilot group".to_owned(),
                    low_usd: 1_500,
                    high_usd: 4_000,
                },
                BudgetLine {
                    item: "Integration work with a partner".to_owned(),
                    low_usd: 5_000,
                    high_usd: 20_000,
                },
            ]
        }),
    }
}
