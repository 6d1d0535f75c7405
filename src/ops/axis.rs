//! Kernels that walk one axis of an [outer, len, inner] tensor per (outer, inner) position: softmax
//! and layer_norm share the uniform, the variants (scalar, vec4 rows, vec4 pixels) and the
//! dispatch over storage-binding windows.

use crate::error::{Error, Result};
use crate::gpu::device::DeviceClass;
use crate::ops::variant::{choose, Variant};
use crate::ops::{as_bytes, groups, Bind, PlanCtx, TensorView};
use crate::tensor::split_at_axis;

/// The op families whose kernels walk an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxisOp {
    Softmax,
    LayerNorm,
}

/// Kernel variants of an axis walk, per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxisVariant {
    /// The axis of one (outer, inner) position per invocation, in f32s.
    Scalar,
    /// The axis in vec4s: inner == 1, len % 4 == 0, 16-byte aligned window.
    Rows4,
    /// 4 inner positions per invocation: inner % 4 == 0 (the window spans whole slices), 16-byte
    /// aligned window.
    Pixels4,
    /// Hardware GPUs with subgroups: one row per subgroup, reductions through subgroupAdd /
    /// subgroupMax; inner == 1.
    RowsSg,
}

/// What the choice of an [`AxisVariant`] depends on, for one window.
#[derive(Clone, Copy, Debug)]
pub struct AxisProblem {
    pub len: usize,
    pub inner: usize,
    /// Every binding starts 16-byte aligned, the window starts and its first element lie on vec4s,
    /// and the window covers whole slices (all inner positions).
    pub vec4_aligned: bool,
    /// Subgroups this kernel can use: `Features::SUBGROUP` with a largest size that divides 64.
    pub sg: bool,
}

impl Variant for AxisVariant {
    type Problem = AxisProblem;
    fn preference(class: DeviceClass) -> &'static [Self] {
        use AxisVariant::*;
        match class {
            DeviceClass::Software => &[Rows4, Pixels4, Scalar],
            DeviceClass::Hardware => &[RowsSg, Rows4, Pixels4, Scalar],
        }
    }
    fn unfit(self, p: &AxisProblem) -> Option<String> {
        match self {
            AxisVariant::Rows4 if !(p.vec4_aligned && p.inner == 1 && p.len % 4 == 0) => {
                Some(format!("needs inner == 1, len % 4 == 0 and vec4 alignment (len {}, inner {})", p.len, p.inner))
            }
            AxisVariant::Pixels4 if !(p.vec4_aligned && p.inner % 4 == 0) => {
                Some(format!("needs inner % 4 == 0 and vec4 alignment (inner {})", p.inner))
            }
            AxisVariant::RowsSg if !p.sg => Some("needs subgroups of at most 64 invocations".into()),
            AxisVariant::RowsSg if p.inner != 1 => Some(format!("needs inner == 1 (inner {})", p.inner)),
            _ => None,
        }
    }
}

impl AxisOp {
    fn kernel(self, variant: AxisVariant) -> &'static crate::gpu::Kernel {
        let module = (variant == AxisVariant::RowsSg) as usize;
        match self {
            AxisOp::Softmax => &crate::ops::softmax::KERNELS[module],
            AxisOp::LayerNorm => &crate::ops::layer_norm::KERNELS[module],
        }
    }
    /// The entry point of `variant` in this op's kernel file.
    pub fn entry(self, variant: AxisVariant) -> &'static str {
        match (self, variant) {
            (AxisOp::Softmax, AxisVariant::Scalar) => "softmax",
            (AxisOp::Softmax, AxisVariant::Rows4) => "softmax_rows4",
            (AxisOp::Softmax, AxisVariant::Pixels4) => "softmax_pixels4",
            (AxisOp::LayerNorm, AxisVariant::Scalar) => "layer_norm",
            (AxisOp::LayerNorm, AxisVariant::Rows4) => "layer_norm_rows4",
            (AxisOp::LayerNorm, AxisVariant::Pixels4) => "layer_norm_pixels4",
            (AxisOp::Softmax, AxisVariant::RowsSg) => "softmax_sg",
            (AxisOp::LayerNorm, AxisVariant::RowsSg) => "layer_norm_sg",
        }
    }
}

/// Uniform of the kernels that walk one axis of an [outer, len, inner] window (softmax, layer_norm).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AxisParams {
    count: u32,
    inner: u32,
    len: u32,
    stride: u32,
    outer_stride: u32,
    base: u32,
    eps: f32,
    _pad: u32,
}

/// One dispatch (64 invocations per workgroup) per window of `x` split around `axis`, binding the
/// uniform, x's window, `whole` (e.g. gamma, beta), y's window, with the first [`AxisVariant`] that
/// fits the window.
pub(crate) fn dispatch_axis_windows(
    ctx: &mut PlanCtx,
    op: AxisOp,
    x: &TensorView,
    whole: &[&TensorView],
    y: &TensorView,
    axis: usize,
    eps: f32,
) -> Result<()> {
    let (outer, len, inner) = split_at_axis(&x.shape, axis);
    let info = &ctx.gpu.info;
    let sg_max = info.subgroup_max_size as usize;
    let sg = ctx.gpu.features.contains(wgpu::Features::SUBGROUP) && sg_max > 0 && 64 % sg_max == 0;
    let aligned16 = x.offset % 16 == 0 && y.offset % 16 == 0 && whole.iter().all(|t| t.offset % 16 == 0);
    let windows =
        ctx.windows().axis(outer, len, inner).map_err(|m| Error::graph(format!("node '{}': {m}", ctx.node_name)))?;
    for w in windows {
        let mut params = AxisParams {
            count: (w.outer * w.inner) as u32,
            inner: w.inner as u32,
            len: len as u32,
            stride: inner as u32,
            outer_stride: (len * inner) as u32,
            base: w.base as u32,
            eps,
            _pad: 0,
        };
        let vec4_aligned = aligned16 && w.start % 4 == 0 && w.base % 4 == 0 && w.inner == inner;
        let variant = choose(ctx.class(), None, &AxisProblem { len, inner, vec4_aligned, sg }).map_err(Error::graph)?;
        match variant {
            AxisVariant::Rows4 => {
                params.len /= 4;
                params.outer_stride /= 4;
                params.base /= 4;
            }
            AxisVariant::Pixels4 => {
                params.count /= 4;
                params.inner /= 4;
                params.stride /= 4;
                params.outer_stride /= 4;
                params.base /= 4;
            }
            AxisVariant::Scalar | AxisVariant::RowsSg => {}
        }
        let pipeline = ctx.pipeline(op.kernel(variant), op.entry(variant), &[])?;
        let (xw, yw) = (x.window(w.start, w.len), y.window(w.start, w.len));
        let mut binds = vec![Bind::Uniform(as_bytes(&params)), Bind::Tensor(&xw)];
        binds.extend(whole.iter().map(|t| Bind::Tensor(t)));
        binds.push(Bind::Tensor(&yw));
        // RowsSg: 64 / subgroup-size rows per workgroup; counted with the largest size, so a device
        // running smaller subgroups covers more rows per workgroup than needed, never fewer.
        let per_group = if variant == AxisVariant::RowsSg { 64 / sg_max } else { 64 };
        ctx.dispatch_linear(&pipeline, &binds, groups(params.count as usize, per_group))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_entry_points_exist() {
        for op in [AxisOp::Softmax, AxisOp::LayerNorm] {
            let all = [AxisVariant::Scalar, AxisVariant::Rows4, AxisVariant::Pixels4, AxisVariant::RowsSg];
            for v in all {
                crate::ops::testing::assert_entry_points(op.kernel(v), &[op.entry(v)]);
            }
        }
    }
}
