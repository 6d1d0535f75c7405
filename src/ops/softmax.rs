//! Softmax over any axis of any rank, max-subtracted in f32 (kernels and windows: `ops::axis`).

use crate::error::{Error, Result};
use crate::kernel;
use crate::ops::axis::{dispatch_axis_windows, AxisOp};
use crate::ops::{Op, PlanCtx, TensorView};
use crate::tensor::{split_at_axis, Shape, Tensor};

/// Module "softmax"; module "softmax_sg" adds the subgroup variant (compiled only where it runs).
pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("softmax"), kernel!("softmax_sg" = "softmax", "softmax_sg")];

/// `y = exp(x - max) / sum(exp(x - max))` along `axis` (negative counts from the end, as PyTorch's `dim`).
#[derive(Clone, Debug)]
pub struct Softmax {
    pub axis: isize,
}

/// Resolve a possibly negative axis against `rank`.
pub fn resolve_axis(axis: isize, rank: usize) -> std::result::Result<usize, String> {
    let a = if axis < 0 { axis + rank as isize } else { axis };
    if a < 0 || a >= rank as isize {
        return Err(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(a as usize)
}

impl Op for Softmax {
    fn kind(&self) -> &'static str {
        "softmax"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        match inputs {
            [x] => {
                resolve_axis(self.axis, x.len())?;
                Ok(vec![x.to_vec()])
            }
            _ => Err(format!("takes 1 input, got {}", inputs.len())),
        }
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        let axis = resolve_axis(self.axis, inputs[0].shape.len()).ok()?;
        Some(Box::new(SoftmaxCpu(split_at_axis(inputs[0].shape, axis))))
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let x = inputs[0];
        let axis = resolve_axis(self.axis, x.shape.len()).unwrap();
        let (outer, len, inner) = split_at_axis(&x.shape, axis);
        let mut data = vec![0.0f32; x.data.len()];
        for o in 0..outer {
            for i in 0..inner {
                let at = |c: usize| o * len * inner + c * inner + i;
                let m = (0..len).map(|c| x.data[at(c)] as f64).fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = (0..len).map(|c| (x.data[at(c)] as f64 - m).exp()).sum();
                for c in 0..len {
                    data[at(c)] = ((x.data[at(c)] as f64 - m).exp() / sum) as f32;
                }
            }
        }
        vec![Tensor { shape: x.shape.clone(), data }]
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let axis = resolve_axis(self.axis, inputs[0].shape.len()).map_err(Error::graph)?;
        dispatch_axis_windows(ctx, AxisOp::Softmax, &inputs[0], &[], &outputs[0], axis, 0.0)
    }
}

/// Softmax on the CPU backend, one (outer) slab per task: max, exp and sum in f32 along the axis,
/// walking contiguous `inner` runs so the loops vectorize.
struct SoftmaxCpu((usize, usize, usize));

impl crate::cpu::CpuKernel for SoftmaxCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (x, (_, len, inner)) = (inputs[0], self.0);
        crate::cpu::par_chunks(outputs[0], len * inner, 1 << 14, |o, y| {
            let x = &x[o * len * inner..(o + 1) * len * inner];
            let mut max = vec![f32::NEG_INFINITY; inner];
            for row in x.chunks(inner) {
                max.iter_mut().zip(row).for_each(|(m, &v)| *m = m.max(v));
            }
            let mut sum = vec![0.0f32; inner];
            for (yr, xr) in y.chunks_mut(inner).zip(x.chunks(inner)) {
                for (((yv, &xv), s), &m) in yr.iter_mut().zip(xr).zip(sum.iter_mut()).zip(&max) {
                    *yv = crate::ops::act::exp_fast(xv - m);
                    *s += *yv;
                }
            }
            sum.iter_mut().for_each(|s| *s = 1.0 / *s);
            for yr in y.chunks_mut(inner) {
                yr.iter_mut().zip(&sum).for_each(|(v, s)| *v *= s);
            }
        });
    }
    fn name(&self) -> &'static str {
        "softmax"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{check_op, check_op_windowed, device};
    use crate::ops::window::Windows;
    use crate::tensor::Rng;

    /// Outputs lie in [0, 1], so this is an absolute error bound of 2e-6 (seen: about 1.2e-7).
    const TOL: f32 = 2e-6;

    /// The subgroup variant of hardware GPUs (one row per subgroup), on whatever device runs the
    /// tests: rows shorter and longer than a subgroup, more rows than one workgroup holds, a
    /// window whose rows end mid-workgroup; other axes keep the plain kernels.
    #[test]
    fn subgroup_rows_on_hardware_plans() {
        let seed = Rng::fresh_seed();
        let sg = device().features.contains(wgpu::Features::SUBGROUP);
        for (i, (shape, axis)) in
            [(vec![1, 1], -1), (vec![3, 7], -1), (vec![130, 300], -1), (vec![2, 65, 33], -1), (vec![2, 6, 5], 1)]
                .into_iter()
                .enumerate()
        {
            let x = Tensor::random(&shape, seed + i as u64, -8.0, 8.0);
            let labels = crate::ops::testing::check_op_as_hardware(
                &format!("softmax {shape:?} axis {axis} seed {}", seed + i as u64),
                &Softmax { axis },
                &[x],
                TOL,
            );
            assert_eq!(labels.iter().any(|l| l.contains("softmax_sg")), sg && axis == -1, "{shape:?}: {labels:?}");
        }
    }

    #[test]
    fn every_axis_of_4d() {
        let seed = Rng::fresh_seed();
        // Odd sizes take the scalar kernel; multiples of 4 the vec4 ones (rows4 for the last axis).
        for shape in [[2, 3, 13, 17], [2, 4, 6, 8]] {
            let x = Tensor::random(&shape, seed, -6.0, 6.0);
            for axis in [0, 1, 2, 3, -1, -3] {
                check_op(&format!("softmax {shape:?} axis {axis} seed {seed}"), &Softmax { axis }, &[x.clone()], TOL);
            }
        }
    }

    #[test]
    fn large_logits_and_odd_shapes() {
        let seed = Rng::fresh_seed();
        let cases: &[(&[usize], isize)] = &[
            (&[1], 0),
            (&[513], 0),
            (&[5, 1], 1),
            (&[3, 97], -1),
            (&[2, 8, 13, 17], 1),
            (&[1, 2, 33, 256], 3),
            (&[1, 8, 128, 128], 1),
        ];
        for (k, &(shape, axis)) in cases.iter().enumerate() {
            let x = Tensor::random(shape, seed + k as u64, -80.0, 80.0);
            check_op(&format!("softmax {shape:?} axis {axis} logits +-80 seed {seed}"), &Softmax { axis }, &[x], TOL);
        }
    }

    /// Windows of whole outer slices, then runs of inner positions: one dispatch per window, and
    /// more than one window.
    #[test]
    fn windowed_dispatches_match_reference() {
        let seed = Rng::fresh_seed();
        let align = Windows::of(device()).align();
        for (shape, axis) in [[3, 5, 7, 11], [3, 4, 8, 12]].into_iter().flat_map(|s| (0..4).map(move |a| (s, a))) {
            let x = Tensor::random(&shape, seed, -10.0, 10.0);
            let (outer, len, inner) = split_at_axis(&shape, axis);
            // Whole outer slices per window (when there are several), then runs of about 7 inner positions.
            for limit in [len * inner + align + 7, (len - 1) * inner + align + 7] {
                let want = Windows::new(limit, align).axis(outer, len, inner).unwrap().len();
                let op = Softmax { axis: axis as isize };
                let case = format!("softmax {shape:?} axis {axis} seed {seed}");
                assert_eq!(check_op_windowed(&case, &op, &[x.clone()], TOL, limit), want, "{case}: dispatches");
                assert!(want > 1 || outer == 1, "{case}: limit {limit} gives one window");
            }
        }
        // Outer 3, slices of 385: two slices per window, then inner runs of 21 (align 8) per slice.
        let x = Tensor::random(&[3, 5, 7, 11], seed, -10.0, 10.0);
        let two = (2 * 385 + align).next_multiple_of(align);
        assert_eq!(check_op_windowed("softmax two slices a window", &Softmax { axis: 1 }, &[x.clone()], TOL, two), 2);
        let runs = (4 * 77 + 20 + align).next_multiple_of(align);
        let per = runs + 1 - align - 4 * 77;
        let n = check_op_windowed("softmax runs of inner positions", &Softmax { axis: 1 }, &[x], TOL, runs);
        assert_eq!(n, 3 * 77usize.div_ceil(per));
    }

    /// Kernel times for the Mesorch shapes (`cargo test --lib mesorch_timings -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn mesorch_timings() {
        use crate::graph::{GraphBuilder, Plan};
        use crate::ops::layer_norm::LayerNorm;
        let gpu = crate::ops::testing::device();
        let cases: Vec<(Box<dyn Op>, Vec<usize>)> = vec![
            (Box::new(LayerNorm::last(1e-6)), vec![1, 16384, 64]),
            (Box::new(LayerNorm::last(1e-6)), vec![1, 4096, 128]),
            (Box::new(LayerNorm::last(1e-6)), vec![1, 1024, 320]),
            (Box::new(LayerNorm::last(1e-6)), vec![1, 256, 512]),
            (Box::new(LayerNorm::channels(1e-6)), vec![1, 96, 128, 128]),
            (Box::new(LayerNorm::channels(1e-6)), vec![1, 192, 256, 256]),
            (Box::new(Softmax { axis: -1 }), vec![1, 1, 16384, 256]),
            (Box::new(Softmax { axis: 1 }), vec![1, 8, 128, 128]),
            (Box::new(crate::ops::elementwise::Unary { act: crate::ops::act::Act::Relu }), vec![1, 16384, 64]),
            (Box::new(crate::ops::elementwise::Unary { act: crate::ops::act::Act::Relu }), vec![1, 192, 256, 256]),
        ];
        for (op, shape) in cases {
            let mut b = GraphBuilder::new();
            let mut ins = vec![b.input("x", &shape)];
            let mut feed = vec![("x".to_string(), Tensor::random(&shape, 1, -3.0, 3.0))];
            if op.kind() == "layer_norm" {
                let c = if shape.len() == 4 { shape[1] } else { shape[2] };
                for n in ["g", "b"] {
                    ins.push(b.input(n, &[c]));
                    feed.push((n.to_string(), Tensor::random(&[c], 2, 0.5, 1.5)));
                }
            }
            let kind = op.kind();
            let y = b.add_multi("op", BoxedOp(op), &ins).unwrap()[0];
            b.output("y", y);
            let plan = Plan::new(gpu, &b.finish()).unwrap();
            let feed: Vec<(&str, &Tensor)> = feed.iter().map(|(n, t)| (n.as_str(), t)).collect();
            let mut best = f64::INFINITY;
            for _ in 0..4 {
                let (_, t) = plan.run_profiled(&feed).unwrap();
                best = best.min(t.iter().filter(|t| t.node == "op").map(|t| t.micros).sum());
            }
            let gb = 3.0 * 4.0 * shape.iter().product::<usize>() as f64 / 1e9;
            println!("{kind} {shape:?}: {:.0} us ({:.1} GB/s at 3 passes)", best, gb / (best * 1e-6));
        }
    }

    #[derive(Debug)]
    struct BoxedOp(Box<dyn Op>);
    impl Op for BoxedOp {
        fn kind(&self) -> &'static str {
            self.0.kind()
        }
        fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
            self.0.infer(inputs)
        }
        fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
            self.0.reference(inputs)
        }
        fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
            self.0.plan(ctx, inputs, outputs)
        }
    }

    #[test]
    fn bad_axis_is_reported() {
        assert!(Softmax { axis: 4 }.infer(&[&[2, 3, 4, 5]]).unwrap_err().contains("out of range"));
        assert!(Softmax { axis: -5 }.infer(&[&[2, 3, 4, 5]]).unwrap_err().contains("out of range"));
    }
}
