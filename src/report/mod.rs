//! The report: what the model must write for each tier (the schema it is held to), the
//! checking of its answer, and the prompts that ask for it.
//!
//! The numbers (pillar scores, overall score, level) come from `questionnaire::scores`, never
//! from the model; the model writes the words, tied to the customer's answers. A tier's depth
//! is visible in what its schema requires: Standard adds recommendations, risks and a 90-day
//! roadmap; Premium adds a use-case portfolio, a 12-month roadmap and budget ranges.

pub mod html;
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

const MAX_TEXT: usize = 2_000;

/// The JSON schema the model's answer must follow for `tier`.
pub fn schema(tier: Tier, questionnaire: &Questionnaire) -> serde_json::Value {
    let text = json!({ "type": "string", "minLength": 1, "maxLength": MAX_TEXT });
    let texts = |min: usize, max: usize| json!({ "type": "array", "items": text, "minItems": min, "maxItems": max });
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
    let mut pillar_properties = json!({ "id": { "type": "string", "enum": ids }, "finding": text });
    if deeper {
        pillar_required.push("recommendations");
        pillar_properties["recommendations"] = texts(1, 5);
    }
    let mut required = vec!["summary", "pillars", "quick_wins"];
    let mut properties = json!({
        "summary": text,
        "pillars": {
            "type": "array", "minItems": ids.len(), "maxItems": ids.len(),
            "items": {
                "type": "object", "additionalProperties": false,
                "required": pillar_required, "properties": pillar_properties,
            },
        },
        "quick_wins": texts(5, 5),
    });
    if deeper {
        required.extend(["risks", "roadmap_90_days"]);
        properties["risks"] = json!({
            "type": "array", "minItems": 2, "maxItems": 6,
            "items": {
                "type": "object", "additionalProperties": false, "required": ["title", "mitigation"],
                "properties": { "title": text, "mitigation": text },
            },
        });
        properties["roadmap_90_days"] =
            json!({ "type": "array", "minItems": 3, "maxItems": 8, "items": milestone });
    }
    if tier == Tier::Premium {
        required.extend(["use_cases", "roadmap_12_months", "budget"]);
        let rating = json!({ "type": "string", "enum": ["low", "medium", "high"] });
        properties["use_cases"] = json!({
            "type": "array", "minItems": 3, "maxItems": 8,
            "items": {
                "type": "object", "additionalProperties": false,
                "required": ["name", "description", "effort", "impact"],
                "properties": { "name": text, "description": text, "effort": rating, "impact": rating },
            },
        });
        properties["roadmap_12_months"] =
            json!({ "type": "array", "minItems": 4, "maxItems": 12, "items": milestone });
        properties["budget"] = json!({
            "type": "array", "minItems": 2, "maxItems": 10,
            "items": {
                "type": "object", "additionalProperties": false,
                "required": ["item", "low_usd", "high_usd"],
                "properties": {
                    "item": text,
                    "low_usd": { "type": "integer", "minimum": 0 },
                    "high_usd": { "type": "integer", "minimum": 0 },
                },
            },
        });
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
    let mut text_ok = |what: &str, value: &str| {
        if value.trim().is_empty() {
            problems.push(format!("{what} is empty"));
        } else if value.chars().count() > MAX_TEXT {
            problems.push(format!("{what} is longer than {MAX_TEXT} characters"));
        }
    };
    text_ok("summary", &written.summary);
    let ids: Vec<&str> = questionnaire
        .pillars
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    let got: Vec<&str> = written.pillars.iter().map(|p| p.id.as_str()).collect();
    for (n, pillar) in written.pillars.iter().enumerate() {
        text_ok(&format!("pillars[{n}].finding"), &pillar.finding);
        for (k, r) in pillar.recommendations.iter().flatten().enumerate() {
            text_ok(&format!("pillars[{n}].recommendations[{k}]"), r);
        }
    }
    for (n, win) in written.quick_wins.iter().enumerate() {
        text_ok(&format!("quick_wins[{n}]"), win);
    }
    if got != ids {
        problems.push(format!(
            "pillars must be exactly {} in that order, got {}",
            ids.join(", "),
            got.join(", ")
        ));
    }
    if written.quick_wins.len() != 5 {
        problems.push(format!(
            "quick_wins must have exactly 5 items, got {}",
            written.quick_wins.len()
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
    for line in written.budget.iter().flatten() {
        if line.low_usd > line.high_usd {
            problems.push(format!(
                "budget item `{}` has low_usd above high_usd",
                line.item
            ));
        }
    }
    if problems.is_empty() {
        Ok(written)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests;
