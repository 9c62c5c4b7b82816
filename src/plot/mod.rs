//! Figures as PNG. Text uses the DejaVu Sans font shipped in `assets/fonts/`, so figures look the same
//! on every machine.

pub mod figures;
pub mod surface;
pub mod toy;

use anyhow::{anyhow, Result};
use std::path::Path;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers the shipped font as plotters' "sans-serif".
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [plotters::style::FontStyle::Normal, plotters::style::FontStyle::Bold] {
            // the font is compiled in; a parse failure would fail every figure test
            let _ = plotters::style::register_font("sans-serif", style, FONT);
        }
    });
}

/// Draws with `draw` on a white RGB canvas of `size` and writes it as PNG (atomically).
pub fn render_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(
        &plotters::drawing::DrawingArea<plotters::backend::BitMapBackend, plotters::coord::Shift>,
    ) -> Result<()>,
) -> Result<()> {
    use plotters::prelude::*;
    register_font();
    let mut buf = vec![255u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("drawing failed: {e}"))?;
        draw(&root)?;
        root.present().map_err(|e| anyhow!("drawing failed: {e}"))?;
    }
    let img = image::RgbImage::from_raw(size.0, size.1, buf).ok_or_else(|| anyhow!("canvas size mismatch"))?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    crate::io::atomic_write(path, &png)
}

/// A tick label on a linear axis: three decimals at most, and never "-0" (a tick at zero computed
/// as -1e-17 would print so).
pub fn tick(v: &f64) -> String {
    format!("{}", (v * 1000.0).round() / 1000.0 + 0.0)
}

/// Draws the axes of a chart whose axes are both linear in f64, labelled `x` and `y`, with [`tick`]
/// labels, and the grid when `grid`.
pub fn linear_axes<'a, DB>(
    chart: &mut plotters::chart::ChartContext<
        'a,
        DB,
        plotters::coord::cartesian::Cartesian2d<
            plotters::coord::types::RangedCoordf64,
            plotters::coord::types::RangedCoordf64,
        >,
    >,
    (x, y): (&str, &str),
    grid: bool,
) -> Result<()>
where
    DB: plotters::backend::DrawingBackend + 'a,
{
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x).y_desc(y).x_label_formatter(&tick).y_label_formatter(&tick).label_style(("sans-serif", 16));
    if !grid {
        mesh.disable_mesh();
    }
    drawing(mesh.draw())
}

/// Turns a plotters error into an anyhow error.
pub fn drawing<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T> {
    r.map_err(|e| anyhow!("drawing failed: {e}"))
}

/// The legend box every figure uses.
pub fn legend<'a, DB, CT>(
    chart: &mut plotters::chart::ChartContext<'a, DB, CT>,
    position: plotters::chart::SeriesLabelPosition,
) -> Result<()>
where
    DB: plotters::backend::DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate,
{
    use plotters::style::{Color, BLACK, WHITE};
    drawing(
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .position(position)
            .draw(),
    )
}
