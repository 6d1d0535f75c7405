//! Model weights: reading PyTorch checkpoints without Python, the name -> tensor store, safetensors
//! files, and the key/shape checks for each architecture.
//!
//! - [`pickle`]: a pickle reader that interprets data only (never executes anything).
//! - [`torchzip`]: the zip container `torch.save` writes.
//! - [`store`]: [`TensorStore`], safetensors read/write, dtype conversion.
//! - this file: [`load_checkpoint`] (torch zip or safetensors -> f32 tensors, materializing shared
//!   and strided views) and [`select`] (keep exactly the keys a model expects).
//!
//! Nothing here knows a model: which keys a model needs comes from `models`.

pub mod pickle;
pub mod store;
pub mod testkit;
pub mod torchzip;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, Read, Seek};
use std::path::Path;

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
    crate::fileio::sha256_file(path, "file")
}

/// Hex sha256 of bytes already in memory (the same digest as [`sha256_file`] of a file holding them).
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::fileio::sha256_hex(bytes)
}

/// Read a checkpoint: a `torch.save` zip (official dict with `model`, or a bare state_dict) or a
/// safetensors file. All floating tensors come back as f32. Errors name the file.
pub fn load_checkpoint(path: &Path) -> Result<Loaded> {
    let (f, _) = crate::fileio::open_regular(path, "checkpoint")?;
    let mut head = [0u8; 9];
    let n = (&f).take(9).read(&mut head).map_err(|e| store::io_err(path, e))?;
    let head = &head[..n];
    let res = if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        load_torch_zip(BufReader::new(f))
    } else if head.len() == 9 && head[8] == b'{' {
        drop(f);
        let bytes =
            crate::fileio::read_regular(path, store::MAX_SAFETENSORS_BYTES, "checkpoint", store::MAX_SAFETENSORS_NOTE)?;
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

/// Bytes of f32 tensors a checkpoint may materialize whatever its size.
pub const TENSOR_BASE_BUDGET: u64 = 160 << 20;
/// Further f32 bytes allowed per byte of the checkpoint file. One-byte storages widened to f32
/// take 4x, a few views of each storage a few times that; many overlapping views of one storage
/// could take any multiple, and are refused past this. With it, `convert` peaks at 1.5x these
/// tensors (the f16 copy it writes) plus the largest storage: under 64x the file + 256 MB.
pub const TENSOR_BYTES_PER_FILE_BYTE: u64 = 40;

/// Read a torch.save zip from any seekable source. Memory stays proportional to the file: the
/// pickle runs under [`pickle::Limits::for_file`] and the tensors it describes may take at most
/// [`TENSOR_BASE_BUDGET`] + [`TENSOR_BYTES_PER_FILE_BYTE`] x the file's length as f32.
pub fn load_torch_zip<R: Read + Seek>(inner: R) -> Result<Loaded> {
    let mut ar = TorchArchive::new(inner)?;
    let file_len = ar.zip.file_len();
    let root = pickle::load_with(&ar.pickle()?, pickle::Limits::for_file(file_len))?;
    let mut notes = Vec::new();
    let (entries, metadata) = tensor_entries(&root, &mut notes)?;
    drop(root); // everything needed from the pickled tree is in `entries` now

    let budget = TENSOR_BASE_BUDGET.saturating_add(TENSOR_BYTES_PER_FILE_BYTE.saturating_mul(file_len));
    let mut total: u64 = 0;
    for (name, t) in &entries {
        let numel = t.size.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        total = numel.and_then(|n| n.checked_mul(4)).and_then(|b| total.checked_add(b)).unwrap_or(u64::MAX);
        if total > budget {
            return Err(Error::invalid(format!(
                "the tensors (up to '{name}') would take more than {} MiB as float32 ({} MiB + \
                 {TENSOR_BYTES_PER_FILE_BYTE} times the {file_len}-byte file): too many overlapping views \
                 of its storages",
                budget >> 20,
                TENSOR_BASE_BUDGET >> 20
            )));
        }
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
    let mut store = TensorStore { metadata, ..TensorStore::new() };
    for ((name, _), t) in entries.into_iter().zip(out) {
        if store.tensors.contains_key(&name) {
            return Err(Error::invalid(format!("key '{name}' appears twice in the state_dict")));
        }
        store.insert(name, t.expect("every entry belongs to a storage"));
    }
    Ok(Loaded { store, format: "torch-zip", source_dtypes, notes })
}

/// The state_dict's tensors by name (the 'module.' prefix of DataParallel stripped) and the
/// metadata of the `forge` entry.
fn tensor_entries(
    root: &Value,
    notes: &mut Vec<String>,
) -> Result<(Vec<(String, TensorRef)>, BTreeMap<String, String>)> {
    let sd = find_state_dict(root, notes)?;
    let mut entries: Vec<(String, TensorRef)> = Vec::new();
    for (k, v) in sd {
        let Some(name) = k.as_str() else {
            notes.push(format!("skipped a state_dict entry whose key is a {}", k.kind()));
            continue;
        };
        match v {
            Value::Tensor(t) => entries.push((name.to_string(), (**t).clone())),
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
    Ok((entries, forge_metadata(root)))
}

/// Metadata from an optional top-level `forge` dict, which our training harness writes:
/// `{"input_size": [H, W], "config": {"mit_heads": [..4], ...}}`, as the JSON text a converted
/// file's metadata holds (`input_size`, `config`); the model reads what it needs from them.
/// Anything that is not plain data is left out.
fn forge_metadata(root: &Value) -> BTreeMap<String, String> {
    let Some(Value::Dict(items)) = root.get("forge") else { return BTreeMap::new() };
    items
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), to_json(v, 0)?.to_string())))
        .filter(|(k, _)| k == "input_size" || k == "config")
        .collect()
}

/// A pickled value of plain data (numbers, strings, lists, tuples, dicts with string keys) as
/// JSON; `None` for anything else or deeper than 8 levels.
fn to_json(v: &Value, depth: u32) -> Option<serde_json::Value> {
    if depth > 8 {
        return None;
    }
    Some(match v {
        Value::None => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) => serde_json::Number::from_f64(*f)?.into(),
        Value::Str(s) => s.as_str().into(),
        Value::List(xs) | Value::Tuple(xs) => {
            xs.iter().map(|x| to_json(x, depth + 1)).collect::<Option<Vec<_>>>()?.into()
        }
        Value::Dict(items) => items
            .iter()
            .map(|(k, x)| Some((k.as_str()?.to_string(), to_json(x, depth + 1)?)))
            .collect::<Option<serde_json::Map<_, _>>>()?
            .into(),
        _ => return None,
    })
}

/// What [`select`] kept and dropped.
#[derive(Debug)]
pub struct Selection {
    /// Exactly the expected keys, in the store's (sorted) order.
    pub store: TensorStore,
    /// Known-unused keys that were dropped (a classifier head, a pruned stage).
    pub dropped: Vec<String>,
    /// Keys the model does not know at all (also dropped; callers may refuse them).
    pub unexpected: Vec<String>,
}

/// Keep exactly the `expected` keys of model `model`: a missing key is an error naming it, a
/// wrong shape an error naming the key and both shapes; other keys are dropped and listed, as
/// known (under `unused_prefixes`, or BatchNorm's `num_batches_tracked`) or unexpected.
pub fn select(
    mut store: TensorStore,
    model: &str,
    expected: &[(String, Vec<usize>)],
    unused_prefixes: &[&str],
) -> Result<Selection> {
    let mut out = TensorStore::new();
    let mut missing = Vec::new();
    for (name, shape) in expected {
        match store.tensors.remove(name) {
            None => missing.push(name.clone()),
            Some(t) if &t.shape != shape => {
                return Err(Error::invalid(format!("key '{name}' has shape {:?}, {model} expects {shape:?}", t.shape)))
            }
            Some(t) => out.insert(name.clone(), t),
        }
    }
    if !missing.is_empty() {
        let more = if missing.len() > 5 { format!(" (and {} more)", missing.len() - 5) } else { String::new() };
        return Err(Error::invalid(format!(
            "{} keys missing for {model}: {}{more}",
            missing.len(),
            missing.iter().take(5).map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ")
        )));
    }
    // BatchNorm's step counter is training state every torch checkpoint carries: known, unused.
    let known = |k: &String| unused_prefixes.iter().any(|p| k.starts_with(p)) || k.ends_with(".num_batches_tracked");
    let (dropped, unexpected): (Vec<String>, Vec<String>) = store.tensors.into_keys().partition(known);
    out.metadata = std::mem::take(&mut store.metadata);
    Ok(Selection { store: out, dropped, unexpected })
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

#[cfg(test)]
mod tests;
