//! Fig. 3: the toy landscape with the straight and optimised paths, and f along each path.

use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

use super::{drawing, legend, render_png};
use crate::path::toy::{f, ToyPath};

fn colour(path: &ToyPath) -> RGBColor {
    match path.lambda {
        None => RGBColor(40, 40, 40),
        Some(l) if l < 50.0 => RGBColor(214, 39, 40),
        Some(l) if l < 500.0 => RGBColor(31, 119, 180),
        Some(_) => RGBColor(44, 160, 44),
    }
}

fn label(path: &ToyPath) -> String {
    match path.lambda {
        None => format!("straight line, H = {:.3}", path.height),
        Some(l) => format!("λ = {l}, H = {:.3}", path.height),
    }
}

/// Banded colours for f (filled contours): low = dark blue, high = light yellow.
fn level_colour(v: f64, lo: f64, hi: f64) -> RGBColor {
    let levels = 20.0;
    let q = (((v - lo) / (hi - lo)).clamp(0.0, 0.999) * levels).floor() / levels;
    let lerp = |a: f64, b: f64| (a + (b - a) * q) as u8;
    RGBColor(lerp(30.0, 250.0), lerp(40.0, 235.0), lerp(110.0, 160.0))
}

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
        drawing(chart.configure_mesh().x_desc("x").y_desc("y").disable_mesh().label_style(("sans-serif", 16)).draw())?;
        let n = 200;
        let (dx, dy) = ((x1 - x0) / n as f64, (y1 - y0) / n as f64);
        let (lo, hi) = (0.0, 1.6);
        drawing(chart.draw_series((0..n * n).map(|i| {
            let (x, y) = (x0 + (i % n) as f64 * dx, y0 + (i / n) as f64 * dy);
            let c = level_colour(f([x + dx / 2.0, y + dy / 2.0]), lo, hi);
            Rectangle::new([(x, y), (x + dx, y + dy)], c.filled())
        })))?;
        for p in paths {
            let c = colour(p);
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
        drawing(chart.configure_mesh().x_desc("t").y_desc("f(w(t))").label_style(("sans-serif", 16)).draw())?;
        for p in paths {
            let c = colour(p);
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
