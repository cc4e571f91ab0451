//! The method's rules in plain words, for the report's "How your score was computed": written
//! from the same values `scoring` computes with, so the page cannot drift from the numbers.

use serde::Serialize;

use super::Method;
use super::questionnaire::Kind;
use super::scoring::{CategoryMode, Level};

/// How a method scores, as a report explains it.
#[derive(Clone, Debug, Serialize)]
pub struct HowScored {
    /// Paragraphs, in order.
    pub paragraphs: Vec<String>,
    /// The levels, highest first.
    pub levels: Vec<Level>,
}

impl Method {
    /// The method's rules in plain words.
    pub fn how_scored(&self) -> HowScored {
        let q = &self.questionnaire;
        let scale = &q.scale;
        let scored: Vec<_> = q.questions().filter(|q| q.kind.is_scored()).collect();
        let on_scale = scored.iter().any(|q| q.kind == Kind::Scale);
        let other = scored.iter().any(|q| q.kind != Kind::Scale);
        let mut answers = match (on_scale, other) {
            (true, true) => format!(
                "Each answer counts as the share of its question's points it reached: on the \
                 {} to {} scale, {} is none and {} is all of them; a choice, a yes or no or a \
                 number earns the points the method sets for it.",
                scale.min, scale.max, scale.min, scale.max
            ),
            (true, false) => format!(
                "Each answer is a number on the {} to {} scale, from {} (not at all) to {} \
                 (fully).",
                scale.min, scale.max, scale.min, scale.max
            ),
            _ => "Each answer earns the points the method sets for it, and counts as the share \
                  of its question's points it reached."
                .to_owned(),
        };
        if scored.iter().any(|q| q.weight != scored[0].weight) {
            answers.push_str(" Some questions count more than others.");
        }
        answers.push_str(
            " A question you skipped is left out, not counted as zero; text answers are read, \
             not scored.",
        );
        let category = match self.scoring.mode {
            CategoryMode::Mean => format!(
                "A category's score is the mean of its answers on the {} to {} scale, to one \
                 decimal.",
                scale.min, scale.max
            ),
            CategoryMode::Percent => {
                "A category's score, from 0 to 100, is the share of its points you reached."
                    .to_owned()
            }
        };
        let category = format!(
            "{category} A category with no answers is not assessed and does not count in the \
             overall score."
        );
        let least = q.categories.iter().map(|c| c.weight).min().unwrap_or(1);
        let heavier: Vec<String> = q
            .categories
            .iter()
            .filter(|c| c.weight != least)
            .map(|c| format!("{} counts {}", c.title, times(c.weight, least)))
            .collect();
        let weights = if heavier.is_empty() {
            "each category counts the same".to_owned()
        } else {
            format!("{}; the others count once", heavier.join(", "))
        };
        let overall = format!(
            "The overall score, from 0 to 100, is the mean of the assessed categories, each \
             counting as the share of its points it reached: {weights}. It places the company \
             at one of these levels."
        );
        let mut paragraphs = vec![answers, category, overall];
        let min = self.benchmarks.min_peers;
        let mut peers = format!(
            "Companies like yours are the companies we assessed of the same industry and size \
             when there are at least {min} of them, else of the same industry, else all of \
             them. Only their median and middle half are shown, never one company's answers."
        );
        if self.benchmarks.baseline.is_some() {
            peers.push_str(" Until enough were assessed, our reference figures stand in.");
        }
        paragraphs.push(peers);
        HowScored {
            paragraphs,
            levels: self.scoring.levels.clone(),
        }
    }
}

/// "twice", "3 times", "1.5 times" as much as `least`.
fn times(weight: u32, least: u32) -> String {
    if weight == 2 * least {
        "twice".to_owned()
    } else if weight.is_multiple_of(least) {
        format!("{} times", weight / least)
    } else {
        format!("{:.1} times", f64::from(weight) / f64::from(least))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_method_is_told_as_a_mean_of_equal_pillars() {
        let how = Method::builtin().how_scored();
        let text = how.paragraphs.join("\n");
        assert!(text.contains("a number on the 1 to 5 scale"), "{text}");
        assert!(
            text.contains("the mean of its answers on the 1 to 5 scale"),
            "{text}"
        );
        assert!(text.contains("each category counts the same"), "{text}");
        assert!(text.contains("at least 10 of them"), "{text}");
        assert_eq!(how.levels.len(), 4);
        assert_eq!(how.levels[0].name, "Pacesetter");
    }

    #[test]
    fn heavier_categories_and_points_are_named() {
        let mut method = Method::builtin();
        method.questionnaire.categories[1].weight = 2;
        method.questionnaire.categories[2].weight = 3;
        method.scoring.mode = CategoryMode::Percent;
        let text = method.how_scored().paragraphs.join("\n");
        let second = &method.questionnaire.categories[1].title;
        let third = &method.questionnaire.categories[2].title;
        assert!(
            text.contains(&format!(
                "{second} counts twice, {third} counts 3 times; the others count once"
            )),
            "{text}"
        );
        assert!(
            text.contains("from 0 to 100, is the share of its points"),
            "{text}"
        );
        assert_eq!(times(3, 2), "1.5 times");
    }
}
