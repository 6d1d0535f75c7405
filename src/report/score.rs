//! The image-level score: one number per image saying how suspicious it is.
//!
//! Definition: the maximum of the probability map after a box blur whose side is 1% of the
//! image's shorter side (odd, at least 3 pixels), at the image's resolution.
//! Why: the max answers "is there *any* tampered region", which a mean would dilute for small
//! splices; the blur first makes a few isolated hot pixels (noise, JPEG edges) count for little,
//! while any region about 1% of the image wide keeps its full value. `eval` computes image-level
//! AUC with this same function. `infer`'s verdict uses each model's calibrated score
//! ([`super::verdict`]), of which this is one rule.

/// Side of the box used by [`image_score`] for a `w` x `h` image.
pub fn score_box(w: usize, h: usize) -> usize {
    let side = (w.min(h) as f64 / 100.0).round() as usize;
    (side.max(3)) | 1
}

/// See the module documentation. `prob` is row-major `h` x `w`; an empty map (or one whose length
/// is not `w * h`) scores 0.
pub fn image_score(prob: &[f32], w: usize, h: usize) -> f32 {
    image_score_box(prob, w, h, score_box(w, h))
}

/// The maximum of the map after a box blur of `side` pixels (odd); see [`image_score`].
pub fn image_score_box(prob: &[f32], w: usize, h: usize, side: usize) -> f32 {
    if w == 0 || h == 0 || prob.len() != w * h {
        return 0.0;
    }
    let r = side / 2;
    // Integral image in f64; the box is clipped at the borders and averaged over what is inside.
    let mut sat = vec![0.0f64; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0.0f64;
        for x in 0..w {
            row += prob[y * w + x] as f64;
            sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1] + row;
        }
    }
    let mut best = 0.0f64;
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
            let s = sat[y1 * (w + 1) + x1] - sat[y0 * (w + 1) + x1] - sat[y1 * (w + 1) + x0] + sat[y0 * (w + 1) + x0];
            best = best.max(s / ((y1 - y0) * (x1 - x0)) as f64);
        }
    }
    best as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hot_pixel_counts_little_a_region_counts_fully() {
        let (w, h) = (200, 150);
        let mut p = vec![0.0f32; w * h];
        p[70 * w + 90] = 1.0;
        assert_eq!(score_box(w, h), 3);
        assert!((image_score(&p, w, h) - 1.0 / 9.0).abs() < 1e-6);
        for y in 20..30 {
            for x in 40..52 {
                p[y * w + x] = 0.8;
            }
        }
        assert!((image_score(&p, w, h) - 0.8).abs() < 1e-6);
        assert_eq!(image_score(&[], 0, 0), 0.0);
        assert_eq!(score_box(4000, 3000), 31);
        // At the border the box is clipped, not padded with zeros.
        let one = vec![0.6f32; 5 * 4];
        assert!((image_score(&one, 5, 4) - 0.6).abs() < 1e-6);
    }
}
