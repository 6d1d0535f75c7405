//! Multi-head scaled dot-product attention on token-major tensors (what Linear layers produce):
//! q [B, Lq, H*D], k [B, Lk, H*D], v [B, Lk, H*Dv] -> out [B, Lq, H*Dv], where head h reads channels
//! h*D..(h+1)*D and out = concat_h softmax(q_h k_h^T * scale) v_h, softmax in f32 over the keys.
//!
//! Variants ([`AttnVariant`]): head dims that are multiples of 4 and at most 128 run the fused
//! online-softmax kernel (`flash`), which never writes the score matrix; other head dims (odd, or
//! large as in windowed multi-scale attention) run a three-pass fallback through a scratch score
//! buffer sized for a window of query rows; software devices compose texture GEMMs that read q, k
//! and v in place and store token-major, with the softmax op between them.
//! Tensors over one storage binding are split over batches and query rows.

use crate::error::{Error, Result};
use crate::gpu::device::DeviceClass;
use crate::kernel;
use crate::ops::variant::{choose, Variant};
use crate::ops::{as_bytes, groups, Bind, Op, PlanCtx, TensorView};
use crate::tensor::{Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("attention")];

/// Largest head dim (q/k and v) of the fused kernel: 8 register blocks of 16.
pub const FLASH_MAX_DIM: usize = 128;
/// Query rows per workgroup of the fused kernel (64 invocations, four rows each).
const FLASH_ROWS: usize = 256;

/// `softmax(q_h k_h^T * scale) v_h` per head, heads concatenated along channels.
#[derive(Clone, Debug)]
pub struct Attention {
    pub heads: usize,
    pub scale: f32,
    /// Force a kernel variant (tests, benchmarks); `None` lets [`choose`] pick for the device.
    pub variant: Option<AttnVariant>,
}

/// Kernel variants of [`Attention`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttnVariant {
    /// One fused kernel with an online softmax (`flash`): head dims multiples of 4, at most 128.
    Flash,
    /// Three kernels through a scratch score buffer (`scores`, `softmax_rows`, `weighted_sum`): any
    /// head dims.
    ThreePass,
    /// Composed of texture GEMMs and the softmax op: S = Q K^T, softmax over keys (rows),
    /// O = P V, the packs reading q, k and v in place (q and P copied where their rows allow) and
    /// the last store writing token-major. Software devices with the texture GEMM, where the
    /// register-blocked GEMM beats a fused kernel bound by per-lane loads.
    Composed,
}

/// What the choice of an [`AttnVariant`] depends on: the q/k and v head dims, and the device.
#[derive(Clone, Copy, Debug)]
pub struct AttnProblem {
    pub d: usize,
    pub dv: usize,
    /// The texture GEMM can take the composed path's products here.
    pub tex: bool,
}

impl Variant for AttnVariant {
    type Problem = AttnProblem;
    fn preference(class: DeviceClass) -> &'static [Self] {
        use AttnVariant::*;
        match class {
            DeviceClass::Software => &[Composed, Flash, ThreePass],
            DeviceClass::Hardware => &[Flash, ThreePass],
        }
    }
    fn unfit(self, p: &AttnProblem) -> Option<String> {
        let (d, dv) = (p.d, p.dv);
        match self {
            AttnVariant::Flash if d % 4 != 0 || dv % 4 != 0 || d > FLASH_MAX_DIM || dv > FLASH_MAX_DIM => Some(
                format!("needs head dims that are multiples of 4 and at most {FLASH_MAX_DIM} (D = {d}, Dv = {dv})"),
            ),
            AttnVariant::Composed if !p.tex => Some(
                "needs the texture GEMM (subgroups of 8), its textures within the device's limits and every \
                 tensor in one storage binding"
                    .into(),
            ),
            _ => None,
        }
    }
}

impl Attention {
    /// The usual scale 1/sqrt(head dim).
    pub fn new(heads: usize, head_dim: usize) -> Self {
        Attention { heads, scale: 1.0 / (head_dim as f32).sqrt(), variant: None }
    }

    /// The composed path on the texture GEMM (`ops::gemm_tex`), without the permutes: the packs read
    /// q, k and v in place through their strides (head h at channel offset h * D), and the second
    /// product stores straight into token-major `o`. Per batch item, heads as
    /// texture layers; the scores live in pooled scratch buffers (written by this node before it
    /// reads them, so nodes of the same sizes share them: [`PlanCtx::pooled_scratch`]).
    fn plan_composed(
        &self,
        ctx: &mut PlanCtx,
        q: &TensorView,
        k: &TensorView,
        v: &TensorView,
        o: &TensorView,
    ) -> Result<()> {
        let (_, lq, lk, d, _) = self.dims(&q.shape, &k.shape, &v.shape);
        // Queries along texture rows where the textures allow it (S = Q K^T: q and P are then
        // copies, 2.2x faster at MiT's stage 1); longer query axes along texture columns.
        if Self::rows_fit(ctx, self.heads, lq, lk, d) {
            self.plan_composed_rows(ctx, q, k, v, o)
        } else {
            self.plan_composed_columns(ctx, q, k, v, o)
        }
    }

    /// Whether the query axis fits texture heights (the [`Attention::plan_composed_rows`] layout).
    fn rows_fit(ctx: &PlanCtx, h: usize, lq: usize, lk: usize, d: usize) -> bool {
        ctx.texture_fits(d.div_ceil(4), lq, h) && ctx.texture_fits(lk.div_ceil(4), lq, h)
    }

    /// S = scale * Q K^T [Lq, Lk] per head, softmax over keys (rows), O = P V.
    fn plan_composed_rows(
        &self,
        ctx: &mut PlanCtx,
        q: &TensorView,
        k: &TensorView,
        v: &TensorView,
        o: &TensorView,
    ) -> Result<()> {
        use crate::ops::gemm_tex::{gemm, operand_size, pack_layers, TexParams};
        use crate::ops::softmax::Softmax;
        let (b, lq, lk, d, dv) = self.dims(&q.shape, &k.shape, &v.shape);
        let h = self.heads;
        let (qw, vw) = (h * d, h * dv);
        let st = ctx.pooled_scratch(h * lq * lk)?;
        let st = TensorView { shape: vec![h, lq, lk], ..st };
        let pt = ctx.pooled_scratch(h * lq * lk)?;
        let pt = TensorView { shape: vec![h, lq, lk], ..pt };
        let (aw, ah) = operand_size(lq, d);
        let (ta1, tb1) = (ctx.texture(aw, ah, h)?, ctx.texture(lk.div_ceil(4), 4 * d.div_ceil(4), h)?);
        let (aw, ah) = operand_size(lq, lk);
        let (ta2, tb2) = (ctx.texture(aw, ah, h)?, ctx.texture(dv.div_ceil(4), 4 * lk.div_ceil(4), h)?);
        let none = crate::ops::act::Act::None;
        for bi in 0..b {
            // S_h = scale * Q_h K_h^T [Lq, Lk]: A = Q_h (a copy where its rows allow), B = K_h^T.
            pack_layers(ctx, q, &ta1, 0, h, lq, d, [bi * lq * qw, d, qw, 1])?;
            pack_layers(ctx, k, &tb1, 0, h, d, lk, [bi * lk * qw, d, 1, qw])?;
            let mut p = TexParams::new(lq, d, lk, self.scale, none);
            (p.a_lstep, p.b_lstep) = (1, 1);
            // No bias: k stands in for the unread bias binding.
            gemm(ctx, &p, &ta1, &tb1, k, &st, h, None)?;
            // P = softmax of S over keys (rows). A kernel that packed the softmax straight into the
            // texture measured slower than the softmax op and a pack (BENCHMARKS, fourteenth session).
            Softmax { axis: 2 }.plan(ctx, std::slice::from_ref(&st), std::slice::from_ref(&pt))?;
            // O_h = P_h V_h [Lq, Dv], element (i, c) stored at o[bi, i, h * Dv + c].
            pack_layers(ctx, &pt, &ta2, 0, h, lq, lk, [0, lq * lk, lk, 1])?;
            pack_layers(ctx, v, &tb2, 0, h, lk, dv, [bi * lk * vw, dv, vw, 1])?;
            let mut p = TexParams::new(lq, lk, dv, 1.0, none);
            (p.a_lstep, p.b_lstep) = (1, 1);
            (p.c_off, p.c_zstride, p.ldc, p.ldn) = ((bi * lq * vw) as u32, dv as u32, vw as u32, 1);
            gemm(ctx, &p, &ta2, &tb2, k, o, h, None)?;
        }
        Ok(())
    }

    /// Transposed, so the query axis is the GEMMs' N (texture columns): S^T = K Q^T, softmax over
    /// keys, O^T = V^T P^T.
    fn plan_composed_columns(
        &self,
        ctx: &mut PlanCtx,
        q: &TensorView,
        k: &TensorView,
        v: &TensorView,
        o: &TensorView,
    ) -> Result<()> {
        use crate::ops::gemm_tex::{gemm, operand_size, pack_layers, TexParams};
        use crate::ops::softmax::Softmax;
        let (b, lq, lk, d, dv) = self.dims(&q.shape, &k.shape, &v.shape);
        let h = self.heads;
        let (qw, vw) = (h * d, h * dv);
        let st = ctx.pooled_scratch(h * lk * lq)?;
        let st = TensorView { shape: vec![h, lk, lq], ..st };
        let pt = ctx.pooled_scratch(h * lk * lq)?;
        let pt = TensorView { shape: vec![h, lk, lq], ..pt };
        let (aw, ah) = operand_size(lk, d);
        let (ta1, tb1) = (ctx.texture(aw, ah, h)?, ctx.texture(lq.div_ceil(4), 4 * d.div_ceil(4), h)?);
        let (aw, ah) = operand_size(dv, lk);
        let (ta2, tb2) = (ctx.texture(aw, ah, h)?, ctx.texture(lq.div_ceil(4), 4 * lk.div_ceil(4), h)?);
        let none = crate::ops::act::Act::None;
        for bi in 0..b {
            // S^T = scale * K_h Q_h^T [Lk, Lq] per head: A = K_h (rows keys), B = Q_h^T (rows dims).
            pack_layers(ctx, k, &ta1, 0, h, lk, d, [bi * lk * qw, d, qw, 1])?;
            pack_layers(ctx, q, &tb1, 0, h, d, lq, [bi * lq * qw, d, 1, qw])?;
            let mut p = TexParams::new(lk, d, lq, self.scale, none);
            (p.a_lstep, p.b_lstep) = (1, 1);
            // No bias: k stands in for the unread bias binding.
            gemm(ctx, &p, &ta1, &tb1, k, &st, h, None)?;
            // P^T = softmax of S^T over keys. A kernel that packed the softmax straight into the
            // texture measured slower than these two passes (BENCHMARKS, fourteenth session).
            Softmax { axis: 1 }.plan(ctx, std::slice::from_ref(&st), std::slice::from_ref(&pt))?;
            // O_h^T = V_h^T P_h^T [Dv, Lq], element (c, i) stored at o[bi, i, h * Dv + c].
            pack_layers(ctx, v, &ta2, 0, h, dv, lk, [bi * lk * vw, dv, 1, vw])?;
            pack_layers(ctx, &pt, &tb2, 0, h, lk, lq, [0, lk * lq, lq, 1])?;
            let mut p = TexParams::new(dv, lk, lq, 1.0, none);
            (p.a_lstep, p.b_lstep) = (1, 1);
            (p.c_off, p.c_zstride, p.ldc, p.ldn) = ((bi * lq * vw) as u32, dv as u32, 1, vw as u32);
            gemm(ctx, &p, &ta2, &tb2, k, o, h, None)?;
        }
        Ok(())
    }

    /// Whether [`Attention::plan_composed`] can take it: the texture GEMM on this device, its
    /// textures within limits, every tensor in one storage binding, offsets in u32.
    fn tex_fits(&self, ctx: &PlanCtx, q: &TensorView, k: &TensorView, v: &TensorView, o: &TensorView) -> bool {
        let (_, lq, lk, d, dv) = self.dims(&q.shape, &k.shape, &v.shape);
        let h = self.heads;
        let win = ctx.windows();
        crate::ops::gemm_tex::usable(ctx)
            && ctx.texture_fits(d.div_ceil(4), lk, h)
            && ctx.texture_fits(lq.div_ceil(4), 4 * d.div_ceil(4), h)
            && ctx.texture_fits(lk.div_ceil(4), dv, h)
            && ctx.texture_fits(lq.div_ceil(4), 4 * lk.div_ceil(4), h)
            && [q.numel(), k.numel(), v.numel(), o.numel(), h * lk * lq].iter().all(|&n| win.fits(n))
    }

    /// (batch, lq, lk, d, dv) from checked shapes.
    fn dims(&self, q: &[usize], k: &[usize], v: &[usize]) -> (usize, usize, usize, usize, usize) {
        (q[0], q[1], k[1], q[2] / self.heads, v[2] / self.heads)
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AttnParams {
    rows: u32,
    lk: u32,
    heads: u32,
    d: u32,
    dv: u32,
    q_base: u32,
    k_base: u32,
    v_base: u32,
    o_base: u32,
    scale: f32,
    blocks: u32,
    _pad: u32,
}

impl Op for Attention {
    fn kind(&self) -> &'static str {
        "attention"
    }

    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        let [q, k, v] = inputs else {
            return Err(format!("takes 3 inputs (q, k, v), got {}", inputs.len()));
        };
        for (name, s) in [("q", q), ("k", k), ("v", v)] {
            if s.len() != 3 {
                return Err(format!("{name} must be [batch, tokens, channels], got shape {s:?}"));
            }
        }
        let h = self.heads;
        if h == 0 {
            return Err("heads must be at least 1".into());
        }
        if q[0] != k[0] || q[0] != v[0] {
            return Err(format!("batch sizes differ: q {q:?}, k {k:?}, v {v:?}"));
        }
        if k[1] != v[1] {
            return Err(format!("k has {} tokens but v has {} (k {k:?}, v {v:?})", k[1], v[1]));
        }
        if k[1] == 0 {
            return Err(format!("no keys: k has shape {k:?}"));
        }
        if q[2] != k[2] {
            return Err(format!("q has {} channels but k has {} (q {q:?}, k {k:?})", q[2], k[2]));
        }
        if q[2] % h != 0 || q[2] == 0 {
            return Err(format!("q/k channels {} are not a positive multiple of heads {h}", q[2]));
        }
        if v[2] % h != 0 || v[2] == 0 {
            return Err(format!("v channels {} are not a positive multiple of heads {h}", v[2]));
        }
        Ok(vec![vec![q[0], q[1], v[2]]])
    }

    fn cost(&self, inputs: &[&[usize]], outputs: &[&[usize]]) -> crate::ops::Cost {
        // Q K^T and P V over all heads (2 x L x S x C each) plus the softmax (~5 per score).
        let (q, k, v) = (inputs[0], inputs[1], inputs[2]);
        let (b, l, s) = (q[0] as f64, q[1] as f64, k[1] as f64);
        let flops = b * l * s * (2.0 * q[2] as f64 + 2.0 * v[2] as f64 + 5.0 * self.heads as f64);
        crate::ops::Cost::streaming(inputs, outputs, 0.0).with_flops(flops)
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::kernel(self, inputs)
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let (q, k, v) = (inputs[0], inputs[1], inputs[2]);
        let (b, lq, lk, d, dv) = self.dims(&q.shape, &k.shape, &v.shape);
        let h = self.heads;
        let mut out = vec![0f32; b * lq * h * dv];
        let mut p = vec![0f64; lk];
        for bi in 0..b {
            for hi in 0..h {
                for i in 0..lq {
                    let qrow = &q.data[(bi * lq + i) * h * d + hi * d..][..d];
                    for (j, pj) in p.iter_mut().enumerate() {
                        let krow = &k.data[(bi * lk + j) * h * d + hi * d..][..d];
                        let dot: f64 = qrow.iter().zip(krow).map(|(&a, &c)| a as f64 * c as f64).sum();
                        *pj = dot * self.scale as f64;
                    }
                    let max = p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let mut sum = 0.0;
                    for pj in p.iter_mut() {
                        *pj = (*pj - max).exp();
                        sum += *pj;
                    }
                    for c in 0..dv {
                        let mut acc = 0.0f64;
                        for (j, pj) in p.iter().enumerate() {
                            acc += pj * v.data[(bi * lk + j) * h * dv + hi * dv + c] as f64;
                        }
                        out[(bi * lq + i) * h * dv + hi * dv + c] = (acc / sum) as f32;
                    }
                }
            }
        }
        vec![Tensor { shape: vec![b, lq, h * dv], data: out }]
    }

    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let (q, k, v, o) = (&inputs[0], &inputs[1], &inputs[2], &outputs[0]);
        let (b, lq, lk, d, dv) = self.dims(&q.shape, &k.shape, &v.shape);
        let tex = self.tex_fits(ctx, q, k, v, o);
        let variant = choose(ctx.class(), self.variant, &AttnProblem { d, dv, tex })
            .map_err(|m| Error::graph(format!("node '{}': attention {m}", ctx.node_name)))?;
        if variant == AttnVariant::Composed {
            return self.plan_composed(ctx, q, k, v, o);
        }
        let h = self.heads;
        // The kernels read q/k/v from their window's base as vec4s (flash): bases stay multiples of 4.
        let win = ctx.windows().aligned_to(4);
        let room = win.room();
        let (qw, vw) = (h * d, h * dv);
        if lk * qw.max(vw) > room {
            return Err(Error::graph(format!(
                "node '{}': keys/values of one batch ({lk} x {} channels) exceed one storage binding of {} elements",
                ctx.node_name,
                qw.max(vw),
                win.limit()
            )));
        }
        let flash = variant == AttnVariant::Flash;
        // Query rows per dispatch: q and out windows must fit a binding; the fallback's scores too.
        let mut rows = room / qw.max(vw);
        if !flash {
            rows = rows.min(win.limit() / (h * lk));
        }
        let rows = rows.clamp(1, lq.max(1));
        let base = AttnParams {
            rows: 0,
            lk: lk as u32,
            heads: h as u32,
            d: d as u32,
            dv: dv as u32,
            q_base: 0,
            k_base: 0,
            v_base: 0,
            o_base: 0,
            scale: self.scale,
            blocks: 0,
            _pad: 0,
        };
        let pipes = if flash {
            let blocks = |n: usize| n.div_ceil(16) as f64;
            vec![ctx.pipeline(&KERNELS[0], "flash", &[("NQ", blocks(d)), ("NV", blocks(dv))])?]
        } else {
            vec![
                ctx.pipeline(&KERNELS[0], "scores", &[])?,
                ctx.pipeline(&KERNELS[0], "softmax_rows", &[])?,
                ctx.pipeline(&KERNELS[0], "weighted_sum", &[])?,
            ]
        };
        // Scores are written before they are read within each window: shared with other nodes.
        let scratch = if flash { None } else { Some(ctx.pooled_scratch(h * rows * lk)?) };
        for bi in 0..b {
            let kv = win.span(k, bi * lk * qw, lk * qw);
            let vv = win.span(v, bi * lk * vw, lk * vw);
            for r in win.runs(lq, rows) {
                let (r0, n) = (r.start, r.len());
                let qv = win.span(q, (bi * lq + r0) * qw, n * qw);
                let ov = win.span(o, (bi * lq + r0) * vw, n * vw);
                let (q_base, k_base, v_base, o_base) = (qv.base as u32, kv.base as u32, vv.base as u32, ov.base as u32);
                let (qv, kv, vv, ov) = (qv.view, kv.view.clone(), vv.view.clone(), ov.view);
                let mut p = AttnParams { rows: n as u32, q_base, k_base, v_base, o_base, ..base };
                if let Some(s) = &scratch {
                    let s = s.window(0, h * n * lk);
                    let u = as_bytes(&p);
                    ctx.dispatch_linear(
                        &pipes[0],
                        &[Bind::Uniform(u), Bind::Tensor(&qv), Bind::Tensor(&kv), Bind::Tensor(&s)],
                        groups(h * n * lk, 64),
                    )?;
                    ctx.dispatch_linear(&pipes[1], &[Bind::Uniform(u), Bind::Tensor(&s)], groups(h * n, 64))?;
                    ctx.dispatch_linear(
                        &pipes[2],
                        &[Bind::Uniform(u), Bind::Tensor(&s), Bind::Tensor(&vv), Bind::Tensor(&ov)],
                        groups(n * vw, 64),
                    )?;
                } else {
                    p.blocks = groups(n, FLASH_ROWS);
                    ctx.dispatch_linear(
                        &pipes[0],
                        &[
                            Bind::Uniform(as_bytes(&p)),
                            Bind::Tensor(&qv),
                            Bind::Tensor(&kv),
                            Bind::Tensor(&vv),
                            Bind::Tensor(&ov),
                        ],
                        h as u32 * p.blocks,
                    )?;
                }
            }
        }
        Ok(())
    }
}

pub(crate) mod cpu;
#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::check_op;
    use crate::tensor::Rng;

    /// Relative to max(|expected|, 1); outputs are convex combinations of v, so this is about 1e-4 of |v|.
    const TOL: f32 = 1e-4;

    /// (batch, lq, lk, heads, d, dv, scale); inputs uniform in [-1, 1).
    fn run_case(seed: u64, (b, lq, lk, h, d, dv, scale): (usize, usize, usize, usize, usize, usize, f32)) {
        let q = Tensor::random(&[b, lq, h * d], seed, -1.0, 1.0);
        let k = Tensor::random(&[b, lk, h * d], seed + 1, -1.0, 1.0);
        let v = Tensor::random(&[b, lk, h * dv], seed + 2, -1.0, 1.0);
        let p = AttnProblem { d, dv, tex: crate::ops::matmul::sg_ok(crate::ops::testing::device()) };
        let fits = |v: AttnVariant| v.unfit(&p).is_none();
        let fused = if fits(AttnVariant::Flash) { AttnVariant::Flash } else { AttnVariant::ThreePass };
        let case = format!("attention b{b} lq{lq} lk{lk} h{h} d{d} dv{dv} scale {scale} seed {seed}");
        let inputs = [q, k, v];
        for v in [fused, AttnVariant::Composed].into_iter().filter(|&v| fits(v)) {
            check_op(&format!("{case} ({v:?})"), &Attention { heads: h, scale, variant: Some(v) }, &inputs, TOL);
        }
        // The three passes on small shapes that the flash kernel also takes.
        if fused == AttnVariant::Flash && lq * lk <= 4096 {
            let op = Attention { heads: h, scale, variant: Some(AttnVariant::ThreePass) };
            check_op(&format!("{case} (ThreePass)"), &op, &inputs, TOL);
        }
    }

    #[test]
    fn fused_kernel_matches_reference() {
        let seed = Rng::fresh_seed();
        let s64 = 1.0 / 8.0;
        for (n, c) in [
            (1, 1, 1, 1, 64, 64, s64),
            (1, 37, 53, 1, 64, 64, s64),
            (2, 37, 53, 2, 64, 64, s64),
            (1, 65, 29, 5, 64, 64, s64),
            (2, 3, 7, 2, 8, 12, 0.5),
            (1, 70, 1, 2, 64, 32, s64),
            (1, 150, 7, 2, 16, 20, 0.5),
            (1, 19, 33, 1, 128, 128, 0.09),
            (1, 9, 5, 3, 4, 4, 1.0),
        ]
        .into_iter()
        .enumerate()
        {
            run_case(seed + 10 * n as u64, c);
        }
    }

    #[test]
    fn fallback_matches_reference() {
        let seed = Rng::fresh_seed();
        for (n, c) in [
            (1, 1, 1, 1, 3, 3, 0.5),
            (2, 37, 53, 2, 3, 5, 0.5),
            (1, 37, 53, 5, 17, 17, 0.25),
            (2, 11, 6, 1, 17, 64, 0.25),
            (1, 5, 9, 2, 200, 132, 0.07),
            (1, 8, 12, 1, 2048, 2048, 1.0 / 45.0),
        ]
        .into_iter()
        .enumerate()
        {
            run_case(seed + 10 * n as u64, c);
        }
    }

    /// Logits up to about +-50: D = 64 with |q.k| up to 64 needs scale ~0.8; scores span far beyond
    /// exp's comfortable range unless the running max is subtracted.
    #[test]
    fn large_logits_are_stable() {
        let seed = Rng::fresh_seed();
        for (n, (d, scale)) in [(64, 7.0), (16, 14.0), (17, 14.0)].into_iter().enumerate() {
            let (b, lq, lk, h) = (1, 20, 40, 2);
            let q = Tensor::random(&[b, lq, h * d], seed + n as u64, 0.5, 1.0);
            let k = Tensor::random(&[b, lk, h * d], seed + 100 + n as u64, -1.0, 1.0);
            let v = Tensor::random(&[b, lk, h * d], seed + 200 + n as u64, -1.0, 1.0);
            let fused = if d % 4 == 0 { AttnVariant::Flash } else { AttnVariant::ThreePass };
            let op = Attention { heads: h, scale, variant: Some(fused) };
            let max_logit = {
                let w = op.reference(&[&q, &k, &v]);
                assert!(w[0].data.iter().all(|x| x.is_finite()));
                (0..lk)
                    .map(|j| (0..d).map(|c| q.data[c] * k.data[j * h * d + c]).sum::<f32>().abs() * scale)
                    .fold(0.0, f32::max)
            };
            assert!(max_logit > 20.0, "case does not reach large logits ({max_logit})");
            let case = format!("attention large logits d{d} scale {scale} (max |logit| {max_logit:.1}) seed {seed}");
            check_op(&case, &op, &[q.clone(), k.clone(), v.clone()], TOL);
            if d % 4 == 0 {
                let composed = Attention { variant: Some(AttnVariant::Composed), ..op };
                check_op(&format!("{case} (composed)"), &composed, &[q, k, v], TOL);
            }
        }
    }

    #[test]
    fn mesorch_stage1_shape() {
        let seed = Rng::fresh_seed();
        run_case(seed, (1, 16384, 256, 1, 64, 64, 0.125));
    }

    /// q, k, v and out over the binding limit: windows of query rows per batch item (k and v bound
    /// per item), one dispatch each for the flash kernel and three for the three passes.
    #[test]
    fn windows_of_query_rows() {
        use crate::ops::testing::{check_op_windowed, device};
        use crate::ops::window::Windows;
        let seed = Rng::fresh_seed();
        let (b, lq, lk, h, d) = (2, 37, 16, 2, 8);
        let q = Tensor::random(&[b, lq, h * d], seed, -1.0, 1.0);
        let k = Tensor::random(&[b, lk, h * d], seed + 1, -1.0, 1.0);
        let v = Tensor::random(&[b, lk, h * d], seed + 2, -1.0, 1.0);
        let limit = 400;
        let room = Windows::new(limit, Windows::of(device()).aligned_to(4).align()).room();
        // Rows per window: q and out rows of h * d = 16; the three passes' scores need h * lk = 32 per row.
        for (variant, rows, per_window) in
            [(AttnVariant::Flash, room / 16, 1), (AttnVariant::ThreePass, (room / 16).min(limit / 32), 3)]
        {
            let op = Attention { heads: h, scale: 0.3, variant: Some(variant) };
            let want = b * lq.div_ceil(rows) * per_window;
            let inputs = [q.clone(), k.clone(), v.clone()];
            let n = check_op_windowed(&format!("attention {variant:?} seed {seed}"), &op, &inputs, TOL, limit);
            assert_eq!(n, want, "{variant:?}: dispatches");
            assert!(lq.div_ceil(rows) > 1);
        }
    }

    #[test]
    fn shape_errors_are_reported() {
        let a = Attention { heads: 2, scale: 1.0, variant: None };
        assert!(a.infer(&[&[1, 4, 6], &[1, 5, 6], &[1, 5, 7]]).unwrap_err().contains("v channels 7"));
        assert!(a.infer(&[&[1, 4, 5], &[1, 5, 5], &[1, 5, 4]]).unwrap_err().contains("multiple of heads"));
        assert!(a.infer(&[&[1, 4, 6], &[1, 5, 6], &[1, 6, 6]]).unwrap_err().contains("k has 5 tokens but v has 6"));
        assert!(a.infer(&[&[1, 4, 6], &[1, 5, 8], &[1, 5, 6]]).unwrap_err().contains("channels"));
        assert!(a.infer(&[&[2, 4, 6], &[1, 5, 6], &[1, 5, 6]]).unwrap_err().contains("batch"));
        assert!(a.infer(&[&[4, 6], &[1, 5, 6], &[1, 5, 6]]).unwrap_err().contains("[batch, tokens, channels]"));
        assert_eq!(a.infer(&[&[2, 4, 6], &[2, 5, 6], &[2, 5, 10]]).unwrap(), vec![vec![2, 4, 10]]);
    }
}
