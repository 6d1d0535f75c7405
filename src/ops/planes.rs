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
