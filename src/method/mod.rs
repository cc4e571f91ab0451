//! The method: the operator's own questionnaire, scoring, levels, tiers, prompts, report and
//! email templates and brand, read from a folder beside compass.toml (`paths.method`), or the
//! built-in one (`templates/method/`) when there is none.
//!
//! A method is its files. Its version is the SHA-256 of them (path and content, in path order),
//! every order records the version it was sold with, and the store keeps each version's files,
//! so an order is scored, written and rendered by its own method even after the folder changes.
//! A file the folder leaves out (an email template, the report layout) is the built-in one, and
//! counts in the version as if it were there. Loading checks everything that can be checked
//! without rendering (`raw.rs`); `crate::check` renders the templates on top.

mod brand;
mod explain;
pub mod questionnaire;
mod raw;
pub mod scoring;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use brand::{Brand, Logo};
pub use explain::HowScored;
pub use questionnaire::{Answer, Category, Choice, Condition, FieldError, Intake, Kind, Question};
pub use scoring::{CategoryScore, Level, Scores, Spread};

use crate::order::Tier;

/// The files of the built-in method, by their path in a method folder.
const BUILTIN: &[(&str, &[u8])] = &include!(concat!(env!("OUT_DIR"), "/builtin_method.rs"));

/// The largest file compass reads from a method folder (a logo, a template).
const MAX_FILE: u64 = 2 * 1024 * 1024;

/// A method's files: path (with `/`) to content.
pub type Files = BTreeMap<String, Vec<u8>>;

/// A checked method.
#[derive(Clone, Debug)]
pub struct Method {
    /// The SHA-256 of its files, in hex.
    pub version: String,
    files: Files,
    /// What is assessed, and how the intake page introduces it.
    pub assessment: Assessment,
    /// The questions.
    pub questionnaire: questionnaire::Questionnaire,
    /// How answers become scores, and the levels.
    pub scoring: scoring::Scoring,
    /// The currency of every price (lower-case ISO 4217).
    pub currency: String,
    /// What customers can buy, in the order the form shows them.
    pub tiers: Vec<TierDef>,
    /// The name, logo and colours.
    pub brand: Brand,
    /// How reports compare a company with its peers.
    pub benchmarks: Benchmarks,
}

/// How many companies a peer comparison rests on, at least, unless the method says.
pub const DEFAULT_MIN_PEERS: usize = 10;

/// How reports compare a company with its peers (`[benchmarks]`).
#[derive(Clone, Debug, Serialize)]
pub struct Benchmarks {
    /// The fewest companies a comparison may rest on (5 to 1000; 10 by default).
    pub min_peers: usize,
    /// What to compare with while fewer companies were assessed: the operator's own figures.
    pub baseline: Option<Baseline>,
}

/// The operator's reference figures, for a business with too few assessments yet.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Baseline {
    pub overall: Option<Spread>,
    /// By category id.
    pub categories: BTreeMap<String, Spread>,
}

/// What is assessed.
#[derive(Clone, Debug, Serialize)]
pub struct Assessment {
    /// "AI readiness": "{name} report".
    pub name: String,
    /// The intake page's heading.
    pub title: String,
    /// The intake page's introduction.
    pub lead: String,
}

/// One tier: what it is called, costs and holds.
#[derive(Clone, Debug, Serialize)]
pub struct TierDef {
    pub id: Tier,
    pub name: String,
    /// What the report holds, as the form and the terms describe it.
    pub description: String,
    /// In the currency's smallest unit.
    pub price: i64,
    /// The report's parts beyond the summary and the findings.
    pub sections: Vec<Section>,
    /// How the report is laid out.
    pub layout: Layout,
}

/// How a tier's report is laid out (`layout` of a `[[tiers]]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// The categories follow one another.
    #[default]
    Brief,
    /// A table of contents, and each category on a page of its own.
    Full,
}

impl TierDef {
    /// Whether this tier's report has `section`.
    pub fn has(&self, section: Section) -> bool {
        self.sections.contains(&section)
    }
}

/// A part of the report a tier may hold, beyond the summary and each category's finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// One to five recommendations per category.
    Recommendations,
    /// Exactly five things to start this month.
    QuickWins,
    /// Risks, each with a mitigation.
    Risks,
    /// Milestones for the next 90 days.
    #[serde(rename = "roadmap_90_days")]
    Roadmap90Days,
    /// Candidate use cases with effort and impact.
    UseCases,
    /// Milestones for the next 12 months.
    #[serde(rename = "roadmap_12_months")]
    Roadmap12Months,
    /// Budget ranges.
    Budget,
}

/// One thing wrong with a method folder, where it is and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file, relative to the method folder.
    pub file: String,
    /// 1-based, when the problem has a place in the file.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Every problem found in a method folder; never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "the method has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for problem in &self.0 {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl Problem {
    pub fn new(file: &str, line: Option<usize>, message: impl Into<String>) -> Problem {
        Problem {
            file: file.to_owned(),
            line,
            message: message.into(),
        }
    }
}

impl Method {
    /// The built-in AI readiness method.
    pub fn builtin() -> Method {
        Method::from_files(builtin_files()).expect("the built-in method is valid (tested)")
    }

    /// Whether this is the built-in method, file for file.
    pub fn is_builtin(&self) -> bool {
        static BUILTIN_VERSION: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| version_of(&builtin_files()));
        self.version == *BUILTIN_VERSION
    }

    /// Reads the method folder at `dir`; a file it leaves out is the built-in one.
    pub fn load_dir(dir: &Path) -> Result<Method, Problems> {
        let mut files = builtin_files();
        // The built-in tiers' prompts are not a default for another method's tiers.
        files.retain(|path, _| !is_tier_prompt(path));
        let mut problems = Vec::new();
        read_folder(dir, dir, &mut files, &mut problems);
        if !dir.join("method.toml").is_file() {
            problems.push(Problem::new(
                "method.toml",
                None,
                format!(
                    "not found in {}: write one (`compass init` writes the built-in method \
                     there to start from)",
                    dir.display()
                ),
            ));
        }
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        Method::from_files(files)
    }

    /// A method from its files: a folder's, or a version kept in the store.
    pub fn from_files(files: Files) -> Result<Method, Problems> {
        raw::check(files)
    }

    /// The files, as stored with the version.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The logo for a typst template: its path as the template names it (`/logo.png`) and
    /// its bytes.
    pub fn logo_image(&self) -> anyhow::Result<Option<(String, Vec<u8>)>> {
        let Some(logo) = &self.brand.logo else {
            return Ok(None);
        };
        let bytes = self
            .files
            .get(&logo.path)
            .ok_or_else(|| anyhow::anyhow!("the method has no {}", logo.path))?;
        Ok(Some((format!("/{}", logo.path), bytes.clone())))
    }

    /// One file's text, if the method has it and it is UTF-8.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.files
            .get(path)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
    }

    /// The name of a report's files: `ai-readiness-report` for the built-in method.
    pub fn report_file_stem(&self) -> String {
        let mut stem = String::new();
        for c in self.assessment.name.chars() {
            if c.is_ascii_alphanumeric() {
                stem.push(c.to_ascii_lowercase());
            } else if !stem.is_empty() && !stem.ends_with('-') {
                stem.push('-');
            }
        }
        format!("{}-report", stem.trim_end_matches('-'))
            .trim_start_matches('-')
            .to_owned()
    }

    /// The first twelve digits of the version, as people read it.
    pub fn short_version(&self) -> &str {
        &self.version[..12]
    }

    /// The tier with this id.
    pub fn tier(&self, id: &Tier) -> Option<&TierDef> {
        self.tiers.iter().find(|t| t.id == *id)
    }

    /// A tier's name, or its id when this method does not sell it.
    pub fn tier_name(&self, id: &Tier) -> String {
        self.tier(id)
            .map_or_else(|| id.as_str().to_owned(), |t| t.name.clone())
    }

    /// The name customers see: the brand's, else the business's.
    pub fn display_name<'a>(&'a self, business: &'a str) -> &'a str {
        self.brand.name.as_deref().unwrap_or(business)
    }

    /// Sets the built-in tiers' prices (from compass.toml's `[tiers]`).
    pub fn set_prices(&mut self, currency: &str, price: impl Fn(&str) -> Option<i64>) {
        currency.clone_into(&mut self.currency);
        for tier in &mut self.tiers {
            if let Some(price) = price(tier.id.as_str()) {
                tier.price = price;
            }
        }
    }

    /// The tiers' ids, in the order the form shows them.
    pub fn tier_ids(&self) -> Vec<Tier> {
        self.tiers.iter().map(|t| t.id.clone()).collect()
    }

    /// Checks a submission against this method's questions and tiers.
    pub fn validate(&self, fields: &BTreeMap<String, String>) -> Result<Intake, Vec<FieldError>> {
        self.questionnaire.validate(fields, &self.tier_ids())
    }

    /// The scores of `intake`.
    pub fn scores(&self, intake: &Intake) -> Scores {
        self.scoring.scores(&self.questionnaire, intake)
    }

    /// The level of an overall score.
    pub fn level_of(&self, overall: u8) -> Option<&Level> {
        self.scoring.level_of(overall)
    }
}

/// A template that does not compile, with its file and line.
pub fn template_error(path: &str, err: &handlebars::TemplateError) -> anyhow::Error {
    match err.pos() {
        Some((line, _)) => anyhow::anyhow!("{path}:{line}: does not compile: {}", err.reason()),
        None => anyhow::anyhow!("{path}: does not compile: {}", err.reason()),
    }
}

/// A template that does not render (in strict mode: a field that does not exist), with its
/// file and line.
pub fn render_error(path: &str, err: &handlebars::RenderError) -> anyhow::Error {
    match err.line_no {
        Some(line) => anyhow::anyhow!("{path}:{line}: {}", err.reason()),
        None => anyhow::anyhow!("{path}: {}", err.reason()),
    }
}

/// The SHA-256 of `files`: each path and content, length-prefixed, in path order.
pub fn version_of(files: &Files) -> String {
    let mut hash = Sha256::new();
    for (path, content) in files {
        hash.update((path.len() as u64).to_be_bytes());
        hash.update(path.as_bytes());
        hash.update((content.len() as u64).to_be_bytes());
        hash.update(content);
    }
    hex::encode(hash.finalize())
}

/// The built-in method's files.
pub fn builtin_files() -> Files {
    BUILTIN
        .iter()
        .map(|(path, bytes)| ((*path).to_owned(), bytes.to_vec()))
        .collect()
}

fn is_tier_prompt(path: &str) -> bool {
    path.strip_prefix("prompts/")
        .is_some_and(|name| name != "system.hbs" && name != "user.hbs")
}

/// Where a file of a method folder belongs: the folders compass reads, and the logo's types.
fn is_method_path(path: &str) -> bool {
    let known_dir = ["prompts/", "report/", "mail/"].iter().any(|dir| {
        path.strip_prefix(dir)
            .is_some_and(|rest| !rest.contains('/'))
    });
    path == "method.toml"
        || known_dir
        || (!path.contains('/') && (path.ends_with(".svg") || path.ends_with(".png")))
}

fn read_folder(root: &Path, dir: &Path, files: &mut Files, problems: &mut Vec<Problem>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            problems.push(Problem::new(
                &dir.display().to_string(),
                None,
                format!("cannot read the method folder: {err}"),
            ));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // Editors' and version control's own files are not the method's.
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        if path.is_dir() {
            read_folder(root, &path, files, problems);
            continue;
        }
        if !is_method_path(&relative) {
            problems.push(Problem::new(
                &relative,
                None,
                "compass does not use this file: method.toml, prompts/*.hbs, report/report.hbs, \
                 report/report.typ, mail/*.hbs and a logo (.svg or .png) belong here",
            ));
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() > MAX_FILE => problems.push(Problem::new(
                &relative,
                None,
                format!("is larger than {} MiB", MAX_FILE / 1024 / 1024),
            )),
            _ => match std::fs::read(&path) {
                Ok(bytes) => {
                    files.insert(relative, bytes);
                }
                Err(err) => problems.push(Problem::new(&relative, None, format!("{err}"))),
            },
        }
    }
}

#[cfg(test)]
mod tests;
