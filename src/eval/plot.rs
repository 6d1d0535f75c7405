//! `robustness.png`: mean F1 against perturbation strength, one panel per kind, one line per model,
//! drawn with plotters into our own RGB buffer with the bundled font (no system fonts). Points are
//! spaced evenly in the order the strengths were given (JPEG 100, 90, ... reads left to right as
//! growing damage) and labelled with their values; the y axis runs from 0 to 1; a dashed line in
//! the model's colour marks its unperturbed mean F1; the legend names the models below the panels.

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};
use crate::report::files::png_rgb8;

/// One model's mean F1 at each strength of a panel, in the panel's order (`None` where it has none).
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub model: String,
    pub f1: Vec<Option<f64>>,
}

/// One panel: a perturbation kind's title, its x axis title, its strengths, and a line per model.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub title: String,
    pub x_title: String,
    pub strengths: Vec<f64>,
    pub lines: Vec<Line>,
}

pub const PANEL_W: u32 = 440;
pub const PANEL_H: u32 = 320;
/// Height of the legend strip under the panels.
pub const LEGEND_H: u32 = 44;
/// Line colours, one per model in order (colour-blind-safe Okabe-Ito hues).
pub const COLORS: [(u8, u8, u8); 6] =
    [(213, 94, 0), (0, 114, 178), (0, 158, 115), (204, 121, 167), (230, 159, 0), (86, 180, 233)];
const FONT: &str = "sans-serif";

fn color(i: usize) -> RGBColor {
    let (r, g, b) = COLORS[i % COLORS.len()];
    RGBColor(r, g, b)
}

/// Register the bundled font with plotters (once; plotters draws no text without it).
fn register_font() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        // The bytes are the bundled font, which parses (report::text's tests).
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, crate::report::text::FONT_TTF);
    });
}

/// A short label for a strength: integers without decimals.
fn label(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e6 {
        format!("{}", v as i64)
    } else {
        format!("{v:.1}")
    }
}

fn plot_err<E: std::fmt::Display>(e: E) -> Error {
    Error::invalid(format!("robustness plot: {e}"))
}

/// The PNG bytes of the plot; `clean[i]` is model i's unperturbed mean F1 (the lines' order).
pub fn robustness_png(series: &[Series], clean: &[Option<f64>]) -> Result<Vec<u8>> {
    register_font();
    let panels = series.len().max(1) as u32;
    let (w, h) = (PANEL_W * panels, PANEL_H + LEGEND_H);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (top, legend) = root.split_vertically(PANEL_H);
        let areas = top.split_evenly((1, panels as usize));
        for (s, area) in series.iter().zip(&areas) {
            draw_panel(area, s, clean)?;
        }
        if series.is_empty() {
            top.draw(&Text::new("no perturbation results", (20, 20), (FONT, 18).into_font())).map_err(plot_err)?;
        }
        // The legend: one entry per model (the first panel's lines; every panel has the same).
        let models: Vec<&str> =
            series.first().map(|s| s.lines.iter().map(|l| l.model.as_str()).collect()).unwrap_or_default();
        let font = (FONT, 16).into_font();
        let mut x = 16i32;
        let y = (LEGEND_H / 2) as i32;
        for (i, m) in models.iter().enumerate() {
            let c = color(i);
            legend.draw(&PathElement::new(vec![(x, y), (x + 28, y)], c.stroke_width(3))).map_err(plot_err)?;
            legend.draw(&Circle::new((x + 14, y), 4, c.filled())).map_err(plot_err)?;
            let text = Text::new(m.to_string(), (x + 36, y - 9), font.clone());
            legend.draw(&text).map_err(plot_err)?;
            let tw = crate::report::text::text_width(m, 16.0) as i32;
            x += 36 + tw + 28;
        }
        if !models.is_empty() {
            let note = "dashed: unperturbed mean F1";
            legend
                .draw(&Text::new(note, (x + 8, y - 8), (FONT, 14).into_font().color(&RGBColor(90, 90, 90))))
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    png_rgb8(w as usize, h as usize, buf)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    s: &Series,
    clean: &[Option<f64>],
) -> Result<()> {
    let n = s.strengths.len() as i32;
    let labels: Vec<String> = s.strengths.iter().map(|&v| label(v)).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(&s.title, (FONT, 18).into_font())
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(48)
        .build_cartesian_2d(-1..n.max(1), 0.0f64..1.0f64)
        .map_err(plot_err)?;
    let fmt_x = |v: &i32| usize::try_from(*v).ok().and_then(|i| labels.get(i)).cloned().unwrap_or_default();
    chart
        .configure_mesh()
        .x_labels((n + 2) as usize)
        .x_label_formatter(&fmt_x)
        .y_labels(6)
        .y_label_formatter(&|v| format!("{v:.1}"))
        .x_desc(s.x_title.as_str())
        .y_desc("mean F1")
        .axis_desc_style((FONT, 15).into_font())
        .label_style((FONT, 13).into_font())
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(plot_err)?;
    for (i, line) in s.lines.iter().enumerate() {
        let c = color(i);
        if let Some(Some(f1)) = clean.get(i) {
            let dashed = DashedLineSeries::new([(-1, *f1), (n.max(1), *f1)], 6, 4, c.stroke_width(1));
            chart.draw_series(dashed).map_err(plot_err)?;
        }
        let pts: Vec<(i32, f64)> =
            line.f1.iter().enumerate().filter_map(|(k, v)| v.map(|f| (k as i32, f.clamp(0.0, 1.0)))).collect();
        chart.draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2))).map_err(plot_err)?;
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled()))).map_err(plot_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &[u8]) -> image::RgbImage {
        image::load_from_memory(png).unwrap().to_rgb8()
    }

    #[test]
    fn draws_one_panel_per_kind_one_line_per_model_and_a_legend() {
        let lines = |a: f64, b: f64| {
            vec![
                Line { model: "ela".into(), f1: vec![Some(a), Some(a / 2.0), Some(0.1)] },
                Line { model: "noise".into(), f1: vec![Some(b), None, Some(b / 3.0)] },
            ]
        };
        let series = vec![
            Series {
                title: "Gaussian noise".into(),
                x_title: "variance".into(),
                strengths: vec![3.0, 7.0, 11.0],
                lines: lines(0.8, 0.6),
            },
            Series {
                title: "JPEG".into(),
                x_title: "quality".into(),
                strengths: vec![100.0, 90.0, 50.0],
                lines: lines(0.9, 0.4),
            },
        ];
        let png = robustness_png(&series, &[Some(0.85), Some(0.5)]).unwrap();
        let img = decode(&png);
        assert_eq!(img.dimensions(), (2 * PANEL_W, PANEL_H + LEGEND_H));
        let has = |(r, g, b): (u8, u8, u8), y0: u32, y1: u32| {
            img.enumerate_pixels().any(|(_, y, p)| (y0..y1).contains(&y) && p.0 == [r, g, b])
        };
        for c in &COLORS[..2] {
            assert!(has(*c, 0, PANEL_H), "a line in {c:?}");
            assert!(has(*c, PANEL_H, PANEL_H + LEGEND_H), "a legend entry in {c:?}");
        }
        // The legend's names are text: dark pixels in the strip.
        let dark = img.enumerate_pixels().filter(|(_, y, p)| *y >= PANEL_H && p.0.iter().all(|&v| v < 100)).count();
        assert!(dark > 40, "{dark}");
        assert!(robustness_png(&[], &[]).is_ok());
    }

    #[test]
    fn labels() {
        assert_eq!(label(90.0), "90");
        assert_eq!(label(2.5), "2.5");
    }
}
