//! Post-processing of a nearest-neighbour field `[1, 3, H, W]` (dx, dy, cost; see
//! `ops::patchmatch`), after Cozzolino, Poggi & Verdoliva (IEEE TIFS 2015), section III-C:
//!
//! - [`OffsetMedian`]: dx and dy each replaced by their median over the `(2r+1)²` window (clipped
//!   to the image; an even count averages the two middle values), the cost copied. Removes the
//!   isolated wrong offsets PatchMatch leaves, keeps the edges of a cloned region's field.
//! - [`OffsetFit`]: field and features `[1, K, H, W]` to `[1, 2, H, W]`: channel 0 the candidate
//!   flag (1 or 0), channel 1 the fit error. Over the window of radius `r` around each pixel,
//!   `dx(u, v) ≈ a + b·u + c·v` and `dy` likewise by least squares (`u, v` the window
//!   coordinates relative to the pixel: the closed form is the 3 x 3 normal equations
//!   `[n Su Sv; Su Suu Suv; Sv Suv Svv] · (a, b, c) = (S d, S u·d, S v·d)`), and
//!   `err = Σ (residual_dx² + residual_dy²) / n` (px²). A copied, rotated or rescaled region has an
//!   affine offset field (`o(p) = (A - I) p + t`), so `err` is small inside it; chance matches
//!   in textured areas scatter. A pixel is a candidate when its match is valid (cost below
//!   `ops::patchmatch::BIG`), `err <= max_err` and its feature energy `Σ_{k>=1} F_k(p)²` is at least
//!   `min_energy` (flat areas match everything and their fields are smooth by chance; channel 0,
//!   the patch mean, is left out of the energy).
//!
//! GPU in f32, the reference in f64: the errors agree to ~1e-4 px²; the flag may differ only where
//! `err` or the energy is within that of its threshold (the test leaves those out).

use crate::error::Result;
use crate::kernel;
use crate::ops::patchmatch::BIG;
use crate::ops::{as_bytes, groups, Bind, Op, PlanCtx, TensorView};
use crate::tensor::{Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("offset_fit")];

/// Median filter of the offsets.
#[derive(Clone, Debug)]
pub struct OffsetMedian {
    /// Window radius, 1..=3.
    pub radius: usize,
}

/// Affine fitting error and candidate flag.
#[derive(Clone, Debug)]
pub struct OffsetFit {
    /// Window radius, 1..=8.
    pub radius: usize,
    pub max_err: f32,
    pub min_energy: f32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FitParams {
    h: u32,
    w: u32,
    k: u32,
    r: u32,
    n: u32,
    max_err: f32,
    min_energy: f32,
    big: f32,
}

fn check_field(f: &[usize]) -> std::result::Result<(), String> {
    if f.len() != 4 || f[0] != 1 || f[1] != 3 || f[2] == 0 || f[3] == 0 {
        return Err(format!("needs a field [1, 3, H, W] with non-empty H and W, got {f:?}"));
    }
    if f.iter().product::<usize>() > u32::MAX as usize / 4 {
        return Err(format!("field {f:?} is too large"));
    }
    Ok(())
}

/// The window of pixel `p` (x0, y0, x1, y1), clipped to the image.
fn window(p: usize, h: usize, w: usize, r: usize) -> (usize, usize, usize, usize) {
    let (x, y) = (p % w, p / w);
    (x.saturating_sub(r), y.saturating_sub(r), (x + r + 1).min(w), (y + r + 1).min(h))
}

fn params(h: usize, w: usize, k: usize, r: usize) -> FitParams {
    FitParams {
        h: h as u32,
        w: w as u32,
        k: k as u32,
        r: r as u32,
        n: (h * w) as u32,
        max_err: 0.0,
        min_energy: 0.0,
        big: BIG,
    }
}

fn check_binding(ctx: &PlanCtx, views: &[&TensorView]) -> Result<()> {
    let limit = ctx.windows().limit();
    match views.iter().find(|v| v.numel() > limit) {
        Some(v) => Err(crate::error::Error::invalid(format!(
            "node '{}': {:?} is over one storage binding ({limit} elements): analyse the image at a smaller size",
            ctx.node_name, v.shape
        ))),
        None => Ok(()),
    }
}

impl Op for OffsetMedian {
    fn kind(&self) -> &'static str {
        "offset_median"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        if !(1..=3).contains(&self.radius) {
            return Err(format!("radius must be 1..=3, got {}", self.radius));
        }
        match inputs {
            [f] => check_field(f).map(|_| vec![f.to_vec()]),
            _ => Err(format!("takes 1 input, got {}", inputs.len())),
        }
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let f = inputs[0];
        let (h, w) = (f.shape[2], f.shape[3]);
        let n = h * w;
        let mut out = f.data.clone();
        for p in 0..n {
            let (x0, y0, x1, y1) = window(p, h, w, self.radius);
            for c in 0..2 {
                let mut v: Vec<f32> = (y0..y1)
                    .flat_map(|y| (x0..x1).map(move |x| (y, x)))
                    .map(|(y, x)| f.data[c * n + y * w + x])
                    .collect();
                v.sort_by(f32::total_cmp);
                out[c * n + p] = (v[(v.len() - 1) / 2] + v[v.len() / 2]) * 0.5;
            }
        }
        vec![Tensor { shape: f.shape.clone(), data: out }]
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::median_kernel(self, inputs)
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        check_binding(ctx, &[&inputs[0]])?;
        let (h, w) = (inputs[0].shape[2], inputs[0].shape[3]);
        let p = ctx.pipeline(&KERNELS[0], "median", &[])?;
        let u = params(h, w, 0, self.radius);
        let binds = [Bind::Uniform(as_bytes(&u)), Bind::Tensor(&inputs[0]), Bind::Tensor(&outputs[0])];
        ctx.dispatch_linear(&p, &binds, groups(h * w, 64))
    }
}

/// The affine least-squares fit of one window in f64: mean squared residual, or `None` when the
/// window's points are collinear (a 1-pixel-high or -wide image).
fn fit_error(f: &[f32], h: usize, w: usize, p: usize, r: usize) -> Option<f64> {
    let n = h * w;
    let (x0, y0, x1, y1) = window(p, h, w, r);
    let (x, y) = ((p % w) as f64, (p / w) as f64);
    let pts: Vec<(f64, f64, usize)> =
        (y0..y1).flat_map(|yy| (x0..x1).map(move |xx| (xx as f64 - x, yy as f64 - y, yy * w + xx))).collect();
    let mut m = [[0.0f64; 3]; 3];
    let mut b = [[0.0f64; 3]; 2];
    for &(u, v, q) in &pts {
        let e = [1.0, u, v];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += e[i] * e[j];
            }
            b[0][i] += e[i] * f[q] as f64;
            b[1][i] += e[i] * f[n + q] as f64;
        }
    }
    let det = |c: [[f64; 3]; 3]| {
        c[0][0] * (c[1][1] * c[2][2] - c[1][2] * c[2][1]) - c[0][1] * (c[1][0] * c[2][2] - c[1][2] * c[2][0])
            + c[0][2] * (c[1][0] * c[2][1] - c[1][1] * c[2][0])
    };
    let d = det(m);
    if d <= 0.5 {
        return None;
    }
    let mut res = 0.0;
    for rhs in &b {
        // Cramer's rule: column i of the (symmetric) matrix replaced by the right-hand side.
        let coef: Vec<f64> = (0..3)
            .map(|i| {
                let mut c = m;
                for (row, &bv) in c.iter_mut().zip(rhs) {
                    row[i] = bv;
                }
                det(c) / d
            })
            .collect();
        let ch = if std::ptr::eq(rhs, &b[0]) { 0 } else { 1 };
        for &(u, v, q) in &pts {
            let e = f[ch * n + q] as f64 - (coef[0] + coef[1] * u + coef[2] * v);
            res += e * e;
        }
    }
    Some(res / pts.len() as f64)
}

impl Op for OffsetFit {
    fn kind(&self) -> &'static str {
        "offset_fit"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        if !(1..=8).contains(&self.radius) {
            return Err(format!("radius must be 1..=8, got {}", self.radius));
        }
        match inputs {
            [f, x] => {
                check_field(f)?;
                if x.len() != 4 || x[0] != 1 || x[1] == 0 || x[2..] != f[2..] {
                    return Err(format!("features must be [1, K, {}, {}], got {x:?}", f[2], f[3]));
                }
                Ok(vec![vec![1, 2, f[2], f[3]]])
            }
            _ => Err(format!("takes 2 inputs (field, features), got {}", inputs.len())),
        }
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let (f, x) = (inputs[0], inputs[1]);
        let (h, w, k) = (f.shape[2], f.shape[3], x.shape[1]);
        let n = h * w;
        let mut out = vec![0.0f32; 2 * n];
        for p in 0..n {
            let err = fit_error(&f.data, h, w, p, self.radius);
            let energy: f64 = (1..k).map(|c| (x.data[c * n + p] as f64).powi(2)).sum();
            let ok = f.data[2 * n + p] < BIG
                && err.is_some_and(|e| e <= self.max_err as f64)
                && energy >= self.min_energy as f64;
            out[p] = ok as u8 as f32;
            out[n + p] = err.map_or(BIG, |e| e as f32);
        }
        vec![Tensor { shape: vec![1, 2, h, w], data: out }]
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::fit_kernel(self, inputs)
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        check_binding(ctx, &[&inputs[0], &inputs[1], &outputs[0]])?;
        let (h, w, k) = (inputs[0].shape[2], inputs[0].shape[3], inputs[1].shape[1]);
        let p = ctx.pipeline(&KERNELS[0], "fit", &[])?;
        let u = FitParams { max_err: self.max_err, min_energy: self.min_energy, ..params(h, w, k, self.radius) };
        let binds = [
            Bind::Uniform(as_bytes(&u)),
            Bind::Tensor(&inputs[0]),
            Bind::Tensor(&inputs[1]),
            Bind::Tensor(&outputs[0]),
        ];
        ctx.dispatch_linear(&p, &binds, groups(h * w, 64))
    }
}

mod cpu;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{check_op, run_on_cpu, run_on_gpu};
    use crate::tensor::Rng;

    /// A field with integer offsets: an affine patch (rotation by ~10° and a shift), noise around
    /// it, a few invalid matches.
    fn field(h: usize, w: usize, seed: u64) -> Tensor {
        let mut rng = Rng::new(seed);
        let n = h * w;
        let mut t = Tensor::zeros(&[1, 3, h, w]);
        for p in 0..n {
            let (x, y) = ((p % w) as f32, (p / w) as f32);
            let inside = x < w as f32 / 2.0;
            let (dx, dy) = if inside {
                ((0.985 * x - 0.174 * y - x + 20.0).round(), (0.174 * x + 0.985 * y - y + 5.0).round())
            } else {
                ((rng.next_f32() * 40.0 - 20.0).round(), (rng.next_f32() * 40.0 - 20.0).round())
            };
            t.data[p] = dx;
            t.data[n + p] = dy;
            t.data[2 * n + p] = if rng.next_f32() < 0.05 { BIG } else { rng.next_f32() * 100.0 };
        }
        t
    }

    #[test]
    fn median_matches_reference() {
        let seed = Rng::fresh_seed();
        for (h, w) in [(1, 1), (7, 13), (61, 45), (2, 30)] {
            for radius in [1, 2, 3] {
                let f = field(h, w, seed);
                check_op(&format!("offset median r{radius} {h}x{w} seed {seed}"), &OffsetMedian { radius }, &[f], 0.0);
            }
        }
    }

    #[test]
    fn fit_matches_reference() {
        let seed = Rng::fresh_seed();
        for (h, w) in [(1, 1), (7, 13), (61, 45), (1, 20), (3, 3)] {
            for radius in [1, 4] {
                let f = field(h, w, seed);
                let x = Tensor::random(&[1, 4, h, w], seed + 1, -3.0, 3.0);
                let op = OffsetFit { radius, max_err: 2.0, min_energy: 4.0 };
                let case = format!("offset fit r{radius} {h}x{w} seed {seed}");
                let want = op.reference(&[&f, &x]).remove(0);
                let n = h * w;
                let gpu = run_on_gpu(&op, &[f.clone(), x.clone()]).unwrap().remove(0);
                let cpu = run_on_cpu(&op, &[f.clone(), x.clone()], &[]).unwrap().remove(0);
                // The GPU in f32; the CPU backend in f64 from moments (residual as Σd² - coef·rhs).
                for (got, tol, engine) in [(gpu, 1e-3, "GPU"), (cpu, 1e-6, "CPU backend")] {
                    for p in 0..n {
                        let (g, e) = (got.data[n + p], want.data[n + p]);
                        assert!((g - e).abs() <= tol * e.abs().max(1.0), "{case} {engine}: err {g} vs {e} at {p}");
                        let energy: f32 = (1..4).map(|c| x.data[c * n + p].powi(2)).sum();
                        let near = (e - 2.0).abs() < 1e-3 || (energy - 4.0).abs() < 1e-3;
                        if !near {
                            assert_eq!(got.data[p], want.data[p], "{case} {engine}: flag at {p}");
                        }
                    }
                }
            }
        }
    }

    /// Inside the affine half the fit error is small (the rounding of the offsets only), outside
    /// it is large.
    #[test]
    fn affine_fields_fit_and_random_ones_do_not() {
        let seed = Rng::fresh_seed();
        let (h, w) = (40, 60);
        let f = field(h, w, seed);
        let x = Tensor::random(&[1, 4, h, w], seed, 5.0, 6.0);
        let out = OffsetFit { radius: 4, max_err: 1.0, min_energy: 1.0 }.reference(&[&f, &x]).remove(0);
        let n = h * w;
        let (mut inside, mut outside) = (0.0, 0.0);
        for y in 8..32 {
            inside += out.data[n + y * w + 15];
            outside += out.data[n + y * w + 45];
        }
        assert!(inside / 24.0 < 0.5 && outside / 24.0 > 20.0, "seed {seed}: {inside} vs {outside}");
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert!(OffsetMedian { radius: 4 }.infer(&[&[1, 3, 5, 5]]).is_err());
        assert!(OffsetMedian { radius: 1 }.infer(&[&[1, 2, 5, 5]]).is_err());
        let fit = OffsetFit { radius: 4, max_err: 1.0, min_energy: 1.0 };
        assert!(fit.infer(&[&[1, 3, 5, 5], &[1, 4, 5, 6]]).is_err());
        assert!(fit.infer(&[&[1, 3, 5, 5]]).is_err());
        assert!(OffsetFit { radius: 0, ..fit }.infer(&[&[1, 3, 5, 5], &[1, 4, 5, 5]]).is_err());
    }
}
