//! Architectures a weight file can be for, their configuration (read off the weights' shapes),
//! the keys and shapes each expects, and the check that selects exactly those keys.
//!
//! One [`ArchConfig`] serves the converter (key checks, metadata) and the model builders
//! (`models::MesorchConfig::from_arch`): sizes come from the tensors themselves, and what shapes
//! cannot show (MiT head counts, the training input size) from [`ConfigHints`], which the converter
//! reads from the checkpoint's `forge` entry or a converted file's metadata.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::weights::TensorStore;

/// The model a weight file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Full Mesorch: ConvNeXt-Tiny + MiT-B3, 8 scales, gate.
    Mesorch,
    /// Mesorch-P: ConvNeXt stages 0..2, 5 scales, no gate.
    MesorchP,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Mesorch => "mesorch",
            Arch::MesorchP => "mesorch-p",
        }
    }
    pub fn parse(s: &str) -> Result<Arch> {
        match s {
            "mesorch" => Ok(Arch::Mesorch),
            "mesorch-p" | "mesorch_p" => Ok(Arch::MesorchP),
            _ => Err(Error::invalid(format!("unknown architecture '{s}' (expected mesorch or mesorch-p)"))),
        }
    }
}

/// Sizes of a Mesorch-family model. [`ArchConfig::for_arch`] gives the published ones,
/// [`ArchConfig::infer`] reads them off a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchConfig {
    pub in_chans: usize,
    pub convnext_dims: [usize; 4],
    pub convnext_depths: [usize; 4],
    /// ConvNeXt stages kept (4 for Mesorch, 3 for Mesorch-P).
    pub convnext_stages: usize,
    pub mit_dims: [usize; 4],
    pub mit_depths: [usize; 4],
    pub mit_heads: [usize; 4],
    pub mit_sr_ratios: [usize; 4],
    pub mlp_ratio: usize,
    /// Scales fed to the decoder, in order: "c1".."c4" (ConvNeXt), "s1".."s4" (MiT).
    pub scales: Vec<&'static str>,
    /// Gate (ScoreNetwork) width and hidden width; None without a gate.
    pub gate: Option<(usize, usize)>,
}

impl ArchConfig {
    pub fn for_arch(arch: Arch) -> ArchConfig {
        let base = ArchConfig {
            in_chans: 6,
            convnext_dims: [96, 192, 384, 768],
            convnext_depths: [3, 3, 9, 3],
            convnext_stages: 4,
            mit_dims: [64, 128, 320, 512],
            mit_depths: [3, 4, 18, 3],
            mit_heads: [1, 2, 5, 8],
            mit_sr_ratios: [8, 4, 2, 1],
            mlp_ratio: 4,
            scales: vec!["c1", "c2", "c3", "c4", "s1", "s2", "s3", "s4"],
            gate: Some((192, 768)),
        };
        match arch {
            Arch::Mesorch => base,
            Arch::MesorchP => {
                ArchConfig { convnext_stages: 3, scales: vec!["c1", "c3", "s2", "s3", "s4"], gate: None, ..base }
            }
        }
    }
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "in_chans": self.in_chans,
            "convnext_dims": self.convnext_dims,
            "convnext_depths": self.convnext_depths,
            "convnext_stages": self.convnext_stages,
            "mit_dims": self.mit_dims,
            "mit_depths": self.mit_depths,
            "mit_heads": self.mit_heads,
            "mit_sr_ratios": self.mit_sr_ratios,
            "mlp_ratio": self.mlp_ratio,
            "scales": self.scales,
            "gate": self.gate.map(|(c, h)| serde_json::json!({"dim": c, "hidden": h})),
        })
        .to_string()
    }
}

/// What the tensors' shapes cannot tell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigHints {
    /// MiT heads per stage; default `dim / 64` (head dim 64, as in every published MiT).
    pub mit_heads: Option<[usize; 4]>,
    /// The input size `[H, W]` the model was trained at; default 512 x 512 (the benchmark's).
    pub input_size: Option<[usize; 2]>,
}

impl ConfigHints {
    /// Hints from a converted file's metadata (`config.mit_heads`, `input_size`); absent or
    /// malformed entries are simply not hints.
    pub fn from_metadata(meta: &BTreeMap<String, String>) -> ConfigHints {
        let parse = |k: &str| meta.get(k).and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
        let heads = parse("config").and_then(|c| json_usizes::<4>(&c["mit_heads"]));
        let input = parse("input_size").and_then(|v| json_usizes::<2>(&v));
        ConfigHints { mit_heads: heads, input_size: input }
    }
}

/// `[a, b, ...]` of non-negative integers with exactly N entries.
pub fn json_usizes<const N: usize>(v: &serde_json::Value) -> Option<[usize; N]> {
    let a = v.as_array()?;
    let xs: Vec<usize> = a.iter().map(|x| x.as_u64().map(|u| u as usize)).collect::<Option<_>>()?;
    xs.try_into().ok()
}

impl ArchConfig {
    /// Read the sizes of an `arch` model off the keys and shapes in `store` (widths from the stem,
    /// downsample and patch-embedding weights, depths by counting blocks, reduction ratios from
    /// the `sr` convs, MLP ratios and gate widths from their layers). Keys that are absent fall back
    /// to the published value (a stage without any block keeps its published depth), so
    /// [`select_for_arch`] then names what is missing.
    pub fn infer(store: &TensorStore, arch: Arch, hints: &ConfigHints) -> ArchConfig {
        let shapes: BTreeMap<&str, &[usize]> =
            store.tensors.iter().map(|(k, t)| (k.as_str(), t.shape.as_slice())).collect();
        Self::infer_from_shapes(&shapes, arch, hints)
    }

    /// [`ArchConfig::infer`] over a name -> shape map.
    pub fn infer_from_shapes(shapes: &BTreeMap<&str, &[usize]>, arch: Arch, hints: &ConfigHints) -> ArchConfig {
        let mut cfg = ArchConfig::for_arch(arch);
        let dim0 = |k: &str| shapes.get(k).and_then(|s| s.first().copied());
        let count = |prefix: &str| {
            (0..)
                .take_while(|j| {
                    shapes
                        .range(format!("{prefix}.{j}.").as_str()..)
                        .next()
                        .is_some_and(|(k, _)| k.starts_with(&format!("{prefix}.{j}.")))
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
                Some(d) => cfg.convnext_dims[i] = d,
                None if i > 0 => cfg.convnext_dims[i] = 2 * cfg.convnext_dims[i - 1],
                None => {}
            }
            // A stage with no blocks at all keeps the published depth, so the key check names
            // the missing blocks instead of building a model without them.
            let n = count(&format!("convnext.stages.{i}.blocks"));
            if i < cfg.convnext_stages && n > 0 {
                cfg.convnext_depths[i] = n;
            }
            if let Some(d) = dim0(&format!("segformer.patch_embed{}.proj.weight", i + 1)) {
                cfg.mit_dims[i] = d;
            }
            let n = count(&format!("segformer.block{}", i + 1));
            if n > 0 {
                cfg.mit_depths[i] = n;
                cfg.mit_sr_ratios[i] =
                    shapes.get(format!("segformer.block{}.0.attn.sr.weight", i + 1).as_str()).map_or(1, |s| s[2]);
            }
            cfg.mit_heads[i] = (cfg.mit_dims[i] / 64).max(1);
        }
        if let Some(h) = hints.mit_heads {
            cfg.mit_heads = h;
        }
        if let Some(h) = dim0("convnext.stages.0.blocks.0.mlp.fc1.weight") {
            cfg.mlp_ratio = h / cfg.convnext_dims[0].max(1);
        }
        if let (Some((_, _)), Some(g), Some(h)) = (cfg.gate, dim0("gate.conv1.weight"), dim0("gate.invert.2.weight")) {
            cfg.gate = Some((g, h));
        }
        cfg
    }
}

/// Every key the model uses, with its shape, from the architecture (names as in the official
/// PyTorch modules: timm ConvNeXt under `convnext.`, the MiT under `segformer.`, `upsample.`,
/// `inverse.N`, `gate.`). Conv weights are `[out, in/groups, kh, kw]`, ConvTranspose2d weights
/// `[in, out, kh, kw]`, Linear weights `[out, in]`.
pub fn expected_keys(_arch: Arch, cfg: &ArchConfig) -> Vec<(String, Vec<usize>)> {
    let mut k: Vec<(String, Vec<usize>)> = Vec::new();
    let mut add = |name: String, shape: &[usize]| k.push((name, shape.to_vec()));
    let ln = |add: &mut dyn FnMut(String, &[usize]), p: &str, c: usize| {
        add(format!("{p}.weight"), &[c]);
        add(format!("{p}.bias"), &[c]);
    };
    let r = cfg.mlp_ratio;
    // ConvNeXt (timm naming).
    let cd = cfg.convnext_dims;
    add("convnext.stem.0.weight".into(), &[cd[0], cfg.in_chans, 4, 4]);
    ln(&mut add, "convnext.stem.1", cd[0]);
    for s in 0..cfg.convnext_stages {
        let c = cd[s];
        let p = format!("convnext.stages.{s}");
        if s > 0 {
            ln(&mut add, &format!("{p}.downsample.0"), cd[s - 1]);
            add(format!("{p}.downsample.1.weight"), &[c, cd[s - 1], 2, 2]);
            add(format!("{p}.downsample.1.bias"), &[c]);
        }
        for b in 0..cfg.convnext_depths[s] {
            let q = format!("{p}.blocks.{b}");
            add(format!("{q}.conv_dw.weight"), &[c, 1, 7, 7]);
            add(format!("{q}.conv_dw.bias"), &[c]);
            ln(&mut add, &format!("{q}.norm"), c);
            add(format!("{q}.mlp.fc1.weight"), &[r * c, c]);
            add(format!("{q}.mlp.fc1.bias"), &[r * c]);
            add(format!("{q}.mlp.fc2.weight"), &[c, r * c]);
            add(format!("{q}.mlp.fc2.bias"), &[c]);
            add(format!("{q}.gamma"), &[c]);
        }
    }
    // MiT (SegFormer mix_transformer naming).
    let md = cfg.mit_dims;
    for i in 0..4 {
        let c = md[i];
        let p = format!("segformer.patch_embed{}", i + 1);
        if i == 0 {
            add(format!("{p}.proj.weight"), &[c, cfg.in_chans, 7, 7]);
        } else {
            add(format!("{p}.proj.weight"), &[c, md[i - 1], 3, 3]);
            add(format!("{p}.proj.bias"), &[c]);
        }
        ln(&mut add, &format!("{p}.norm"), c);
        let sr = cfg.mit_sr_ratios[i];
        for b in 0..cfg.mit_depths[i] {
            let q = format!("segformer.block{}.{b}", i + 1);
            ln(&mut add, &format!("{q}.norm1"), c);
            add(format!("{q}.attn.q.weight"), &[c, c]);
            add(format!("{q}.attn.q.bias"), &[c]);
            add(format!("{q}.attn.kv.weight"), &[2 * c, c]);
            add(format!("{q}.attn.kv.bias"), &[2 * c]);
            add(format!("{q}.attn.proj.weight"), &[c, c]);
            add(format!("{q}.attn.proj.bias"), &[c]);
            if sr > 1 {
                add(format!("{q}.attn.sr.weight"), &[c, c, sr, sr]);
                add(format!("{q}.attn.sr.bias"), &[c]);
                ln(&mut add, &format!("{q}.attn.norm"), c);
            }
            ln(&mut add, &format!("{q}.norm2"), c);
            add(format!("{q}.mlp.fc1.weight"), &[r * c, c]);
            add(format!("{q}.mlp.fc1.bias"), &[r * c]);
            add(format!("{q}.mlp.dwconv.dwconv.weight"), &[r * c, 1, 3, 3]);
            add(format!("{q}.mlp.dwconv.dwconv.bias"), &[r * c]);
            add(format!("{q}.mlp.fc2.weight"), &[c, r * c]);
            add(format!("{q}.mlp.fc2.bias"), &[c]);
        }
        ln(&mut add, &format!("segformer.norm{}", i + 1), c);
    }
    // Decoder: ConvTranspose2d chains halving channels down to the first scale's width.
    for scale in &cfg.scales {
        let (dims, lvl, tag) = match scale.as_bytes() {
            [b'c', n] => (&cd, (n - b'1') as usize, 'c'),
            [b's', n] => (&md, (n - b'1') as usize, 's'),
            _ => continue,
        };
        let name = format!("upsample.upsample{tag}{}", lvl + 1);
        for j in 0..lvl {
            let (cin, cout) = (dims[lvl - j], dims[lvl - j - 1]);
            let p = if lvl == 1 { name.clone() } else { format!("{name}.{j}") };
            add(format!("{p}.weight"), &[cin, cout, 4, 4]);
            add(format!("{p}.bias"), &[cout]);
        }
    }
    for (i, scale) in cfg.scales.iter().enumerate() {
        let c = if scale.starts_with('c') { cd[0] } else { md[0] };
        add(format!("inverse.{i}.weight"), &[1, c, 1, 1]);
        add(format!("inverse.{i}.bias"), &[1]);
    }
    if let Some((g, h)) = cfg.gate {
        let gin = cfg.in_chans / 2 * 3;
        add("gate.conv1.weight".into(), &[g, gin, 7, 7]);
        add("gate.conv1.bias".into(), &[g]);
        ln(&mut add, "gate.invert.0", g);
        add("gate.invert.1.weight".into(), &[g, g, 3, 3]);
        add("gate.invert.1.bias".into(), &[g]);
        add("gate.invert.2.weight".into(), &[h, g, 1, 1]);
        add("gate.invert.2.bias".into(), &[h]);
        add("gate.invert.3.weight".into(), &[g, h, 1, 1]);
        add("gate.invert.3.bias".into(), &[g]);
        add("gate.conv2.weight".into(), &[cfg.scales.len(), g, 7, 7]);
        add("gate.conv2.bias".into(), &[cfg.scales.len()]);
    }
    k
}

/// Key prefixes a checkpoint may carry that the model does not use: timm's classifier head
/// (`convnext.head.*`) and, for Mesorch-P, ConvNeXt stage 3. They are dropped and reported.
pub fn unused_prefixes(arch: Arch) -> Vec<&'static str> {
    match arch {
        Arch::Mesorch => vec!["convnext.head."],
        Arch::MesorchP => vec!["convnext.head.", "convnext.stages.3."],
    }
}

/// Mesorch has `gate.*` (and ConvNeXt stage 3); Mesorch-P has neither gate nor, in the official
/// code, stage 3.
pub fn detect_arch(store: &TensorStore) -> Result<Arch> {
    let has = |p: &str| store.tensors.keys().any(|k| k.starts_with(p));
    if !has("convnext.") || !has("segformer.") {
        let sample: Vec<&str> = store.tensors.keys().take(5).map(String::as_str).collect();
        return Err(Error::invalid(format!(
            "cannot tell the architecture: no 'convnext.*'/'segformer.*' keys (first keys: {})",
            sample.join(", ")
        )));
    }
    if has("gate.") {
        Ok(Arch::Mesorch)
    } else {
        Ok(Arch::MesorchP)
    }
}

/// Result of checking a store against an architecture.
#[derive(Debug)]
pub struct Selection {
    /// Exactly the expected keys, in the store's (sorted) order.
    pub store: TensorStore,
    /// Known-unused keys that were dropped (classifier head, Mesorch-P's stage 3).
    pub dropped: Vec<String>,
    /// Keys the architecture does not know at all (also dropped; callers may refuse them).
    pub unexpected: Vec<String>,
}

/// Keep exactly the keys of `expected_keys(arch, cfg)`: a missing key is an error naming it, a
/// wrong shape an error naming the key and both shapes; other keys are dropped and listed.
pub fn select_for_arch(mut store: TensorStore, arch: Arch, cfg: &ArchConfig) -> Result<Selection> {
    let expected = expected_keys(arch, cfg);
    let mut out = TensorStore::new();
    let mut missing = Vec::new();
    for (name, shape) in &expected {
        match store.tensors.remove(name) {
            None => missing.push(name.clone()),
            Some(t) if &t.shape != shape => {
                return Err(Error::invalid(format!(
                    "key '{name}' has shape {:?}, {} expects {shape:?}",
                    t.shape,
                    arch.name()
                )))
            }
            Some(t) => out.insert(name.clone(), t),
        }
    }
    if !missing.is_empty() {
        let more = if missing.len() > 5 { format!(" (and {} more)", missing.len() - 5) } else { String::new() };
        return Err(Error::invalid(format!(
            "{} keys missing for {}: {}{more}",
            missing.len(),
            arch.name(),
            missing.iter().take(5).map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ")
        )));
    }
    let prefixes = unused_prefixes(arch);
    let (dropped, unexpected): (Vec<String>, Vec<String>) =
        store.tensors.into_keys().partition(|k| prefixes.iter().any(|p| k.starts_with(p)));
    out.metadata = std::mem::take(&mut store.metadata);
    Ok(Selection { store: out, dropped, unexpected })
}
