//! Texture GEMM core for software devices (lavapipe), shared by `matmul` and `conv2d`: operands are
//! packed into rgba32float array textures, then `mm_tex_*` multiplies them (see
//! `kernels/gemm_tex.wgsl` for why textures). Not an op of its own: the op families call the
//! functions here from their `plan`, and test them through their own CPU references.

use crate::error::{Error, Result};
use crate::gpu::device::DeviceClass;
use crate::kernel;
use crate::ops::act::Act;
use crate::ops::variant::{choose, Variant};
use crate::ops::{as_bytes, groups, Bind, PlanCtx, TensorView, Texture};

/// The packing entry points and shared declarations, plus the generated `mm_tex_*` GEMMs.
pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("gemm_tex" = "gemm_tex", "gemm_tex_mm")];

/// The texture GEMM's entry points (generated, `gpu::kernelgen::MM_TEX`): the same block of C per
/// workgroup, stored as scalars or as vec4s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TexGemm {
    /// Any N, ldc, ldn and offsets.
    Scalar,
    /// vec4 stores: ldn 1, N, ldc, c_off and c_zstride multiples of 4 and C's binding 16-byte aligned.
    Vec4Store,
}

impl Variant for TexGemm {
    /// The GEMM's parameters and the byte offset of C's binding.
    type Problem = (TexParams, u64);
    fn preference(_: DeviceClass) -> &'static [Self] {
        &[TexGemm::Vec4Store, TexGemm::Scalar]
    }
    fn unfit(self, (p, c_offset): &(TexParams, u64)) -> Option<String> {
        let aligned = p.n % 4 == 0 && p.ldc % 4 == 0 && p.c_off % 4 == 0 && p.c_zstride % 4 == 0 && c_offset % 16 == 0;
        (self == TexGemm::Vec4Store && !(aligned && p.ldn == 1))
            .then(|| "needs ldn 1, N, ldc, c_off and c_zstride multiples of 4 and C 16-byte aligned".into())
    }
}

impl TexGemm {
    /// Entry point in `kernels/gemm_tex_mm.wgsl`.
    pub fn entry(self) -> &'static str {
        match self {
            TexGemm::Scalar => "mm_tex_16x32",
            TexGemm::Vec4Store => "mm_tex_16x32v",
        }
    }
    /// (rows, columns) of C per workgroup.
    pub fn block(self) -> (usize, usize) {
        crate::gpu::kernelgen::MM_TEX.block()
    }
}

/// Whether this device can run the texture GEMM: subgroups of exactly 8, as `mm_sg` needs.
pub fn usable(ctx: &PlanCtx) -> bool {
    crate::ops::matmul::sg_ok(ctx.gpu)
}

/// Mirrors `TexParams` in `kernels/gemm_tex.wgsl`. `bias_mode`, `act` and `res_mode` reach the
/// kernel as override constants ([`gemm`] specializes the pipeline on them); their uniform slots are
/// not read.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TexParams {
    pub m: u32,
    pub n: u32,
    pub kq: u32,
    pub nq: u32,
    pub a_layer: u32,
    pub a_lstep: u32,
    pub b_layer: u32,
    pub b_lstep: u32,
    pub c_off: u32,
    pub c_zstride: u32,
    pub ldc: u32,
    pub bias_mode: u32,
    pub bias_off: u32,
    pub act: u32,
    pub act_alpha: f32,
    pub alpha: f32,
    /// 1: add the residual bound to [`gemm`] after the activation.
    pub res_mode: u32,
    /// Element stride of C between columns (1 unless the store transposes C).
    pub ldn: u32,
    pub _p: [u32; 2],
}

impl TexParams {
    /// An `m x k` by `k x n` product written densely (ldc = n), one batch item, no bias.
    pub fn new(m: usize, k: usize, n: usize, alpha: f32, act: Act) -> TexParams {
        let (act, act_alpha) = act.code();
        TexParams {
            m: m as u32,
            n: n as u32,
            kq: k.div_ceil(4) as u32,
            nq: n.div_ceil(4) as u32,
            ldc: n as u32,
            ldn: 1,
            c_zstride: (m * n) as u32,
            act,
            act_alpha,
            alpha,
            ..Default::default()
        }
    }
}

/// Mirrors `PackParams` in `kernels/gemm_tex.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PackParams {
    pub rows: u32,
    pub cols: u32,
    pub width: u32,
    pub height: u32,
    pub off: u32,
    pub s_row: u32,
    pub s_col: u32,
    pub layer: u32,
    /// Element stride between layers (`pack` over several layers).
    pub s_layer: u32,
    pub h: u32,
    pub w: u32,
    pub wo: u32,
    pub kh: u32,
    pub kw: u32,
    pub sy: u32,
    pub sx: u32,
    pub py: i32,
    pub px: i32,
    pub dy: u32,
    pub dx: u32,
    pub p0: u32,
    /// Layers written (bounds `pack_layer_fastest`; `pack` takes them from its grid).
    pub layers: u32,
    pub _p: [u32; 2],
}

impl PackParams {
    /// A strided pack (`pack`, `pack_layer_fastest`) of `rows x cols` elements into `layers`
    /// layers of `tex` from `layer` on; `strides` = [off, s_layer, s_row, s_col] (see [`pack_layers`]).
    fn strided(tex: &Texture, layer: usize, layers: usize, rows: usize, cols: usize, strides: [usize; 4]) -> Self {
        let [off, s_layer, s_row, s_col] = strides;
        PackParams {
            rows: rows as u32,
            cols: cols as u32,
            width: tex.size[0],
            height: tex.size[1],
            off: off as u32,
            s_row: s_row as u32,
            s_col: s_col as u32,
            layer: layer as u32,
            s_layer: s_layer as u32,
            layers: layers as u32,
            ..Default::default()
        }
    }
}

/// Texture for an `rows x cols` operand (A: rows M, cols K; B: rows K padded to 4, cols N).
pub fn operand_size(rows: usize, cols: usize) -> (usize, usize) {
    (cols.div_ceil(4), rows)
}

/// Record a pack of `rows x cols` elements `src[off + r * s_row + c * s_col]` into `layer` of `tex`
/// (the texture's whole width and height are written; the rest is zero). See [`pack_layers`].
#[allow(clippy::too_many_arguments)]
pub fn pack(
    ctx: &mut PlanCtx,
    src: &TensorView,
    tex: &Texture,
    layer: usize,
    rows: usize,
    cols: usize,
    off: usize,
    s_row: usize,
    s_col: usize,
) -> Result<()> {
    pack_layers(ctx, src, tex, layer, 1, rows, cols, [off, 0, s_row, s_col])
}

/// [`pack`] into `layers` consecutive layers from `layer` on; `strides` = [off, s_layer, s_row,
/// s_col]: layer `layer + z` gets `src[off + z * s_layer + r * s_row + c * s_col]`. A copy does it
/// where the texels are the source's rows as they lie in memory ([`crate::ops::texcopy`]).
#[allow(clippy::too_many_arguments)]
pub fn pack_layers(
    ctx: &mut PlanCtx,
    src: &TensorView,
    tex: &Texture,
    layer: usize,
    layers: usize,
    rows: usize,
    cols: usize,
    strides: [usize; 4],
) -> Result<()> {
    if let Some(copy) = crate::ops::texcopy::plan_copy(src, tex, layer, layers, rows, cols, strides) {
        ctx.copy_to_texture(copy);
        return Ok(());
    }
    let p = ctx.pipeline(&KERNELS[0], "pack", &[])?;
    let prm = PackParams::strided(tex, layer, layers, rows, cols, strides);
    let wg = [groups(tex.size[0] as usize, 8), groups(tex.size[1] as usize, 8), layers as u32];
    ctx.dispatch(&p, &[Bind::Uniform(as_bytes(&prm)), Bind::Tensor(src), Bind::StorageTexture(tex)], wg)
}

/// [`pack_layers`] with the layers as the fastest-moving invocation index: for sources whose
/// layers are their innermost dimension (`s_layer` 1, e.g. channels-last activations), where
/// [`pack_layers`]' lanes would each read their own cache line.
#[allow(clippy::too_many_arguments)]
pub fn pack_layers_innermost(
    ctx: &mut PlanCtx,
    src: &TensorView,
    tex: &Texture,
    layers: usize,
    rows: usize,
    cols: usize,
    strides: [usize; 4],
) -> Result<()> {
    if let Some(copy) = crate::ops::texcopy::plan_copy(src, tex, 0, layers, rows, cols, strides) {
        ctx.copy_to_texture(copy);
        return Ok(());
    }
    let p = ctx.pipeline(&KERNELS[0], "pack_layer_fastest", &[])?;
    let prm = PackParams::strided(tex, 0, layers, rows, cols, strides);
    let wg = [groups(layers, 8), groups(tex.size[0] as usize, 8), tex.size[1]];
    ctx.dispatch(&p, &[Bind::Uniform(as_bytes(&prm)), Bind::Tensor(src), Bind::StorageTexture(tex)], wg)
}

/// Record an im2col pack (conv2d) into layer 0 of `tex` from `xt` (the image, one layer per
/// channel); `prm` carries the geometry, rows (= C/g * kh * kw), cols (output pixels of this chunk)
/// and p0; width/height are filled here.
pub fn pack_im2col(ctx: &mut PlanCtx, xt: &Texture, tex: &Texture, mut prm: PackParams) -> Result<()> {
    let p = ctx.pipeline(&KERNELS[0], "pack_im2col", &[])?;
    prm.width = tex.size[0];
    prm.height = tex.size[1];
    let wg = [groups(tex.size[0] as usize, 8), groups(tex.size[1] as usize, 8), 1];
    ctx.dispatch(&p, &[Bind::Uniform(as_bytes(&prm)), Bind::StorageTexture(tex), Bind::Texture(xt)], wg)
}

/// Record the GEMM `C = act(alpha * TA @ TB + bias) (+ residual)` over `batches` layers (grid z);
/// `residual`, laid out like C, is added when given (`res_mode` is set here).
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    ctx: &mut PlanCtx,
    prm: &TexParams,
    ta: &Texture,
    tb: &Texture,
    bias: &TensorView,
    c: &TensorView,
    batches: usize,
    residual: Option<&TensorView>,
) -> Result<()> {
    let prm = &TexParams { res_mode: residual.is_some() as u32, ..*prm };
    let v: TexGemm = choose(ctx.class(), None, &(*prm, c.offset)).map_err(Error::graph)?;
    let (bm, bn) = v.block();
    let constants =
        [("ACT", prm.act as f64), ("BIAS_MODE", prm.bias_mode as f64), ("RES_MODE", prm.res_mode as f64)];
    let p = ctx.pipeline(&KERNELS[0], v.entry(), &constants)?;
    let wg = [groups(prm.n as usize, bn), groups(prm.m as usize, bm), batches as u32];
    ctx.dispatch(
        &p,
        &[
            Bind::Uniform(as_bytes(prm)),
            Bind::Texture(ta),
            Bind::Texture(tb),
            Bind::Tensor(bias),
            Bind::Tensor(c),
            // Unread when res_mode is 0: the bias view stands in (read-only, like the residual).
            Bind::Tensor(residual.unwrap_or(bias)),
        ],
        wg,
    )
}

/// A dense or grouped conv2d as texture GEMMs (NCHW): per group, `Y[o, p] = W[o, k] X_col[k, p]`
/// with k = (c, ky, kx) and p = output pixel. Geometry as in `ops::conv2d`; `wp` is the packed
/// weight `[C/g, kh, kw, O]`.
pub struct ConvGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub ho: usize,
    pub wo: usize,
    pub groups: usize,
    pub k: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

/// Bytes one im2col texture may take; output pixels are processed in chunks that fit.
const IM2COL_BYTES: usize = 64 << 20;

impl ConvGeom {
    /// The geometry of `p` for input `[n, c, h, w]`, packed weight `[c/g, kh, kw, o]` and output
    /// `[n, o, ho, wo]`.
    pub fn new(p: &crate::ops::conv2d::Conv2d, x: &[usize], wp: &[usize], y: &[usize]) -> ConvGeom {
        let (&[n, c, h, w], &[_, kh, kw, o]) = (x, wp) else { panic!("conv2d shapes {x:?} {wp:?} are not 4-D") };
        let (groups, stride, padding, dilation) = (p.groups, p.stride, p.padding, p.dilation);
        ConvGeom { n, c, h, w, o, ho: y[2], wo: y[3], groups, k: [kh, kw], stride, padding, dilation }
    }
    fn kdim(&self) -> usize {
        self.c / self.groups * self.k[0] * self.k[1]
    }
    /// Output pixels per chunk (a multiple of the GEMM block's columns unless it is all of them).
    fn chunk(&self, ctx: &PlanCtx) -> usize {
        let p = self.ho * self.wo;
        let kpad = 4 * self.kdim().div_ceil(4);
        let maxd = ctx.gpu.limits.max_texture_dimension_2d as usize;
        #[allow(unused_mut)]
        let mut budget = IM2COL_BYTES;
        #[cfg(test)]
        if let Some(b) = tests::IM2COL_BUDGET.with(|c| c.get()) {
            budget = b;
        }
        let bn = TexGemm::Scalar.block().1;
        let cap = (4 * maxd).min(budget / (4 * kpad)) / bn * bn;
        p.min(cap.max(bn))
    }
    /// Whether the texture path can take it: textures within limits, x and y in one binding each.
    pub fn fits(&self, ctx: &PlanCtx) -> bool {
        let (kd, og) = (self.kdim(), self.o / self.groups);
        let pc = self.chunk(ctx);
        ctx.texture_fits(kd.div_ceil(4), og, self.groups)
            && self.input_texture_fits(ctx, self.c / self.groups)
            && ctx.texture_fits(pc.div_ceil(4), 4 * kd.div_ceil(4), 1)
            && self.io_fits(ctx)
    }

    /// Whether x and y each fit one storage binding (the texture kernels take them whole).
    pub fn io_fits(&self, ctx: &PlanCtx) -> bool {
        let win = ctx.windows();
        win.fits(self.n * self.c * self.h * self.w) && win.fits(self.n * self.o * self.ho * self.wo)
    }

    /// The input texture for `channels` channels of one batch item (see [`ConvGeom::pack_input`]):
    /// whether it fits the device, and the texture.
    pub fn input_texture_fits(&self, ctx: &PlanCtx, channels: usize) -> bool {
        ctx.texture_fits(self.w.div_ceil(4), self.h, channels)
    }
    pub fn input_texture(&self, ctx: &mut PlanCtx, channels: usize) -> Result<Texture> {
        ctx.texture(self.w.div_ceil(4), self.h, channels)
    }

    /// Pack channels `c0 .. c0 + channels` of batch item `b` of `x` into `xt`, one layer per
    /// channel: texel (t, iy) of layer c = x[b, c0 + c, iy, 4t .. 4t+3], zero past W.
    pub fn pack_input(
        &self,
        ctx: &mut PlanCtx,
        x: &TensorView,
        xt: &Texture,
        b: usize,
        c0: usize,
        channels: usize,
    ) -> Result<()> {
        let plane = self.h * self.w;
        pack_layers(ctx, x, xt, 0, channels, self.h, self.w, [(b * self.c + c0) * plane, plane, self.w, 1])
    }

    /// Where a window of input columns starts within its first texel of the input texture when
    /// the output column it serves is a multiple of 4: `(-px) mod 4` (the kernels' constant `E`).
    pub fn first_lane(&self) -> usize {
        (4 - self.padding[1] % 4) % 4
    }
}

/// Record a conv2d through the texture GEMM (see [`ConvGeom`]); bias is per output channel.
pub fn plan_conv(
    ctx: &mut PlanCtx,
    geo: &ConvGeom,
    x: &TensorView,
    wp: &TensorView,
    bias: Option<&TensorView>,
    y: &TensorView,
    act: Act,
) -> Result<()> {
    let (g, kd) = (geo.groups, geo.kdim());
    let (cg, og) = (geo.c / g, geo.o / g);
    let (plane_in, p_all) = (geo.h * geo.w, geo.ho * geo.wo);
    let pc = geo.chunk(ctx);
    let ta = ctx.texture(kd.div_ceil(4), og, g)?;
    for gi in 0..g {
        pack(ctx, wp, &ta, gi, og, kd, gi * og, 1, geo.o)?;
    }
    let tb = ctx.texture(pc.div_ceil(4), 4 * kd.div_ceil(4), 1)?;
    let pointwise = geo.k == [1, 1] && geo.stride == [1, 1] && geo.padding == [0, 0];
    let xt = if pointwise { None } else { Some(geo.input_texture(ctx, cg)?) };
    for b in 0..geo.n {
        for gi in 0..g {
            let x_off = (b * geo.c + gi * cg) * plane_in;
            if let Some(xt) = &xt {
                geo.pack_input(ctx, x, xt, b, gi * cg, cg)?;
            }
            let mut p0 = 0;
            while p0 < p_all {
                let cols = pc.min(p_all - p0);
                if pointwise {
                    pack(ctx, x, &tb, 0, cg, cols, x_off + p0, plane_in, 1)?;
                } else {
                    let prm = PackParams {
                        rows: kd as u32,
                        cols: cols as u32,
                        h: geo.h as u32,
                        w: geo.w as u32,
                        wo: geo.wo as u32,
                        kh: geo.k[0] as u32,
                        kw: geo.k[1] as u32,
                        sy: geo.stride[0] as u32,
                        sx: geo.stride[1] as u32,
                        py: geo.padding[0] as i32,
                        px: geo.padding[1] as i32,
                        dy: geo.dilation[0] as u32,
                        dx: geo.dilation[1] as u32,
                        p0: p0 as u32,
                        ..Default::default()
                    };
                    pack_im2col(ctx, xt.as_ref().unwrap(), &tb, prm)?;
                }
                let mut p = TexParams::new(og, kd, cols, 1.0, act);
                p.a_layer = gi as u32;
                p.c_off = ((b * geo.o + gi * og) * p_all + p0) as u32;
                p.ldc = p_all as u32;
                p.bias_mode = if bias.is_some() { 2 } else { 0 };
                p.bias_off = (gi * og) as u32;
                gemm(ctx, &p, &ta, &tb, bias.unwrap_or(wp), y, 1, None)?;
                p0 += cols;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::ops::act::Act;
    use crate::ops::conv2d::{pack_conv2d_weight, Conv2d, ConvVariant};
    use crate::ops::testing::{check_op, device};
    use crate::tensor::{Rng, Tensor};

    /// The enum's entry names are the generator's.
    #[test]
    fn entry_points_are_the_generated_ones() {
        use crate::gpu::kernelgen::MM_TEX;
        use crate::ops::gemm_tex::{TexGemm, KERNELS};
        assert_eq!(TexGemm::Scalar.entry(), MM_TEX.entry(false));
        assert_eq!(TexGemm::Vec4Store.entry(), MM_TEX.entry(true));
        crate::ops::testing::assert_entry_points(
            &KERNELS[0],
            &[TexGemm::Scalar.entry(), TexGemm::Vec4Store.entry(), "pack", "pack_im2col"],
        );
    }

    thread_local! {
        /// Shrinks the im2col texture budget (bytes) so small convs run in several pixel chunks.
        pub(crate) static IM2COL_BUDGET: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
    }

    /// Conv outputs split into chunks of output pixels (odd plane: scalar stores; 16x16: vec4).
    #[test]
    fn conv_in_pixel_chunks_matches_reference() {
        if !crate::ops::matmul::sg_ok(device()) {
            return;
        }
        let seed = Rng::fresh_seed();
        IM2COL_BUDGET.with(|c| c.set(Some(4 * 48 * 64)));
        for (i, (hw, k, p)) in [
            ([13usize, 17usize], 3usize, Conv2d::new(1, 1)),
            ([16, 16], 3, Conv2d::new(1, 1).act(Act::Relu)),
            ([16, 16], 1, Conv2d::default()),
        ]
        .into_iter()
        .enumerate()
        {
            let s = seed + 10 * i as u64;
            let (c, o) = (5, 7);
            let x = Tensor::random(&[2, c, hw[0], hw[1]], s, -1.0, 1.0);
            let w = Tensor::random(&[o, c, k, k], s + 1, -0.5, 0.5);
            let ins = vec![x, pack_conv2d_weight(&w).unwrap(), Tensor::random(&[o], s + 2, -1.0, 1.0)];
            let op = Conv2d { variant: Some(ConvVariant::Tex), ..p };
            check_op(&format!("chunked conv {hw:?} k{k} seed {s}"), &op, &ins, 1e-4);
        }
        IM2COL_BUDGET.with(|c| c.set(None));
    }
}
