//! Transposed 2-D convolution (NCHW, PyTorch `ConvTranspose2d` semantics), fused bias + activation.
//!
//! Packed weight layout (what the op takes): `[C_in, kh, kw, O/groups]`, element
//! `wp[ci, ky, kx, j] = w[ci, j, ky, kx]` where `w` is PyTorch's `[C_in, O/groups, kh, kw]`.
//! [`conv_transpose2d`] (builder helper) and [`pack_conv_transpose2d_weight`] repack; the CPU
//! reference unpacks and scatters like PyTorch. Output size per axis:
//! `(H - 1) s - 2 p + d (k - 1) + output_padding + 1`.
//!
//! Kernels (`kernels/conv_transpose2d.wgsl`), chosen as [`ConvTransposeVariant`]s:
//! - `conv_transpose`: gather form (no atomics), output columns grouped by phase `ox mod stride` so
//!   an invocation computes 8 same-phase pixels x 8 output channels with only the taps that reach
//!   them (for k4 s2 p1: 2 x 2 of the 16 taps);
//! - on software devices, per batch item and group, the texture GEMM (`ops::gemm_tex`) computes every
//!   tap's contribution `cols[(ky, kx, j), pixel] = W^T X` and `col2im` gathers the taps that reach
//!   each output pixel, adding bias and activation: lavapipe runs the gather kernel's per-lane weight
//!   and input loads at ~1 GFLOP/s, the GEMM at its full rate.

use crate::error::{Error, Result};
use crate::graph::{GraphBuilder, ValueId};
use crate::kernel;
use crate::ops::act::Act;
use crate::gpu::device::DeviceClass;
use crate::ops::conv2d::{check_conv_attrs, dims4};
use crate::ops::gemm_tex::{self, TexParams};
use crate::ops::variant::{choose, Variant};
use crate::ops::{as_bytes, groups as wg_count, Bind, Op, PlanCtx, TensorView};
use crate::tensor::{Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("conv_transpose2d")];

/// `y = act(conv_transpose2d(x, w) + bias)`; inputs `x [N, C, H, W]`, packed `w [C, kh, kw, O/groups]`,
/// optional `bias [O]`; output `[N, O, Ho, Wo]`.
#[derive(Clone, Debug)]
pub struct ConvTranspose2d {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub output_padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub act: Act,
    /// Force a kernel path (tests, benchmarks); `None` chooses by device class and shape.
    pub variant: Option<ConvTransposeVariant>,
}

/// Kernel paths of [`ConvTranspose2d`], in each device class's order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvTransposeVariant {
    /// `conv_transpose`: direct gather, any shape.
    Gather,
    /// Texture GEMM into a column buffer, then `col2im` (software devices with subgroups of 8,
    /// operands within the texture limits, the columns within one binding).
    Tex,
}

impl Variant for ConvTransposeVariant {
    /// Whether the texture path fits here.
    type Problem = bool;
    fn preference(class: DeviceClass) -> &'static [Self] {
        match class {
            DeviceClass::Software => &[ConvTransposeVariant::Tex, ConvTransposeVariant::Gather],
            DeviceClass::Hardware => &[ConvTransposeVariant::Gather],
        }
    }
    fn unfit(self, tex_fits: &bool) -> Option<String> {
        (self == ConvTransposeVariant::Tex && !tex_fits)
            .then(|| "needs subgroups of 8, operands within the texture limits and columns within one binding".into())
    }
}

impl Default for ConvTranspose2d {
    fn default() -> Self {
        ConvTranspose2d {
            stride: [1, 1],
            padding: [0, 0],
            output_padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            act: Act::None,
            variant: None,
        }
    }
}

impl ConvTranspose2d {
    /// Square stride and padding, no output padding, no dilation, one group, no activation.
    pub fn new(stride: usize, padding: usize) -> Self {
        ConvTranspose2d { stride: [stride; 2], padding: [padding; 2], ..Default::default() }
    }
}

fn out_size(axis: &str, input: usize, k: usize, s: usize, p: usize, op: usize, d: usize) -> std::result::Result<usize, String> {
    if op >= s.max(d) {
        return Err(format!("output_padding {op} along {axis} must be smaller than stride {s} or dilation {d}"));
    }
    let full = (input - 1) * s + d * (k - 1) + op + 1;
    if full <= 2 * p {
        return Err(format!("padding {p} along {axis} leaves no output (uncropped size {full})"));
    }
    Ok(full - 2 * p)
}

/// `[C_in, O/g, kh, kw]` (PyTorch) to `[C_in, kh, kw, O/g]`.
pub fn pack_conv_transpose2d_weight(w: &Tensor) -> Result<Tensor> {
    let [c, og, kh, kw] = dims4(&w.shape).ok_or_else(|| {
        Error::invalid(format!("conv_transpose2d weight must be [C_in, O/groups, kh, kw], got {:?}", w.shape))
    })?;
    let mut data = vec![0.0; w.data.len()];
    for ci in 0..c {
        for j in 0..og {
            for k in 0..kh * kw {
                data[(ci * kh * kw + k) * og + j] = w.data[(ci * og + j) * kh * kw + k];
            }
        }
    }
    Tensor::new(&[c, kh, kw, og], data)
}

/// Inverse of [`pack_conv_transpose2d_weight`].
pub fn unpack_conv_transpose2d_weight(wp: &Tensor) -> Tensor {
    let [c, kh, kw, og] = dims4(&wp.shape).expect("packed weight is 4-D");
    let mut data = vec![0.0; wp.data.len()];
    for ci in 0..c {
        for j in 0..og {
            for k in 0..kh * kw {
                data[(ci * og + j) * kh * kw + k] = wp.data[(ci * kh * kw + k) * og + j];
            }
        }
    }
    Tensor { shape: vec![c, og, kh, kw], data }
}

/// PyTorch `conv_transpose2d` then `act`, on the CPU in f64, written as a scatter (each input pixel
/// adds `x * w` to the outputs it reaches); `w` in PyTorch layout `[C_in, O/groups, kh, kw]`.
pub fn conv_transpose2d_reference(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: &ConvTranspose2d) -> Tensor {
    let [n, c, h, wd] = dims4(&x.shape).expect("x is [N, C, H, W]");
    let [_, og, kh, kw] = dims4(&w.shape).expect("w is [C_in, O/g, kh, kw]");
    let o = og * p.groups;
    let cg = c / p.groups;
    let ho = out_size("height", h, kh, p.stride[0], p.padding[0], p.output_padding[0], p.dilation[0]).unwrap();
    let wo = out_size("width", wd, kw, p.stride[1], p.padding[1], p.output_padding[1], p.dilation[1]).unwrap();
    let mut acc = vec![0.0f64; n * o * ho * wo];
    for b in 0..n {
        for ci in 0..c {
            let g = ci / cg;
            for iy in 0..h {
                for ix in 0..wd {
                    let xv = x.data[((b * c + ci) * h + iy) * wd + ix] as f64;
                    for j in 0..og {
                        let oc = g * og + j;
                        for ky in 0..kh {
                            let oy = (iy * p.stride[0] + ky * p.dilation[0]) as isize - p.padding[0] as isize;
                            if oy < 0 || oy >= ho as isize {
                                continue;
                            }
                            for kx in 0..kw {
                                let ox = (ix * p.stride[1] + kx * p.dilation[1]) as isize - p.padding[1] as isize;
                                if ox < 0 || ox >= wo as isize {
                                    continue;
                                }
                                let wv = w.data[((ci * og + j) * kh + ky) * kw + kx] as f64;
                                acc[((b * o + oc) * ho + oy as usize) * wo + ox as usize] += xv * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    let plane = ho * wo;
    let data = acc
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let oc = (i / plane) % o;
            p.act.apply((v + bias.map_or(0.0, |t| t.data[oc] as f64)) as f32)
        })
        .collect();
    Tensor { shape: vec![n, o, ho, wo], data }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct CtParams {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    o: u32,
    ho: u32,
    wo: u32,
    groups: u32,
    cg: u32,
    og: u32,
    kh: u32,
    kw: u32,
    sy: u32,
    sx: u32,
    py: i32,
    px: i32,
    dy: u32,
    dx: u32,
    act: u32,
    alpha: f32,
    has_bias: u32,
    nbx: u32,
    obg: u32,
    _p0: u32,
}

const PIX: usize = 8;
const OCH: usize = 8;

impl Op for ConvTranspose2d {
    fn kind(&self) -> &'static str {
        "conv_transpose2d"
    }

    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        if inputs.len() != 2 && inputs.len() != 3 {
            return Err(format!("takes x, packed weight and optional bias (2 or 3 inputs), got {}", inputs.len()));
        }
        let [n, c, h, w] = dims4(inputs[0]).ok_or_else(|| format!("x must be [N, C, H, W], got {:?}", inputs[0]))?;
        let [wc, kh, kw, og] = dims4(inputs[1])
            .ok_or_else(|| format!("packed weight must be [C_in, kh, kw, O/groups], got {:?}", inputs[1]))?;
        let g = self.groups;
        check_conv_attrs(c, g, self.stride, self.dilation)?;
        if wc != c {
            return Err(format!("weight has {wc} input channels, x has {c}"));
        }
        if kh == 0 || kw == 0 || og == 0 || h == 0 || w == 0 {
            return Err(format!("empty input, kernel or output: x {:?}, weight {:?}", inputs[0], inputs[1]));
        }
        let o = og * g;
        if inputs.len() == 3 && inputs[2] != [o] {
            return Err(format!("bias must be [{o}], got {:?}", inputs[2]));
        }
        let ho = out_size("height", h, kh, self.stride[0], self.padding[0], self.output_padding[0], self.dilation[0])?;
        let wo = out_size("width", w, kw, self.stride[1], self.padding[1], self.output_padding[1], self.dilation[1])?;
        Ok(vec![vec![n, o, ho, wo]])
    }

    fn cost(&self, inputs: &[&[usize]], outputs: &[&[usize]]) -> crate::ops::Cost {
        // Each input element is scattered to kh x kw x O/groups outputs.
        let fan = inputs[1][1..].iter().product::<usize>() as f64;
        let ins = inputs[0].iter().product::<usize>() as f64;
        crate::ops::Cost::streaming(inputs, outputs, 0.0).with_flops(2.0 * fan * ins)
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|i| i.shape).collect();
        let y = dims4(self.infer(&shapes).ok()?.first()?)?;
        cpu::kernel(self, inputs, y)
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let w = unpack_conv_transpose2d_weight(inputs[1]);
        vec![conv_transpose2d_reference(inputs[0], &w, inputs.get(2).copied(), self)]
    }

    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let v = choose(ctx.class(), self.variant, &self.tex_fits(ctx, inputs, outputs))
            .map_err(|m| Error::graph(format!("node '{}': {m}", ctx.node_name)))?;
        match v {
            ConvTransposeVariant::Gather => self.plan_gather(ctx, inputs, outputs),
            ConvTransposeVariant::Tex => self.plan_tex(ctx, inputs, outputs),
        }
    }
}

/// Mirrors `C2iParams` in `kernels/conv_transpose2d.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct C2iParams {
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    og: u32,
    kh: u32,
    kw: u32,
    has_bias: u32,
    py: i32,
    px: i32,
    y_off: u32,
    bias_off: u32,
    act: u32,
    alpha: f32,
    _p0: u32,
    _p1: u32,
}

impl ConvTranspose2d {
    /// Whether the texture path can take these operands (see [`ConvTransposeVariant::Tex`]).
    fn tex_fits(&self, ctx: &PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> bool {
        let [_, c, h, w] = dims4(&inputs[0].shape).unwrap();
        let [_, kh, kw, og] = dims4(&inputs[1].shape).unwrap();
        let (cg, m, win) = (c / self.groups, kh * kw * og, ctx.windows());
        gemm_tex::usable(ctx)
            && ctx.texture_fits(cg.div_ceil(4), m, self.groups)
            && ctx.texture_fits((h * w).div_ceil(4), 4 * cg.div_ceil(4), 1)
            && win.fits(m * h * w)
            && win.fits(inputs[0].numel())
            && win.fits(outputs[0].numel())
            && ctx.gpu.limits.max_compute_workgroups_per_dimension as usize >= og.max(dims4(&outputs[0].shape).unwrap()[2])
    }

    /// Per batch item and group: `cols = W_g^T X_g` on the texture GEMM (m = kh kw O/g rows, C/g
    /// deep, H W columns), then `col2im` into the output with bias and activation.
    fn plan_tex(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let (x, wp, y) = (&inputs[0], &inputs[1], &outputs[0]);
        let [n, c, h, w] = dims4(&x.shape).unwrap();
        let [_, kh, kw, og] = dims4(&wp.shape).unwrap();
        let [_, o, ho, wo] = dims4(&y.shape).unwrap();
        let (g, hw) = (self.groups, h * w);
        let (cg, m) = (c / g, kh * kw * og);
        let ta = ctx.texture(cg.div_ceil(4), m, g)?;
        for gi in 0..g {
            // A[(ky, kx, j), c] = wp[gi * cg + c, ky, kx, j]: rows contiguous, columns m apart.
            gemm_tex::pack(ctx, wp, &ta, gi, m, cg, gi * cg * m, 1, m)?;
        }
        let tb = ctx.texture(hw.div_ceil(4), 4 * cg.div_ceil(4), 1)?;
        let cols = ctx.pooled_scratch(m * hw)?;
        let (act, alpha) = self.act.code();
        let consts = [
            ("SY", self.stride[0] as f64),
            ("SX", self.stride[1] as f64),
            ("DY", self.dilation[0] as f64),
            ("DX", self.dilation[1] as f64),
            self.act.constant(),
        ];
        let c2i = ctx.pipeline(&KERNELS[0], "col2im", &consts)?;
        let bias = inputs.get(2).unwrap_or(wp);
        for b in 0..n {
            for gi in 0..g {
                gemm_tex::pack(ctx, x, &tb, 0, cg, hw, (b * c + gi * cg) * hw, hw, 1)?;
                let mut p = TexParams::new(m, cg, hw, 1.0, Act::None);
                p.a_layer = gi as u32;
                gemm_tex::gemm(ctx, &p, &ta, &tb, wp, &cols, 1, None)?;
                let q = C2iParams {
                    h: h as u32,
                    w: w as u32,
                    ho: ho as u32,
                    wo: wo as u32,
                    og: og as u32,
                    kh: kh as u32,
                    kw: kw as u32,
                    has_bias: (inputs.len() == 3) as u32,
                    py: self.padding[0] as i32,
                    px: self.padding[1] as i32,
                    y_off: ((b * o + gi * og) * ho * wo) as u32,
                    bias_off: (gi * og) as u32,
                    act,
                    alpha,
                    _p0: 0,
                    _p1: 0,
                };
                let binds = [Bind::Uniform(as_bytes(&q)), Bind::Tensor(&cols), Bind::Tensor(bias), Bind::Tensor(y)];
                ctx.dispatch(&c2i, &binds, [wg_count(wo, 64), ho as u32, og as u32])?;
            }
        }
        Ok(())
    }

    fn plan_gather(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let (x, wp, y) = (&inputs[0], &inputs[1], &outputs[0]);
        let [n, c, h, w] = dims4(&x.shape).unwrap();
        let [_, kh, kw, og] = dims4(&wp.shape).unwrap();
        let [_, o, ho, wo] = dims4(&y.shape).unwrap();
        let g = self.groups;
        let bias = inputs.get(2).unwrap_or(wp);
        let (act, alpha) = self.act.code();
        let sx = self.stride[1];
        let nbx = wo.div_ceil(sx).div_ceil(PIX);
        let prm = CtParams {
            n: n as u32,
            c: c as u32,
            h: h as u32,
            w: w as u32,
            o: o as u32,
            ho: ho as u32,
            wo: wo as u32,
            groups: g as u32,
            cg: (c / g) as u32,
            og: og as u32,
            kh: kh as u32,
            kw: kw as u32,
            sy: self.stride[0] as u32,
            sx: sx as u32,
            py: self.padding[0] as i32,
            px: self.padding[1] as i32,
            dy: self.dilation[0] as u32,
            dx: self.dilation[1] as u32,
            act,
            alpha,
            has_bias: (inputs.len() == 3) as u32,
            nbx: nbx as u32,
            obg: og.div_ceil(OCH) as u32,
            _p0: 0,
        };
        let p = ctx.pipeline(&KERNELS[0], "conv_transpose", &[self.act.constant()])?;
        let binds = [Bind::Uniform(as_bytes(&prm)), Bind::Tensor(x), Bind::Tensor(wp), Bind::Tensor(bias), Bind::Tensor(y)];
        ctx.dispatch(&p, &binds, [wg_count(ho * sx * nbx, 64), (g * og.div_ceil(OCH)) as u32, n as u32])
    }
}

/// Add a conv_transpose2d node from PyTorch-layout weights `w [C_in, O/groups, kh, kw]` and optional
/// `bias [O]`: the weight is repacked to `[C_in, kh, kw, O/groups]` and stored as a constant.
pub fn conv_transpose2d(
    b: &mut GraphBuilder,
    name: &str,
    x: ValueId,
    w: Tensor,
    bias: Option<Tensor>,
    params: ConvTranspose2d,
) -> Result<ValueId> {
    let wp = pack_conv_transpose2d_weight(&w).map_err(|e| e.context(format!("node '{name}'")))?;
    let wid = b.constant(&format!("{name}.weight"), wp);
    let mut ins = vec![x, wid];
    if let Some(t) = bias {
        ins.push(b.constant(&format!("{name}.bias"), t));
    }
    b.add(name, params, &ins)
}

mod cpu;
#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{check_op, device};
    use crate::tensor::{check_close, Rng};

    const TOL: f32 = 1e-4;

    #[allow(clippy::too_many_arguments)]
    fn run(label: &str, n: usize, c: usize, hw: [usize; 2], og: usize, k: [usize; 2], p: ConvTranspose2d, bias: bool, seed: u64) {
        let x = Tensor::random(&[n, c, hw[0], hw[1]], seed, -1.0, 1.0);
        let w = Tensor::random(&[c, og, k[0], k[1]], seed + 1, -0.5, 0.5);
        let mut ins = vec![x, pack_conv_transpose2d_weight(&w).unwrap()];
        if bias {
            ins.push(Tensor::random(&[og * p.groups], seed + 2, -1.0, 1.0));
        }
        // Every path that can run here, forced: the gather kernel always, the texture GEMM where
        // the device has it (lavapipe, CI).
        check_op(&format!("{label} gather seed {seed}"), &ConvTranspose2d { variant: Some(ConvTransposeVariant::Gather), ..p.clone() }, &ins, TOL);
        if crate::ops::matmul::sg_ok(device()) {
            check_op(&format!("{label} tex seed {seed}"), &ConvTranspose2d { variant: Some(ConvTransposeVariant::Tex), ..p }, &ins, TOL);
        }
    }

    #[test]
    fn conv_transpose_matches_reference() {
        let s = Rng::fresh_seed();
        let ct = ConvTranspose2d::new;
        run("k4 s2 p1 8x8 C6 O5 batch 2", 2, 6, [8, 8], 5, [4, 4], ct(2, 1), true, s);
        run("k4 s2 p1 odd 7x9 gelu", 1, 5, [7, 9], 7, [4, 4], ConvTranspose2d { act: Act::Gelu, ..ct(2, 1) }, false, s + 10);
        run("k3 s2 p1 op1 13x17", 2, 4, [13, 17], 6, [3, 3], ConvTranspose2d { output_padding: [1, 1], ..ct(2, 1) }, true, s + 20);
        run("groups 2 k4 s2 p1", 1, 6, [5, 11], 3, [4, 4], ConvTranspose2d { groups: 2, ..ct(2, 1) }, true, s + 30);
        run("groups 3 k3 s1 p1", 1, 9, [6, 7], 2, [3, 3], ConvTranspose2d { groups: 3, ..ct(1, 1) }, true, s + 40);
        run("k2 s2", 1, 8, [9, 5], 4, [2, 2], ct(2, 0), true, s + 50);
        run("k3 s3 dilation 2 relu", 1, 3, [5, 6], 5, [3, 3], ConvTranspose2d { dilation: [2, 2], act: Act::Relu, ..ct(3, 0) }, true, s + 60);
        run("rect k(3,4) s(1,2) p(0,1)", 2, 4, [4, 19], 9, [3, 4], ConvTranspose2d { stride: [1, 2], padding: [0, 1], ..Default::default() }, false, s + 70);
        run("k4 s2 p1 C64 O32 16x16", 1, 64, [16, 16], 32, [4, 4], ct(2, 1), true, s + 80);
    }

    #[test]
    fn builder_matches_pytorch_layout_reference() {
        let seed = Rng::fresh_seed();
        let x = Tensor::random(&[1, 8, 6, 10], seed, -1.0, 1.0);
        let w = Tensor::random(&[8, 6, 4, 4], seed + 1, -0.5, 0.5);
        let bias = Tensor::random(&[6], seed + 2, -1.0, 1.0);
        let p = ConvTranspose2d::new(2, 1);
        let want = conv_transpose2d_reference(&x, &w, Some(&bias), &p);
        let mut b = GraphBuilder::new();
        let xi = b.input("x", &x.shape);
        let yi = conv_transpose2d(&mut b, "up", xi, w, Some(bias), p).unwrap();
        assert_eq!(b.shape(yi), &[1, 6, 12, 20]);
        b.output("y", yi);
        let plan = crate::graph::Plan::new(device(), &b.finish()).unwrap();
        let got = plan.run(&[("x", &x)]).unwrap().remove("y").unwrap();
        check_close(&format!("conv_transpose2d builder seed {seed}"), &got, &want, TOL).unwrap();
    }

    #[test]
    fn shape_errors_are_clear() {
        let p = ConvTranspose2d { groups: 2, ..ConvTranspose2d::new(2, 1) };
        assert!(p.infer(&[&[1, 5, 8, 8], &[5, 4, 4, 3]]).unwrap_err().contains("not divisible by groups"));
        let q = ConvTranspose2d { output_padding: [2, 2], ..ConvTranspose2d::new(2, 1) };
        assert!(q.infer(&[&[1, 4, 8, 8], &[4, 4, 4, 3]]).unwrap_err().contains("output_padding"));
        assert!(ConvTranspose2d::new(2, 1).infer(&[&[1, 4, 8, 8], &[5, 4, 4, 3]]).unwrap_err().contains("input channels"));
        assert_eq!(ConvTranspose2d::new(2, 1).infer(&[&[1, 768, 16, 16], &[768, 4, 4, 384]]).unwrap(), vec![vec![1, 384, 32, 32]]);
    }
}
