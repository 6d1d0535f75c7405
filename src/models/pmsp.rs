//! PMSP-Net (Meng et al.: two-stream ELA + RGB MobileNetV1 with Coordinate Attention and pyramid
//! pooling) as a static graph; the architecture and every choice the paper leaves open are in
//! docs/models/pmsp.md, our PyTorch reference is `tools/pmsp_ref.py`.
//!
//! ```text
//! native stage, at the image's own size:  image (RGB 0..255) ─ Ela(q 90) ─ "ela" levels
//!   (the pipeline resizes "ela" to the input like the image: OpenCV's uint8 bilinear)
//! image [1,3,H,W] (resized, ImageNet-normalized) ─ MobileNetV1 + CA after F3, F4, F5 ─ rgb_f5 ─┐
//! ela [1,3,H,W] x ela_scale ───────────────────── MobileNetV1 + CA after F3, F4, F5 ─ ela_f5 ─┴─ +
//!   ─ pyramid pooling (bins 1, 2, 3, 6) ─ conv3x3 + BN + ReLU ─ conv1x1 (2 classes) ─ logits (1/32)
//!   ─ bilinear to H x W (align_corners false) ─ softmax ─ channel 1 ─ prob
//! ```
//! Per-scale maps (`--scales`): `ela_input` (the ELA stream's input, clipped to [0, 1]) and
//! `ela_share` (the ELA stream's share of the fused F5's energy, per 1/32 cell).

use crate::error::{Error, Result};
use crate::graph::{Graph, GraphBuilder, ValueId};
use crate::models::blocks::efficientnet::{self, Block, EFFNET_LITE0};
use crate::models::blocks::mobilenet::{self, make_divisible, MobileNetSpec, MOBILENET_V1};
use crate::models::blocks::{conv_bn, coord_att, ppm};
use crate::models::model::{Family, InputMode, MapKind, MapRef, Model, Scale};
use crate::models::weights::WeightStore;
use crate::ops::act::Act;
use crate::ops::conv2d::{conv2d, Conv2d};
use crate::ops::ela::Ela;
use crate::ops::elementwise::{Binary, BinaryKind};
use crate::ops::layout::Slice;
use crate::ops::resize::Resize;
use crate::ops::softmax::Softmax;
use crate::report::verdict::{Calibration, ScoreRule, CALIBRATION_SOURCE};
use crate::tensor::Tensor;

/// MobileNetV1 blocks after which Coordinate Attention runs, and the feature layer each ends
/// (F3, F4, F5).
pub const CA_AFTER: [(usize, usize); 3] = [(4, 3), (10, 4), (12, 5)];
/// The same for EfficientNet-Lite0: the ends of its 1/8, 1/16 and 1/32 stages.
pub const EFFNET_CA_AFTER: [(usize, usize); 3] = [(4, 3), (10, 4), (15, 5)];
/// The two streams, by key prefix.
pub const STREAMS: [&str; 2] = ["rgb", "ela"];

/// The streams' network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backbone {
    /// The paper's MobileNetV1 (any width multiplier).
    MobileNetV1,
    /// EfficientNet-Lite0 (for its ImageNet-pretrained weights).
    EfficientNetLite0,
}

impl Backbone {
    pub fn name(self) -> &'static str {
        match self {
            Backbone::MobileNetV1 => "mobilenet_v1",
            Backbone::EfficientNetLite0 => "efficientnet_lite0",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PmspConfig {
    pub backbone: Backbone,
    /// MobileNetV1 width multiplier (recorded; the widths below are what the graph uses).
    pub width: f64,
    pub stem: usize,
    /// Output channels of the backbone's blocks (13 for MobileNetV1, 16 for EfficientNet-Lite0).
    pub channels: Vec<usize>,
    /// EfficientNet only: its blocks (EfficientNet-Lite0's, or a short table from the metadata).
    pub effnet_blocks: Vec<Block>,
    /// The blocks Coordinate Attention follows (F3, F4, F5).
    pub ca_blocks: [usize; 3],
    /// Coordinate Attention hidden widths after F3, F4, F5.
    pub mips: [usize; 3],
    pub ppm_bins: Vec<usize>,
    pub ppm_dim: usize,
    pub head_dim: usize,
    /// Input `[H, W]`, multiples of 32 (paper: 576).
    pub input: [usize; 2],
    pub ela_quality: u32,
    /// ELA levels -> the ELA stream's input.
    pub ela_scale: f32,
}

impl PmspConfig {
    /// The paper's network at width `width` (1.0: MobileNetV1 itself), 576 x 576.
    pub fn with_width(width: f64) -> Self {
        let channels: Vec<usize> = MOBILENET_V1.iter().map(|&(c, _)| make_divisible(c as f64 * width)).collect();
        let c5 = channels[12];
        let mips = CA_AFTER.map(|(i, _)| coord_att::mip(channels[i], 32, 8));
        PmspConfig {
            backbone: Backbone::MobileNetV1,
            width,
            stem: make_divisible(32.0 * width),
            channels,
            effnet_blocks: Vec::new(),
            ca_blocks: CA_AFTER.map(|(i, _)| i),
            mips,
            ppm_bins: vec![1, 2, 3, 6],
            ppm_dim: c5 / 4,
            head_dim: c5 / 2,
            input: [576, 576],
            ela_quality: 90,
            ela_scale: 1.0 / 16.0,
        }
    }

    /// The paper's network on EfficientNet-Lite0 streams (F5: 320 channels), 576 x 576.
    pub fn efficientnet_lite0() -> Self {
        Self::efficientnet(EFFNET_LITE0.to_vec(), EFFNET_CA_AFTER.map(|(i, _)| i))
    }

    /// EfficientNet streams with any block table (tests use short ones).
    pub fn efficientnet(blocks: Vec<Block>, ca_blocks: [usize; 3]) -> Self {
        let channels: Vec<usize> = blocks.iter().map(|b| b.3).collect();
        let mips = ca_blocks.map(|i| coord_att::mip(channels[i], 32, 8));
        let c5 = channels[channels.len() - 1];
        PmspConfig {
            backbone: Backbone::EfficientNetLite0,
            stem: efficientnet::STEM,
            channels,
            effnet_blocks: blocks,
            ca_blocks,
            mips,
            ppm_dim: c5 / 4,
            head_dim: c5 / 2,
            ..PmspConfig::with_width(1.0)
        }
    }

    pub fn c5(&self) -> usize {
        *self.channels.last().expect("a backbone has blocks")
    }

    /// (block, tag, hidden width) of each Coordinate Attention; tags 3, 4, 5 for F3, F4, F5.
    fn attention(&self) -> Vec<(usize, usize, usize)> {
        self.ca_blocks.iter().zip([3, 4, 5]).zip(self.mips).map(|((&i, tag), m)| (i, tag, m)).collect()
    }

    fn stream_spec(&self) -> MobileNetSpec {
        MobileNetSpec { stem: self.stem, channels: self.channels.clone(), attention: self.attention() }
    }

    /// Widths read off the weights' shapes; bins, input, ELA settings and the width multiplier from
    /// the metadata's `config` / `input_size` (the paper's values where absent).
    pub fn from_weights(w: &WeightStore) -> Result<Self> {
        let dim0 = |k: &str| {
            w.get(k)
                .map(|t| t.shape[0])
                .ok_or_else(|| Error::invalid(format!("cannot read the pmsp configuration: no '{k}'")))
        };
        let meta = |k: &str| w.metadata.get(k).and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
        let mut cfg = if w.contains("rgb._conv_stem.weight") {
            let c = meta("config").unwrap_or_default();
            let blocks: Vec<Block> = serde_json::from_value::<Vec<[usize; 4]>>(c["effnet_blocks"].clone())
                .ok()
                .filter(|b| !b.is_empty())
                .map_or(EFFNET_LITE0.to_vec(), |b| b.into_iter().map(|[e, k, s, o]| (e, k, s, o)).collect());
            let ca = serde_json::from_value::<[usize; 3]>(c["effnet_ca_after"].clone())
                .unwrap_or(EFFNET_CA_AFTER.map(|(i, _)| i));
            if ca.iter().any(|&i| i >= blocks.len()) {
                return Err(Error::invalid(format!("pmsp: attention after blocks {ca:?} of {}", blocks.len())));
            }
            PmspConfig::efficientnet(blocks, ca)
        } else {
            PmspConfig::with_width(1.0)
        };
        if let Some(c) = meta("config") {
            if let Some(x) = c["width"].as_f64() {
                cfg.width = x;
            }
            if let Some(b) = c["ppm_bins"].as_array() {
                cfg.ppm_bins = b.iter().filter_map(|v| v.as_u64().map(|u| u as usize)).collect();
            }
            if let Some(q) = c["ela_quality"].as_u64() {
                cfg.ela_quality = q as u32;
            }
            if let Some(s) = c["ela_scale"].as_f64() {
                cfg.ela_scale = s as f32;
            }
        }
        if let Some(hw) = meta("input_size").and_then(|v| serde_json::from_value::<[usize; 2]>(v).ok()) {
            cfg.input = hw;
        }
        if cfg.backbone == Backbone::MobileNetV1 {
            cfg.stem = dim0("rgb.conv_stem.weight")?;
            for i in 0..13 {
                cfg.channels[i] = dim0(&format!("rgb.blocks.{i}.conv_pw.weight"))?;
            }
        }
        for (m, tag) in cfg.mips.iter_mut().zip([3, 4, 5]) {
            *m = dim0(&format!("rgb.ca{tag}.conv1.weight"))?;
        }
        cfg.ppm_dim = dim0("ppm.0.conv.weight")?;
        cfg.head_dim = dim0("head.conv.weight")?;
        Ok(cfg)
    }

    pub fn to_json(&self) -> String {
        serde_json::json!({
            "backbone": self.backbone.name(),
            "width": self.width,
            "effnet_blocks": self.effnet_blocks.iter().map(|&(e, k, s, o)| [e, k, s, o]).collect::<Vec<_>>(),
            "effnet_ca_after": if self.effnet_blocks.is_empty() { vec![] } else { self.ca_blocks.to_vec() },
            "stem": self.stem,
            "channels": self.channels,
            "mips": self.mips,
            "ppm_bins": self.ppm_bins,
            "ppm_dim": self.ppm_dim,
            "head_dim": self.head_dim,
            "ela_quality": self.ela_quality,
            "ela_scale": self.ela_scale,
        })
        .to_string()
    }

    fn check(&self) -> Result<()> {
        if self.input.iter().any(|&d| d == 0 || d % 32 != 0) {
            return Err(Error::invalid(format!(
                "pmsp input must be a multiple of 32 on both sides, got {}x{}",
                self.input[1], self.input[0]
            )));
        }
        let blocks = match self.backbone {
            Backbone::MobileNetV1 => 13,
            Backbone::EfficientNetLite0 => self.effnet_blocks.len(),
        };
        if self.ppm_bins.is_empty() || self.channels.len() != blocks {
            return Err(Error::invalid(format!("pmsp needs {blocks} block widths and at least one pyramid bin")));
        }
        Ok(())
    }
}

/// Every key the model reads, with its shape (BatchNorm: weight, bias, running_mean, running_var).
pub fn expected_keys(cfg: &PmspConfig) -> Vec<(String, Vec<usize>)> {
    let mut k: Vec<(String, Vec<usize>)> = Vec::new();
    if cfg.backbone == Backbone::EfficientNetLite0 {
        for s in STREAMS {
            efficientnet::keys(s, &cfg.effnet_blocks, &cfg.attention(), &mut k);
        }
    }
    let mut add = |name: String, shape: &[usize]| k.push((name, shape.to_vec()));
    let bn = |add: &mut dyn FnMut(String, &[usize]), p: &str, c: usize| {
        for s in ["weight", "bias", "running_mean", "running_var"] {
            add(format!("{p}.{s}"), &[c]);
        }
    };
    let mobilenet_streams = if cfg.backbone == Backbone::MobileNetV1 { &STREAMS[..] } else { &[] };
    for s in mobilenet_streams {
        add(format!("{s}.conv_stem.weight"), &[cfg.stem, 3, 3, 3]);
        bn(&mut add, &format!("{s}.bn1"), cfg.stem);
        let mut cin = cfg.stem;
        for (i, &c) in cfg.channels.iter().enumerate() {
            let p = format!("{s}.blocks.{i}");
            add(format!("{p}.conv_dw.weight"), &[cin, 1, 3, 3]);
            bn(&mut add, &format!("{p}.bn1"), cin);
            add(format!("{p}.conv_pw.weight"), &[c, cin, 1, 1]);
            bn(&mut add, &format!("{p}.bn2"), c);
            cin = c;
        }
        for (&(i, tag), mip) in CA_AFTER.iter().zip(cfg.mips) {
            let (c, p) = (cfg.channels[i], format!("{s}.ca{tag}"));
            add(format!("{p}.conv1.weight"), &[mip, c, 1, 1]);
            add(format!("{p}.conv1.bias"), &[mip]);
            bn(&mut add, &format!("{p}.bn1"), mip);
            for d in ["conv_h", "conv_w"] {
                add(format!("{p}.{d}.weight"), &[c, mip, 1, 1]);
                add(format!("{p}.{d}.bias"), &[c]);
            }
        }
    }
    let c5 = cfg.c5();
    for j in 0..cfg.ppm_bins.len() {
        add(format!("ppm.{j}.conv.weight"), &[cfg.ppm_dim, c5, 1, 1]);
        bn(&mut add, &format!("ppm.{j}.bn"), cfg.ppm_dim);
    }
    let cat = c5 + cfg.ppm_dim * cfg.ppm_bins.len();
    add("head.conv.weight".into(), &[cfg.head_dim, cat, 3, 3]);
    bn(&mut add, "head.bn", cfg.head_dim);
    add("head.cls.weight".into(), &[2, cfg.head_dim, 1, 1]);
    add("head.cls.bias".into(), &[2]);
    k
}

/// The graph at input `[H, W]` (from `cfg.input`): inputs "image" (normalized RGB) and "ela"
/// (levels), output "prob" and the intermediates named in the module documentation.
pub fn build_pmsp(cfg: &PmspConfig, weights: &WeightStore) -> Result<Graph> {
    cfg.check()?;
    let w = weights.root();
    let [h, wd] = cfg.input;
    let mut b = GraphBuilder::new();
    let image = b.input("image", &[1, 3, h, wd]);
    let ela = b.input("ela", &[1, 3, h, wd]);
    let scale = b.constant("ela_scale", Tensor::full(&[1], cfg.ela_scale));
    let ela_in = b.add("ela.scaled", Binary::mul(), &[ela, scale])?;
    // The ELA input for display: channel mean x scale, clipped to [0, 1] as relu6(6 v) / 6.
    let mean = Tensor::full(&[1, 3, 1, 1], 2.0);
    let view6 = conv2d(&mut b, "ela_view.mean", ela_in, mean, None, Conv2d::new(1, 0).act(Act::Relu6))?;
    let sixth = b.constant("one_sixth", Tensor::full(&[1], 1.0 / 6.0));
    let ela_view = b.add("ela_view", Binary::mul(), &[view6, sixth])?;

    let (f_rgb, f_ela) = match cfg.backbone {
        Backbone::MobileNetV1 => {
            let spec = cfg.stream_spec();
            (
                mobilenet::stream(&mut b, &w.pp("rgb"), &spec, image)?.0,
                mobilenet::stream(&mut b, &w.pp("ela"), &spec, ela_in)?.0,
            )
        }
        Backbone::EfficientNetLite0 => {
            let (blocks, att) = (&cfg.effnet_blocks, cfg.attention());
            let rgb = efficientnet::stream(&mut b, &w.pp("rgb"), blocks, &att, image)?;
            (rgb, efficientnet::stream(&mut b, &w.pp("ela"), blocks, &att, ela_in)?)
        }
    };
    let fused = b.add("fused", Binary::add(), &[f_rgb, f_ela])?;
    let share = ela_share(&mut b, f_rgb, f_ela, cfg.c5())?;

    let p = ppm::pyramid_pool(&mut b, &w.pp("ppm"), fused, &cfg.ppm_bins, cfg.ppm_dim)?;
    let head = w.pp("head");
    let cat = cfg.c5() + cfg.ppm_dim * cfg.ppm_bins.len();
    let shape = [cfg.head_dim, cat, 3, 3];
    let x = conv_bn(&mut b, &head.pp("conv"), &head.pp("bn"), p, shape, Conv2d::new(1, 1), Act::Relu)?;
    let cls = head.pp("cls");
    let (cw, cb) = (cls.weight(&[2, cfg.head_dim, 1, 1])?, cls.bias(&[2])?);
    let logits = conv2d(&mut b, cls.path(), x, cw, Some(cb), Conv2d::new(1, 0))?;
    let up = b.add("logits_up", Resize { out: [h, wd], align_corners: false }, &[logits])?;
    let soft = b.add("softmax", Softmax { axis: 1 }, &[up])?;
    let prob = b.add("prob", Slice { axis: 1, start: 1, end: 2 }, &[soft])?;
    b.output("prob", prob);
    for (name, v) in [("rgb_f5", f_rgb), ("ela_f5", f_ela), ("fused", fused), ("ppm", p), ("head", x)] {
        b.output(name, v);
    }
    b.output("logits", logits);
    b.output("ela_view", ela_view);
    b.output("ela_share", share);
    Ok(b.finish())
}

/// `e / (e + r + 1e-12)` with `e`, `r` the per-cell sums of squares of the ELA and RGB F5.
fn ela_share(b: &mut GraphBuilder, f_rgb: ValueId, f_ela: ValueId, c: usize) -> Result<ValueId> {
    let ones = || Tensor::full(&[1, c, 1, 1], 1.0);
    let sq_e = b.add("ela_share.sq_ela", Binary::mul(), &[f_ela, f_ela])?;
    let sq_r = b.add("ela_share.sq_rgb", Binary::mul(), &[f_rgb, f_rgb])?;
    let e = conv2d(b, "ela_share.sum_ela", sq_e, ones(), None, Conv2d::new(1, 0))?;
    let tiny = Tensor::full(&[1], 1e-12);
    let r = conv2d(b, "ela_share.sum_rgb", sq_r, ones(), Some(tiny), Conv2d::new(1, 0))?;
    let t = b.add("ela_share.total", Binary::add(), &[e, r])?;
    b.add("ela_share", Binary { kind: BinaryKind::Div, act: Act::None }, &[e, t])
}

/// The ELA of the image at its own size: the stage the pipeline runs before the resize.
pub fn build_native_stage(hw: [usize; 2], quality: u32) -> Result<Graph> {
    let mut b = GraphBuilder::new();
    let x = b.input("image", &[1, 3, hw[0], hw[1]]);
    let e = b.add("ela", Ela { quality }, &[x])?;
    b.output("ela", e);
    Ok(b.finish())
}

/// The registry entry.
pub struct PmspFamily;
pub static PMSP: PmspFamily = PmspFamily;

impl Family for PmspFamily {
    fn name(&self) -> &'static str {
        "pmsp"
    }
    fn about(&self) -> &'static str {
        "PMSP-Net: ELA and RGB MobileNetV1 streams with coordinate attention, pyramid pooling"
    }
    fn needs_weights(&self) -> bool {
        true
    }
    /// Two streams (`rgb.`, `ela.`, MobileNetV1's `conv_stem` or EfficientNet's `_conv_stem`) and
    /// the pyramid pooling.
    fn recognises(&self, has_prefix: &dyn Fn(&str) -> bool) -> bool {
        let stem = |s: &str| has_prefix(&format!("{s}.conv_stem.")) || has_prefix(&format!("{s}._conv_stem."));
        stem("rgb") && stem("ela") && has_prefix("ppm.")
    }
    fn configure(&self, weights: &WeightStore) -> Result<Box<dyn Model>> {
        let cfg = PmspConfig::from_weights(weights)?;
        cfg.check()?;
        Ok(Box::new(PmspModel { cfg }))
    }
    /// Measured with the shipped weights/pmsp-mobilenet.safetensors (resized to its input;
    /// `tools/calibrate.py run --weights ...`, 2026-11-30). The blurred maximum of its map
    /// separates pristine from forged synthetic images with AUC 0.75 (docs/report.md).
    fn calibration(&self) -> Calibration {
        Calibration::measured(ScoreRule::BlurMax { box_frac: 0.01 }, 0.99, 0.474, 0.047, 128, CALIBRATION_SOURCE)
            .for_weights("0a9d2f38bb51aaf25a37c0d28f029fc4e6e6dbb213638b1ab7e6518c5ebc5e8a")
    }
}

/// A configured PMSP-Net.
#[derive(Clone, Debug)]
pub struct PmspModel {
    pub cfg: PmspConfig,
}

impl Model for PmspModel {
    fn name(&self) -> &str {
        PMSP.name()
    }
    fn input(&self) -> InputMode {
        InputMode::Resized(self.cfg.input)
    }
    fn build(&self, hw: [usize; 2], weights: &WeightStore) -> Result<Graph> {
        build_pmsp(&PmspConfig { input: hw, ..self.cfg.clone() }, weights)
    }
    fn native_stage(&self, hw: [usize; 2]) -> Option<Result<Graph>> {
        Some(build_native_stage(hw, self.cfg.ela_quality))
    }
    fn expected_keys(&self) -> Vec<(String, Vec<usize>)> {
        expected_keys(&self.cfg)
    }
    fn config_json(&self) -> String {
        self.cfg.to_json()
    }
    fn scales(&self) -> Vec<Scale> {
        let one = |name: &str, output, kind| Scale {
            name: name.to_string(),
            map: MapRef { output, channel: 0, kind },
            weight: None,
        };
        vec![one("ela_input", "ela_view", MapKind::Probability), one("ela_share", "ela_share", MapKind::Weight)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> PmspConfig {
        PmspConfig { input: [64, 96], ..PmspConfig::with_width(0.25) }
    }

    #[test]
    fn widths_follow_torchvision_rounding() {
        let full = PmspConfig::with_width(1.0);
        assert_eq!((full.stem, full.c5(), full.mips, full.ppm_dim, full.head_dim), (32, 1024, [8, 16, 32], 256, 512));
        let quarter = PmspConfig::with_width(0.25);
        assert_eq!((quarter.stem, &quarter.channels[..4], quarter.c5()), (8, &[16, 32, 32, 64][..], 256));
        // The reference's counts (tools/pmsp_ref.py --selftest): 357 keys, 17,216,434 values; on
        // EfficientNet-Lite0 567 keys, 7,051,494 values.
        let count = |c: &PmspConfig| {
            let keys = expected_keys(c);
            (keys.len(), keys.iter().map(|(_, s)| s.iter().product::<usize>()).sum::<usize>())
        };
        assert_eq!(count(&full), (357, 17_216_434));
        let eff = PmspConfig::efficientnet_lite0();
        assert_eq!(count(&eff), (567, 7_051_494));
        assert_eq!((eff.c5(), eff.mips, eff.ppm_dim, eff.head_dim), (320, [8, 8, 10], 80, 160));
    }

    /// The builder takes exactly the expected keys, and the configuration comes back from them,
    /// for both backbones.
    #[test]
    fn builder_keys_and_config_round_trip() {
        let eff = PmspConfig {
            input: [64, 96],
            ..PmspConfig::efficientnet(
                vec![(1, 3, 1, 8), (2, 3, 2, 8), (2, 5, 2, 16), (2, 3, 2, 16), (2, 5, 2, 24)],
                [2, 3, 4],
            )
        };
        for cfg in [tiny(), eff] {
            keys_round_trip(cfg);
        }
    }

    fn keys_round_trip(cfg: PmspConfig) {
        let w = WeightStore::synthetic(3);
        build_pmsp(&cfg, &w).unwrap();
        let want = expected_keys(&cfg);
        w.assert_took_exactly(&want, "pmsp");
        let store = WeightStore::zeros_with(&want, cfg.to_json(), "[64,96]");
        assert_eq!(PmspConfig::from_weights(&store).unwrap(), cfg);
        let keys: Vec<&str> = want.iter().map(|(k, _)| k.as_str()).collect();
        let has = |p: &str| keys.iter().any(|k| k.starts_with(p));
        assert!(PMSP.recognises(&has));
        assert_eq!(crate::models::recognise(keys.iter().copied()).unwrap().name(), "pmsp");
    }
}
