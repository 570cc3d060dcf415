//! The evacuation curve (SVG, plotters): share of residents under order who have checked in at
//! a shelter, over minutes after the order, with T50 and T90 marked where the curve reaches 50 %
//! and 90 % of that axis (a mark the curve never reaches is named in the legend); the `--no-tv`
//! run's curve beside it when both runs are in the folder.

use std::path::Path;

use crate::error::{DrillError, StepContext};
use plotters::prelude::*;

/// One curve.
pub struct Series {
    /// Its label.
    pub label: String,
    /// Check-in times, seconds after the order, sorted.
    pub times_s: Vec<f64>,
    /// Residents under order (the curve's 100 %).
    pub total: usize,
}

impl Series {
    /// Reads a run's curve from its `arrivals*.csv` and `report*.json`; `None` if absent.
    pub fn read(dir: &Path, no_tv: bool) -> Result<Option<Series>, DrillError> {
        let suffix = if no_tv { "-no-tv" } else { "" };
        let (csv, json) = (
            dir.join(format!("arrivals{suffix}.csv")),
            dir.join(format!("report{suffix}.json")),
        );
        if !csv.exists() || !json.exists() {
            return Ok(None);
        }
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&json).with_step(|| format!("reading {}", json.display()))?,
        )
        .with_step(|| format!("reading {}", json.display()))?;
        let total = report["residents"].as_u64().unwrap_or(0) as usize;
        let text =
            std::fs::read_to_string(&csv).with_step(|| format!("reading {}", csv.display()))?;
        let mut seen = std::collections::HashSet::new();
        let mut times_s: Vec<f64> = text
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                let resident: u32 = f.first()?.parse().ok()?;
                (f.get(4).is_some_and(|k| crate::report::is_arrival(k)) && seen.insert(resident))
                    .then(|| f.get(6)?.parse().ok())
                    .flatten()
            })
            .collect();
        times_s.sort_by(f64::total_cmp);
        Ok(Some(Series {
            label: if no_tv {
                "without TV orders".into()
            } else {
                "with TV orders".into()
            },
            times_s,
            total,
        }))
    }

    /// Time (s) by which a share `q` of the residents under order (what the axis shows) had
    /// checked in; `None` if the curve never gets there (those who stayed home count too).
    pub fn reaches(&self, q: f64) -> Option<f64> {
        // (Less a hair, so 0.9 × 30 that comes out as 27.000…04 needs 27, not 28.)
        let needed = (q * self.total as f64 - 1e-9).ceil() as usize;
        match needed {
            0 => Some(0.0),
            n => self.times_s.get(n - 1).copied(),
        }
    }

    /// The plotted curve: (minutes after the order, % on the axis), a step at each check-in,
    /// held flat to `until_min`.
    pub fn points(&self, until_min: f64) -> Vec<(f64, f64)> {
        let total = self.total.max(1) as f64;
        let mut pts = vec![(0.0, 0.0)];
        for (n, t) in self.times_s.iter().enumerate() {
            pts.push((t / 60.0, (n + 1) as f64 * 100.0 / total));
        }
        if let Some(last) = pts.last().copied() {
            pts.push((until_min.max(last.0), last.1));
        }
        pts
    }

    /// The marked times, minutes after the order: T50 and T90, when the curve reaches 50 % and
    /// 90 % of the axis (residents under order), not of those who arrived (the report's median
    /// and 90th percentile): a mark must sit where the curve crosses its line.
    pub fn marks(&self) -> [(&'static str, f64, Option<f64>); 2] {
        [
            ("T50", 0.5, self.reaches(0.5).map(|t| t / 60.0)),
            ("T90", 0.9, self.reaches(0.9).map(|t| t / 60.0)),
        ]
    }
}

/// Draws the curves into `out` (SVG).
pub fn draw(out: &Path, series: &[Series]) -> Result<(), DrillError> {
    let max_min = series
        .iter()
        .filter_map(|s| s.times_s.last())
        .fold(10.0f64, |m, t| m.max(t / 60.0))
        .ceil();
    let root = SVGBackend::new(out, (900, 560)).into_drawing_area();
    root.fill(&WHITE).step("drawing the curve")?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Residents at a shelter after the order", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..max_min, 0f64..100f64)
        .step("drawing the curve")?;
    chart
        .configure_mesh()
        .x_desc("minutes after the order")
        .y_desc("% of residents under order checked in")
        .draw()
        .step("drawing the curve")?;
    let colours = [RGBColor(0, 90, 180), RGBColor(200, 60, 30)];
    for (i, s) in series.iter().enumerate() {
        let c = colours[i % colours.len()];
        let pts = s.points(max_min);
        let unreached: Vec<&str> = s
            .marks()
            .iter()
            .filter(|m| m.2.is_none())
            .map(|m| m.0)
            .collect();
        let label = match unreached.as_slice() {
            [] => s.label.clone(),
            names => format!(
                "{} ({} not reached: {:.0} % checked in)",
                s.label,
                names.join(", "),
                pts.last().map_or(0.0, |p| p.1)
            ),
        };
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .step("drawing the curve")?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        for (name, q, at) in s.marks() {
            if let Some(x) = at {
                chart
                    .draw_series(LineSeries::new(vec![(x, 0.0), (x, 100.0)], c.mix(0.5)))
                    .step("drawing the curve")?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("{name} {x:.1} min"),
                        (
                            x,
                            96.0 - 6.0 * (i as f64) - if q > 0.6 { 12.0 } else { 0.0 },
                        ),
                        ("sans-serif", 13).into_font().color(&c),
                    )))
                    .step("drawing the curve")?;
            }
        }
    }
    // What the marks count, in the legend: all residents under order (the axis), those who
    // stayed home included, so a mark sits where its curve crosses 50 % or 90 %.
    let grey = RGBColor(120, 120, 120);
    chart
        .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
        .step("drawing the curve")?
        .label("T50, T90: 50 %, 90 % of all residents under order checked in")
        .legend(move |(x, y)| {
            PathElement::new(vec![(x + 10, y - 6), (x + 10, y + 6)], grey.mix(0.8))
        });
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .step("drawing the curve")?;
    root.present().step("writing the curve")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The curve's height (% on the axis) just after minute `x`, as plotted.
    fn height_at(pts: &[(f64, f64)], x: f64) -> f64 {
        pts.iter()
            .take_while(|p| p.0 <= x)
            .last()
            .map_or(0.0, |p| p.1)
    }

    #[test]
    fn marks_sit_where_the_plotted_curve_reaches_their_share_of_the_axis() {
        // 10 residents under order, 6 arrived (at minutes 1..=6): the curve ends at 60 %.
        let s = Series {
            label: "with TV orders".into(),
            times_s: (1..=6).map(|m| m as f64 * 60.0).collect(),
            total: 10,
        };
        let pts = s.points(10.0);
        let marks = s.marks();
        let (name, q, at) = marks[0];
        assert_eq!(name, "T50");
        let x = at.expect("the curve reaches 50 %");
        // At the mark the curve has reached 50 % of the axis, and not a moment before.
        assert!(height_at(&pts, x) >= q * 100.0, "{x}: {pts:?}");
        assert!(height_at(&pts, x - 1e-6) < q * 100.0, "{x}: {pts:?}");
        // The curve never reaches 90 % of residents under order: no T90 mark.
        assert_eq!(marks[1].0, "T90");
        assert_eq!(marks[1].2, None, "{pts:?}");
    }
}
