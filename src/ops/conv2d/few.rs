//! `conv_few` (kernels/conv2d_few.wgsl): a direct conv for at most 8 output channels and one group
//! on software devices, where the texture GEMM's im2col costs far more than its product (Mesorch's
//! `gate.conv2`, 7x7 s2, 192 -> 8 channels). The input and the weights are packed into textures by
//! `gemm_tex::pack_layers`; the kernel reads both as texels.

use crate::error::Result;
use crate::ops::act::Act;
use crate::ops::gemm_tex::{pack_layers, ConvGeom};
use crate::ops::{as_bytes, groups as wg_count, Bind, PlanCtx, TensorView};

/// Output pixels per invocation and window texels (`FP`, `NT` in the kernel).
const FP: usize = 8;
const NT: usize = 8;
/// Largest kernel width (`tap_col` calls in the kernel).
const MAX_KW: usize = 8;
/// Most output channels.
pub const MAX_O: usize = 8;

/// Mirrors `FewParams` in kernels/conv2d_few.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FewParams {
    c: u32,
    h: u32,
    w: u32,
    o: u32,
    ho: u32,
    wo: u32,
    kh: u32,
    wq: u32,
    sy: u32,
    dy: u32,
    py: i32,
    px: i32,
    nbx: u32,
    act: u32,
    alpha: f32,
    has_bias: u32,
    y_off: u32,
    _p: [u32; 3],
}

/// Whether the shape suits `conv_few` (without the device): one group, at most 8 output channels,
/// kw <= 8 and the taps of 8 pixels within the kernel's window.
pub fn shape_fits(geo: &ConvGeom) -> bool {
    let span = geo.first_lane() + geo.stride[1] * (FP - 1) + geo.dilation[1] * (geo.k[1] - 1);
    geo.groups == 1 && geo.o <= MAX_O && geo.k[1] <= MAX_KW && span < 4 * NT
}

/// Whether this device can run it here: subgroups of 8, the shape fits, the textures are within
/// limits and x and y each fit one binding.
pub fn fits(ctx: &PlanCtx, geo: &ConvGeom) -> bool {
    crate::ops::gemm_tex::usable(ctx)
        && shape_fits(geo)
        && geo.input_texture_fits(ctx, geo.c)
        && ctx.texture_fits(2, geo.c * geo.k[0], geo.k[1])
        && geo.io_fits(ctx)
        && (geo.ho * geo.wo.div_ceil(FP)).div_ceil(64) <= ctx.max_groups()
}

/// Record the conv: weights and (per batch item) the input packed into textures, then `conv_few`.
pub fn plan(
    ctx: &mut PlanCtx,
    geo: &ConvGeom,
    x: &TensorView,
    wp: &TensorView,
    bias: Option<&TensorView>,
    y: &TensorView,
    act: Act,
) -> Result<()> {
    let [kh, kw] = geo.k;
    // TW: layer kx, texel (hh, c * kh + ky) = wp[c, ky, kx, 4hh .. 4hh+3] (wp is [C, kh, kw, O]).
    let tw = ctx.texture(2, geo.c * kh, kw)?;
    pack_layers(ctx, wp, &tw, 0, kw, geo.c * kh, geo.o, [0, geo.o, kw * geo.o, 1])?;
    let xt = geo.input_texture(ctx, geo.c)?;
    let consts = [
        ("KW", kw as f64),
        ("SX", geo.stride[1] as f64),
        ("DX", geo.dilation[1] as f64),
        ("E", geo.first_lane() as f64),
        act.constant(),
    ];
    let (kernel, entry) = super::ConvVariant::Few.entry().expect("conv_few");
    let p = ctx.pipeline(kernel, entry, &consts)?;
    let (act, alpha) = act.code();
    let nbx = geo.wo.div_ceil(FP);
    let mut prm = FewParams {
        c: geo.c as u32,
        h: geo.h as u32,
        w: geo.w as u32,
        o: geo.o as u32,
        ho: geo.ho as u32,
        wo: geo.wo as u32,
        kh: kh as u32,
        wq: geo.w.div_ceil(4) as u32,
        sy: geo.stride[0] as u32,
        dy: geo.dilation[0] as u32,
        py: geo.padding[0] as i32,
        px: geo.padding[1] as i32,
        nbx: nbx as u32,
        act,
        alpha,
        has_bias: bias.is_some() as u32,
        y_off: 0,
        _p: [0; 3],
    };
    for b in 0..geo.n {
        geo.pack_input(ctx, x, &xt, b, 0, geo.c)?;
        prm.y_off = (b * geo.o * geo.ho * geo.wo) as u32;
        // Without a bias the weight is bound in its place (never read: has_bias = 0).
        let binds = [
            Bind::Uniform(as_bytes(&prm)),
            Bind::Texture(&xt),
            Bind::Texture(&tw),
            Bind::Tensor(bias.unwrap_or(wp)),
            Bind::Tensor(y),
        ];
        ctx.dispatch(&p, &binds, [wg_count(geo.ho * nbx, 64), 1, 1])?;
    }
    Ok(())
}
