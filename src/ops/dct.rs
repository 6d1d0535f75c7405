//! Full-image orthonormal DCT-II on the last two dimensions (per image plane), with the Mesorch
//! frequency masks: `X = D_H x D_W^T`, mask, `x' = D_H^T X D_W`.
//!
//! `D_N[k, n] = sqrt(2/N) cos(pi k (2n+1) / (2N))`, row 0 = `1/sqrt(N)`; the matrices are built in
//! f32 on the host when the op is planned and uploaded as constants. Each transform is two
//! separable passes, each a batched matrix product against a DCT matrix (`kernels/dct.wgsl`); the
//! mask is applied while the coefficients are stored. The filter is 4 dispatches, each
//! `H x W x max(H, W)` multiply-adds per plane; about 1.7 s of CPU time on lavapipe for
//! 1 x 3 x 512 x 512 (`tests::time_high_512`).

use crate::error::{Error, Result};
use crate::gpu::device::DeviceClass;
use crate::kernel;
use crate::ops::variant::{choose, Variant};
use crate::ops::{as_bytes, groups, Bind, Op, PlanCtx, TensorView};
use crate::tensor::{numel, Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("dct")];

/// Which DCT coefficients are zeroed. For an `H x W` plane, with `int` the truncation of the f64
/// product (Python's `int(ratio * H)`):
/// - `High { ratio }` (Mesorch default 0.05): zero `X[0..int(ratio H), 0..int(ratio W)]`, the
///   top-left block (25 x 25 at 512 x 512: rows 0..25, columns 0..25, end exclusive).
/// - `Low { ratio }` (Mesorch default 0.95): zero the bottom-right `int(ratio H) x int(ratio W)`
///   block `X[H - int(ratio H).., W - int(ratio W)..]` (rows 26..512 x columns 26..512 at 512), so
///   what survives is rows 0..26 OR columns 0..26: an L shape, not a square. When
///   `int(ratio N)` is 0 nothing is zeroed along that axis (no Python `-0:` quirk).
/// - `None`: no coefficient is touched.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DctMask {
    None,
    High { ratio: f64 },
    Low { ratio: f64 },
}

impl DctMask {
    /// Mesorch's high-pass extractor (`ratio` 0.05).
    pub const HIGH: DctMask = DctMask::High { ratio: 0.05 };
    /// Mesorch's low-pass extractor (`ratio` 0.95).
    pub const LOW: DctMask = DctMask::Low { ratio: 0.95 };

    /// The zeroed block as half-open ranges `(rows, cols)` for an `h x w` coefficient plane.
    pub fn zeroed(&self, h: usize, w: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let cut = |ratio: f64, n: usize| ((ratio * n as f64) as usize).min(n);
        match *self {
            DctMask::None => (0..0, 0..0),
            DctMask::High { ratio } => (0..cut(ratio, h), 0..cut(ratio, w)),
            DctMask::Low { ratio } => (h - cut(ratio, h)..h, w - cut(ratio, w)..w),
        }
    }
}

/// What the op computes on each plane.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DctMode {
    /// Forward, mask, inverse: the image-domain filter (output is an image).
    Filter,
    /// Forward only, mask applied: output holds the coefficients `X`.
    Forward,
    /// Inverse only (`x = D_H^T X D_W`); takes no mask (mask in forward mode instead).
    Inverse,
}

/// Full-image DCT filter / transform on the last two dimensions of a tensor of rank >= 2
/// (e.g. `[N, C, H, W]`: every `(n, c)` plane separately). Output shape = input shape.
#[derive(Clone, Debug)]
pub struct DctFilter {
    pub mask: DctMask,
    pub mode: DctMode,
}

impl DctFilter {
    pub fn filter(mask: DctMask) -> Self {
        DctFilter { mask, mode: DctMode::Filter }
    }
    /// Mesorch's high-frequency image (before min-max normalisation).
    pub fn high() -> Self {
        Self::filter(DctMask::HIGH)
    }
    /// Mesorch's low-frequency image (before min-max normalisation).
    pub fn low() -> Self {
        Self::filter(DctMask::LOW)
    }
    pub fn forward() -> Self {
        DctFilter { mask: DctMask::None, mode: DctMode::Forward }
    }
    pub fn inverse() -> Self {
        DctFilter { mask: DctMask::None, mode: DctMode::Inverse }
    }
}

/// Orthonormal DCT-II matrix, row-major `n x n`, built in f32 the way the PyTorch model builds it
/// (`sqrt(2/N) * cos(pi * k * (2n+1) / (2N))` on float32 tensors, row 0 = `1/sqrt(N)`): the cosine
/// argument is rounded to f32 at every step, which moves entries by up to ~1e-5 from the exact
/// DCT at N = 512 (relative ~1.5e-4). Matching that rounding is part of parity with the model.
fn dct_matrix(n: usize) -> Vec<f32> {
    let scale = ((2.0 / n as f64) as f32).sqrt();
    let mut d = vec![0f32; n * n];
    for k in 0..n {
        for i in 0..n {
            d[k * n + i] = if k == 0 {
                (1.0 / (n as f64).sqrt()) as f32
            } else {
                let arg = std::f32::consts::PI * k as f32 * (2 * i + 1) as f32 / (2 * n) as f32;
                scale * arg.cos()
            };
        }
    }
    d
}

/// `rows x cols` matrix `f(r, c)` stored as `total_rows x ld` (padding rows and columns are zero).
fn padded(rows: usize, cols: usize, (total_rows, ld): (usize, usize), f: impl Fn(usize, usize) -> f32) -> Vec<f32> {
    let mut m = vec![0f32; total_rows * ld];
    for r in 0..rows {
        for c in 0..cols {
            m[r * ld + c] = f(r, c);
        }
    }
    m
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    _p0: u32,
    lda: u32,
    ldb4: u32,
    ldc: u32,
    _p1: u32,
    a_bs: u32,
    b_bs4: u32,
    c_bs: u32,
    _p2: u32,
    r0: u32,
    r1: u32,
    c0: u32,
    c1: u32,
}

/// A matrix operand: buffer, row stride and batch stride (0 = shared by all planes), in elements.
struct Operand<'a>(&'a TensorView, usize, usize);

/// Kernel variants of one DCT pass (a batched matrix product).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DctGemm {
    /// `gemm_v4`: A read as vec4; 16 x 16 of C per invocation.
    Vec4A,
    /// `gemm`: A read as scalars; 4 x 4 of C per invocation.
    Scalar,
}

/// A's row stride, A's batch stride and K, in elements.
pub struct DctGemmProblem {
    pub lda: usize,
    pub a_batch_stride: usize,
    pub k: usize,
}

impl Variant for DctGemm {
    type Problem = DctGemmProblem;
    fn preference(_: DeviceClass) -> &'static [Self] {
        &[DctGemm::Vec4A, DctGemm::Scalar]
    }
    fn unfit(self, p: &DctGemmProblem) -> Option<String> {
        let aligned = p.lda % 4 == 0 && p.a_batch_stride % 4 == 0 && p.k % 4 == 0;
        (self == DctGemm::Vec4A && !aligned).then(|| "needs A's strides and K to be multiples of 4".into())
    }
}

impl DctGemm {
    fn entry(self) -> &'static str {
        match self {
            DctGemm::Vec4A => "gemm_v4",
            DctGemm::Scalar => "gemm",
        }
    }
    /// (rows, columns) of C per invocation.
    fn per_invocation(self) -> (usize, usize) {
        match self {
            DctGemm::Vec4A => (16, 16),
            DctGemm::Scalar => (4, 4),
        }
    }
}

/// Record `C[z] = A[z] * B[z]` (`m x k` times `k x n`) for `planes` planes, zeroing the `mask`
/// block of C. B's strides must be multiples of 4. When A's strides and `k` are too, A is read as
/// vec4 ([`DctGemm`]).
#[allow(clippy::too_many_arguments)]
fn gemm(
    ctx: &mut PlanCtx,
    a: Operand,
    b: Operand,
    c: Operand,
    (m, n, k): (usize, usize, usize),
    planes: usize,
    mask: &(std::ops::Range<usize>, std::ops::Range<usize>),
) -> Result<()> {
    debug_assert!(b.1 % 4 == 0 && b.2 % 4 == 0);
    let v: DctGemm =
        choose(ctx.class(), None, &DctGemmProblem { lda: a.1, a_batch_stride: a.2, k }).map_err(Error::graph)?;
    let p = ctx.pipeline(&KERNELS[0], v.entry(), &[])?;
    let params = GemmParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        _p0: 0,
        lda: a.1 as u32,
        ldb4: (b.1 / 4) as u32,
        ldc: c.1 as u32,
        _p1: 0,
        a_bs: a.2 as u32,
        b_bs4: (b.2 / 4) as u32,
        c_bs: c.2 as u32,
        _p2: 0,
        r0: mask.0.start as u32,
        r1: mask.0.end as u32,
        c0: mask.1.start as u32,
        c1: mask.1.end as u32,
    };
    // 8 x 8 invocations per workgroup.
    let (rows, cols) = v.per_invocation();
    let grid = [groups(n.div_ceil(cols), 8), groups(m.div_ceil(rows), 8), planes as u32];
    ctx.dispatch(&p, &[Bind::Uniform(as_bytes(&params)), Bind::Tensor(a.0), Bind::Tensor(b.0), Bind::Tensor(c.0)], grid)
}

/// f64 table of the spec's DCT-II matrix (the reference's own; nothing is shared with the kernel
/// path): `t[k n + i] = a_k cos(theta)`, `a_0 = 1/sqrt(n)`, `a_k = sqrt(2/n)`, where `theta` is
/// `pi k (2i+1) / 2n` evaluated as the model's float32 tensors do (each product rounded to f32);
/// everything after that is f64. `exact = true` takes theta in f64 instead.
fn ref_table(n: usize, exact: bool) -> Vec<f64> {
    let r32 = |v: f64| v as f32 as f64;
    let theta = |k: usize, i: usize| {
        if exact {
            std::f64::consts::PI * ((2 * i + 1) * k) as f64 / (2 * n) as f64
        } else {
            r32(r32(r32(r32(std::f64::consts::PI) * k as f64) * (2 * i + 1) as f64) / (2 * n) as f64)
        }
    };
    let cosine = |k: usize, i: usize| {
        let a = if k == 0 { (1.0 / n as f64).sqrt() } else { (2.0 / n as f64).sqrt() };
        if k == 0 {
            a
        } else {
            a * theta(k, i).cos()
        }
    };
    (0..n * n).map(|t| cosine(t / n, t % n)).collect()
}

/// `X[k] = sum_i t[k, i] v[i]` (forward) or `v[i] = sum_k t[k, i] X[k]` (inverse).
fn ref_1d(v: &[f64], t: &[f64], fwd: bool) -> Vec<f64> {
    let n = v.len();
    (0..n).map(|o| (0..n).map(|i| if fwd { t[o * n + i] * v[i] } else { t[i * n + o] * v[i] }).sum()).collect()
}

/// Apply the 1-D transform to every row and then every column of an `h x w` plane.
fn ref_2d(p: &mut [f64], (h, th): (usize, &[f64]), (w, tw): (usize, &[f64]), fwd: bool) {
    for r in 0..h {
        let out = ref_1d(&p[r * w..(r + 1) * w], tw, fwd);
        p[r * w..(r + 1) * w].copy_from_slice(&out);
    }
    for c in 0..w {
        let col: Vec<f64> = (0..h).map(|r| p[r * w + c]).collect();
        for (r, v) in ref_1d(&col, th, fwd).into_iter().enumerate() {
            p[r * w + c] = v;
        }
    }
}

impl Op for DctFilter {
    fn kind(&self) -> &'static str {
        "dct"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        let x = match inputs {
            [x] => x,
            _ => return Err(format!("takes 1 input, got {}", inputs.len())),
        };
        if x.len() < 2 || x[x.len() - 1] == 0 || x[x.len() - 2] == 0 {
            return Err(format!("needs a tensor of rank >= 2 with non-empty H and W, got {x:?}"));
        }
        if self.mode == DctMode::Inverse && self.mask != DctMask::None {
            return Err("inverse mode takes no mask (apply it in forward or filter mode)".into());
        }
        if let DctMask::High { ratio } | DctMask::Low { ratio } = self.mask {
            if !(0.0..=1.0).contains(&ratio) {
                return Err(format!("mask ratio {ratio} is outside [0, 1]"));
            }
        }
        Ok(vec![x.to_vec()])
    }

    fn cost(&self, inputs: &[&[usize]], outputs: &[&[usize]]) -> crate::ops::Cost {
        // Per plane, each transform is x D_W^T (h w w multiply-adds) then D_H T (h h w).
        let x = inputs[0];
        let (h, w) = (x[x.len() - 2] as f64, x[x.len() - 1] as f64);
        let transforms = if self.mode == DctMode::Filter { 2.0 } else { 1.0 };
        let planes = numel(&x[..x.len() - 2]) as f64;
        crate::ops::Cost::streaming(inputs, outputs, 0.0).with_flops(planes * transforms * 2.0 * h * w * (h + w))
    }

    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::kernel(self, inputs)
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let x = inputs[0];
        let (h, w) = (x.shape[x.shape.len() - 2], x.shape[x.shape.len() - 1]);
        let (rows, cols) = self.mask.zeroed(h, w);
        let (th, tw) = (ref_table(h, false), ref_table(w, false));
        let mut data = Vec::with_capacity(x.numel());
        for plane in x.data.chunks(h * w) {
            let mut p: Vec<f64> = plane.iter().map(|&v| v as f64).collect();
            if self.mode != DctMode::Inverse {
                ref_2d(&mut p, (h, &th), (w, &tw), true);
                for r in rows.clone() {
                    for c in cols.clone() {
                        p[r * w + c] = 0.0;
                    }
                }
            }
            if self.mode != DctMode::Forward {
                ref_2d(&mut p, (h, &th), (w, &tw), false);
            }
            data.extend(p.iter().map(|&v| v as f32));
        }
        vec![Tensor { shape: x.shape.clone(), data }]
    }

    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let (x, y) = (&inputs[0], &outputs[0]);
        let r = x.shape.len();
        let (h, w) = (x.shape[r - 2], x.shape[r - 1]);
        let planes = numel(&x.shape[..r - 2]);
        let (hp, wp) = (h.next_multiple_of(4), w.next_multiple_of(4));
        // Intermediates are `hp x wp` planes whose padding rows and columns stay zero (buffers start
        // zeroed and only the `h x w` corner is written), so padded k ranges add nothing.
        let (hw, hwp) = (h * w, hp * wp);
        let mask = self.mask.zeroed(h, w);
        let none = (0..0, 0..0);

        let dh = dct_matrix(h);
        let dw = dct_matrix(w);
        // Forward uses D_H (left) and D_W^T (right); inverse uses D_H^T (left) and D_W (right).
        // Left operands are `h x hp`, right operands `wp x wp`, zero-padded.
        let fwd = self.mode != DctMode::Inverse;
        let inv = self.mode != DctMode::Forward;
        let dh_c = if fwd { Some(ctx.constant(&padded(h, h, (h, hp), |r, c| dh[r * h + c]))?) } else { None };
        let dwt_c = if fwd { Some(ctx.constant(&padded(w, w, (wp, wp), |r, c| dw[c * w + r]))?) } else { None };
        let dht_c = if inv { Some(ctx.constant(&padded(h, h, (h, hp), |r, c| dh[c * h + r]))?) } else { None };
        let dw_c = if inv { Some(ctx.constant(&padded(w, w, (wp, wp), |r, c| dw[r * w + c]))?) } else { None };

        // Planes per window: x and y windows start aligned (no base offsets), every binding (the
        // scratch planes of hp x wp too) fits, and the grid's z stays within 65535.
        let chunk = ctx
            .windows()
            .aligned_run(planes, hw, hwp.max(hw), 65535)
            .map_err(|m| Error::graph(format!("node '{}': dct: {m}", ctx.node_name)))?;
        let s1 = ctx.scratch(chunk * hwp)?;
        let s2 = if self.mode == DctMode::Filter { Some(ctx.scratch(chunk * hwp)?) } else { None };

        fn c(t: &Option<TensorView>) -> &TensorView {
            t.as_ref().expect("made for this mode")
        }
        let mut p0 = 0;
        while p0 < planes {
            let cp = chunk.min(planes - p0);
            let xin = x.window(p0 * hw, cp * hw);
            let yout = y.window(p0 * hw, cp * hw);
            // Passes (A, B, C, (m, n, k), mask) of C = A B per plane.
            let passes = match self.mode {
                // T = x D_W^T, then X = D_H T (masked) straight into the output.
                DctMode::Forward => vec![
                    (Operand(&xin, w, hw), Operand(c(&dwt_c), wp, 0), Operand(&s1, wp, hwp), (h, w, w), &none),
                    (Operand(c(&dh_c), hp, 0), Operand(&s1, wp, hwp), Operand(&yout, w, hw), (h, w, hp), &mask),
                ],
                // U = X D_W, then x = D_H^T U.
                DctMode::Inverse => vec![
                    (Operand(&xin, w, hw), Operand(c(&dw_c), wp, 0), Operand(&s1, wp, hwp), (h, w, w), &none),
                    (Operand(c(&dht_c), hp, 0), Operand(&s1, wp, hwp), Operand(&yout, w, hw), (h, w, hp), &none),
                ],
                // Forward (masked) into s2, then inverse.
                DctMode::Filter => {
                    let s2 = s2.as_ref().expect("made for filters");
                    vec![
                        (Operand(&xin, w, hw), Operand(c(&dwt_c), wp, 0), Operand(&s1, wp, hwp), (h, w, w), &none),
                        (Operand(c(&dh_c), hp, 0), Operand(&s1, wp, hwp), Operand(s2, wp, hwp), (h, w, hp), &mask),
                        (Operand(s2, wp, hwp), Operand(c(&dw_c), wp, 0), Operand(&s1, wp, hwp), (h, w, wp), &none),
                        (Operand(c(&dht_c), hp, 0), Operand(&s1, wp, hwp), Operand(&yout, w, hw), (h, w, hp), &none),
                    ]
                }
            };
            for (a, b, out, dims, m) in passes {
                gemm(ctx, a, b, out, dims, cp, m)?;
            }
            p0 += cp;
        }
        Ok(())
    }
}

mod cpu;
#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{check_op, run_on_gpu};
    use crate::tensor::Rng;

    const TOL: f32 = 1e-4;

    #[test]
    fn variant_entry_points_exist() {
        crate::ops::testing::assert_entry_points(&KERNELS[0], &[DctGemm::Vec4A.entry(), DctGemm::Scalar.entry()]);
    }

    #[test]
    fn matrix_is_close_to_the_exact_dct() {
        for n in [1, 5, 24, 37, 512] {
            let (d, exact, spec) = (dct_matrix(n), ref_table(n, true), ref_table(n, false));
            let worst = |t: &[f64]| d.iter().zip(t).fold(0f64, |m, (&a, &b)| m.max((a as f64 - b).abs()));
            // f32 rounding of the argument (the model's construction): ~1e-5 at 512 from the exact DCT.
            assert!(worst(&exact) < 2e-5, "n {n}: {} from the exact DCT", worst(&exact));
            assert!(worst(&spec) < 1e-7, "n {n}: {} from the f32-argument definition", worst(&spec));
        }
    }

    #[test]
    fn mask_ranges_at_512() {
        assert_eq!(DctMask::HIGH.zeroed(512, 512), (0..25, 0..25));
        assert_eq!(DctMask::LOW.zeroed(512, 512), (26..512, 26..512));
        // Python's int(0.95 * 20) is 19 (f64 product), not 18.
        assert_eq!(DctMask::LOW.zeroed(20, 40), (1..20, 2..40));
        assert_eq!(DctMask::HIGH.zeroed(13, 17), (0..0, 0..0));
        assert_eq!(DctMask::None.zeroed(9, 9), (0..0, 0..0));
    }

    #[test]
    fn filters_match_reference() {
        let seed = Rng::fresh_seed();
        let shapes: &[&[usize]] =
            &[&[2, 3, 16, 24], &[1, 3, 13, 17], &[2, 1, 40, 20], &[1, 2, 5, 3], &[3, 1, 1], &[1, 3, 64, 96]];
        let masks =
            [DctMask::None, DctMask::HIGH, DctMask::LOW, DctMask::High { ratio: 0.25 }, DctMask::Low { ratio: 0.5 }];
        for (i, s) in shapes.iter().enumerate() {
            let x = Tensor::random(s, seed + i as u64, -1.0, 1.0);
            for mask in masks {
                check_op(&format!("filter {mask:?} {s:?} seed {seed}"), &DctFilter::filter(mask), &[x.clone()], TOL);
            }
            for op in
                [DctFilter::forward(), DctFilter { mask: DctMask::LOW, mode: DctMode::Forward }, DctFilter::inverse()]
            {
                check_op(&format!("{op:?} {s:?} seed {seed}"), &op, &[x.clone()], TOL);
            }
        }
    }

    #[test]
    fn round_trip_returns_the_input() {
        let seed = Rng::fresh_seed();
        let x = Tensor::random(&[2, 3, 24, 37], seed, -3.0, 3.0);
        let y = run_on_gpu(&DctFilter::filter(DctMask::None), &[x.clone()]).unwrap().remove(0);
        assert!(y.max_abs_diff(&x) <= 1e-4 * x.max_abs().max(1.0), "seed {seed}: {}", y.max_abs_diff(&x));
        let c = run_on_gpu(&DctFilter::forward(), &[x.clone()]).unwrap().remove(0);
        let back = run_on_gpu(&DctFilter::inverse(), &[c]).unwrap().remove(0);
        assert!(back.max_abs_diff(&x) <= 1e-4 * x.max_abs().max(1.0), "seed {seed}: {}", back.max_abs_diff(&x));
    }

    #[test]
    fn constant_image_is_pure_dc() {
        let x = Tensor::full(&[1, 2, 20, 28], 0.7);
        let c = run_on_gpu(&DctFilter::forward(), &[x.clone()]).unwrap().remove(0);
        // Only X[0, 0] = 0.7 * sqrt(H W) per plane.
        let dc = 0.7 * ((20 * 28) as f32).sqrt();
        for (i, &v) in c.data.iter().enumerate() {
            let want = if i % (20 * 28) == 0 { dc } else { 0.0 };
            assert!((v - want).abs() <= 1e-4 * dc, "coefficient {i}: {v} vs {want}");
        }
        let high = run_on_gpu(&DctFilter::high(), &[x.clone()]).unwrap().remove(0);
        assert!(high.max_abs() <= 1e-5, "high-pass of a constant: {}", high.max_abs());
        let low = run_on_gpu(&DctFilter::low(), &[x.clone()]).unwrap().remove(0);
        assert!(low.max_abs_diff(&x) <= 1e-5, "low-pass of a constant: {}", low.max_abs_diff(&x));
    }

    /// Mesorch's size; about 6 s of CPU on lavapipe per filter, so run on demand:
    /// `cargo test --lib ops::dct::tests::mesorch_size -- --ignored`.
    #[test]
    #[ignore]
    fn mesorch_size_matches_reference() {
        let seed = Rng::fresh_seed();
        let x = Tensor::random(&[1, 3, 512, 512], seed, -2.0, 2.5);
        check_op(&format!("high 512 seed {seed}"), &DctFilter::high(), &[x.clone()], TOL);
        check_op(&format!("low 512 seed {seed}"), &DctFilter::low(), &[x], TOL);
    }

    /// Timing of the Mesorch-size high-pass filter:
    /// `cargo test --lib ops::dct::tests::time_high_512 -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn time_high_512() {
        use crate::graph::{GraphBuilder, Plan};
        let gpu = crate::ops::testing::device();
        let mut b = GraphBuilder::new();
        let x = b.input("x", &[1, 3, 512, 512]);
        let y = b.add("high", DctFilter::high(), &[x]).unwrap();
        b.output("y", y);
        let plan = Plan::new(gpu, &b.finish()).unwrap();
        let t = Tensor::random(&[1, 3, 512, 512], 1, -1.0, 1.0);
        plan.run(&[("x", &t)]).unwrap();
        // CPU time of the whole process (lavapipe's worker threads included): on a shared machine
        // this is the figure that does not depend on the other load.
        let cpu_ms = || {
            let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
            let f: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
            (f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
                + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0))
                * 10.0
        };
        for _ in 0..3 {
            let (start, cpu0) = (std::time::Instant::now(), cpu_ms());
            plan.run(&[("x", &t)]).unwrap();
            let wall = start.elapsed().as_secs_f64() * 1e3;
            println!("high 1x3x512x512: {wall:.1} ms wall, {:.0} ms CPU", cpu_ms() - cpu0);
        }
    }

    /// Planes over the binding limit: windows of whole planes starting aligned, 4 dispatches each
    /// for a filter and 2 for one transform.
    #[test]
    fn windows_of_planes() {
        use crate::ops::testing::check_op_windowed;
        let seed = Rng::fresh_seed();
        // 6 planes of 8 x 12 = 96 (also the padded scratch planes): 2 per window of 200, 3 windows.
        let x = Tensor::random(&[2, 3, 8, 12], seed, -1.0, 1.0);
        assert_eq!(
            check_op_windowed(&format!("dct filter seed {seed}"), &DctFilter::low(), &[x.clone()], TOL, 200),
            12
        );
        assert_eq!(check_op_windowed(&format!("dct forward seed {seed}"), &DctFilter::forward(), &[x], TOL, 200), 6);
        // 20 planes of 5 x 3 = 15 (scratch planes 8 x 4 = 32): 8 fit a window of 256, and 8 planes of
        // 15 elements end on a multiple of 8 elements, the alignment (where it is 32 bytes).
        let x = Tensor::random(&[1, 20, 5, 3], seed, -1.0, 1.0);
        let align = crate::ops::window::Windows::of(crate::ops::testing::device()).align();
        let n = check_op_windowed(&format!("dct filter 5x3 seed {seed}"), &DctFilter::high(), &[x], TOL, 256);
        if align == 8 {
            assert_eq!(n, 12);
        }
    }

    #[test]
    fn inverse_with_mask_is_refused() {
        let op = DctFilter { mask: DctMask::HIGH, mode: DctMode::Inverse };
        assert!(op.infer(&[&[1, 1, 8, 8]]).unwrap_err().contains("no mask"));
    }
}
