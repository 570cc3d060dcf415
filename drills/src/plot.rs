//! The evacuation curve (SVG, plotters): share of residents under order who have checked in at
//! a shelter, over minutes after the order, with T50 and T90 marked; the `--no-tv` run's curve
//! beside it when both runs are in the folder.

use std::path::Path;

use anyhow::Context;
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
    pub fn read(dir: &Path, no_tv: bool) -> anyhow::Result<Option<Series>> {
        let suffix = if no_tv { "-no-tv" } else { "" };
        let (csv, json) = (
            dir.join(format!("arrivals{suffix}.csv")),
            dir.join(format!("report{suffix}.json")),
        );
        if !csv.exists() || !json.exists() {
            return Ok(None);
        }
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&json)
                .with_context(|| format!("reading {}", json.display()))?,
        )
        .with_context(|| format!("reading {}", json.display()))?;
        let total = report["residents"].as_u64().unwrap_or(0) as usize;
        let text =
            std::fs::read_to_string(&csv).with_context(|| format!("reading {}", csv.display()))?;
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

    /// Time (s) by which a share `q` of those who arrived had arrived.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.times_s.is_empty() {
            return None;
        }
        let i = ((self.times_s.len() - 1) as f64 * q).round() as usize;
        self.times_s.get(i).copied()
    }
}

/// Draws the curves into `out` (SVG).
pub fn draw(out: &Path, series: &[Series]) -> anyhow::Result<()> {
    let max_min = series
        .iter()
        .filter_map(|s| s.times_s.last())
        .fold(10.0f64, |m, t| m.max(t / 60.0))
        .ceil();
    let root = SVGBackend::new(out, (900, 560)).into_drawing_area();
    root.fill(&WHITE).context("drawing the curve")?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Residents at a shelter after the order", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..max_min, 0f64..100f64)
        .context("drawing the curve")?;
    chart
        .configure_mesh()
        .x_desc("minutes after the order")
        .y_desc("% of residents under order checked in")
        .draw()
        .context("drawing the curve")?;
    let colours = [RGBColor(0, 90, 180), RGBColor(200, 60, 30)];
    for (i, s) in series.iter().enumerate() {
        let c = colours[i % colours.len()];
        let total = s.total.max(1) as f64;
        let mut pts = vec![(0.0, 0.0)];
        for (n, t) in s.times_s.iter().enumerate() {
            pts.push((t / 60.0, (n + 1) as f64 * 100.0 / total));
        }
        if let Some(last) = pts.last().copied() {
            pts.push((max_min, last.1));
        }
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .context("drawing the curve")?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        for (q, name) in [(0.5, "T50"), (0.9, "T90")] {
            if let Some(t) = s.quantile(q) {
                let x = t / 60.0;
                chart
                    .draw_series(LineSeries::new(vec![(x, 0.0), (x, 100.0)], c.mix(0.5)))
                    .context("drawing the curve")?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("{name} {x:.1} min"),
                        (
                            x,
                            96.0 - 6.0 * (i as f64) - if q > 0.6 { 12.0 } else { 0.0 },
                        ),
                        ("sans-serif", 13).into_font().color(&c),
                    )))
                    .context("drawing the curve")?;
            }
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .context("drawing the curve")?;
    root.present().context("writing the curve")?;
    Ok(())
}
