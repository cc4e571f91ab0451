//! method.toml as written, and its check into a [`Method`]: every problem found at once, each
//! with its file and line and what to do. `parts.rs` checks the levels, tiers and questions.

mod parts;

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use toml::Spanned;

use super::brand::{self, Brand};
use super::questionnaire::{Category, Kind, PROFILE_FIELDS, Question, Questionnaire, Scale};
use super::scoring::{CategoryMode, Scoring};
use super::{Assessment, Files, Layout, Method, Problem, Problems, Section};
use parts::{check_benchmarks, check_levels, check_question, check_tiers, check_weight};

const FILE: &str = "method.toml";

/// How many categories a method has, at least and at most (the radar's axes).
pub const CATEGORIES: std::ops::RangeInclusive<usize> = 3..=12;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMethod {
    assessment: RawAssessment,
    profile: RawProfile,
    #[serde(default)]
    scale: Option<Spanned<RawScale>>,
    #[serde(default)]
    scoring: RawScoring,
    levels: Vec<Spanned<RawLevel>>,
    pricing: Spanned<RawPricing>,
    tiers: Vec<Spanned<RawTier>>,
    categories: Vec<Spanned<RawCategory>>,
    #[serde(default)]
    free_text: Vec<Spanned<RawQuestion>>,
    #[serde(default)]
    brand: Option<Spanned<RawBrand>>,
    #[serde(default)]
    benchmarks: Option<Spanned<RawBenchmarks>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBenchmarks {
    min_peers: Option<i64>,
    baseline: Option<RawBaseline>,
}

/// Reference figures as `[p25, median, p75]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    overall: Option<[f64; 3]>,
    #[serde(default)]
    categories: std::collections::BTreeMap<String, [f64; 3]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAssessment {
    name: String,
    title: String,
    lead: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    industries: Vec<String>,
    employees: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScale {
    min: i64,
    max: i64,
    hint: String,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScoring {
    #[serde(default)]
    category_score: CategoryMode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLevel {
    name: String,
    from: i64,
    to: i64,
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPricing {
    currency: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    id: String,
    name: String,
    price: i64,
    description: String,
    sections: Vec<Section>,
    #[serde(default)]
    layout: Layout,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    id: String,
    title: String,
    #[serde(default)]
    weight: Option<i64>,
    /// Offer an optional note for the category (`{id}_note`); true unless set false.
    #[serde(default)]
    note: Option<bool>,
    #[serde(default)]
    questions: Vec<Spanned<RawQuestion>>,
}

#[derive(Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawKind {
    #[default]
    Scale,
    Single,
    Multiple,
    YesNo,
    Number,
    Text,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestion {
    id: String,
    text: String,
    #[serde(rename = "type", default)]
    kind: Option<RawKind>,
    #[serde(default)]
    required: bool,
    weight: Option<i64>,
    hint: Option<String>,
    options: Option<Vec<RawChoice>>,
    yes: Option<i64>,
    no: Option<i64>,
    bands: Option<Vec<RawBand>>,
    min: Option<i64>,
    max: Option<i64>,
    unit: Option<String>,
    show_when: Option<RawCondition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChoice {
    id: String,
    label: String,
    #[serde(default)]
    points: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBand {
    below: Option<i64>,
    points: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    question: String,
    equals: Option<String>,
    any_of: Option<Vec<String>>,
    at_least: Option<i64>,
    at_most: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBrand {
    name: Option<String>,
    logo: Option<String>,
    primary: Option<String>,
}

/// Collects problems with lines in one file.
struct Report<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Report<'_> {
    fn line(&self, span: &std::ops::Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text[..end].matches('\n').count() + 1
    }

    fn at(&mut self, span: &std::ops::Range<usize>, message: impl Into<String>) {
        let line = self.line(span);
        self.problems.push(Problem::new(FILE, Some(line), message));
    }
}

/// A stable id: the rule tiers' ids follow (`Tier::is_id`), for every id of a method.
fn valid_id(id: &str) -> bool {
    crate::order::Tier::is_id(id)
}

const ID_RULE: &str = "lower-case letters, digits and _, starting with a letter, at most 40";

/// Checks `files` into a method.
pub fn check(files: Files) -> Result<Method, Problems> {
    let Some(bytes) = files.get(FILE) else {
        return Err(Problems(vec![Problem::new(FILE, None, "is missing")]));
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(Problems(vec![Problem::new(
            FILE,
            None,
            "is not UTF-8 text",
        )]));
    };
    let mut report = Report {
        text,
        problems: Vec::new(),
    };
    let raw: RawMethod = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            let line = err.span().map(|span| report.line(&span));
            let message = err.message().trim().to_owned();
            return Err(Problems(vec![Problem::new(FILE, line, message)]));
        }
    };
    let method = check_raw(raw, &files, &mut report);
    for path in files.keys() {
        if let Some(name) = path
            .strip_prefix("prompts/")
            .and_then(|n| n.strip_suffix(".hbs"))
            && name != "system"
            && name != "user"
            && method
                .as_ref()
                .is_some_and(|m| !m.tiers.iter().any(|t| t.id.as_str() == name))
        {
            report.problems.push(Problem::new(
                path,
                None,
                format!("there is no tier `{name}` in method.toml: rename the file to a tier's id"),
            ));
        }
        if path.starts_with("report/") && path != "report/report.hbs" && path != "report/report.typ"
        {
            report.problems.push(Problem::new(
                path,
                None,
                "the report's templates are report/report.hbs and report/report.typ",
            ));
        }
    }
    match method {
        Some(mut method) if report.problems.is_empty() => {
            method.version = super::version_of(&files);
            method.files = files;
            Ok(method)
        }
        _ => Err(Problems(report.problems)),
    }
}

fn check_raw(raw: RawMethod, files: &Files, report: &mut Report<'_>) -> Option<Method> {
    let scale = match raw.scale {
        Some(scale) => {
            let span = scale.span();
            let scale = scale.into_inner();
            if scale.min >= scale.max || scale.max - scale.min > 10 || scale.min < 0 {
                report.at(
                    &span,
                    "the scale runs from `min` to `max`: 0 or more, `min` below `max`, at most 11 \
                     steps",
                );
            }
            Scale {
                min: scale.min,
                max: scale.max,
                hint: scale.hint,
            }
        }
        None => Scale {
            min: 1,
            max: 5,
            hint: "1 = not at all, 5 = fully.".into(),
        },
    };
    let mode = raw.scoring.category_score;
    let levels = check_levels(raw.levels, report);
    let pricing_span = raw.pricing.span();
    let currency = raw.pricing.into_inner().currency;
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_lowercase()) {
        report.at(
            &pricing_span,
            format!("currency `{currency}` must be a lower-case ISO 4217 code such as usd or eur"),
        );
    }
    let tiers = check_tiers(raw.tiers, files, report);

    let mut seen: HashSet<String> = PROFILE_FIELDS.iter().map(|f| (*f).to_owned()).collect();
    let mut kinds: HashMap<String, Kind> = HashMap::new();
    let mut categories = Vec::new();
    let first_category = raw.categories.first().map(Spanned::span);
    if !CATEGORIES.contains(&raw.categories.len()) {
        let message = format!(
            "a method has 3 to 12 categories, this one has {}",
            raw.categories.len()
        );
        match &first_category {
            Some(span) => report.at(span, message),
            None => report.problems.push(Problem::new(FILE, None, message)),
        }
    }
    let mut category_ids = HashSet::new();
    for category in raw.categories {
        let span = category.span();
        let category = category.into_inner();
        if !valid_id(&category.id) {
            report.at(&span, format!("category id `{}`: {ID_RULE}", category.id));
        }
        if !category_ids.insert(category.id.clone()) {
            report.at(&span, format!("category `{}` appears twice", category.id));
        }
        let note = category.note.unwrap_or(true);
        if note && !seen.insert(format!("{}_note", category.id)) {
            report.at(
                &span,
                format!("`{}_note` is already a question's id", category.id),
            );
        }
        let weight = check_weight(category.weight, &span, report);
        let mut questions = Vec::new();
        for question in category.questions {
            if let Some(question) =
                check_question(question, RawKind::Scale, &scale, &mut seen, &kinds, report)
            {
                kinds.insert(question.id.clone(), question.kind.clone());
                questions.push(question);
            }
        }
        let scored: Vec<&Question> = questions.iter().filter(|q| q.kind.is_scored()).collect();
        if scored.is_empty() {
            report.at(
                &span,
                format!(
                    "category `{}` has no scored question: add one (a text question scores \
                     nothing)",
                    category.id
                ),
            );
        }
        if mode == CategoryMode::Mean && scored.iter().any(|q| q.kind != Kind::Scale) {
            report.at(
                &span,
                format!(
                    "category `{}` has questions that are not on the scale, so its score cannot \
                     be a mean: set [scoring] category_score = \"percent\"",
                    category.id
                ),
            );
        }
        categories.push(Category {
            id: category.id,
            title: category.title,
            weight,
            note,
            questions,
        });
    }
    let mut free_text = Vec::new();
    for question in raw.free_text {
        let span = question.span();
        if let Some(question) =
            check_question(question, RawKind::Text, &scale, &mut seen, &kinds, report)
        {
            if question.kind != Kind::Text {
                report.at(
                    &span,
                    format!(
                        "free_text question `{}` must be of type \"text\": scored questions \
                         belong to a category",
                        question.id
                    ),
                );
            }
            free_text.push(question);
        }
    }
    let brand = match raw.brand {
        Some(brand) => {
            let span = brand.span();
            let brand = brand.into_inner();
            brand::check(brand.name, brand.logo, brand.primary, files).unwrap_or_else(|message| {
                report.at(&span, message);
                Brand::default()
            })
        }
        None => Brand::default(),
    };
    for profile in [&raw.profile.industries, &raw.profile.employees] {
        if profile.is_empty() {
            report.problems.push(Problem::new(
                FILE,
                None,
                "[profile] lists must not be empty",
            ));
        }
    }
    let scoring = Scoring { mode, levels };
    let benchmarks = check_benchmarks(raw.benchmarks, &categories, &scoring, &scale, report);
    Some(Method {
        version: String::new(),
        benchmarks,
        files: Files::new(),
        assessment: Assessment {
            name: raw.assessment.name,
            title: raw.assessment.title,
            lead: raw.assessment.lead,
        },
        questionnaire: Questionnaire {
            industries: raw.profile.industries,
            employees: raw.profile.employees,
            scale,
            categories,
            free_text,
        },
        scoring,
        currency,
        tiers,
        brand,
    })
}
