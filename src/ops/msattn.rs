//! Windowed multi-scale attention (U^2-Net-MST's transformer, after M2TR): q, k, v and out are
//! feature maps [N, C, H, W]. The channels split into G = `patches.len()` equal groups; group g
//! (channels g*C/G .. (g+1)*C/G) is one head whose tokens are the non-overlapping p_g x p_g
//! patches, t = ty * (W/p) + tx, and a token is the flattened patch, element e = (c * p + dy) * p + dx
//! (PyTorch's `view(b, cg, H/p, p, W/p, p).permute(0, 2, 4, 1, 3, 5)`), token dim d = C/G * p^2.
//! Per head: out = softmax(Q K^T / sqrt(d)) V over its (H/p)(W/p) tokens, written back into the
//! group's channels at the same places (un-tokenized), heads concatenated along channels.
//!
//! q/k/v arrive projected: [`msattn`] builds the block with 1x1-conv projections (M2TR's choice,
//! see docs/models/u2net-mst.md for why) and an optional positional embedding, then this op.
//!
//! Variants ([`MsAttnVariant`]): `Fused`, one online-softmax kernel whose loads and stores do the
//! tokenize / untokenize (GPUs); `Composed` (software devices), which tokenizes each (item, group)
//! into dense matrices and runs the GEMM and softmax ops, like `attention`'s composed path. Each
//! group (head) chooses on its own: heads with fewer than [`COMPOSED_MIN_TOKENS`] tokens run the
//! fused kernel on software devices too.

use crate::error::{Error, Result};
use crate::gpu::device::DeviceClass;
use crate::graph::{GraphBuilder, ValueId};
use crate::kernel;
use crate::ops::conv2d::{conv2d, Conv2d};
use crate::ops::elementwise::Binary;
use crate::ops::matmul::MatMul;
use crate::ops::softmax::Softmax;
use crate::ops::variant::{choose, Variant};
use crate::ops::{as_bytes, groups, Bind, Op, PlanCtx, TensorView};
use crate::tensor::{Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("msattn")];

/// Windowed multi-scale attention over projected q, k, v maps [N, C, H, W] -> [N, C, H, W].
#[derive(Clone, Debug)]
pub struct MsAttn {
    /// Patch size of each channel group (one head per group): G = `patches.len()`, C % G == 0,
    /// and H and W multiples of every patch size.
    pub patches: Vec<usize>,
    /// Force a kernel variant (tests, benchmarks); `None` lets [`choose`] pick for the device.
    pub variant: Option<MsAttnVariant>,
}

/// Kernel variants of [`MsAttn`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsAttnVariant {
    /// `fused`: one workgroup per (item, query token), online softmax over keys, the running
    /// weighted sum kept in the output patch; tokenize / untokenize folded into loads and stores.
    /// One dispatch per group.
    Fused,
    /// Software devices: per (item, group) `gather` K [L, d], Q^T and V^T [d, L], then
    /// S^T = K Q^T / sqrt(d) (GEMM), softmax over keys, O^T = V^T P^T (GEMM), `scatter` O^T back.
    /// The register-blocked GEMMs beat a fused kernel bound by per-lane loads and barriers there.
    Composed,
}

/// Fewest tokens a head needs for the composed path: below this its GEMMs are dot products over
/// huge token dims, slower on lavapipe than the fused kernel (one head of 128 channels on 16x16,
/// wall ms: L = 1 (p 16): composed 46, fused 2.5; L = 4 (p 8): 10.6 vs 7.8; L = 16 (p 4): 6.6 vs 33).
pub const COMPOSED_MIN_TOKENS: usize = 8;

/// What the choice of an [`MsAttnVariant`] depends on: one head (group). Each group chooses on its
/// own (the paper's heads range from 1 to 64 tokens).
#[derive(Clone, Copy, Debug)]
pub struct MsAttnProblem {
    /// Tokens (L) and token dim (d) of the head.
    pub tokens: usize,
    pub dim: usize,
    /// Elements one storage binding may cover.
    pub limit: usize,
}

impl Variant for MsAttnVariant {
    type Problem = MsAttnProblem;
    fn preference(class: DeviceClass) -> &'static [Self] {
        use MsAttnVariant::*;
        match class {
            DeviceClass::Software => &[Composed, Fused],
            DeviceClass::Hardware => &[Fused, Composed],
        }
    }
    fn unfit(self, p: &MsAttnProblem) -> Option<String> {
        match self {
            MsAttnVariant::Composed if p.tokens < COMPOSED_MIN_TOKENS => Some(format!(
                "needs at least {COMPOSED_MIN_TOKENS} tokens per head (L = {}): fewer make its GEMMs slow dot products",
                p.tokens
            )),
            MsAttnVariant::Composed if p.tokens * p.dim > p.limit || p.tokens * p.tokens > p.limit => Some(format!(
                "needs the token matrix (L x d = {}) and the score matrix (L x L = {}) within one storage binding of {} elements",
                p.tokens * p.dim,
                p.tokens * p.tokens,
                p.limit
            )),
            _ => None,
        }
    }
}

/// One group's geometry.
#[derive(Clone, Copy, Debug)]
struct Group {
    c0: usize,
    cg: usize,
    p: usize,
    /// Tokens across (W / p) and in all ((H / p) * (W / p)).
    tw: usize,
    lt: usize,
    /// Token dim cg * p * p.
    d: usize,
}

impl MsAttn {
    pub fn new(patches: &[usize]) -> Self {
        MsAttn { patches: patches.to_vec(), variant: None }
    }

    /// Each group's geometry for a checked map shape [N, C, H, W].
    fn groups(&self, s: &[usize]) -> Vec<Group> {
        let (c, w) = (s[1], s[3]);
        let cg = c / self.patches.len();
        (self.patches.iter().enumerate())
            .map(|(g, &p)| Group { c0: g * cg, cg, p, tw: w / p, lt: (s[2] / p) * (w / p), d: cg * p * p })
            .collect()
    }

    fn params(&self, s: &[usize], g: &Group, mode: u32, item: usize) -> MsParams {
        MsParams {
            n: s[0] as u32,
            c: s[1] as u32,
            h: s[2] as u32,
            w: s[3] as u32,
            c0: g.c0 as u32,
            cg: g.cg as u32,
            p: g.p as u32,
            tw: g.tw as u32,
            lt: g.lt as u32,
            d: g.d as u32,
            scale: 1.0 / (g.d as f32).sqrt(),
            mode,
            item: item as u32,
            _p0: 0,
            _p1: 0,
            _p2: 0,
        }
    }

    /// The composed path; intermediates live in node-private scratch buffers reused by every
    /// (item, group) (dispatches run in order).
    fn plan_composed(&self, ctx: &mut PlanCtx, s: &[usize], gs: &[Group], inputs: &[TensorView], o: &TensorView) -> Result<()> {
        if gs.is_empty() {
            return Ok(());
        }
        let max_ld = gs.iter().map(|g| g.lt * g.d).max().unwrap_or(1);
        let max_ll = gs.iter().map(|g| g.lt * g.lt).max().unwrap_or(1);
        let gather = ctx.pipeline(&KERNELS[0], "gather", &[])?;
        let scatter = ctx.pipeline(&KERNELS[0], "scatter", &[])?;
        let (kt, qt, vt, ot) = (ctx.scratch(max_ld)?, ctx.scratch(max_ld)?, ctx.scratch(max_ld)?, ctx.scratch(max_ld)?);
        let (st, pt) = (ctx.scratch(max_ll)?, ctx.scratch(max_ll)?);
        let shaped = |t: &TensorView, shape: Vec<usize>| TensorView { shape, ..t.clone() };
        for item in 0..s[0] {
            for g in gs {
                let (lt, d) = (g.lt, g.d);
                let n = groups(lt * d, 64);
                // K token-major [L, d]; Q^T and V^T element-major [d, L].
                for (x, dst, mode) in [(&inputs[1], &kt, 0), (&inputs[0], &qt, 1), (&inputs[2], &vt, 1)] {
                    let p = self.params(s, g, mode, item);
                    ctx.dispatch_linear(&gather, &[Bind::Uniform(as_bytes(&p)), Bind::Tensor(x), Bind::Tensor(dst)], n)?;
                }
                let sv = shaped(&st, vec![lt, lt]);
                let scale = 1.0 / (d as f32).sqrt();
                MatMul::new().alpha(scale).plan(ctx, &[shaped(&kt, vec![lt, d]), shaped(&qt, vec![d, lt])], std::slice::from_ref(&sv))?;
                let pv = shaped(&pt, vec![lt, lt]);
                Softmax { axis: 0 }.plan(ctx, &[sv], std::slice::from_ref(&pv))?;
                let ov = shaped(&ot, vec![d, lt]);
                MatMul::new().plan(ctx, &[shaped(&vt, vec![d, lt]), pv], std::slice::from_ref(&ov))?;
                let p = self.params(s, g, 0, item);
                ctx.dispatch_linear(&scatter, &[Bind::Uniform(as_bytes(&p)), Bind::Tensor(&ov), Bind::Tensor(o)], n)?;
            }
        }
        Ok(())
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct MsParams {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    c0: u32,
    cg: u32,
    p: u32,
    tw: u32,
    lt: u32,
    d: u32,
    scale: f32,
    mode: u32,
    item: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

impl Op for MsAttn {
    fn kind(&self) -> &'static str {
        "msattn"
    }

    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        let [q, k, v] = inputs else {
            return Err(format!("takes 3 inputs (q, k, v maps [N, C, H, W]), got {}", inputs.len()));
        };
        if q.len() != 4 {
            return Err(format!("q must be a map [N, C, H, W], got shape {q:?}"));
        }
        if k != q || v != q {
            return Err(format!("q, k and v must have the same shape: q {q:?}, k {k:?}, v {v:?}"));
        }
        let g = self.patches.len();
        if g == 0 {
            return Err("needs at least one group (patches is empty)".into());
        }
        let (c, h, w) = (q[1], q[2], q[3]);
        if q.contains(&0) {
            return Err(format!("empty map {q:?}"));
        }
        if c % g != 0 {
            return Err(format!("{c} channels do not split into {g} equal groups (one per patch size {:?})", self.patches));
        }
        for (i, &p) in self.patches.iter().enumerate() {
            if p == 0 {
                return Err(format!("group {i} has patch size 0 (patches {:?})", self.patches));
            }
            if h % p != 0 || w % p != 0 {
                return Err(format!(
                    "H x W = {h} x {w} is not a multiple of group {i}'s patch size {p} (patches {:?}); \
                     pad or resize the map so every patch size divides H and W",
                    self.patches
                ));
            }
        }
        let d = (c / g) * self.patches.iter().max().unwrap().pow(2);
        if d > u32::MAX as usize / 4 || q.iter().product::<usize>() > u32::MAX as usize {
            return Err(format!("map {q:?} is too large for 32-bit indexing"));
        }
        Ok(vec![q.to_vec()])
    }

    /// Plain loops over groups, query patches and key patches; f64 accumulation.
    fn cost(&self, inputs: &[&[usize]], outputs: &[&[usize]]) -> crate::ops::Cost {
        // Per group of patch p: T = (H/p)(W/p) tokens of d = p^2 C/G; Q K^T and P V are 2 T^2 d each,
        // the softmax ~5 per score.
        let q = inputs[0];
        let (n, c, h, w) = (q[0] as f64, q[1] as f64, q[2] as f64, q[3] as f64);
        let g = self.patches.len() as f64;
        let flops: f64 = self
            .patches
            .iter()
            .map(|&p| {
                let p = p as f64;
                let (t, d) = (h * w / (p * p), p * p * c / g);
                t * t * (4.0 * d + 5.0)
            })
            .sum();
        crate::ops::Cost::streaming(inputs, outputs, 0.0).with_flops(n * flops)
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::kernel(self, inputs)
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let (q, k, v) = (inputs[0], inputs[1], inputs[2]);
        let [n, c, h, w] = q.shape[..] else { unreachable!("checked by infer") };
        let cg = c / self.patches.len();
        let at = |t: &Tensor, b: usize, ch: usize, y: usize, x: usize| t.data[((b * c + ch) * h + y) * w + x] as f64;
        let mut out = Tensor::zeros(&q.shape);
        for b in 0..n {
            for (g, &p) in self.patches.iter().enumerate() {
                let chans = g * cg..(g + 1) * cg;
                let scale = 1.0 / ((cg * p * p) as f64).sqrt();
                let toks: Vec<(usize, usize)> =
                    (0..h / p).flat_map(|ty| (0..w / p).map(move |tx| (ty * p, tx * p))).collect();
                for &(qy, qx) in &toks {
                    let mut s: Vec<f64> = toks
                        .iter()
                        .map(|&(ky, kx)| {
                            let mut dot = 0.0;
                            for ch in chans.clone() {
                                for dy in 0..p {
                                    for dx in 0..p {
                                        dot += at(q, b, ch, qy + dy, qx + dx) * at(k, b, ch, ky + dy, kx + dx);
                                    }
                                }
                            }
                            dot * scale
                        })
                        .collect();
                    let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = s.iter_mut().map(|x| {
                        *x = (*x - max).exp();
                        *x
                    }).sum();
                    for ch in chans.clone() {
                        for dy in 0..p {
                            for dx in 0..p {
                                let acc: f64 =
                                    toks.iter().zip(&s).map(|(&(ky, kx), &pj)| pj * at(v, b, ch, ky + dy, kx + dx)).sum();
                                out.data[((b * c + ch) * h + qy + dy) * w + qx + dx] = (acc / sum) as f32;
                            }
                        }
                    }
                }
            }
        }
        vec![out]
    }

    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let s = inputs[0].shape.clone();
        let o = &outputs[0];
        let win = ctx.windows();
        let total: usize = s.iter().product();
        if !win.fits(total) {
            return Err(Error::graph(format!(
                "node '{}': msattn binds whole maps; {s:?} ({total} elements) exceeds one storage binding of {} elements",
                ctx.node_name,
                win.limit()
            )));
        }
        let gs = self.groups(&s);
        let (mut fused, mut composed) = (Vec::new(), Vec::new());
        for (i, g) in gs.iter().enumerate() {
            let problem = MsAttnProblem { tokens: g.lt, dim: g.d, limit: win.limit() };
            let v = choose(ctx.class(), self.variant, &problem)
                .map_err(|m| Error::graph(format!("node '{}': msattn group {i} (patch {}): {m}", ctx.node_name, g.p)))?;
            match v {
                MsAttnVariant::Fused => fused.push(*g),
                MsAttnVariant::Composed => composed.push(*g),
            }
        }
        if !fused.is_empty() {
            let pipe = ctx.pipeline(&KERNELS[0], "fused", &[])?;
            for g in &fused {
                let p = self.params(&s, g, 0, 0);
                let binds = [
                    Bind::Uniform(as_bytes(&p)),
                    Bind::Tensor(&inputs[0]),
                    Bind::Tensor(&inputs[1]),
                    Bind::Tensor(&inputs[2]),
                    Bind::Tensor(o),
                ];
                ctx.dispatch_linear(&pipe, &binds, (s[0] * g.lt) as u32)?;
            }
        }
        self.plan_composed(ctx, &s, &composed, inputs, o)
    }
}

/// Weights of one multi-scale attention block, PyTorch layout: q/k/v 1x1 convs over all C channels
/// (`w [C, C, 1, 1]`, optional `bias [C]`), and an optional learned positional embedding
/// `pos [1, C, H, W]` added to the input before the projections.
#[derive(Clone, Debug)]
pub struct MsAttnWeights {
    pub wq: Tensor,
    pub bq: Option<Tensor>,
    pub wk: Tensor,
    pub bk: Option<Tensor>,
    pub wv: Tensor,
    pub bv: Option<Tensor>,
    pub pos: Option<Tensor>,
}

/// Add the block `x (+ pos) -> 1x1-conv q, k, v -> MsAttn(patches)` to a graph; returns the
/// attention output [N, C, H, W] (the output conv / residual that follow are the model's).
pub fn msattn(
    b: &mut GraphBuilder,
    name: &str,
    x: ValueId,
    patches: &[usize],
    wts: MsAttnWeights,
) -> Result<ValueId> {
    let x = match wts.pos {
        Some(pos) => {
            let pid = b.constant(&format!("{name}.pos"), pos);
            b.add(&format!("{name}.pos_add"), Binary::add(), &[x, pid])?
        }
        None => x,
    };
    let q = conv2d(b, &format!("{name}.q"), x, wts.wq, wts.bq, Conv2d::new(1, 0))?;
    let k = conv2d(b, &format!("{name}.k"), x, wts.wk, wts.bk, Conv2d::new(1, 0))?;
    let v = conv2d(b, &format!("{name}.v"), x, wts.wv, wts.bv, Conv2d::new(1, 0))?;
    b.add(name, MsAttn::new(patches), &[q, k, v])
}

mod cpu;
#[cfg(test)]
mod tests;
