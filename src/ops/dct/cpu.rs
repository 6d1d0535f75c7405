//! The DCT filter on the CPU backend, per plane, with the f32 DCT matrices the GPU path uses.
//!
//! The transforms are plain GEMMs; the filter (forward, mask, inverse) is not run as four full
//! ones. With `Z` the zeroed block (rows `R` x columns `C`) and `D` the DCT matrices,
//! `x' = D_h^T (X - X_Z) D_w`, and either
//! - the kept coefficients form thin rectangles (Mesorch's low-pass keeps rows 0..26 or columns
//!   0..26 of 512): `x'` is the sum of one term per kept rectangle, each a product of rank 26;
//! - or the zeroed block is small (the high-pass zeroes 25 x 25): `x' = G_h x G_w - D_h[R]^T X_Z
//!   D_w[C]`, with `G = D^T D` (the identity up to the f32 matrices' rounding, which the model
//!   keeps) prepared at plan time: two full products instead of four.
//!
//! Each term `D_h[rows]^T (D_h[rows] x D_w[cols]^T) D_w[cols]` is associated in the cheaper
//! order. The results differ from the four products only in the order of the f32 sums.

use super::{dct_matrix, DctFilter, DctMode};
use crate::cpu::gemm::{sgemm, Mat};
use crate::cpu::{with_scratch, CpuInput, CpuKernel, Scratch};
use std::ops::Range;

pub(super) struct DctCpu {
    h: usize,
    w: usize,
    dh: Vec<f32>,
    dw: Vec<f32>,
    /// What each plane gets (chosen at plan time).
    form: Form,
}

/// A rectangle of coefficients: rows x columns.
type Rect = (Range<usize>, Range<usize>);

enum Form {
    /// The forward transform, then `zeroed` cleared.
    Forward { zeroed: Rect },
    /// The inverse transform.
    Inverse,
    /// The filter as the sum of one term per kept rectangle.
    Kept(Vec<Rect>),
    /// The filter as `G_h x G_w` (the Gram matrices `D^T D`, row-major) less the zeroed block's
    /// term.
    Gram { gh: Vec<f32>, gw: Vec<f32>, zeroed: Rect },
}

pub(super) fn kernel(f: &DctFilter, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    let x = inputs[0].shape;
    let (h, w) = (x[x.len() - 2], x[x.len() - 1]);
    let (dh, dw) = (dct_matrix(h), dct_matrix(w));
    let form = match f.mode {
        DctMode::Forward => Form::Forward { zeroed: f.mask.zeroed(h, w) },
        DctMode::Inverse => Form::Inverse,
        DctMode::Filter => filter_form(f.mask.zeroed(h, w), h, w, &dh, &dw),
    };
    Some(Box::new(DctCpu { h, w, dh, dw, form }))
}

/// The cheaper way to filter `h x w` planes whose coefficients `(rows, cols)` are zeroed.
fn filter_form((rows, cols): Rect, h: usize, w: usize, dh: &[f32], dw: &[f32]) -> Form {
    // Kept: all columns of the rows outside R, and the columns outside C of the rows in R.
    let kept: Vec<Rect> = complement(&rows, h)
        .map(|r| (r, 0..w))
        .chain(complement(&cols, w).map(|c| (rows.clone(), c)))
        .filter(|(r, c)| !r.is_empty() && !c.is_empty())
        .collect();
    let kept_cost: usize = kept.iter().map(|r| rect_cost(h, w, r)).sum();
    let gram_cost = h * h * w + h * w * w + rect_cost(h, w, &(rows.clone(), cols.clone()));
    if kept_cost <= gram_cost {
        Form::Kept(kept)
    } else {
        let gh = gram(dh, h);
        let gw = if w == h { gh.clone() } else { gram(dw, w) };
        Form::Gram { gh, gw, zeroed: (rows, cols) }
    }
}

/// The parts of `0..n` outside `r`.
fn complement(r: &Range<usize>, n: usize) -> impl Iterator<Item = Range<usize>> {
    [0..r.start.min(n), r.end.min(n)..n].into_iter().filter(|p| !p.is_empty())
}

/// `D^T D` for the `n x n` row-major `d`, summed in f64 (k ascending) and rounded once: each
/// task's rows of G take rank-1 updates row by row of `d`, so the inner loop runs along
/// contiguous rows.
fn gram(d: &[f32], n: usize) -> Vec<f32> {
    use rayon::prelude::*;
    let mut g = vec![0.0f32; n * n];
    let rows = n.div_ceil(2 * crate::cpu::threads()).max(1);
    g.par_chunks_mut(rows * n).enumerate().for_each(|(t, block)| {
        let i0 = t * rows;
        let mut acc = vec![0.0f64; block.len()];
        for row in d.chunks_exact(n) {
            for (gi, &di) in acc.chunks_exact_mut(n).zip(&row[i0..]) {
                for (v, &dj) in gi.iter_mut().zip(row) {
                    *v += di as f64 * dj as f64;
                }
            }
        }
        block.iter_mut().zip(acc).for_each(|(o, v)| *o = v as f32);
    });
    g
}

/// Multiply-adds of the two steps of [`DctCpu::term`], each in its cheaper order.
fn rect_cost(h: usize, w: usize, (r, c): &Rect) -> usize {
    let (a, b) = (r.len(), c.len());
    (a * h * w + a * w * b).min(h * w * b + a * h * b) + (h * a * b + h * b * w).min(a * b * w + h * a * w)
}

impl DctCpu {
    /// `y (+)= sign * D_h[r]^T (D_h[r] x D_w[c]^T) D_w[c]`, with `s1`, `s2` (each `h * w`
    /// floats) as scratch.
    #[allow(clippy::too_many_arguments)]
    fn term(&self, x: &[f32], (r, c): &Rect, negate: bool, y: &mut [f32], accumulate: bool, s1: &mut [f32], s2: &mut [f32]) {
        let (h, w) = (self.h, self.w);
        let (a, b) = (r.len(), c.len());
        let dh_r = &self.dh[r.start * h..];
        let dw_c = &self.dw[c.start * w..];
        // The coefficients of the rectangle, a x b, into s1.
        let xr = &mut s1[..a * b];
        if a * h * w + a * w * b <= h * w * b + a * h * b {
            sgemm(a, h, w, Mat::rows(dh_r, h), Mat::rows(x, w), s2, w, false);
            sgemm(a, w, b, Mat::rows(s2, w), Mat::t(dw_c, w), xr, b, false);
        } else {
            sgemm(h, w, b, Mat::rows(x, w), Mat::t(dw_c, w), s2, b, false);
            sgemm(a, h, b, Mat::rows(dh_r, h), Mat::rows(s2, b), xr, b, false);
        }
        if negate {
            xr.iter_mut().for_each(|v| *v = -*v);
        }
        let xr = &s1[..a * b];
        if h * a * b + h * b * w <= a * b * w + h * a * w {
            sgemm(h, a, b, Mat::t(dh_r, h), Mat::rows(xr, b), s2, b, false);
            sgemm(h, b, w, Mat::rows(s2, b), Mat::rows(dw_c, w), y, w, accumulate);
        } else {
            sgemm(a, b, w, Mat::rows(xr, b), Mat::rows(dw_c, w), s2, w, false);
            sgemm(h, a, w, Mat::t(dh_r, h), Mat::rows(s2, w), y, w, accumulate);
        }
    }

    /// One plane.
    fn plane(&self, x: &[f32], y: &mut [f32], s1: &mut [f32], s2: &mut [f32]) {
        let (h, w) = (self.h, self.w);
        let (dh, dw) = (&self.dh[..], &self.dw[..]);
        match &self.form {
            Form::Forward { zeroed: (rows, cols) } => {
                // X = D_h x D_w^T, then the mask.
                sgemm(h, w, w, Mat::rows(x, w), Mat::t(dw, w), s1, w, false);
                sgemm(h, h, w, Mat::rows(dh, h), Mat::rows(s1, w), y, w, false);
                for r in rows.clone() {
                    y[r * w + cols.start..r * w + cols.end].fill(0.0);
                }
            }
            Form::Inverse => {
                // x = D_h^T X D_w.
                sgemm(h, h, w, Mat::t(dh, h), Mat::rows(x, w), s1, w, false);
                sgemm(h, w, w, Mat::rows(s1, w), Mat::rows(dw, w), y, w, false);
            }
            Form::Kept(rects) => {
                if rects.is_empty() {
                    y.fill(0.0);
                }
                for (i, rect) in rects.iter().enumerate() {
                    self.term(x, rect, false, y, i > 0, s1, s2);
                }
            }
            Form::Gram { gh, gw, zeroed } => {
                sgemm(h, h, w, Mat::rows(gh, h), Mat::rows(x, w), s1, w, false);
                sgemm(h, w, w, Mat::rows(s1, w), Mat::rows(gw, w), y, w, false);
                if !zeroed.0.is_empty() && !zeroed.1.is_empty() {
                    self.term(x, zeroed, true, y, true, s1, s2);
                }
            }
        }
    }
}

impl CpuKernel for DctCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (h, w) = (self.h, self.w);
        with_scratch(Scratch::Call, 2 * h * w, |buf| {
            let (s1, s2) = buf.split_at_mut(h * w);
            for (x, y) in inputs[0].chunks(h * w).zip(outputs[0].chunks_mut(h * w)) {
                self.plane(x, y, s1, s2);
            }
        });
    }
    fn name(&self) -> &'static str {
        match self.form {
            Form::Kept(_) => "dct gemm, kept rectangles",
            Form::Gram { .. } => "dct gemm, gram less the zeroed block",
            Form::Forward { .. } | Form::Inverse => "dct gemm",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::DctMask;
    use super::*;
    use crate::ops::testing::check_op_cpu;
    use crate::tensor::{Rng, Tensor};

    /// Both ways of computing the filter, on masks that pick each (rectangles in both association
    /// orders, nothing kept), against the reference's four products: relative 1e-4.
    #[test]
    fn both_filter_forms_match_reference() {
        let seed = Rng::fresh_seed();
        let masks = [
            (DctMask::LOW, "kept"),
            (DctMask::HIGH, "gram"),
            (DctMask::Low { ratio: 0.5 }, ""),
            (DctMask::High { ratio: 0.25 }, "gram"),
            (DctMask::None, "gram"),
            (DctMask::Low { ratio: 1.0 }, "kept"),
        ];
        for (i, shape) in [[1, 3, 64, 96], [2, 1, 40, 20], [1, 2, 17, 5]].iter().enumerate() {
            let x = Tensor::random(shape, seed + i as u64, -1.0, 1.0);
            for (mask, form) in masks {
                let f = DctFilter::filter(mask);
                let shapes = [&shape[..]];
                let ins: Vec<CpuInput> = shapes.iter().map(|s| CpuInput { shape: s, constant: None }).collect();
                let name = kernel(&f, &ins).unwrap().name();
                // The form is a cost choice; at 64 x 96 each mask's is known ("" where both cost the same).
                if i == 0 {
                    assert!(name.contains(form), "{mask:?} {shape:?}: {name}");
                }
                check_op_cpu(&format!("{mask:?} {shape:?} seed {seed}"), &f, std::slice::from_ref(&x), 1e-4);
            }
        }
    }
}
