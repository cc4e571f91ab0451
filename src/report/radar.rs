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
    pub title: String,
    /// `3.5` or `72`, or `n/a`.
    pub score: String,
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
            Spoke {
                x,
                y,
                label_x,
                label_y,
                anchor,
                title: pillar.title.clone(),
                score: pillar.shown().unwrap_or_else(|| "n/a".to_owned()),
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
}
