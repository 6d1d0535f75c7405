//! `wgpu-forge infer [--weights FILE] [--out DIR] [--save-raw] INPUT...`: run a model on images and
//! write, per input with stem S, `S.mask.png` (p > threshold) and with `--save-raw` `S.prob.npy`
//! (float32 H x W at the image's size) and `S.model.npy` (float32 at the model's resolution).
//!
//! One bad input never stops the batch: its error is printed with the file's name and the run
//! ends with exit code 1. Every file is written atomically.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cli::DeviceArgs;
use crate::error::{Error, Result};
use crate::imageio::{load_rgb8_with, LoadOptions};
use crate::pipeline::{Detection, Detector};
use crate::report::{npy_f32, png_gray8, write_atomic};

/// Options of `infer`.
#[derive(clap::Args, Debug, Clone)]
pub struct InferArgs {
    /// Images to analyse.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Converted weights (.safetensors from `wgpu-forge convert`); default: the shipped
    /// weights/mesorch-compact.safetensors (env FORGE_WEIGHTS).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Model name (default: the weights' `arch` metadata).
    #[arg(long)]
    pub model: Option<String>,
    /// Output folder.
    #[arg(long, default_value = "forge-out")]
    pub out: PathBuf,
    /// Also write S.prob.npy and S.model.npy.
    #[arg(long)]
    pub save_raw: bool,
    /// Mask threshold: a pixel is marked when p > threshold.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Refuse images with more pixels than this (decompression-bomb guard).
    #[arg(long, default_value_t = crate::imageio::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

/// Shipped default weights, looked up in FORGE_WEIGHTS, ./weights/ and the source tree.
pub const DEFAULT_WEIGHTS: &str = "weights/mesorch-compact.safetensors";

pub fn default_weights() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FORGE_WEIGHTS") {
        return Some(PathBuf::from(p));
    }
    [PathBuf::from(DEFAULT_WEIGHTS), Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_WEIGHTS)]
        .into_iter()
        .find(|p| p.is_file())
}

/// Run the command; returns how many inputs failed.
pub fn run(dev: &DeviceArgs, args: &InferArgs) -> Result<usize> {
    if !(0.0..1.0).contains(&args.threshold) {
        return Err(Error::invalid(format!("--threshold {} must be in [0, 1)", args.threshold)));
    }
    let weights = match &args.weights {
        Some(w) => w.clone(),
        None => default_weights().ok_or_else(|| {
            Error::invalid(format!(
                "no weights: pass --weights FILE (a .safetensors made by `wgpu-forge convert`), \
                 or set FORGE_WEIGHTS; the shipped default {DEFAULT_WEIGHTS} was not found"
            ))
        })?,
    };
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Error::new(crate::error::ErrorKind::Io, format!("cannot create {}: {e}", args.out.display())))?;
    let gpu = dev.open()?;
    let t = Instant::now();
    let mut det = Detector::from_weights_file(&gpu, &weights, args.model.as_deref(), None)?;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let mem = det.plan_stats().map_or(String::new(), |s| {
        format!(
            "; GPU memory {:.1} MiB (weights {:.1}, activations {:.1}, scratch {:.1})",
            mib(s.peak_activation_bytes + s.weight_bytes + s.scratch_bytes + s.uniform_bytes),
            mib(s.weight_bytes),
            mib(s.peak_activation_bytes),
            mib(s.scratch_bytes)
        )
    });
    eprintln!(
        "{} ({}) on {}: planned in {:.1} s{mem}",
        det.model,
        weights.display(),
        gpu.info.name,
        t.elapsed().as_secs_f64()
    );
    let load = LoadOptions { max_pixels: args.max_pixels, ..LoadOptions::default() };
    let stems = unique_stems(&args.inputs);
    let mut failed = 0;
    for (input, stem) in args.inputs.iter().zip(&stems) {
        match one(&mut det, input, stem, args, &load) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                failed += 1;
                eprintln!("wgpu-forge: {}: {e}", input.display());
            }
        }
    }
    Ok(failed)
}

fn one(det: &mut Detector, input: &Path, stem: &str, args: &InferArgs, load: &LoadOptions) -> Result<String> {
    let t = Instant::now();
    let img = load_rgb8_with(input, load)?;
    let decode_s = t.elapsed().as_secs_f64();
    let mut d = det.detect(&img)?;
    d.timings.decode_s = decode_s;
    write_outputs(&d, &args.out, stem, args.threshold, args.save_raw)?;
    let marked = d.prob.iter().filter(|&&p| p > args.threshold).count();
    let max = d.prob.iter().cloned().fold(0.0f32, f32::max);
    Ok(format!(
        "{}: {}x{}, max p {max:.3}, {:.2}% of pixels above {}, {:.2} s (GPU {:.2} s) -> {}",
        input.display(),
        d.width,
        d.height,
        100.0 * marked as f64 / d.prob.len() as f64,
        args.threshold,
        t.elapsed().as_secs_f64(),
        d.timings.gpu_s,
        args.out.join(format!("{stem}.mask.png")).display()
    ))
}

/// The files of one detection: `S.mask.png`, and with `raw` `S.prob.npy` and `S.model.npy`.
pub fn write_outputs(d: &Detection, dir: &Path, stem: &str, threshold: f32, raw: bool) -> Result<()> {
    let mask: Vec<u8> = d.prob.iter().map(|&p| if p > threshold { 255 } else { 0 }).collect();
    // Encode everything first, then write, so an encoding error leaves no partial set behind.
    let mut files = vec![(format!("{stem}.mask.png"), png_gray8(d.width, d.height, mask)?)];
    if raw {
        files.push((format!("{stem}.prob.npy"), npy_f32(&[d.height, d.width], &d.prob)?));
        files.push((format!("{stem}.model.npy"), npy_f32(&d.model_size, &d.model_prob)?));
    }
    for (name, bytes) in files {
        write_atomic(&dir.join(name), &bytes)?;
    }
    Ok(())
}

/// File stems, made unique within the batch (`a/x.jpg`, `b/x.png` -> `x`, `x-2`).
pub fn unique_stems(inputs: &[PathBuf]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    inputs
        .iter()
        .map(|p| {
            let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
            let n = seen.entry(stem.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                stem
            } else {
                format!("{stem}-{n}")
            }
        })
        .collect()
}
