//! The report: what the model must write for each tier (the schema it is held to), the
//! checking of its answer, and the prompts that ask for it.
//!
//! The numbers (category scores, overall score, level) come from `method::scoring`, never
//! from the model; the model writes the words, tied to the customer's answers, and `check`
//! refuses words that state other numbers (`numbers.rs`).
//!
//! The schema keeps to what the API's structured outputs accept (the official SDK's
//! `transform_schema` leaves it unchanged): lengths, counts and ranges are said in each
//! property's `description` and enforced by `check`, from one table (`Count`), whose problems
//! drive the repair round. A tier's depth is visible in what its schema requires: the summary
//! and each category's finding always, and the sections the method gives the tier
//! (`method::Section`: recommendations, quick wins, risks, roadmaps, use cases, budget).

pub mod appendix;
pub mod html;
mod numbers;
pub mod pdf;
pub mod peers;
pub mod prompt;
pub mod radar;
pub mod sample;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::method::{Intake, Layout, Method, Scores, Section, TierDef};
use crate::order::Tier;

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// What the model writes.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Written {
    /// Three to six sentences for the executive.
    pub summary: String,
    /// The three things that matter most, the most important first: the executive summary's
    /// list. (Reports from before the report had a summary page have none.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priorities: Vec<String>,
    /// One entry per category, in the method's order. (Reports from before methods were files
    /// call them pillars.)
    #[serde(alias = "pillars")]
    pub categories: Vec<CategoryText>,
    /// Exactly five things to do this month, when the tier has them (empty when not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_wins: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risks: Option<Vec<Risk>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roadmap_90_days: Option<Vec<Milestone>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_cases: Option<Vec<UseCase>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roadmap_12_months: Option<Vec<Milestone>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Vec<BudgetLine>>,
}

/// The words for one category.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CategoryText {
    /// The category's id, as in the method.
    pub id: String,
    /// One paragraph, tied to the answers.
    pub finding: String,
    /// When the tier has recommendations: what to do about it.
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

/// The numbers compass computed for a report: the model's words may repeat them and state no
/// others.
#[derive(Clone, Copy, Debug)]
pub struct Figures<'a> {
    pub scores: &'a Scores,
    /// Where the company stands against its peers, when enough were assessed.
    pub peers: Option<&'a peers::Peers>,
}

impl<'a> From<&'a Scores> for Figures<'a> {
    fn from(scores: &'a Scores) -> Figures<'a> {
        Figures {
            scores,
            peers: None,
        }
    }
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
    /// Where the company stands against its peers, when enough companies were assessed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<peers::Peers>,
    /// The day it was written, in UTC. (Reports from before the cover page have none.)
    #[serde(
        default,
        with = "iso_date::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub date: Option<time::Date>,
    /// The customer's answers, for the appendix. (Reports from before the appendix have none.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<appendix::Appendix>,
}

/// Who signs the report and how the customer takes the next step: compass.toml's `[business]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The business's name (the method's brand name, when it has one, stands in its place).
    pub business: String,
    /// Where customers write to.
    pub email: String,
    /// Where customers book a call, when the business offers one.
    pub booking_url: Option<String>,
}

impl Signature {
    /// The signature compass.toml gives.
    pub fn of(config: &crate::config::Config) -> Signature {
        Signature {
            business: config.business_name.clone(),
            email: config.support_email.clone(),
            booking_url: config.booking_url.clone(),
        }
    }

    /// A made-up signature with every part, for checks and tests.
    pub fn sample(business: &str) -> Signature {
        Signature {
            business: business.to_owned(),
            email: "hello@example.com".to_owned(),
            booking_url: Some("https://example.com/book".to_owned()),
        }
    }

    /// The data of `report` for its HTML and PDF templates: the renderer's own (`own`, an
    /// object), and over it who signs it, the date, the tier's name and layout, the method's
    /// words on how it scores.
    fn data(&self, report: &Report, method: &Method, own: serde_json::Value) -> serde_json::Value {
        let date = report.date.map(crate::clock::long_date);
        let level = report
            .scores
            .level
            .as_deref()
            .and_then(|name| method.scoring.levels.iter().find(|l| l.name == name));
        let shared = json!({
            "business": method.display_name(&self.business),
            "email": self.email,
            "booking_url": self.booking_url,
            "date": date,
            "assessment": method.assessment.name,
            "primary": method.brand.primary(),
            "tier": method.tier_name(&report.tier),
            "full": method.tier(&report.tier).is_some_and(|t| t.layout == Layout::Full),
            "how_scored": method.how_scored(),
            "level_description": level.map(|l| l.description.as_str()),
        });
        let mut data = own;
        if let (Some(data), serde_json::Value::Object(shared)) = (data.as_object_mut(), shared) {
            data.extend(shared);
        }
        data
    }
}

impl Report {
    /// The report on `intake` by `method` with its `scores` (`method.scores(intake)`, which the
    /// caller has computed for the prompt already), written on `date`; the answers are the
    /// appendix; the sample flag and peers are the caller's.
    pub fn new(
        intake: &Intake,
        method: &Method,
        scores: Scores,
        written: Written,
        date: time::Date,
    ) -> Report {
        Report {
            company: intake.company.clone(),
            tier: intake.tier.clone(),
            scores,
            written,
            sample: false,
            peers: None,
            date: Some(date),
            answers: Some(appendix::of(intake, method)),
        }
    }

    /// The report's three files, as stored and sent: `json`, `html` and `pdf`, by kind, as
    /// `method` (the order's) lays them out, signed by `signature`.
    pub fn files(
        &self,
        method: &Method,
        signature: &Signature,
    ) -> anyhow::Result<[(&'static str, Vec<u8>); 3]> {
        Ok([
            ("json", serde_json::to_vec_pretty(self)?),
            ("html", html::render(self, method, signature)?.into_bytes()),
            ("pdf", pdf::render(self, method, signature)?),
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

const PRIORITIES: Count = Count { min: 3, max: 3 };
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

/// The JSON schema the model's answer must follow for `tier` of `method`.
pub fn schema(tier: &TierDef, method: &Method) -> serde_json::Value {
    let text = json!({
        "type": "string",
        "description": format!("Plain text, not empty, at most {MAX_TEXT} characters."),
    });
    let milestone = json!({
        "type": "object", "additionalProperties": false, "required": ["when", "what"],
        "properties": { "when": text, "what": text },
    });
    let ids: Vec<&str> = method
        .questionnaire
        .categories
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    let mut category_required = vec!["id", "finding"];
    let mut category_properties = json!({ "id": { "enum": ids }, "finding": text });
    if tier.has(Section::Recommendations) {
        category_required.push("recommendations");
        category_properties["recommendations"] = RECOMMENDATIONS.array(text.clone(), "What to do");
    }
    let mut required = vec!["summary", "priorities", "categories"];
    let mut properties = json!({
        "summary": text,
        "priorities": PRIORITIES.array(
            text.clone(),
            "The things that matter most for this company, the most important first, one or two \
             sentences each",
        ),
        "categories": {
            "type": "array", "minItems": 1,
            "description": format!(
                "Exactly {} items, one per category, in this order: {}.",
                ids.len(),
                ids.join(", ")
            ),
            "items": {
                "type": "object", "additionalProperties": false,
                "required": category_required, "properties": category_properties,
            },
        },
    });
    if tier.has(Section::QuickWins) {
        required.push("quick_wins");
        properties["quick_wins"] = QUICK_WINS.array(text.clone(), "Things to start this month");
    }
    if tier.has(Section::Risks) {
        required.push("risks");
        let risk = json!({
            "type": "object", "additionalProperties": false, "required": ["title", "mitigation"],
            "properties": { "title": text, "mitigation": text },
        });
        properties["risks"] = RISKS.array(risk, "Risks, each with a mitigation");
    }
    if tier.has(Section::Roadmap90Days) {
        required.push("roadmap_90_days");
        properties["roadmap_90_days"] = ROADMAP_90_DAYS.array(milestone.clone(), "Milestones");
    }
    if tier.has(Section::UseCases) {
        required.push("use_cases");
        let rating = json!({ "enum": ["low", "medium", "high"] });
        let use_case = json!({
            "type": "object", "additionalProperties": false,
            "required": ["name", "description", "effort", "impact"],
            "properties": { "name": text, "description": text, "effort": rating, "impact": rating },
        });
        properties["use_cases"] = USE_CASES.array(use_case, "Use cases for this company");
    }
    if tier.has(Section::Roadmap12Months) {
        required.push("roadmap_12_months");
        properties["roadmap_12_months"] = ROADMAP_12_MONTHS.array(milestone, "Milestones");
    }
    if tier.has(Section::Budget) {
        required.push("budget");
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

/// Reads and checks the model's answer for `tier` of `method`; the problems, in words the model
/// can act on, if it does not hold.
pub fn check<'a>(
    text: &str,
    tier: &TierDef,
    method: &Method,
    figures: impl Into<Figures<'a>>,
) -> Result<Written, Vec<String>> {
    let figures = figures.into();
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
    let ids: Vec<&str> = method
        .questionnaire
        .categories
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    let got: Vec<&str> = written.categories.iter().map(|c| c.id.as_str()).collect();
    if got != ids {
        problems.push(format!(
            "categories must be exactly {} in that order, got {}",
            ids.join(", "),
            got.join(", ")
        ));
    }
    let has_recommendations = written
        .categories
        .iter()
        .all(|c| c.recommendations.as_ref().is_some_and(|r| !r.is_empty()));
    let any_recommendations = written
        .categories
        .iter()
        .any(|c| c.recommendations.is_some());
    let mut section = |name: &str, present: bool, wanted: Section| {
        let wanted = tier.has(wanted);
        if present && !wanted {
            problems.push(format!("{name} is not part of a {} report", tier.name));
        } else if !present && wanted {
            problems.push(format!("{name} is required in a {} report", tier.name));
        }
    };
    section(
        "category recommendations",
        any_recommendations,
        Section::Recommendations,
    );
    section(
        "quick_wins",
        !written.quick_wins.is_empty(),
        Section::QuickWins,
    );
    section("risks", written.risks.is_some(), Section::Risks);
    section(
        "roadmap_90_days",
        written.roadmap_90_days.is_some(),
        Section::Roadmap90Days,
    );
    section("use_cases", written.use_cases.is_some(), Section::UseCases);
    section(
        "roadmap_12_months",
        written.roadmap_12_months.is_some(),
        Section::Roadmap12Months,
    );
    section("budget", written.budget.is_some(), Section::Budget);
    if tier.has(Section::Recommendations) && !has_recommendations && any_recommendations {
        problems.push("every category needs recommendations".into());
    }
    let mut counts = vec![
        (
            "priorities".to_owned(),
            PRIORITIES,
            Some(written.priorities.len()),
        ),
        (
            "quick_wins".to_owned(),
            QUICK_WINS,
            (!written.quick_wins.is_empty()).then_some(written.quick_wins.len()),
        ),
    ];
    for (n, category) in written.categories.iter().enumerate() {
        let len = category.recommendations.as_ref().map(Vec::len);
        counts.push((
            format!("categories[{n}].recommendations"),
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
    let levels: Vec<&str> = method
        .scoring
        .levels
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    problems.extend(numbers::problems(&written, figures, &levels));
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
        for (n, text) in self.priorities.iter().enumerate() {
            texts.push((format!("priorities[{n}]"), text));
        }
        for (n, category) in self.categories.iter().enumerate() {
            texts.push((format!("categories[{n}].finding"), &category.finding));
            for (k, text) in category.recommendations.iter().flatten().enumerate() {
                texts.push((format!("categories[{n}].recommendations[{k}]"), text));
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
