//! Text in the pictures people read (overlay colour bar, panel titles, region numbers): the bundled
//! DejaVu Sans (assets/fonts, Bitstream Vera licence) rasterized by `ab_glyph`, anti-aliased and
//! blended onto an [`RgbImage`]. One line per call; what falls outside the image is clipped.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};

use crate::imageio::RgbImage;

/// The bundled font file (DejaVu Sans 2.37, assets/fonts/LICENSE-DejaVu.txt). The robustness plot
/// registers the same bytes with plotters.
pub const FONT_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The parsed bundled font.
pub fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_TTF).expect("the bundled font parses"))
}

/// Characters drawn as they are; control characters (a newline, a tab) become a space, so a
/// label is always one line.
fn glyph_chars(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().map(|c| if c.is_control() { ' ' } else { c })
}

/// Height of a line of text at `px` (ascent + descent), in pixels.
pub fn line_height(px: f32) -> usize {
    let f = font().as_scaled(PxScale::from(px.max(1.0)));
    (f.ascent() - f.descent()).ceil().max(0.0) as usize
}

/// Width of `s` drawn at `px`, in pixels (advances and kerning).
pub fn text_width(s: &str, px: f32) -> usize {
    let f = font().as_scaled(PxScale::from(px.max(1.0)));
    let mut w = 0.0f32;
    let mut last = None;
    for c in glyph_chars(s) {
        let id = f.glyph_id(c);
        if let Some(prev) = last {
            w += f.kern(prev, id);
        }
        w += f.h_advance(id);
        last = Some(id);
    }
    w.ceil().max(0.0) as usize
}

/// Draw `s` at `px` pixels with the top-left of its line box at `(x, y)` (may be outside the
/// image: what does not fit is clipped) in `color`; returns the width drawn, as [`text_width`].
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, s: &str, px: f32, color: [u8; 3]) -> usize {
    let scale = PxScale::from(px.max(1.0));
    let f = font().as_scaled(scale);
    let baseline = y as f32 + f.ascent();
    let mut pen = x as f32;
    let mut last = None;
    let (w, h) = (img.width as i64, img.height as i64);
    for c in glyph_chars(s) {
        let id = f.glyph_id(c);
        if let Some(prev) = last {
            pen += f.kern(prev, id);
        }
        let glyph = id.with_scale_and_position(scale, ab_glyph::point(pen, baseline));
        pen += f.h_advance(id);
        last = Some(id);
        let Some(outlined) = font().outline_glyph(glyph) else { continue }; // a space
        let b = outlined.px_bounds();
        outlined.draw(|gx, gy, coverage| {
            let (px_x, px_y) = (b.min.x as i64 + gx as i64, b.min.y as i64 + gy as i64);
            if px_x < 0 || px_y < 0 || px_x >= w || px_y >= h {
                return;
            }
            let a = coverage.clamp(0.0, 1.0);
            let i = (px_y as usize * img.width + px_x as usize) * 3;
            for (v, &c) in img.data[i..i + 3].iter_mut().zip(&color) {
                *v = (*v as f32 + (c as f32 - *v as f32) * a).round() as u8;
            }
        });
    }
    (pen - x as f32).ceil().max(0.0) as usize
}

/// Fill the rectangle `(x, y, w, h)`, clipped to the image.
pub fn fill_rect(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, color: [u8; 3]) {
    let (x0, y0) = (x.max(0), y.max(0));
    let (x1, y1) = ((x + w).min(img.width as i64), (y + h).min(img.height as i64));
    for yy in y0..y1 {
        for xx in x0..x1 {
            let i = (yy as usize * img.width + xx as usize) * 3;
            img.data[i..i + 3].copy_from_slice(&color);
        }
    }
}

/// A `t`-pixel frame just inside the box from `(x0, y0)` to `(x1, y1)` (exclusive), clipped.
pub fn rect_outline(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, t: i64, color: [u8; 3]) {
    fill_rect(img, x0, y0, x1 - x0, t, color);
    fill_rect(img, x0, y1 - t, x1 - x0, t, color);
    fill_rect(img, x0, y0, t, y1 - y0, color);
    fill_rect(img, x1 - t, y0, t, y1 - y0, color);
}

/// Draw `s` on a filled box `pad` pixels larger than the text on each side, its top-left at
/// `(x, y)`; returns the box's (width, height).
#[allow(clippy::too_many_arguments)]
pub fn draw_label(
    img: &mut RgbImage,
    x: i64,
    y: i64,
    s: &str,
    px: f32,
    color: [u8; 3],
    background: [u8; 3],
    pad: i64,
) -> (usize, usize) {
    let (w, h) = (text_width(s, px) as i64 + 2 * pad, line_height(px) as i64 + 2 * pad);
    fill_rect(img, x, y, w, h, background);
    draw_text(img, x + pad, y + pad, s, px, color);
    (w as usize, h as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn white(w: usize, h: usize) -> RgbImage {
        RgbImage::new(w, h, vec![255; w * h * 3]).unwrap()
    }

    fn dark_pixels(img: &RgbImage) -> usize {
        img.data.chunks(3).filter(|p| p[0] < 128).count()
    }

    #[test]
    fn text_is_drawn_inside_its_measured_box() {
        let mut img = white(200, 40);
        let w = draw_text(&mut img, 10, 5, "Score 0.73", 16.0, [0, 0, 0]);
        assert_eq!(w, text_width("Score 0.73", 16.0));
        assert!(dark_pixels(&img) > 50, "glyphs are drawn");
        let lh = line_height(16.0) as i64;
        for (i, p) in img.data.chunks(3).enumerate() {
            let (x, y) = ((i % 200) as i64, (i / 200) as i64);
            if p[0] < 250 {
                assert!((9..=11 + w as i64).contains(&x) && (5..5 + lh).contains(&y), "ink at {x},{y}");
            }
        }
    }

    #[test]
    fn width_grows_with_length_and_size() {
        assert_eq!(text_width("", 14.0), 0);
        assert!(text_width("ab", 14.0) > text_width("a", 14.0));
        assert!(text_width("tampered", 14.0) < text_width("tampered regions", 14.0));
        assert!(text_width("mesorch", 28.0) > text_width("mesorch", 14.0));
        assert!(line_height(28.0) > line_height(14.0));
    }

    #[test]
    fn odd_strings_and_borders_do_not_panic() {
        let mut img = white(30, 12);
        for s in ["", " ", "\n\t\r", "é ü ß — ✓ 🙂 \u{0}", "a very long label that runs far off the right edge"]
        {
            for (x, y) in [(0, 0), (-20, -8), (25, 9), (i64::from(i32::MIN), 3), (3, i64::from(i32::MAX))] {
                draw_text(&mut img, x, y, s, 13.0, [0, 0, 0]);
            }
            draw_text(&mut img, 0, 0, s, 0.0, [0, 0, 0]);
        }
        draw_label(&mut img, 20, 5, "42", 12.0, [255, 255, 255], [0, 0, 0], 2);
        fill_rect(&mut img, -5, -5, 100, 100, [9, 9, 9]);
        assert!(img.data.iter().all(|&v| v == 9));
        let mut empty = RgbImage::new(0, 0, Vec::new()).unwrap_or_else(|_| white(1, 1));
        draw_text(&mut empty, 0, 0, "x", 10.0, [0, 0, 0]);
    }
}
