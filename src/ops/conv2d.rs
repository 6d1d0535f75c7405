//! 2-D convolution (NCHW, PyTorch semantics) with fused bias and activation, and BatchNorm folding.
//!
//! Packed weight layout (what the op takes): `[C/groups, kh, kw, O]`, element
//! `wp[c, ky, kx, o] = w[o, c, ky, kx]` where `w` is PyTorch's `[O, C/groups, kh, kw]`; output channel
//! `o` of group `o / (O/groups)` reads input channels `g * C/groups + c`. [`conv2d`] (the builder
//! helper) and [`pack_conv2d_weight`] do the repacking; the CPU reference unpacks and follows PyTorch.
//!
//! Kernel ladder (chosen in `plan`, see `kernels/conv2d.wgsl`):
//! 1. depthwise (groups == C == O): `conv_dw`, direct, 8 pixels of a row per invocation, a sliding
//!    register window for stride 1 / dilation 1 (ConvNeXt 7x7, MiT 3x3);
//! 2. 1x1, stride 1, pad 0, groups 1, H*W a multiple of 4: `conv_1x1`, GEMM-shaped, 8 channels x 8
//!    pixels per invocation with vec4 pixel loads/stores;
//! 3. everything else (3x3, grouped, dilated, strided, patchify k4s4 / k2s2 / k7s4p3): `conv_general`,
//!    implicit GEMM, 8 output channels x 8 output pixels of one row per invocation.
//!
//! On hardware GPUs every non-depthwise conv takes `conv_tiled` (`kernels/conv2d_tiled.wgsl`): the
//! same implicit GEMM with 64 x 64 blocks staged through workgroup memory, as `mm_tiled` does for
//! products; the register-blocked kernels above remain for grids over the device's limits.
//!
//! On software devices with subgroups of 8 (lavapipe), a depthwise conv with stride 1 and no
//! dilation takes `conv_dw_tex` (`conv2d/dw_tex.rs`: `conv_dw`'s windows read from textures), a
//! conv with one group and at most 8 output channels takes `conv_few` (`conv2d/few.rs`: direct,
//! input and weights read from textures, no im2col), a 3x3 stride-1 conv with 32+ channels each
//! side takes Winograd F(2x2, 3x3) on the texture GEMM (`conv2d/winograd_tex.rs`); every other
//! non-depthwise conv that fits the texture limits takes the texture GEMM instead
//! (`ops::gemm_tex::plan_conv`: weights and the input image packed into textures, im2col from the
//! image texture, `mm_tex_*`), several times faster there because it avoids lavapipe's per-lane
//! storage-buffer loads. [`ConvVariant`] names the eight paths, their preference per device class,
//! and what each needs; `Conv2d::variant` forces one.
//!
//! Outputs larger than one storage binding are split per batch item and ranges of whole groups of
//! output channels (general and 1x1 paths).

use crate::error::{Error, Result};
use crate::gpu::device::DeviceClass;
use crate::graph::{GraphBuilder, ValueId};
use crate::kernel;
use crate::ops::act::Act;
use crate::ops::variant::{choose, Variant};
use crate::ops::{as_bytes, groups as wg_count, Bind, Op, PlanCtx, TensorView};
use crate::tensor::{numel, Shape, Tensor};

/// Module "conv2d": every entry point but `conv_tiled`; module "conv2d_tiled": the same file plus
/// `kernels/conv2d_tiled.wgsl` (workgroup memory, compiled only where a hardware GPU takes it).
pub const KERNELS: &[crate::gpu::Kernel] = &[
    kernel!("conv2d"),
    kernel!("conv2d_tiled" = "conv2d", "conv2d_tiled"),
    kernel!("conv2d_few"),
    kernel!("conv2d_dw_tex"),
    kernel!("conv2d_winograd"),
];

/// `y = act(conv2d(x, w) + bias)`; inputs `x [N, C, H, W]`, packed `w [C/groups, kh, kw, O]`,
/// optional `bias [O]`; output `[N, O, Ho, Wo]`.
#[derive(Clone, Debug)]
pub struct Conv2d {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub act: Act,
    /// Force a kernel path (tests, benchmarks); `None` chooses by device class and shape.
    pub variant: Option<ConvVariant>,
}

/// Kernel variants of [`Conv2d`]; `Conv2d::variant` forces one (tests, benchmarks), `None` lets
/// [`choose`] take the first that fits in the device class's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvVariant {
    /// `conv_dw`: depthwise (groups == C == O), direct.
    Depthwise,
    /// `conv_dw_tex` (`conv2d/dw_tex.rs`): depthwise, stride 1, no dilation, a kernel at most 8
    /// wide; input and weights read from textures (software devices).
    DepthwiseTex,
    /// `conv_1x1`: 1x1, stride 1, no padding, one group, H*W a multiple of 4; GEMM-shaped.
    Pointwise,
    /// `conv_general`: any conv (implicit GEMM), register-blocked, no workgroup memory.
    General,
    /// `conv_tiled`: any non-depthwise conv as an implicit GEMM with 64 x 64 blocks staged through
    /// workgroup memory (hardware GPUs); needs its pixel and channel blocks within the device's
    /// workgroups-per-dimension limit.
    Tiled,
    /// im2col into a texture, then the texture GEMM (`ops::gemm_tex`; software devices with
    /// subgroups of 8, operands within texture limits).
    Tex,
    /// `conv_few` (`conv2d/few.rs`): direct, all of at most 8 output channels x 8 pixels per
    /// invocation, input and weights read from textures; one group (software devices).
    Few,
    /// Winograd F(2x2, 3x3) on the texture GEMM (`conv2d/winograd_tex.rs`): 3x3, stride 1, no
    /// dilation, one group, 32+ channels each side (software devices).
    Winograd,
}

/// What the choice of a [`ConvVariant`] depends on.
#[derive(Clone, Copy, Debug)]
pub struct ConvProblem {
    pub depthwise: bool,
    pub pointwise: bool,
    /// Which of the software devices' texture kernels can run here.
    pub paths: TexPaths,
    /// `conv_tiled`'s grid (64-pixel blocks of one output plane, 64-channel blocks of all groups)
    /// fits the device's workgroups-per-dimension limit.
    pub tiled_fits: bool,
}

/// Which texture kernels can take a conv on this device (subgroups of 8, shape and textures
/// within each kernel's limits); all false elsewhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct TexPaths {
    /// The texture GEMM (`ops::gemm_tex::plan_conv`).
    pub tex: bool,
    pub few: bool,
    pub dw_tex: bool,
    pub winograd: bool,
}

impl TexPaths {
    /// What this device can run for `geo`; `channels_last`: x and y are tokens in memory.
    fn on(ctx: &PlanCtx, geo: &crate::ops::gemm_tex::ConvGeom, channels_last: bool) -> TexPaths {
        TexPaths {
            tex: crate::ops::gemm_tex::usable(ctx) && geo.fits(ctx),
            few: few::fits(ctx, geo),
            dw_tex: dw_tex::fits(ctx, geo, channels_last),
            winograd: winograd_tex::fits(ctx, geo),
        }
    }
}

impl Variant for ConvVariant {
    type Problem = ConvProblem;
    fn preference(class: DeviceClass) -> &'static [Self] {
        use ConvVariant::*;
        match class {
            DeviceClass::Software => &[DepthwiseTex, Depthwise, Few, Winograd, Tex, Pointwise, General],
            DeviceClass::Hardware => &[Depthwise, Tiled, Pointwise, General],
        }
    }
    fn unfit(self, p: &ConvProblem) -> Option<String> {
        match self {
            ConvVariant::Depthwise if !p.depthwise => Some("needs groups == input channels == output channels".into()),
            ConvVariant::Pointwise if !p.pointwise => {
                Some("needs a 1x1 kernel, stride 1, no padding, one group and H*W a multiple of 4".into())
            }
            ConvVariant::Tex if !p.paths.tex => {
                Some("needs subgroups of 8 and operands within the device's texture limits".into())
            }
            ConvVariant::DepthwiseTex if !p.paths.dw_tex || !p.depthwise => Some(
                "needs a depthwise conv with stride 1, no dilation, a kernel at most 8 wide and textures within limits"
                    .into(),
            ),
            ConvVariant::Winograd if !p.paths.winograd => Some(
                "needs a 3x3 kernel, stride 1, no dilation, one group, 32+ channels each side and textures within limits"
                    .into(),
            ),
            ConvVariant::Few if !p.paths.few || p.depthwise => Some(format!(
                "needs one group, at most {} output channels, a kernel at most 8 wide and textures within limits",
                few::MAX_O
            )),
            ConvVariant::Tiled if p.depthwise => Some("takes no depthwise conv (conv_dw does)".into()),
            ConvVariant::Tiled if !p.tiled_fits => {
                Some("needs its 64 x 64 blocks within the device's workgroups-per-dimension limit".into())
            }
            _ => None,
        }
    }
}

impl ConvVariant {
    /// Kernel module and entry point; `None` for `Tex` (`ops::gemm_tex::plan_conv`).
    fn entry(self) -> Option<(&'static crate::gpu::Kernel, &'static str)> {
        match self {
            ConvVariant::Depthwise => Some((&KERNELS[0], "conv_dw")),
            ConvVariant::Pointwise => Some((&KERNELS[0], "conv_1x1")),
            ConvVariant::General => Some((&KERNELS[0], "conv_general")),
            ConvVariant::Tiled => Some((&KERNELS[1], "conv_tiled")),
            ConvVariant::Few => Some((&KERNELS[2], "conv_few")),
            ConvVariant::DepthwiseTex => Some((&KERNELS[3], "conv_dw_tex")),
            ConvVariant::Winograd => Some((&KERNELS[4], "wino_in")),
            ConvVariant::Tex => None,
        }
    }
    /// Output channels one workgroup row (grid y) covers within a group.
    fn channel_block(self) -> usize {
        match self {
            ConvVariant::Tiled => TILE,
            _ => OCH,
        }
    }
}

impl Conv2d {
    /// The facts [`ConvVariant`]s are chosen on, for input `[n, c, h, w]`, packed weight
    /// `[c/g, kh, kw, o]` and output `[n, o, ho, wo]`; `paths` says which texture kernels fit this
    /// device, `max_groups` is its workgroups-per-dimension limit.
    pub fn problem(
        &self,
        x: &[usize],
        wp: &[usize],
        y: &[usize],
        paths: TexPaths,
        max_groups: usize,
    ) -> ConvProblem {
        let (c, hw, [_, kh, kw, o], g) = (x[1], x[2] * x[3], dims4(wp).expect("4-D weight"), self.groups);
        let plane = y[2] * y[3];
        ConvProblem {
            depthwise: g == c && g == o,
            pointwise: kh == 1 && kw == 1 && self.stride == [1, 1] && self.padding == [0, 0] && g == 1 && hw % 4 == 0,
            paths,
            tiled_fits: plane.div_ceil(TILE) <= max_groups && g * (o / g).div_ceil(TILE) <= max_groups,
        }
    }

    /// The texture paths' geometry and the kernel this device takes for x, the packed weight and y.
    /// The geometry and the variant; `channels_last`: x and y are tokens in memory (the limits of
    /// the kernels that read tokens apply).
    fn choice(
        &self,
        ctx: &PlanCtx,
        x: &TensorView,
        wp: &TensorView,
        y: &TensorView,
        channels_last: bool,
    ) -> (crate::ops::gemm_tex::ConvGeom, std::result::Result<ConvVariant, String>) {
        let geo = crate::ops::gemm_tex::ConvGeom::new(self, &x.shape, &wp.shape, &y.shape);
        let paths = TexPaths::on(ctx, &geo, channels_last);
        let problem = self.problem(&x.shape, &wp.shape, &y.shape, paths, ctx.max_groups());
        (geo, choose(ctx.class(), self.variant, &problem))
    }
}

impl Default for Conv2d {
    fn default() -> Self {
        Conv2d { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1, act: Act::None, variant: None }
    }
}

impl Conv2d {
    /// Square stride and padding, no dilation, one group, no activation.
    pub fn new(stride: usize, padding: usize) -> Self {
        Conv2d { stride: [stride; 2], padding: [padding; 2], ..Default::default() }
    }
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = [d; 2];
        self
    }
    pub fn act(mut self, a: Act) -> Self {
        self.act = a;
        self
    }
}

/// One spatial output size (PyTorch): `(in + 2p - d (k - 1) - 1) / s + 1`; error when the dilated
/// kernel does not fit the padded input.
fn out_size(axis: &str, input: usize, k: usize, s: usize, p: usize, d: usize) -> std::result::Result<usize, String> {
    let span = d * (k - 1) + 1;
    if span > input + 2 * p {
        return Err(format!(
            "kernel {axis} extent {span} (k {k}, dilation {d}) is bigger than the padded input {axis} {} ({input} + 2 x {p})",
            input + 2 * p
        ));
    }
    Ok((input + 2 * p - span) / s + 1)
}

/// `[O, C/g, kh, kw]` (PyTorch) to `[C/g, kh, kw, O]`.
pub fn pack_conv2d_weight(w: &Tensor) -> Result<Tensor> {
    let [o, cg, kh, kw] = dims4(&w.shape)
        .ok_or_else(|| Error::invalid(format!("conv2d weight must be [O, C/groups, kh, kw], got {:?}", w.shape)))?;
    // [O, K] to [K, O] with K = C/g * kh * kw.
    let mut data = vec![0.0; w.data.len()];
    crate::cpu::transpose::batched_transpose(&w.data, &mut data, [1, o, cg * kh * kw]);
    Tensor::new(&[cg, kh, kw, o], data)
}

/// Inverse of [`pack_conv2d_weight`].
pub fn unpack_conv2d_weight(wp: &Tensor) -> Tensor {
    let [cg, kh, kw, o] = dims4(&wp.shape).expect("packed conv2d weight is 4-D");
    let mut data = vec![0.0; wp.data.len()];
    crate::cpu::transpose::batched_transpose(&wp.data, &mut data, [1, cg * kh * kw, o]);
    Tensor { shape: vec![o, cg, kh, kw], data }
}

pub(crate) fn dims4(s: &[usize]) -> Option<[usize; 4]> {
    <[usize; 4]>::try_from(s).ok()
}

/// Checks shared by conv2d and conv_transpose2d: positive groups, stride and dilation, and input
/// channels divisible by groups.
pub(crate) fn check_conv_attrs(
    c: usize,
    groups: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
) -> std::result::Result<(), String> {
    if groups == 0 {
        return Err("groups must be at least 1".into());
    }
    if stride.contains(&0) || dilation.contains(&0) {
        return Err(format!("stride {stride:?} and dilation {dilation:?} must be at least 1"));
    }
    if c % groups != 0 {
        return Err(format!("input channels {c} are not divisible by groups {groups}"));
    }
    Ok(())
}

/// PyTorch `conv2d(x, w, bias, stride, padding, dilation, groups)` then `act`, in f64 on the CPU;
/// `w` in PyTorch layout `[O, C/groups, kh, kw]`.
pub fn conv2d_reference(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: &Conv2d) -> Tensor {
    let [n, c, h, wd] = dims4(&x.shape).expect("x is [N, C, H, W]");
    let [o, cg, kh, kw] = dims4(&w.shape).expect("w is [O, C/g, kh, kw]");
    let og = o / p.groups;
    let ho = out_size("height", h, kh, p.stride[0], p.padding[0], p.dilation[0]).unwrap();
    let wo = out_size("width", wd, kw, p.stride[1], p.padding[1], p.dilation[1]).unwrap();
    let mut out = vec![0.0f32; n * o * ho * wo];
    for b in 0..n {
        for oc in 0..o {
            let g = oc / og;
            for y in 0..ho {
                for xo in 0..wo {
                    let mut acc = bias.map_or(0.0, |t| t.data[oc] as f64);
                    for ci in 0..cg {
                        let cin = g * cg + ci;
                        for ky in 0..kh {
                            let iy = (y * p.stride[0] + ky * p.dilation[0]) as isize - p.padding[0] as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for kx in 0..kw {
                                let ix = (xo * p.stride[1] + kx * p.dilation[1]) as isize - p.padding[1] as isize;
                                if ix < 0 || ix >= wd as isize {
                                    continue;
                                }
                                let xv = x.data[((b * c + cin) * h + iy as usize) * wd + ix as usize] as f64;
                                let wv = w.data[((oc * cg + ci) * kh + ky) * kw + kx] as f64;
                                acc += xv * wv;
                            }
                        }
                    }
                    out[((b * o + oc) * ho + y) * wo + xo] = p.act.apply(acc as f32);
                }
            }
        }
    }
    let _ = c;
    Tensor { shape: vec![n, o, ho, wo], data: out }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ConvParams {
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
    o_off: u32,
    o_cnt: u32,
    slide: u32,
    _p0: u32,
    _p1: u32,
}

/// Pixels per invocation along a row, output channels per invocation (must match the kernel).
const PIX: usize = 8;
const OCH: usize = 8;
/// Output channels per invocation of the 1x1 path.
const OCH_1X1: usize = 8;
/// Channels and pixels of `conv_tiled`'s block (must match `CT_B` in kernels/conv2d_tiled.wgsl).
const TILE: usize = 64;

impl Op for Conv2d {
    fn kind(&self) -> &'static str {
        "conv2d"
    }

    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        if inputs.len() != 2 && inputs.len() != 3 {
            return Err(format!("takes x, packed weight and optional bias (2 or 3 inputs), got {}", inputs.len()));
        }
        let [n, c, h, w] = dims4(inputs[0]).ok_or_else(|| format!("x must be [N, C, H, W], got {:?}", inputs[0]))?;
        let [cg, kh, kw, o] = dims4(inputs[1])
            .ok_or_else(|| format!("packed weight must be [C/groups, kh, kw, O], got {:?}", inputs[1]))?;
        let g = self.groups;
        check_conv_attrs(c, g, self.stride, self.dilation)?;
        if o % g != 0 {
            return Err(format!("output channels {o} are not divisible by groups {g}"));
        }
        if cg != c / g {
            return Err(format!(
                "weight has {cg} input channels per group, x has {c} channels / {g} groups = {}",
                c / g
            ));
        }
        if kh == 0 || kw == 0 || o == 0 {
            return Err(format!("empty kernel or no output channels: weight {:?}", inputs[1]));
        }
        if inputs.len() == 3 && inputs[2] != [o] {
            return Err(format!("bias must be [{o}], got {:?}", inputs[2]));
        }
        let ho = out_size("height", h, kh, self.stride[0], self.padding[0], self.dilation[0])?;
        let wo = out_size("width", w, kw, self.stride[1], self.padding[1], self.dilation[1])?;
        Ok(vec![vec![n, o, ho, wo]])
    }

    fn cost(&self, inputs: &[&[usize]], outputs: &[&[usize]]) -> crate::ops::Cost {
        // Each output element is a dot product over C/groups x kh x kw taps.
        let taps = inputs[1][..3].iter().product::<usize>() as f64;
        crate::ops::Cost::streaming(inputs, outputs, 2.0 * taps)
    }
    fn half_weight_input(&self, ctx: &PlanCtx, inputs: &[&[usize]]) -> Option<usize> {
        let (x, wp) = (inputs.first()?, inputs.get(1)?);
        let y = self.infer(inputs).ok()?.remove(0);
        let variant = choose(ctx.class(), self.variant, &self.problem(x, wp, &y, TexPaths::default(), ctx.max_groups())).ok()?;
        reads_half_weight(ctx, variant, x, &y).then_some(1)
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::kernel(self, inputs)
    }
    fn cpu_kernel_transposed_both(
        &self,
        inputs: &[crate::cpu::CpuInput],
        index: usize,
        bxy_in: [usize; 3],
        bxy_out: [usize; 3],
    ) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        tokens::kernel(self, inputs, index, bxy_in, bxy_out)
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let w = unpack_conv2d_weight(inputs[1]);
        vec![conv2d_reference(inputs[0], &w, inputs.get(2).copied(), self)]
    }

    fn takes_channels_last(&self, inputs: &[&[usize]]) -> bool {
        let (Some(x), Some(wp)) = (inputs.first(), inputs.get(1)) else { return false };
        x.len() == 4 && wp.len() == 4 && self.groups == x[1] && wp[3] == x[1] && self.stride == [1, 1]
    }
    fn plan_channels_last(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<bool> {
        let (x, wp, y) = (&inputs[0], &inputs[1], &outputs[0]);
        let (geo, variant) = self.choice(ctx, x, wp, y, true);
        // Only the depthwise texture kernel reads and writes tokens; f16 weights it does not read.
        if ctx.half_input(1) || variant != Ok(ConvVariant::DepthwiseTex) {
            return Ok(false);
        }
        dw_tex::plan(ctx, &geo, x, wp, inputs.get(2), y, self.act, true)?;
        Ok(true)
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let (x, wp, y) = (&inputs[0], &inputs[1], &outputs[0]);
        let [n, c, h, w] = dims4(&x.shape).unwrap();
        let [cg, kh, kw, o] = dims4(&wp.shape).unwrap();
        let [_, _, ho, wo] = dims4(&y.shape).unwrap();
        let g = self.groups;
        let og = o / g;
        let (act, alpha) = self.act.code();
        let nbx = wo.div_ceil(PIX);
        let mut prm = ConvParams {
            n: n as u32,
            c: c as u32,
            h: h as u32,
            w: w as u32,
            o: o as u32,
            ho: ho as u32,
            wo: wo as u32,
            groups: g as u32,
            cg: cg as u32,
            og: og as u32,
            kh: kh as u32,
            kw: kw as u32,
            sy: self.stride[0] as u32,
            sx: self.stride[1] as u32,
            py: self.padding[0] as i32,
            px: self.padding[1] as i32,
            dy: self.dilation[0] as u32,
            dx: self.dilation[1] as u32,
            act,
            alpha,
            has_bias: (inputs.len() == 3) as u32,
            nbx: nbx as u32,
            obg: 0,
            o_off: 0,
            o_cnt: o as u32,
            slide: (self.stride[1] == 1 && self.dilation[1] == 1) as u32,
            _p0: 0,
            _p1: 0,
        };

        let (geo, variant) = self.choice(ctx, x, wp, y, false);
        let variant = variant.map_err(|m| Error::graph(format!("node '{}': conv2d {m}", ctx.node_name)))?;
        // The texture paths record their own packs and dispatches.
        let (bias_in, act) = (inputs.get(2), self.act);
        match variant {
            ConvVariant::Few => return few::plan(ctx, &geo, x, wp, bias_in, y, act),
            ConvVariant::DepthwiseTex => return dw_tex::plan(ctx, &geo, x, wp, bias_in, y, act, false),
            ConvVariant::Winograd => return winograd_tex::plan(ctx, &geo, x, wp, bias_in, y, act),
            ConvVariant::Tex => return crate::ops::gemm_tex::plan_conv(ctx, &geo, x, wp, bias_in, y, act),
            _ => {}
        }
        let (kernel, entry) = variant.entry().expect("every direct variant has an entry point");
        // The planner stores the weight in f16 only where half_weight_input said so.
        let half_w = ctx.half_input(1);
        if half_w && !reads_half_weight(ctx, variant, &x.shape, &y.shape) {
            return Err(Error::graph(format!("node '{}': conv2d got an f16 weight it cannot read", ctx.node_name)));
        }
        let half = [("HALF_W", 1.0), act.constant()];
        let p = ctx.pipeline(kernel, entry, if half_w { &half } else { &half[1..] })?;
        let w_words;
        let wp = if half_w {
            w_words = wp.half_words();
            &w_words
        } else {
            wp
        };
        // Without a bias the weight is bound in its place (never read: has_bias = 0).
        let bias = inputs.get(2).unwrap_or(wp);
        let obg = og.div_ceil(variant.channel_block());
        prm.obg = obg as u32;
        if variant == ConvVariant::Depthwise {
            let binds =
                [Bind::Uniform(as_bytes(&prm)), Bind::Tensor(x), Bind::Tensor(wp), Bind::Tensor(bias), Bind::Tensor(y)];
            return ctx.dispatch(&p, &binds, [wg_count(ho * nbx, 64), o as u32, n as u32]);
        }
        let plane = ho * wo;
        // Workgroups along x and y for `groups_n` groups (`o_cnt` channels) of one window.
        let grid_xy = |groups_n: usize, o_cnt: usize| match variant {
            ConvVariant::Pointwise => [wg_count((h * w / 4).div_ceil(2), 64), o_cnt.div_ceil(OCH_1X1) as u32],
            ConvVariant::Tiled => [plane.div_ceil(TILE) as u32, (groups_n * obg) as u32],
            _ => [wg_count(ho * nbx, 64), (groups_n * obg) as u32],
        };

        // Split into windows (batch item x whole groups of output channels) when a tensor is larger
        // than one binding. The kernels take no base offset: windows must start aligned.
        let win = ctx.windows();
        let in_item = c * h * w;
        if win.fits(y.numel()) && win.fits(x.numel()) {
            let binds =
                [Bind::Uniform(as_bytes(&prm)), Bind::Tensor(x), Bind::Tensor(wp), Bind::Tensor(bias), Bind::Tensor(y)];
            let [gx, gy] = grid_xy(g, o);
            return ctx.dispatch(&p, &binds, [gx, gy, n as u32]);
        }
        let node = ctx.node_name.clone();
        let err = |m: String| Error::graph(format!("node '{node}': conv2d {m}"));
        if !win.fits(in_item) {
            return Err(err(format!(
                "input item of {in_item} elements ({c}x{h}x{w}) exceeds one storage binding ({} elements)",
                win.limit()
            )));
        }
        if !win.fits(og * plane) {
            return Err(err(format!(
                "group of outputs ({og} x {ho} x {wo}) exceeds one storage binding ({} elements)",
                win.limit()
            )));
        }
        for b in 0..n {
            let xv = win.exact(x, b * in_item, in_item).map_err(|m| err(format!("input: {m}")))?;
            for r in win.runs(g, win.limit() / (og * plane)) {
                let (o_off, o_cnt) = (r.start * og, r.len() * og);
                let yv =
                    win.exact(y, (b * o + o_off) * plane, o_cnt * plane).map_err(|m| err(format!("output: {m}")))?;
                prm.o_off = o_off as u32;
                prm.o_cnt = o_cnt as u32;
                let binds = [
                    Bind::Uniform(as_bytes(&prm)),
                    Bind::Tensor(&xv),
                    Bind::Tensor(wp),
                    Bind::Tensor(bias),
                    Bind::Tensor(&yv),
                ];
                let [gx, gy] = grid_xy(r.len(), o_cnt);
                ctx.dispatch(&p, &binds, [gx, gy, 1])?;
            }
        }
        Ok(())
    }
}

/// Whether `variant` reads an f16 weight here: only `conv_tiled`, with input and output each in
/// one binding (the windowed path takes f32 weights).
fn reads_half_weight(ctx: &PlanCtx, variant: ConvVariant, x: &[usize], y: &[usize]) -> bool {
    let win = ctx.windows();
    variant == ConvVariant::Tiled && win.fits(numel(x)) && win.fits(numel(y))
}

/// Add a conv2d node from PyTorch-layout weights `w [O, C/groups, kh, kw]` and optional `bias [O]`:
/// the weight is repacked to `[C/groups, kh, kw, O]` and stored as a constant.
pub fn conv2d(
    b: &mut GraphBuilder,
    name: &str,
    x: ValueId,
    w: Tensor,
    bias: Option<Tensor>,
    params: Conv2d,
) -> Result<ValueId> {
    let wp = pack_conv2d_weight(&w).map_err(|e| e.context(format!("node '{name}'")))?;
    let wid = b.constant(&format!("{name}.weight"), wp);
    let mut ins = vec![x, wid];
    if let Some(t) = bias {
        ins.push(b.constant(&format!("{name}.bias"), t));
    }
    b.add(name, params, &ins)
}

/// Fold an inference BatchNorm that follows a conv into the conv's weight and bias (PyTorch layout,
/// `w [O, ...]`): `scale = gamma / sqrt(var + eps)`, `w' = w * scale[o]`,
/// `b' = (bias - mean) * scale + beta`. Computed in f64.
pub fn fold_batch_norm(
    w: &Tensor,
    bias: Option<&Tensor>,
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    eps: f32,
) -> (Tensor, Tensor) {
    let o = w.shape[0];
    let per = w.data.len() / o;
    let mut wf = w.clone();
    let mut bf = Tensor::zeros(&[o]);
    for oc in 0..o {
        let scale = gamma.data[oc] as f64 / (running_var.data[oc] as f64 + eps as f64).sqrt();
        for v in &mut wf.data[oc * per..(oc + 1) * per] {
            *v = (*v as f64 * scale) as f32;
        }
        let b0 = bias.map_or(0.0, |t| t.data[oc] as f64);
        bf.data[oc] = ((b0 - running_mean.data[oc] as f64) * scale + beta.data[oc] as f64) as f32;
    }
    (wf, bf)
}

mod cpu;
mod depthwise;
pub(crate) mod dw_tex;
mod tokens;
pub(crate) mod few;
mod winograd;
pub(crate) mod winograd_tex;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod timing;
