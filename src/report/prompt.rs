//! The prompts: the method's handlebars templates (`prompts/` in its folder) rendered without HTML escaping,
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

use super::Figures;
use crate::method::{Answer, Intake, Kind, Method, Question, render_error, template_error};

/// One method's prompt templates, compiled.
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

impl Prompt {
    /// The prompt with the consultant's instruction for a report written again after their
    /// review: after the customer's data block, never inside it, and said to be theirs. compass
    /// adds it whatever the method's templates say, so no method can lose it.
    pub fn with_consultant_note(mut self, business: &str, note: &str) -> Prompt {
        let note = note.trim();
        self.user = format!(
            "{}\n\n<consultant_note>\nThe consultant at {business} who signs this report read \
             an earlier draft and asks for this; it comes from {business}, not from the \
             customer, and it changes the words only, never the numbers:\n{note}\n\
             </consultant_note>\n",
            self.user.trim_end()
        );
        self
    }
}

impl Prompts {
    /// Compiles `method`'s prompts: `prompts/system.hbs`, `prompts/user.hbs` and one per tier.
    pub fn new(method: &Method) -> anyhow::Result<Prompts> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        let names = ["system", "user"]
            .into_iter()
            .map(str::to_owned)
            .chain(method.tiers.iter().map(|t| t.id.as_str().to_owned()));
        for name in names {
            let path = format!("prompts/{name}.hbs");
            let text = method
                .text(&path)
                .with_context(|| format!("the method has no {path}"))?;
            registry
                .register_template_string(&name, text)
                .map_err(|err| template_error(&path, &err))?;
        }
        Ok(Prompts { registry })
    }

    /// The prompt for one intake, under the method it was sold with.
    pub fn render<'a>(
        &self,
        business: &str,
        intake: &Intake,
        method: &Method,
        figures: impl Into<Figures<'a>>,
    ) -> anyhow::Result<Prompt> {
        let figures = figures.into();
        let scores = figures.scores;
        let tier = method
            .tier(&intake.tier)
            .with_context(|| format!("the method sells no tier `{}`", intake.tier))?;
        // Only compass's own values outside the data block; every customer word is inside it.
        let instructions = self
            .registry
            .render(
                tier.id.as_str(),
                &json!({ "business": business, "tier": tier.name }),
            )
            .map_err(|err| render_error(&format!("prompts/{}.hbs", tier.id), &err))?;
        let q = &method.questionnaire;
        let categories: Vec<_> = q
            .categories
            .iter()
            .map(|c| json!({ "id": c.id, "title": c.title, "weight": c.weight, "questions": c.questions }))
            .collect();
        let system = json!({
            "business": business,
            "assessment": method.assessment,
            "scale": q.scale,
            "categories": categories,
            "levels": method.scoring.levels,
            "instructions": instructions.trim_end(),
        });
        let peers = figures.peers.map(|p| p.shown(scores));
        let shown: Vec<_> = scores
            .categories
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "title": c.title,
                    "score": c.shown(),
                    "out_of": format!("{:.0}", c.out_of),
                    // What companies like it reached here, when enough of them answered.
                    "peers": peers.as_ref().and_then(|p| p["categories"].get(&c.id)),
                })
            })
            .collect();
        let data = json!({
            "business": business,
            "assessment": method.assessment,
            "tier": tier.name,
            "scale": q.scale,
            "categories": shown,
            "scores": scores,
            "level": scores.level,
            "peers": peers,
            "answers": answers_json(intake, method)?,
        });
        Ok(Prompt {
            system: self
                .registry
                .render("system", &system)
                .map_err(|err| render_error("prompts/system.hbs", &err))?,
            user: self
                .registry
                .render("user", &data)
                .map_err(|err| render_error("prompts/user.hbs", &err))?,
        })
    }
}

/// One answer as the model reads it.
fn answer_json(question: &Question, answer: Option<&Answer>, method: &Method) -> serde_json::Value {
    let scale = &method.questionnaire.scale;
    let label = |id: &str| question.kind.label(id).to_owned();
    match (&question.kind, answer) {
        (Kind::Scale, answer) => json!({
            "statement": question.text,
            format!("agreement_{}_to_{}", scale.min, scale.max): answer,
        }),
        (_, None) => json!({ "question": question.text, "answer": null }),
        (_, Some(Answer::Yes(yes))) => {
            json!({ "question": question.text, "answer": if *yes { "yes" } else { "no" } })
        }
        (Kind::Number { unit, .. }, Some(Answer::Number(n))) => json!({
            "question": question.text,
            "answer": match unit { Some(unit) => format!("{n} {unit}"), None => n.to_string() },
        }),
        (_, Some(Answer::Number(n))) => json!({ "question": question.text, "answer": n }),
        (_, Some(Answer::Many(ids))) => json!({
            "question": question.text,
            "answer": ids.iter().map(|id| label(id)).collect::<Vec<_>>(),
        }),
        (Kind::Text, Some(Answer::Text(text))) => {
            json!({ "question": question.text, "answer": text })
        }
        (_, Some(Answer::Text(id))) => json!({ "question": question.text, "answer": label(id) }),
    }
}

/// The customer's answers as the model reads them: each question's text with its answer.
fn answers_json(intake: &Intake, method: &Method) -> anyhow::Result<String> {
    let q = &method.questionnaire;
    let asked = |question: &Question| {
        question
            .show_when
            .as_ref()
            .is_none_or(|c| c.holds(&intake.answers))
    };
    let categories: Vec<_> = q
        .categories
        .iter()
        .map(|category| {
            let answers: Vec<_> = category
                .questions
                .iter()
                .filter(|question| asked(question))
                .map(|question| answer_json(question, intake.answers.get(&question.id), method))
                .collect();
            json!({
                "category": category.title,
                "answers": answers,
                "note": intake.notes.get(&category.id),
            })
        })
        .collect();
    let in_their_words: Vec<_> = q
        .free_text
        .iter()
        .map(|question| answer_json(question, intake.answers.get(&question.id), method))
        .collect();
    let document = json!({
        "company": intake.company,
        "website": intake.website,
        "industry": intake.industry,
        "employees": intake.employees,
        "country": intake.country,
        "categories": categories,
        "in_their_words": in_their_words,
    });
    let text = serde_json::to_string_pretty(&document).context("cannot encode the answers")?;
    Ok(text
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026"))
}
