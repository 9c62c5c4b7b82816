//! The loss-surface figure: a line plot for a 1-D surface; for a 2-D surface a filled contour map of
//! log10(loss) (the grid cells coloured by level, level boundaries drawn as contour lines) with a colour
//! bar. The named vectors are marked and labelled on both. [`write_outputs`] writes a finished surface's
//! data (the probe's) and its figure.

use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

use super::{drawing, render_png};
use crate::probe::directions::{DirectionSpec, Mark};
use crate::probe::surface::{write_data, Surface, SurfaceConfig};

const SIZE: (u32, u32) = (900, 750);
const LEVELS: usize = 16;

/// Viridis at `t` in [0, 1], interpolated between five of its colours.
fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] =
        [(68.0, 1.0, 84.0), (59.0, 82.0, 139.0), (33.0, 145.0, 140.0), (94.0, 201.0, 98.0), (253.0, 231.0, 37.0)];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let k = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - k as f64;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn title(cfg: &SurfaceConfig) -> String {
    let how = match &cfg.directions {
        DirectionSpec::Through { .. } => "through named vectors".to_string(),
        DirectionSpec::Orthonormal { .. } => "orthonormal axes through named vectors".to_string(),
        DirectionSpec::Random { seed, .. } => format!("filter-normalised random directions, seed {seed}"),
    };
    format!("{} {} loss ({} images), {how}", cfg.model.title(), cfg.landscape.name(), cfg.images)
}

/// Writes `surface.csv`, `surface.json` (the configuration, the marks with their losses where they are
/// grid points, the minimum, the count of non-finite points, and `extra`; [`write_data`]) and the figure
/// `surface.png`.
///
/// Errors: a file cannot be written.
pub fn write_outputs(
    dir: &Path,
    cfg: &SurfaceConfig,
    marks: &[Mark],
    surface: &Surface,
    extra: serde_json::Value,
) -> Result<()> {
    write_data(dir, cfg, marks, surface, extra)?;
    surface_figure(&dir.join("surface.png"), cfg, marks, surface)
}

/// Draws the figure of `surface` to `out` (PNG).
///
/// Errors: the file cannot be written.
pub fn surface_figure(out: &Path, cfg: &SurfaceConfig, marks: &[Mark], surface: &Surface) -> Result<()> {
    if surface.ys.len() == 1 && cfg.y.is_none() {
        line(out, cfg, marks, surface)
    } else {
        contour(out, cfg, marks, surface)
    }
}

fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    lo.is_finite().then_some(if hi > lo { (lo, hi) } else { (lo - 0.5, lo + 0.5) })
}

fn line(out: &Path, cfg: &SurfaceConfig, marks: &[Mark], surface: &Surface) -> Result<()> {
    let pts: Vec<(f64, f64)> =
        surface.xs.iter().zip(&surface.loss[0]).filter_map(|(&x, l)| l.filter(|l| *l > 0.0).map(|l| (x, l))).collect();
    let (lo, hi) = finite_range(pts.iter().map(|p| p.1)).unwrap_or((0.1, 1.0));
    let (x0, x1) = (surface.xs[0], surface.xs[surface.xs.len() - 1]);
    render_png(out, (900, 600), |root| {
        let mut chart = drawing(
            ChartBuilder::on(root)
                .caption(title(cfg), ("sans-serif", 20))
                .margin(15)
                .x_label_area_size(50)
                .y_label_area_size(80)
                .build_cartesian_2d(x0..x1, (lo / 1.5..hi * 1.5).log_scale()),
        )?;
        drawing(
            chart
                .configure_mesh()
                .x_desc("x")
                .y_desc("loss")
                .x_label_formatter(&super::tick)
                .label_style(("sans-serif", 16))
                .draw(),
        )?;
        drawing(chart.draw_series(LineSeries::new(pts.iter().copied(), super::figures::BLUE.stroke_width(2))))?;
        for m in marks {
            if let Some(l) = nearest(surface, m.x, 0.0).filter(|l| *l > 0.0) {
                drawing(chart.draw_series([Circle::new((m.x, l), 6, super::figures::RED.filled())]))?;
                drawing(chart.draw_series([Text::new(m.label.clone(), (m.x, l * 1.15), ("sans-serif", 16))]))?;
            }
        }
        Ok(())
    })
}

/// The loss at the grid point nearest to (x, y).
fn nearest(surface: &Surface, x: f64, y: f64) -> Option<f64> {
    let idx = |v: &[f64], t: f64| {
        (0..v.len())
            .min_by(|&a, &b| (v[a] - t).abs().partial_cmp(&(v[b] - t).abs()).unwrap_or(std::cmp::Ordering::Equal))
    };
    let (i, j) = (idx(&surface.xs, x)?, idx(&surface.ys, y)?);
    surface.loss[j][i]
}

fn contour(out: &Path, cfg: &SurfaceConfig, marks: &[Mark], surface: &Surface) -> Result<()> {
    let (nx, ny) = (surface.xs.len(), surface.ys.len());
    let logs: Vec<Vec<Option<f64>>> =
        surface.loss.iter().map(|r| r.iter().map(|l| l.filter(|l| *l > 0.0).map(f64::log10)).collect()).collect();
    let (lo, hi) = finite_range(logs.iter().flatten().flatten().copied()).unwrap_or((0.0, 1.0));
    let level = |v: Option<f64>| v.map(|v| (((v - lo) / (hi - lo) * LEVELS as f64) as usize).min(LEVELS - 1));
    let levels: Vec<Vec<Option<usize>>> = logs.iter().map(|r| r.iter().map(|&v| level(v)).collect()).collect();
    let colour = |k: usize| viridis((k as f64 + 0.5) / LEVELS as f64);
    // cell edges halfway between grid values
    let edges = |v: &[f64]| -> Vec<f64> {
        let mut e = vec![v[0] - (v[1] - v[0]) / 2.0];
        e.extend(v.windows(2).map(|w| (w[0] + w[1]) / 2.0));
        e.push(v[v.len() - 1] + (v[v.len() - 1] - v[v.len() - 2]) / 2.0);
        e
    };
    let (ex, ey) = (edges(&surface.xs), edges(&surface.ys));
    render_png(out, SIZE, |root| {
        let (main, bar) = root.split_horizontally(SIZE.0 - 130);
        let mut chart = drawing(
            ChartBuilder::on(&main)
                .caption(title(cfg), ("sans-serif", 18))
                .margin(15)
                .x_label_area_size(50)
                .y_label_area_size(60)
                .build_cartesian_2d(ex[0]..ex[nx], ey[0]..ey[ny]),
        )?;
        super::linear_axes(&mut chart, ("x", "y"), false)?;
        let cells = (0..ny).flat_map(|j| (0..nx).map(move |i| (i, j)));
        drawing(chart.draw_series(cells.map(|(i, j)| {
            let c = levels[j][i].map_or(RGBColor(255, 255, 255), colour);
            Rectangle::new([(ex[i], ey[j]), (ex[i + 1], ey[j + 1])], c.filled())
        })))?;
        // contour lines: the cell edges between different levels
        let mut segments = Vec::new();
        for j in 0..ny {
            for i in 0..nx {
                if i + 1 < nx && levels[j][i] != levels[j][i + 1] {
                    segments.push(vec![(ex[i + 1], ey[j]), (ex[i + 1], ey[j + 1])]);
                }
                if j + 1 < ny && levels[j][i] != levels[j + 1][i] {
                    segments.push(vec![(ex[i], ey[j + 1]), (ex[i + 1], ey[j + 1])]);
                }
            }
        }
        drawing(chart.draw_series(segments.into_iter().map(|s| PathElement::new(s, BLACK.mix(0.6)))))?;
        for m in marks {
            drawing(
                chart.draw_series([Circle::new((m.x, m.y), 7, WHITE.filled()), Circle::new((m.x, m.y), 7, BLACK)]),
            )?;
            drawing(chart.draw_series([Text::new(
                m.label.clone(),
                (m.x, m.y),
                ("sans-serif", 18).into_font().color(&WHITE),
            )]))?;
        }
        let mut scale = drawing(
            ChartBuilder::on(&bar)
                .margin_top(60)
                .margin_bottom(65)
                .margin_right(10)
                .y_label_area_size(70)
                .build_cartesian_2d(0f64..1.0, lo..hi),
        )?;
        drawing(
            scale
                .configure_mesh()
                .disable_mesh()
                .disable_x_axis()
                .y_desc("log10 loss")
                .label_style(("sans-serif", 14))
                .draw(),
        )?;
        let step = (hi - lo) / LEVELS as f64;
        drawing(scale.draw_series((0..LEVELS).map(|k| {
            Rectangle::new([(0.0, lo + k as f64 * step), (1.0, lo + (k + 1) as f64 * step)], colour(k).filled())
        })))?;
        Ok(())
    })
}
