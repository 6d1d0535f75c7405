//! `wgpu-forge convert SRC DST.safetensors [--arch MODEL] [--dtype f32|f16]
//! [--allow-nonfinite]`: a PyTorch checkpoint (or safetensors file) to a checked safetensors file
//! for one architecture. Tensors holding NaN or infinities (or, for f16, values past its range)
//! are refused by name unless `--allow-nonfinite`: they would give NaN maps.

use std::path::Path;

use crate::error::Error;
use crate::models::{self, Family, Model, WeightStore};
use crate::weights::{self, SaveDType};
use crate::Result;

/// What a conversion did (printed by the command, checked by tests).
#[derive(Debug)]
pub struct Summary {
    /// The model's registry name (written as `arch`).
    pub model: &'static str,
    pub format: &'static str,
    pub tensors: usize,
    pub params: usize,
    pub dropped: Vec<String>,
    pub unexpected: Vec<String>,
    pub sha256: String,
    pub notes: Vec<String>,
}

/// How to convert.
pub struct Options {
    /// The model; `None`: recognised from the key names.
    pub family: Option<&'static dyn Family>,
    pub dtype: SaveDType,
    /// The configured model; `None`: read off the checkpoint's shapes and metadata.
    pub model: Option<Box<dyn Model>>,
    /// Write tensors holding NaN or infinite values (and f16 overflows) instead of refusing.
    pub allow_nonfinite: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { family: None, dtype: SaveDType::F32, model: None, allow_nonfinite: false }
    }
}

/// Convert `src` to `dst`; nothing is written unless every check passes, and `dst` appears
/// atomically (temporary file, then rename).
pub fn convert(src: &Path, dst: &Path, arch: Option<&str>, dtype: &str, allow_nonfinite: bool) -> Result<Summary> {
    let dtype = SaveDType::parse(dtype)?;
    let family = arch.map(models::family).transpose()?;
    convert_with(src, dst, Options { family, dtype, model: None, allow_nonfinite })
}

/// [`convert`] with every option.
pub fn convert_with(src: &Path, dst: &Path, opts: Options) -> Result<Summary> {
    let dtype = opts.dtype;
    if dst.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        return Err(Error::invalid(format!("{}: the output must end in .safetensors", dst.display())));
    }
    let mut loaded = weights::load_checkpoint(src)?;
    let family = match opts.family {
        Some(f) => f,
        None => {
            models::recognise(loaded.store.tensors.keys().map(String::as_str)).map_err(|e| e.context(src.display()))?
        }
    };
    if !family.needs_weights() {
        return Err(Error::invalid(format!("'{}' is training-free and takes no weights", family.name())));
    }
    let store = WeightStore::from_store(loaded.store);
    let model = match opts.model {
        Some(m) => m,
        None => family.configure(&store).map_err(|e| e.context(src.display()))?,
    };
    let sel = weights::select(store.into_store(), family.name(), &model.expected_keys(), &model.unused_prefixes())
        .map_err(|e| e.context(src.display()))?;
    let bad = sel.store.nonfinite(dtype);
    if !bad.is_empty() {
        let list = abbreviate(&bad);
        if !opts.allow_nonfinite {
            return Err(Error::invalid(format!(
                "{}: {} tensor{} would hold NaN or infinite values, which give NaN maps: {list}; \
                 pass --allow-nonfinite to write them anyway{}",
                src.display(),
                bad.len(),
                if bad.len() == 1 { "" } else { "s" },
                if dtype == SaveDType::F16 { " (or --dtype f32 where float16's range is the problem)" } else { "" }
            )));
        }
        loaded.notes.push(format!("--allow-nonfinite: wrote {} tensors with non-finite values: {list}", bad.len()));
    }
    let sha256 = weights::sha256_file(src)?;
    let mut store = sel.store;
    store.metadata.clear();
    store.metadata.insert("arch".into(), family.name().into());
    store.metadata.insert("config".into(), model.config_json());
    if let models::InputMode::Resized([h, w]) = model.input() {
        store.metadata.insert("input_size".into(), format!("[{h},{w}]"));
    }
    store.metadata.insert("source_sha256".into(), sha256.clone());
    store
        .metadata
        .insert("source_file".into(), src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    store.metadata.insert("converter".into(), format!("wgpu-forge {}", env!("CARGO_PKG_VERSION")));
    store.metadata.insert("dtype".into(), if dtype == SaveDType::F16 { "f16" } else { "f32" }.into());
    store.write_safetensors(dst, dtype)?;
    Ok(Summary {
        model: family.name(),
        format: loaded.format,
        tensors: store.len(),
        params: store.params(),
        dropped: sel.dropped,
        unexpected: sel.unexpected,
        sha256,
        notes: loaded.notes,
    })
}

pub fn run(src: &Path, dst: &Path, arch: Option<&str>, dtype: &str, allow_nonfinite: bool) -> Result<()> {
    let s = convert(src, dst, arch, dtype, allow_nonfinite)?;
    for n in &s.notes {
        eprintln!("note: {n}");
    }
    if !s.dropped.is_empty() {
        eprintln!("dropped {} unused keys: {}", s.dropped.len(), abbreviate(&s.dropped));
    }
    if !s.unexpected.is_empty() {
        eprintln!(
            "warning: dropped {} keys {} does not know: {}",
            s.unexpected.len(),
            s.model,
            abbreviate(&s.unexpected)
        );
    }
    println!("{} -> {}", src.display(), dst.display());
    println!("  arch:    {}", s.model);
    println!("  source:  {} (sha256 {})", s.format, s.sha256);
    println!("  tensors: {}", s.tensors);
    println!("  params:  {}", s.params);
    println!("  dropped: {}", s.dropped.len() + s.unexpected.len());
    Ok(())
}

fn abbreviate(keys: &[String]) -> String {
    let mut s = keys.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
    if keys.len() > 8 {
        s.push_str(&format!(", ... ({} more)", keys.len() - 8));
    }
    s
}
