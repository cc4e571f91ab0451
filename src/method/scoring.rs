//! The deterministic scores: computed by compass from the answers and the method, never by the
//! model, in exact fractions so that a rule computed by hand gives the same number.
//!
//! Each scored answer reaches a share of its question's points: (points - fewest) / (most -
//! fewest). A category reaches the weighted mean of its answered questions' shares, and the
//! overall score is the weighted mean of the assessed categories' shares, as 0-100. A category's
//! score as shown is that share as 0-100 (`percent`), or the weighted mean of its scale answers
//! with one decimal (`mean`, the built-in method's 1.0-5.0).

use num_rational::Ratio;
use serde::{Deserialize, Serialize};

use super::questionnaire::{Category, Intake, Kind, Questionnaire, Scale};

type Fraction = Ratio<i128>;

/// How a category's score is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoryMode {
    /// The weighted mean of its scale answers, one decimal.
    #[default]
    Mean,
    /// The share of its points reached, 0-100.
    Percent,
}

/// A readiness level: a name for a range of overall scores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Level {
    pub name: String,
    pub from: u8,
    pub to: u8,
    pub description: String,
}

/// How a method scores.
#[derive(Clone, Debug, Serialize)]
pub struct Scoring {
    pub mode: CategoryMode,
    /// Highest first; together they cover 0-100.
    pub levels: Vec<Level>,
}

/// The lower quartile, median and upper quartile of some scores.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub p25: f64,
    pub median: f64,
    pub p75: f64,
}

/// A category's score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CategoryScore {
    pub id: String,
    pub title: String,
    /// As shown (1.0-5.0 with one decimal, or 0-100); `None` when nothing was answered.
    pub score: Option<f64>,
    /// What `score` is out of: the scale's top, or 100. Reports from before methods were files
    /// were all out of 5.
    #[serde(default = "five")]
    pub out_of: f64,
}

fn five() -> f64 {
    5.0
}

/// The scores of a submission.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// In the method's order. Reports from before methods were files call them pillars.
    #[serde(alias = "pillars")]
    pub categories: Vec<CategoryScore>,
    /// 0-100; `None` when no category was assessed.
    pub overall: Option<u8>,
    /// The level's name.
    pub level: Option<String>,
}

impl CategoryScore {
    /// The score as people read it: `3.7` or `72`, or `None`.
    pub fn shown(&self) -> Option<String> {
        self.score.map(|s| {
            if self.out_of == 100.0 {
                format!("{s:.0}")
            } else {
                format!("{s:.1}")
            }
        })
    }

    /// How far along its axis the chart draws it, 0.0-1.0.
    pub fn reach(&self) -> f64 {
        self.score
            .map_or(0.0, |s| (s / self.out_of).clamp(0.0, 1.0))
    }
}

impl Scoring {
    /// The level of an overall score.
    pub fn level_of(&self, overall: u8) -> Option<&Level> {
        self.levels
            .iter()
            .find(|l| (l.from..=l.to).contains(&overall))
    }

    /// What `category`'s score is out of: the scale's top for a mean of scale answers, else 100.
    pub fn out_of(&self, category: &Category, scale: &Scale) -> f64 {
        let uses_scale = category.questions.iter().any(|q| q.kind == Kind::Scale);
        match self.mode {
            CategoryMode::Mean if uses_scale => scale.max as f64,
            _ => 100.0,
        }
    }

    /// The scores of `intake` under `questionnaire`.
    pub fn scores(&self, questionnaire: &Questionnaire, intake: &Intake) -> Scores {
        let mut assessed: Vec<(Fraction, i128)> = Vec::new();
        let categories = questionnaire
            .categories
            .iter()
            .map(|category| {
                let mut share = Fraction::from_integer(0);
                let mut points = Fraction::from_integer(0);
                let mut weights = 0i128;
                for question in &category.questions {
                    let Some(answer) = intake.answers.get(&question.id) else {
                        continue;
                    };
                    let (Some(got), Some((low, high))) = (
                        question.kind.points(answer),
                        question.kind.point_range(&questionnaire.scale),
                    ) else {
                        continue;
                    };
                    let weight = i128::from(question.weight);
                    share += Fraction::new(i128::from(got - low), i128::from(high - low)) * weight;
                    points += Fraction::from_integer(i128::from(got) * weight);
                    weights += weight;
                }
                let score = (weights > 0).then(|| {
                    let share = share / weights;
                    assessed.push((share, i128::from(category.weight)));
                    match self.mode {
                        CategoryMode::Percent => round(share * 100) as f64,
                        // Tenths, exactly rounded, then shown as a decimal.
                        CategoryMode::Mean => round(points / weights * 10) as f64 / 10.0,
                    }
                });
                CategoryScore {
                    id: category.id.clone(),
                    title: category.title.clone(),
                    score,
                    out_of: self.out_of(category, &questionnaire.scale),
                }
            })
            .collect();
        let overall = (!assessed.is_empty()).then(|| {
            let total: i128 = assessed.iter().map(|(_, w)| w).sum();
            let sum = assessed
                .iter()
                .fold(Fraction::from_integer(0), |acc, (share, w)| {
                    acc + share * *w
                });
            u8::try_from(round(sum / total * 100).clamp(0, 100)).expect("0-100 fits")
        });
        Scores {
            categories,
            overall,
            level: overall
                .and_then(|o| self.level_of(o))
                .map(|l| l.name.clone()),
        }
    }
}

/// Rounds half up (the scores are never negative).
fn round(x: Fraction) -> i128 {
    (x + Fraction::new(1, 2)).floor().to_integer()
}
