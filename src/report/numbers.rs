//! Numbers only from compass: the model's prose may repeat the computed scores and level, and
//! may state no other.
//!
//! The scores come from the answers (`questionnaire::scores`); a report whose summary says
//! "100/100, a Pacesetter" next to a computed 46 (Follower) would contradict itself in front of
//! the customer. Every sentence of every text field is read for an overall score (`N/100`,
//! `N out of 100`, "overall score of N"), a pillar score (`N/5`, `N out of 5`, held to the
//! pillars the sentence names) and a readiness level by name; each one that differs from the
//! computed value is a problem that quotes the sentence, for the repair round.

use std::sync::LazyLock;

use regex::Regex;

use super::Written;
use crate::questionnaire::Scores;

static OVERALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(\d{1,3}(?:\.\d+)?)\s*(?:/|out of)\s*100\b|\b(?:overall|readiness)\s+score\s+(?:of|is|at|was|:)?\s*(\d{1,3}(?:\.\d+)?)\b(?:\s*%)?(?:\s*(?:/|out of)\s*100)?",
    )
    .expect("a valid pattern")
});

static PILLAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(\d(?:\.\d+)?)\s*(?:/|out of)\s*5\b").expect("a valid pattern")
});

/// The level names as a report writes them: "Chaser" and "Follower" only capitalised, since
/// in lower case they are ordinary words ("a fast follower").
static LEVEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(Pacesetter|Chaser|Follower|Laggard|(?i:pacesetter|laggard))s?\b")
        .expect("a valid pattern")
});

/// Every statement in `written` of a score or level other than the computed ones.
pub fn problems(written: &Written, scores: &Scores) -> Vec<String> {
    let mut problems = Vec::new();
    for (field, text) in written.texts() {
        for sentence in sentences(text) {
            check_sentence(&field, sentence, scores, &mut problems);
        }
    }
    problems
}

fn check_sentence(field: &str, sentence: &str, scores: &Scores, problems: &mut Vec<String>) {
    let overall = match (scores.overall, scores.level) {
        (Some(overall), Some(level)) => format!("{overall}/100 ({})", level.title()),
        _ => "not assessed".to_owned(),
    };
    for found in OVERALL.captures_iter(sentence) {
        let stated = found
            .get(1)
            .or_else(|| found.get(2))
            .map_or("", |m| m.as_str());
        let same = scores
            .overall
            .is_some_and(|o| stated.parse::<f64>().is_ok_and(|s| s == f64::from(o)));
        if !same {
            problems.push(format!(
                "{field}: the sentence \"{sentence}\" states an overall score of {stated}, but \
                 the computed overall score is {overall}; state only the computed scores"
            ));
        }
    }
    let named: Vec<_> = scores
        .pillars
        .iter()
        .filter(|p| contains_word(sentence, &p.title))
        .collect();
    let candidates = if named.is_empty() {
        scores.pillars.iter().collect()
    } else {
        named
    };
    for found in PILLAR.captures_iter(sentence) {
        let stated = &found[1];
        let value = stated.parse::<f64>().unwrap_or(f64::NAN);
        let same = candidates
            .iter()
            .any(|p| p.score.is_some_and(|s| (s - value).abs() < 0.05));
        if !same {
            let computed: Vec<String> = candidates
                .iter()
                .map(|p| match p.score {
                    Some(s) => format!("{} {s:.1}/5", p.title),
                    None => format!("{} not assessed", p.title),
                })
                .collect();
            problems.push(format!(
                "{field}: the sentence \"{sentence}\" states a pillar score of {stated}/5, but \
                 the computed scores are {}; state only the computed scores",
                computed.join(", ")
            ));
        }
    }
    for found in LEVEL.captures_iter(sentence) {
        let name = &found[1];
        let same = scores
            .level
            .is_some_and(|l| l.title().eq_ignore_ascii_case(name));
        if !same {
            let computed = scores
                .level
                .map_or("not assessed".to_owned(), |l| l.title().to_owned());
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
    use crate::questionnaire::{Level, PillarScore};

    fn scores() -> Scores {
        let pillar = |id: &str, title: &str, score: Option<f64>| PillarScore {
            id: id.into(),
            title: title.into(),
            score,
        };
        Scores {
            pillars: vec![
                pillar("strategy", "Strategy", Some(3.0)),
                pillar("data", "Data", Some(2.3)),
                pillar("talent", "Talent", None),
            ],
            overall: Some(46),
            level: Some(Level::Follower),
        }
    }

    fn said(summary: &str) -> Vec<String> {
        let written = Written {
            summary: summary.into(),
            pillars: Vec::new(),
            quick_wins: Vec::new(),
            risks: None,
            roadmap_90_days: None,
            use_cases: None,
            roadmap_12_months: None,
            budget: None,
        };
        problems(&written, &scores())
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
        assert_eq!(said("Nobody wants to stay a laggard.").len(), 1);
        // A pillar's score is held to the pillar the sentence names.
        assert_eq!(said("Data scores 3.0/5.").len(), 1);
        assert_eq!(said("Talent scores 2.3/5.").len(), 1);
        assert_eq!(said("Strategy scores 3.0/5 and data 2.3/5.").len(), 0);
        assert_eq!(said("One pillar scores 4.5/5.").len(), 1);
    }
}
