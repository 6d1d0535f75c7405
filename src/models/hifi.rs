//! hifi: the hierarchical coarse / mid / fine forgery localizer (issue 15; the architecture and
//! every choice its source leaves open are in docs/models/hifi.md, our PyTorch reference is
//! `tools/hifi_ref.py`). Both fusions come from one weight file; the `fusion` setting
//! (`infer --set fusion=product`) or the metadata's `config.fusion` chooses which one is "prob".
//!
//! ```text
//! image [1,3,H,W] (resized, ImageNet-normalized)
//!  ├ coarse: AvgPool(k) ─ stride-2 conv3x3-BN-ReLU stages ─ + ReLU(conv1x1(GAP)) ─ conv3x3-BN-ReLU ─ 1x1 ─ logit H/32
//!  ├ mid:    stride-2 conv3x3-BN-ReLU ─ dilated residual blocks ─ 1x1 ─ logit H/2
//!  └ fine:   conv3x3-BN-ReLU ─ dilated residual blocks ─ 1x1 ─ logit H
//! logits: coarse and mid resized bilinearly (align_corners false) to H x W, concatenated [1,3,H,W]
//! p_scales = sigmoid(logits); product: p = P_coarse P_mid P_fine
//! learned: gate(concat(logits, fine features)) ─ softmax over the 3 channels ─ w; p = sum_s w_s P_s
//! ```
//! Per-scale maps (`--scales`): `coarse`, `mid`, `fine` (each scale's probability at H x W) and,
//! for the learned fusion, the gate's weight for each.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::graph::{Graph, GraphBuilder, ValueId};
use crate::models::blocks::conv_bn;
use crate::models::model::{Family, Findings, InputMode, MapKind, MapRef, Model, Scale};
use crate::models::weights::{WeightStore, Weights};
use crate::ops::act::Act;
use crate::ops::conv2d::{conv2d, Conv2d};
use crate::ops::elementwise::{Binary, BinaryKind, Unary};
use crate::ops::layout::{Concat, Slice};
use crate::ops::pool::{AdaptiveAvgPool2d, AvgPool2d};
use crate::ops::resize::Resize;
use crate::ops::softmax::Softmax;
use crate::report::verdict::{Calibration, ScoreRule};
use crate::tensor::Tensor;

/// The scales, in the order of the logits' and the gate's channels.
pub const SCALES: [&str; 3] = ["coarse", "mid", "fine"];

/// How the three scale maps become one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fusion {
    /// `p = sum_s w_s P_s`, `w` the gate's per-pixel softmax over the scales.
    Learned,
    /// `p = P_coarse P_mid P_fine` (the source's formula).
    Product,
}

impl Fusion {
    pub fn name(self) -> &'static str {
        match self {
            Fusion::Learned => "learned",
            Fusion::Product => "product",
        }
    }
    pub fn parse(s: &str) -> Result<Fusion> {
        match s {
            "learned" => Ok(Fusion::Learned),
            "product" => Ok(Fusion::Product),
            _ => Err(Error::invalid(format!("hifi fusion must be 'learned' or 'product', got '{s}'"))),
        }
    }
}

/// The network's sizes (channel counts as the graph uses them, after the width multiplier).
#[derive(Clone, Debug, PartialEq)]
pub struct HifiConfig {
    /// Input `[H, W]`, multiples of [`HifiConfig::multiple`].
    pub input: [usize; 2],
    /// The reference's width multiplier (recorded only; the channel counts below are what counts).
    pub width: f64,
    /// The coarse branch's first op: AvgPool(k, stride k).
    pub coarse_pool: usize,
    /// Channels of the coarse branch's stride-2 stages.
    pub coarse_channels: Vec<usize>,
    /// conv3x3s per coarse stage (the first one strided).
    pub coarse_depth: Vec<usize>,
    pub coarse_head: usize,
    pub mid_channels: usize,
    /// One residual block per entry (both its convs dilated by it), at H/2.
    pub mid_dilations: Vec<usize>,
    pub fine_channels: usize,
    pub fine_dilations: Vec<usize>,
    pub gate_channels: usize,
    /// The gate sees the fine features besides the three logits.
    pub gate_fine_feats: bool,
    pub fusion: Fusion,
}

impl Default for HifiConfig {
    /// The reference's compact config at 512 x 512.
    fn default() -> Self {
        HifiConfig {
            input: [512, 512],
            width: 1.0,
            coarse_pool: 4,
            coarse_channels: vec![48, 96, 192],
            coarse_depth: vec![1, 2, 2],
            coarse_head: 96,
            mid_channels: 32,
            mid_dilations: vec![1, 2, 4, 8],
            fine_channels: 16,
            fine_dilations: vec![1, 2, 4, 8],
            gate_channels: 16,
            gate_fine_feats: true,
            fusion: Fusion::Learned,
        }
    }
}

impl HifiConfig {
    /// The coarse branch's total stride: H and W must be multiples of it.
    pub fn multiple(&self) -> usize {
        self.coarse_pool << self.coarse_channels.len()
    }

    fn gate_in(&self) -> usize {
        3 + if self.gate_fine_feats { self.fine_channels } else { 0 }
    }

    /// Channel counts and block counts read off the weights' shapes; dilations, pool, fusion and
    /// width from the metadata's `config` (the reference's `HifiConfig.to_json()` or ours), input
    /// from `input_size`; the compact config's values where neither says.
    pub fn from_weights(w: &WeightStore) -> Result<Self> {
        let dim = |k: &str, i: usize| {
            w.get(k)
                .and_then(|t| t.shape.get(i).copied())
                .ok_or_else(|| Error::invalid(format!("cannot read the hifi configuration: no '{k}'")))
        };
        let meta = |k: &str| w.metadata.get(k).and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
        let mut cfg = HifiConfig::default();
        let c = meta("config").unwrap_or_default();
        let list = |k: &str| serde_json::from_value::<Vec<usize>>(c[k].clone()).ok();
        if let Some(x) = c["width"].as_f64() {
            cfg.width = x;
        }
        if let Some(p) = c["coarse_pool"].as_u64() {
            cfg.coarse_pool = p as usize;
        }
        if let Some(f) = c["fusion"].as_str() {
            cfg.fusion = Fusion::parse(f)?;
        }
        if let Some(hw) = meta("input_size").and_then(|v| serde_json::from_value::<[usize; 2]>(v).ok()) {
            cfg.input = hw;
        }
        cfg.coarse_channels.clear();
        cfg.coarse_depth.clear();
        for i in 0.. {
            if !w.contains(&format!("coarse.stages.{i}.0.conv.weight")) {
                break;
            }
            cfg.coarse_channels.push(dim(&format!("coarse.stages.{i}.0.conv.weight"), 0)?);
            let depth = (0..).take_while(|j| w.contains(&format!("coarse.stages.{i}.{j}.conv.weight"))).count();
            cfg.coarse_depth.push(depth);
        }
        if cfg.coarse_channels.is_empty() {
            return Err(Error::invalid("cannot read the hifi configuration: no 'coarse.stages.0.0.conv.weight'"));
        }
        cfg.coarse_head = dim("coarse.head.conv.weight", 0)?;
        cfg.mid_channels = dim("mid.stem.conv.weight", 0)?;
        cfg.fine_channels = dim("fine.stem.conv.weight", 0)?;
        cfg.gate_channels = dim("gate.conv1.weight", 0)?;
        cfg.gate_fine_feats = dim("gate.conv1.weight", 1)? != 3;
        for (branch, dil) in [("mid", &mut cfg.mid_dilations), ("fine", &mut cfg.fine_dilations)] {
            let n = (0..).take_while(|i| w.contains(&format!("{branch}.blocks.{i}.conv1.weight"))).count();
            let key = format!("{branch}_dilations");
            *dil = match list(&key) {
                Some(d) if d.len() == n => d,
                Some(d) => {
                    return Err(Error::invalid(format!(
                        "hifi: config {key} {d:?} has {} entries but the weights have {n} {branch} blocks",
                        d.len()
                    )))
                }
                None if n <= dil.len() => dil[..n].to_vec(),
                None => return Err(Error::invalid(format!("hifi: {n} {branch} blocks and no {key} in the config"))),
            };
        }
        Ok(cfg)
    }

    pub fn to_json(&self) -> String {
        serde_json::json!({
            "width": self.width,
            "coarse_pool": self.coarse_pool,
            "coarse_channels": self.coarse_channels,
            "coarse_depth": self.coarse_depth,
            "coarse_head": self.coarse_head,
            "mid_channels": self.mid_channels,
            "mid_dilations": self.mid_dilations,
            "fine_channels": self.fine_channels,
            "fine_dilations": self.fine_dilations,
            "gate_channels": self.gate_channels,
            "gate_fine_feats": self.gate_fine_feats,
            "fusion": self.fusion.name(),
        })
        .to_string()
    }

    fn check(&self) -> Result<()> {
        let m = self.multiple();
        if self.input.iter().any(|&d| d == 0 || d % m != 0) {
            return Err(Error::invalid(format!(
                "hifi input must be a multiple of {m} on both sides, got {}x{}",
                self.input[1], self.input[0]
            )));
        }
        if self.coarse_pool == 0
            || self.coarse_depth.contains(&0)
            || self.mid_dilations.iter().chain(&self.fine_dilations).any(|&d| d == 0)
        {
            return Err(Error::invalid("hifi: pool, stage depths and dilations must be at least 1"));
        }
        Ok(())
    }
}

/// Every key the model reads, with its shape (BatchNorm: weight, bias, running_mean, running_var).
pub fn expected_keys(cfg: &HifiConfig) -> Vec<(String, Vec<usize>)> {
    let mut k: Vec<(String, Vec<usize>)> = Vec::new();
    let mut add = |name: String, shape: &[usize]| k.push((name, shape.to_vec()));
    let conv_bn = |add: &mut dyn FnMut(String, &[usize]), conv: &str, bn: &str, shape: [usize; 4]| {
        add(format!("{conv}.weight"), &shape);
        for s in ["weight", "bias", "running_mean", "running_var"] {
            add(format!("{bn}.{s}"), &[shape[0]]);
        }
    };
    let mut cin = 3;
    for (i, (&c, &depth)) in cfg.coarse_channels.iter().zip(&cfg.coarse_depth).enumerate() {
        for j in 0..depth {
            let p = format!("coarse.stages.{i}.{j}");
            conv_bn(&mut add, &format!("{p}.conv"), &format!("{p}.bn"), [c, cin, 3, 3]);
            cin = c;
        }
    }
    add("coarse.ctx.weight".into(), &[cin, cin, 1, 1]);
    add("coarse.ctx.bias".into(), &[cin]);
    conv_bn(&mut add, "coarse.head.conv", "coarse.head.bn", [cfg.coarse_head, cin, 3, 3]);
    add("coarse.logit.weight".into(), &[1, cfg.coarse_head, 1, 1]);
    add("coarse.logit.bias".into(), &[1]);
    for (b, c, dil) in [("mid", cfg.mid_channels, &cfg.mid_dilations), ("fine", cfg.fine_channels, &cfg.fine_dilations)]
    {
        conv_bn(&mut add, &format!("{b}.stem.conv"), &format!("{b}.stem.bn"), [c, 3, 3, 3]);
        for i in 0..dil.len() {
            for n in [1, 2] {
                let p = format!("{b}.blocks.{i}");
                conv_bn(&mut add, &format!("{p}.conv{n}"), &format!("{p}.bn{n}"), [c, c, 3, 3]);
            }
        }
        add(format!("{b}.logit.weight"), &[1, c, 1, 1]);
        add(format!("{b}.logit.bias"), &[1]);
    }
    let g = cfg.gate_channels;
    conv_bn(&mut add, "gate.conv1", "gate.bn1", [g, cfg.gate_in(), 3, 3]);
    conv_bn(&mut add, "gate.conv2", "gate.bn2", [g, g, 3, 3]);
    add("gate.out.weight".into(), &[3, g, 1, 1]);
    add("gate.out.bias".into(), &[3]);
    k
}

/// A 1x1 conv with bias to `co` channels.
fn conv1x1(b: &mut GraphBuilder, w: &Weights, x: ValueId, co: usize, ci: usize, act: Act) -> Result<ValueId> {
    let (cw, cb) = (w.weight(&[co, ci, 1, 1])?, w.bias(&[co])?);
    conv2d(b, w.path(), x, cw, Some(cb), Conv2d::new(1, 0).act(act))
}

/// conv3x3(d)-BN-ReLU-conv3x3(d)-BN, + x, ReLU.
fn res_block(b: &mut GraphBuilder, w: &Weights, x: ValueId, c: usize, d: usize) -> Result<ValueId> {
    let p = Conv2d::new(1, d).dilation(d);
    let y = conv_bn(b, &w.pp("conv1"), &w.pp("bn1"), x, [c, c, 3, 3], p.clone(), Act::Relu)?;
    let z = conv_bn(b, &w.pp("conv2"), &w.pp("bn2"), y, [c, c, 3, 3], p, Act::None)?;
    b.add(&w.key("out"), Binary { kind: BinaryKind::Add, act: Act::Relu }, &[x, z])
}

/// A branch of stem + residual blocks + 1x1 logit: (stem, features, logit).
fn dilated_branch(
    b: &mut GraphBuilder,
    w: &Weights,
    x: ValueId,
    c: usize,
    stride: usize,
    dilations: &[usize],
) -> Result<(ValueId, ValueId, ValueId)> {
    let stem = conv_bn(b, &w.pp("stem.conv"), &w.pp("stem.bn"), x, [c, 3, 3, 3], Conv2d::new(stride, 1), Act::Relu)?;
    let mut f = stem;
    for (i, &d) in dilations.iter().enumerate() {
        f = res_block(b, &w.pp("blocks").pp(i), f, c, d)?;
    }
    let logit = conv1x1(b, &w.pp("logit"), f, 1, c, Act::None)?;
    Ok((stem, f, logit))
}

/// The graph at input `cfg.input`: input "image" (normalized RGB), outputs "prob" (the chosen
/// fusion), "prob_product", "p_scales" `[1, 3, H, W]` (coarse, mid, fine), and for the learned
/// fusion "prob_learned" and "gate" `[1, 3, H, W]`. With `stages`, also every intermediate the
/// reference names (coarse_pool, coarse_feat, coarse_ctx, coarse_head, logit_coarse_lo, mid_stem,
/// mid_feat, logit_mid_lo, fine_stem, fine_feat, logits, and gate_hidden, gate_logits).
pub fn build_hifi(cfg: &HifiConfig, weights: &WeightStore, stages: bool) -> Result<Graph> {
    cfg.check()?;
    let w = weights.root();
    let [h, wd] = cfg.input;
    let mut b = GraphBuilder::new();
    let image = b.input("image", &[1, 3, h, wd]);
    let mut named: Vec<(&str, ValueId)> = Vec::new();

    // coarse
    let cw = w.pp("coarse");
    let k = cfg.coarse_pool;
    let pool = b.add("coarse.pool", AvgPool2d::new(k, k, 0, false, true), &[image])?;
    let mut x = pool;
    let mut cin = 3;
    for (i, (&c, &depth)) in cfg.coarse_channels.iter().zip(&cfg.coarse_depth).enumerate() {
        for j in 0..depth {
            let s = cw.pp("stages").pp(i).pp(j);
            let p = Conv2d::new(if j == 0 { 2 } else { 1 }, 1);
            x = conv_bn(&mut b, &s.pp("conv"), &s.pp("bn"), x, [c, cin, 3, 3], p, Act::Relu)?;
            cin = c;
        }
    }
    let feat = x;
    let gap = b.add("coarse.gap", AdaptiveAvgPool2d { out: [1, 1] }, &[feat])?;
    let ctx = conv1x1(&mut b, &cw.pp("ctx"), gap, cin, cin, Act::Relu)?;
    let ctx = b.add("coarse.ctx_add", Binary::add(), &[feat, ctx])?;
    let hd = cw.pp("head");
    let head =
        conv_bn(&mut b, &hd.pp("conv"), &hd.pp("bn"), ctx, [cfg.coarse_head, cin, 3, 3], Conv2d::new(1, 1), Act::Relu)?;
    let lc = conv1x1(&mut b, &cw.pp("logit"), head, 1, cfg.coarse_head, Act::None)?;
    named.extend([("coarse_pool", pool), ("coarse_feat", feat), ("coarse_ctx", ctx), ("coarse_head", head)]);
    named.push(("logit_coarse_lo", lc));

    // mid and fine
    let (mstem, mfeat, lm) = dilated_branch(&mut b, &w.pp("mid"), image, cfg.mid_channels, 2, &cfg.mid_dilations)?;
    let (fstem, ffeat, lf) = dilated_branch(&mut b, &w.pp("fine"), image, cfg.fine_channels, 1, &cfg.fine_dilations)?;
    named.extend([("mid_stem", mstem), ("mid_feat", mfeat), ("logit_mid_lo", lm)]);
    named.extend([("fine_stem", fstem), ("fine_feat", ffeat)]);

    // per-scale maps at H x W
    let up = |b: &mut GraphBuilder, name: &str, v: ValueId| -> Result<ValueId> {
        if b.shape(v)[2..] == [h, wd] {
            Ok(v)
        } else {
            b.add(name, Resize { out: [h, wd], align_corners: false }, &[v])
        }
    };
    let lc_up = up(&mut b, "coarse.up", lc)?;
    let lm_up = up(&mut b, "mid.up", lm)?;
    let logits = b.add("logits", Concat { axis: 1 }, &[lc_up, lm_up, lf])?;
    named.push(("logits", logits));
    let ps = b.add("p_scales", Unary { act: Act::Sigmoid }, &[logits])?;
    let p: Vec<ValueId> = (0..3)
        .map(|i| b.add(&format!("p_{}", SCALES[i]), Slice { axis: 1, start: i, end: i + 1 }, &[ps]))
        .collect::<Result<_>>()?;
    let pcm = b.add("prob_product.cm", Binary::mul(), &[p[0], p[1]])?;
    let product = b.add("prob_product", Binary::mul(), &[pcm, p[2]])?;
    b.output("p_scales", ps);
    b.output("prob_product", product);

    let prob = match cfg.fusion {
        Fusion::Product => product,
        Fusion::Learned => {
            let gw = w.pp("gate");
            let gin =
                if cfg.gate_fine_feats { b.add("gate.in", Concat { axis: 1 }, &[logits, ffeat])? } else { logits };
            let g = cfg.gate_channels;
            let p1 = Conv2d::new(1, 1);
            let y =
                conv_bn(&mut b, &gw.pp("conv1"), &gw.pp("bn1"), gin, [g, cfg.gate_in(), 3, 3], p1.clone(), Act::Relu)?;
            let y = conv_bn(&mut b, &gw.pp("conv2"), &gw.pp("bn2"), y, [g, g, 3, 3], p1, Act::Relu)?;
            let gl = conv1x1(&mut b, &gw.pp("out"), y, 3, g, Act::None)?;
            let gate = b.add("gate", Softmax { axis: 1 }, &[gl])?;
            let wp = b.add("prob_learned.terms", Binary::mul(), &[gate, ps])?;
            let learned =
                conv2d(&mut b, "prob_learned", wp, Tensor::full(&[1, 3, 1, 1], 1.0), None, Conv2d::new(1, 0))?;
            named.extend([("gate_hidden", y), ("gate_logits", gl)]);
            b.output("gate", gate);
            b.output("prob_learned", learned);
            learned
        }
    };
    b.output("prob", prob);
    if stages {
        for (name, v) in named {
            b.output(name, v);
        }
    }
    Ok(b.finish())
}

/// The registry entry.
pub struct HifiFamily;
pub static HIFI: HifiFamily = HifiFamily;

/// What tools/hifi_study.py measured for the shipped file (weights/hifi-compact.md, "Calibration").
const CALIBRATION_SOURCE: &str = "tools/hifi_study.py calibrate (the PyTorch reference of \
     weights/hifi-compact.safetensors, learned fusion), 2026-11-30: tampered threshold at <= 5% false alarms on 107 \
     pristine images (target/calibrate-cm/pristine: 17 photo-pool val photos as PNG and 30 synth384 train pristine \
     samples; 60 synth384 val pristine samples); clean \
     at the 5th percentile of 120 synth384 val forgeries";

/// `infer --set` names.
const SETTINGS: &[(&str, &str)] = &[(
    "fusion",
    "learned (the gate's per-pixel weights) or product (P_coarse x P_mid x P_fine); default: the weights'",
)];

impl Family for HifiFamily {
    fn name(&self) -> &'static str {
        "hifi"
    }
    fn about(&self) -> &'static str {
        "hifi: coarse / mid / fine branches at three scales, fused by a learned per-pixel gate or by their product"
    }
    fn needs_weights(&self) -> bool {
        true
    }
    /// The four parts' prefixes (and the coarse stages, which no other model has).
    fn recognises(&self, has_prefix: &dyn Fn(&str) -> bool) -> bool {
        ["coarse.stages.", "mid.", "fine.", "gate."].iter().all(|p| has_prefix(p))
    }
    fn configure(&self, weights: &WeightStore) -> Result<Box<dyn Model>> {
        self.configure_weights_with(weights, &[])
    }
    fn settings(&self) -> &'static [(&'static str, &'static str)] {
        SETTINGS
    }
    fn configure_weights_with(&self, weights: &WeightStore, settings: &[(String, String)]) -> Result<Box<dyn Model>> {
        let mut cfg = HifiConfig::from_weights(weights)?;
        let mut chosen = false;
        for (k, v) in settings {
            match k.as_str() {
                "fusion" => {
                    cfg.fusion =
                        Fusion::parse(v).map_err(|e| Error::invalid(format!("--set fusion={v}: {}", e.message)))?;
                    chosen = true;
                }
                _ => return Err(Error::invalid(format!("--set {k}: hifi has no such setting; known: fusion"))),
            }
        }
        cfg.check()?;
        Ok(Box::new(HifiModel { cfg, chosen }))
    }
    /// Measured for the shipped weights/hifi-compact.safetensors, learned fusion (its default), with
    /// the PyTorch reference (5e-7 from the engine on that file) by `tools/hifi_study.py
    /// calibrate`: the blur-max score of tools/calibrate.py on its sets. The product fusion's
    /// scores are far lower (its own thresholds: weights/hifi-compact.md); its report says so.
    fn calibration(&self) -> Calibration {
        Calibration::measured(ScoreRule::BlurMax { box_frac: 0.01 }, 0.948, 0.533, 0.047, 107, CALIBRATION_SOURCE)
            .for_weights(SHIPPED_SHA256)
    }
}

/// The sha256 of weights/hifi-compact.safetensors, which both fusions' calibrations were measured with.
const SHIPPED_SHA256: &str = "2d0e9cd6cc2df936a132825f86127c849393e00a54b70b7f139d30110fae96fb";

/// A configured hifi.
#[derive(Clone, Debug)]
pub struct HifiModel {
    pub cfg: HifiConfig,
    /// The fusion was chosen by a setting (not the weights' default).
    pub chosen: bool,
}

impl Model for HifiModel {
    fn name(&self) -> &str {
        HIFI.name()
    }
    fn input(&self) -> InputMode {
        InputMode::Resized(self.cfg.input)
    }
    fn build(&self, hw: [usize; 2], weights: &WeightStore) -> Result<Graph> {
        build_hifi(&HifiConfig { input: hw, ..self.cfg.clone() }, weights, false)
    }
    fn expected_keys(&self) -> Vec<(String, Vec<usize>)> {
        expected_keys(&self.cfg)
    }
    fn config_json(&self) -> String {
        self.cfg.to_json()
    }
    fn scales(&self) -> Vec<Scale> {
        let learned = self.cfg.fusion == Fusion::Learned;
        (0..3)
            .map(|i| Scale {
                name: SCALES[i].to_string(),
                map: MapRef { output: "p_scales", channel: i, kind: MapKind::Probability },
                weight: learned.then_some(MapRef { output: "gate", channel: i, kind: MapKind::Weight }),
            })
            .collect()
    }
    fn finish(&self, _hw: [usize; 2], _outputs: &mut HashMap<String, Tensor>) -> Result<Findings> {
        let how = match self.cfg.fusion {
            Fusion::Learned => "learned (p = sum of the gate's per-pixel weights times the three scale maps)",
            Fusion::Product => "product (p = P_coarse x P_mid x P_fine)",
        };
        let by = if self.chosen { "--set fusion" } else { "the weights' config" };
        Ok(Findings { pairs: None, notes: vec![format!("hifi fusion: {how}, chosen by {by}")] })
    }
    /// The product fusion's scores are far lower than the learned one's: its own thresholds,
    /// measured like the family's (weights/hifi-compact.md, "Calibration").
    fn calibration(&self) -> Option<Calibration> {
        (self.cfg.fusion == Fusion::Product).then(|| {
            Calibration::measured(ScoreRule::BlurMax { box_frac: 0.01 }, 0.136, 0.024, 0.047, 107, CALIBRATION_SOURCE)
                .for_weights(SHIPPED_SHA256)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> HifiConfig {
        HifiConfig {
            input: [64, 96],
            coarse_channels: vec![8, 16],
            coarse_depth: vec![1, 2],
            coarse_head: 8,
            mid_channels: 8,
            mid_dilations: vec![1, 2],
            fine_channels: 8,
            fine_dilations: vec![1, 3],
            gate_channels: 8,
            coarse_pool: 2,
            ..HifiConfig::default()
        }
    }

    /// The reference's counts (tools/hifi_ref.py --selftest): compact 927,382 parameters (BN
    /// statistics not counted).
    #[test]
    fn compact_parameter_count() {
        let keys = expected_keys(&HifiConfig::default());
        let params: usize = keys
            .iter()
            .filter(|(k, _)| !k.ends_with("running_mean") && !k.ends_with("running_var"))
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(params, 927_382);
    }

    /// The builder takes exactly the expected keys (both fusions: product leaves only the gate),
    /// the configuration comes back from them and the settings choose the fusion.
    #[test]
    fn builder_keys_and_config_round_trip() {
        for gate_fine_feats in [true, false] {
            let cfg = HifiConfig { gate_fine_feats, ..tiny() };
            let w = WeightStore::synthetic(3);
            build_hifi(&cfg, &w, true).unwrap();
            let want = expected_keys(&cfg);
            w.assert_took_exactly(&want, "hifi");
            let w = WeightStore::synthetic(3);
            build_hifi(&HifiConfig { fusion: Fusion::Product, ..cfg.clone() }, &w, false).unwrap();
            assert!(w.taken().iter().all(|(k, _)| !k.starts_with("gate.")));
            let store = WeightStore::zeros_with(&want, cfg.to_json(), "[64,96]");
            assert_eq!(HifiConfig::from_weights(&store).unwrap(), cfg);
            let keys: Vec<&str> = want.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(crate::models::recognise(keys.iter().copied()).unwrap().name(), "hifi");
            let set = |v: &str| vec![("fusion".to_string(), v.to_string())];
            let m = HIFI.configure_weights_with(&store, &set("product")).unwrap();
            assert!(m.config_json().contains("\"fusion\":\"product\""));
            assert!(m.scales().iter().all(|s| s.weight.is_none()));
            let m = HIFI.configure(&store).unwrap();
            assert_eq!(m.scales().iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), SCALES);
            assert!(m.scales().iter().all(|s| s.weight.is_some()));
            assert!(HIFI.configure_weights_with(&store, &set("sum")).is_err());
            assert!(HIFI.configure_weights_with(&store, &[("k".into(), "1".into())]).is_err());
        }
        let bad = HifiConfig { input: [60, 96], ..tiny() };
        assert!(build_hifi(&bad, &WeightStore::synthetic(1), false).is_err(), "60 is not a multiple of 8");
    }
}

/// Where the time goes at the shipped file's 384 x 384, per node kind, both fusions (synthetic
/// weights of the compact config): `cargo test --release --lib models::hifi::profile -- --ignored --nocapture`.
#[cfg(test)]
#[test]
#[ignore]
fn profile() {
    use crate::graph::Plan;
    let gpu = crate::ops::testing::device();
    let x = Tensor::random(&[1, 3, 384, 384], 3, -2.0, 2.0);
    for fusion in [Fusion::Learned, Fusion::Product] {
        let cfg = HifiConfig { input: [384, 384], fusion, ..HifiConfig::default() };
        let g = build_hifi(&cfg, &WeightStore::synthetic(1), false).unwrap();
        let plan = Plan::new(gpu, &g).unwrap();
        plan.run(&[("image", &x)]).unwrap();
        let t = std::time::Instant::now();
        let (_, prof) = plan.run_profiled(&[("image", &x)]).unwrap();
        println!("{fusion:?}: {:.2} s", t.elapsed().as_secs_f64());
        let total: f64 = prof.iter().map(|p| p.micros).sum();
        let mut rows: Vec<_> = prof.iter().collect();
        rows.sort_by(|a, b| b.micros.total_cmp(&a.micros));
        for p in rows.iter().take(14) {
            println!("  {:>8.1} ms {:>5.1}% {} ({})", p.micros / 1e3, 100.0 * p.micros / total, p.node, p.kind);
        }
        println!("  total {:.1} ms over {} nodes", total / 1e3, prof.len());
    }
}
