//! The intake questionnaire: its questions (data in `templates/questionnaire.toml`, not code),
//! the validation of a submission, and the deterministic scoring.
//!
//! A submission arrives as flat text fields, from an HTML form or a JSON object, and goes through
//! one validator: the same answers give the same errors, the same stored answers and the same
//! scores, whichever way they came. Free text is kept verbatim; it is escaped where it is shown.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::order::Tier;

/// The questionnaire compass ships with.
pub const BUILTIN: &str = include_str!("../templates/questionnaire.toml");

/// The questions, as the operator wrote them.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Questionnaire {
    /// Choices for the industry field; "Other" with free text is always offered too.
    pub industries: Vec<String>,
    /// Choices for the company size.
    pub employees: Vec<String>,
    /// The readiness pillars and their questions.
    pub pillars: Vec<Pillar>,
    /// The two free-text prompts.
    pub free_text: FreeText,
}

/// One readiness pillar.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pillar {
    /// Stable id: `strategy`, `data`, ...
    pub id: String,
    /// As shown: `Strategy`.
    pub title: String,
    /// Statements answered 1-5; answer fields are `{id}_1`, `{id}_2`, ...
    pub questions: Vec<String>,
}

/// The free-text prompts.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FreeText {
    /// The process the customer most wants AI to improve.
    pub process: String,
    /// Anything else.
    pub anything_else: String,
}

/// A checked submission: what is stored as the order's questionnaire.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Intake {
    pub company: String,
    pub website: Option<String>,
    pub industry: String,
    pub employees: String,
    pub country: String,
    pub name: String,
    pub email: String,
    pub tier: Tier,
    /// `{pillar}_{n}` to 1-5, answered questions only.
    pub answers: BTreeMap<String, u8>,
    /// A pillar's optional note, by pillar id.
    pub notes: BTreeMap<String, String>,
    pub process: Option<String>,
    pub anything_else: Option<String>,
}

/// What is wrong with one field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name in the form and in JSON.
    pub field: String,
    /// For the person filling in the form.
    pub message: String,
}

/// Readiness levels, from the overall score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    /// 80 and above.
    Pacesetter,
    /// 60 to 79.
    Chaser,
    /// 40 to 59.
    Follower,
    /// Below 40.
    Laggard,
}

impl Level {
    /// The level's name as reports and pages write it.
    pub fn title(self) -> &'static str {
        match self {
            Level::Pacesetter => "Pacesetter",
            Level::Chaser => "Chaser",
            Level::Follower => "Follower",
            Level::Laggard => "Laggard",
        }
    }

    /// The level for an overall score of 0-100.
    pub fn of(overall: u8) -> Level {
        match overall {
            80.. => Level::Pacesetter,
            60..=79 => Level::Chaser,
            40..=59 => Level::Follower,
            _ => Level::Laggard,
        }
    }
}

/// A pillar's score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PillarScore {
    pub id: String,
    pub title: String,
    /// Mean of the answers, 1.0-5.0, rounded to one decimal; `None` when nothing was answered.
    pub score: Option<f64>,
}

/// The scores of a submission: computed by compass, never by the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub pillars: Vec<PillarScore>,
    /// 0-100, from the mean of the assessed pillars; `None` when no pillar was assessed.
    pub overall: Option<u8>,
    pub level: Option<Level>,
}

const MAX_SHORT: usize = 200;
const MAX_NOTE: usize = 2_000;
const MAX_FREE_TEXT: usize = 5_000;

impl Questionnaire {
    /// The questionnaire compass ships with.
    pub fn builtin() -> Questionnaire {
        Questionnaire::parse(BUILTIN).expect("the built-in questionnaire is valid (tested)")
    }

    /// Reads and checks a questionnaire file.
    pub fn parse(text: &str) -> anyhow::Result<Questionnaire> {
        let questionnaire: Questionnaire = toml::from_str(text).context("invalid questionnaire")?;
        let mut ids = std::collections::HashSet::new();
        for pillar in &questionnaire.pillars {
            if pillar.id.is_empty() || !pillar.id.chars().all(|c| c.is_ascii_lowercase()) {
                bail!("pillar id `{}` must be lower-case letters", pillar.id);
            }
            if !ids.insert(&pillar.id) {
                bail!("pillar `{}` appears twice", pillar.id);
            }
            if pillar.questions.is_empty() {
                bail!("pillar `{}` has no questions", pillar.id);
            }
        }
        if questionnaire.pillars.is_empty() {
            bail!("the questionnaire has no pillars");
        }
        Ok(questionnaire)
    }

    /// Every field a submission may carry.
    pub fn fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = [
            "company",
            "website",
            "industry",
            "industry_other",
            "employees",
            "country",
            "name",
            "email",
            "tier",
            "process",
            "anything_else",
        ]
        .iter()
        .map(|f| (*f).to_owned())
        .collect();
        for pillar in &self.pillars {
            for n in 1..=pillar.questions.len() {
                fields.push(format!("{}_{n}", pillar.id));
            }
            fields.push(format!("{}_note", pillar.id));
        }
        fields
    }

    /// Checks a submission; every problem is reported at once, by field.
    pub fn validate(&self, fields: &BTreeMap<String, String>) -> Result<Intake, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut error = |field: &str, message: &str| {
            errors.push(FieldError {
                field: field.to_owned(),
                message: message.to_owned(),
            });
        };
        let known = self.fields();
        for name in fields.keys() {
            if !known.contains(name) {
                error(name, "is not a field of this form");
            }
        }
        let get = |name: &str| fields.get(name).map(|v| v.trim()).unwrap_or_default();

        let mut required = |name: &str, label: &str, max: usize| -> String {
            let value = get(name);
            if value.is_empty() {
                error(name, &format!("{label} is required"));
            } else if let Some(problem) = text_problem(value, max, false) {
                error(name, &problem);
            }
            value.to_owned()
        };
        let company = required("company", "Company name", MAX_SHORT);
        let country = required("country", "Country", MAX_SHORT);
        let name = required("name", "Contact name", MAX_SHORT);
        let email_raw = required("email", "Email", 254);
        let mut industry = required("industry", "Industry", MAX_SHORT);
        let employees = required("employees", "Company size", MAX_SHORT);
        let tier_raw = required("tier", "Report", MAX_SHORT);

        if !email_raw.is_empty() && crate::address::check(&email_raw).is_err() {
            error("email", "Enter an email address like name@example.com");
        }
        if industry == "Other" {
            industry = get("industry_other").to_owned();
            if industry.is_empty() {
                error("industry_other", "Name your industry");
            } else if let Some(problem) = text_problem(&industry, MAX_SHORT, false) {
                error("industry_other", &problem);
            }
        } else {
            if !industry.is_empty() && !self.industries.contains(&industry) {
                error("industry", "Choose an industry from the list, or Other");
            }
            // Not used, but not taken unchecked either.
            if let Some(problem) = text_problem(get("industry_other"), MAX_SHORT, false) {
                error("industry_other", &problem);
            }
        }
        if !employees.is_empty() && !self.employees.contains(&employees) {
            error("employees", "Choose a company size from the list");
        }
        let tier = tier_raw.parse::<Tier>();
        if !tier_raw.is_empty() && tier.is_err() {
            error("tier", "Choose Starter, Standard or Premium");
        }
        let website = match get("website") {
            "" => None,
            site => {
                if !valid_website(site) {
                    error("website", "Enter a web address like example.com");
                }
                Some(site.to_owned())
            }
        };

        let mut answers = BTreeMap::new();
        let mut notes = BTreeMap::new();
        for pillar in &self.pillars {
            for n in 1..=pillar.questions.len() {
                let field = format!("{}_{n}", pillar.id);
                match get(&field) {
                    "" => {}
                    value => match value.parse::<u8>() {
                        Ok(answer @ 1..=5) => {
                            answers.insert(field, answer);
                        }
                        _ => error(&field, "Answer from 1 to 5, or leave it empty"),
                    },
                }
            }
            let field = format!("{}_note", pillar.id);
            let note = get(&field);
            if !note.is_empty() {
                if let Some(problem) = text_problem(note, MAX_NOTE, true) {
                    error(&field, &problem);
                }
                notes.insert(pillar.id.clone(), note.to_owned());
            }
        }
        let mut free = |field: &str| -> Option<String> {
            let value = get(field);
            if value.is_empty() {
                return None;
            }
            if let Some(problem) = text_problem(value, MAX_FREE_TEXT, true) {
                error(field, &problem);
            }
            Some(value.to_owned())
        };
        let process = free("process");
        let anything_else = free("anything_else");

        match tier {
            Ok(tier) if errors.is_empty() => Ok(Intake {
                company,
                website,
                industry,
                employees,
                country,
                name,
                email: email_raw,
                tier,
                answers,
                notes,
                process,
                anything_else,
            }),
            _ => Err(errors),
        }
    }

    /// The scores of `intake`: pillar means, the overall 0-100 and the level.
    pub fn scores(&self, intake: &Intake) -> Scores {
        let mut means = Vec::new();
        let pillars = self
            .pillars
            .iter()
            .map(|pillar| {
                let given: Vec<u32> = (1..=pillar.questions.len())
                    .filter_map(|n| intake.answers.get(&format!("{}_{n}", pillar.id)))
                    .map(|a| u32::from(*a))
                    .collect();
                let score = (!given.is_empty()).then(|| {
                    let mean = f64::from(given.iter().sum::<u32>()) / given.len() as f64;
                    means.push(mean);
                    (mean * 10.0).round() / 10.0
                });
                PillarScore {
                    id: pillar.id.clone(),
                    title: pillar.title.clone(),
                    score,
                }
            })
            .collect();
        let overall = (!means.is_empty()).then(|| {
            let mean = means.iter().sum::<f64>() / means.len() as f64;
            // 1..=5 maps to 0..=100; the mean is always in range, so the cast cannot truncate.
            ((mean - 1.0) / 4.0 * 100.0).round().clamp(0.0, 100.0) as u8
        });
        Scores {
            pillars,
            overall,
            level: overall.map(Level::of),
        }
    }
}

/// Why a text field cannot be kept: too long, or control characters (other than line breaks
/// and tabs in long text).
fn text_problem(value: &str, max: usize, multiline: bool) -> Option<String> {
    if value.chars().count() > max {
        return Some(format!("Keep it under {max} characters"));
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        return Some("Remove the control characters".to_owned());
    }
    None
}

fn valid_website(site: &str) -> bool {
    let host = site
        .strip_prefix("https://")
        .or_else(|| site.strip_prefix("http://"))
        .unwrap_or(site);
    let host = host.split('/').next().unwrap_or_default();
    site.chars().count() <= MAX_SHORT
        && !site.chars().any(char::is_control)
        && host.contains('.')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ':')
}

#[cfg(test)]
mod tests;
