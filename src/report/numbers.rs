//! Numbers only from compass: the model's prose may repeat the computed scores and level, and
//! may state no other.
//!
//! The scores come from the answers (`method::scoring`); a report whose summary says
//! "100/100, a Pacesetter" next to a computed 46 (Follower) would contradict itself in front of
//! the customer. Every sentence of every text field is read for an overall score (`N/100`,
//! `N out of 100`, "overall score of N"), a category score (`N/5`, `N out of 5`, or `N/100` for a
//! method that scores categories 0-100, held to the categories the sentence names) and a level
//! of the method by name (as the method writes it); each one that differs from the computed
//! value is a problem that quotes the sentence, for the repair round.

use std::sync::LazyLock;

use regex::Regex;

use super::{Figures, Written};
use crate::method::Scores;

static OVERALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(\d{1,3}(?:\.\d+)?)\s*(?:/|out of)\s*100\b|\b(?:overall|readiness)\s+score\s+(?:of|is|at|was|:)?\s*(\d{1,3}(?:\.\d+)?)\b(?:\s*%)?(?:\s*(?:/|out of)\s*100)?",
    )
    .expect("a valid pattern")
});

/// The patterns of one method's numbers.
struct Patterns {
    /// A category score out of the scale's top (`3.5/5`), when categories are scored so.
    category: Option<(Regex, String)>,
    /// The method's level names, as it writes them ("a fast follower" is not the level
    /// Follower), plural too.
    level: Option<Regex>,
    /// The peers' quartiles, which the words may repeat too.
    peers: Vec<f64>,
}

/// Every statement in `written` of a score or level other than the computed ones, for a
/// method whose levels are called `levels`.
pub fn problems(written: &Written, figures: Figures<'_>, levels: &[&str]) -> Vec<String> {
    let scores = figures.scores;
    let out_of = scores
        .categories
        .iter()
        .map(|c| c.out_of)
        .find(|out_of| *out_of != 100.0);
    let patterns = Patterns {
        category: out_of.map(|out_of| {
            let top = format!("{out_of:.0}");
            let pattern = format!(r"(?i)\b(\d{{1,2}}(?:\.\d+)?)\s*(?:/|out of)\s*{top}\b");
            (Regex::new(&pattern).expect("a valid pattern"), top)
        }),
        peers: figures
            .peers
            .map(|p| {
                p.overall
                    .iter()
                    .chain(p.categories.values())
                    .flat_map(|s| [s.p25, s.median, s.p75])
                    .collect()
            })
            .unwrap_or_default(),
        level: (!levels.is_empty()).then(|| {
            let names: Vec<String> = levels.iter().map(|l| regex::escape(l)).collect();
            Regex::new(&format!(r"\b({})s?\b", names.join("|"))).expect("a valid pattern")
        }),
    };
    let mut problems = Vec::new();
    for (field, text) in written.texts() {
        for sentence in sentences(text) {
            check_sentence(&field, sentence, scores, &patterns, &mut problems);
        }
    }
    problems
}

fn check_sentence(
    field: &str,
    sentence: &str,
    scores: &Scores,
    patterns: &Patterns,
    problems: &mut Vec<String>,
) {
    let overall = match (scores.overall, &scores.level) {
        (Some(overall), Some(level)) => format!("{overall}/100 ({level})"),
        _ => "not assessed".to_owned(),
    };
    let named: Vec<_> = scores
        .categories
        .iter()
        .filter(|p| contains_word(sentence, &p.title))
        .collect();
    let candidates = if named.is_empty() {
        scores.categories.iter().collect()
    } else {
        named.clone()
    };
    for found in OVERALL.captures_iter(sentence) {
        let stated = found
            .get(1)
            .or_else(|| found.get(2))
            .map_or("", |m| m.as_str());
        let value = stated.parse::<f64>().ok();
        let same = scores
            .overall
            .is_some_and(|o| value.is_some_and(|s| s == f64::from(o)))
            // A category scored 0-100, stated beside its name.
            || named.iter().any(|c| {
                c.out_of == 100.0 && c.score.is_some_and(|s| value.is_some_and(|v| v == s))
            })
            || value.is_some_and(|v| patterns.peers.contains(&v));
        if !same {
            problems.push(format!(
                "{field}: the sentence \"{sentence}\" states an overall score of {stated}, but \
                 the computed overall score is {overall}; state only the computed scores"
            ));
        }
    }
    let Some((category, top)) = &patterns.category else {
        return check_level(field, sentence, scores, patterns, problems);
    };
    for found in category.captures_iter(sentence) {
        let stated = &found[1];
        let value = stated.parse::<f64>().unwrap_or(f64::NAN);
        let same = candidates
            .iter()
            .any(|p| p.score.is_some_and(|s| (s - value).abs() < 0.05))
            || patterns.peers.iter().any(|p| (p - value).abs() < 0.05);
        if !same {
            let computed: Vec<String> = candidates
                .iter()
                .map(|p| match p.shown() {
                    Some(s) => format!("{} {s}/{top}", p.title),
                    None => format!("{} not assessed", p.title),
                })
                .collect();
            problems.push(format!(
                "{field}: the sentence \"{sentence}\" states a category score of {stated}/{top}, \
                 but the computed scores are {}; state only the computed scores",
                computed.join(", ")
            ));
        }
    }
    check_level(field, sentence, scores, patterns, problems);
}

fn check_level(
    field: &str,
    sentence: &str,
    scores: &Scores,
    patterns: &Patterns,
    problems: &mut Vec<String>,
) {
    let Some(level) = &patterns.level else {
        return;
    };
    for found in level.captures_iter(sentence) {
        let name = &found[1];
        let same = scores.level.as_deref() == Some(name);
        if !same {
            let computed = scores.level.as_deref().unwrap_or("not assessed");
            problems.push(format!(
                "{field}: the sentence \"{sentence}\" names the readiness level {name}, but the \
                 computed level is {computed}; name no other level"
            ));
        }
    }
}

fn contains_word(sentence: &str, word: &str) -> bool {
    let sentence = sentence.to_lowercase();
    let word = word.to_lowercase();
    sentence.match_indices(&word).any(|(at, _)| {
        let before = sentence[..at].chars().next_back();
        let after = sentence[at + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The sentences of a text: split after `.`, `!` or `?` followed by white space, so that
/// "3.7/5" stays whole.
fn sentences(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text.trim();
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len();
        let mut chars = rest.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            if matches!(c, '.' | '!' | '?')
                && chars.peek().is_some_and(|(_, next)| next.is_whitespace())
            {
                end = at + c.len_utf8();
                break;
            }
        }
        let (sentence, after) = rest.split_at(end);
        rest = after.trim_start();
        Some(sentence.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::CategoryScore;

    fn scores() -> Scores {
        let pillar = |id: &str, title: &str, score: Option<f64>| CategoryScore {
            id: id.into(),
            title: title.into(),
            score,
            out_of: 5.0,
        };
        Scores {
            categories: vec![
                pillar("strategy", "Strategy", Some(3.0)),
                pillar("data", "Data", Some(2.3)),
                pillar("talent", "Talent", None),
            ],
            overall: Some(46),
            level: Some("Follower".into()),
        }
    }

    /// A report whose only words are `summary`.
    fn written(summary: &str) -> Written {
        Written {
            summary: summary.into(),
            priorities: Vec::new(),
            categories: Vec::new(),
            quick_wins: Vec::new(),
            risks: None,
            roadmap_90_days: None,
            use_cases: None,
            roadmap_12_months: None,
            budget: None,
        }
    }

    fn said(summary: &str) -> Vec<String> {
        problems(
            &written(summary),
            (&scores()).into(),
            &["Pacesetter", "Chaser", "Follower", "Laggard"],
        )
    }

    #[test]
    fn the_computed_numbers_and_level_may_be_repeated() {
        for fine in [
            "You scored 46/100, which makes you a Follower.",
            "Your overall score of 46 puts you among the Followers. Data (2.3/5) holds you back.",
            "Strategy is your strongest pillar at 3.0 out of 5.",
            "Be a fast follower: copy what works. Nothing here is a chaser.",
            "Version 3.7 of the tool costs $400/month.",
        ] {
            assert_eq!(said(fine), Vec::<String>::new(), "{fine}");
        }
    }

    #[test]
    fn other_numbers_or_levels_are_quoted_back() {
        assert_eq!(
            said("Great news. You are at 100/100, a true Pacesetter! Keep going."),
            [
                "summary: the sentence \"You are at 100/100, a true Pacesetter!\" states an \
                 overall score of 100, but the computed overall score is 46/100 (Follower); \
                 state only the computed scores",
                "summary: the sentence \"You are at 100/100, a true Pacesetter!\" names the \
                 readiness level Pacesetter, but the computed level is Follower; name no other \
                 level",
            ]
        );
        assert_eq!(said("Your readiness score is 63.").len(), 1);
        assert_eq!(said("Overall you reach 63 out of 100.").len(), 1);
        assert_eq!(said("With work you could become a Chaser.").len(), 1);
        assert_eq!(said("Nobody wants to stay a Laggard.").len(), 1);
        // A pillar's score is held to the pillar the sentence names.
        assert_eq!(said("Data scores 3.0/5.").len(), 1);
        assert_eq!(said("Talent scores 2.3/5.").len(), 1);
        assert_eq!(said("Strategy scores 3.0/5 and data 2.3/5.").len(), 0);
        assert_eq!(said("One pillar scores 4.5/5.").len(), 1);
    }

    #[test]
    fn a_method_scoring_categories_out_of_100_may_state_them_beside_their_names() {
        let mut scores = scores();
        for category in &mut scores.categories {
            category.out_of = 100.0;
            category.score = category.score.map(|s| (s * 20.0).round());
        }
        let levels = ["Hardened", "Exposed"];
        let said = |summary: &str| problems(&written(summary), (&scores).into(), &levels);
        assert!(said("Strategy reaches 60/100 and the whole 46/100.").is_empty());
        assert_eq!(said("Data reaches 60/100.").len(), 1);
        assert_eq!(said("You are Hardened already.").len(), 1);
        assert!(said("A Follower elsewhere; here the scale is out of 5: 3/5.").is_empty());
    }
}
