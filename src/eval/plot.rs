//! `robustness.png`: mean F1 against perturbation strength, one panel per kind, drawn with the
//! image crate and a 3 x 5 pixel font. Points are spaced evenly in the order the strengths were
//! given (JPEG 100, 90, ... reads left to right as growing damage) and labelled with their
//! values; the y axis runs from 0 to 1; a gray line marks the unperturbed mean F1.

use crate::error::Result;
use crate::report::files::png_rgb8;

/// One panel: a perturbation kind, the axis title, and `(strength, mean F1)` in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub title: String,
    pub points: Vec<(f64, f64)>,
}

const PANEL_W: usize = 240;
const PANEL_H: usize = 170;
const LEFT: usize = 34;
const RIGHT: usize = 12;
const TOP: usize = 26;
const BOTTOM: usize = 30;
const SCALE: usize = 2;
const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];
const GRAY: [u8; 3] = [170, 170, 170];
const COLORS: [[u8; 3]; 3] = [[200, 40, 40], [40, 90, 200], [30, 150, 60]];

struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: isize, y: isize, color: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&color);
        }
    }

    fn line(&mut self, (x0, y0): (isize, isize), (x1, y1): (isize, isize), color: [u8; 3]) {
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
        for s in 0..=steps {
            self.set(x0 + (x1 - x0) * s / steps, y0 + (y1 - y0) * s / steps, color);
        }
    }

    fn square(&mut self, (x, y): (isize, isize), r: isize, color: [u8; 3]) {
        for dy in -r..=r {
            for dx in -r..=r {
                self.set(x + dx, y + dy, color);
            }
        }
    }

    /// Text with its top-left corner at `(x, y)`; characters without a glyph are left blank.
    fn text(&mut self, x: isize, y: isize, s: &str) {
        for (n, ch) in s.chars().enumerate() {
            let Some(rows) = crate::report::font::glyph(ch.to_ascii_uppercase()) else { continue };
            for (gy, row) in rows.iter().enumerate() {
                for gx in 0..3 {
                    if row & (4 >> gx) != 0 {
                        let (px, py) = (x + ((n * 4 + gx) * SCALE) as isize, y + (gy * SCALE) as isize);
                        for (dx, dy) in (0..SCALE * SCALE).map(|k| ((k % SCALE) as isize, (k / SCALE) as isize)) {
                            self.set(px + dx, py + dy, BLACK);
                        }
                    }
                }
            }
        }
    }
}

/// Width in pixels of `s` drawn by [`Canvas::text`].
fn text_width(s: &str) -> usize {
    (s.chars().count() * 4).saturating_sub(1) * SCALE
}

/// A short label for a strength: integers without decimals.
fn label(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e6 {
        format!("{}", v as i64)
    } else {
        format!("{v:.1}")
    }
}

/// The PNG bytes of the plot; `clean` is the unperturbed mean F1.
pub fn robustness_png(series: &[Series], clean: Option<f64>) -> Result<Vec<u8>> {
    let panels = series.len().max(1);
    let mut c = Canvas { width: PANEL_W * panels, height: PANEL_H, pixels: WHITE.repeat(PANEL_W * panels * PANEL_H) };
    let (plot_w, plot_h) = (PANEL_W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM);
    for (i, s) in series.iter().enumerate() {
        let (x0, y_bottom) = ((i * PANEL_W + LEFT) as isize, (TOP + plot_h) as isize);
        let y_of = |f1: f64| y_bottom - (f1.clamp(0.0, 1.0) * plot_h as f64).round() as isize;
        c.text(x0, 6, &s.title);
        if let Some(f1) = clean {
            for x in (0..plot_w as isize).step_by(4) {
                c.line((x0 + x, y_of(f1)), (x0 + x + 1, y_of(f1)), GRAY);
            }
        }
        // Axes and y ticks at 0, 0.5, 1.
        c.line((x0, TOP as isize), (x0, y_bottom), BLACK);
        c.line((x0, y_bottom), (x0 + plot_w as isize, y_bottom), BLACK);
        for (v, t) in [(0.0, "0"), (0.5, ".5"), (1.0, "1")] {
            c.line((x0 - 4, y_of(v)), (x0, y_of(v)), BLACK);
            c.text(x0 - 6 - text_width(t) as isize, y_of(v) - 4, t);
        }
        let n = s.points.len();
        let x_of = |k: usize| x0 + 8 + ((plot_w - 16) * k / (n.max(2) - 1)) as isize;
        let mut last_label_end = isize::MIN;
        let color = COLORS[i % COLORS.len()];
        for (k, &(strength, f1)) in s.points.iter().enumerate() {
            let (x, y) = (x_of(k), y_of(f1));
            if k > 0 {
                c.line((x_of(k - 1), y_of(s.points[k - 1].1)), (x, y), color);
            }
            c.square((x, y), 2, color);
            c.line((x, y_bottom), (x, y_bottom + 3), BLACK);
            let t = label(strength);
            let left = x - text_width(&t) as isize / 2;
            if left > last_label_end + 2 {
                c.text(left, y_bottom + 7, &t);
                last_label_end = left + text_width(&t) as isize;
            }
        }
    }
    if series.is_empty() {
        c.text(10, 10, "NO DATA");
    }
    png_rgb8(c.width, c.height, c.pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_panel_per_series_with_coloured_points() {
        let series = vec![
            Series { title: "NOISE VAR".into(), points: vec![(3.0, 0.8), (7.0, 0.6), (11.0, 0.2)] },
            Series { title: "JPEG Q".into(), points: vec![(100.0, 0.9)] },
        ];
        let png = robustness_png(&series, Some(0.85)).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), ((2 * PANEL_W) as u32, PANEL_H as u32));
        let has = |color: [u8; 3]| img.pixels().any(|p| p.0 == color);
        assert!(has(COLORS[0]) && has(COLORS[1]) && has(BLACK) && has(GRAY) && has(WHITE));
        assert!(robustness_png(&[], None).is_ok());
    }

    #[test]
    fn every_character_of_the_titles_has_a_glyph() {
        for s in ["NOISE VAR", "BLUR K", "JPEG Q", "MEAN F1", "0123456789.-"] {
            assert!(s.chars().all(|c| c == ' ' || crate::report::font::glyph(c).is_some()), "{s}");
        }
        assert_eq!(label(90.0), "90");
        assert_eq!(label(2.5), "2.5");
    }
}
