//! Pictures for people: the heat map over the photo, with a colour bar.
//!
//! Colours follow matplotlib's *inferno* (perceptually uniform, readable in grayscale and by
//! colour-blind readers), as a piecewise-linear curve through nine of its samples. The heat map is
//! blended over the photo with an opacity that grows with the probability (0.15 at p = 0 up to
//! 0.75 at p = 1), so unsuspicious areas stay legible; the cleaned mask's outline is drawn in
//! white; a colour bar with ticks 0, 0.5, 1 and the threshold is added on the right, its labels in
//! the bundled font ([`super::text`]).
//! Matched region pairs (copy-move) are drawn on top by [`draw_pairs`]: each pair's two boxes in
//! one colour, labelled with the pair's number, and an arrow from source to destination.

use crate::imageio::RgbImage;
use crate::models::ClonePair;

use super::mask::Mask;
use super::text::{draw_label, fill_rect, rect_outline};

/// inferno at t = 0, 1/8, ..., 1.
const INFERNO: [[u8; 3]; 9] = [
    [0, 0, 4],
    [31, 12, 72],
    [85, 15, 109],
    [136, 34, 106],
    [186, 54, 85],
    [227, 89, 51],
    [249, 140, 10],
    [249, 201, 50],
    [252, 255, 164],
];

/// The colour of probability `p` (clamped to [0, 1]).
pub fn colormap(p: f32) -> [u8; 3] {
    let t = p.clamp(0.0, 1.0) * 8.0;
    let i = (t.floor() as usize).min(7);
    let f = t - i as f32;
    let (a, b) = (INFERNO[i], INFERNO[i + 1]);
    [0, 1, 2].map(|c| (a[c] as f32 + (b[c] as f32 - a[c] as f32) * f).round() as u8)
}

/// Pair colours: saturated hues that stand out from inferno's dark purples and oranges.
const PAIR_COLOURS: [[u8; 3]; 6] =
    [[0, 255, 255], [0, 255, 0], [255, 0, 255], [255, 255, 0], [0, 128, 255], [255, 255, 255]];

/// A line of `t`-pixel squares from `a` to `b` (DDA: one step per pixel of the longer axis).
fn line(img: &mut RgbImage, a: [f64; 2], b: [f64; 2], t: usize, c: [u8; 3]) {
    let steps = (b[0] - a[0]).abs().max((b[1] - a[1]).abs()).ceil().max(1.0) as usize;
    let half = (t / 2) as f64;
    for i in 0..=steps {
        let f = i as f64 / steps as f64;
        let (x, y) = (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f);
        fill_rect(img, (x - half).round() as i64, (y - half).round() as i64, t as i64, t as i64, c);
    }
}

/// A `t`-pixel frame around the box `[x0, y0, x1, y1]` (exclusive ends), at least 1 pixel wide.
fn frame(img: &mut RgbImage, b: [usize; 4], t: usize, c: [u8; 3]) {
    let (x0, y0) = (b[0] as i64, b[1] as i64);
    let (w, h) = (b[2].saturating_sub(b[0]).max(1) as i64, b[3].saturating_sub(b[1]).max(1) as i64);
    rect_outline(img, x0, y0, x0 + w, y0 + h, t as i64, c);
}

/// Draw matched region pairs over a picture of the image (the overlay: the photo is at its top
/// left, at the same coordinates): pair `i` in colour `i` (cycling through 6), both boxes
/// framed and labelled `i + 1`, and an arrow from the source box's centre to the destination's.
pub fn draw_pairs(img: &mut RgbImage, pairs: &[ClonePair]) {
    let t = (img.height.min(img.width) / 250).clamp(1, 6);
    let px = (img.height.min(img.width) as f32 / 30.0).clamp(11.0, 48.0);
    for (i, p) in pairs.iter().enumerate() {
        let c = PAIR_COLOURS[i % PAIR_COLOURS.len()];
        let label = (i + 1).to_string();
        for b in [p.source, p.destination] {
            frame(img, b, t, c);
            // The number inside the top-left corner, on a dark patch so it reads on any photo.
            draw_label(img, (b[0] + t) as i64, (b[1] + t) as i64, &label, px, c, [0, 0, 0], 2);
        }
        let centre = |b: [usize; 4]| [(b[0] + b[2]) as f64 / 2.0, (b[1] + b[3]) as f64 / 2.0];
        let (a, b) = (centre(p.source), centre(p.destination));
        line(img, a, b, t, c);
        // Arrowhead: two strokes back from the tip at +-25 degrees.
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len = dx.hypot(dy).max(1.0);
        let head = (8 * t) as f64;
        for s in [-1.0f64, 1.0] {
            let (sn, cs) = (s * 25f64.to_radians()).sin_cos();
            let (ux, uy) = (-(dx * cs - dy * sn) / len, -(dx * sn + dy * cs) / len);
            line(img, b, [b[0] + ux * head, b[1] + uy * head], t, c);
        }
    }
}

/// The photo with the heat map blended in and the mask's outline in white, at the photo's size.
pub fn blend(img: &RgbImage, prob: &[f32], mask: &Mask) -> RgbImage {
    let (w, h) = (img.width, img.height);
    let mut data = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let p = prob[i].clamp(0.0, 1.0);
            let a = 0.15 + 0.6 * p;
            let c = colormap(p);
            let o = &img.data[i * 3..i * 3 + 3];
            let mut px = [0u8; 3];
            for k in 0..3 {
                px[k] = ((1.0 - a) * o[k] as f32 + a * c[k] as f32).round() as u8;
            }
            // Outline: a marked pixel with an unmarked 4-neighbour (or the image edge).
            let m = |xx: usize, yy: usize| mask.data[yy * w + xx];
            if m(x, y)
                && (x == 0
                    || y == 0
                    || x + 1 == w
                    || y + 1 == h
                    || !m(x - 1, y)
                    || !m(x + 1, y)
                    || !m(x, y - 1)
                    || !m(x, y + 1))
            {
                px = [255, 255, 255];
            }
            data[i * 3..i * 3 + 3].copy_from_slice(&px);
        }
    }
    RgbImage { width: w, height: h, data }
}

/// Geometry of a colour bar drawn with text of `font_px` pixels.
#[derive(Clone, Copy, Debug)]
pub struct ColourBar {
    pub font_px: f32,
}

impl ColourBar {
    /// A bar whose text suits a picture `height` pixels tall.
    pub fn for_height(height: usize) -> ColourBar {
        ColourBar { font_px: (height as f32 / 26.0).clamp(11.0, 44.0) }
    }
    fn pad(&self) -> usize {
        (self.font_px / 3.0).round().max(2.0) as usize
    }
    fn bar_w(&self) -> usize {
        self.font_px.round() as usize
    }
    /// Width the bar and its labels take, padding included.
    pub fn width(&self) -> usize {
        3 * self.pad() + self.pad() / 2 + self.bar_w() + super::text::text_width("0.5", self.font_px)
    }
    /// Draw the bar (p = 1 at the top) with ticks 0, 0.5, 1 and the threshold as a white line, in
    /// the column starting at `x`, between rows `top` and `bottom`.
    pub fn draw(&self, cv: &mut RgbImage, x: usize, top: usize, bottom: usize, threshold: f32) {
        use super::text::{draw_text, line_height};
        let (pad, bar_w) = (self.pad(), self.bar_w());
        let half = line_height(self.font_px) / 2;
        // Room above and below for the end labels.
        let (top, bottom) = (top + half, bottom.saturating_sub(half));
        if bottom <= top + 1 {
            return;
        }
        let bx = x + pad;
        let span = bottom - top;
        for y in top..bottom {
            let p = 1.0 - (y - top) as f32 / (span - 1).max(1) as f32;
            fill_rect(cv, bx as i64, y as i64, bar_w as i64, 1, colormap(p));
        }
        let tick_y = |p: f32| (top + ((1.0 - p) * (span - 1) as f32).round() as usize) as i64;
        let black = [0, 0, 0];
        let lx = (bx + bar_w + pad + pad / 2) as i64;
        let line = (self.font_px / 12.0).round().max(1.0) as i64;
        for (p, label) in [(1.0, "1"), (0.5, "0.5"), (0.0, "0")] {
            let y = tick_y(p);
            fill_rect(cv, (bx + bar_w) as i64, y - line / 2, (pad / 2 + 1) as i64, line, black);
            draw_text(cv, lx, y - half as i64, label, self.font_px, black);
        }
        // The threshold as a white line across the bar, edged in black so it shows on light colours.
        let ty = tick_y(threshold.clamp(0.0, 1.0));
        fill_rect(cv, bx as i64 - 1, ty - line / 2 - 1, bar_w as i64 + 2, line + 2, black);
        fill_rect(cv, bx as i64, ty - line / 2, bar_w as i64, line, [255, 255, 255]);
    }
}

/// The photo with the heat map blended in, the mask's outline, and a colour bar on the right.
pub fn overlay(img: &RgbImage, prob: &[f32], mask: &Mask, threshold: f32) -> RgbImage {
    let (w, h) = (img.width, img.height);
    let bar = ColourBar::for_height(h);
    let total_w = w + bar.width();
    let blended = blend(img, prob, mask);
    let mut cv = RgbImage { width: total_w, height: h, data: vec![255; total_w * h * 3] };
    for y in 0..h {
        cv.data[y * total_w * 3..][..w * 3].copy_from_slice(&blended.data[y * w * 3..][..w * 3]);
    }
    bar.draw(&mut cv, w, 0, h, threshold);
    cv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_framed_in_their_colour_with_an_arrow() {
        let (w, h) = (200, 120);
        let mut img = RgbImage::new(w, h, vec![100; w * h * 3]).unwrap();
        let pair = ClonePair {
            source: [10, 10, 50, 50],
            destination: [120, 60, 160, 100],
            offset: [110.0, 50.0],
            rotation_deg: 0.0,
            scale: 1.0,
            area: 1600,
            strength: 1.0,
        };
        draw_pairs(&mut img, std::slice::from_ref(&pair));
        let at = |x: usize, y: usize| &img.data[(y * w + x) * 3..][..3];
        assert_eq!(at(30, 10), PAIR_COLOURS[0], "source frame");
        assert_eq!(at(159, 80), PAIR_COLOURS[0], "destination frame");
        assert_eq!(at(85, 55), PAIR_COLOURS[0], "arrow through the middle");
        assert_eq!(at(100, 20), [100, 100, 100], "the rest untouched");
    }

    #[test]
    fn colormap_is_monotone_in_lightness_and_hits_the_ends() {
        assert_eq!(colormap(0.0), INFERNO[0]);
        assert_eq!(colormap(1.0), INFERNO[8]);
        assert_eq!(colormap(-3.0), INFERNO[0]);
        assert_eq!(colormap(0.5), INFERNO[4]);
        let luma = |c: [u8; 3]| 0.299 * c[0] as f32 + 0.587 * c[1] as f32 + 0.114 * c[2] as f32;
        let mut last = -1.0;
        for i in 0..=100 {
            let l = luma(colormap(i as f32 / 100.0));
            assert!(l >= last, "lightness must not decrease (at {i}%)");
            last = l;
        }
    }

    #[test]
    fn overlay_keeps_the_photo_where_p_is_low_and_outlines_the_mask() {
        let (w, h) = (40, 30);
        let img = RgbImage::new(w, h, vec![100; w * h * 3]).unwrap();
        let mut prob = vec![0.0f32; w * h];
        for y in 10..20 {
            for x in 10..20 {
                prob[y * w + x] = 1.0;
            }
        }
        let mask = Mask::threshold(&prob, w, h, 0.5);
        let o = overlay(&img, &prob, &mask, 0.5);
        assert!(o.width > w && o.height == h);
        let at = |x: usize, y: usize| &o.data[(y * o.width + x) * 3..][..3];
        assert_eq!(at(10, 10), [255, 255, 255], "outline");
        let inside = at(15, 15);
        assert!(inside[0] > 150 && inside[2] > 100, "bright heat inside: {inside:?}");
        let outside = at(2, 2);
        assert!(outside.iter().all(|&v| (80..=100).contains(&v)), "photo shows through: {outside:?}");
    }
}
