//! The copy-move detector's CPU step, on the graph's outputs at the analysis size:
//!
//! 1. candidate regions: 8-connected components of the candidate flag, those under `min_area`
//!    pixels dropped (chance agreements of the fit are small and scattered); pixels closer than
//!    the patch radius to the image's edge, or matched to such a pixel, are left out (their
//!    patches hold the zero padding, and the edges of a flat image match each other);
//! 2. mirroring: each candidate pixel `p` matches `m(p) = p + round(offset(p))`; a region `A` is
//!    paired with the region `B` most of its matches land in (at least 20% of them), largest
//!    regions first, each region in one pair at most. A region whose matches land in no other
//!    region is still reported, paired with the pixels its matches cover;
//! 3. each pair: `source = A ∪ m(B)`, `destination = B ∪ m(A)`, so both copies are marked even when
//!    only one side's field is consistent; the affine map `d = M p + t` from `A`'s pixels to their
//!    matches by least squares gives the rotation `atan2(M10 - M01, M00 + M11)` and the scale
//!    `sqrt(|det M|)`; the strength is the share of the pair's pixels whose match lands in the
//!    other side (`(|m(A) ∩ B| + |m(B) ∩ A|) / (|A| + |B|)`, only A's for a one-sided pair);
//! 4. the map: every marked pixel gets `0.6 + 0.4 · strength` (above the usual 0.5 threshold for
//!    any reported pair), then a maximum filter of the patch radius grows the patch centres back to
//!    the regions they describe (a centre is a candidate only when its whole patch matched).

use crate::error::{Error, Result};
use crate::models::copymove::CopyMoveConfig;
use crate::models::model::ClonePair;
use crate::tensor::Tensor;

/// The cleaned map `[1, 1, h, w]` and the pairs, at the analysis size.
pub struct Found {
    pub prob: Tensor,
    pub pairs: Vec<ClonePair>,
}

/// 8-connected components of `mask` with at least `min_area` pixels, each a list of pixel indices.
fn components(mask: &[bool], h: usize, w: usize, min_area: usize) -> Vec<Vec<usize>> {
    let mut seen = vec![false; h * w];
    let mut out = Vec::new();
    for start in 0..h * w {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        let (mut stack, mut comp) = (vec![start], Vec::new());
        while let Some(p) = stack.pop() {
            comp.push(p);
            let (x, y) = ((p % w) as i64, (p / w) as i64);
            for (dx, dy) in [(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)] {
                let (nx, ny) = (x + dx, y + dy);
                if nx >= 0 && ny >= 0 && nx < w as i64 && ny < h as i64 {
                    let q = ny as usize * w + nx as usize;
                    if mask[q] && !seen[q] {
                        seen[q] = true;
                        stack.push(q);
                    }
                }
            }
        }
        if comp.len() >= min_area.max(1) {
            out.push(comp);
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.len()));
    out
}

/// Bounding box `[x0, y0, x1, y1]` of pixel indices, grown by `r` and clipped.
fn bbox(pix: impl Iterator<Item = usize>, w: usize, h: usize, r: usize) -> [usize; 4] {
    let mut b = [usize::MAX, usize::MAX, 0, 0];
    for p in pix {
        let (x, y) = (p % w, p / w);
        b = [b[0].min(x), b[1].min(y), b[2].max(x + 1), b[3].max(y + 1)];
    }
    if b[0] == usize::MAX {
        return [0, 0, 0, 0];
    }
    [b[0].saturating_sub(r), b[1].saturating_sub(r), (b[2] + r).min(w), (b[3] + r).min(h)]
}

/// Least-squares affine map `d = M p + t` over point pairs: (rotation in degrees, scale).
fn affine(pts: &[([f64; 2], [f64; 2])]) -> (f32, f32) {
    let n = pts.len().max(1) as f64;
    let mean = |k: usize, i: usize| pts.iter().map(|pd| [pd.0, pd.1][k][i]).sum::<f64>() / n;
    let (pm, dm) = ([mean(0, 0), mean(0, 1)], [mean(1, 0), mean(1, 1)]);
    let (mut spp, mut sdp) = ([[0.0f64; 2]; 2], [[0.0f64; 2]; 2]);
    for (p, d) in pts {
        let (pc, dc) = ([p[0] - pm[0], p[1] - pm[1]], [d[0] - dm[0], d[1] - dm[1]]);
        for i in 0..2 {
            for j in 0..2 {
                spp[i][j] += pc[i] * pc[j];
                sdp[i][j] += dc[i] * pc[j];
            }
        }
    }
    let det = spp[0][0] * spp[1][1] - spp[0][1] * spp[1][0];
    if det.abs() < 1e-9 {
        return (0.0, 1.0);
    }
    let inv = [[spp[1][1] / det, -spp[0][1] / det], [-spp[1][0] / det, spp[0][0] / det]];
    let m = |i: usize, j: usize| sdp[i][0] * inv[0][j] + sdp[i][1] * inv[1][j];
    let rot = (m(1, 0) - m(0, 1)).atan2(m(0, 0) + m(1, 1)).to_degrees();
    let scale = (m(0, 0) * m(1, 1) - m(0, 1) * m(1, 0)).abs().sqrt();
    (rot as f32, scale as f32)
}

/// Running maximum over `2 r + 1` values along rows, then columns (a square max filter).
fn max_filter(v: &[f32], h: usize, w: usize, r: usize) -> Vec<f32> {
    let pass = |src: &[f32], n: usize, stride: usize, lines: usize, step: usize| {
        let mut out = vec![0.0f32; src.len()];
        for l in 0..lines {
            for i in 0..n {
                let (lo, hi) = (i.saturating_sub(r), (i + r + 1).min(n));
                out[l * step + i * stride] = (lo..hi).map(|k| src[l * step + k * stride]).fold(0.0, f32::max);
            }
        }
        out
    };
    let rows = pass(v, w, 1, h, w);
    pass(&rows, h, w, w, 1)
}

/// The pairs and the cleaned map from the median-filtered field `[1, 3, h, w]` and the fit's
/// output `[1, 2, h, w]`.
pub fn find(field: &Tensor, cand: &Tensor, cfg: &CopyMoveConfig) -> Result<Found> {
    let [1, 3, h, w] = field.shape[..] else {
        return Err(Error::graph(format!("copymove: field of shape {:?}", field.shape)));
    };
    if cand.shape != [1, 2, h, w] {
        return Err(Error::graph(format!("copymove: candidates of shape {:?}", cand.shape)));
    }
    let n = h * w;
    let r = cfg.patch_radius;
    // Where each candidate pixel's match lands (inside the image by construction of the field).
    let target = |p: usize| -> usize {
        let x = ((p % w) as f32 + field.data[p]).round().clamp(0.0, (w - 1) as f32) as usize;
        let y = ((p / w) as f32 + field.data[n + p]).round().clamp(0.0, (h - 1) as f32) as usize;
        y * w + x
    };
    // Patches that reach past the image take the zero padding as content: the edges of a flat
    // image look alike (a strong step) and would match each other. Such pixels, and pixels whose
    // match is one, are no candidates.
    let whole = |p: usize| (r..w.saturating_sub(r)).contains(&(p % w)) && (r..h.saturating_sub(r)).contains(&(p / w));
    let mask: Vec<bool> = (0..n).map(|p| cand.data[p] > 0.5 && whole(p) && whole(target(p))).collect();
    let comps = components(&mask, h, w, cfg.min_area);
    let mut label = vec![usize::MAX; n];
    for (i, c) in comps.iter().enumerate() {
        c.iter().for_each(|&p| label[p] = i);
    }
    // hits[i][j]: matches of region i landing in region j.
    let hits: Vec<Vec<usize>> = comps
        .iter()
        .map(|c| {
            let mut v = vec![0usize; comps.len()];
            c.iter()
                .filter_map(|&p| (label[target(p)] != usize::MAX).then(|| label[target(p)]))
                .for_each(|j| v[j] += 1);
            v
        })
        .collect();
    let mut used = vec![false; comps.len()];
    let mut value = vec![0.0f32; n];
    let mut pairs = Vec::new();
    for a in 0..comps.len() {
        if used[a] {
            continue;
        }
        used[a] = true;
        let best = (0..comps.len()).filter(|&j| j != a).max_by_key(|&j| (hits[a][j], std::cmp::Reverse(j)));
        let partner = best.filter(|&b| !used[b] && hits[a][b] * 5 >= comps[a].len());
        let mirror_a: Vec<usize> = comps[a].iter().map(|&p| target(p)).collect();
        let (src, dst, strength): (Vec<usize>, Vec<usize>, f32) = match partner {
            Some(b) => {
                used[b] = true;
                let mirror_b = comps[b].iter().map(|&p| target(p));
                let s = (hits[a][b] + hits[b][a]) as f32 / (comps[a].len() + comps[b].len()) as f32;
                (
                    comps[a].iter().copied().chain(mirror_b).collect(),
                    comps[b].iter().copied().chain(mirror_a).collect(),
                    s,
                )
            }
            None => {
                let s = hits[a].iter().enumerate().filter(|&(j, _)| j != a).map(|(_, &c)| c).sum::<usize>() as f32
                    / comps[a].len() as f32;
                (comps[a].clone(), mirror_a, s)
            }
        };
        let v = 0.6 + 0.4 * strength.min(1.0);
        for &p in src.iter().chain(&dst) {
            value[p] = value[p].max(v);
        }
        let pts: Vec<([f64; 2], [f64; 2])> = comps[a]
            .iter()
            .map(|&p| {
                let (x, y) = ((p % w) as f64, (p / w) as f64);
                ([x, y], [x + field.data[p] as f64, y + field.data[n + p] as f64])
            })
            .collect();
        let (rotation_deg, scale) = affine(&pts);
        let mean =
            |c: usize| comps[a].iter().map(|&p| field.data[c * n + p] as f64).sum::<f64>() / comps[a].len() as f64;
        pairs.push(ClonePair {
            source: bbox(src.into_iter(), w, h, r),
            destination: bbox(dst.into_iter(), w, h, r),
            offset: [mean(0) as f32, mean(1) as f32],
            rotation_deg,
            scale,
            area: comps[a].len(),
            strength: strength.min(1.0),
        });
    }
    let prob = Tensor::new(&[1, 1, h, w], max_filter(&value, h, w, r))?;
    Ok(Found { prob, pairs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affine_recovers_rotation_and_scale() {
        let (a, s) = (20f64.to_radians(), 1.1);
        let pts: Vec<_> = (0..100)
            .map(|i| {
                let (x, y) = ((i % 10) as f64, (i / 10) as f64);
                ([x, y], [s * (a.cos() * x - a.sin() * y) + 50.0, s * (a.sin() * x + a.cos() * y) + 7.0])
            })
            .collect();
        let (rot, scale) = affine(&pts);
        assert!((rot - 20.0).abs() < 1e-3 && (scale - 1.1).abs() < 1e-4, "{rot} {scale}");
    }

    /// Two 10 x 10 candidate blocks whose offsets point at each other: one pair, both marked,
    /// strength 1; a small third block is dropped by the minimum area.
    #[test]
    fn mirrored_blocks_make_one_pair() {
        let (h, w) = (40, 60);
        let n = h * w;
        let mut field = Tensor::zeros(&[1, 3, h, w]);
        let mut cand = Tensor::zeros(&[1, 2, h, w]);
        for y in 0..h {
            for x in 0..w {
                let p = y * w + x;
                let (dx, dy) = if (5..15).contains(&y) && (5..15).contains(&x) {
                    (30.0, 20.0)
                } else if (25..35).contains(&y) && (35..45).contains(&x) {
                    (-30.0, -20.0)
                } else if (30..33).contains(&y) && (5..8).contains(&x) {
                    (20.0, 0.0)
                } else {
                    continue;
                };
                (field.data[p], field.data[n + p], cand.data[p]) = (dx, dy, 1.0);
            }
        }
        let cfg = CopyMoveConfig { min_area: 50, patch_radius: 2, ..Default::default() };
        let found = find(&field, &cand, &cfg).unwrap();
        assert_eq!(found.pairs.len(), 1, "{:?}", found.pairs);
        let p = &found.pairs[0];
        assert_eq!((p.source, p.destination, p.area), ([3, 3, 17, 17], [33, 23, 47, 37], 100), "{p:?}");
        assert_eq!((p.offset, p.strength), ([30.0, 20.0], 1.0));
        assert!(p.rotation_deg.abs() < 1e-3 && (p.scale - 1.0).abs() < 1e-4, "{p:?}");
        let at = |x: usize, y: usize| found.prob.data[y * w + x];
        assert_eq!((at(4, 4), at(40, 30), at(6, 31), at(25, 20)), (1.0, 1.0, 0.0, 0.0));
    }

    #[test]
    fn no_candidates_no_pairs() {
        let found = find(&Tensor::zeros(&[1, 3, 1, 1]), &Tensor::zeros(&[1, 2, 1, 1]), &Default::default()).unwrap();
        assert!(found.pairs.is_empty() && found.prob.data == [0.0]);
        assert!(find(&Tensor::zeros(&[1, 3, 2, 2]), &Tensor::zeros(&[1, 2, 2, 3]), &Default::default()).is_err());
    }
}
