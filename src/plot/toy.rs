//! Fig. 3: the toy landscape with the straight and optimised paths, and f along each path.

use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

use super::{drawing, legend, render_png};
use crate::path::toy::{f, ToyPath};

/// Colours of the optimised paths by their lambda's rank, smallest first (the default 10, 100, 1000
/// draw red, blue and green, as in the paper's figure); cycled beyond nine.
const PALETTE: [RGBColor; 9] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The straight line's colour.
const STRAIGHT: RGBColor = RGBColor(40, 40, 40);

/// Each path's colour: the straight line's, or the palette's at its lambda's rank among `paths`' distinct
/// lambdas (so that two lambdas never share a colour, however close).
fn colours(paths: &[ToyPath]) -> Vec<RGBColor> {
    let mut lambdas: Vec<f64> = paths.iter().filter_map(|p| p.lambda).collect();
    lambdas.sort_by(f64::total_cmp);
    lambdas.dedup();
    let rank = |l: f64| lambdas.iter().position(|&m| m == l).unwrap_or(0);
    paths.iter().map(|p| p.lambda.map_or(STRAIGHT, |l| PALETTE[rank(l) % PALETTE.len()])).collect()
}

fn label(path: &ToyPath) -> String {
    match path.lambda {
        None => format!("straight line, H = {:.3}", path.height),
        Some(l) => format!("λ = {}, H = {:.3}", lambda_text(l), path.height),
    }
}

/// A lambda as a short number: 1000 as "1000", 1e12 as "1e12", 0.25 as "0.25".
fn lambda_text(l: f64) -> String {
    let plain = format!("{l}");
    if plain.len() <= 6 {
        plain
    } else {
        format!("{l:e}")
    }
}

/// Banded colours for f (filled contours): low = dark blue, high = light yellow.
fn level_colour(v: f64, lo: f64, hi: f64) -> RGBColor {
    let levels = 20.0;
    let q = (((v - lo) / (hi - lo)).clamp(0.0, 0.999) * levels).floor() / levels;
    let lerp = |a: f64, b: f64| (a + (b - a) * q) as u8;
    RGBColor(lerp(30.0, 250.0), lerp(40.0, 235.0), lerp(110.0, 160.0))
}

/// Writes Fig. 3 to `out` (PNG, 1400 x 620): the landscape with every path on the left, f along each
/// path on the right, each path in its own colour.
///
/// Errors: the file cannot be written.
pub fn figure(paths: &[ToyPath], out: &Path) -> Result<()> {
    render_png(out, (1400, 620), |root| {
        let (left, right) = root.split_horizontally(680);
        let (x0, x1, y0, y1) = (-0.8, 0.8, -0.75, 0.6);
        let mut chart = drawing(
            ChartBuilder::on(&left)
                .caption("Toy landscape f(x, y) and paths", ("sans-serif", 24))
                .margin(15)
                .x_label_area_size(45)
                .y_label_area_size(55)
                .build_cartesian_2d(x0..x1, y0..y1),
        )?;
        super::linear_axes(&mut chart, ("x", "y"), false)?;
        let n = 200;
        let (dx, dy) = ((x1 - x0) / n as f64, (y1 - y0) / n as f64);
        let (lo, hi) = (0.0, 1.6);
        drawing(chart.draw_series((0..n * n).map(|i| {
            let (x, y) = (x0 + (i % n) as f64 * dx, y0 + (i / n) as f64 * dy);
            let c = level_colour(f([x + dx / 2.0, y + dy / 2.0]), lo, hi);
            Rectangle::new([(x, y), (x + dx, y + dy)], c.filled())
        })))?;
        let colours = colours(paths);
        for (p, &c) in paths.iter().zip(&colours) {
            let pts: Vec<(f64, f64)> = p.points.iter().map(|q| (q[0], q[1])).collect();
            drawing(chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2))))?
                .label(label(p))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
            drawing(chart.draw_series(pts.iter().map(|&q| Circle::new(q, 2, c.filled()))))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;

        let top = paths.iter().map(|p| p.height).fold(0.0, f64::max) * 1.1;
        let mut chart = drawing(
            ChartBuilder::on(&right)
                .caption("f along each path", ("sans-serif", 24))
                .margin(15)
                .x_label_area_size(45)
                .y_label_area_size(55)
                .build_cartesian_2d(0.0..1.0, 0.0..top),
        )?;
        super::linear_axes(&mut chart, ("t", "f(w(t))"), true)?;
        for (p, &c) in paths.iter().zip(&colours) {
            let m = p.values.len() - 1;
            let pts: Vec<(f64, f64)> = p.values.iter().enumerate().map(|(i, &v)| (i as f64 / m as f64, v)).collect();
            drawing(chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2))))?
                .label(label(p))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
            drawing(chart.draw_series(pts.iter().map(|&q| Circle::new(q, 2, c.filled()))))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(lambda: Option<f64>) -> ToyPath {
        ToyPath { lambda, points: vec![], values: vec![], height: 0.0 }
    }

    #[test]
    fn every_lambda_has_its_own_colour_and_the_default_three_keep_the_papers() {
        let default = [None, Some(10.0), Some(100.0), Some(1000.0)].map(path);
        let c = colours(&default);
        assert_eq!(c, vec![STRAIGHT, PALETTE[0], PALETTE[1], PALETTE[2]]);
        // two small lambdas, given out of order, one repeated
        let close = [Some(10.0), Some(0.0), Some(10.0), Some(1e12)].map(path);
        assert_eq!(colours(&close), vec![PALETTE[1], PALETTE[0], PALETTE[1], PALETTE[2]]);
    }

    #[test]
    fn labels_and_ticks_are_short() {
        assert_eq!([0.0, 10.0, 1000.0, 0.25, 1e12].map(lambda_text), ["0", "10", "1000", "0.25", "1e12"]);
        assert_eq!(super::super::tick(&-1e-17), "0");
        assert_eq!(super::super::tick(&-0.2000000001), "-0.2");
    }
}
