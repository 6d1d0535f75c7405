//! Layout ops: reshape (a free view), concat and slice along an axis (strided block copies), and
//! permute (general transpose of up to 6 dimensions).

use crate::error::Result;
use crate::kernel;
use crate::ops::{as_bytes, groups, Bind, Op, PlanCtx, TensorView};
use crate::tensor::{numel, split_at_axis, Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("layout")];

/// Same bytes, new shape. No dispatch: the planner aliases the output to the input's buffer.
#[derive(Clone, Debug)]
pub struct Reshape {
    pub shape: Shape,
}

impl Op for Reshape {
    fn kind(&self) -> &'static str {
        "reshape"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        match inputs {
            [x] if numel(x) == numel(&self.shape) => Ok(vec![self.shape.clone()]),
            [x] => Err(format!("cannot reshape {x:?} ({} elements) to {:?}", numel(x), self.shape)),
            _ => Err(format!("takes 1 input, got {}", inputs.len())),
        }
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        vec![Tensor { shape: self.shape.clone(), data: inputs[0].data.clone() }]
    }
    fn plan(&self, _: &mut PlanCtx, _: &[TensorView], _: &[TensorView]) -> Result<()> {
        Ok(())
    }
    fn view_of(&self) -> Option<usize> {
        Some(0)
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct CopyParams {
    outer: u32,
    inner: u32,
    src_stride: u32,
    dst_stride: u32,
    src_off: u32,
    dst_off: u32,
    _p: [u32; 2],
}

/// Record a block copy; both tensors bound whole.
fn copy_blocks(ctx: &mut PlanCtx, src: &TensorView, dst: &TensorView, p: CopyParams) -> Result<()> {
    if p.outer == 0 || p.inner == 0 {
        return Ok(());
    }
    let pipe = ctx.pipeline(&KERNELS[0], "copy_blocks", &[])?;
    ctx.dispatch_linear(
        &pipe,
        &[Bind::Uniform(as_bytes(&p)), Bind::Tensor(src), Bind::Tensor(dst)],
        groups(p.outer as usize * p.inner as usize, 256),
    )
}

/// Concatenate inputs along `axis`; all other dimensions must agree.
#[derive(Clone, Debug)]
pub struct Concat {
    pub axis: usize,
}

impl Op for Concat {
    fn kind(&self) -> &'static str {
        "concat"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        let first = inputs.first().ok_or("needs at least one input")?;
        if self.axis >= first.len() {
            return Err(format!("axis {} out of range for rank {}", self.axis, first.len()));
        }
        let mut out = first.to_vec();
        out[self.axis] = 0;
        for (i, s) in inputs.iter().enumerate() {
            let same = s.len() == first.len() && (0..s.len()).all(|d| d == self.axis || s[d] == first[d]);
            if !same {
                return Err(format!("input {i} has shape {s:?}, incompatible with {first:?} outside axis {}", self.axis));
            }
            out[self.axis] += s[self.axis];
        }
        Ok(vec![out])
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|i| i.shape).collect();
        let out = self.infer(&shapes).ok()?.remove(0);
        let (_, _, inner) = split_at_axis(&out, self.axis);
        Some(Box::new(BlocksCpu::Concat(shapes.iter().map(|s| s[self.axis] * inner).collect())))
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
        let out_shape = self.infer(&shapes).unwrap().remove(0);
        let (outer, _, inner) = split_at_axis(&out_shape, self.axis);
        let mut data = Vec::with_capacity(numel(&out_shape));
        for o in 0..outer {
            for t in inputs {
                let block = t.shape[self.axis] * inner;
                data.extend_from_slice(&t.data[o * block..(o + 1) * block]);
            }
        }
        vec![Tensor { shape: out_shape, data }]
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let (outer, total, inner) = split_at_axis(&outputs[0].shape, self.axis);
        let mut at = 0;
        for x in inputs {
            let block = x.shape[self.axis] * inner;
            let p = CopyParams {
                outer: outer as u32,
                inner: block as u32,
                src_stride: block as u32,
                dst_stride: (total * inner) as u32,
                src_off: 0,
                dst_off: (at * inner) as u32,
                _p: [0; 2],
            };
            copy_blocks(ctx, x, &outputs[0], p)?;
            at += x.shape[self.axis];
        }
        Ok(())
    }
}

/// `x[.., start..end, ..]` along `axis` (step 1).
#[derive(Clone, Debug)]
pub struct Slice {
    pub axis: usize,
    pub start: usize,
    pub end: usize,
}

impl Op for Slice {
    fn kind(&self) -> &'static str {
        "slice"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        let [x] = inputs else { return Err(format!("takes 1 input, got {}", inputs.len())) };
        if self.axis >= x.len() || self.start >= self.end || self.end > x[self.axis] {
            return Err(format!("slice {}..{} on axis {} does not fit shape {x:?}", self.start, self.end, self.axis));
        }
        let mut out = x.to_vec();
        out[self.axis] = self.end - self.start;
        Ok(vec![out])
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        self.infer(&[inputs[0].shape]).ok()?;
        let (_, n, inner) = split_at_axis(inputs[0].shape, self.axis);
        let (from, len) = (self.start * inner, (self.end - self.start) * inner);
        Some(Box::new(BlocksCpu::Slice { from, len, stride: n * inner }))
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let x = inputs[0];
        let out_shape = self.infer(&[&x.shape]).unwrap().remove(0);
        let (outer, n, inner) = split_at_axis(&x.shape, self.axis);
        let mut data = Vec::with_capacity(numel(&out_shape));
        for o in 0..outer {
            data.extend_from_slice(&x.data[(o * n + self.start) * inner..(o * n + self.end) * inner]);
        }
        vec![Tensor { shape: out_shape, data }]
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let (outer, n, inner) = split_at_axis(&inputs[0].shape, self.axis);
        let len = self.end - self.start;
        let p = CopyParams {
            outer: outer as u32,
            inner: (len * inner) as u32,
            src_stride: (n * inner) as u32,
            dst_stride: (len * inner) as u32,
            src_off: (self.start * inner) as u32,
            dst_off: 0,
            _p: [0; 2],
        };
        copy_blocks(ctx, &inputs[0], &outputs[0], p)
    }
}

pub const MAX_RANK: usize = 6;

/// `y = x.permute(perm)`: output dimension i is input dimension perm[i].
#[derive(Clone, Debug)]
pub struct Permute {
    pub perm: Vec<usize>,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PermuteParams {
    n: u32,
    _p: [u32; 3],
    d: [u32; 8],
    s: [u32; 8],
}

/// Mirrors `TransposeParams` in `kernels/layout.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct TransposeParams {
    b: u32,
    x: u32,
    y: u32,
    _p0: u32,
}

impl Permute {
    /// `Some([B, X, Y])` when this permutation of `shape` is a batched transpose of `[B, X, Y]` to
    /// `[B, Y, X]` once unit dimensions are dropped and dimensions that stay neighbours are merged
    /// (NCHW to tokens and back), which the `transpose` kernel runs without per-element division.
    pub fn batched_transpose(&self, shape: &[usize]) -> Option<[usize; 3]> {
        let kept: Vec<usize> = self.perm.iter().copied().filter(|&p| shape[p] != 1).collect();
        // Runs of input dims that stay consecutive in the output: (first input dim, size).
        let mut runs: Vec<(usize, usize)> = Vec::new();
        let mut prev: Option<usize> = None;
        for &p in &kept {
            let next_kept = prev.and_then(|q| (q + 1..shape.len()).find(|&k| shape[k] != 1));
            match runs.last_mut() {
                Some(run) if next_kept == Some(p) => run.1 *= shape[p],
                _ => runs.push((p, shape[p])),
            }
            prev = Some(p);
        }
        match runs[..] {
            [(a, sa), (b, sb)] if b < a => Some([1, sb, sa]),
            [(a, sa), (b, sb), (c, sc)] if a < c && c < b => Some([sa, sc, sb]),
            _ => None,
        }
    }

    /// Output dims and, per output dim, the input stride (both right-aligned to MAX_RANK).
    fn geometry(&self, x: &[usize]) -> ([usize; MAX_RANK], [usize; MAX_RANK]) {
        let r = x.len();
        let mut in_strides = vec![1usize; r];
        for i in (0..r.saturating_sub(1)).rev() {
            in_strides[i] = in_strides[i + 1] * x[i + 1];
        }
        let (mut d, mut s) = ([1usize; MAX_RANK], [0usize; MAX_RANK]);
        for (i, &p) in self.perm.iter().enumerate() {
            d[MAX_RANK - r + i] = x[p];
            s[MAX_RANK - r + i] = in_strides[p];
        }
        (d, s)
    }
}

impl Op for Permute {
    fn kind(&self) -> &'static str {
        "permute"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        let [x] = inputs else { return Err(format!("takes 1 input, got {}", inputs.len())) };
        let mut seen = vec![false; x.len()];
        if self.perm.len() != x.len() || x.len() > MAX_RANK || self.perm.iter().any(|&p| p >= x.len() || std::mem::replace(&mut seen[p], true)) {
            return Err(format!("{:?} is not a permutation of the {} dimensions of {x:?} (max rank {MAX_RANK})", self.perm, x.len()));
        }
        Ok(vec![self.perm.iter().map(|&p| x[p]).collect()])
    }
    fn as_transpose(&self, input: &[usize]) -> Option<[usize; 3]> {
        self.batched_transpose(input)
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        if let Some(bxy) = self.batched_transpose(inputs[0].shape) {
            return Some(Box::new(TransposeCpu(bxy)));
        }
        Some(Box::new(PermuteCpu(self.geometry(inputs[0].shape))))
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let x = inputs[0];
        let (d, s) = self.geometry(&x.shape);
        let n = x.numel();
        let mut data = Vec::with_capacity(n);
        for flat in 0..n {
            let (mut r, mut src) = (flat, 0);
            for k in (0..MAX_RANK).rev() {
                src += (r % d[k]) * s[k];
                r /= d[k];
            }
            data.push(x.data[src]);
        }
        vec![Tensor { shape: self.perm.iter().map(|&p| x.shape[p]).collect(), data }]
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        if let Some([b, x, y]) = self.batched_transpose(&inputs[0].shape) {
            let max = ctx.gpu.limits.max_compute_workgroups_per_dimension as usize;
            if ctx.windows().fits(inputs[0].numel()) && b <= max && y.div_ceil(4) <= max && x.div_ceil(64) <= max {
                let p = TransposeParams { b: b as u32, x: x as u32, y: y as u32, _p0: 0 };
                // vec4 loads when rows are whole vec4s and the binding starts 16-byte aligned.
                let entry = if y % 4 == 0 && inputs[0].offset % 16 == 0 { "transpose_v4" } else { "transpose" };
                let pipe = ctx.pipeline(&KERNELS[0], entry, &[])?;
                let binds = [Bind::Uniform(as_bytes(&p)), Bind::Tensor(&inputs[0]), Bind::Tensor(&outputs[0])];
                return ctx.dispatch(&pipe, &binds, [groups(x, 64), groups(y, 4), b as u32]);
            }
        }
        let (d, s) = self.geometry(&inputs[0].shape);
        let mut p = PermuteParams { n: inputs[0].numel() as u32, _p: [0; 3], d: [1; 8], s: [0; 8] };
        for k in 0..MAX_RANK {
            p.d[k] = d[k] as u32;
            p.s[k] = s[k] as u32;
        }
        let pipe = ctx.pipeline(&KERNELS[0], "permute", &[])?;
        ctx.dispatch_linear(
            &pipe,
            &[Bind::Uniform(as_bytes(&p)), Bind::Tensor(&inputs[0]), Bind::Tensor(&outputs[0])],
            groups(inputs[0].numel(), 256),
        )
    }
}

/// Concat and slice on the CPU backend: each output block (everything under one index of the
/// dimensions before the axis) copied whole, blocks split over the pool.
enum BlocksCpu {
    /// Each input's block length, in order.
    Concat(Vec<usize>),
    /// Each output block is `len` floats at `from` in an input block of `stride`.
    Slice { from: usize, len: usize, stride: usize },
}

impl crate::cpu::CpuKernel for BlocksCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let y = &mut *outputs[0];
        match self {
            BlocksCpu::Concat(blocks) => {
                let total: usize = blocks.iter().sum();
                crate::cpu::par_chunks(y, total.max(1), 1 << 14, |o, dst| {
                    let mut at = 0;
                    for (x, &b) in inputs.iter().zip(blocks) {
                        dst[at..at + b].copy_from_slice(&x[o * b..(o + 1) * b]);
                        at += b;
                    }
                });
            }
            &BlocksCpu::Slice { from, len, stride } => {
                let x = inputs[0];
                crate::cpu::par_chunks(y, len.max(1), 1 << 14, |o, dst| {
                    dst.copy_from_slice(&x[o * stride + from..][..len]);
                });
            }
        }
    }
    fn name(&self) -> &'static str {
        match self {
            BlocksCpu::Concat(_) => "concat block copies",
            BlocksCpu::Slice { .. } => "slice block copies",
        }
    }
}

/// A permute that is a batched transpose, on the CPU backend: the blocked transpose.
struct TransposeCpu([usize; 3]);

impl crate::cpu::CpuKernel for TransposeCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        crate::cpu::transpose::batched_transpose(inputs[0], outputs[0], self.0);
    }
    fn name(&self) -> &'static str {
        "permute blocked transpose"
    }
}

/// Permute on the CPU backend: output rows gathered with the input stride of the last output dim.
struct PermuteCpu(([usize; MAX_RANK], [usize; MAX_RANK]));

impl crate::cpu::CpuKernel for PermuteCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (x, (d, s)) = (inputs[0], &self.0);
        let step = s[MAX_RANK - 1];
        crate::cpu::strided_rows(outputs[0], d, [s], |y, [o]| {
            y.iter_mut().enumerate().for_each(|(j, v)| *v = x[o + j * step]);
        });
    }
    fn name(&self) -> &'static str {
        "permute"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::check_op;
    use crate::tensor::Rng;

    #[test]
    fn concat_slice_permute_match_reference() {
        let seed = Rng::fresh_seed();
        let a = Tensor::random(&[2, 3, 5, 7], seed, -1.0, 1.0);
        let b = Tensor::random(&[2, 4, 5, 7], seed + 1, -1.0, 1.0);
        let c = Tensor::random(&[2, 1, 5, 7], seed + 2, -1.0, 1.0);
        check_op(&format!("concat axis 1 seed {seed}"), &Concat { axis: 1 }, &[a.clone(), b, c], 0.0);
        let d = Tensor::random(&[2, 3, 5, 2], seed + 3, -1.0, 1.0);
        check_op(&format!("concat axis 3 seed {seed}"), &Concat { axis: 3 }, &[a.clone(), d], 0.0);
        for (axis, s, e) in [(0, 1, 2), (1, 1, 3), (2, 0, 4), (3, 6, 7)] {
            check_op(&format!("slice {axis} {s}..{e} seed {seed}"), &Slice { axis, start: s, end: e }, &[a.clone()], 0.0);
        }
        for perm in [vec![0, 2, 3, 1], vec![0, 3, 1, 2], vec![3, 2, 1, 0], vec![1, 0, 2, 3]] {
            check_op(&format!("permute {perm:?} seed {seed}"), &Permute { perm }, &[a.clone()], 0.0);
        }
        let x6 = Tensor::random(&[2, 3, 1, 4, 5, 3], seed + 4, -1.0, 1.0);
        check_op(&format!("permute rank 6 seed {seed}"), &Permute { perm: vec![5, 0, 3, 1, 4, 2] }, &[x6], 0.0);
    }

    #[test]
    fn batched_transposes_are_recognised() {
        let t = |shape: &[usize], perm: &[usize]| Permute { perm: perm.to_vec() }.batched_transpose(shape);
        assert_eq!(t(&[2, 3, 5, 7], &[0, 2, 3, 1]), Some([2, 3, 35]));
        assert_eq!(t(&[2, 3, 5, 7], &[0, 3, 1, 2]), Some([2, 15, 7]));
        assert_eq!(t(&[1, 64, 1, 9], &[0, 2, 3, 1]), Some([1, 64, 9]));
        assert_eq!(t(&[4, 6], &[1, 0]), Some([1, 4, 6]));
        assert_eq!(t(&[2, 3, 5, 7], &[1, 0, 2, 3]), None);
        assert_eq!(t(&[2, 3, 5, 7], &[3, 2, 1, 0]), None);
        assert_eq!(t(&[2, 3, 5, 7], &[0, 1, 2, 3]), None);
        assert_eq!(t(&[1, 1], &[1, 0]), None);
    }

    /// Transposes through the `transpose` kernel, with unit dimensions and sizes that are not
    /// multiples of its 64 x 4 block.
    #[test]
    fn transposes_match_reference() {
        let seed = Rng::fresh_seed();
        for (shape, perm) in [
            (vec![1, 67, 5, 13], vec![0, 2, 3, 1]),
            (vec![2, 8, 3, 12], vec![0, 2, 3, 1]),
            (vec![3, 5, 1, 130], vec![0, 3, 1, 2]),
            (vec![9, 1, 70], vec![2, 1, 0]),
            (vec![2, 4, 3, 1, 5], vec![0, 3, 4, 1, 2]),
        ] {
            assert!(Permute { perm: perm.clone() }.batched_transpose(&shape).is_some(), "{shape:?} {perm:?}");
            let x = Tensor::random(&shape, seed, -1.0, 1.0);
            check_op(&format!("transpose {shape:?} {perm:?} seed {seed}"), &Permute { perm }, &[x], 0.0);
        }
    }

    #[test]
    fn permute_reference_is_a_transpose() {
        let x = Tensor::new(&[2, 3], vec![0., 1., 2., 3., 4., 5.]).unwrap();
        let y = Permute { perm: vec![1, 0] }.reference(&[&x]).remove(0);
        assert_eq!(y.shape, vec![3, 2]);
        assert_eq!(y.data, vec![0., 3., 1., 4., 2., 5.]);
    }

    #[test]
    fn bad_shapes_are_reported() {
        assert!(Concat { axis: 1 }.infer(&[&[1, 2, 3], &[2, 2, 3]]).unwrap_err().contains("incompatible"));
        assert!(Slice { axis: 0, start: 2, end: 5 }.infer(&[&[4]]).unwrap_err().contains("does not fit"));
        assert!(Permute { perm: vec![0, 0] }.infer(&[&[2, 2]]).unwrap_err().contains("not a permutation"));
        assert!(Reshape { shape: vec![5] }.infer(&[&[2, 2]]).unwrap_err().contains("cannot reshape"));
    }
}
