//! The checks of method.toml's parts: the levels cover 0-100 once, the tiers can be sold and
//! prompted, and each question is well formed for its type.

use std::collections::{BTreeSet, HashMap, HashSet};

use toml::Spanned;

use super::super::questionnaire::Category;
use super::super::questionnaire::{Band, Choice, Condition, Kind, Question, Scale, Test};
use super::super::scoring::Level;
use super::super::scoring::{Scoring, Spread};
use super::super::{Baseline, Benchmarks, DEFAULT_MIN_PEERS, Files, Problem, Section, TierDef};
use super::{
    FILE, ID_RULE, RawBenchmarks, RawKind, RawLevel, RawQuestion, RawTier, Report, valid_id,
};
use crate::order::Tier;

pub(super) fn check_weight(
    weight: Option<i64>,
    span: &std::ops::Range<usize>,
    report: &mut Report<'_>,
) -> u32 {
    match weight {
        None => 1,
        Some(w @ 1..=100) => u32::try_from(w).expect("1 to 100 fits"),
        Some(w) => {
            report.at(
                span,
                format!("weight {w} must be a whole number from 1 to 100"),
            );
            1
        }
    }
}

pub(super) fn check_levels(raw: Vec<Spanned<RawLevel>>, report: &mut Report<'_>) -> Vec<Level> {
    let mut levels: Vec<(std::ops::Range<usize>, Level)> = Vec::new();
    let mut names = HashSet::new();
    for level in raw {
        let span = level.span();
        let level = level.into_inner();
        if !(0..=100).contains(&level.from)
            || !(0..=100).contains(&level.to)
            || level.from > level.to
        {
            report.at(
                &span,
                format!(
                    "level `{}` runs from {} to {}: both within 0-100, `from` no more than `to`",
                    level.name, level.from, level.to
                ),
            );
            continue;
        }
        if !names.insert(level.name.clone()) {
            report.at(&span, format!("level `{}` appears twice", level.name));
        }
        levels.push((
            span,
            Level {
                name: level.name,
                from: u8::try_from(level.from).expect("0-100"),
                to: u8::try_from(level.to).expect("0-100"),
                description: level.description,
            },
        ));
    }
    if levels.is_empty() {
        report.problems.push(Problem::new(
            FILE,
            None,
            "there are no [[levels]]: add at least one",
        ));
        return Vec::new();
    }
    let mut by_start: Vec<&(std::ops::Range<usize>, Level)> = levels.iter().collect();
    by_start.sort_by_key(|(_, level)| level.from);
    let mut next = 0u16;
    let mut problems = Vec::new();
    for (span, level) in &by_start {
        let from = u16::from(level.from);
        if from > next {
            problems.push((
                span.clone(),
                format!(
                    "no level covers the scores {next} to {}: stretch a level's `from` or `to` \
                     over them",
                    from - 1
                ),
            ));
        } else if from < next {
            problems.push((
                span.clone(),
                format!(
                    "level `{}` overlaps the level below it at {} to {}",
                    level.name,
                    from,
                    next - 1
                ),
            ));
        }
        next = next.max(u16::from(level.to) + 1);
    }
    if next <= 100 {
        let (span, _) = by_start.last().expect("not empty");
        problems.push((
            span.clone(),
            format!("no level covers the scores {next} to 100: stretch the top level's `to`"),
        ));
    }
    for (span, message) in problems {
        report.at(&span, message);
    }
    // Highest first, as people read them.
    let mut levels: Vec<Level> = levels.into_iter().map(|(_, level)| level).collect();
    levels.sort_by_key(|level| std::cmp::Reverse(level.from));
    levels
}

pub(super) fn check_tiers(
    raw: Vec<Spanned<RawTier>>,
    files: &Files,
    report: &mut Report<'_>,
) -> Vec<TierDef> {
    let mut tiers: Vec<TierDef> = Vec::new();
    if raw.is_empty() {
        report.problems.push(Problem::new(
            FILE,
            None,
            "there are no [[tiers]]: add at least one",
        ));
    }
    for tier in raw {
        let span = tier.span();
        let tier = tier.into_inner();
        let Ok(id) = tier.id.parse::<Tier>() else {
            report.at(&span, format!("tier id `{}`: {ID_RULE}", tier.id));
            continue;
        };
        if tiers.iter().any(|t| t.id == id) {
            report.at(&span, format!("tier `{id}` appears twice"));
        }
        if !(50..=99_999_999).contains(&tier.price) {
            report.at(
                &span,
                format!(
                    "tier `{id}` costs {}: a price is in the currency's smallest unit, from 50 \
                     (Stripe's least charge) to 99999999",
                    tier.price
                ),
            );
        }
        let unique: BTreeSet<Section> = tier.sections.iter().copied().collect();
        if unique.len() != tier.sections.len() {
            report.at(&span, format!("tier `{id}` names a section twice"));
        }
        let prompt = format!("prompts/{id}.hbs");
        if !files.contains_key(&prompt) {
            report.at(
                &span,
                format!("tier `{id}` has no {prompt}: write its instructions for the model there"),
            );
        }
        tiers.push(TierDef {
            id,
            name: tier.name,
            description: tier.description,
            price: tier.price,
            sections: unique.into_iter().collect(),
            layout: tier.layout,
        });
    }
    tiers
}

pub(super) fn check_question(
    raw: Spanned<RawQuestion>,
    default_kind: RawKind,
    scale: &Scale,
    seen: &mut HashSet<String>,
    earlier: &HashMap<String, Kind>,
    report: &mut Report<'_>,
) -> Option<Question> {
    let span = raw.span();
    let mut q = raw.into_inner();
    let kind = q.kind.unwrap_or(default_kind);
    q.kind = Some(kind);
    let mut fail = |message: String| report.at(&span, message);
    if !valid_id(&q.id) {
        fail(format!("question id `{}`: {ID_RULE}", q.id));
    } else if !seen.insert(q.id.clone()) {
        fail(format!(
            "question id `{}` is already used (by another question, a category's note or the \
             company profile)",
            q.id
        ));
    }
    if q.text.trim().is_empty() {
        fail(format!("question `{}` has no text", q.id));
    }
    let allowed: &[&str] = match kind {
        RawKind::Scale | RawKind::Text => &[],
        RawKind::Single | RawKind::Multiple => &["options"],
        RawKind::YesNo => &["yes", "no"],
        RawKind::Number => &["bands", "min", "max", "unit"],
    };
    let given = [
        ("options", q.options.is_some()),
        ("yes", q.yes.is_some()),
        ("no", q.no.is_some()),
        ("bands", q.bands.is_some()),
        ("min", q.min.is_some()),
        ("max", q.max.is_some()),
        ("unit", q.unit.is_some()),
    ];
    for (key, present) in given {
        if present && !allowed.contains(&key) {
            fail(format!(
                "question `{}`: `{key}` does not belong to a question of this type",
                q.id
            ));
        }
    }
    let kind = match kind {
        RawKind::Scale => Kind::Scale,
        RawKind::Text => Kind::Text,
        RawKind::Single | RawKind::Multiple => {
            let options = q.options.unwrap_or_default();
            let mut ids = HashSet::new();
            for option in &options {
                if !valid_id(&option.id) {
                    fail(format!(
                        "question `{}`: option id `{}`: {ID_RULE}",
                        q.id, option.id
                    ));
                } else if !ids.insert(option.id.as_str()) {
                    fail(format!(
                        "question `{}`: option `{}` appears twice",
                        q.id, option.id
                    ));
                }
            }
            if options.len() < 2 {
                fail(format!("question `{}` needs at least two options", q.id));
            }
            let choices: Vec<Choice> = options
                .into_iter()
                .map(|o| Choice {
                    id: o.id,
                    label: o.label,
                    points: o.points,
                })
                .collect();
            if q.kind == Some(RawKind::Single) {
                Kind::Single(choices)
            } else {
                Kind::Multiple(choices)
            }
        }
        RawKind::YesNo => Kind::YesNo {
            yes: q.yes.unwrap_or(1),
            no: q.no.unwrap_or(0),
        },
        RawKind::Number => {
            let bands: Vec<Band> = q
                .bands
                .unwrap_or_default()
                .into_iter()
                .map(|b| Band {
                    below: b.below,
                    points: b.points,
                })
                .collect();
            let open = bands.iter().filter(|b| b.below.is_none()).count();
            let ascending = bands.windows(2).all(|w| {
                matches!((w[0].below, w[1].below), (Some(a), Some(b)) if a < b)
                    || w[1].below.is_none()
            });
            if bands.is_empty()
                || open != 1
                || bands.last().is_some_and(|b| b.below.is_some())
                || !ascending
            {
                fail(format!(
                    "question `{}`: bands go up by `below`, and the last one has no `below` \
                     (it takes every larger number)",
                    q.id
                ));
            }
            if let (Some(min), Some(max)) = (q.min, q.max)
                && min >= max
            {
                fail(format!("question `{}`: `min` must be below `max`", q.id));
            }
            Kind::Number {
                bands,
                min: q.min,
                max: q.max,
                unit: q.unit,
            }
        }
    };
    if let Some((low, high)) = kind.point_range(scale)
        && low == high
    {
        fail(format!(
            "question `{}` gives {low} points whatever the answer: give its answers different \
             points, or make it a text question",
            q.id
        ));
    }
    let weight = if kind.is_scored() {
        match q.weight {
            None => 1,
            Some(w @ 1..=100) => u32::try_from(w).expect("1 to 100 fits"),
            Some(w) => {
                fail(format!(
                    "question `{}`: weight {w} must be from 1 to 100",
                    q.id
                ));
                1
            }
        }
    } else {
        if q.weight.is_some() {
            fail(format!(
                "question `{}` is not scored, so it has no weight",
                q.id
            ));
        }
        0
    };
    let show_when = q.show_when.and_then(|c| {
        let Some(target) = earlier.get(&c.question) else {
            fail(format!(
                "question `{}` shows when `{}` is answered, but no earlier question has that id",
                q.id, c.question
            ));
            return None;
        };
        let tests = [
            c.equals.clone().map(Test::Equals),
            c.any_of.clone().map(Test::AnyOf),
            c.at_least.map(Test::AtLeast),
            c.at_most.map(Test::AtMost),
        ];
        let mut given = tests.into_iter().flatten();
        let (Some(test), None) = (given.next(), given.next()) else {
            fail(format!(
                "question `{}`: show_when takes one of equals, any_of, at_least or at_most",
                q.id
            ));
            return None;
        };
        match target.condition_problem(&test) {
            Some(problem) => {
                fail(format!("question `{}`: show_when: {problem}", q.id));
                None
            }
            None => Some(Condition {
                question: c.question,
                test,
            }),
        }
    });
    Some(Question {
        id: q.id,
        text: q.text,
        hint: q.hint,
        kind,
        required: q.required,
        weight,
        show_when,
    })
}

/// `[benchmarks]`: how few companies a comparison may rest on, and the operator's reference
/// figures for a business with too few assessments yet, each within its category's scale.
pub(super) fn check_benchmarks(
    raw: Option<Spanned<RawBenchmarks>>,
    categories: &[Category],
    scoring: &Scoring,
    scale: &Scale,
    report: &mut Report<'_>,
) -> Benchmarks {
    let Some(raw) = raw else {
        return Benchmarks {
            min_peers: DEFAULT_MIN_PEERS,
            baseline: None,
        };
    };
    let span = raw.span();
    let raw = raw.into_inner();
    let min_peers = match raw.min_peers {
        None => DEFAULT_MIN_PEERS,
        Some(n @ 5..=1000) => usize::try_from(n).expect("5 to 1000 fits"),
        Some(n) => {
            report.at(
                &span,
                format!(
                    "[benchmarks] min_peers {n} must be from 5 to 1000: fewer companies than \
                     that would let a report give away one customer's scores"
                ),
            );
            DEFAULT_MIN_PEERS
        }
    };
    let mut spread = |what: &str, [p25, median, p75]: [f64; 3], top: f64| {
        let rising = p25 <= median && median <= p75;
        if !(rising && p25 >= 0.0 && p75 <= top) {
            report.at(
                &span,
                format!(
                    "[benchmarks.baseline] {what} is [p25, median, p75]: rising, from 0 to {top}"
                ),
            );
        }
        Spread { p25, median, p75 }
    };
    let mut unknown = Vec::new();
    let baseline = raw.baseline.map(|baseline| {
        let overall = baseline.overall.map(|o| spread("overall", o, 100.0));
        let mut checked = std::collections::BTreeMap::new();
        for (id, figures) in baseline.categories {
            match categories.iter().find(|c| c.id == id) {
                Some(category) => {
                    let top = scoring.out_of(category, scale);
                    checked.insert(id.clone(), spread(&id, figures, top));
                }
                None => unknown.push(id),
            }
        }
        Baseline {
            overall,
            categories: checked,
        }
    });
    for id in unknown {
        report.at(
            &span,
            format!("[benchmarks.baseline] names a category `{id}` the method does not have"),
        );
    }
    Benchmarks {
        min_peers,
        baseline,
    }
}
