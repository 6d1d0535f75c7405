//! GEMM / linear: `y = act(alpha * a @ b + bias)` with batch dimensions, shared or broadcast weights,
//! an optional transposed `b`, and kernel variants per device class (see `kernels/matmul.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::device::DeviceClass;
use crate::gpu::kernelgen;
use crate::graph::{GraphBuilder, ValueId};
use crate::kernel;
use crate::ops::act::Act;
use crate::ops::elementwise::broadcast_shapes;
use crate::ops::variant::{choose, Variant};
use crate::ops::{as_bytes, groups, Bind, Op, PlanCtx, TensorView};
use crate::tensor::{numel, Shape, Tensor};

/// Module "matmul": the shared declarations and hand-written entry points, plus the generated
/// `mm_vec`; module "matmul_sg": the same declarations plus the generated `mm_sg`, which needs
/// subgroups and is compiled only where [`sg_ok`] holds.
pub const KERNELS: &[crate::gpu::Kernel] =
    &[kernel!("matmul" = "matmul", "matmul_vec"), kernel!("matmul_sg" = "matmul", "matmul_sg")];
/// The subgroup module (`mm_sg`).
pub const KERNEL_SG: crate::gpu::Kernel = KERNELS[1];

/// mm_sg needs subgroup operations with subgroups of exactly 8 invocations (one per workgroup).
pub fn sg_ok(gpu: &crate::gpu::device::Gpu) -> bool {
    gpu.features.contains(wgpu::Features::SUBGROUP)
        && gpu.info.subgroup_min_size == 8
        && gpu.info.subgroup_max_size == 8
}

/// Batch dimensions the kernel can index (more are rejected by the shape rule).
pub const MAX_BATCH_RANK: usize = 4;

/// Kernel variants of [`MatMul`]. `MatMul::variant` forces one (tests, benchmarks); `None` lets
/// [`choose`] take the first that fits in the device class's order ([`Variant::preference`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatMulVariant {
    /// Any strides and sizes; scalar loads, 4x4 outputs per invocation.
    Scalar,
    /// Software devices: register blocking with vec4 loads; needs `!trans_b`, K % 4 == 0, N % 4 == 0.
    Vec,
    /// Software devices with `trans_b`: vec4 dot products along K; needs K % 4 == 0.
    VecTransB,
    /// Hardware GPUs: workgroup-memory tiles; any strides and sizes.
    Tiled,
    /// Software devices with subgroups of 8 (lavapipe): like `Vec`, with A shared through
    /// subgroupBroadcast (64x128 block per 8-lane workgroup); same alignment needs, plus [`sg_ok`].
    VecSg,
    /// Software devices with subgroups of 8 (lavapipe): operands packed into textures, then
    /// the texture GEMM (see `ops::gemm_tex`); any strides and sizes, within the device's texture limits.
    Tex,
}

/// What the choice of a [`MatMulVariant`] depends on.
#[derive(Clone, Copy, Debug)]
pub struct MatMulProblem {
    pub trans_b: bool,
    pub k: usize,
    pub n: usize,
    /// The device has subgroups of exactly 8 ([`sg_ok`]).
    pub sg: bool,
    /// The texture path's operands fit the device's texture and binding limits.
    pub tex_fits: bool,
}

impl Variant for MatMulVariant {
    type Problem = MatMulProblem;
    fn preference(class: DeviceClass) -> &'static [Self] {
        use MatMulVariant::*;
        match class {
            // Fastest first on lavapipe. Same-load comparison at 1024^3 (load 7-11, GFLOP/s):
            // Tex 3.1-3.8 vs VecSg 2.0-2.9; idle: VecSg 12.5, Vec ~7 (docs/BENCHMARKS.md).
            DeviceClass::Software => &[Tex, VecSg, Vec, VecTransB, Scalar],
            DeviceClass::Hardware => &[Tiled],
        }
    }
    fn unfit(self, p: &MatMulProblem) -> Option<String> {
        use MatMulVariant::*;
        match self {
            Vec | VecSg if p.trans_b => Some("needs b as [K, N] (trans_b = false)".into()),
            Vec | VecSg if p.k % 4 != 0 || p.n % 4 != 0 => {
                Some(format!("needs K and N to be multiples of 4 (K = {}, N = {})", p.k, p.n))
            }
            VecTransB if !p.trans_b => Some("needs b as [N, K] (trans_b = true)".into()),
            VecTransB if p.k % 4 != 0 => Some(format!("needs K to be a multiple of 4 (K = {})", p.k)),
            VecSg | Tex if !p.sg => Some("needs subgroups of exactly 8 invocations".into()),
            Tex if !p.tex_fits => Some("needs operands within the device's texture and binding limits".into()),
            _ => None,
        }
    }
}

impl MatMulVariant {
    /// The storage-buffer kernel module, entry point and (rows, columns) of C one workgroup covers
    /// (the generated ones' blocks come from `gpu::kernelgen`); `None` for `Tex`, which packs
    /// textures and runs `gemm_tex`'s entry points.
    fn kernel(self) -> Option<(&'static crate::gpu::Kernel, &'static str, (usize, usize))> {
        match self {
            MatMulVariant::Scalar => Some((&KERNELS[0], "mm_scalar", (32, 32))),
            MatMulVariant::Vec => Some((&KERNELS[0], "mm_vec", kernelgen::MM_VEC.block())),
            MatMulVariant::VecTransB => Some((&KERNELS[0], "mm_vec_tb", (32, 32))),
            MatMulVariant::Tiled => Some((&KERNELS[0], "mm_tiled", (64, 64))),
            MatMulVariant::VecSg => Some((&KERNEL_SG, "mm_sg", kernelgen::MM_SG.block())),
            MatMulVariant::Tex => None,
        }
    }
}

/// `y[..., M, N] = act(alpha * a[..., M, K] @ b[..., K, N] + bias[N])`.
///
/// Inputs: `a` [...batch, M, K]; `b` [...batch, K, N] (or [..., N, K] when `trans_b`), whose batch
/// dimensions may be fewer (shared weights) or 1 (broadcast); optional `bias` [N].
#[derive(Clone, Debug)]
pub struct MatMul {
    pub trans_b: bool,
    pub alpha: f32,
    pub act: Act,
    /// Force a kernel variant (tests, benchmarks); `None` chooses by device class.
    pub variant: Option<MatMulVariant>,
}

impl Default for MatMul {
    fn default() -> Self {
        MatMul { trans_b: false, alpha: 1.0, act: Act::None, variant: None }
    }
}

impl MatMul {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn trans_b(mut self, t: bool) -> Self {
        self.trans_b = t;
        self
    }
    pub fn act(mut self, act: Act) -> Self {
        self.act = act;
        self
    }
    pub fn alpha(mut self, alpha: f32) -> Self {
        self.alpha = alpha;
        self
    }
    pub fn variant(mut self, v: MatMulVariant) -> Self {
        self.variant = Some(v);
        self
    }

    /// (batch shape, M, K, N) of a valid problem.
    fn dims(&self, a: &[usize], b: &[usize]) -> std::result::Result<(Shape, usize, usize, usize), String> {
        if a.len() < 2 {
            return Err(format!("a must have rank >= 2 ([..., M, K]), got {a:?}"));
        }
        if b.len() < 2 {
            return Err(format!(
                "b must have rank >= 2 ({}), got {b:?}",
                if self.trans_b { "[..., N, K]" } else { "[..., K, N]" }
            ));
        }
        let (m, k) = (a[a.len() - 2], a[a.len() - 1]);
        let (bk, n) = if self.trans_b { (b[b.len() - 1], b[b.len() - 2]) } else { (b[b.len() - 2], b[b.len() - 1]) };
        if k != bk {
            return Err(format!(
                "inner dimensions differ: a {a:?} has K = {k}, b {b:?} has K = {bk} ({})",
                if self.trans_b { "trans_b: b is [..., N, K]" } else { "b is [..., K, N]" }
            ));
        }
        let batch =
            broadcast_shapes(&a[..a.len() - 2], &b[..b.len() - 2]).map_err(|e| format!("batch dimensions: {e}"))?;
        if batch.len() > MAX_BATCH_RANK {
            return Err(format!("at most {MAX_BATCH_RANK} batch dimensions are supported, got {batch:?}"));
        }
        Ok((batch, m, k, n))
    }
}

/// Mirrors `Params` in `kernels/matmul.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    z_base: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,
    has_bias: u32,
    sam: u32,
    sak: u32,
    sbk: u32,
    sbn: u32,
    act: u32,
    act_alpha: f32,
    alpha: f32,
    _pad0: u32,
    e: [u32; 4],
    sa: [u32; 4],
    sb: [u32; 4],
}

/// Per-batch-dimension element strides of an operand (0 where broadcast), for `out` batch dims
/// right-aligned and padded to MAX_BATCH_RANK.
fn batch_strides(batch: &[usize], out: &[usize], mat: usize) -> [usize; MAX_BATCH_RANK] {
    let mut s = [0; MAX_BATCH_RANK];
    let mut stride = mat;
    for i in (0..batch.len()).rev() {
        let oi = MAX_BATCH_RANK - out.len() + i + out.len() - batch.len();
        if batch[i] != 1 {
            s[oi] = stride;
        }
        stride *= batch[i];
    }
    s
}

impl Op for MatMul {
    fn kind(&self) -> &'static str {
        "matmul"
    }

    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        let (a, b) = match inputs {
            [a, b] | [a, b, _] => (a, b),
            _ => return Err(format!("takes 2 or 3 inputs (a, b, optional bias), got {}", inputs.len())),
        };
        let (mut out, m, _, n) = self.dims(a, b)?;
        if let [_, _, bias] = inputs {
            if *bias != [n] {
                return Err(format!("bias must have shape [N] = [{n}], got {bias:?}"));
            }
        }
        out.extend([m, n]);
        Ok(vec![out])
    }

    fn cost(&self, inputs: &[&[usize]], outputs: &[&[usize]]) -> crate::ops::Cost {
        let a = inputs[0];
        crate::ops::Cost::streaming(inputs, outputs, 2.0 * a[a.len() - 1] as f64)
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::kernel(self, inputs)
    }
    fn cpu_kernel_transposed(
        &self,
        inputs: &[crate::cpu::CpuInput],
        bxy: [usize; 3],
    ) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::kernel_transposed(self, inputs, bxy)
    }
    fn cpu_kernel_transposed_input(
        &self,
        inputs: &[crate::cpu::CpuInput],
        index: usize,
        bxy: [usize; 3],
    ) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::kernel_transposed_input(self, inputs, index, bxy)
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let (a, b) = (inputs[0], inputs[1]);
        let (batch, m, k, n) = self.dims(&a.shape, &b.shape).expect("valid shapes");
        let nb = numel(&batch);
        let sa = batch_strides(&a.shape[..a.shape.len() - 2], &batch, m * k);
        let sb = batch_strides(&b.shape[..b.shape.len() - 2], &batch, k * n);
        let mut dims = [1usize; MAX_BATCH_RANK];
        dims[MAX_BATCH_RANK - batch.len()..].copy_from_slice(&batch);
        let mut data = vec![0f32; nb * m * n];
        for z in 0..nb {
            let (mut r, mut oa, mut ob) = (z, 0, 0);
            for d in (0..MAX_BATCH_RANK).rev() {
                let i = r % dims[d];
                r /= dims[d];
                oa += i * sa[d];
                ob += i * sb[d];
            }
            for i in 0..m {
                for j in 0..n {
                    let mut s = 0f64;
                    for p in 0..k {
                        let bv = if self.trans_b { b.data[ob + j * k + p] } else { b.data[ob + p * n + j] };
                        s += a.data[oa + i * k + p] as f64 * bv as f64;
                    }
                    let mut v = self.alpha as f64 * s;
                    if let Some(bias) = inputs.get(2) {
                        v += bias.data[j] as f64;
                    }
                    data[(z * m + i) * n + j] = self.act.apply(v as f32);
                }
            }
        }
        let mut shape = batch;
        shape.extend([m, n]);
        vec![Tensor { shape, data }]
    }

    fn fuses_residual(&self) -> bool {
        true
    }
    fn half_weight_input(&self, ctx: &PlanCtx, inputs: &[&[usize]]) -> Option<usize> {
        let (a, b) = (inputs.first()?, inputs.get(1)?);
        let (batch, m, k, n) = self.dims(a, b).ok()?;
        let problem = MatMulProblem { trans_b: self.trans_b, k, n, sg: sg_ok(ctx.gpu), tex_fits: false };
        let tiled = MatMulVariant::Tiled;
        let (_, _, (rows, _)) = tiled.kernel()?;
        (choose(ctx.class(), self.variant, &problem) == Ok(tiled) && takes_whole(ctx, a, b, &batch, m, n, rows))
            .then_some(1)
    }
    fn plan_residual(
        &self,
        ctx: &mut PlanCtx,
        inputs: &[TensorView],
        residual: &TensorView,
        outputs: &[TensorView],
    ) -> Result<bool> {
        let (a, b, c) = (&inputs[0], &inputs[1], &outputs[0]);
        let (batch, m, k, n) = self.dims(&a.shape, &b.shape).map_err(Error::graph)?;
        if numel(&batch) == 0 || m == 0 || n == 0 || self.variant_for(ctx, inputs, c)? != MatMulVariant::Tex {
            return Ok(false);
        }
        self.plan_tex(ctx, a, b, inputs.get(2), c, &batch, m, k, n, Some(residual))?;
        Ok(true)
    }

    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let (a, b, c) = (&inputs[0], &inputs[1], &outputs[0]);
        let bias = inputs.get(2);
        let (batch, m, k, n) = self.dims(&a.shape, &b.shape).map_err(Error::graph)?;
        let a_batch = &a.shape[..a.shape.len() - 2];
        let b_batch = &b.shape[..b.shape.len() - 2];
        let mut nbatch = numel(&batch);
        if nbatch == 0 || m == 0 || n == 0 {
            return Ok(());
        }
        let variant = self.variant_for(ctx, inputs, c)?;
        let Some((kernel, entry, (bm, bn))) = variant.kernel() else {
            return self.plan_tex(ctx, a, b, bias, c, &batch, m, k, n, None);
        };
        let whole = takes_whole(ctx, &a.shape, &b.shape, &batch, m, n, bm);
        // The planner stores b in f16 only where half_weight_input said this path takes it.
        let half_b = ctx.half_input(1);
        if half_b && !(variant == MatMulVariant::Tiled && whole) {
            return Err(Error::graph(format!("node '{}': matmul got an f16 b it cannot read", ctx.node_name)));
        }
        let half = [("HALF_B", 1.0), self.act.constant()];
        let pipeline = ctx.pipeline(kernel, entry, if half_b { &half } else { &half[1..] })?;

        // Shared weights with an unbroadcast a: fold the batch into M (one big GEMM).
        let mut m_eff = m;
        let (mut sa, mut sb) = (batch_strides(a_batch, &batch, m * k), batch_strides(b_batch, &batch, k * n));
        let mut e = [1usize; MAX_BATCH_RANK];
        e[MAX_BATCH_RANK - batch.len()..].copy_from_slice(&batch);
        if numel(b_batch) == 1 && numel(a_batch) == nbatch {
            m_eff = m * nbatch;
            nbatch = 1;
            e = [1; MAX_BATCH_RANK];
            sa = [0; MAX_BATCH_RANK];
            sb = [0; MAX_BATCH_RANK];
        }
        let (sbk, sbn) = if self.trans_b { (1, k) } else { (n, 1) };
        let (act, act_alpha) = self.act.code();
        let base = Params {
            m: m_eff as u32,
            n: n as u32,
            k: k as u32,
            has_bias: bias.is_some() as u32,
            sam: k as u32,
            sak: 1,
            sbk: sbk as u32,
            sbn: sbn as u32,
            act,
            act_alpha,
            alpha: self.alpha,
            ..Default::default()
        };

        let win = ctx.windows();
        let max_groups = ctx.max_groups();
        let gx = groups(n, bn);
        if gx as usize > max_groups {
            return Err(Error::graph(format!(
                "node '{}': N = {n} needs {gx} workgroups along x, over {max_groups}",
                ctx.node_name
            )));
        }
        let to32 = |v: usize, what: &str| -> Result<u32> {
            u32::try_from(v).map_err(|_| Error::graph(format!("matmul: {what} = {v} exceeds u32 indexing")))
        };
        let b_words;
        let b = if half_b {
            b_words = b.half_words();
            &b_words
        } else {
            b
        };
        if whole {
            let bias_v = bias.cloned().unwrap_or_else(|| a.clone());
            let mut z0 = 0;
            while z0 < nbatch {
                let nz = (nbatch - z0).min(max_groups);
                let mut p = base;
                p.z_base = z0 as u32;
                p.c_off = to32(z0 * m_eff * n, "output offset")?;
                for d in 0..MAX_BATCH_RANK {
                    p.e[d] = e[d] as u32;
                    p.sa[d] = to32(sa[d], "a batch stride")?;
                    p.sb[d] = to32(sb[d], "b batch stride")?;
                }
                ctx.dispatch(
                    &pipeline,
                    &[
                        Bind::Uniform(as_bytes(&p)),
                        Bind::Tensor(a),
                        Bind::Tensor(b),
                        Bind::Tensor(&bias_v),
                        Bind::Tensor(c),
                    ],
                    [gx, groups(m_eff, bm), nz as u32],
                )?;
                z0 += nz;
            }
            return Ok(());
        }

        // Too large for one binding: one dispatch per batch and window of rows.
        let room = win.room();
        if k * n > room {
            return Err(Error::graph(format!(
                "node '{}': matmul operand b ({k} x {n} per batch) exceeds one storage binding ({} elements)",
                ctx.node_name,
                win.limit()
            )));
        }
        let mut rows_max = (room / k.max(1)).min(room / n).min(max_groups * bm);
        if rows_max >= bm {
            rows_max = rows_max / bm * bm;
        }
        if rows_max == 0 {
            return Err(Error::graph(format!(
                "node '{}': matmul row of K = {k} or N = {n} exceeds one storage binding",
                ctx.node_name
            )));
        }
        for z in 0..nbatch {
            let (mut r, mut oa, mut ob) = (z, 0, 0);
            for d in (0..MAX_BATCH_RANK).rev() {
                let i = r % e[d];
                r /= e[d];
                oa += i * sa[d];
                ob += i * sb[d];
            }
            let bw = win.bind(b, ob, k * n);
            for rows in win.runs(m_eff, rows_max) {
                let aw = win.bind(a, oa + rows.start * k, rows.len() * k);
                let cw = win.bind(c, (z * m_eff + rows.start) * n, rows.len() * n);
                let bias_v = bias.unwrap_or(&aw.view);
                let mut p = base;
                p.m = rows.len() as u32;
                p.a_off = aw.base as u32;
                p.b_off = bw.base as u32;
                p.c_off = cw.base as u32;
                p.e = [1; 4];
                let binds = [
                    Bind::Uniform(as_bytes(&p)),
                    Bind::Tensor(&aw.view),
                    Bind::Tensor(&bw.view),
                    Bind::Tensor(bias_v),
                    Bind::Tensor(&cw.view),
                ];
                ctx.dispatch(&pipeline, &binds, [gx, groups(rows.len(), bm), 1])?;
            }
        }
        Ok(())
    }
}

/// Whether the storage-buffer kernels take the problem whole, one dispatch per 65535 batch items:
/// every operand (`b` at its f32 size) within one binding and the rows, batch-folded when the
/// weights are shared, in blocks of `block_rows` within the workgroup limit. Otherwise they run
/// per batch item and window of rows, a path that reads no f16 `b`.
fn takes_whole(ctx: &PlanCtx, a: &[usize], b: &[usize], batch: &[usize], m: usize, n: usize, block_rows: usize) -> bool {
    let nb = numel(batch);
    let folds = numel(&b[..b.len() - 2]) == 1 && numel(&a[..a.len() - 2]) == nb;
    let m_eff = if folds { m * nb } else { m };
    let win = ctx.windows();
    win.fits(numel(a)) && win.fits(numel(b)) && win.fits(nb * m * n) && m_eff.div_ceil(block_rows) <= ctx.max_groups()
}

impl MatMul {
    /// The kernel variant for these operands (forced or by device class).
    fn variant_for(&self, ctx: &PlanCtx, inputs: &[TensorView], c: &TensorView) -> Result<MatMulVariant> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let (batch, m, k, n) = self.dims(&a.shape, &b.shape).map_err(Error::graph)?;
        let problem = MatMulProblem {
            trans_b: self.trans_b,
            k,
            n,
            sg: sg_ok(ctx.gpu),
            tex_fits: tex::fits(ctx, a, b, c, &batch, m, k, n),
        };
        choose(ctx.class(), self.variant, &problem)
            .map_err(|m| Error::graph(format!("node '{}': matmul {m}", ctx.node_name)))
    }
}

/// A PyTorch-style `nn.Linear` on the last dimension: `y = act(x @ weight^T + bias)`.
///
/// `x` is [..., K] (rank >= 2, e.g. tokens [B, L, C]); `weight` is PyTorch's [N, K]; `bias` [N].
/// The weight is repacked on the host for the kernels: to [K, N] when N % 4 == 0 (vec4 reads along
/// N), kept as [N, K] with `trans_b` when only K % 4 == 0 (vec4 dot products along K).
pub fn linear(
    b: &mut GraphBuilder,
    name: &str,
    x: ValueId,
    weight: Tensor,
    bias: Option<Tensor>,
    act: Act,
) -> Result<ValueId> {
    if weight.shape.len() != 2 {
        return Err(Error::graph(format!("linear '{name}': weight must be [N, K], got {:?}", weight.shape)));
    }
    let (n, k) = (weight.shape[0], weight.shape[1]);
    let xs = b.shape(x).to_vec();
    if xs.len() < 2 || xs[xs.len() - 1] != k {
        return Err(Error::graph(format!(
            "linear '{name}': input {xs:?} must be [..., K] with rank >= 2 and K = {k} (weight [N, K] = {:?})",
            weight.shape
        )));
    }
    if let Some(bt) = &bias {
        if bt.shape != [n] {
            return Err(Error::graph(format!("linear '{name}': bias must be [{n}], got {:?}", bt.shape)));
        }
    }
    let trans_b = n % 4 != 0 && k % 4 == 0;
    let w = if trans_b {
        weight
    } else {
        let mut t = vec![0f32; k * n];
        crate::cpu::transpose::batched_transpose(&weight.data, &mut t, [1, n, k]);
        Tensor::new(&[k, n], t)?
    };
    let wv = b.constant(&format!("{name}.weight"), w);
    let mut ins = vec![x, wv];
    if let Some(bt) = bias {
        ins.push(b.constant(&format!("{name}.bias"), bt));
    }
    b.add(name, MatMul { trans_b, alpha: 1.0, act, variant: None }, &ins)
}

mod cpu;
mod tex;
#[cfg(test)]
mod tests;
