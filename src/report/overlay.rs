//! Pictures for people: the heat map over the photo, with a colour bar.
//!
//! Colours follow matplotlib's *inferno* (perceptually uniform, readable in grayscale and by
//! colour-blind readers), as a piecewise-linear curve through nine of its samples. The heat map is
//! blended over the photo with an opacity that grows with the probability (0.15 at p = 0 up to
//! 0.75 at p = 1), so unsuspicious areas stay legible; the cleaned mask's outline is drawn in
//! white; a colour bar with ticks 0, 0.5, 1 and the threshold is added on the right, its labels in
//! the bundled font ([`super::text`]).

use crate::imageio::RgbImage;

use super::mask::Mask;

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
        use super::text::{draw_text, fill_rect, line_height};
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
