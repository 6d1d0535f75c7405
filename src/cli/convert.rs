//! `wgpu-forge convert SRC DST.safetensors [--arch mesorch|mesorch-p] [--dtype f32|f16]`:
//! a PyTorch checkpoint (or safetensors file) to a checked safetensors file for one architecture.

use std::path::Path;

use crate::error::Error;
use crate::weights::{self, Arch, ArchConfig, SaveDType};
use crate::Result;

/// What a conversion did (printed by the command, checked by tests).
#[derive(Debug)]
pub struct Summary {
    pub arch: Arch,
    pub format: &'static str,
    pub tensors: usize,
    pub params: usize,
    pub dropped: Vec<String>,
    pub unexpected: Vec<String>,
    pub sha256: String,
    pub notes: Vec<String>,
}

/// Convert `src` to `dst`; nothing is written unless every check passes, and `dst` appears
/// atomically (temporary file, then rename).
pub fn convert(src: &Path, dst: &Path, arch: Option<&str>, dtype: &str) -> Result<Summary> {
    let dtype = SaveDType::parse(dtype)?;
    let arch = arch.map(Arch::parse).transpose()?;
    convert_with(src, dst, arch, dtype, None)
}

/// [`convert`] with an explicit configuration; `None` = read off the checkpoint's shapes.
pub fn convert_with(
    src: &Path,
    dst: &Path,
    arch: Option<Arch>,
    dtype: SaveDType,
    cfg: Option<ArchConfig>,
) -> Result<Summary> {
    if dst.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        return Err(Error::invalid(format!("{}: the output must end in .safetensors", dst.display())));
    }
    let loaded = weights::load_checkpoint(src)?;
    let arch = match arch {
        Some(a) => a,
        None => weights::detect_arch(&loaded.store).map_err(|e| e.context(src.display()))?,
    };
    let cfg = cfg.unwrap_or_else(|| ArchConfig::infer(&loaded.store, arch, &loaded.hints));
    let hints = loaded.hints.clone();
    let sel = weights::select_for_arch(loaded.store, arch, &cfg).map_err(|e| e.context(src.display()))?;
    let sha256 = weights::sha256_file(src)?;
    let mut store = sel.store;
    store.metadata.clear();
    store.metadata.insert("arch".into(), arch.name().into());
    store.metadata.insert("config".into(), cfg.to_json());
    if let Some([h, w]) = hints.input_size {
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
        arch,
        format: loaded.format,
        tensors: store.len(),
        params: store.params(),
        dropped: sel.dropped,
        unexpected: sel.unexpected,
        sha256,
        notes: loaded.notes,
    })
}

pub fn run(src: &Path, dst: &Path, arch: Option<&str>, dtype: &str) -> Result<()> {
    let s = convert(src, dst, arch, dtype)?;
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
            s.arch.name(),
            abbreviate(&s.unexpected)
        );
    }
    println!("{} -> {}", src.display(), dst.display());
    println!("  arch:    {}", s.arch.name());
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
