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
use crate::models::model::{Family, InputMode, MapKind, MapRef, Model, Scale};
use crate::models::weights::{WeightStore, Weights};
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
use crate::report::verdict::{Calibration, ScoreRule, CALIBRATION_SOURCE};
use crate::tensor::Tensor;

pub mod config;

pub use config::{expected_keys, MesorchConfig, Variant};

/// The registry entries: Mesorch and Mesorch-P.
pub struct MesorchFamily(pub Variant);

pub static MESORCH: MesorchFamily = MesorchFamily(Variant::Mesorch);
pub static MESORCH_P: MesorchFamily = MesorchFamily(Variant::MesorchP);

impl Family for MesorchFamily {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn aliases(&self) -> &'static [&'static str] {
        match self.0 {
            Variant::Mesorch => &[],
            Variant::MesorchP => &["mesorch-p"],
        }
    }
    fn about(&self) -> &'static str {
        match self.0 {
            Variant::Mesorch => "Mesorch: ConvNeXt and MiT on DCT bands, 8 scales weighed by a gate",
            Variant::MesorchP => "Mesorch-P: the pruned Mesorch, 5 scales summed, no gate",
        }
    }
    fn needs_weights(&self) -> bool {
        true
    }
    /// Both have `convnext.*` and `segformer.*` keys; only Mesorch has `gate.*`.
    fn recognises(&self, has_prefix: &dyn Fn(&str) -> bool) -> bool {
        has_prefix("convnext.") && has_prefix("segformer.") && has_prefix("gate.") == (self.0 == Variant::Mesorch)
    }
    /// Mesorch as measured with the shipped weights/mesorch-compact.safetensors (resized to its
    /// input): its blurred maximum does not separate pristine from forged synthetic images (AUC
    /// 0.48, every candidate 0.46-0.50; docs/report.md), so most images are `inconclusive`.
    /// Mesorch-P ships no weights: uncalibrated.
    fn calibration(&self) -> Calibration {
        match self.0 {
            Variant::Mesorch => Calibration::measured(
                ScoreRule::BlurMax { box_frac: 0.01 },
                0.801,
                0.701,
                0.031,
                128,
                CALIBRATION_SOURCE,
            )
            .for_weights("c80548ef472d185db47dbabbfbfa4259b971001bbe8ef5b0ac5d4477c056cbf6"),
            Variant::MesorchP => Calibration::uncalibrated(),
        }
    }
    fn configure(&self, weights: &WeightStore) -> Result<Box<dyn Model>> {
        for k in ["convnext.stem.0.weight", "segformer.patch_embed1.proj.weight"] {
            if !weights.contains(k) {
                return Err(Error::invalid(format!("cannot read the {} configuration: no '{k}'", self.name())));
            }
        }
        let cfg = MesorchConfig::from_shapes(&weights.shapes(), self.0, &weights.metadata);
        MesorchConfig::check_input(cfg.input)?;
        Ok(Box::new(MesorchModel { cfg, opts: MesorchOptions::default() }))
    }
}

/// A configured Mesorch-family model.
#[derive(Clone, Debug)]
pub struct MesorchModel {
    pub cfg: MesorchConfig,
    pub opts: MesorchOptions,
}

impl Model for MesorchModel {
    fn name(&self) -> &str {
        self.cfg.variant.name()
    }
    fn input(&self) -> InputMode {
        InputMode::Resized(self.cfg.input)
    }
    fn build(&self, hw: [usize; 2], weights: &WeightStore) -> Result<Graph> {
        let cfg = MesorchConfig { input: hw, ..self.cfg.clone() };
        Ok(build_mesorch_with(&cfg, weights, &self.opts)?.0)
    }
    fn expected_keys(&self) -> Vec<(String, Vec<usize>)> {
        expected_keys(&self.cfg)
    }
    fn unused_prefixes(&self) -> Vec<&'static str> {
        config::unused_prefixes(self.cfg.variant)
    }
    fn config_json(&self) -> String {
        self.cfg.to_json()
    }
    /// Each scale's logit (a channel of `scale_logits`, at H/4 x W/4) and, for Mesorch, its
    /// share of the gate.
    fn scales(&self) -> Vec<Scale> {
        let gate = self.cfg.has_gate();
        (self.cfg.scale_names().iter().enumerate())
            .map(|(i, name)| Scale {
                name: name.to_string(),
                map: MapRef { output: "scale_logits", channel: i, kind: MapKind::Logit },
                weight: gate.then_some(MapRef { output: "gate", channel: i, kind: MapKind::Weight }),
            })
            .collect()
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
    MesorchConfig::check_input(cfg.input)?;
    let w = w.root();
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
    let cs = convnext::encoder(&mut b, &w.pp("convnext"), &cspec, cnx_in)?;
    let mspec = MitSpec {
        in_chans: 6,
        dims: cfg.mit_dims.to_vec(),
        heads: cfg.mit_heads.to_vec(),
        depths: cfg.mit_depths.to_vec(),
        sr: cfg.mit_sr.to_vec(),
        mlp_ratio: cfg.mit_mlp_ratio,
    };
    let ss = mit::encoder(&mut b, &w.pp("segformer"), &mspec, mit_in)?;

    // Decoder: ConvTranspose2d(k4, s2, p1) chains bring every scale to H/4, then one 1x1 conv each.
    let mut logits = Vec::new();
    for (j, name) in cfg.scale_names().iter().enumerate() {
        let (enc, stage) = cfg.scale(j);
        let (feats, dims) = if enc == 'c' { (&cs, &cfg.cnx_dims) } else { (&ss, &cfg.mit_dims) };
        let mut t = feats[stage - 1];
        if opts.debug_outputs {
            b.output(name, t);
        }
        for step in 0..stage - 1 {
            let up = w.pp(config::upsample_key(name, stage, step));
            let (ci, co) = (dims[stage - 1 - step], dims[stage - 2 - step]);
            let (tw, tb) = (up.weight(&[ci, co, 4, 4])?, up.bias(&[co])?);
            t = conv_transpose2d(&mut b, up.path(), t, tw, Some(tb), ConvTranspose2d::new(2, 1))?;
        }
        if opts.debug_outputs && stage > 1 {
            b.output(&format!("up_{name}"), t);
        }
        let inv = w.pp("inverse").pp(j);
        let (iw, ib) = (inv.weight(&[1, dims[0], 1, 1])?, inv.bias(&[1])?);
        logits.push(conv2d(&mut b, inv.path(), t, iw, Some(ib), Conv2d::new(1, 0))?);
    }
    let scale_logits = b.add("scale_logits", Concat { axis: 1 }, &logits)?;
    let s = logits.len();

    let (gate, weighted) = if cfg.is_p() {
        (None, scale_logits)
    } else {
        let gin = b.add("gate.input", Concat { axis: 1 }, &[x, high, low])?;
        let g = gate(&mut b, &w.pp("gate"), cfg, gin, opts.fold_gate)?;
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
fn gate(b: &mut GraphBuilder, w: &Weights, cfg: &MesorchConfig, x: ValueId, fold: bool) -> Result<ValueId> {
    let (g, gh, cin) = (cfg.gate_dim, cfg.gate_hidden, b.shape(x)[1]);
    let c1 = w.pp("conv1");
    let y = conv2d(b, c1.path(), x, c1.weight(&[g, cin, 7, 7])?, Some(c1.bias(&[g])?), Conv2d::new(2, 3))?;
    let inv = w.pp("invert");
    let ln = inv.pp(0);
    let n = layer_norm(b, ln.path(), y, ln.weight(&[g])?, ln.bias(&[g])?, NormAxis::Channels, 1e-6)?;
    let (l1, l2, l3) = (inv.pp(1), inv.pp(2), inv.pp(3));
    let (w1, b1) = (l1.weight(&[g, g, 3, 3])?, l1.bias(&[g])?);
    let (w2, b2) = (l2.weight(&[gh, g, 1, 1])?, l2.bias(&[gh])?);
    let (w3, b3) = (l3.weight(&[g, gh, 1, 1])?, l3.bias(&[g])?);
    let r = if fold {
        let (wf, bf) = fold_gate_convs(&w1, &b1, &w2, &b2, &w3, &b3);
        conv2d(b, &inv.key("1-3"), n, wf, Some(bf), Conv2d::new(1, 1).act(Act::Gelu))?
    } else {
        let r = conv2d(b, l1.path(), n, w1, Some(b1), Conv2d::new(1, 1))?;
        let r = conv2d(b, l2.path(), r, w2, Some(b2), Conv2d::new(1, 0))?;
        conv2d(b, l3.path(), r, w3, Some(b3), Conv2d::new(1, 0).act(Act::Gelu))?
    };
    let y = b.add(&w.key("residual"), Binary::add(), &[y, r])?;
    let n_out = cfg.scale_names().len();
    let c2 = w.pp("conv2");
    let s = conv2d(b, c2.path(), y, c2.weight(&[n_out, g, 7, 7])?, Some(c2.bias(&[n_out])?), Conv2d::new(2, 3))?;
    b.add(w.path(), Softmax { axis: 1 }, &[s])
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

#[cfg(test)]
mod tests;
