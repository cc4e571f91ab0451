//! Where a company stands against companies like it: the quartiles of the scores of the
//! operator's own completed orders, computed by compass and handed to the model as data.
//!
//! Only aggregates, and only over at least `min` companies, so that no one customer's answers
//! can be read back from a report: the peer group is the same industry and size, else the same
//! industry, else every company, and none when even that is too few. A category is compared
//! only with peers scored on the same scale (its `out_of`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::db::PeerRow as PeerScores;
pub use crate::method::Spread;
use crate::method::{Baseline, Intake, Method, Scores};

/// Which companies a comparison rests on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Group {
    /// The same industry and size band.
    IndustryAndSize { industry: String, employees: String },
    /// The same industry, any size.
    Industry { industry: String },
    /// Every company assessed so far.
    All,
    /// Too few companies were assessed: the operator's reference figures (`[benchmarks]
    /// baseline`) stand in.
    Baseline,
}

/// The comparison a report shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Peers {
    pub group: Group,
    /// How many companies it rests on.
    pub count: usize,
    pub overall: Option<Spread>,
    /// By category id, for the categories scored on the same scale as this company's.
    pub categories: BTreeMap<String, Spread>,
}

impl Group {
    /// The group as a report names it: "Logistics, 11-50 employees".
    pub fn describe(&self) -> String {
        match self {
            Group::IndustryAndSize {
                industry,
                employees,
            } => format!("{industry}, {employees} employees"),
            Group::Industry { industry } => industry.clone(),
            Group::All => "all companies assessed so far".to_owned(),
            Group::Baseline => "reference figures".to_owned(),
        }
    }
}

impl Spread {
    /// "median 2.8, middle half 2.3 to 3.4", with `digits` decimals.
    pub fn describe(&self, digits: usize) -> String {
        format!(
            "median {:.digits$}, middle half {:.digits$} to {:.digits$}",
            self.median, self.p25, self.p75
        )
    }
}

impl Spread {
    /// The spread and the company's `own` score on a bar from 0 to `out_of`, in hundredths of
    /// its length, for the chart beside each score: the middle half from `from` for `width`,
    /// the median, and the company's own mark (`null` when it has no score there).
    pub fn bar(&self, own: Option<f64>, out_of: f64) -> serde_json::Value {
        let at = |x: f64| ((x / out_of).clamp(0.0, 1.0) * 1000.0).round() / 10.0;
        serde_json::json!({
            "from": at(self.p25),
            "width": ((at(self.p75) - at(self.p25)) * 10.0).round() / 10.0,
            "median": at(self.median),
            "own": own.map(at),
        })
    }
}

impl Peers {
    /// What the report shows: the group and count, and each spread in words, by category id
    /// (`overall` for the overall score).
    pub fn shown(&self, scores: &Scores) -> serde_json::Value {
        let mut categories = serde_json::Map::new();
        let mut bars = serde_json::Map::new();
        let mut medians = serde_json::Map::new();
        for category in &scores.categories {
            if let Some(spread) = self.categories.get(&category.id) {
                let digits = usize::from(category.out_of != 100.0);
                categories.insert(category.id.clone(), spread.describe(digits).into());
                medians.insert(
                    category.id.clone(),
                    format!("{:.digits$}", spread.median).into(),
                );
                bars.insert(
                    category.id.clone(),
                    spread.bar(category.score, category.out_of),
                );
            }
        }
        let heading = match self.group {
            Group::Baseline => format!(
                "Too few companies have been assessed to compare with yet ({}); reference figures",
                self.count
            ),
            _ => format!(
                "Companies like yours ({}, {} assessed)",
                self.group.describe(),
                self.count
            ),
        };
        serde_json::json!({
            "heading": heading,
            "group": self.group.describe(),
            "count": self.count,
            "baseline": self.group == Group::Baseline,
            "overall": self.overall.map(|s| s.describe(0)),
            "categories": categories,
            "bars": bars,
            "medians": medians,
        })
    }
}

/// A comparison for `scores` made up for `check::render`, so that every template renders its
/// peers' part too: each spread around the company's own score, and none for the first
/// category (as when too few companies answered it).
pub fn sample(scores: &Scores) -> Peers {
    let around = |score: f64, step: f64, top: f64| Spread {
        p25: (score - step).max(0.0),
        median: score,
        p75: (score + step).min(top),
    };
    Peers {
        group: Group::All,
        count: DEFAULT_SAMPLE_COUNT,
        overall: scores.overall.map(|o| around(f64::from(o), 10.0, 100.0)),
        categories: scores
            .categories
            .iter()
            .skip(1)
            .filter_map(|c| Some((c.id.clone(), around(c.score?, c.out_of / 10.0, c.out_of))))
            .collect(),
    }
}

const DEFAULT_SAMPLE_COUNT: usize = 24;

/// The comparison for `intake`'s company among the kept reports `all` (its own left out
/// already), under `method`'s rule.
pub fn for_intake(
    all: &[PeerScores],
    intake: &Intake,
    scores: &Scores,
    method: &Method,
) -> Option<Peers> {
    compare(
        all,
        &intake.industry,
        &intake.employees,
        scores,
        method.benchmarks.min_peers,
    )
    .or_else(|| {
        let baseline = method.benchmarks.baseline.as_ref()?;
        Some(from_baseline(baseline, scores, all.len()))
    })
}

/// The operator's reference figures, for a business with only `count` companies assessed.
fn from_baseline(baseline: &Baseline, scores: &Scores, count: usize) -> Peers {
    Peers {
        group: Group::Baseline,
        count,
        overall: baseline.overall,
        categories: scores
            .categories
            .iter()
            .filter_map(|c| Some((c.id.clone(), *baseline.categories.get(&c.id)?)))
            .collect(),
    }
}

/// The comparison for a company in `industry` of `employees` with `scores`, among `all`
/// (other companies' orders), in the narrowest group of at least `min`; `None` when even all
/// of them are fewer.
pub fn compare(
    all: &[PeerScores],
    industry: &str,
    employees: &str,
    scores: &Scores,
    min: usize,
) -> Option<Peers> {
    let groups = [
        (
            Group::IndustryAndSize {
                industry: industry.to_owned(),
                employees: employees.to_owned(),
            },
            &(|p: &PeerScores| p.industry == industry && p.employees == employees)
                as &dyn Fn(&PeerScores) -> bool,
        ),
        (
            Group::Industry {
                industry: industry.to_owned(),
            },
            &|p: &PeerScores| p.industry == industry,
        ),
        (Group::All, &|_: &PeerScores| true),
    ];
    let (group, members) = groups.into_iter().find_map(|(group, member)| {
        let members: Vec<&PeerScores> = all.iter().filter(|p| member(p)).collect();
        (members.len() >= min.max(1)).then_some((group, members))
    })?;
    let overall: Vec<f64> = members
        .iter()
        .filter_map(|p| p.scores.overall.map(f64::from))
        .collect();
    let categories = scores
        .categories
        .iter()
        .filter_map(|own| {
            let theirs: Vec<f64> = members
                .iter()
                .filter_map(|p| {
                    p.scores
                        .categories
                        .iter()
                        .find(|c| c.id == own.id && c.out_of == own.out_of)
                        .and_then(|c| c.score)
                })
                .collect();
            // Each category rests on at least `min` companies too.
            (theirs.len() >= min.max(1)).then(|| (own.id.clone(), spread(theirs)))
        })
        .collect();
    Some(Peers {
        group,
        count: members.len(),
        overall: (overall.len() >= min.max(1)).then(|| spread(overall)),
        categories,
    })
}

/// The quartiles of `values` (not empty), by linear interpolation between closest ranks (the
/// method spreadsheets and numpy use by default), rounded to one decimal.
fn spread(mut values: Vec<f64>) -> Spread {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let rank = q * (values.len() - 1) as f64;
        let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
        let value = values[low] + (values[high] - values[low]) * (rank - low as f64);
        (value * 10.0).round() / 10.0
    };
    Spread {
        p25: at(0.25),
        median: at(0.5),
        p75: at(0.75),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::CategoryScore;

    fn scores(overall: u8, strategy: f64) -> Scores {
        Scores {
            categories: vec![CategoryScore {
                id: "strategy".into(),
                title: "Strategy".into(),
                score: Some(strategy),
                out_of: 5.0,
            }],
            overall: Some(overall),
            level: None,
        }
    }

    fn peer(industry: &str, employees: &str, overall: u8, strategy: f64) -> PeerScores {
        PeerScores {
            industry: industry.into(),
            employees: employees.into(),
            scores: scores(overall, strategy),
        }
    }

    #[test]
    fn quartiles_interpolate_between_ranks() {
        let s = spread(vec![40.0, 10.0, 30.0, 20.0]);
        // Ranks 0..3: p25 at 0.75 (10 + 0.75 * 10), median at 1.5, p75 at 2.25.
        assert_eq!((s.p25, s.median, s.p75), (17.5, 25.0, 32.5));
        let one = spread(vec![7.0]);
        assert_eq!((one.p25, one.median, one.p75), (7.0, 7.0, 7.0));
    }

    #[test]
    fn the_narrowest_group_with_enough_companies_is_used() {
        let mut all: Vec<PeerScores> = (0..10)
            .map(|i| peer("Logistics", "11-50", 40 + i, 2.0 + f64::from(i) / 10.0))
            .collect();
        all.extend((0..5).map(|i| peer("Logistics", "51-250", 70 + i, 4.0)));
        all.extend((0..30).map(|i| peer("Retail", "11-50", 20 + i, 1.5)));
        let own = scores(50, 3.0);
        let exact = compare(&all, "Logistics", "11-50", &own, 10).expect("enough");
        assert_eq!(exact.count, 10);
        assert!(matches!(exact.group, Group::IndustryAndSize { .. }));
        // 40..=49: p25 42.25 -> 42.3, median 44.5, p75 46.75 -> 46.8.
        let overall = exact.overall.expect("overall");
        assert_eq!(
            (overall.p25, overall.median, overall.p75),
            (42.3, 44.5, 46.8)
        );

        let industry = compare(&all, "Logistics", "51-250", &own, 10).expect("enough");
        assert_eq!(
            (industry.group, industry.count),
            (
                Group::Industry {
                    industry: "Logistics".into()
                },
                15
            )
        );
        let everyone = compare(&all, "Healthcare", "1-10", &own, 10).expect("enough");
        assert_eq!((everyone.group, everyone.count), (Group::All, 45));
        assert!(compare(&all, "Healthcare", "1-10", &own, 46).is_none());
    }

    #[test]
    fn with_too_few_companies_the_reference_figures_stand_in_and_say_so() {
        let all: Vec<PeerScores> = (0..5).map(|_| peer("X", "1", 50, 3.0)).collect();
        let own = scores(50, 3.0);
        assert!(compare(&all, "X", "1", &own, 10).is_none());
        let baseline = Baseline {
            overall: Some(Spread {
                p25: 30.0,
                median: 45.0,
                p75: 60.0,
            }),
            categories: BTreeMap::from([(
                "strategy".to_owned(),
                Spread {
                    p25: 2.0,
                    median: 2.5,
                    p75: 3.5,
                },
            )]),
        };
        let peers = from_baseline(&baseline, &own, all.len());
        assert_eq!(peers.group, Group::Baseline);
        let shown = peers.shown(&own);
        assert_eq!(
            shown["heading"],
            "Too few companies have been assessed to compare with yet (5); reference figures"
        );
        assert_eq!(shown["overall"], "median 45, middle half 30 to 60");
        assert_eq!(
            shown["categories"]["strategy"],
            "median 2.5, middle half 2.0 to 3.5"
        );
    }

    #[test]
    fn a_category_is_compared_only_on_the_same_scale_and_with_enough_companies() {
        let mut all: Vec<PeerScores> = (0..10).map(|_| peer("X", "1", 50, 3.0)).collect();
        for p in all.iter_mut().take(5) {
            p.scores.categories[0].out_of = 100.0;
        }
        let peers = compare(&all, "X", "1", &scores(50, 3.0), 10).expect("enough");
        assert!(peers.overall.is_some());
        assert!(
            peers.categories.is_empty(),
            "only 5 on the 1-5 scale: {peers:?}"
        );
        let peers = compare(&all, "X", "1", &scores(50, 3.0), 5).expect("enough");
        assert_eq!(peers.categories["strategy"].median, 3.0);
    }
}
