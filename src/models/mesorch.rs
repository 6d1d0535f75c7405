//! Mesorch and Mesorch-P (scu-zjz/Mesorch) as a static graph; see `docs` in
//! `/work/shared/specs/mesorch.md` and our PyTorch reference `tools/mesorch_ref.py`.
//!
//! ```text
//! image [1,3,H,W] ─┬─ DCT high ─ minmax ─ high ─┐
//!                  ├─ DCT low ── minmax ─ low ──┤
//!  cat[x, high] ── ConvNeXt ── c1..c4 ─┐        │
//!  cat[x, low] ─── MiT ─────── s1..s4 ─┴─ ConvTranspose chains to H/4 ─ inverse 1x1 ─ scale_logits
//!  cat[x, high, low] ─ gate (ScoreNetwork) ─ softmax over scales ─ gate (Mesorch only)
//!  logit = sum_i gate_i * scale_logits_i  (Mesorch-P: plain sum) ─ bilinear (align_corners) ─ sigmoid ─ prob
//! ```

use crate::error::{Error, Result};
use crate::graph::{Graph, GraphBuilder, ValueId};
use crate::models::blocks::convnext::{self, ConvNextSpec};
use crate::models::blocks::mit::{self, MitSpec};
use crate::models::weights::WeightStore;
use crate::ops::act::Act;
use crate::ops::conv2d::{conv2d, Conv2d};
use crate::ops::conv_transpose2d::{conv_transpose2d, ConvTranspose2d};
use crate::ops::dct::{DctFilter, DctMask};
use crate::ops::elementwise::{Binary, Unary};
use crate::ops::layer_norm::{layer_norm, NormAxis};
use crate::ops::layout::Concat;
use crate::ops::minmax::MinMaxNorm;
use crate::ops::resize::Resize;
use crate::ops::softmax::Softmax;
use crate::tensor::Tensor;
use crate::weights::{Arch, ArchConfig};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// 8 scales (c1..c4, s1..s4) weighted by the gate network.
    Mesorch,
    /// 5 scales (c1, c3, s2, s3, s4), plain sum, no gate, ConvNeXt stage 3 dropped.
    MesorchP,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MesorchConfig {
    pub variant: Variant,
    /// ConvNeXt widths and depths (Mesorch-P runs the first three stages only).
    pub cnx_dims: [usize; 4],
    pub cnx_depths: [usize; 4],
    pub cnx_mlp_ratio: usize,
    /// MiT widths, heads, depths and spatial-reduction ratios.
    pub mit_dims: [usize; 4],
    pub mit_heads: [usize; 4],
    pub mit_depths: [usize; 4],
    pub mit_sr: [usize; 4],
    pub mit_mlp_ratio: usize,
    /// Gate (ScoreNetwork) width and the hidden width of its 1x1 pair.
    pub gate_dim: usize,
    pub gate_hidden: usize,
    /// Input (and output) size `[H, W]`, multiples of 32 (official: 512 x 512).
    pub input: [usize; 2],
    pub dct_high_frac: f64,
    pub dct_low_frac: f64,
}

impl MesorchConfig {
    /// The official models: ConvNeXt-Tiny + MiT-B3 at 512 x 512.
    pub fn full(variant: Variant) -> Self {
        MesorchConfig {
            variant,
            cnx_dims: [96, 192, 384, 768],
            cnx_depths: [3, 3, 9, 3],
            cnx_mlp_ratio: 4,
            mit_dims: [64, 128, 320, 512],
            mit_heads: [1, 2, 5, 8],
            mit_depths: [3, 4, 18, 3],
            mit_sr: [8, 4, 2, 1],
            mit_mlp_ratio: 4,
            gate_dim: 192,
            gate_hidden: 768,
            input: [512, 512],
            dct_high_frac: 0.05,
            dct_low_frac: 0.95,
        }
    }

    pub fn is_p(&self) -> bool {
        self.variant == Variant::MesorchP
    }

    /// ConvNeXt stages that run (4, or 3 for Mesorch-P).
    pub fn cnx_stages(&self) -> usize {
        if self.is_p() {
            3
        } else {
            4
        }
    }

    /// Names of the scales in `scale_logits` order.
    pub fn scale_names(&self) -> &'static [&'static str] {
        if self.is_p() {
            &["c1", "c3", "s2", "s3", "s4"]
        } else {
            &["c1", "c2", "c3", "c4", "s1", "s2", "s3", "s4"]
        }
    }

    /// The config of the weights in `w` (sizes read off their shapes; MiT heads from the file's
    /// metadata, else `dim / 64`), for an `input` of [H, W].
    pub fn from_weights(w: &WeightStore, input: [usize; 2]) -> Result<Self> {
        let arch = if w.contains("gate.conv1.weight") { Arch::Mesorch } else { Arch::MesorchP };
        for k in ["convnext.stem.0.weight", "segformer.patch_embed1.proj.weight"] {
            if !w.contains(k) {
                return Err(Error::invalid(format!("cannot infer config: missing '{k}'")));
            }
        }
        Ok(Self::from_arch(&ArchConfig::infer_from_shapes(&w.shapes(), arch, &w.hints()), arch, input))
    }

    /// The graph config of an architecture config (the one `convert` reads and writes).
    pub fn from_arch(a: &ArchConfig, arch: Arch, input: [usize; 2]) -> Self {
        let variant = match arch {
            Arch::Mesorch => Variant::Mesorch,
            Arch::MesorchP => Variant::MesorchP,
        };
        let mut cfg = MesorchConfig::full(variant);
        cfg.input = input;
        cfg.cnx_dims = a.convnext_dims;
        cfg.cnx_depths = a.convnext_depths;
        cfg.cnx_mlp_ratio = a.mlp_ratio;
        cfg.mit_dims = a.mit_dims;
        cfg.mit_heads = a.mit_heads;
        cfg.mit_depths = a.mit_depths;
        cfg.mit_sr = a.mit_sr_ratios;
        cfg.mit_mlp_ratio = a.mlp_ratio;
        if let Some((g, h)) = a.gate {
            cfg.gate_dim = g;
            cfg.gate_hidden = h;
        }
        cfg
    }
}

/// Build-time choices that do not change what is computed.
#[derive(Clone, Debug)]
pub struct MesorchOptions {
    /// Fold the gate's `conv3x3 -> conv1x1 -> conv1x1` (no activation between them) into a single
    /// 3x3 conv (weights composed in f64 on the host): ~4x fewer gate FLOPs, same function.
    pub fold_gate: bool,
    /// Also output the encoder features `c1..c4`, `s1..s4` and the upsampled `up_<scale>`.
    pub debug_outputs: bool,
}

impl Default for MesorchOptions {
    fn default() -> Self {
        MesorchOptions { fold_gate: true, debug_outputs: false }
    }
}

/// Where the named stages live in the built graph (all of them are graph outputs of the same name).
#[derive(Clone, Debug)]
pub struct MesorchOutputs {
    pub image: ValueId,
    pub high: ValueId,
    pub low: ValueId,
    pub scale_logits: ValueId,
    pub gate: Option<ValueId>,
    pub logit: ValueId,
    pub prob: ValueId,
}

/// Build the graph with default options: input "image" `[1, 3, H, W]` (normalized), outputs
/// "prob" `[1, 1, H, W]` and the intermediates "high", "low", "scale_logits", "gate" (Mesorch
/// only) and "logit".
pub fn build_mesorch(cfg: &MesorchConfig, w: &WeightStore) -> Result<(Graph, MesorchOutputs)> {
    build_mesorch_with(cfg, w, &MesorchOptions::default())
}

pub fn build_mesorch_with(
    cfg: &MesorchConfig,
    w: &WeightStore,
    opts: &MesorchOptions,
) -> Result<(Graph, MesorchOutputs)> {
    let [h, wd] = cfg.input;
    if h == 0 || wd == 0 || h % 32 != 0 || wd % 32 != 0 {
        return Err(Error::invalid(format!("Mesorch input must be a multiple of 32 on both sides, got {h}x{wd}")));
    }
    let mut b = GraphBuilder::new();
    let x = b.input("image", &[1, 3, h, wd]);

    // Frequency extractors: full-image DCT filter, then min-max over the whole sample.
    let hi = b.add("dct.high", DctFilter::filter(DctMask::High { ratio: cfg.dct_high_frac }), &[x])?;
    let high = b.add("high", MinMaxNorm, &[hi])?;
    let lo = b.add("dct.low", DctFilter::filter(DctMask::Low { ratio: cfg.dct_low_frac }), &[x])?;
    let low = b.add("low", MinMaxNorm, &[lo])?;
    let cnx_in = b.add("convnext.input", Concat { axis: 1 }, &[x, high])?;
    let mit_in = b.add("segformer.input", Concat { axis: 1 }, &[x, low])?;

    let ns = cfg.cnx_stages();
    let cspec = ConvNextSpec {
        in_chans: 6,
        dims: cfg.cnx_dims[..ns].to_vec(),
        depths: cfg.cnx_depths[..ns].to_vec(),
        mlp_ratio: cfg.cnx_mlp_ratio,
    };
    let cs = convnext::encoder(&mut b, w, "convnext", &cspec, cnx_in)?;
    let mspec = MitSpec {
        in_chans: 6,
        dims: cfg.mit_dims.to_vec(),
        heads: cfg.mit_heads.to_vec(),
        depths: cfg.mit_depths.to_vec(),
        sr: cfg.mit_sr.to_vec(),
        mlp_ratio: cfg.mit_mlp_ratio,
    };
    let ss = mit::encoder(&mut b, w, "segformer", &mspec, mit_in)?;

    // Decoder: ConvTranspose2d(k4, s2, p1) chains bring every scale to H/4, then one 1x1 conv each.
    let mut logits = Vec::new();
    for (j, name) in cfg.scale_names().iter().enumerate() {
        let idx = (name.as_bytes()[1] - b'0') as usize;
        let (feats, dims) = if name.starts_with('c') { (&cs, &cfg.cnx_dims) } else { (&ss, &cfg.mit_dims) };
        let mut t = feats[idx - 1];
        if opts.debug_outputs {
            b.output(name, t);
        }
        for step in 0..idx - 1 {
            let key =
                if idx == 2 { format!("upsample.upsample{name}") } else { format!("upsample.upsample{name}.{step}") };
            let (ci, co) = (dims[idx - 1 - step], dims[idx - 2 - step]);
            let tw = w.take(&format!("{key}.weight"), &[ci, co, 4, 4])?;
            let tb = w.take(&format!("{key}.bias"), &[co])?;
            t = conv_transpose2d(&mut b, &key, t, tw, Some(tb), ConvTranspose2d::new(2, 1))?;
        }
        if opts.debug_outputs && idx > 1 {
            b.output(&format!("up_{name}"), t);
        }
        let c0 = dims[0];
        let iw = w.take(&format!("inverse.{j}.weight"), &[1, c0, 1, 1])?;
        let ib = w.take(&format!("inverse.{j}.bias"), &[1])?;
        logits.push(conv2d(&mut b, &format!("inverse.{j}"), t, iw, Some(ib), Conv2d::new(1, 0))?);
    }
    let scale_logits = b.add("scale_logits", Concat { axis: 1 }, &logits)?;
    let s = logits.len();

    let (gate, weighted) = if cfg.is_p() {
        (None, scale_logits)
    } else {
        let gin = b.add("gate.input", Concat { axis: 1 }, &[x, high, low])?;
        let g = gate(&mut b, w, cfg, gin, opts.fold_gate)?;
        let m = b.add("gate.weighted", Binary::mul(), &[g, scale_logits])?;
        (Some(g), m)
    };
    // Sum over the scale channels as a 1x1 conv with unit weights.
    let logit = conv2d(&mut b, "logit", weighted, Tensor::full(&[1, s, 1, 1], 1.0), None, Conv2d::new(1, 0))?;
    let up = b.add("logit_up", Resize { out: [h, wd], align_corners: true }, &[logit])?;
    let prob = b.add("prob", Unary { act: Act::Sigmoid }, &[up])?;

    b.output("prob", prob);
    b.output("high", high);
    b.output("low", low);
    b.output("scale_logits", scale_logits);
    if let Some(g) = gate {
        b.output("gate", g);
    }
    b.output("logit", logit);
    let outs = MesorchOutputs { image: x, high, low, scale_logits, gate, logit, prob };
    Ok((b.finish(), outs))
}

/// ScoreNetwork on `cat[x, high, low]`: conv1 k7 s2 -> y; y += GELU(1x1(1x1(3x3(LN2d(y)))));
/// conv2 k7 s2 -> softmax over the scales.
fn gate(b: &mut GraphBuilder, w: &WeightStore, cfg: &MesorchConfig, x: ValueId, fold: bool) -> Result<ValueId> {
    let (g, gh, cin) = (cfg.gate_dim, cfg.gate_hidden, b.shape(x)[1]);
    let c1w = w.take("gate.conv1.weight", &[g, cin, 7, 7])?;
    let c1b = w.take("gate.conv1.bias", &[g])?;
    let y = conv2d(b, "gate.conv1", x, c1w, Some(c1b), Conv2d::new(2, 3))?;
    let n = layer_norm(
        b,
        "gate.invert.0",
        y,
        w.take("gate.invert.0.weight", &[g])?,
        w.take("gate.invert.0.bias", &[g])?,
        NormAxis::Channels,
        1e-6,
    )?;
    let (w1, b1) = (w.take("gate.invert.1.weight", &[g, g, 3, 3])?, w.take("gate.invert.1.bias", &[g])?);
    let (w2, b2) = (w.take("gate.invert.2.weight", &[gh, g, 1, 1])?, w.take("gate.invert.2.bias", &[gh])?);
    let (w3, b3) = (w.take("gate.invert.3.weight", &[g, gh, 1, 1])?, w.take("gate.invert.3.bias", &[g])?);
    let r = if fold {
        let (wf, bf) = fold_gate_convs(&w1, &b1, &w2, &b2, &w3, &b3);
        conv2d(b, "gate.invert.1-3", n, wf, Some(bf), Conv2d::new(1, 1).act(Act::Gelu))?
    } else {
        let r = conv2d(b, "gate.invert.1", n, w1, Some(b1), Conv2d::new(1, 1))?;
        let r = conv2d(b, "gate.invert.2", r, w2, Some(b2), Conv2d::new(1, 0))?;
        conv2d(b, "gate.invert.3", r, w3, Some(b3), Conv2d::new(1, 0).act(Act::Gelu))?
    };
    let y = b.add("gate.residual", Binary::add(), &[y, r])?;
    let n_out = cfg.scale_names().len();
    let c2w = w.take("gate.conv2.weight", &[n_out, g, 7, 7])?;
    let c2b = w.take("gate.conv2.bias", &[n_out])?;
    let s = conv2d(b, "gate.conv2", y, c2w, Some(c2b), Conv2d::new(2, 3))?;
    b.add("gate", Softmax { axis: 1 }, &[s])
}

/// Compose `W3 (W2 (W1 * x + b1) + b2) + b3` (3x3 conv, then two 1x1 convs) into one 3x3 conv:
/// `W = W3 W2 W1`, `b = W3 (W2 b1 + b2) + b3`, in f64.
fn fold_gate_convs(w1: &Tensor, b1: &Tensor, w2: &Tensor, b2: &Tensor, w3: &Tensor, b3: &Tensor) -> (Tensor, Tensor) {
    let (g, gh) = (w1.shape[0], w2.shape[0]);
    let per = w1.data.len() / g; // C_in * 3 * 3
                                 // M = W3 @ W2  [g, g]
    let mut m = vec![0f64; g * g];
    for o in 0..g {
        for k in 0..gh {
            let a = w3.data[o * gh + k] as f64;
            for j in 0..g {
                m[o * g + j] += a * w2.data[k * g + j] as f64;
            }
        }
    }
    let mut wf = vec![0f64; g * per];
    let mut bf = vec![0f64; g];
    for o in 0..g {
        let mut hb = b3.data[o] as f64;
        for k in 0..gh {
            hb += w3.data[o * gh + k] as f64 * b2.data[k] as f64;
        }
        for j in 0..g {
            let a = m[o * g + j];
            hb += a * b1.data[j] as f64;
            let row = &w1.data[j * per..(j + 1) * per];
            for (dst, &v) in wf[o * per..(o + 1) * per].iter_mut().zip(row) {
                *dst += a * v as f64;
            }
        }
        bf[o] = hb;
    }
    let wt = Tensor { shape: w1.shape.clone(), data: wf.into_iter().map(|v| v as f32).collect() };
    let bt = Tensor { shape: vec![g], data: bf.into_iter().map(|v| v as f32).collect() };
    (wt, bt)
}
