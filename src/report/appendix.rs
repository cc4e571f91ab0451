//! The report's appendix: the customer's own answers, as they gave them, question by question.
//! It is part of the stored report, so a report always shows the answers it was written from.

use serde::{Deserialize, Serialize};

use crate::method::{Answer, Intake, Kind, Method, Question};

/// The customer's answers in words: the profile, each category's questions, the free text.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Appendix {
    pub profile: Vec<Line>,
    pub categories: Vec<Group>,
    /// The questions after the categories, in the customer's own words.
    pub free_text: Vec<Line>,
}

/// One category's questions and its optional note.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Group {
    pub title: String,
    pub lines: Vec<Line>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A question and its answer; `None` when the customer skipped it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Line {
    pub question: String,
    pub answer: Option<String>,
}

/// The appendix of `intake` by `method`: every question the customer was asked (one shown only
/// when an earlier answer called for it is left out when it was not), in the form's order.
pub fn of(intake: &Intake, method: &Method) -> Appendix {
    let q = &method.questionnaire;
    let line = |question: &Question| Line {
        question: question.text.clone(),
        answer: intake
            .answers
            .get(&question.id)
            .map(|answer| words(question, answer, method)),
    };
    let asked = |question: &&Question| {
        question
            .show_when
            .as_ref()
            .is_none_or(|c| c.holds(&intake.answers))
    };
    let fact = |question: &str, answer: &str| Line {
        question: question.to_owned(),
        answer: Some(answer.to_owned()),
    };
    let mut profile = vec![fact("Company", &intake.company)];
    if let Some(website) = &intake.website {
        profile.push(fact("Website", website));
    }
    profile.extend([
        fact("Industry", &intake.industry),
        fact("Employees", &intake.employees),
        fact("Country", &intake.country),
    ]);
    Appendix {
        profile,
        categories: q
            .categories
            .iter()
            .map(|category| Group {
                title: category.title.clone(),
                lines: category.questions.iter().filter(asked).map(line).collect(),
                note: intake.notes.get(&category.id).cloned(),
            })
            .collect(),
        free_text: q.free_text.iter().filter(asked).map(line).collect(),
    }
}

/// An answer as the customer would say it: "4 of 5", "Yes", "12 people", the options' labels,
/// their own text.
fn words(question: &Question, answer: &Answer, method: &Method) -> String {
    let kind = &question.kind;
    match (kind, answer) {
        (Kind::Scale, Answer::Number(n)) => {
            format!("{n} of {}", method.questionnaire.scale.max)
        }
        (
            Kind::Number {
                unit: Some(unit), ..
            },
            Answer::Number(n),
        ) => format!("{n} {unit}"),
        (_, Answer::Number(n)) => n.to_string(),
        (_, Answer::Yes(yes)) => kind.label(if *yes { "yes" } else { "no" }).to_owned(),
        (_, Answer::Many(ids)) if ids.is_empty() => "None of these".to_owned(),
        (_, Answer::Many(ids)) => ids
            .iter()
            .map(|id| kind.label(id))
            .collect::<Vec<_>>()
            .join("; "),
        (_, Answer::Text(text)) => kind.label(text).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::sample_intake;

    #[test]
    fn every_answer_reads_as_words_in_the_forms_order() {
        let method = Method::builtin();
        let intake = sample_intake(&method, method.tiers[0].id.clone());
        let appendix = of(&intake, &method);
        assert_eq!(
            appendix.profile[0].answer.as_deref(),
            Some(intake.company.as_str())
        );
        assert_eq!(
            appendix.categories.len(),
            method.questionnaire.categories.len()
        );
        let first = &method.questionnaire.categories[0].questions[0];
        let shown = &appendix.categories[0].lines[0];
        assert_eq!(shown.question, first.text);
        match intake.answers.get(&first.id) {
            Some(Answer::Number(5)) => assert_eq!(shown.answer.as_deref(), Some("5 of 5")),
            other => panic!("the sample answers the top of the scale, not {other:?}"),
        }
        assert_eq!(
            appendix.free_text.len(),
            method.questionnaire.free_text.len()
        );
    }

    #[test]
    fn choices_read_as_their_labels_and_skipped_questions_as_none() {
        let mut method = Method::builtin();
        let question = Question {
            id: "tools".into(),
            text: "Which tools?".into(),
            hint: None,
            kind: Kind::Multiple(vec![
                crate::method::Choice {
                    id: "chat".into(),
                    label: "A chat assistant".into(),
                    points: 1,
                },
                crate::method::Choice {
                    id: "code".into(),
                    label: "A coding assistant".into(),
                    points: 1,
                },
            ]),
            required: false,
            weight: 1,
            show_when: None,
        };
        method.questionnaire.categories[0].questions = vec![question.clone()];
        let many = Answer::Many(vec!["code".into(), "chat".into()]);
        assert_eq!(
            words(&question, &many, &method),
            "A coding assistant; A chat assistant"
        );
        let mut intake = sample_intake(&method, method.tiers[0].id.clone());
        intake.answers.remove("tools");
        assert_eq!(of(&intake, &method).categories[0].lines[0].answer, None);
    }
}
