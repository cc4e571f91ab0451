//! `compass check`'s work: a method is rendered whole before it can reach a customer. Loading
//! (`method`) checks what can be checked without rendering; this renders every prompt for every
//! tier, the report's HTML and PDF for every tier and every email, each with sample answers,
//! and names the file and line of each problem.

use std::collections::BTreeMap;

use crate::method::{Answer, Intake, Kind, Method, Problem, Problems};
use crate::report::{self, Figures, Report, Signature, prompt::Prompts};

/// The day the sample reports are dated.
const SAMPLE_DAY: time::Date = time::macros::date!(2026 - 11 - 02);

/// Renders everything `method` has with sample answers; every problem found, with its place.
pub fn render(method: &Method, business: &str) -> Result<(), Problems> {
    let mut problems = Vec::new();
    let mut fail = |err: anyhow::Error| problems.push(located(&format!("{err:#}")));
    match crate::mail::Composer::new(method) {
        Err(err) => fail(err),
        Ok(composer) => {
            let tier = method.tiers[0].id.clone();
            for (kind, data) in crate::mail::outbox::samples(&composer, tier) {
                if let Err(err) = composer.compose(kind, "sam@example.com", &data) {
                    fail(err);
                }
            }
        }
    }
    match Prompts::new(method) {
        Err(err) => fail(err),
        Ok(prompts) => {
            for (n, tier) in method.tiers.iter().enumerate() {
                let intake = sample_intake(method, tier.id.clone());
                let scores = method.scores(&intake);
                // With peers, so that the templates' peer parts are rendered too: the first
                // tier with the reference figures a new business compares with.
                let mut peers = report::peers::sample(&scores);
                if n == 0 {
                    peers.group = report::peers::Group::Baseline;
                }
                let figures = Figures {
                    scores: &scores,
                    peers: Some(&peers),
                };
                if let Err(err) = prompts.render(business, &intake, method, figures) {
                    fail(err);
                }
                let written = report::sample::written(tier, method);
                let report = Report {
                    peers: Some(peers.clone()),
                    sample: true,
                    ..Report::new(&intake, method, scores, written, SAMPLE_DAY)
                };
                // The second tier without a booking link, so that both next steps render.
                let mut signature = Signature::sample(business);
                if n == 1 {
                    signature.booking_url = None;
                }
                if let Err(err) = report::html::render(&report, method, &signature) {
                    fail(err);
                }
                if let Err(err) = report::pdf::render(&report, method, &signature) {
                    fail(err);
                }
            }
        }
    }
    problems.dedup();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Problems(problems))
    }
}

/// A problem from an error that starts with `file:line: ` (or `file: `), as the renderers
/// write them.
fn located(message: &str) -> Problem {
    let message = message
        .strip_prefix("the report does not typeset: ")
        .unwrap_or(message);
    let Some((file, rest)) = message.split_once(':') else {
        return Problem::new("method", None, message);
    };
    if !(file.contains('/') || file == "method.toml") || file.contains(' ') {
        return Problem::new("method", None, message);
    }
    let (line, rest) = match rest.split_once(':') {
        Some((line, after)) if line.trim().parse::<usize>().is_ok() => {
            (line.trim().parse().ok(), after)
        }
        _ => (None, rest),
    };
    Problem::new(file, line, rest.trim())
}

/// Answers to every question (the first option, the top of the scale), so every template
/// sees every kind of answer.
pub fn sample_intake(method: &Method, tier: crate::order::Tier) -> Intake {
    let q = &method.questionnaire;
    let mut answers = BTreeMap::new();
    for question in q.questions() {
        let answer = match &question.kind {
            Kind::Scale => Answer::Number(q.scale.max),
            Kind::Single(options) => Answer::Text(options[0].id.clone()),
            Kind::Multiple(options) => Answer::Many(options.iter().map(|o| o.id.clone()).collect()),
            Kind::YesNo { .. } => Answer::Yes(true),
            Kind::Number { min, .. } => Answer::Number(min.unwrap_or(1)),
            Kind::Text => Answer::Text("A sample answer, in the customer's words.".to_owned()),
        };
        answers.insert(question.id.clone(), answer);
    }
    let notes = q
        .categories
        .iter()
        .filter(|c| c.note)
        .map(|c| (c.id.clone(), "A sample note.".to_owned()))
        .collect();
    Intake {
        company: "Sample Company Ltd".to_owned(),
        website: Some("example.com".to_owned()),
        industry: q.industries[0].clone(),
        employees: q.employees[0].clone(),
        country: "United Kingdom".to_owned(),
        name: "Sam Sample".to_owned(),
        email: "sam@example.com".to_owned(),
        tier,
        answers,
        notes,
    }
}
