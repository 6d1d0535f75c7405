//! Per-sample min-max normalisation (Mesorch's DCT extractors): `y = (x - min) / (max - min)` with
//! min and max taken over everything but the batch dimension (dim 0), jointly over all channels
//! and pixels. No epsilon, as in the reference model: where a sample is constant (max == min)
//! every output of that sample is 0/0 = NaN, as PyTorch gives. NaN inputs give unspecified stats.

use crate::error::{Error, Result};
use crate::kernel;
use crate::ops::{as_bytes, groups, Bind, Op, PlanCtx, TensorView};
use crate::tensor::{Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("minmax")];

/// `y[n] = (x[n] - min(x[n])) / (max(x[n]) - min(x[n]))` per sample `n`; output shape = input shape.
#[derive(Clone, Debug)]
pub struct MinMaxNorm;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct StatParams {
    len: u32,
    threads: u32,
    samples: u32,
    _p0: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct NormParams {
    n: u32,
    len: u32,
    _p0: u32,
    _p1: u32,
}

/// Invocations per workgroup of the `partial` kernel.
const PARTIAL_WG: usize = 64;

impl Op for MinMaxNorm {
    fn kind(&self) -> &'static str {
        "minmax_norm"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        match inputs {
            [x] if !x.is_empty() && x.iter().all(|&d| d > 0) => Ok(vec![x.to_vec()]),
            [x] => Err(format!("needs a non-empty tensor of rank >= 1, got {x:?}")),
            _ => Err(format!("takes 1 input, got {}", inputs.len())),
        }
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        Some(Box::new(MinMaxCpu { samples: *inputs[0].shape.first()? }))
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let x = inputs[0];
        let len = x.numel() / x.shape[0];
        let mut data = Vec::with_capacity(x.numel());
        for sample in x.data.chunks(len) {
            let lo = sample.iter().fold(f64::INFINITY, |m, &v| m.min(v as f64));
            let hi = sample.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            data.extend(sample.iter().map(|&v| ((v as f64 - lo) / (hi - lo)) as f32));
        }
        vec![Tensor { shape: x.shape.clone(), data }]
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let (x, y) = (&inputs[0], &outputs[0]);
        let samples = x.shape[0];
        let len = x.numel() / samples;
        // Enough partial pairs to keep both pools of lanes busy, few enough for one serial fold.
        let wgs = len.div_ceil(PARTIAL_WG * 64).clamp(1, 32);
        let threads = wgs * PARTIAL_WG;
        // Samples per window: windows start aligned (no base offsets), x, y and the partial pairs
        // of every sample fit one binding, and the grid's y stays within 65535.
        let chunk = ctx
            .windows()
            .aligned_run(samples, len, len.max(2 * threads), 65535)
            .map_err(|m| Error::graph(format!("node '{}': minmax_norm: {m}", ctx.node_name)))?;
        let partials = ctx.scratch(chunk * threads * 2)?;
        let stats = ctx.scratch(chunk * 2)?;
        let p_partial = ctx.pipeline(&KERNELS[0], "partial", &[])?;
        let p_combine = ctx.pipeline(&KERNELS[0], "combine", &[])?;
        let p_norm = ctx.pipeline(&KERNELS[0], "norm", &[])?;
        let mut s0 = 0;
        while s0 < samples {
            let cs = chunk.min(samples - s0);
            let (xin, yout) = (x.window(s0 * len, cs * len), y.window(s0 * len, cs * len));
            let sp = StatParams { len: len as u32, threads: threads as u32, samples: cs as u32, _p0: 0 };
            let b = as_bytes(&sp);
            ctx.dispatch(
                &p_partial,
                &[Bind::Uniform(b), Bind::Tensor(&xin), Bind::Tensor(&partials)],
                [wgs as u32, cs as u32, 1],
            )?;
            ctx.dispatch(
                &p_combine,
                &[Bind::Uniform(b), Bind::Tensor(&partials), Bind::Tensor(&stats)],
                [groups(cs, 64), 1, 1],
            )?;
            let np = NormParams { n: (cs * len) as u32, len: len as u32, _p0: 0, _p1: 0 };
            ctx.dispatch_linear(
                &p_norm,
                &[Bind::Uniform(as_bytes(&np)), Bind::Tensor(&xin), Bind::Tensor(&stats), Bind::Tensor(&yout)],
                groups(cs * len, 256),
            )?;
            s0 += cs;
        }
        Ok(())
    }
}

/// minmax_norm on the CPU backend: per sample, the min and max (in f64, as the reference) over
/// blocks on the pool, then each element mapped as the reference maps it (the same bits).
struct MinMaxCpu {
    samples: usize,
}

impl crate::cpu::CpuKernel for MinMaxCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        use rayon::prelude::*;
        const BLOCK: usize = 1 << 14;
        let (x, y) = (inputs[0], &mut *outputs[0]);
        let len = x.len() / self.samples.max(1);
        if len == 0 {
            return;
        }
        for (xs, ys) in x.chunks(len).zip(y.chunks_mut(len)) {
            let (lo, hi) = xs
                .par_chunks(BLOCK)
                .map(|c| c.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v as f64), h.max(v as f64))))
                .reduce(|| (f64::INFINITY, f64::NEG_INFINITY), |a, b| (a.0.min(b.0), a.1.max(b.1)));
            crate::cpu::par_chunks(ys, BLOCK, BLOCK, |i, d| {
                for (v, &s) in d.iter_mut().zip(&xs[i * BLOCK..]) {
                    *v = ((s as f64 - lo) / (hi - lo)) as f32;
                }
            });
        }
    }
    fn name(&self) -> &'static str {
        "minmax_norm blocks"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{check_op, run_on_gpu};
    use crate::tensor::Rng;

    const TOL: f32 = 1e-4;

    #[test]
    fn random_inputs_match_reference() {
        let seed = Rng::fresh_seed();
        let shapes: &[&[usize]] = &[&[2, 3, 16, 24], &[1, 3, 13, 17], &[3, 5], &[1, 3, 512, 512], &[4, 1, 1, 1, 7]];
        for (i, s) in shapes.iter().enumerate() {
            let x = Tensor::random(s, seed + i as u64, -3.0, 5.0);
            check_op(&format!("minmax {s:?} seed {seed}"), &MinMaxNorm, &[x], TOL);
        }
    }

    #[test]
    fn samples_use_their_own_ranges() {
        let seed = Rng::fresh_seed();
        let a = Tensor::random(&[1, 3, 9, 11], seed, -1.0, 1.0);
        let b = Tensor::random(&[1, 3, 9, 11], seed + 1, 100.0, 250.0);
        let x = Tensor::new(&[2, 3, 9, 11], [a.data, b.data].concat()).unwrap();
        check_op(&format!("two ranges seed {seed}"), &MinMaxNorm, &[x.clone()], TOL);
        let y = run_on_gpu(&MinMaxNorm, &[x]).unwrap().remove(0);
        for sample in y.data.chunks(3 * 9 * 11) {
            let lo = sample.iter().cloned().fold(f32::INFINITY, f32::min);
            let hi = sample.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            assert!(lo == 0.0 && (hi - 1.0).abs() <= 1e-6, "seed {seed}: sample spans {lo}..{hi}");
        }
    }

    /// Samples over the binding limit: windows of whole samples, three dispatches each. Samples of
    /// 64 elements with 64 partial pairs (128 elements) each: 2 per window of 300, 6 in 3 windows.
    #[test]
    fn windows_of_samples() {
        let seed = Rng::fresh_seed();
        let x = Tensor::random(&[6, 2, 4, 8], seed, -3.0, 5.0);
        let n =
            crate::ops::testing::check_op_windowed(&format!("minmax windows seed {seed}"), &MinMaxNorm, &[x], TOL, 300);
        assert_eq!(n, 9);
    }

    #[test]
    fn constant_sample_gives_nan() {
        // Sample 0 is constant (0/0 = NaN, as PyTorch), sample 1 is not.
        let mut x = Tensor::full(&[2, 2, 3, 5], 0.25);
        x.data[30 + 7] = 1.25;
        let y = run_on_gpu(&MinMaxNorm, &[x.clone()]).unwrap().remove(0);
        assert!(y.data[..30].iter().all(|v| v.is_nan()), "constant sample: {:?}", &y.data[..30]);
        for (i, &v) in y.data[30..].iter().enumerate() {
            assert_eq!(v, if i == 7 { 1.0 } else { 0.0 }, "sample 1 element {i}");
        }
        let r = MinMaxNorm.reference(&[&x]).remove(0);
        assert!(r.data[..30].iter().all(|v| v.is_nan()));
    }
}
