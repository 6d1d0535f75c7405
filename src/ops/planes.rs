//! Plane-wise kernels (pool.wgsl, resize.wgsl): one invocation per output element of the planes of
//! an NCHW tensor, a shared uniform header, and windows of whole planes over the binding limit.

use crate::error::{Error, Result};
use crate::ops::{as_bytes, groups, Bind, PlanCtx, TensorView};
use crate::tensor::Shape;

/// The one 4-D input of a pooling or resize op, as `[n, c, h, w]`.
pub(crate) fn nchw_input<'a>(inputs: &[&'a [usize]]) -> std::result::Result<&'a [usize], String> {
    match inputs {
        [x] if x.len() == 4 => Ok(x),
        [x] => Err(format!("takes a 4-D NCHW input, got shape {x:?}")),
        _ => Err(format!("takes 1 input, got {}", inputs.len())),
    }
}

/// Shape rule of an op with a fixed output size `[oh, ow]` (adaptive pooling, resize).
pub(crate) fn sized_output(inputs: &[&[usize]], out: [usize; 2]) -> std::result::Result<Vec<Shape>, String> {
    let x = nchw_input(inputs)?;
    if out.contains(&0) || x[2] == 0 || x[3] == 0 {
        return Err(format!("output size {out:?} and input size {:?} must be positive", &x[2..]));
    }
    Ok(vec![vec![x[0], x[1], out[0], out[1]]])
}

/// The leading uniform fields of every plane-wise kernel (pool.wgsl, resize.wgsl), in this order.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PlaneHead {
    planes: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    x_base: u32,
    y_base: u32,
    _pad: u32,
}

/// Dispatch `entry` of `kernel` over the planes of NCHW `x` -> `y`, one thread per output element,
/// one dispatch per window of whole planes (input and output windows bound at aligned offsets,
/// `x_base` / `y_base` the first plane's offset inside them). The uniform is a [`PlaneHead`]
/// followed by the op's own `tail` fields.
pub(crate) fn dispatch_planes(
    ctx: &mut PlanCtx,
    kernel: &crate::gpu::Kernel,
    entry: &str,
    x: &TensorView,
    y: &TensorView,
    tail: &[u8],
) -> Result<()> {
    let p = ctx.pipeline(kernel, entry, &[])?;
    let (xs, ys) = (&x.shape, &y.shape);
    let (in_plane, out_plane) = (xs[2] * xs[3], ys[2] * ys[3]);
    let win = ctx.windows();
    let per = win.room() / in_plane.max(out_plane).max(1);
    if per == 0 {
        return Err(Error::graph(format!(
            "node '{}': one plane of {} elements does not fit a storage binding of {} elements",
            ctx.node_name,
            in_plane.max(out_plane),
            win.limit()
        )));
    }
    for r in win.runs(xs[0] * xs[1], per) {
        let xw = win.bind(x, r.start * in_plane, r.len() * in_plane);
        let yw = win.bind(y, r.start * out_plane, r.len() * out_plane);
        let head = PlaneHead {
            planes: r.len() as u32,
            in_h: xs[2] as u32,
            in_w: xs[3] as u32,
            out_h: ys[2] as u32,
            out_w: ys[3] as u32,
            x_base: xw.base as u32,
            y_base: yw.base as u32,
            _pad: 0,
        };
        let params = [as_bytes(&head), tail].concat();
        let binds = [Bind::Uniform(&params), Bind::Tensor(&xw.view), Bind::Tensor(&yw.view)];
        ctx.dispatch_linear(&p, &binds, groups(r.len() * out_plane, 256))?;
    }
    Ok(())
}

/// CPU reference driver of a plane-wise op: `f(input plane, i, j)` for every output element
/// `(i, j)` of every plane of the NCHW `x`, plane after plane.
pub(crate) fn reference_planes(
    x: &crate::tensor::Tensor,
    oh: usize,
    ow: usize,
    f: impl Fn(&[f32], usize, usize) -> f32,
) -> crate::tensor::Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    let mut data = Vec::with_capacity(n * c * oh * ow);
    for plane in x.data.chunks(h * w).take(n * c) {
        for i in 0..oh {
            for j in 0..ow {
                data.push(f(plane, i, j));
            }
        }
    }
    crate::tensor::Tensor { shape: vec![n, c, oh, ow], data }
}

/// The CPU kernel ([`PlaneMap`]) running the same `f` as [`reference_planes`] for an NCHW input
/// of shape `x` and output planes `[oh, ow]`: the same bits.
pub(crate) fn plane_kernel(
    x: &[usize],
    output: [usize; 2],
    f: impl Fn(&[f32], usize, usize) -> f32 + Send + Sync + 'static,
    name: &'static str,
) -> Option<Box<dyn crate::cpu::CpuKernel>> {
    (x.len() == 4)
        .then(|| Box::new(PlaneMap { input: [x[2], x[3]], output, f, name }) as Box<dyn crate::cpu::CpuKernel>)
}

/// `f(input plane, i, j)` for every output element `(i, j)` of every plane, rows of output on
/// the pool.
struct PlaneMap<F> {
    /// Input plane `[h, w]` and output plane `[oh, ow]`.
    input: [usize; 2],
    output: [usize; 2],
    f: F,
    name: &'static str,
}

impl<F: Fn(&[f32], usize, usize) -> f32 + Send + Sync> crate::cpu::CpuKernel for PlaneMap<F> {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        use rayon::prelude::*;
        let ([h, w], [oh, ow]) = (self.input, self.output);
        let y = &mut *outputs[0];
        if h * w == 0 || oh * ow == 0 {
            return;
        }
        y.par_chunks_mut(ow).enumerate().with_min_len((1 << 12) / ow + 1).for_each(|(r, row)| {
            let plane = &inputs[0][r / oh * h * w..][..h * w];
            for (j, v) in row.iter_mut().enumerate() {
                *v = (self.f)(plane, r % oh, j);
            }
        });
    }
    fn name(&self) -> &'static str {
        self.name
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
    use crate::ops::resize::Resize;
    use crate::ops::testing::check_cpu_kernel_bits;
    use crate::ops::Op;
    use crate::tensor::{Rng, Tensor};

    fn same_bits(op: &dyn Op, x: &Tensor, case: &str) {
        check_cpu_kernel_bits(case, op, &[x]);
    }

    /// The plane-wise ops' CPU kernels against their references, bit for bit: one plane (rows
    /// split over the pool) and many, odd sizes, padding, ceil mode, up- and downscaling.
    #[test]
    fn plane_ops_match_reference_bit_for_bit() {
        let seed = Rng::fresh_seed();
        for (i, shape) in [[1, 1, 97, 61], [2, 5, 13, 9], [1, 3, 1, 7]].iter().enumerate() {
            let x = Tensor::random(shape, seed + i as u64, -3.0, 3.0);
            let case = |what: &str| format!("{what} on {shape:?} (seed {seed})");
            same_bits(&MaxPool2d::new(3, 2, 1, true), &x, &case("max 3/2/1 ceil"));
            let dilated = MaxPool2d { dilation: [2, 1], ..MaxPool2d::new(2, 1, 0, false) };
            if shape[2] > 2 {
                same_bits(&dilated, &x, &case("max dilated"));
            }
            same_bits(&AvgPool2d::new(3, 2, 1, false, false), &x, &case("avg 3/2/1"));
            same_bits(&AvgPool2d::new(2, 2, 1, true, true), &x, &case("avg ceil, pad counted"));
            same_bits(&AdaptiveAvgPool2d { out: [3, 6] }, &x, &case("adaptive 3 x 6"));
            same_bits(&Resize { out: [41, 130], align_corners: false }, &x, &case("resize up"));
            same_bits(&Resize { out: [5, 4], align_corners: true }, &x, &case("resize down, corners"));
        }
    }
}
