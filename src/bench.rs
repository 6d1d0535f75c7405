//! Benchmark cases at model-like shapes, shared by `wgpu-forge bench` and the criterion benches.
//! Each case is a one-op graph; time is the GPU time from timestamp queries when the adapter has
//! them (wall time of a whole run otherwise), and GFLOP/s counts multiply-adds as 2 flops.

use crate::error::Result;
use crate::gpu::device::Gpu;
use crate::graph::{Graph, GraphBuilder, Plan};
use crate::ops::act::Act;
use crate::ops::attention::Attention;
use crate::ops::conv2d::Conv2d;
use crate::ops::conv_transpose2d::{ConvTranspose2d, ConvTransposeVariant};
use crate::ops::dct::DctFilter;
use crate::ops::elementwise::{Binary, Unary};
use crate::ops::layer_norm::LayerNorm;
use crate::ops::layout::Permute;
use crate::ops::matmul::MatMul;
use crate::ops::msattn::{MsAttn, MsAttnVariant};
use crate::ops::softmax::Softmax;
use crate::ops::Op;
use crate::tensor::Tensor;

pub struct BenchCase {
    pub family: &'static str,
    pub name: String,
    /// Floating-point operations of one run (0 where only bandwidth matters).
    pub flops: f64,
    /// Bytes one run must read and write at least (the bandwidth floor).
    pub bytes: f64,
    pub graph: Graph,
    /// The inputs, made when the case runs (not when the list is built: a filtered run makes only
    /// its own).
    pub inputs: Vec<RandomInput>,
}

/// A graph input filled with uniform random values.
pub struct RandomInput {
    pub name: String,
    pub shape: Vec<usize>,
    pub seed: u64,
    pub range: (f32, f32),
}

impl BenchCase {
    /// The case's input tensors.
    pub fn make_inputs(&self) -> Vec<(String, Tensor)> {
        let make = |i: &RandomInput| (i.name.clone(), Tensor::random(&i.shape, i.seed, i.range.0, i.range.1));
        self.inputs.iter().map(make).collect()
    }
}

impl BenchCase {
    /// A case of one op whose inputs are all random graph inputs.
    pub fn single(
        family: &'static str,
        name: String,
        flops: f64,
        op: impl Op + 'static,
        shapes: &[&[usize]],
    ) -> Result<BenchCase> {
        let mut b = GraphBuilder::new();
        let ids: Vec<_> = shapes.iter().enumerate().map(|(i, s)| b.input(&format!("in{i}"), s)).collect();
        let out = b.add("op", op, &ids)?;
        let out_elems: usize = b.shape(out).iter().product();
        b.output("out", out);
        let inputs = random_inputs(shapes);
        let bytes = 4.0 * (inputs.iter().map(|i| i.shape.iter().product::<usize>()).sum::<usize>() + out_elems) as f64;
        Ok(BenchCase { family, name, flops, bytes, graph: b.finish(), inputs })
    }
}

/// Graph inputs `in0`, `in1`, ... of these shapes, uniform in [-1, 1], seeded by position.
fn random_inputs(shapes: &[&[usize]]) -> Vec<RandomInput> {
    let input = |(i, s): (usize, &&[usize])| RandomInput {
        name: format!("in{i}"),
        shape: s.to_vec(),
        seed: 1 + i as u64,
        range: (-1.0, 1.0),
    };
    shapes.iter().enumerate().map(input).collect()
}

/// Every registered case. Families add theirs here.
pub fn cases() -> Result<Vec<BenchCase>> {
    let mut v = Vec::new();
    // GEMM: the square reference shape, the token x Linear shapes of MiT-B3 at 512x512 and
    // ConvNeXt's stage-1 fc2 (a long, thin A).
    let gemms =
        [(1024, 1024, 1024), (16384, 64, 256), (4096, 128, 512), (1024, 320, 1280), (256, 512, 2048), (16384, 384, 96)];
    for (m, k, n) in gemms {
        let flops = 2.0 * (m * n * k) as f64;
        v.push(BenchCase::single(
            "matmul",
            format!("{m}x{k} @ {k}x{n}"),
            flops,
            MatMul::default(),
            &[&[m, k], &[k, n]],
        )?);
    }
    // Convolutions at Mesorch shapes; weights in the kernels' packed layout [C/g, kh, kw, O].
    let convs: [(&str, [usize; 4], usize, usize, usize, usize, usize); 6] = [
        ("3x3 p1 128->128 at 64x64", [1, 128, 64, 64], 128, 3, 1, 1, 1),
        ("1x1 96->384 at 128x128", [1, 96, 128, 128], 384, 1, 1, 0, 1),
        ("dw 7x7 p3 96ch at 128x128", [1, 96, 128, 128], 96, 7, 1, 3, 96),
        ("k4 s4 6->96 at 512x512", [1, 6, 512, 512], 96, 4, 4, 0, 1),
        ("k7 s4 p3 6->64 at 512x512", [1, 6, 512, 512], 64, 7, 4, 3, 1),
        ("3x3 p1 192->192 at 256x256 (gate)", [1, 192, 256, 256], 192, 3, 1, 1, 1),
    ];
    for (name, x, o, k, s, p, g) in convs {
        let conv = Conv2d { stride: [s, s], padding: [p, p], groups: g, ..Default::default() };
        let (ho, wo) = ((x[2] + 2 * p - k) / s + 1, (x[3] + 2 * p - k) / s + 1);
        let flops = 2.0 * (o * ho * wo * (x[1] / g) * k * k) as f64;
        v.push(BenchCase::single("conv2d", name.into(), flops, conv, &[&x, &[x[1] / g, k, k, o], &[o]])?);
    }
    // Depthwise convs on tokens: MiT's Mix-FFN 3x3 + GELU at stages 1 and 3 (hidden 256 at
    // 128x128, 1280 at 32x32) and ConvNeXt's 7x7 at stage 1: tokens -> NCHW -> conv -> tokens,
    // which the planner folds into one conv on tokens.
    for (c, hw, k, act) in [(256usize, 128usize, 3usize, Act::Gelu), (1280, 32, 3, Act::Gelu), (96, 128, 7, Act::None)]
    {
        use crate::models::blocks::{nchw_to_tokens, tokens_to_nchw};
        let mut b = GraphBuilder::new();
        let t = b.input("in0", &[1, hw * hw, c]);
        let w = b.input("in1", &[1, k, k, c]);
        let bias = b.input("in2", &[c]);
        let m = tokens_to_nchw(&mut b, "in", t, [hw, hw])?;
        let conv = Conv2d { padding: [k / 2, k / 2], groups: c, act, ..Default::default() };
        let y = b.add("op", conv, &[m, w, bias])?;
        let out = nchw_to_tokens(&mut b, "out", y)?;
        b.output("out", out);
        let inputs = random_inputs(&[&[1, hw * hw, c], &[1, k, k, c], &[c]]);
        v.push(BenchCase {
            family: "conv2d",
            name: format!(
                "dw {k}x{k} p{} {c}ch at {hw}x{hw}{} on tokens",
                k / 2,
                if act == Act::Gelu { " + GELU" } else { "" }
            ),
            flops: 2.0 * (c * hw * hw * k * k) as f64,
            bytes: 4.0 * (2 * c * hw * hw + (k * k + 1) * c) as f64,
            graph: b.finish(),
            inputs,
        });
    }
    // Mesorch decoder: ConvTranspose2d k4 s2 p1 768->384 from 16x16 and 384->192 from 32x32; weights
    // packed [C_in, kh, kw, O]. Each by the device's choice and with the gather kernel forced.
    for (ci, co, hw) in [(768usize, 384usize, 16usize), (384, 192, 32)] {
        for (tag, variant) in [("", None), (", gather forced", Some(ConvTransposeVariant::Gather))] {
            v.push(BenchCase::single(
                "conv_transpose2d",
                format!("k4 s2 p1 {ci}->{co} {hw}->{}{tag}", 2 * hw),
                2.0 * (co * hw * hw * ci * 16) as f64,
                ConvTranspose2d { variant, ..ConvTranspose2d::new(2, 1) },
                &[&[1, ci, hw, hw], &[ci, 4, 4, co], &[co]],
            )?);
        }
    }
    // MiT stages of Mesorch at 512x512: queries 16384/4096/1024/256, keys 256, head dim 64.
    for (lq, lk, h, d) in [(16384, 256, 1, 64), (4096, 256, 2, 64), (1024, 256, 5, 64), (256, 256, 8, 64)] {
        v.push(BenchCase::single(
            "attention",
            format!("Lq {lq} Lk {lk} heads {h} D {d}"),
            4.0 * (lq * lk * d * h) as f64,
            Attention::new(h, d),
            &[&[1, lq, h * d], &[1, lk, h * d], &[1, lk, h * d]],
        )?);
    }
    // U2-Net-MST's multi-scale attention at 256x256 input: the 16x16x512 bottleneck, 4 groups of
    // 128 channels with patches 16/8/4/2 (tokens 1/4/16/64, token dims 32768/8192/2048/512).
    let (shape, patches) = ([1, 512, 16, 16], [16, 8, 4, 2]);
    let flops: f64 = patches.iter().map(|&p| 4.0 * ((16 / p) as f64).powi(4) * (128 * p * p) as f64).sum();
    for variant in [None, Some(MsAttnVariant::Fused)] {
        v.push(BenchCase::single(
            "msattn",
            format!("1x512x16x16 patches 16/8/4/2 ({})", variant.map_or("default".into(), |v| format!("{v:?}"))),
            flops,
            MsAttn { patches: patches.to_vec(), variant },
            &[&shape, &shape, &shape],
        )?);
    }
    // A fine-patch head: 64x64 map, 64 channels in 2 groups with patches 2 and 4 (1024 / 256 tokens).
    let (shape, patches) = ([1, 64, 64, 64], [2, 4]);
    let flops: f64 = patches.iter().map(|&p| 4.0 * ((64 / p) as f64).powi(4) * (32 * p * p) as f64).sum();
    for variant in [None, Some(MsAttnVariant::Fused)] {
        v.push(BenchCase::single(
            "msattn",
            format!("1x64x64x64 patches 2/4 ({})", variant.map_or("default".into(), |v| format!("{v:?}"))),
            flops,
            MsAttn { patches: patches.to_vec(), variant },
            &[&shape, &shape, &shape],
        )?);
    }
    v.push(BenchCase::single(
        "layer_norm",
        "channels 1x96x128x128".into(),
        0.0,
        LayerNorm::channels(1e-6),
        &[&[1, 96, 128, 128], &[96], &[96]],
    )?);
    v.push(BenchCase::single(
        "layer_norm",
        "tokens 1x16384x64".into(),
        0.0,
        LayerNorm::last(1e-6),
        &[&[1, 16384, 64], &[64], &[64]],
    )?);
    // ConvNeXt's NCHW -> tokens at stage 1 and back (the transpose kernel), and a general
    // permute of the same size for comparison.
    for (name, perm) in [
        ("1x96x128x128 to tokens", vec![0, 2, 3, 1]),
        ("tokens 1x128x128x96 to NCHW (as 1x96x128x128 perm 0,3,1,2)", vec![0, 3, 1, 2]),
        ("1x96x128x128 perm 0,3,2,1 (general kernel)", vec![0, 3, 2, 1]),
    ] {
        v.push(BenchCase::single("permute", name.into(), 0.0, Permute { perm }, &[&[1, 96, 128, 128]])?);
    }
    v.push(BenchCase::single(
        "softmax",
        "scores 1x1x16384x256".into(),
        0.0,
        Softmax { axis: -1 },
        &[&[1, 1, 16384, 256]],
    )?);
    v.push(BenchCase::single(
        "elementwise",
        "GELU 1x384x128x128".into(),
        0.0,
        Unary { act: Act::Gelu },
        &[&[1, 384, 128, 128]],
    )?);
    // A residual add (same shapes: the flat kernel) and a per-channel one (broadcast: the general kernel).
    for (name, b) in [("add 1x96x128x128 + same", vec![1, 96, 128, 128]), ("add 1x96x128x128 + 96x1x1", vec![96, 1, 1])]
    {
        v.push(BenchCase::single("elementwise", name.into(), 0.0, Binary::add(), &[&[1, 96, 128, 128], &b])?);
    }
    // Full-image DCT high-pass of a 512x512 RGB image: 4 matrix products of 512^3 per channel.
    v.push(BenchCase::single(
        "dct",
        "high-pass 1x3x512x512".into(),
        3.0 * 4.0 * 2.0 * 512f64.powi(3),
        DctFilter::high(),
        &[&[1, 3, 512, 512]],
    )?);
    // The copy-move detector's whole graph: a 1024 x 768 image (analysed as it is) and a 12 MP
    // photo (resized to about 1 MP inside the graph). Flops count the Zernike pass only (24
    // multiply-adds per tap of the 17 x 17 patch); the PatchMatch steps are bandwidth.
    for (h, w) in [(768, 1024), (3024, 4032)] {
        let cfg = crate::models::copymove::CopyMoveConfig::default();
        let [ah, aw] = cfg.analysis_size([h, w]);
        let side = 2 * cfg.patch_radius + 1;
        v.push(BenchCase {
            family: "copymove",
            name: format!("detector {w}x{h} (analysed at {aw}x{ah})"),
            flops: 2.0 * 24.0 * (side * side * ah * aw) as f64,
            bytes: 4.0 * (3 * h * w + 16 * ah * aw) as f64,
            graph: crate::models::copymove::build_copymove(h, w, &cfg)?,
            inputs: vec![RandomInput { name: "image".into(), shape: vec![1, 3, h, w], seed: 1, range: (0.0, 255.0) }],
        });
    }
    Ok(v)
}

#[derive(Clone, Debug)]
pub struct Measured {
    pub gpu_ms: Option<f64>,
    pub wall_ms: f64,
}

impl Measured {
    pub fn best_ms(&self) -> f64 {
        self.gpu_ms.unwrap_or(self.wall_ms)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Plan once, warm up once, then the median of `reps` runs (GPU time and wall time).
pub fn measure(gpu: &Gpu, case: &BenchCase, reps: usize) -> Result<Measured> {
    let plan = Plan::new(gpu, &case.graph)?;
    let inputs = case.make_inputs();
    let feed: Vec<(&str, &Tensor)> = inputs.iter().map(|(n, t)| (n.as_str(), t)).collect();
    plan.run(&feed)?;
    let timed = gpu.has(wgpu::Features::TIMESTAMP_QUERY);
    let (mut gpu_ms, mut wall_ms) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        let t0 = std::time::Instant::now();
        if timed {
            let (_, t) = plan.run_profiled(&feed)?;
            gpu_ms.push(t.iter().map(|n| n.micros).sum::<f64>() / 1e3);
        } else {
            plan.run(&feed)?;
        }
        wall_ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Measured { gpu_ms: timed.then(|| median(gpu_ms)), wall_ms: median(wall_ms) })
}
