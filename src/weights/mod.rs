//! Model weights: reading PyTorch checkpoints without Python, the name -> tensor store, safetensors
//! files, and the key/shape checks for each architecture.
//!
//! - [`pickle`]: a pickle reader that interprets data only (never executes anything).
//! - [`torchzip`]: the zip container `torch.save` writes.
//! - [`store`]: [`TensorStore`], safetensors read/write, dtype conversion.
//! - this file: [`load_checkpoint`] (torch zip or safetensors -> f32 tensors, materializing shared
//!   and strided views), [`Arch`], [`ArchConfig`], [`expected_keys`], [`detect_arch`] and
//!   [`select_for_arch`].

pub mod pickle;
pub mod store;
pub mod testkit;
pub mod torchzip;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use pickle::{StorageDType, TensorRef, Value};
pub use store::{SaveDType, TensorStore};
use torchzip::TorchArchive;

/// What [`load_checkpoint`] found.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub store: TensorStore,
    /// "torch-zip" or "safetensors".
    pub format: &'static str,
    /// Tensors per source element type (e.g. "float32" -> 804).
    pub source_dtypes: BTreeMap<String, usize>,
    /// Things worth telling the user (keys ignored, prefixes stripped, non-tensor entries skipped).
    pub notes: Vec<String>,
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| store::io_err(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| store::io_err(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Read a checkpoint: a `torch.save` zip (official dict with `model`, or a bare state_dict) or a
/// safetensors file. All floating tensors come back as f32. Errors name the file.
pub fn load_checkpoint(path: &Path) -> Result<Loaded> {
    let f = File::open(path).map_err(|e| store::io_err(path, e))?;
    let mut head = [0u8; 9];
    let n = (&f).take(9).read(&mut head).map_err(|e| store::io_err(path, e))?;
    let head = &head[..n];
    let res = if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        load_torch_zip(BufReader::new(f))
    } else if head.len() == 9 && head[8] == b'{' {
        drop(f);
        let bytes = std::fs::read(path).map_err(|e| store::io_err(path, e))?;
        TensorStore::from_safetensors_bytes(&bytes).map(|store| {
            let mut source_dtypes = BTreeMap::new();
            source_dtypes.insert("safetensors".to_string(), store.len());
            Loaded { store, format: "safetensors", source_dtypes, notes: Vec::new() }
        })
    } else if head.first() == Some(&0x80) {
        Err(Error::invalid(
            "legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a recent PyTorch \
             (torch.save(torch.load(f), g)) or convert to safetensors",
        ))
    } else {
        Err(Error::invalid("not a PyTorch zip checkpoint or a safetensors file"))
    };
    res.map_err(|e| e.context(path.display()))
}

/// Read a torch.save zip from any seekable source.
pub fn load_torch_zip<R: Read + Seek>(inner: R) -> Result<Loaded> {
    let mut ar = TorchArchive::new(inner)?;
    let root = pickle::load(&ar.pickle()?)?;
    let mut notes = Vec::new();
    let sd = find_state_dict(&root, &mut notes)?;

    let mut entries: Vec<(String, TensorRef)> = Vec::new();
    for (k, v) in sd {
        let Some(name) = k.as_str() else {
            notes.push(format!("skipped a state_dict entry whose key is a {}", k.kind()));
            continue;
        };
        match v {
            Value::Tensor(t) => entries.push((name.to_string(), t.clone())),
            other => notes.push(format!("skipped '{name}': a {}, not a tensor", other.kind())),
        }
    }
    if entries.is_empty() {
        return Err(Error::invalid("the state_dict holds no tensors"));
    }
    if entries.iter().all(|(n, _)| n.starts_with("module.")) {
        for (n, _) in entries.iter_mut() {
            *n = n["module.".len()..].to_string();
        }
        notes.push("stripped the 'module.' prefix (DataParallel) from every key".into());
    }

    // Read each storage once, then materialize every tensor that views it.
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, (_, t)) in entries.iter().enumerate() {
        by_key.entry(t.storage.key.clone()).or_default().push(i);
    }
    let mut keys: Vec<_> = by_key.keys().cloned().collect();
    keys.sort();
    let mut out: Vec<Option<Tensor>> = vec![None; entries.len()];
    let mut source_dtypes = BTreeMap::new();
    for key in keys {
        let idx = &by_key[&key];
        let s = &entries[idx[0]].1.storage;
        let el = s.dtype.size() as u64;
        let need = s.numel.checked_mul(el).ok_or_else(|| Error::invalid(format!("storage '{key}': size overflows")))?;
        let have = ar.storage_len(&key).ok_or_else(|| {
            Error::invalid(format!("storage '{key}' (tensor '{}') has no entry data/{key}", entries[idx[0]].0))
        })?;
        if have < need {
            return Err(Error::invalid(format!(
                "storage '{key}' declares {} {} elements ({need} bytes) but its entry holds {have} bytes",
                s.numel,
                s.dtype.name()
            )));
        }
        let bytes = ar.storage(&key, need)?;
        for &i in idx {
            let (name, t) = &entries[i];
            if t.storage.dtype != s.dtype {
                return Err(Error::invalid(format!("storage '{key}' is viewed with two element types")));
            }
            let data = materialize(&bytes, s.dtype, t).map_err(|e| e.context(format!("tensor '{name}'")))?;
            let shape: Vec<usize> = t.size.iter().map(|&d| d as usize).collect();
            out[i] = Some(Tensor::new(&shape, data)?);
            *source_dtypes.entry(s.dtype.name().to_string()).or_insert(0) += 1;
        }
    }
    let mut store = TensorStore::new();
    for ((name, _), t) in entries.into_iter().zip(out) {
        if store.tensors.contains_key(&name) {
            return Err(Error::invalid(format!("key '{name}' appears twice in the state_dict")));
        }
        store.insert(name, t.expect("every entry belongs to a storage"));
    }
    Ok(Loaded { store, format: "torch-zip", source_dtypes, notes })
}

/// `model` of the official dict, `state_dict` of the common one, or the root itself.
fn find_state_dict<'v>(root: &'v Value, notes: &mut Vec<String>) -> Result<&'v [(Value, Value)]> {
    let Value::Dict(items) = root else {
        return Err(Error::invalid(format!("the pickled root is a {}, expected a dict", root.kind())));
    };
    let top_keys = || items.iter().map(|(k, _)| k.as_str().unwrap_or("?").to_string()).collect::<Vec<_>>();
    for wanted in ["model", "state_dict"] {
        if let Some(v) = root.get(wanted) {
            let Value::Dict(sd) = v else {
                return Err(Error::invalid(format!("'{wanted}' is a {}, expected a state_dict", v.kind())));
            };
            let others: Vec<String> = top_keys().into_iter().filter(|k| k != wanted).collect();
            if !others.is_empty() {
                notes.push(format!("using '{wanted}'; ignored top-level entries: {}", others.join(", ")));
            }
            return Ok(sd);
        }
    }
    if items.iter().any(|(_, v)| matches!(v, Value::Tensor(_))) {
        return Ok(items);
    }
    Err(Error::invalid(format!("no 'model' entry and no tensors at the top level (keys: {})", top_keys().join(", "))))
}

/// Gather a (possibly strided, possibly offset) view of a storage into a contiguous f32 vector.
/// Views larger than their storage (stride-0 expansions) are refused, which bounds the allocation.
pub fn materialize(bytes: &[u8], dt: StorageDType, t: &TensorRef) -> Result<Vec<f32>> {
    let avail = (bytes.len() / dt.size()) as u64;
    let mut numel: u64 = 1;
    for &d in &t.size {
        numel = numel.checked_mul(d).ok_or_else(|| Error::invalid(format!("size {:?} overflows", t.size)))?;
    }
    if numel == 0 {
        return Ok(Vec::new());
    }
    if numel > avail {
        return Err(Error::invalid(format!(
            "view of {numel} elements is larger than its storage of {avail} (expanded views are not supported)"
        )));
    }
    let mut last = t.offset;
    for (&d, &s) in t.size.iter().zip(&t.stride) {
        last =
            (d - 1).checked_mul(s).and_then(|x| last.checked_add(x)).ok_or_else(|| Error::invalid("view overflows"))?;
    }
    if last >= avail {
        return Err(Error::invalid(format!(
            "view (offset {}, size {:?}, stride {:?}) reaches element {last} of a storage of {avail}",
            t.offset, t.size, t.stride
        )));
    }
    let (size, stride): (Vec<usize>, Vec<usize>) =
        t.size.iter().zip(&t.stride).map(|(&a, &b)| (a as usize, b as usize)).unzip();
    let mut out = Vec::with_capacity(numel as usize);
    let contiguous = {
        let mut expect = 1usize;
        let mut ok = true;
        for i in (0..size.len()).rev() {
            if size[i] != 1 && stride[i] != expect {
                ok = false;
            }
            expect *= size[i];
        }
        ok
    };
    let off = t.offset as usize;
    if contiguous {
        out.extend((off..off + numel as usize).map(|i| store::element(bytes, dt, i)));
        return Ok(out);
    }
    let mut idx = vec![0usize; size.len()];
    let mut pos = off;
    for _ in 0..numel {
        out.push(store::element(bytes, dt, pos));
        // Odometer step over the multi-index.
        for ax in (0..size.len()).rev() {
            idx[ax] += 1;
            pos += stride[ax];
            if idx[ax] < size[ax] {
                break;
            }
            pos -= stride[ax] * size[ax];
            idx[ax] = 0;
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Architectures

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

/// Sizes of the model, fixed per architecture (the published Mesorch / Mesorch-P configurations).
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

#[cfg(test)]
mod tests;
