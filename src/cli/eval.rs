//! `wgpu-forge eval --images DIR --masks DIR [--weights FILE | --model NAME] [--out DIR]
//! [--perturb SPEC] [--threshold 0.5] [--resolution image|model] [--authentic-without-mask]`:
//! run a detector over images paired with ground-truth masks and print the benchmark's metrics
//! per image and averaged over images (see `docs/eval.md` and `eval::metrics`).
//!
//! With `--out DIR` it writes `metrics.json` and `per_image.csv`, and with `--perturb` also
//! `robustness.png`, each atomically. One bad pair (unreadable file, mask of another size) never
//! stops the run: it is named on stderr and the run ends with exit code 1.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::cli::infer::open_detector;
use crate::cli::DeviceArgs;
use crate::error::{Error, ErrorKind, Result};
use crate::eval::metrics::{image_level, image_metrics, ImageLevel, ImageMetrics, MeanMetrics};
use crate::eval::pairs::{check_same_size, load_mask, pair_folders, BinaryMask, Pair, Pairing};
use crate::eval::perturb::{parse_spec, Perturbation};
use crate::eval::plot::{robustness_png, Series};
use crate::fileio::{remove_stale_temps, write_set};
use crate::imageio::{load_rgb8_with, LoadOptions};
use crate::pipeline::{Detection, Detector};

/// Options of `eval`.
#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// Folder of images to evaluate.
    #[arg(long)]
    pub images: PathBuf,
    /// Folder of ground-truth masks, paired by stem (`x.png`, `x_gt.png`, `x_mask.png`, `x-mask.png`,
    /// `x.mask.png`); may be the images folder.
    #[arg(long)]
    pub masks: PathBuf,
    /// Converted weights (.safetensors from `wgpu-forge convert`); default as for `infer`.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Model name (default: the weights' `arch` metadata).
    #[arg(long)]
    pub model: Option<String>,
    /// Write metrics.json, per_image.csv (and robustness.png with --perturb) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Robustness protocol: `noise:3,7,...` (variances), `blur:3,5,...` (kernel sizes),
    /// `jpeg:100,90,...` (qualities); repeat the flag or join with `;`.
    #[arg(long)]
    pub perturb: Vec<String>,
    /// A pixel is marked tampered when p > threshold (also the image-score threshold).
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Score the map at the image's size, or at the model's with masks resized (nearest) to it
    /// as the benchmark does (512 x 512).
    #[arg(long, default_value = "image", value_parser = ["image", "model"])]
    pub resolution: String,
    /// Evaluate images without a mask as authentic (empty ground truth) instead of skipping them.
    #[arg(long)]
    pub authentic_without_mask: bool,
    /// Refuse images with more pixels than this (decompression-bomb guard); default: what this
    /// machine's memory allows, at most 100000000.
    #[arg(long, value_name = "PIXELS")]
    pub max_pixels: Option<u64>,
    /// Run the model on overlapping tiles at the image's own resolution (as `infer --tile`).
    #[arg(long)]
    pub tile: bool,
    /// Overlap of neighbouring tiles, in pixels.
    #[arg(long, default_value_t = 64)]
    pub tile_overlap: usize,
}

/// One evaluated image under the unperturbed condition.
struct ImageRow {
    pair: Pair,
    width: usize,
    height: usize,
    metrics: ImageMetrics,
}

/// Run the command; returns how many pairs failed (each named on stderr).
pub fn run(dev: &DeviceArgs, args: &EvalArgs) -> Result<usize> {
    if !(0.0..1.0).contains(&args.threshold) {
        return Err(Error::invalid(format!("--threshold {} must be in [0, 1)", args.threshold)));
    }
    let mut perturbations = Vec::new();
    for spec in &args.perturb {
        perturbations.extend(parse_spec(spec)?);
    }
    let pairing = pair_folders(&args.images, &args.masks, args.authentic_without_mask)?;
    report_pairing(&pairing, args.authentic_without_mask);
    if pairing.pairs.is_empty() {
        return Err(Error::invalid(format!(
            "no image in {} has a mask in {}",
            args.images.display(),
            args.masks.display()
        )));
    }
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot create {}: {e}", out.display())))?;
    }
    let gpu = dev.open()?;
    let mut det = open_detector(&gpu, args.weights.as_deref(), args.model.as_deref())?;
    if args.tile {
        det.check_tile_overlap(args.tile_overlap)?;
    }
    let at_model = args.resolution == "model";
    if at_model && args.tile {
        return Err(Error::invalid("--tile scores at the image's resolution; drop --resolution model"));
    }
    let resolution = match (at_model, det.mode()) {
        (false, crate::pipeline::InputMode::Resized([h, w])) if args.tile => {
            format!("each image's own resolution, in overlapping {w}x{h} tiles")
        }
        (true, crate::pipeline::InputMode::Resized([h, w])) => {
            format!("the model's resolution {w}x{h} (masks resized nearest, as the benchmark)")
        }
        (true, _) => "the model's resolution (the image's own, for this model)".to_string(),
        (false, _) => "each image's own resolution".to_string(),
    };
    println!(
        "{} on {}; evaluated at {resolution}; a pixel is marked when p > {}",
        det.name(),
        gpu.info.name,
        args.threshold
    );
    println!("{}", header_line());
    let mut conditions: Vec<Option<Perturbation>> = vec![None];
    conditions.extend(perturbations.iter().copied().map(Some));
    let load = LoadOptions {
        max_pixels: args.max_pixels.unwrap_or_else(crate::imageio::default_max_pixels),
        ..LoadOptions::default()
    };
    let mut rows: Vec<ImageRow> = Vec::new();
    let mut per_condition: Vec<Vec<ImageMetrics>> = vec![Vec::new(); conditions.len()];
    let mut failures: Vec<(Pair, String)> = Vec::new();
    for pair in &pairing.pairs {
        match evaluate_pair(&mut det, pair, &conditions, args, &load) {
            Ok((width, height, metrics)) => {
                println!("{}", row_line(&display_name(&pair.image), &metrics[0]));
                for (all, m) in per_condition.iter_mut().zip(&metrics) {
                    all.push(m.clone());
                }
                rows.push(ImageRow { pair: pair.clone(), width, height, metrics: metrics[0].clone() });
            }
            Err(e) => {
                let mask = pair.mask.as_ref().map_or("none".to_string(), |m| m.display().to_string());
                eprintln!("wgpu-forge: {} (mask {mask}): {e}", pair.image.display());
                failures.push((pair.clone(), e.message));
            }
        }
    }
    let clean = MeanMetrics::of(&per_condition[0]);
    let empty = rows.iter().filter(|r| r.metrics.gt_empty).count();
    let tampered_only = MeanMetrics::of(rows.iter().map(|r| &r.metrics).filter(|m| !m.gt_empty));
    let level = image_level(&per_condition[0], args.threshold);
    print_summary(&clean, &tampered_only, empty, level.as_ref(), args.threshold);
    let robustness: Vec<(Perturbation, MeanMetrics)> =
        perturbations.iter().zip(&per_condition[1..]).map(|(p, all)| (*p, MeanMetrics::of(all))).collect();
    if !robustness.is_empty() {
        println!("\nrobustness (means over the {} above)", images(clean.images));
        for (p, m) in &robustness {
            println!("{}", row_text(&p.to_string(), m.f1, m.f1_permuted, m.iou, m.auc, m.best_f1, m.best_mcc, None));
        }
    }
    if let Some(out) = &args.out {
        let report = json!({
            "model": det.name(),
            "weights": det.weights.path.as_ref().map(|p| p.display().to_string()),
            "weights_sha256": det.weights.sha256,
            "resolution": args.resolution,
            "tile": args.tile,
            "resolution_note": resolution,
            "threshold": args.threshold,
            "image_score": "max of the probability map after a box blur 1% of the short side wide, at least 3 px (report::score::image_score)",
            "images": rows.len(),
            "empty_mask_images": empty,
            "mean": mean_json(&clean),
            "mean_tampered_only": mean_json(&tampered_only),
            "image_level": level.map(|l| json!({"tampered": l.tampered, "authentic": l.authentic,
                "auc": l.auc, "balanced_accuracy": l.balanced_accuracy})),
            "per_image": rows.iter().map(row_json).collect::<Vec<_>>(),
            "robustness": robustness.iter().map(|(p, m)| json!({"kind": p.kind(), "strength": p.strength(),
                "mean": mean_json(m)})).collect::<Vec<_>>(),
            "failed": failures.iter().map(|(p, e)| json!({"image": p.image.display().to_string(),
                "mask": p.mask.as_ref().map(|m| m.display().to_string()), "error": e})).collect::<Vec<_>>(),
            "unpaired_images": pairing.unpaired_images.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "unpaired_masks": pairing.unpaired_masks.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&report).map_err(|e| Error::invalid(format!("metrics.json: {e}")))?;
        // One set, metrics.json last: its presence marks a complete run.
        let mut files = vec![(out.join("per_image.csv"), per_image_csv(&rows).into_bytes())];
        if !robustness.is_empty() {
            files.push((out.join("robustness.png"), robustness_png(&series(&robustness), Some(clean.f1))?));
        }
        files.push((out.join("metrics.json"), text.into_bytes()));
        remove_stale_temps(out);
        write_set(&files)?;
        eprintln!("wrote {}", out.join("metrics.json").display());
    }
    Ok(failures.len())
}

/// Load one pair, run every condition; returns the image's size and the metrics per condition.
fn evaluate_pair(
    det: &mut Detector,
    pair: &Pair,
    conditions: &[Option<Perturbation>],
    args: &EvalArgs,
    load: &LoadOptions,
) -> Result<(usize, usize, Vec<ImageMetrics>)> {
    let img = load_rgb8_with(&pair.image, load)?;
    let mask = match &pair.mask {
        Some(path) => {
            let mask = load_mask(path, load)?;
            check_same_size((img.width, img.height), &mask, path)?;
            if mask.non_binary > 0 {
                eprintln!(
                    "wgpu-forge: warning: {}: {} pixels are neither 0 nor 255 (binarized at > 127)",
                    path.display(),
                    mask.non_binary
                );
            }
            mask
        }
        None => BinaryMask::empty(img.width, img.height),
    };
    let seed = noise_seed(&pair.image);
    let mut out = Vec::with_capacity(conditions.len());
    let tile = args.tile.then_some(args.tile_overlap);
    for condition in conditions {
        let d = match condition {
            None => det.detect_with(&img, tile)?,
            Some(p) => det.detect_with(&p.apply(&img, seed)?, tile).map_err(|e| e.context(p))?,
        };
        out.push(score_detection(&d, &mask, args.resolution == "model", args.threshold));
    }
    Ok((img.width, img.height, out))
}

/// Metrics of a detection at the image's resolution, or at the model's with the mask resized.
pub fn score_detection(d: &Detection, mask: &BinaryMask, at_model: bool, threshold: f32) -> ImageMetrics {
    if at_model {
        let [h, w] = d.model_size;
        let resized = mask.resized_nearest(w, h);
        image_metrics(&d.model_prob, &resized.tampered, w, h, threshold)
    } else {
        image_metrics(&d.prob, &mask.tampered, d.width, d.height, threshold)
    }
}

/// A seed from the image's file name (FNV-1a), so its noise does not depend on the order of files.
fn noise_seed(path: &Path) -> u64 {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

fn report_pairing(p: &Pairing, authentic_without_mask: bool) {
    if !p.unpaired_images.is_empty() {
        eprintln!(
            "wgpu-forge: {} without a mask skipped{}:",
            images(p.unpaired_images.len()),
            if authentic_without_mask { "" } else { " (--authentic-without-mask evaluates them as authentic)" }
        );
        for i in &p.unpaired_images {
            eprintln!("  {}", i.display());
        }
    }
    if !p.unpaired_masks.is_empty() {
        eprintln!("wgpu-forge: {} without an image:", plural(p.unpaired_masks.len(), "mask"));
        for m in &p.unpaired_masks {
            eprintln!("  {}", m.display());
        }
    }
    for (unused, used) in &p.duplicate_masks {
        eprintln!(
            "wgpu-forge: warning: {} is not used; {} is the mask of that image",
            unused.display(),
            used.display()
        );
    }
}

/// "1 image", "2 images".
fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn images(n: usize) -> String {
    plural(n, "image")
}

const NAME_WIDTH: usize = 40;

fn display_name(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = name.chars().count();
    if n <= NAME_WIDTH {
        name
    } else {
        format!("…{}", name.chars().skip(n - NAME_WIDTH + 1).collect::<String>())
    }
}

fn header_line() -> String {
    format!(
        "{:<NAME_WIDTH$} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "image", "F1", "F1perm", "IoU", "AUC", "bestF1", "MCC", "score"
    )
}

#[allow(clippy::too_many_arguments)]
fn row_text(
    name: &str,
    f1: f64,
    f1p: f64,
    iou: f64,
    auc: Option<f64>,
    best: f64,
    mcc: f64,
    score: Option<f64>,
) -> String {
    let opt = |v: Option<f64>| v.map_or(format!("{:>6}", "-"), |v| format!("{v:>6.3}"));
    format!("{name:<NAME_WIDTH$} {f1:>6.3} {f1p:>6.3} {iou:>6.3} {} {best:>6.3} {mcc:>6.3} {}", opt(auc), opt(score))
}

fn row_line(name: &str, m: &ImageMetrics) -> String {
    let line = row_text(name, m.f1, m.f1_permuted, m.iou, m.auc, m.best_f1, m.best_mcc, Some(m.score));
    if m.gt_empty {
        format!("{line}  (empty mask)")
    } else {
        line
    }
}

fn print_summary(all: &MeanMetrics, tampered: &MeanMetrics, empty: usize, level: Option<&ImageLevel>, threshold: f32) {
    let mean =
        |name: String, m: &MeanMetrics| row_text(&name, m.f1, m.f1_permuted, m.iou, m.auc, m.best_f1, m.best_mcc, None);
    println!("{}", mean(format!("mean ({})", images(all.images)), all));
    if empty > 0 {
        if tampered.images > 0 {
            println!("{}", mean(format!("mean, non-empty masks ({})", tampered.images), tampered));
        }
        println!(
            "{} with an empty mask: F1 and IoU count as 0 in the mean (as in the benchmark); \
             AUC is undefined there and left out (AUC mean over {})",
            images(empty),
            images(all.auc_images)
        );
    }
    if let Some(l) = level {
        println!(
            "image level ({} tampered, {} authentic; score = max of the box-blurred map): AUC {:.3}, \
             balanced accuracy {:.3} at score > {threshold}",
            l.tampered, l.authentic, l.auc, l.balanced_accuracy
        );
    }
}

fn mean_json(m: &MeanMetrics) -> Value {
    json!({"images": m.images, "f1": m.f1, "f1_permuted": m.f1_permuted, "iou": m.iou, "auc": m.auc,
        "auc_images": m.auc_images, "best_f1": m.best_f1, "best_mcc": m.best_mcc})
}

fn row_json(r: &ImageRow) -> Value {
    let m = &r.metrics;
    json!({"image": r.pair.image.display().to_string(), "mask": r.pair.mask.as_ref().map(|p| p.display().to_string()),
        "width": r.width, "height": r.height, "mask_empty": m.gt_empty, "f1": m.f1, "f1_permuted": m.f1_permuted,
        "iou": m.iou, "auc": m.auc, "best_f1": m.best_f1, "best_mcc": m.best_mcc, "score": m.score})
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn per_image_csv(rows: &[ImageRow]) -> String {
    let mut s = String::from("image,mask,width,height,mask_empty,f1,f1_permuted,iou,auc,best_f1,best_mcc,score\n");
    for r in rows {
        let m = &r.metrics;
        let mask = r.pair.mask.as_ref().map_or(String::new(), |p| p.display().to_string());
        let auc = m.auc.map_or(String::new(), |a| a.to_string());
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{auc},{},{},{}",
            csv_field(&r.pair.image.display().to_string()),
            csv_field(&mask),
            r.width,
            r.height,
            m.gt_empty,
            m.f1,
            m.f1_permuted,
            m.iou,
            m.best_f1,
            m.best_mcc,
            m.score
        );
    }
    s
}

/// Plot panels, one per perturbation kind in the order first given.
fn series(robustness: &[(Perturbation, MeanMetrics)]) -> Vec<Series> {
    let mut out: Vec<(&str, Series)> = Vec::new();
    for (p, m) in robustness {
        let title = match p {
            Perturbation::Noise { .. } => "MEAN F1 - NOISE VAR",
            Perturbation::Blur { .. } => "MEAN F1 - BLUR K",
            Perturbation::Jpeg { .. } => "MEAN F1 - JPEG Q",
        };
        match out.iter_mut().find(|(k, _)| *k == p.kind()) {
            Some((_, s)) => s.points.push((p.strength(), m.f1)),
            None => out.push((p.kind(), Series { title: title.into(), points: vec![(p.strength(), m.f1)] })),
        }
    }
    out.into_iter().map(|(_, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it_and_names_are_shortened() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain.png"), "plain.png");
        let long = display_name(Path::new(&"x".repeat(50)));
        assert_eq!(long.chars().count(), NAME_WIDTH);
        assert!(long.starts_with('…'));
    }

    #[test]
    fn model_resolution_scores_the_model_map_against_the_resized_mask() {
        // Image 4x2, model 2x1: the image map is perfect, the model map is inverted.
        let d = Detection {
            width: 4,
            height: 2,
            prob: vec![0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.1, 0.1],
            model_size: [1, 2],
            model_prob: vec![0.1, 0.9],
            scales: Vec::new(),
            extras: Default::default(),
            pairs: None,
            notes: Vec::new(),
            timings: Default::default(),
        };
        let mask = BinaryMask::from_gray(4, 2, &[255, 255, 0, 0, 255, 255, 0, 0]);
        let at_image = score_detection(&d, &mask, false, 0.5);
        assert!((at_image.f1 - 1.0).abs() < 1e-6 && at_image.auc == Some(1.0));
        let at_model = score_detection(&d, &mask, true, 0.5);
        assert!(at_model.f1 < 1e-6 && at_model.auc == Some(0.0) && (at_model.f1_permuted - 1.0).abs() < 1e-6);
    }

    #[test]
    fn series_group_by_kind_in_order() {
        let m = MeanMetrics { f1: 0.5, ..MeanMetrics::default() };
        let r = [
            (Perturbation::Jpeg { quality: 90 }, m),
            (Perturbation::Noise { variance: 3.0 }, m),
            (Perturbation::Jpeg { quality: 50 }, m),
        ];
        let s = series(&r);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].title.as_str(), s[0].points.clone()), ("MEAN F1 - JPEG Q", vec![(90.0, 0.5), (50.0, 0.5)]));
        assert_eq!(noise_seed(Path::new("a/x.png")), noise_seed(Path::new("b/x.png")));
    }
}
