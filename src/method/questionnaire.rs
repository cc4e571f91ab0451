//! The questions of a method and the one validator of a submission.
//!
//! A submission arrives as flat text fields, from an HTML form or a JSON object (several
//! choices of one question as one field, comma-separated), and goes through one validator: the
//! same answers give the same errors, the same stored answers and the same scores, whichever way
//! they came. Free text is kept verbatim; it is escaped where it is shown.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::order::Tier;

/// The company profile's fields, which every method asks first.
pub const PROFILE_FIELDS: [&str; 9] = [
    "company",
    "website",
    "industry",
    "industry_other",
    "employees",
    "country",
    "name",
    "email",
    "tier",
];

const MAX_SHORT: usize = 200;
const MAX_NOTE: usize = 2_000;
const MAX_FREE_TEXT: usize = 5_000;

/// The questions, as the operator wrote them.
#[derive(Clone, Debug, Serialize)]
pub struct Questionnaire {
    /// Choices for the industry field; "Other" with free text is always offered too.
    pub industries: Vec<String>,
    /// Choices for the company size.
    pub employees: Vec<String>,
    /// How scale questions are answered.
    pub scale: Scale,
    /// The scored categories and their questions, in order.
    pub categories: Vec<Category>,
    /// Text questions after the categories.
    pub free_text: Vec<Question>,
}

/// The range of a scale question.
#[derive(Clone, Debug, Serialize)]
pub struct Scale {
    pub min: i64,
    pub max: i64,
    /// What the ends mean, shown above each category's questions.
    pub hint: String,
}

/// One scored category ("pillar" in the built-in method).
#[derive(Clone, Debug, Serialize)]
pub struct Category {
    /// Stable id: `strategy`, `data`, ...
    pub id: String,
    /// As shown: `Strategy`.
    pub title: String,
    /// Its share of the overall score, against the other categories' weights.
    pub weight: u32,
    /// Whether it offers an optional note (`{id}_note`).
    pub note: bool,
    pub questions: Vec<Question>,
}

/// One question.
#[derive(Clone, Debug, Serialize)]
pub struct Question {
    /// The field's name in the form and in JSON, and the answer's key in the stored order.
    pub id: String,
    pub text: String,
    /// Shown under the question.
    pub hint: Option<String>,
    pub kind: Kind,
    pub required: bool,
    /// Its share of its category's score; 0 when it is not scored.
    pub weight: u32,
    /// Asked only when this holds.
    pub show_when: Option<Condition>,
}

/// What kind of answer a question takes, and the points each answer gives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "scoring", rename_all = "snake_case")]
pub enum Kind {
    /// A number on the method's scale; the number is the points.
    Scale,
    /// One of the options.
    Single(Vec<Choice>),
    /// Any of the options; the points add up.
    Multiple(Vec<Choice>),
    /// Yes or no.
    YesNo { yes: i64, no: i64 },
    /// A whole number, scored by the band it falls in.
    Number {
        bands: Vec<Band>,
        min: Option<i64>,
        max: Option<i64>,
        unit: Option<String>,
    },
    /// Free text, never scored.
    Text,
}

/// An option of a choice question.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub id: String,
    pub label: String,
    pub points: i64,
}

/// Numbers below `below` (every larger one, for the last band) give `points`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Band {
    pub below: Option<i64>,
    pub points: i64,
}

/// When a question is asked: a test on an earlier answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Condition {
    pub question: String,
    pub test: Test,
}

/// A test on an answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    /// The option chosen, or `yes`/`no`.
    Equals(String),
    /// One of these options chosen.
    AnyOf(Vec<String>),
    /// A number or scale answer of at least this.
    AtLeast(i64),
    /// A number or scale answer of at most this.
    AtMost(i64),
}

/// One stored answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    /// A yes/no answer.
    Yes(bool),
    /// A scale or number answer.
    Number(i64),
    /// The options of a multiple-choice answer.
    Many(Vec<String>),
    /// A single choice's option id, or free text.
    Text(String),
}

/// A checked submission: what is stored as the order's questionnaire.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(from = "StoredIntake")]
pub struct Intake {
    pub company: String,
    pub website: Option<String>,
    pub industry: String,
    pub employees: String,
    pub country: String,
    pub name: String,
    pub email: String,
    pub tier: Tier,
    /// By question id; only questions answered (and asked).
    pub answers: BTreeMap<String, Answer>,
    /// A category's optional note, by category id.
    pub notes: BTreeMap<String, String>,
}

/// An intake as stored: orders from before methods were files kept the built-in method's two
/// free-text answers in fields of their own.
#[derive(Deserialize)]
struct StoredIntake {
    company: String,
    website: Option<String>,
    industry: String,
    employees: String,
    country: String,
    name: String,
    email: String,
    tier: Tier,
    answers: BTreeMap<String, Answer>,
    #[serde(default)]
    notes: BTreeMap<String, String>,
    #[serde(default)]
    process: Option<String>,
    #[serde(default)]
    anything_else: Option<String>,
}

impl From<StoredIntake> for Intake {
    fn from(stored: StoredIntake) -> Intake {
        let mut answers = stored.answers;
        for (id, text) in [
            ("process", stored.process),
            ("anything_else", stored.anything_else),
        ] {
            if let Some(text) = text {
                answers.insert(id.to_owned(), Answer::Text(text));
            }
        }
        Intake {
            company: stored.company,
            website: stored.website,
            industry: stored.industry,
            employees: stored.employees,
            country: stored.country,
            name: stored.name,
            email: stored.email,
            tier: stored.tier,
            answers,
            notes: stored.notes,
        }
    }
}

/// What is wrong with one field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name in the form and in JSON.
    pub field: String,
    /// For the person filling in the form.
    pub message: String,
}

impl Kind {
    /// Whether answers to it count in the scores.
    pub fn is_scored(&self) -> bool {
        !matches!(self, Kind::Text)
    }

    /// The fewest and most points an answer can give; `None` when not scored.
    pub fn point_range(&self, scale: &Scale) -> Option<(i64, i64)> {
        let span = |points: &mut dyn Iterator<Item = i64>| {
            let points: Vec<i64> = points.collect();
            let low = points.iter().copied().min().unwrap_or(0);
            let high = points.iter().copied().max().unwrap_or(0);
            (low, high)
        };
        match self {
            Kind::Scale => Some((scale.min, scale.max)),
            Kind::Single(options) => Some(span(&mut options.iter().map(|o| o.points))),
            Kind::Multiple(options) => Some((
                options.iter().map(|o| o.points.min(0)).sum(),
                options.iter().map(|o| o.points.max(0)).sum(),
            )),
            Kind::YesNo { yes, no } => Some(((*yes).min(*no), (*yes).max(*no))),
            Kind::Number { bands, .. } => Some(span(&mut bands.iter().map(|b| b.points))),
            Kind::Text => None,
        }
    }

    /// The points `answer` gives; `None` when the question is not scored.
    pub fn points(&self, answer: &Answer) -> Option<i64> {
        match (self, answer) {
            (Kind::Scale, Answer::Number(n)) => Some(*n),
            (Kind::Single(options), Answer::Text(id)) => {
                options.iter().find(|o| o.id == *id).map(|o| o.points)
            }
            (Kind::Multiple(options), Answer::Many(ids)) => Some(
                options
                    .iter()
                    .filter(|o| ids.contains(&o.id))
                    .map(|o| o.points)
                    .sum(),
            ),
            (Kind::YesNo { yes, no }, Answer::Yes(said)) => Some(if *said { *yes } else { *no }),
            (Kind::Number { bands, .. }, Answer::Number(n)) => bands
                .iter()
                .find(|b| b.below.is_none_or(|below| *n < below))
                .map(|b| b.points),
            _ => None,
        }
    }

    /// How an option (or `yes`/`no`) of this kind reads: its label; any other id as it is.
    pub fn label<'a>(&'a self, id: &'a str) -> &'a str {
        match self {
            Kind::Single(options) | Kind::Multiple(options) => options
                .iter()
                .find(|o| o.id == id)
                .map_or(id, |o| o.label.as_str()),
            Kind::YesNo { .. } if id == "yes" => "Yes",
            Kind::YesNo { .. } if id == "no" => "No",
            _ => id,
        }
    }

    /// Why `test` cannot apply to an answer of this kind, if it cannot.
    pub fn condition_problem(&self, test: &Test) -> Option<String> {
        let option_ids =
            |options: &[Choice]| options.iter().map(|o| o.id.clone()).collect::<Vec<_>>();
        match (self, test) {
            (Kind::Single(options) | Kind::Multiple(options), Test::Equals(id)) => {
                let ids = option_ids(options);
                (!ids.contains(id)).then(|| format!("`{id}` is not one of {}", ids.join(", ")))
            }
            (Kind::Single(options) | Kind::Multiple(options), Test::AnyOf(list)) => {
                let ids = option_ids(options);
                list.iter()
                    .find(|id| !ids.contains(id))
                    .map(|id| format!("`{id}` is not one of {}", ids.join(", ")))
            }
            (Kind::YesNo { .. }, Test::Equals(value)) => (value != "yes" && value != "no")
                .then(|| format!("a yes/no answer equals \"yes\" or \"no\", not `{value}`")),
            (Kind::Scale | Kind::Number { .. }, Test::AtLeast(_) | Test::AtMost(_)) => None,
            (Kind::Text, _) => Some("a text answer cannot be tested".to_owned()),
            _ => Some("this test does not fit that question's type".to_owned()),
        }
    }
}

impl Condition {
    /// Whether the condition holds for `answers`.
    pub fn holds(&self, answers: &BTreeMap<String, Answer>) -> bool {
        let Some(answer) = answers.get(&self.question) else {
            return false;
        };
        match (&self.test, answer) {
            (Test::Equals(value), Answer::Text(id)) => id == value,
            (Test::Equals(value), Answer::Many(ids)) => ids.contains(value),
            (Test::Equals(value), Answer::Yes(said)) => (value == "yes") == *said,
            (Test::AnyOf(list), Answer::Text(id)) => list.contains(id),
            (Test::AnyOf(list), Answer::Many(ids)) => ids.iter().any(|id| list.contains(id)),
            (Test::AtLeast(n), Answer::Number(x)) => x >= n,
            (Test::AtMost(n), Answer::Number(x)) => x <= n,
            _ => false,
        }
    }

    /// The condition in words, for the form: "Answer only if ...".
    pub fn describe(&self, questionnaire: &Questionnaire) -> String {
        let question = questionnaire.question(&self.question);
        let text = question.map_or(self.question.as_str(), |q| q.text.as_str());
        let label = |id: &str| question.map_or(id, |q| q.kind.label(id)).to_owned();
        let answer = match &self.test {
            Test::Equals(id) => format!("“{}”", label(id)),
            Test::AnyOf(list) => list
                .iter()
                .map(|id| format!("“{}”", label(id)))
                .collect::<Vec<_>>()
                .join(" or "),
            Test::AtLeast(n) => format!("{n} or more"),
            Test::AtMost(n) => format!("{n} or less"),
        };
        format!("Only if you answered {answer} to “{text}”")
    }
}

impl Questionnaire {
    /// Every question, categories first, in the order asked.
    pub fn questions(&self) -> impl Iterator<Item = &Question> {
        self.categories
            .iter()
            .flat_map(|c| c.questions.iter())
            .chain(&self.free_text)
    }

    /// The question with this id.
    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions().find(|q| q.id == id)
    }

    /// Every field a submission may carry.
    pub fn fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = PROFILE_FIELDS.iter().map(|f| (*f).to_owned()).collect();
        for category in &self.categories {
            fields.extend(category.questions.iter().map(|q| q.id.clone()));
            if category.note {
                fields.push(format!("{}_note", category.id));
            }
        }
        fields.extend(self.free_text.iter().map(|q| q.id.clone()));
        fields
    }

    /// Checks a submission for `tiers` (the ids on sale); every problem is reported at once,
    /// by field.
    pub fn validate(
        &self,
        fields: &BTreeMap<String, String>,
        tiers: &[Tier],
    ) -> Result<Intake, Vec<FieldError>> {
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
        let tier = tiers.iter().find(|t| t.as_str() == tier_raw).cloned();
        if !tier_raw.is_empty() && tier.is_none() {
            error("tier", "Choose one of the reports on offer");
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
        let category_questions = self.categories.iter().flat_map(|c| c.questions.iter());
        for question in category_questions.chain(&self.free_text) {
            let asked = question
                .show_when
                .as_ref()
                .is_none_or(|c| c.holds(&answers));
            let value = get(&question.id);
            if !asked {
                // Not asked: whatever the form still carried is not an answer.
                continue;
            }
            if value.is_empty() {
                if question.required {
                    error(&question.id, "Please answer this question");
                }
                continue;
            }
            match self.parse_answer(question, value) {
                Ok(answer) => {
                    answers.insert(question.id.clone(), answer);
                }
                Err(message) => error(&question.id, &message),
            }
        }
        for category in self.categories.iter().filter(|c| c.note) {
            let field = format!("{}_note", category.id);
            let note = get(&field);
            if !note.is_empty() {
                if let Some(problem) = text_problem(note, MAX_NOTE, true) {
                    error(&field, &problem);
                }
                notes.insert(category.id.clone(), note.to_owned());
            }
        }

        match tier {
            Some(tier) if errors.is_empty() => Ok(Intake {
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
            }),
            _ => Err(errors),
        }
    }

    /// One answer, from its field's text.
    fn parse_answer(&self, question: &Question, value: &str) -> Result<Answer, String> {
        let number = |low: Option<i64>, high: Option<i64>, message: String| {
            let n: i64 = value.parse().map_err(|_| message.clone())?;
            if low.is_some_and(|low| n < low) || high.is_some_and(|high| n > high) {
                return Err(message);
            }
            Ok(Answer::Number(n))
        };
        match &question.kind {
            Kind::Scale => {
                let (min, max) = (self.scale.min, self.scale.max);
                number(
                    Some(min),
                    Some(max),
                    format!("Answer from {min} to {max}, or leave it empty"),
                )
            }
            Kind::Number { min, max, .. } => {
                let message = match (min, max) {
                    (Some(low), Some(high)) => format!("Enter a whole number from {low} to {high}"),
                    (Some(low), None) => format!("Enter a whole number of {low} or more"),
                    (None, Some(high)) => format!("Enter a whole number of {high} or less"),
                    (None, None) => "Enter a whole number".to_owned(),
                };
                number(*min, *max, message)
            }
            Kind::Single(options) => options
                .iter()
                .find(|o| o.id == value)
                .map(|o| Answer::Text(o.id.clone()))
                .ok_or_else(|| "Choose one of the options".to_owned()),
            Kind::Multiple(options) => {
                let mut chosen = Vec::new();
                for id in value.split(',').map(str::trim).filter(|id| !id.is_empty()) {
                    if !options.iter().any(|o| o.id == id) {
                        return Err("Choose from the options".to_owned());
                    }
                    if !chosen.iter().any(|c| c == id) {
                        chosen.push(id.to_owned());
                    }
                }
                // In the method's order, whatever order they came in.
                chosen.sort_by_key(|id| options.iter().position(|o| o.id == *id));
                Ok(Answer::Many(chosen))
            }
            Kind::YesNo { .. } => match value {
                "yes" => Ok(Answer::Yes(true)),
                "no" => Ok(Answer::Yes(false)),
                _ => Err("Answer yes or no".to_owned()),
            },
            Kind::Text => match text_problem(value, MAX_FREE_TEXT, true) {
                Some(problem) => Err(problem),
                None => Ok(Answer::Text(value.to_owned())),
            },
        }
    }
}

/// Why a text field cannot be kept: too long, or control characters (other than line breaks
/// and tabs in long text).
pub fn text_problem(value: &str, max: usize, multiline: bool) -> Option<String> {
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
