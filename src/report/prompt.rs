//! The prompts: handlebars templates (`templates/prompts`) rendered without HTML escaping,
//! since they are not HTML. The system prompt holds everything that is the same for every
//! order of a tier (the role, the method, the rules, the tier's sections), so that the API's
//! prompt cache serves it to the next order; the user prompt holds the order's scores and
//! answers. The customer's answers go in as
//! one JSON document inside `<customer_answers>`, with `<`, `>` and `&` written as JSON
//! escapes so no answer can close that element early; the system prompt tells the model that
//! everything inside it is data.

use anyhow::Context;
use handlebars::Handlebars;
use serde_json::json;

use crate::order::Tier;
use crate::questionnaire::{Intake, Level, Questionnaire, Scores};

const TEMPLATES: [(&str, &str); 5] = [
    ("system", include_str!("../../templates/prompts/system.hbs")),
    ("user", include_str!("../../templates/prompts/user.hbs")),
    (
        "starter",
        include_str!("../../templates/prompts/starter.hbs"),
    ),
    (
        "standard",
        include_str!("../../templates/prompts/standard.hbs"),
    ),
    (
        "premium",
        include_str!("../../templates/prompts/premium.hbs"),
    ),
];

/// The prompt templates.
#[derive(Debug)]
pub struct Prompts {
    registry: Handlebars<'static>,
}

/// A rendered prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub system: String,
    pub user: String,
}

impl Prompts {
    /// Compiles the embedded templates.
    pub fn new() -> anyhow::Result<Prompts> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        for (name, text) in TEMPLATES {
            registry
                .register_template_string(name, text)
                .with_context(|| format!("prompt template {name} does not compile"))?;
        }
        Ok(Prompts { registry })
    }

    /// The prompt for one intake.
    pub fn render(
        &self,
        business: &str,
        intake: &Intake,
        questionnaire: &Questionnaire,
        scores: &Scores,
    ) -> anyhow::Result<Prompt> {
        // Only compass's own values outside the data block; every customer word is inside it.
        let tier = match intake.tier {
            Tier::Starter => "starter",
            Tier::Standard => "standard",
            Tier::Premium => "premium",
        };
        let instructions = self
            .registry
            .render(tier, &json!({}))
            .context("cannot render the tier's instructions")?;
        let method = json!({
            "business": business,
            "pillars": questionnaire.pillars,
            "instructions": instructions.trim_end(),
        });
        let data = json!({
            "tier": intake.tier.title(),
            "scores": scores,
            "level": scores.level.map(Level::title),
            "answers": answers_json(intake, questionnaire)?,
        });
        Ok(Prompt {
            system: self
                .registry
                .render("system", &method)
                .context("cannot render the system prompt")?,
            user: self
                .registry
                .render("user", &data)
                .context("cannot render the prompt")?,
        })
    }
}

/// The customer's answers as the model reads them: each question's text with its answer.
fn answers_json(intake: &Intake, questionnaire: &Questionnaire) -> anyhow::Result<String> {
    let pillars: Vec<_> = questionnaire
        .pillars
        .iter()
        .map(|pillar| {
            let answers: Vec<_> = pillar
                .questions
                .iter()
                .enumerate()
                .map(|(i, question)| {
                    let answer = intake.answers.get(&format!("{}_{}", pillar.id, i + 1));
                    json!({ "statement": question, "agreement_1_to_5": answer })
                })
                .collect();
            json!({
                "pillar": pillar.title,
                "answers": answers,
                "note": intake.notes.get(&pillar.id),
            })
        })
        .collect();
    let document = json!({
        "company": intake.company,
        "website": intake.website,
        "industry": intake.industry,
        "employees": intake.employees,
        "country": intake.country,
        "pillars": pillars,
        "process_to_improve": intake.process,
        "anything_else": intake.anything_else,
    });
    let text = serde_json::to_string_pretty(&document).context("cannot encode the answers")?;
    Ok(text
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026"))
}
