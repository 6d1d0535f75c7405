//! `conv_dw_tex` (kernels/conv2d_dw_tex.wgsl): depthwise convs with stride 1 and no dilation on
//! software devices (ConvNeXt's 7x7, MiT's 3x3), reading the input and the weights as textures
//! packed by `gemm_tex::pack_layers`. `conv_dw` reads the same windows from storage buffers, which
//! lavapipe runs as per-lane scalar loops.

use crate::error::Result;
use crate::ops::act::Act;
use crate::ops::gemm_tex::{pack_layers, pack_layers_innermost, ConvGeom};
use crate::ops::{as_bytes, groups as wg_count, Bind, PlanCtx, TensorView};

/// Output pixels per invocation (`FP` in the kernel).
const FP: usize = 8;
/// Widest kernel (two weight texels per kernel row).
const MAX_KW: usize = 8;

/// Mirrors `DwParams` in kernels/conv2d_dw_tex.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct DwParams {
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    kh: u32,
    wq: u32,
    py: i32,
    px: i32,
    nbx: u32,
    act: u32,
    alpha: f32,
    has_bias: u32,
    y_off: u32,
    /// Output strides of a channel, an output row and an output pixel.
    y_cs: u32,
    y_rs: u32,
    y_xs: u32,
    /// The batch item's first vec4 of x (`conv_dw_tex_cl`).
    x_off4: u32,
    _p: [u32; 3],
}

impl DwParams {
    /// Both kernels' parameters for batch item 0: `wq` texels of an input row (`conv_dw_tex`) or
    /// C / 4 (`conv_dw_tex_cl`), `nbx` pixel blocks of an output row, and y's strides for NCHW or,
    /// with `channels_last`, tokens.
    fn new(geo: &ConvGeom, act: Act, has_bias: bool, wq: usize, nbx: usize, channels_last: bool) -> DwParams {
        let (act, alpha) = act.code();
        let (y_cs, y_rs, y_xs) =
            if channels_last { (1, geo.wo * geo.c, geo.c) } else { (geo.ho * geo.wo, geo.wo, 1) };
        DwParams {
            h: geo.h as u32,
            w: geo.w as u32,
            ho: geo.ho as u32,
            wo: geo.wo as u32,
            kh: geo.k[0] as u32,
            wq: wq as u32,
            py: geo.padding[0] as i32,
            px: geo.padding[1] as i32,
            nbx: nbx as u32,
            act,
            alpha,
            has_bias: has_bias as u32,
            y_off: 0,
            y_cs: y_cs as u32,
            y_rs: y_rs as u32,
            y_xs: y_xs as u32,
            x_off4: 0,
            _p: [0; 3],
        }
    }
}

/// Whether the shape suits `conv_dw_tex` (without the device): depthwise, stride 1, no dilation,
/// a kernel at most 8 wide.
pub fn shape_fits(geo: &ConvGeom) -> bool {
    geo.groups == geo.c
        && geo.o == geo.c
        && geo.stride == [1, 1]
        && geo.dilation == [1, 1]
        && geo.k[1] <= MAX_KW
}

/// Whether this device can run it here: subgroups of 8 (the texture path's devices), the shape
/// fits, x and y each fit one binding, and the kernel that [`plan`] will take fits: on tokens
/// (`channels_last`) with channels a multiple of 4 `conv_dw_tex_cl` (its weight texture), else
/// `conv_dw_tex` (its textures and its grid of one workgroup row per channel).
pub fn fits(ctx: &PlanCtx, geo: &ConvGeom, channels_last: bool) -> bool {
    if !(crate::ops::gemm_tex::usable(ctx) && shape_fits(geo) && geo.io_fits(ctx)) {
        return false;
    }
    if channels_last && geo.c.is_multiple_of(4) {
        return fits_channels_last(ctx, geo);
    }
    geo.input_texture_fits(ctx, geo.c)
        && ctx.texture_fits(2, geo.c, geo.k[0])
        && (geo.ho * geo.wo.div_ceil(FP)).div_ceil(64) <= ctx.max_groups()
        && geo.c <= ctx.max_groups()
}

/// Output pixels and rows per invocation of `conv_dw_tex_cl` (`FPC`, `RC` in the kernel).
const FPC: usize = 4;
const RC: usize = 2;

/// Whether `conv_dw_tex_cl` can take a conv on tokens: channels a multiple of 4 (x is read as
/// vec4s) and the weight texture within the device's limits.
fn fits_channels_last(ctx: &PlanCtx, geo: &ConvGeom) -> bool {
    geo.c.is_multiple_of(4) && ctx.texture_fits(geo.c / 4, geo.k[1], geo.k[0])
}

/// Record the conv: the weights and (per batch item) the input packed into textures, then
/// `conv_dw_tex` with one workgroup row per channel. `channels_last`: x is `[N, H, W, C]` and y
/// `[N, Ho, Wo, C]` in memory (tokens), whatever their views' shapes; otherwise both are NCHW.
/// Tokens with channels a multiple of 4 go to `conv_dw_tex_cl` (see [`plan_channels_last`]).
#[allow(clippy::too_many_arguments)]
pub fn plan(
    ctx: &mut PlanCtx,
    geo: &ConvGeom,
    x: &TensorView,
    wp: &TensorView,
    bias: Option<&TensorView>,
    y: &TensorView,
    act: Act,
    channels_last: bool,
) -> Result<()> {
    if channels_last && geo.c.is_multiple_of(4) {
        return plan_channels_last(ctx, geo, x, wp, bias, y, act);
    }
    let (c, [kh, kw]) = (geo.c, geo.k);
    // TW: layer ky, texel (q, ch) = wp[0, ky, 4q .. 4q+3, ch] (wp is [1, kh, kw, C]).
    let tw = ctx.texture(2, c, kh)?;
    pack_layers(ctx, wp, &tw, 0, kh, c, kw, [0, kw * c, 1, c])?;
    let xt = geo.input_texture(ctx, c)?;
    let consts =
        [("KW", kw as f64), ("E", geo.first_lane() as f64), act.constant(), ("CH_X", channels_last as u32 as f64)];
    let (kernel, entry) = super::ConvVariant::DepthwiseTex.entry().expect("conv_dw_tex");
    let p = ctx.pipeline(kernel, entry, &consts)?;
    let nbx = geo.wo.div_ceil(FP);
    let mut prm = DwParams::new(geo, act, bias.is_some(), geo.w.div_ceil(4), nbx, channels_last);
    for b in 0..geo.n {
        if channels_last {
            let (h, w) = (geo.h, geo.w);
            pack_layers_innermost(ctx, x, &xt, c, h, w, [b * h * w * c, 1, w * c, c])?;
        } else {
            geo.pack_input(ctx, x, &xt, b, 0, c)?;
        }
        prm.y_off = (b * c * geo.ho * geo.wo) as u32;
        // Without a bias the weight is bound in its place (never read: has_bias = 0).
        let binds = [
            Bind::Uniform(as_bytes(&prm)),
            Bind::Texture(&xt),
            Bind::Texture(&tw),
            Bind::Tensor(bias.unwrap_or(wp)),
            Bind::Tensor(y),
        ];
        let (pixels, channels) = (wg_count(geo.ho * nbx, 64), c as u32);
        ctx.dispatch(&p, &binds, if channels_last { [channels, pixels, 1] } else { [pixels, channels, 1] })?;
    }
    Ok(())
}

/// `conv_dw_tex_cl` on tokens: the weights packed into texel (q, kx) of layer ky, x read in place
/// as vec4s of 4 channels, one invocation per 4 channels, [`FPC`] output pixels and [`RC`] rows,
/// its lanes along the channels.
fn plan_channels_last(
    ctx: &mut PlanCtx,
    geo: &ConvGeom,
    x: &TensorView,
    wp: &TensorView,
    bias: Option<&TensorView>,
    y: &TensorView,
    act: Act,
) -> Result<()> {
    let (c, [kh, kw], (h, w)) = (geo.c, geo.k, (geo.h, geo.w));
    let tw = ctx.texture(c / 4, kw, kh)?;
    pack_layers(ctx, wp, &tw, 0, kh, kw, c, [0, kw * c, c, 1])?;
    let (kernel, _) = super::ConvVariant::DepthwiseTex.entry().expect("conv_dw_tex");
    let p = ctx.pipeline(kernel, "conv_dw_tex_cl", &[("KW", kw as f64), act.constant()])?;
    let nbx = geo.wo.div_ceil(FPC);
    let mut prm = DwParams::new(geo, act, bias.is_some(), c / 4, nbx, true);
    for b in 0..geo.n {
        prm.x_off4 = (b * h * w * c / 4) as u32;
        prm.y_off = (b * c * geo.ho * geo.wo) as u32;
        let binds = [
            Bind::Uniform(as_bytes(&prm)),
            Bind::Texture(&tw),
            Bind::Tensor(bias.unwrap_or(wp)),
            Bind::Tensor(y),
            Bind::Tensor(x),
        ];
        ctx.dispatch_linear(&p, &binds, wg_count(c / 4 * geo.ho.div_ceil(RC) * nbx, 64))?;
    }
    Ok(())
}
