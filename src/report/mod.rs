//! The report: what the model must write for each tier (the schema it is held to), the
//! checking of its answer, and the prompts that ask for it.
//!
//! The numbers (pillar scores, overall score, level) come from `questionnaire::scores`, never
//! from the model; the model writes the words, tied to the customer's answers, and `check`
//! refuses words that state other numbers (`numbers.rs`).
//!
//! The schema keeps to what the API's structured outputs accept (the official SDK's
//! `transform_schema` leaves it unchanged): lengths, counts and ranges are said in each
//! property's `description` and enforced by `check`, from one table (`Count`), whose problems
//! drive the repair round. A tier's depth
//! is visible in what its schema requires: Standard adds recommendations, risks and a 90-day
//! roadmap; Premium adds a use-case portfolio, a 12-month roadmap and budget ranges.

pub mod ask;
pub mod html;
mod numbers;
pub mod pdf;
pub mod prompt;
pub mod radar;
pub mod sample;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::order::Tier;
use crate::questionnaire::{Questionnaire, Scores};

/// What the model writes.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Written {
    /// Three to six sentences for the executive.
    pub summary: String,
    /// One entry per pillar, in the questionnaire's order.
    pub pillars: Vec<PillarText>,
    /// Exactly five things to do this month.
    pub quick_wins: Vec<String>,
    /// Standard and Premium.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risks: Option<Vec<Risk>>,
    /// Standard and Premium.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roadmap_90_days: Option<Vec<Milestone>>,
    /// Premium.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_cases: Option<Vec<UseCase>>,
    /// Premium.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roadmap_12_months: Option<Vec<Milestone>>,
    /// Premium.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Vec<BudgetLine>>,
}

/// The words for one pillar.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PillarText {
    /// The pillar's id, as in the questionnaire.
    pub id: String,
    /// One paragraph, tied to the answers.
    pub finding: String,
    /// Standard and Premium: what to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendations: Option<Vec<String>>,
}

/// A risk of going ahead (or of not).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Risk {
    pub title: String,
    pub mitigation: String,
}

/// A step of a roadmap.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Milestone {
    /// "Weeks 1-2", "Month 3", "Q2".
    pub when: String,
    pub what: String,
}

/// A candidate AI use case.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UseCase {
    pub name: String,
    pub description: String,
    pub effort: Rating,
    pub impact: Rating,
}

/// Low, medium or high.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    Low,
    Medium,
    High,
}

/// A budget range for one item, in whole US dollars.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetLine {
    pub item: String,
    pub low_usd: u32,
    pub high_usd: u32,
}

/// The finished report: compass's numbers and the model's words.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Report {
    pub company: String,
    pub tier: Tier,
    pub scores: Scores,
    pub written: Written,
    /// True for the built-in sample used in demo mode and previews without a key.
    #[serde(default)]
    pub sample: bool,
}

impl Report {
    /// The report's three files, as stored and sent: `json`, `html` and `pdf`, by kind.
    pub fn files(&self, business: &str) -> anyhow::Result<[(&'static str, Vec<u8>); 3]> {
        Ok([
            ("json", serde_json::to_vec_pretty(self)?),
            ("html", html::render(self, business)?.into_bytes()),
            ("pdf", pdf::render(self, business)?),
        ])
    }
}

/// The longest text the model may write in one field, in characters.
const MAX_TEXT: usize = 2_000;

/// How many items a list in the answer holds.
#[derive(Clone, Copy, Debug)]
struct Count {
    min: usize,
    max: usize,
}

const RECOMMENDATIONS: Count = Count { min: 1, max: 5 };
const QUICK_WINS: Count = Count { min: 5, max: 5 };
const RISKS: Count = Count { min: 2, max: 6 };
const ROADMAP_90_DAYS: Count = Count { min: 3, max: 8 };
const USE_CASES: Count = Count { min: 3, max: 8 };
const ROADMAP_12_MONTHS: Count = Count { min: 4, max: 12 };
const BUDGET: Count = Count { min: 2, max: 10 };

impl Count {
    fn words(self) -> String {
        if self.min == self.max {
            format!("exactly {} items", self.min)
        } else {
            format!("{} to {} items", self.min, self.max)
        }
    }

    /// A JSON schema array of `items`, the count said in its description.
    fn array(self, items: serde_json::Value, what: &str) -> serde_json::Value {
        json!({
            "type": "array", "items": items, "minItems": 1,
            "description": format!("{what}: {}.", self.words()),
        })
    }

    fn check(self, name: &str, len: usize, problems: &mut Vec<String>) {
        if len < self.min || len > self.max {
            problems.push(format!("{name} must have {}, got {len}", self.words()));
        }
    }
}

/// The JSON schema the model's answer must follow for `tier`.
pub fn schema(tier: Tier, questionnaire: &Questionnaire) -> serde_json::Value {
    let text = json!({
        "type": "string",
        "description": format!("Plain text, not empty, at most {MAX_TEXT} characters."),
    });
    let milestone = json!({
        "type": "object", "additionalProperties": false, "required": ["when", "what"],
        "properties": { "when": text, "what": text },
    });
    let deeper = tier != Tier::Starter;
    let ids: Vec<&str> = questionnaire
        .pillars
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    let mut pillar_required = vec!["id", "finding"];
    let mut pillar_properties = json!({ "id": { "enum": ids }, "finding": text });
    if deeper {
        pillar_required.push("recommendations");
        pillar_properties["recommendations"] = RECOMMENDATIONS.array(text.clone(), "What to do");
    }
    let mut required = vec!["summary", "pillars", "quick_wins"];
    let mut properties = json!({
        "summary": text,
        "pillars": {
            "type": "array", "minItems": 1,
            "description": format!(
                "Exactly {} items, one per pillar, in this order: {}.",
                ids.len(),
                ids.join(", ")
            ),
            "items": {
                "type": "object", "additionalProperties": false,
                "required": pillar_required, "properties": pillar_properties,
            },
        },
        "quick_wins": QUICK_WINS.array(text.clone(), "Things to start this month"),
    });
    if deeper {
        required.extend(["risks", "roadmap_90_days"]);
        let risk = json!({
            "type": "object", "additionalProperties": false, "required": ["title", "mitigation"],
            "properties": { "title": text, "mitigation": text },
        });
        properties["risks"] = RISKS.array(risk, "Risks, each with a mitigation");
        properties["roadmap_90_days"] = ROADMAP_90_DAYS.array(milestone.clone(), "Milestones");
    }
    if tier == Tier::Premium {
        required.extend(["use_cases", "roadmap_12_months", "budget"]);
        let rating = json!({ "enum": ["low", "medium", "high"] });
        let use_case = json!({
            "type": "object", "additionalProperties": false,
            "required": ["name", "description", "effort", "impact"],
            "properties": { "name": text, "description": text, "effort": rating, "impact": rating },
        });
        properties["use_cases"] = USE_CASES.array(use_case, "AI use cases for this company");
        properties["roadmap_12_months"] = ROADMAP_12_MONTHS.array(milestone, "Milestones");
        let dollars = json!({ "type": "integer", "description": "Whole US dollars, 0 or more." });
        let line = json!({
            "type": "object", "additionalProperties": false,
            "required": ["item", "low_usd", "high_usd"],
            "properties": { "item": text, "low_usd": dollars, "high_usd": dollars },
        });
        properties["budget"] = BUDGET.array(
            line,
            "Budget lines, each with low_usd no more than high_usd",
        );
    }
    json!({
        "type": "object", "additionalProperties": false,
        "required": required, "properties": properties,
    })
}

/// Reads and checks the model's answer for `tier`; the problems, in words the model can act
/// on, if it does not hold.
pub fn check(
    text: &str,
    tier: Tier,
    questionnaire: &Questionnaire,
    scores: &Scores,
) -> Result<Written, Vec<String>> {
    let json = text
        .trim()
        .trim_start_matches("```json")
        .trim_matches('`')
        .trim();
    let written: Written = serde_json::from_str(json).map_err(|err| {
        vec![format!(
            "the answer is not valid JSON for the schema: {err}"
        )]
    })?;
    let mut problems = Vec::new();
    for (field, value) in written.texts() {
        if value.trim().is_empty() {
            problems.push(format!("{field} is empty"));
        } else if value.chars().count() > MAX_TEXT {
            problems.push(format!("{field} is longer than {MAX_TEXT} characters"));
        }
    }
    let ids: Vec<&str> = questionnaire
        .pillars
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    let got: Vec<&str> = written.pillars.iter().map(|p| p.id.as_str()).collect();
    if got != ids {
        problems.push(format!(
            "pillars must be exactly {} in that order, got {}",
            ids.join(", "),
            got.join(", ")
        ));
    }
    let deeper = tier != Tier::Starter;
    let premium = tier == Tier::Premium;
    let has_recommendations = written
        .pillars
        .iter()
        .all(|p| p.recommendations.as_ref().is_some_and(|r| !r.is_empty()));
    let mut section = |name: &str, present: bool, wanted: bool| {
        if present && !wanted {
            problems.push(format!("{name} is not part of a {} report", tier.title()));
        } else if !present && wanted {
            problems.push(format!("{name} is required in a {} report", tier.title()));
        }
    };
    section(
        "pillar recommendations",
        has_recommendations || written.pillars.iter().any(|p| p.recommendations.is_some()),
        deeper,
    );
    section("risks", written.risks.is_some(), deeper);
    section("roadmap_90_days", written.roadmap_90_days.is_some(), deeper);
    section("use_cases", written.use_cases.is_some(), premium);
    section(
        "roadmap_12_months",
        written.roadmap_12_months.is_some(),
        premium,
    );
    section("budget", written.budget.is_some(), premium);
    if deeper && !has_recommendations && written.pillars.iter().any(|p| p.recommendations.is_some())
    {
        problems.push("every pillar needs recommendations".into());
    }
    let mut counts = vec![(
        "quick_wins".to_owned(),
        QUICK_WINS,
        Some(written.quick_wins.len()),
    )];
    for (n, pillar) in written.pillars.iter().enumerate() {
        let len = pillar.recommendations.as_ref().map(Vec::len);
        counts.push((
            format!("pillars[{n}].recommendations"),
            RECOMMENDATIONS,
            len,
        ));
    }
    counts.extend([
        (
            "risks".to_owned(),
            RISKS,
            written.risks.as_ref().map(Vec::len),
        ),
        (
            "roadmap_90_days".to_owned(),
            ROADMAP_90_DAYS,
            written.roadmap_90_days.as_ref().map(Vec::len),
        ),
        (
            "use_cases".to_owned(),
            USE_CASES,
            written.use_cases.as_ref().map(Vec::len),
        ),
        (
            "roadmap_12_months".to_owned(),
            ROADMAP_12_MONTHS,
            written.roadmap_12_months.as_ref().map(Vec::len),
        ),
        (
            "budget".to_owned(),
            BUDGET,
            written.budget.as_ref().map(Vec::len),
        ),
    ]);
    for (name, count, len) in counts {
        if let Some(len) = len {
            count.check(&name, len, &mut problems);
        }
    }
    for line in written.budget.iter().flatten() {
        if line.low_usd > line.high_usd {
            problems.push(format!(
                "budget item `{}` has low_usd above high_usd",
                line.item
            ));
        }
    }
    problems.extend(numbers::problems(&written, scores));
    if problems.is_empty() {
        Ok(written)
    } else {
        Err(problems)
    }
}

impl Written {
    /// Every text the model wrote, with the field it stands in.
    fn texts(&self) -> Vec<(String, &str)> {
        let mut texts = vec![("summary".to_owned(), self.summary.as_str())];
        for (n, pillar) in self.pillars.iter().enumerate() {
            texts.push((format!("pillars[{n}].finding"), &pillar.finding));
            for (k, text) in pillar.recommendations.iter().flatten().enumerate() {
                texts.push((format!("pillars[{n}].recommendations[{k}]"), text));
            }
        }
        for (n, text) in self.quick_wins.iter().enumerate() {
            texts.push((format!("quick_wins[{n}]"), text));
        }
        for (n, risk) in self.risks.iter().flatten().enumerate() {
            texts.push((format!("risks[{n}].title"), &risk.title));
            texts.push((format!("risks[{n}].mitigation"), &risk.mitigation));
        }
        let roadmaps = [
            ("roadmap_90_days", &self.roadmap_90_days),
            ("roadmap_12_months", &self.roadmap_12_months),
        ];
        for (name, roadmap) in roadmaps {
            for (n, step) in roadmap.iter().flatten().enumerate() {
                texts.push((format!("{name}[{n}].when"), &step.when));
                texts.push((format!("{name}[{n}].what"), &step.what));
            }
        }
        for (n, case) in self.use_cases.iter().flatten().enumerate() {
            texts.push((format!("use_cases[{n}].name"), &case.name));
            texts.push((format!("use_cases[{n}].description"), &case.description));
        }
        for (n, line) in self.budget.iter().flatten().enumerate() {
            texts.push((format!("budget[{n}].item"), &line.item));
        }
        texts
    }
}

#[cfg(test)]
mod tests;
