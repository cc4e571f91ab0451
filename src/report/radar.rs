//! The radar chart (the "compass") of the category scores (3 to 12 axes), as geometry: the numbers an SVG
//! (HTML report) or a typst drawing (PDF) needs. Pure; the labels stay text for the template
//! to escape.

use serde::Serialize;

use crate::method::Scores;

/// Everything needed to draw the chart in a square of `size`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Radar {
    pub size: f64,
    /// The SVG `viewBox`: the square, widened on both sides so that long labels fit.
    pub view_box: String,
    pub center: f64,
    /// The grid rings (fifths of the way out), each a closed polygon as `x,y x,y ...`.
    pub rings: Vec<String>,
    /// One spoke per category.
    pub spokes: Vec<Spoke>,
    /// The scores' polygon; unassessed categories sit at the centre.
    pub shape: String,
}

/// A category's spoke and label.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spoke {
    pub x: f64,
    pub y: f64,
    pub label_x: f64,
    pub label_y: f64,
    /// `start`, `middle` or `end`, for the label's alignment.
    pub anchor: &'static str,
    /// The label as lines of at most [`LABEL_CHARS`] characters (the title wrapped at its
    /// spaces, then the score), so that a long title stays inside the chart's box;
    /// `label_y` is already moved up to centre them.
    pub lines: Vec<String>,
    pub title: String,
    /// `3.5` or `72`, or `n/a`.
    pub score: String,
}

/// The longest line of a label, in characters: at the chart's text size the widest label
/// fits in the room the `view_box` leaves beside the square.
pub const LABEL_CHARS: usize = 16;

/// The height of a label's line, in units of a 400-unit chart (the template's 11px text).
const LINE: f64 = 13.0;

/// `title` wrapped at its spaces into lines of at most `LABEL_CHARS` characters (a longer
/// word is cut), then `score`.
fn label_lines(title: &str, score: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in title.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > LABEL_CHARS {
            let rest = word.split_off(LABEL_CHARS);
            lines.push(word.iter().collect());
            word = rest;
        }
        let word: String = word.into_iter().collect();
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= LABEL_CHARS => {
                line.push(' ');
                line.push_str(&word);
            }
            _ => lines.push(word),
        }
    }
    lines.push(score.to_owned());
    lines
}

/// The chart of `scores` in a square of `size` units.
pub fn radar(scores: &Scores, size: f64) -> Radar {
    let n = scores.categories.len().max(3);
    let center = size / 2.0;
    let radius = size * 0.32;
    let point = |i: usize, r: f64| {
        // The first category points straight up; the rest follow clockwise.
        let angle = std::f64::consts::TAU * i as f64 / n as f64 - std::f64::consts::FRAC_PI_2;
        (center + r * angle.cos(), center + r * angle.sin())
    };
    let polygon = |r_of: &dyn Fn(usize) -> f64| {
        (0..n)
            .map(|i| {
                let (x, y) = point(i, r_of(i));
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let rings = (1..=5)
        .map(|level| polygon(&|_| radius * f64::from(level) / 5.0))
        .collect();
    let spokes = scores
        .categories
        .iter()
        .enumerate()
        .map(|(i, pillar)| {
            let (x, y) = point(i, radius);
            let (label_x, label_y) = point(i, radius + size * 0.07);
            let anchor = if (label_x - center).abs() < 1.0 {
                "middle"
            } else if label_x > center {
                "start"
            } else {
                "end"
            };
            let score = pillar.shown().unwrap_or_else(|| "n/a".to_owned());
            let lines = label_lines(&pillar.title, &score);
            // Centred on the label's point, whatever its number of lines.
            let line = LINE * size / 400.0;
            let label_y = label_y - (lines.len() as f64 - 1.0) * line / 2.0;
            Spoke {
                x,
                y,
                label_x,
                label_y,
                anchor,
                title: pillar.title.clone(),
                score,
                lines,
            }
        })
        .collect();
    let shape = polygon(&|i| scores.categories.get(i).map_or(0.0, |c| radius * c.reach()));
    Radar {
        size,
        view_box: format!("{:.0} 0 {:.0} {size:.0}", -size * 0.2, size * 1.4),
        center,
        rings,
        spokes,
        shape,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::CategoryScore;

    #[test]
    fn a_full_score_reaches_the_outer_ring_and_none_sits_at_the_centre() {
        let pillar = |id: &str, score| CategoryScore {
            id: id.into(),
            title: id.to_uppercase(),
            score,
            out_of: 5.0,
        };
        let scores = Scores {
            categories: vec![
                pillar("a", Some(5.0)),
                pillar("b", None),
                pillar("c", Some(2.5)),
                pillar("d", Some(1.0)),
                pillar("e", Some(5.0)),
                pillar("f", Some(3.0)),
            ],
            overall: Some(60),
            level: None,
        };
        let chart = radar(&scores, 200.0);
        let first = chart.shape.split(' ').next().expect("a point");
        assert_eq!(first, "100.0,36.0", "a 5 reaches the top of the outer ring");
        assert_eq!(chart.rings[4].split(' ').next(), Some("100.0,36.0"));
        assert_eq!(
            chart.shape.split(' ').nth(1),
            Some("100.0,100.0"),
            "n/a at the centre"
        );
        assert_eq!(chart.spokes[1].score, "n/a");
        assert_eq!(chart.spokes[2].score, "2.5");
        assert_eq!(chart.spokes[0].anchor, "middle");
        assert_eq!(chart.spokes[1].anchor, "start");
        assert_eq!(chart.spokes[5].anchor, "end");
        assert_eq!(chart.rings.len(), 5);
    }

    #[test]
    fn every_count_of_categories_from_3_to_12_gets_one_spoke_each() {
        for n in 3..=12 {
            let scores = Scores {
                categories: (0..n)
                    .map(|i| CategoryScore {
                        id: format!("c{i}"),
                        title: format!("Category {i}"),
                        score: Some(50.0),
                        out_of: 100.0,
                    })
                    .collect(),
                overall: Some(50),
                level: None,
            };
            let chart = radar(&scores, 400.0);
            assert_eq!(chart.spokes.len(), n);
            assert_eq!(chart.shape.split(' ').count(), n);
            assert_eq!(chart.spokes[0].score, "50");
        }
    }

    #[test]
    fn long_labels_are_wrapped_to_stay_inside_the_chart() {
        let titles = [
            "Incident response and recovery",
            "Supplier and third-party risk management",
            "Backups",
            "Identity",
            "Security awareness of every member of staff",
            "Endpoint protection",
            "Network",
            "Cloud configuration and hardening",
            "Email",
            "Physical security of offices and devices",
            "Governance",
            "Data",
        ];
        let scores = Scores {
            categories: titles
                .iter()
                .map(|title| CategoryScore {
                    id: title.to_lowercase().replace(' ', "_"),
                    title: (*title).to_owned(),
                    score: Some(42.0),
                    out_of: 100.0,
                })
                .collect(),
            overall: Some(42),
            level: None,
        };
        let chart = radar(&scores, 400.0);
        // The view box runs from -80 to 480; a character of the 11px text is at most 7 units.
        for spoke in &chart.spokes {
            assert!(spoke.lines.iter().all(|l| l.chars().count() <= LABEL_CHARS));
            let width = LABEL_CHARS as f64 * 7.0;
            let (left, right) = match spoke.anchor {
                "start" => (spoke.label_x, spoke.label_x + width),
                "end" => (spoke.label_x - width, spoke.label_x),
                _ => (spoke.label_x - width / 2.0, spoke.label_x + width / 2.0),
            };
            assert!(
                left >= -80.0 && right <= 480.0,
                "{}: {left}..{right}",
                spoke.title
            );
            let bottom = spoke.label_y + LINE * spoke.lines.len() as f64;
            assert!(spoke.label_y >= 0.0 && bottom <= 400.0, "{}", spoke.title);
        }
        assert_eq!(
            chart.spokes[0].lines,
            ["Incident", "response and", "recovery", "42"]
        );
    }
}
