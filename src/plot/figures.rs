//! The analysis figures: overlaid histograms, a 2-D scatter, loss curves.

use anyhow::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

use super::{drawing, legend, render_png};

/// A named series with its colour.
pub struct Series<'a> {
    pub label: String,
    pub values: &'a [f64],
    pub colour: RGBColor,
}

pub const BLUE: RGBColor = RGBColor(31, 119, 180);
pub const LIGHT_BLUE: RGBColor = RGBColor(120, 180, 230);
pub const RED: RGBColor = RGBColor(214, 39, 40);
pub const ORANGE: RGBColor = RGBColor(255, 127, 14);
pub const GREEN: RGBColor = RGBColor(44, 160, 44);
pub const LIGHT_GREEN: RGBColor = RGBColor(152, 223, 138);

pub const SIZE: (u32, u32) = (900, 600);

type Linear<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A titled chart with linear axes, labelled, with its mesh drawn.
fn linear_chart<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    title: &str,
    (x, y): (std::ops::Range<f64>, std::ops::Range<f64>),
    (x_label, y_label): (&str, &str),
) -> Result<Linear<'a, 'b>> {
    let mut chart = drawing(
        ChartBuilder::on(area)
            .caption(title, ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(x, y),
    )?;
    drawing(chart.configure_mesh().x_desc(x_label).y_desc(y_label).label_style(("sans-serif", 16)).draw())?;
    Ok(chart)
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-12 * hi.abs().max(1.0));
    (lo - pad, hi + pad)
}

/// Overlaid histograms on shared bins, with an optional dotted vertical line (the centroid distance).
pub fn histograms(out: &Path, title: &str, x_label: &str, series: &[Series], vline: Option<(f64, &str)>) -> Result<()> {
    let (lo, hi) = range(series.iter().flat_map(|s| s.values.iter().copied()).chain(vline.map(|v| v.0)));
    let bins = 20;
    let width = (hi - lo) / bins as f64;
    let counts: Vec<Vec<usize>> = series
        .iter()
        .map(|s| {
            let mut c = vec![0; bins];
            for &v in s.values.iter().filter(|v| v.is_finite()) {
                c[(((v - lo) / width) as usize).min(bins - 1)] += 1;
            }
            c
        })
        .collect();
    let top = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64 * 1.15;
    render_png(out, SIZE, |root| {
        let mut chart = linear_chart(root, title, (lo..hi, 0.0..top), (x_label, "count"))?;
        for (s, c) in series.iter().zip(&counts) {
            let colour = s.colour;
            let bars = || {
                c.iter().enumerate().filter(|(_, &k)| k > 0).map(move |(i, &k)| {
                    let x0 = lo + i as f64 * width;
                    [(x0, 0.0), (x0 + width, k as f64)]
                })
            };
            // translucent fills and opaque outlines: where two histograms overlap, both stay visible
            drawing(chart.draw_series(bars().map(|r| Rectangle::new(r, colour.mix(0.35).filled()))))?;
            drawing(chart.draw_series(bars().map(|r| Rectangle::new(r, colour.stroke_width(2)))))?
                .label(format!("{} (n = {})", s.label, s.values.len()))
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], colour.mix(0.35).filled()));
        }
        if let Some((x, label)) = vline {
            let dots = (0..40).map(|i| (x, top * i as f64 / 40.0));
            drawing(chart.draw_series(dots.map(|p| Circle::new(p, 1, BLACK.filled()))))?
                .label(label.to_string())
                .legend(|(x, y)| Circle::new((x + 8, y), 2, BLACK.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// Points of one scatter series, with its label and colour.
pub type Points = (String, Vec<(f64, f64)>, RGBColor);

/// A scatter of 2-D points per series.
pub fn scatter(out: &Path, title: &str, labels: (&str, &str), series: &[Points]) -> Result<()> {
    let (x0, x1) = range(series.iter().flat_map(|s| s.1.iter().map(|p| p.0)));
    let (y0, y1) = range(series.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
    render_png(out, SIZE, |root| {
        let mut chart = linear_chart(root, title, (x0..x1, y0..y1), labels)?;
        for (label, points, colour) in series {
            let c = *colour;
            drawing(chart.draw_series(points.iter().map(|&p| Circle::new(p, 5, c.filled()))))?
                .label(format!("{label} (n = {})", points.len()))
                .legend(move |(x, y)| Circle::new((x + 8, y), 5, c.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// Loss curves against the epoch (iteration) on a log scale.
pub fn curves(out: &Path, title: &str, x_label: &str, series: &[Series]) -> Result<()> {
    let positive = |v: &f64| v.is_finite() && *v > 0.0;
    let (lo, hi) = log_range(series.iter().flat_map(|s| s.values.iter()).copied());
    let len = series.iter().map(|s| s.values.len()).max().unwrap_or(1).max(2);
    render_png(out, SIZE, |root| {
        let mut chart = drawing(
            ChartBuilder::on(root)
                .caption(title, ("sans-serif", 24))
                .margin(15)
                .x_label_area_size(50)
                .y_label_area_size(80)
                .build_cartesian_2d(1f64..len as f64, (lo..hi).log_scale()),
        )?;
        drawing(chart.configure_mesh().x_desc(x_label).y_desc("loss").label_style(("sans-serif", 16)).draw())?;
        for s in series {
            let c = s.colour;
            let pts = s.values.iter().enumerate().filter(|(_, v)| positive(v)).map(|(i, &v)| ((i + 1) as f64, v));
            drawing(chart.draw_series(LineSeries::new(pts, c.stroke_width(2))))?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// A log axis's range for `values`: from half the smallest positive finite value to twice the largest;
/// 1e-3..1 when none is positive.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo.is_finite() {
        (lo / 2.0, hi * 2.0)
    } else {
        (1e-3, 1.0)
    }
}

/// One set's summary over pairs at each x: the median and the range (lowest to highest).
pub struct Band {
    pub label: String,
    /// x values, increasing (e.g. Adam iterations).
    pub x: Vec<f64>,
    /// Median, lowest and highest value at each x (same length as `x`).
    pub median: Vec<f64>,
    pub low: Vec<f64>,
    pub high: Vec<f64>,
    pub colour: RGBColor,
}

/// How [`bands`] lays out its x axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XAxis {
    /// From 0 to the largest x (e.g. Adam iterations).
    Linear,
    /// Logarithmic over the positive x values, with a margin (e.g. images per parameter).
    Log,
}

/// Median lines with their ranges shaded, against x on a linear or log axis and y on a log axis (values
/// ≤ 0 or non-finite are drawn at the axis floor); an empty figure when no value is positive.
pub fn bands(out: &Path, title: &str, labels: (&str, &str), axis: XAxis, series: &[Band]) -> Result<()> {
    let xs = || series.iter().flat_map(|s| s.x.iter()).copied();
    match axis {
        XAxis::Linear => {
            let x_max = xs().fold(1.0, f64::max);
            bands_on(out, title, labels, 0f64..x_max, series)
        }
        XAxis::Log => {
            let (lo, hi) = log_range(xs());
            bands_on(out, title, labels, (lo..hi).log_scale(), series)
        }
    }
}

fn bands_on<X>(out: &Path, title: &str, (x_label, y_label): (&str, &str), x_range: X, series: &[Band]) -> Result<()>
where
    X: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    X::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let positive = |v: &f64| v.is_finite() && *v > 0.0;
    let (lo, hi) = log_range(series.iter().flat_map(|s| s.low.iter().chain(&s.high).chain(&s.median)).copied());
    let clamp = move |v: f64| if positive(&v) { v.max(lo) } else { lo };
    render_png(out, SIZE, |root| {
        let mut chart = drawing(
            ChartBuilder::on(root)
                .caption(title, ("sans-serif", 24))
                .margin(15)
                .x_label_area_size(50)
                .y_label_area_size(80)
                .build_cartesian_2d(x_range, (lo..hi).log_scale()),
        )?;
        drawing(chart.configure_mesh().x_desc(x_label).y_desc(y_label).label_style(("sans-serif", 16)).draw())?;
        for s in series {
            let c = s.colour;
            let mut outline: Vec<(f64, f64)> = s.x.iter().zip(&s.low).map(|(&x, &v)| (x, clamp(v))).collect();
            outline.extend(s.x.iter().zip(&s.high).rev().map(|(&x, &v)| (x, clamp(v))));
            drawing(chart.draw_series(std::iter::once(Polygon::new(outline, c.mix(0.2).filled()))))?;
            let line = s.x.iter().zip(&s.median).map(|(&x, &v)| (x, clamp(v)));
            drawing(chart.draw_series(LineSeries::new(line, c.stroke_width(2))))?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}
