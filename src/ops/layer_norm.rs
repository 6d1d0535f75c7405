//! LayerNorm over the last dimension (tokens [.., C], as `nn.LayerNorm(C)`) or over the channels of
//! NCHW at every pixel (ConvNeXt's channels_first LayerNorm / LayerNorm2d). Biased variance, f32.

use crate::error::{Error, Result};
use crate::graph::{GraphBuilder, ValueId};
use crate::kernel;
use crate::ops::axis::{dispatch_axis_windows, AxisOp};
use crate::ops::{Op, PlanCtx, TensorView};
use crate::tensor::split_at_axis;
use crate::tensor::{Shape, Tensor};

/// Module "layer_norm"; module "layer_norm_sg" adds the subgroup variant (compiled only where it runs).
pub const KERNELS: &[crate::gpu::Kernel] =
    &[kernel!("layer_norm"), kernel!("layer_norm_sg" = "layer_norm", "layer_norm_sg")];

/// Which axis is normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormAxis {
    /// The last dimension: x [.., C] (token LayerNorm).
    Last,
    /// Dimension 1 of x [N, C, ...] at every trailing position (channel LayerNorm on NCHW).
    Channels,
}

/// `y = (x - mean) / sqrt(var + eps) * gamma + beta` over the axis `axis_mode` names.
/// Inputs: x, gamma [C], beta [C].
#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub axis_mode: NormAxis,
    pub eps: f32,
}

impl LayerNorm {
    pub fn last(eps: f32) -> Self {
        LayerNorm { axis_mode: NormAxis::Last, eps }
    }
    pub fn channels(eps: f32) -> Self {
        LayerNorm { axis_mode: NormAxis::Channels, eps }
    }
    /// Index of the normalised axis in a tensor of `rank`.
    fn axis(&self, rank: usize) -> std::result::Result<usize, String> {
        match self.axis_mode {
            NormAxis::Last if rank >= 1 => Ok(rank - 1),
            NormAxis::Channels if rank >= 2 => Ok(1),
            _ => Err(format!("{:?} LayerNorm does not apply to a tensor of rank {rank}", self.axis_mode)),
        }
    }
}

/// Add a LayerNorm node whose gamma and beta are graph constants named `<name>.weight` / `<name>.bias`.
pub fn layer_norm(
    b: &mut GraphBuilder,
    name: &str,
    x: ValueId,
    gamma: Tensor,
    beta: Tensor,
    axis_mode: NormAxis,
    eps: f32,
) -> Result<ValueId> {
    let g = b.constant(&format!("{name}.weight"), gamma);
    let be = b.constant(&format!("{name}.bias"), beta);
    b.add(name, LayerNorm { axis_mode, eps }, &[x, g, be])
}

impl Op for LayerNorm {
    fn kind(&self) -> &'static str {
        "layer_norm"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        let [x, gamma, beta] = inputs else {
            return Err(format!("takes 3 inputs (x, gamma, beta), got {}", inputs.len()));
        };
        let c = x[self.axis(x.len())?];
        for (what, t) in [("gamma", gamma), ("beta", beta)] {
            if **t != [c] {
                return Err(format!("{what} has shape {t:?}, expected [{c}] for x of shape {x:?}"));
            }
        }
        if !(self.eps >= 0.0) {
            return Err(format!("eps {} must be >= 0", self.eps));
        }
        Ok(vec![x.to_vec()])
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        let axis = self.axis(inputs[0].shape.len()).ok()?;
        Some(Box::new(LayerNormCpu { dims: split_at_axis(inputs[0].shape, axis), eps: self.eps }))
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let (x, gamma, beta) = (inputs[0], inputs[1], inputs[2]);
        let (outer, c, inner) = split_at_axis(&x.shape, self.axis(x.shape.len()).unwrap());
        let mut data = vec![0.0f32; x.data.len()];
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| o * c * inner + k * inner + i;
                let mean = (0..c).map(|k| x.data[at(k)] as f64).sum::<f64>() / c as f64;
                let var = (0..c).map(|k| (x.data[at(k)] as f64 - mean).powi(2)).sum::<f64>() / c as f64;
                let rstd = 1.0 / (var + self.eps as f64).sqrt();
                for k in 0..c {
                    let v = (x.data[at(k)] as f64 - mean) * rstd * gamma.data[k] as f64 + beta.data[k] as f64;
                    data[at(k)] = v as f32;
                }
            }
        }
        vec![Tensor { shape: x.shape.clone(), data }]
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let axis = self.axis(inputs[0].shape.len()).map_err(Error::graph)?;
        dispatch_axis_windows(
            ctx,
            AxisOp::LayerNorm,
            &inputs[0],
            &[&inputs[1], &inputs[2]],
            &outputs[0],
            axis,
            self.eps,
        )
    }
}

crate::multiversion!(fn token_row(x: &[f32], y: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) => token_row_any);

/// `sum f(v)` over `x`, in 16 f32 lanes so that it vectorizes.
#[inline(always)]
fn lanes_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    const L: usize = 16;
    let mut acc = [0.0f32; L];
    let mut chunks = x.chunks_exact(L);
    for ch in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(ch) {
            *a += f(v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f(v);
    }
    acc.iter().sum::<f32>()
}

/// One token row: mean, then the variance of the deviations (two passes, as PyTorch), each sum
/// in f32 lanes (a row is 64-768 channels here); f64 sums ran at a third of memory speed (the
/// models' 107 LayerNorms took 4.6% of Mesorch-P on the CPU backend).
#[inline(always)]
fn token_row_any(x: &[f32], y: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = x.len() as f32;
    // Everything relative to the first value (`v - shift` is exact for values within a factor of
    // two of it): around 1000 +- 1, a mean held in f32 is off by up to 3e-5, and so is every
    // deviation made from it.
    let shift = x.first().copied().unwrap_or(0.0);
    let mean = lanes_sum(x, |v| v - shift) / n;
    let var = lanes_sum(x, |v| (v - shift - mean) * (v - shift - mean)) / n;
    let rstd = 1.0 / (var + eps).sqrt();
    for (((yv, &v), &g), &b) in y.iter_mut().zip(x).zip(gamma).zip(beta) {
        *yv = (v - shift - mean) * rstd * g + b;
    }
}

/// LayerNorm on the CPU backend: two-pass mean and variance per position (f32 lanes for token
/// rows, f64 for channel LayerNorm). Token rows
/// (`inner` = 1) are a task each with no allocation; channel LayerNorm on NCHW walks blocks of 256
/// contiguous positions so the loops vectorize.
struct LayerNormCpu {
    /// (outer, c, inner)
    dims: (usize, usize, usize),
    eps: f32,
}

impl crate::cpu::CpuKernel for LayerNormCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (x, gamma, beta) = (inputs[0], inputs[1], inputs[2]);
        let (_, c, inner) = self.dims;
        let eps = self.eps;
        let y = &mut *outputs[0];
        if inner == 1 {
            crate::cpu::par_chunks(y, c, 1 << 14, |r, yr| token_row(&x[r * c..(r + 1) * c], yr, gamma, beta, eps));
            return;
        }
        // One task per (slab, block of positions); a task writes its positions of every channel.
        let block = inner.min(256);
        let nblk = inner.div_ceil(block);
        let slab = c * inner;
        let ptr = SendPtr(y.as_mut_ptr());
        use rayon::prelude::*;
        (0..y.len() / slab.max(1) * nblk).into_par_iter().for_each(|t| {
            let (o, i0) = (t / nblk, (t % nblk) * block);
            let nb = block.min(inner - i0);
            let xs = &x[o * slab..(o + 1) * slab];
            let mut mean = [0.0f64; 256];
            let mut var = [0.0f64; 256];
            let (mean, var) = (&mut mean[..nb], &mut var[..nb]);
            for k in 0..c {
                mean.iter_mut().zip(&xs[k * inner + i0..][..nb]).for_each(|(m, &v)| *m += v as f64);
            }
            mean.iter_mut().for_each(|m| *m /= c as f64);
            for k in 0..c {
                for ((s, &v), m) in var.iter_mut().zip(&xs[k * inner + i0..][..nb]).zip(mean.iter()) {
                    *s += (v as f64 - m).powi(2);
                }
            }
            var.iter_mut().for_each(|v| *v = 1.0 / (*v / c as f64 + eps as f64).sqrt());
            let (mean, var) = (&*mean, &*var);
            let p = ptr;
            for k in 0..c {
                let (g, b) = (gamma[k], beta[k]);
                let at = o * slab + k * inner + i0;
                // SAFETY: task (o, i0) alone writes positions i0 .. i0 + nb of slab o, every k.
                let yr = unsafe { std::slice::from_raw_parts_mut(p.0.add(at), nb) };
                for (((yv, &v), m), r) in yr.iter_mut().zip(&xs[k * inner + i0..][..nb]).zip(mean.iter()).zip(var.iter()) {
                    *yv = (((v as f64 - m) * r) as f32) * g + b;
                }
            }
        });
    }
    fn name(&self) -> &'static str {
        "layer_norm"
    }
}

#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{check_op, check_op_windowed, device};
    use crate::ops::window::Windows;
    use crate::tensor::Rng;

    /// Relative to max(|expected|, 1) (seen: about 1.3e-7).
    const TOL: f32 = 2e-6;

    /// The subgroup variant of hardware GPUs (one row per subgroup) on whatever device runs the
    /// tests: rows shorter and longer than a subgroup, a large offset, more rows than a workgroup
    /// holds; channels-first keeps the plain kernels.
    #[test]
    fn subgroup_rows_on_hardware_plans() {
        let seed = Rng::fresh_seed();
        let sg = device().features.contains(wgpu::Features::SUBGROUP);
        for (i, (shape, last, offset)) in
            [(vec![1, 1], true, 0.0), (vec![3, 5], true, 0.0), (vec![70, 97], true, 100.0), (vec![2, 6, 4, 3], false, 0.0)]
                .into_iter()
                .enumerate()
        {
            let s = seed + 10 * i as u64;
            let c = if last { shape[shape.len() - 1] } else { shape[1] };
            let mut x = Tensor::random(&shape, s, -2.0, 2.0);
            x.data.iter_mut().for_each(|v| *v += offset);
            let ins = [x, Tensor::random(&[c], s + 1, 0.5, 1.5), Tensor::random(&[c], s + 2, -0.5, 0.5)];
            let op = if last { LayerNorm::last(1e-5) } else { LayerNorm::channels(1e-6) };
            let labels =
                crate::ops::testing::check_op_as_hardware(&format!("layer_norm {shape:?} seed {s}"), &op, &ins, TOL);
            assert_eq!(labels.iter().any(|l| l.contains("layer_norm_sg")), sg && last, "{shape:?}: {labels:?}");
        }
    }

    fn inputs(shape: &[usize], c: usize, seed: u64, lo: f32, hi: f32) -> [Tensor; 3] {
        [
            Tensor::random(shape, seed, lo, hi),
            Tensor::random(&[c], seed + 1, 0.5, 1.5),
            Tensor::random(&[c], seed + 2, -1.0, 1.0),
        ]
    }

    #[test]
    fn last_dim_matches_reference() {
        let seed = Rng::fresh_seed();
        let shapes: &[&[usize]] = &[&[1, 1], &[2, 5, 3], &[2, 7, 97], &[3, 513], &[1, 64, 64], &[3, 4], &[97]];
        for (k, shape) in shapes.iter().enumerate() {
            let c = *shape.last().unwrap();
            for eps in [1e-6, 1e-5] {
                let op = LayerNorm::last(eps);
                check_op(
                    &format!("LN last {shape:?} eps {eps} seed {seed}"),
                    &op,
                    &inputs(shape, c, seed + 10 * k as u64, -3.0, 3.0),
                    TOL,
                );
            }
        }
    }

    #[test]
    fn channels_match_reference() {
        let seed = Rng::fresh_seed();
        let shapes: &[&[usize]] = &[
            &[2, 1, 13, 17],
            &[2, 3, 13, 17],
            &[1, 97, 5, 7],
            &[2, 96, 13, 17],
            &[1, 513, 3, 5],
            &[4, 7],
            &[2, 3, 11],
            &[2, 5, 4, 6],
            &[1, 96, 8, 8],
        ];
        for (k, shape) in shapes.iter().enumerate() {
            let op = LayerNorm::channels(1e-6);
            check_op(
                &format!("LN channels {shape:?} seed {seed}"),
                &op,
                &inputs(shape, shape[1], seed + 10 * k as u64, -3.0, 3.0),
                TOL,
            );
        }
    }

    /// Values around 1000 with a spread of +-1: E[x^2] - E[x]^2 in f32 would lose everything here.
    #[test]
    fn large_offset_stays_accurate() {
        let seed = Rng::fresh_seed();
        for (k, (mode, shape)) in [
            (NormAxis::Last, &[2, 9, 97][..]),
            (NormAxis::Last, &[3, 513]),
            (NormAxis::Channels, &[2, 97, 13, 17]),
            (NormAxis::Channels, &[1, 513, 4, 5]),
        ]
        .into_iter()
        .enumerate()
        {
            let op = LayerNorm { axis_mode: mode, eps: 1e-5 };
            let c = op.axis(shape.len()).map(|a| shape[a]).unwrap();
            check_op(
                &format!("LN {mode:?} {shape:?} around 1000 seed {seed}"),
                &op,
                &inputs(shape, c, seed + 10 * k as u64, 999.0, 1001.0),
                TOL,
            );
        }
    }

    #[test]
    fn windowed_dispatches_match_reference() {
        let seed = Rng::fresh_seed();
        let align = Windows::of(device()).align();
        // Odd sizes take the scalar kernel, multiples of 4 the vec4 ones where a window allows.
        for (shape, op) in [[2, 9, 7, 11], [2, 8, 4, 6]]
            .into_iter()
            .flat_map(|s| [(s, LayerNorm::channels(1e-6)), (s, LayerNorm::last(1e-6))])
        {
            let axis = op.axis(shape.len()).unwrap();
            let (outer, c, inner) = split_at_axis(&shape, axis);
            // Whole outer slices per window, then (channels) runs of about 7 pixels; gamma and beta
            // are bound whole, so the limit stays above C.
            for limit in [c * inner + align + 7, (c - 1) * inner + align + 7] {
                let want = Windows::new(limit, align).axis(outer, c, inner).unwrap().len();
                let case = format!("LN {:?} {shape:?} seed {seed}", op.axis_mode);
                let n = check_op_windowed(&case, &op, &inputs(&shape, c, seed, -2.0, 2.0), TOL, limit);
                assert_eq!(n, want, "{case}: dispatches");
                assert!(n > 1, "{case}: one window");
            }
        }
    }

    #[test]
    fn shape_errors_are_reported() {
        let op = LayerNorm::channels(1e-6);
        assert!(op.infer(&[&[1, 8, 4, 4], &[4], &[8]]).unwrap_err().contains("gamma has shape [4]"));
        assert!(op.infer(&[&[8], &[8], &[8]]).unwrap_err().contains("rank 1"));
        assert!(LayerNorm::last(1e-5).infer(&[&[2, 8], &[8]]).unwrap_err().contains("3 inputs"));
    }
}
