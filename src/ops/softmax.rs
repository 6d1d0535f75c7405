//! Softmax over any axis of any rank, max-subtracted in f32. Also home of `axis_windows`, the split of
//! an [outer, len, inner] tensor into storage-binding windows that `layer_norm` shares.

use crate::error::{Error, Result};
use crate::kernel;
use crate::ops::axis::{dispatch_axis_windows, AxisOp};
use crate::ops::{Op, PlanCtx, TensorView};
use crate::tensor::{split_at_axis, Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("softmax")];

/// `y = exp(x - max) / sum(exp(x - max))` along `axis` (negative counts from the end, as PyTorch's `dim`).
#[derive(Clone, Debug)]
pub struct Softmax {
    pub axis: isize,
}

/// One dispatch's share of an [outer, len, inner] tensor: `outer` slices starting at slice `outer0`,
/// inner positions `inner0 .. inner0 + inner` of each. The binding covers elements `start .. start + len`
/// (`start` a multiple of the offset alignment); the window's first element is `base` into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisWindow {
    pub start: usize,
    pub len: usize,
    pub base: usize,
    pub outer0: usize,
    pub outer: usize,
    pub inner0: usize,
    pub inner: usize,
}

/// Split an [outer, len, inner] tensor into windows of at most `limit` elements whose bound start is
/// a multiple of `align` elements: whole outer slices when one fits, otherwise runs of inner positions
/// (each window then spans `(len - 1) * inner + count` elements). Errors when not even one inner
/// position's axis fits.
pub fn axis_windows(
    outer: usize,
    len: usize,
    inner: usize,
    limit: usize,
    align: usize,
) -> std::result::Result<Vec<AxisWindow>, String> {
    let align = align.max(1);
    let slice = len * inner;
    if outer * slice == 0 {
        return Ok(Vec::new());
    }
    if outer * slice <= limit {
        return Ok(vec![AxisWindow { start: 0, len: outer * slice, base: 0, outer0: 0, outer, inner0: 0, inner }]);
    }
    // Room for the data once a misaligned start has been rounded down.
    let cap = (limit + 1).saturating_sub(align);
    let place = |first: usize, span: usize, outer0, outer, inner0, inner| {
        let start = first / align * align;
        AxisWindow { start, len: first - start + span, base: first - start, outer0, outer, inner0, inner }
    };
    let mut out = Vec::new();
    if slice <= cap {
        let per = cap / slice;
        let mut o = 0;
        while o < outer {
            let n = per.min(outer - o);
            out.push(place(o * slice, n * slice, o, n, 0, inner));
            o += n;
        }
    } else {
        let fixed = (len - 1) * inner;
        if fixed >= cap {
            return Err(format!(
                "an axis of {len} elements at stride {inner} spans more than one storage binding ({limit} elements)"
            ));
        }
        let per = cap - fixed;
        for o in 0..outer {
            let mut i = 0;
            while i < inner {
                let n = per.min(inner - i);
                out.push(place(o * slice + i, fixed + n, o, 1, i, n));
                i += n;
            }
        }
    }
    Ok(out)
}

/// Windows of an [outer, len, inner] tensor for this device (see `axis_windows`).
pub(crate) fn device_windows(ctx: &PlanCtx, outer: usize, len: usize, inner: usize) -> Result<Vec<AxisWindow>> {
    let limit = ctx.max_binding_elems();
    let align = (ctx.gpu.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
    axis_windows(outer, len, inner, limit, align).map_err(|m| Error::graph(format!("node '{}': {m}", ctx.node_name)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::check_op;
    use crate::ops::TEST_BINDING_LIMIT;
    use crate::tensor::Rng;

    /// Outputs lie in [0, 1], so this is an absolute error bound of 2e-6 (seen: about 1.2e-7).
    const TOL: f32 = 2e-6;

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

    #[test]
    fn windowed_dispatches_match_reference() {
        let seed = Rng::fresh_seed();
        let align = (crate::ops::testing::device().limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
        for (shape, axis) in [[3, 5, 7, 11], [3, 4, 8, 12]].into_iter().flat_map(|s| (0..4).map(move |a| (s, a))) {
            let x = Tensor::random(&shape, seed, -10.0, 10.0);
            let (_, len, inner) = split_at_axis(&shape, axis);
            // Whole outer slices per window, then runs of about 7 inner positions.
            for limit in [len * inner + align + 7, (len - 1) * inner + align + 7] {
                TEST_BINDING_LIMIT.with(|c| c.set(Some(limit)));
                check_op(
                    &format!("softmax {shape:?} windows of {limit} axis {axis} seed {seed}"),
                    &Softmax { axis: axis as isize },
                    &[x.clone()],
                    TOL,
                );
            }
        }
        TEST_BINDING_LIMIT.with(|c| c.set(None));
    }

    /// Every (outer, inner) position is covered exactly once, every element it touches lies inside its
    /// window's binding, bindings start aligned and fit the limit.
    #[test]
    fn axis_windows_cover_exactly() {
        let cases = [(1, 7, 1), (3, 5, 77), (10, 13, 1), (4, 3, 50), (2, 40, 3), (6, 1, 9)];
        for (outer, len, inner) in cases {
            for limit in [64, 100, 150, 1000, 100_000] {
                for align in [1, 4, 16] {
                    let Ok(ws) = axis_windows(outer, len, inner, limit, align) else {
                        assert!(
                            (len - 1) * inner + align > limit,
                            "{outer} {len} {inner} limit {limit}: refused needlessly"
                        );
                        continue;
                    };
                    let mut seen = vec![0u8; outer * inner];
                    for w in &ws {
                        assert_eq!(w.start % align, 0);
                        assert!(w.len <= limit, "{w:?} over {limit}");
                        for o in w.outer0..w.outer0 + w.outer {
                            for i in w.inner0..w.inner0 + w.inner {
                                seen[o * inner + i] += 1;
                                for c in [0, len - 1] {
                                    let flat = o * len * inner + c * inner + i;
                                    // The kernel's index inside the binding:
                                    let local = w.base + (o - w.outer0) * len * inner + c * inner + (i - w.inner0);
                                    assert_eq!(w.start + local, flat, "{w:?}");
                                    assert!(local < w.len, "{w:?}");
                                }
                            }
                        }
                    }
                    assert!(
                        seen.iter().all(|&s| s == 1),
                        "({outer}, {len}, {inner}) limit {limit} align {align}: {ws:?}"
                    );
                }
            }
        }
        assert!(axis_windows(2, 100, 10, 500, 4).unwrap_err().contains("spans more than one storage binding"));
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
