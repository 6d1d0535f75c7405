//! The configuration of a Mesorch-family model: one type, read off a checkpoint's shapes by
//! `convert` and by the graph builder alike, with the keys and shapes it implies.
//!
//! Sizes come from the tensors themselves; what shapes cannot show (MiT head counts, the training
//! input size) from the weights' metadata (`config.mit_heads`, `input_size`), which `convert`
//! takes from a checkpoint's `forge` entry or a converted file's metadata.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Mesorch or Mesorch-P.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// 8 scales (c1..c4, s1..s4) weighted by the gate network.
    Mesorch,
    /// 5 scales (c1, c3, s2, s3, s4), plain sum, no gate, ConvNeXt stage 3 dropped.
    MesorchP,
}

impl Variant {
    /// The registry name.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Mesorch => "mesorch",
            Variant::MesorchP => "mesorch_p",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct MesorchConfig {
    pub variant: Variant,
    /// Encoder input channels (RGB + one frequency map: 6).
    pub in_chans: usize,
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
    /// Gate (ScoreNetwork) width and the hidden width of its 1x1 pair (Mesorch only).
    pub gate_dim: usize,
    pub gate_hidden: usize,
    /// Input (and output) size `[H, W]`, multiples of 32 (official: 512 x 512).
    pub input: [usize; 2],
    pub dct_high_frac: f64,
    pub dct_low_frac: f64,
}

/// The published input size, used when the weights do not record theirs.
pub const DEFAULT_INPUT: [usize; 2] = [512, 512];

impl MesorchConfig {
    /// The official models: ConvNeXt-Tiny + MiT-B3 at 512 x 512.
    pub fn full(variant: Variant) -> Self {
        MesorchConfig {
            variant,
            in_chans: 6,
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
            input: DEFAULT_INPUT,
            dct_high_frac: 0.05,
            dct_low_frac: 0.95,
        }
    }

    pub fn is_p(&self) -> bool {
        self.variant == Variant::MesorchP
    }

    pub fn has_gate(&self) -> bool {
        !self.is_p()
    }

    /// ConvNeXt stages that run (4, or 3 for Mesorch-P).
    pub fn cnx_stages(&self) -> usize {
        if self.is_p() {
            3
        } else {
            4
        }
    }

    /// Names of the scales in `scale_logits` order: `c` ConvNeXt, `s` MiT, with the stage number.
    pub fn scale_names(&self) -> &'static [&'static str] {
        if self.is_p() {
            &["c1", "c3", "s2", "s3", "s4"]
        } else {
            &["c1", "c2", "c3", "c4", "s1", "s2", "s3", "s4"]
        }
    }

    /// The encoder (`c`: ConvNeXt, `s`: MiT) and stage (1..4) of scale `i`.
    pub fn scale(&self, i: usize) -> (char, usize) {
        const SCALES: [(char, usize); 8] =
            [('c', 1), ('c', 2), ('c', 3), ('c', 4), ('s', 1), ('s', 2), ('s', 3), ('s', 4)];
        const P: [usize; 5] = [0, 2, 5, 6, 7];
        SCALES[if self.is_p() { P[i] } else { i }]
    }

    /// The input size must be a multiple of 32 on both sides (five stride-2 stages).
    pub fn check_input(hw: [usize; 2]) -> Result<()> {
        if hw.iter().any(|&d| d == 0 || d % 32 != 0) {
            return Err(Error::invalid(format!(
                "Mesorch input must be a multiple of 32 on both sides, got {}x{}",
                hw[1], hw[0]
            )));
        }
        Ok(())
    }

    /// Read the sizes of a `variant` model off its keys and shapes (widths from the stem,
    /// downsample and patch-embedding weights, depths by counting blocks, reduction ratios from
    /// the `sr` convs, MLP ratios and gate widths from their layers) and the rest from the
    /// metadata. Keys that are absent fall back to the published value (a stage without any block
    /// keeps its published depth), so the key check then names what is missing.
    pub fn from_shapes(
        shapes: &BTreeMap<&str, &[usize]>,
        variant: Variant,
        metadata: &BTreeMap<String, String>,
    ) -> MesorchConfig {
        let mut cfg = MesorchConfig::full(variant);
        let dim0 = |k: &str| shapes.get(k).and_then(|s| s.first().copied());
        let count = |prefix: &str| {
            (0..)
                .take_while(|j| {
                    let p = format!("{prefix}.{j}.");
                    shapes.range(p.as_str()..).next().is_some_and(|(k, _)| k.starts_with(&p))
                })
                .count()
        };
        if let Some(c) = shapes.get("convnext.stem.0.weight").and_then(|s| s.get(1)) {
            cfg.in_chans = *c;
        }
        for i in 0..4 {
            let cnx = if i == 0 {
                dim0("convnext.stem.0.weight")
            } else {
                dim0(&format!("convnext.stages.{i}.downsample.1.weight"))
            };
            match cnx {
                Some(d) => cfg.cnx_dims[i] = d,
                None if i > 0 => cfg.cnx_dims[i] = 2 * cfg.cnx_dims[i - 1],
                None => {}
            }
            // A stage with no blocks at all keeps the published depth, so the key check names
            // the missing blocks instead of building a model without them.
            let n = count(&format!("convnext.stages.{i}.blocks"));
            if i < cfg.cnx_stages() && n > 0 {
                cfg.cnx_depths[i] = n;
            }
            if let Some(d) = dim0(&format!("segformer.patch_embed{}.proj.weight", i + 1)) {
                cfg.mit_dims[i] = d;
            }
            let n = count(&format!("segformer.block{}", i + 1));
            if n > 0 {
                cfg.mit_depths[i] = n;
                cfg.mit_sr[i] =
                    shapes.get(format!("segformer.block{}.0.attn.sr.weight", i + 1).as_str()).map_or(1, |s| s[2]);
            }
            cfg.mit_heads[i] = (cfg.mit_dims[i] / 64).max(1);
        }
        let hints = Hints::from_metadata(metadata);
        if let Some(h) = hints.mit_heads {
            cfg.mit_heads = h;
        }
        if let Some(hw) = hints.input_size {
            cfg.input = hw;
        }
        if let Some(h) = dim0("convnext.stages.0.blocks.0.mlp.fc1.weight") {
            cfg.cnx_mlp_ratio = h / cfg.cnx_dims[0].max(1);
        }
        if let Some(h) = dim0("segformer.block1.0.mlp.fc1.weight") {
            cfg.mit_mlp_ratio = h / cfg.mit_dims[0].max(1);
        }
        if let (true, Some(g), Some(h)) = (cfg.has_gate(), dim0("gate.conv1.weight"), dim0("gate.invert.2.weight")) {
            cfg.gate_dim = g;
            cfg.gate_hidden = h;
        }
        cfg
    }

    /// The `config` metadata of converted files (the field names tools/ read).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "in_chans": self.in_chans,
            "convnext_dims": self.cnx_dims,
            "convnext_depths": self.cnx_depths,
            "convnext_stages": self.cnx_stages(),
            "mit_dims": self.mit_dims,
            "mit_depths": self.mit_depths,
            "mit_heads": self.mit_heads,
            "mit_sr_ratios": self.mit_sr,
            "mlp_ratio": self.cnx_mlp_ratio,
            "mit_mlp_ratio": self.mit_mlp_ratio,
            "scales": self.scale_names(),
            "gate": self.has_gate().then(|| serde_json::json!({"dim": self.gate_dim, "hidden": self.gate_hidden})),
        })
        .to_string()
    }
}

/// What the tensors' shapes cannot tell, from the weights' metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hints {
    /// MiT heads per stage; default `dim / 64` (head dim 64, as in every published MiT).
    pub mit_heads: Option<[usize; 4]>,
    /// The input size `[H, W]` the model was trained at; default 512 x 512 (the benchmark's).
    pub input_size: Option<[usize; 2]>,
}

impl Hints {
    /// From `config` (its `mit_heads`) and `input_size`; absent or malformed entries are simply
    /// not hints.
    pub fn from_metadata(meta: &BTreeMap<String, String>) -> Hints {
        let parse = |k: &str| meta.get(k).and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
        Hints {
            mit_heads: parse("config").and_then(|c| json_usizes::<4>(&c["mit_heads"])),
            input_size: parse("input_size").and_then(|v| json_usizes::<2>(&v)),
        }
    }
}

/// `[a, b, ...]` of non-negative integers with exactly N entries.
fn json_usizes<const N: usize>(v: &serde_json::Value) -> Option<[usize; N]> {
    let a = v.as_array()?;
    let xs: Vec<usize> = a.iter().map(|x| x.as_u64().map(|u| u as usize)).collect::<Option<_>>()?;
    xs.try_into().ok()
}

/// A list of keys built by prefix, as the builders take them.
#[derive(Default)]
struct Keys(Vec<(String, Vec<usize>)>);

impl Keys {
    fn add(&mut self, prefix: &str, name: &str, shape: &[usize]) {
        self.0.push((format!("{prefix}.{name}"), shape.to_vec()));
    }
    /// `weight` and `bias` of a layer.
    fn layer(&mut self, prefix: &str, weight: &[usize], bias: usize) {
        self.add(prefix, "weight", weight);
        self.add(prefix, "bias", &[bias]);
    }
    /// A LayerNorm of `c` channels.
    fn norm(&mut self, prefix: &str, c: usize) {
        self.layer(prefix, &[c], c);
    }
}

/// Every key the model uses, with its shape (names as in the official PyTorch modules: timm
/// ConvNeXt under `convnext.`, the MiT under `segformer.`, `upsample.`, `inverse.N`, `gate.`).
/// Conv weights are `[out, in/groups, kh, kw]`, ConvTranspose2d weights `[in, out, kh, kw]`,
/// Linear weights `[out, in]`. `tests` checks that the graph builder takes exactly these.
pub fn expected_keys(cfg: &MesorchConfig) -> Vec<(String, Vec<usize>)> {
    let mut k = Keys::default();
    let cd = cfg.cnx_dims;
    k.add("convnext.stem.0", "weight", &[cd[0], cfg.in_chans, 4, 4]);
    k.norm("convnext.stem.1", cd[0]);
    for s in 0..cfg.cnx_stages() {
        let (c, r) = (cd[s], cfg.cnx_mlp_ratio);
        let p = format!("convnext.stages.{s}");
        if s > 0 {
            k.norm(&format!("{p}.downsample.0"), cd[s - 1]);
            k.layer(&format!("{p}.downsample.1"), &[c, cd[s - 1], 2, 2], c);
        }
        for b in 0..cfg.cnx_depths[s] {
            let q = format!("{p}.blocks.{b}");
            k.layer(&format!("{q}.conv_dw"), &[c, 1, 7, 7], c);
            k.norm(&format!("{q}.norm"), c);
            k.layer(&format!("{q}.mlp.fc1"), &[r * c, c], r * c);
            k.layer(&format!("{q}.mlp.fc2"), &[c, r * c], c);
            k.add(&q, "gamma", &[c]);
        }
    }
    let md = cfg.mit_dims;
    for i in 0..4 {
        let (c, r, sr) = (md[i], cfg.mit_mlp_ratio, cfg.mit_sr[i]);
        let p = format!("segformer.patch_embed{}", i + 1);
        if i == 0 {
            k.add(&format!("{p}.proj"), "weight", &[c, cfg.in_chans, 7, 7]);
        } else {
            k.layer(&format!("{p}.proj"), &[c, md[i - 1], 3, 3], c);
        }
        k.norm(&format!("{p}.norm"), c);
        for b in 0..cfg.mit_depths[i] {
            let q = format!("segformer.block{}.{b}", i + 1);
            k.norm(&format!("{q}.norm1"), c);
            k.layer(&format!("{q}.attn.q"), &[c, c], c);
            k.layer(&format!("{q}.attn.kv"), &[2 * c, c], 2 * c);
            k.layer(&format!("{q}.attn.proj"), &[c, c], c);
            if sr > 1 {
                k.layer(&format!("{q}.attn.sr"), &[c, c, sr, sr], c);
                k.norm(&format!("{q}.attn.norm"), c);
            }
            k.norm(&format!("{q}.norm2"), c);
            k.layer(&format!("{q}.mlp.fc1"), &[r * c, c], r * c);
            k.layer(&format!("{q}.mlp.dwconv.dwconv"), &[r * c, 1, 3, 3], r * c);
            k.layer(&format!("{q}.mlp.fc2"), &[c, r * c], c);
        }
        k.norm(&format!("segformer.norm{}", i + 1), c);
    }
    // Decoder: ConvTranspose2d chains halving channels down to the first scale's width.
    for (j, name) in cfg.scale_names().iter().enumerate() {
        let (enc, stage) = cfg.scale(j);
        let dims = if enc == 'c' { &cd } else { &md };
        for step in 0..stage - 1 {
            let (ci, co) = (dims[stage - 1 - step], dims[stage - 2 - step]);
            k.layer(&upsample_key(name, stage, step), &[ci, co, 4, 4], co);
        }
    }
    for (j, _) in cfg.scale_names().iter().enumerate() {
        let c = if cfg.scale(j).0 == 'c' { cd[0] } else { md[0] };
        k.layer(&format!("inverse.{j}"), &[1, c, 1, 1], 1);
    }
    if cfg.has_gate() {
        let (g, h) = (cfg.gate_dim, cfg.gate_hidden);
        let gin = cfg.in_chans / 2 * 3;
        k.layer("gate.conv1", &[g, gin, 7, 7], g);
        k.norm("gate.invert.0", g);
        k.layer("gate.invert.1", &[g, g, 3, 3], g);
        k.layer("gate.invert.2", &[h, g, 1, 1], h);
        k.layer("gate.invert.3", &[g, h, 1, 1], g);
        let n = cfg.scale_names().len();
        k.layer("gate.conv2", &[n, g, 7, 7], n);
    }
    k.0
}

/// The official key of the `step`-th ConvTranspose2d of scale `name` at encoder stage `stage`:
/// a stage-2 scale has a single layer (`upsample.upsamplec2`), deeper ones a Sequential
/// (`upsample.upsamples4.2`).
pub fn upsample_key(name: &str, stage: usize, step: usize) -> String {
    if stage == 2 {
        format!("upsample.upsample{name}")
    } else {
        format!("upsample.upsample{name}.{step}")
    }
}

/// Key prefixes a checkpoint may carry that the model does not use: timm's classifier head
/// (`convnext.head.*`) and, for Mesorch-P, ConvNeXt stage 3.
pub fn unused_prefixes(variant: Variant) -> Vec<&'static str> {
    match variant {
        Variant::Mesorch => vec!["convnext.head."],
        Variant::MesorchP => vec!["convnext.head.", "convnext.stages.3."],
    }
}
