//! offset_median and offset_fit on the CPU backend: pixels on the pool. The median selects the
//! two middle values of a window held on the stack; the fit sums the window's moments once and
//! takes the residual from them (`Σ e² = Σ d² - coef · rhs` for a least-squares solution) instead
//! of a second pass over the window, in f64.

use super::{window, OffsetFit, OffsetMedian, BIG};
use crate::cpu::{CpuInput, CpuKernel};
use rayon::prelude::*;

fn hw(inputs: &[CpuInput]) -> Option<(usize, usize)> {
    match inputs.first()?.shape {
        &[_, _, h, w] => Some((h, w)),
        _ => None,
    }
}

struct MedianCpu {
    radius: usize,
    h: usize,
    w: usize,
}

pub(super) fn median_kernel(op: &OffsetMedian, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    let (h, w) = hw(inputs)?;
    // The stack window below holds (2r + 1)² values.
    (op.radius <= 3).then(|| Box::new(MedianCpu { radius: op.radius, h, w }) as Box<dyn CpuKernel>)
}

impl CpuKernel for MedianCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (f, n) = (inputs[0], self.h * self.w);
        let medians: Vec<[f32; 2]> = (0..n)
            .into_par_iter()
            .with_min_len(1024)
            .map(|p| {
                let (x0, y0, x1, y1) = window(p, self.h, self.w, self.radius);
                let mut m = [0.0f32; 2];
                for (c, mc) in m.iter_mut().enumerate() {
                    let mut vals = [0.0f32; 49];
                    let mut len = 0;
                    for y in y0..y1 {
                        for &v in &f[c * n + y * self.w + x0..c * n + y * self.w + x1] {
                            vals[len] = v;
                            len += 1;
                        }
                    }
                    let vals = &mut vals[..len];
                    let (_, hi, _) = vals.select_nth_unstable_by(len / 2, f32::total_cmp);
                    let hi = *hi;
                    // The lower middle of an even count is the largest value below the upper one.
                    let lo = if len % 2 == 1 { hi } else { vals[..len / 2].iter().copied().fold(f32::MIN, f32::max) };
                    *mc = (lo + hi) * 0.5;
                }
                m
            })
            .collect();
        let out = &mut *outputs[0];
        out.copy_from_slice(f);
        for (p, m) in medians.iter().enumerate() {
            (out[p], out[n + p]) = (m[0], m[1]);
        }
    }
    fn name(&self) -> &'static str {
        "select"
    }
}

struct FitCpu {
    op: OffsetFit,
    h: usize,
    w: usize,
    k: usize,
}

pub(super) fn fit_kernel(op: &OffsetFit, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    let (h, w) = hw(inputs)?;
    Some(Box::new(FitCpu { op: op.clone(), h, w, k: inputs.get(1)?.shape[1] }))
}

impl FitCpu {
    /// Mean squared residual of the affine fit of dx and dy over the window of `p`, or `None`
    /// when its points are (nearly) collinear.
    fn error(&self, f: &[f32], p: usize) -> Option<f64> {
        let (n, w) = (self.h * self.w, self.w);
        let (x0, y0, x1, y1) = window(p, self.h, w, self.op.radius);
        let (px, py) = ((p % w) as f64, (p / w) as f64);
        // Moments: geometry [1, u, v] x [1, u, v], and per channel Σ d·[1, u, v] and Σ d².
        let (mut g, mut rhs, mut dd) = ([[0.0f64; 3]; 3], [[0.0f64; 3]; 2], 0.0f64);
        for y in y0..y1 {
            for x in x0..x1 {
                let e = [1.0, x as f64 - px, y as f64 - py];
                for i in 0..3 {
                    for j in 0..3 {
                        g[i][j] += e[i] * e[j];
                    }
                }
                for (c, r) in rhs.iter_mut().enumerate() {
                    let d = f[c * n + y * w + x] as f64;
                    r.iter_mut().zip(e).for_each(|(ri, ei)| *ri += ei * d);
                    dd += d * d;
                }
            }
        }
        let det = |m: &[[f64; 3]; 3]| {
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        };
        let d = det(&g);
        if d <= 0.5 {
            return None;
        }
        // Σ e² = Σ d² - Σ_channels coef · rhs, the coefficients by Cramer's rule.
        let mut explained = 0.0;
        for r in &rhs {
            for i in 0..3 {
                let mut m = g;
                (0..3).for_each(|row| m[row][i] = r[row]);
                explained += det(&m) / d * r[i];
            }
        }
        Some((dd - explained).max(0.0) / g[0][0])
    }
}

impl CpuKernel for FitCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (f, x, n) = (inputs[0], inputs[1], self.h * self.w);
        let res: Vec<(f32, f32)> = (0..n)
            .into_par_iter()
            .with_min_len(256)
            .map(|p| {
                let err = self.error(f, p);
                let energy: f64 = (1..self.k).map(|c| (x[c * n + p] as f64).powi(2)).sum();
                let ok = f[2 * n + p] < BIG
                    && err.is_some_and(|e| e <= self.op.max_err as f64)
                    && energy >= self.op.min_energy as f64;
                (ok as u8 as f32, err.map_or(BIG, |e| e as f32))
            })
            .collect();
        let out = &mut *outputs[0];
        for (p, &(flag, err)) in res.iter().enumerate() {
            (out[p], out[n + p]) = (flag, err);
        }
    }
    fn name(&self) -> &'static str {
        "moments"
    }
}
