//! Winograd F(2x2, 3x3) on software devices (kernels/conv2d_winograd.wgsl): 3x3 stride-1 convs
//! with 32+ channels each side (the CPU backend's rule, `winograd::fits`) as 16 texture GEMMs of
//! `O x C` by `C x tiles` instead of one im2col GEMM of `O x 9C` by `C x pixels`: 16 multiplies
//! per 2x2 output tile and channel pair instead of 36. Mesorch's folded `gate.invert` (192 -> 192
//! channels at 256 x 256) is the conv it is for.
//!
//! Per run: the weights transformed into the GEMM's A texture (`wino_weights`), then per batch
//! item the input packed into a texture, and per chunk of tile rows the input transform into the
//! B texture (`wino_in`), the 16 products into pooled scratch, and the output transform with the
//! bias and activation (`wino_out`).

use crate::error::Result;
use crate::ops::act::Act;
use crate::ops::gemm_tex::{gemm, ConvGeom, TexParams};
use crate::ops::{as_bytes, groups as wg_count, Bind, PlanCtx, TensorView};

/// Bytes the B texture and the products may each take per chunk of tile rows.
const CHUNK_BYTES: usize = 32 << 20;

/// Mirrors `WinoParams` in kernels/conv2d_winograd.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct WinoParams {
    c: u32,
    o: u32,
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    py: i32,
    px: i32,
    wq: u32,
    kq: u32,
    tw4: u32,
    ty0: u32,
    nty: u32,
    act: u32,
    alpha: f32,
    has_bias: u32,
    y_off: u32,
    _p: [u32; 3],
}

/// Tiles per tile row rounded up to 4 (one B texel column holds 4 tiles of one row), and tile rows.
fn tiles(geo: &ConvGeom) -> (usize, usize) {
    (geo.wo.div_ceil(2).next_multiple_of(4), geo.ho.div_ceil(2))
}

/// Tile rows per chunk: the B texture (16 layers of 4 KQ rows) and the products (16 x O rows) of
/// one chunk each within [`CHUNK_BYTES`], at least one row.
fn chunk_rows(geo: &ConvGeom) -> usize {
    let (tw4, th) = tiles(geo);
    let rows = (4 * geo.c.div_ceil(4)).max(geo.o);
    #[allow(unused_mut)]
    let mut budget = CHUNK_BYTES;
    #[cfg(test)]
    if let Some(b) = CHUNK_BUDGET.with(|c| c.get()) {
        budget = b;
    }
    (budget / (16 * rows * tw4 * 4)).clamp(1, th)
}

#[cfg(test)]
thread_local! {
    /// Shrinks [`CHUNK_BYTES`] so that small convs run in several chunks of tile rows.
    pub(crate) static CHUNK_BUDGET: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Whether the shape suits it (without the device): see `winograd::fits`.
pub fn shape_fits(geo: &ConvGeom) -> bool {
    super::winograd::fits(geo.c, geo.o, geo.k, geo.stride, geo.dilation, geo.groups)
}

/// Whether this device can run it here: subgroups of 8 (the texture GEMM), the shape fits, the
/// textures are within limits, x and y each fit one binding and the grids fit.
pub fn fits(ctx: &PlanCtx, geo: &ConvGeom) -> bool {
    let (tw4, _) = tiles(geo);
    let kq = geo.c.div_ceil(4);
    let texels = chunk_rows(geo) * tw4 / 4;
    crate::ops::gemm_tex::usable(ctx)
        && shape_fits(geo)
        && geo.input_texture_fits(ctx, geo.c)
        && ctx.texture_fits(kq, geo.o, 16)
        && ctx.texture_fits(texels, 4 * kq, 16)
        && geo.io_fits(ctx)
        && texels.div_ceil(64).max(geo.o).max(4 * kq) <= ctx.max_groups()
}

/// Record the conv (see the module docs).
pub fn plan(
    ctx: &mut PlanCtx,
    geo: &ConvGeom,
    x: &TensorView,
    wp: &TensorView,
    bias: Option<&TensorView>,
    y: &TensorView,
    act: Act,
) -> Result<()> {
    let (c, o) = (geo.c, geo.o);
    let kq = c.div_ceil(4);
    let (tw4, th) = tiles(geo);
    let nty = chunk_rows(geo);
    let ta = ctx.texture(kq, o, 16)?;
    let tb = ctx.texture(nty * tw4 / 4, 4 * kq, 16)?;
    let xt = geo.input_texture(ctx, c)?;
    let products = ctx.pooled_scratch(16 * o * nty * tw4)?;
    let (kernel, _) = super::ConvVariant::Winograd.entry().expect("winograd kernels");
    let weights = ctx.pipeline(kernel, "wino_weights", &[])?;
    let e = [("E", geo.first_lane() as f64)];
    let input = ctx.pipeline(kernel, "wino_in", &e)?;
    let output = ctx.pipeline(kernel, "wino_out", &[act.constant()])?;
    let (act, alpha) = act.code();
    let mut prm = WinoParams {
        c: c as u32,
        o: o as u32,
        h: geo.h as u32,
        w: geo.w as u32,
        ho: geo.ho as u32,
        wo: geo.wo as u32,
        py: geo.padding[0] as i32,
        px: geo.padding[1] as i32,
        wq: geo.w.div_ceil(4) as u32,
        kq: kq as u32,
        tw4: tw4 as u32,
        ty0: 0,
        nty: 0,
        act,
        alpha,
        has_bias: bias.is_some() as u32,
        y_off: 0,
        _p: [0; 3],
    };
    ctx.dispatch(
        &weights,
        &[Bind::Uniform(as_bytes(&prm)), Bind::StorageTexture(&ta), Bind::Tensor(wp)],
        [wg_count(kq, 8), wg_count(o, 8), 1],
    )?;
    for b in 0..geo.n {
        geo.pack_input(ctx, x, &xt, b, 0, c)?;
        prm.y_off = (b * o * geo.ho * geo.wo) as u32;
        let mut ty0 = 0;
        while ty0 < th {
            let rows = nty.min(th - ty0);
            (prm.ty0, prm.nty) = (ty0 as u32, rows as u32);
            let (tc, texels) = (rows * tw4, rows * tw4 / 4);
            ctx.dispatch(
                &input,
                &[Bind::Uniform(as_bytes(&prm)), Bind::Texture(&xt), Bind::StorageTexture(&tb)],
                [wg_count(texels, 64), (4 * kq) as u32, 1],
            )?;
            let mut g = TexParams::new(o, c, tc, 1.0, Act::None);
            (g.a_lstep, g.b_lstep) = (1, 1);
            gemm(ctx, &g, &ta, &tb, wp, &products, 16, None)?;
            // Without a bias the weight is bound in its place (never read: has_bias = 0).
            ctx.dispatch(
                &output,
                &[Bind::Uniform(as_bytes(&prm)), Bind::Tensor(&products), Bind::Tensor(bias.unwrap_or(wp)), Bind::Tensor(y)],
                [wg_count(texels, 64), o as u32, 1],
            )?;
            ty0 += rows;
        }
    }
    Ok(())
}
