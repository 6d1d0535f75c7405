//! `wgpu-forge eval --images DIR --masks DIR [--weights FILE] [--model NAME[,NAME...]] [--out DIR]
//! [--perturb SPEC] [--threshold 0.5] [--resolution image|model] [--authentic-without-mask]`:
//! run a detector over images paired with ground-truth masks and print the benchmark's metrics
//! per image and averaged over images (see `docs/eval.md` and `eval::metrics`).
//!
//! With `--out DIR` it writes `metrics.json` and `per_image.csv`, and with `--perturb` also
//! `robustness.png`, each atomically. With several models (`--model a,b` and/or `--weights`) each
//! image is decoded once and run by every model, the table has a row per model, and `--out` gets
//! a folder per model (its metrics.json, per_image.csv), one robustness.png with a line per model
//! and models.json (the table). One bad pair (unreadable file, mask of another size) never
//! stops the run: it is named on stderr and the run ends with exit code 1.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::cli::infer::open_detector;
use crate::cli::DeviceArgs;
use crate::error::{Error, ErrorKind, Result};
use crate::eval::metrics::{image_level, image_metrics, ImageLevel, ImageMetrics, MeanMetrics};
use crate::eval::pairs::{pair_folders, BinaryMask, Pair, Pairing};
use crate::eval::perturb::{parse_spec, Perturbation};
use crate::eval::plot::{robustness_png, Line, Series};
use crate::fileio::{remove_stale_temps, write_set};
use crate::imageio::{LoadOptions, RgbImage};
use crate::pipeline::{Detection, Detector};

mod group;
use group::{evaluate_group, load_pair, record};

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
    /// Model name (default: the weights' `arch` metadata), or several, comma-separated, to
    /// compare them in one run: training-free detectors by name, and at most one learned model,
    /// whose weights are `--weights` (without a learned name in the list, `--weights` adds it last).
    #[arg(long)]
    pub model: Option<String>,
    /// A setting of the evaluated model, over its default (repeatable; as `infer --set`), e.g.
    /// `--set fusion=product` for hifi weights: it goes to the learned model of --weights, or,
    /// without one, to the one detector --model names.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
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
    /// Run up to N images whose model input has the same size in one engine submission (as
    /// `infer --batch`); the metrics are those of an unbatched run.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub batch: usize,
}

/// One evaluated image under the unperturbed condition.
struct ImageRow {
    pair: Pair,
    width: usize,
    height: usize,
    metrics: ImageMetrics,
}

/// The detectors to evaluate, as `(weights, model)` for [`open_detector`]: each training-free
/// name of `--model` (comma-separated, in order), and the learned model of `--weights` (or
/// FORGE_WEIGHTS) where a learned name stands in the list or, without one, last; with no
/// `--model`, the one detector `infer` would run.
fn model_specs(args: &EvalArgs) -> Result<Vec<(Option<PathBuf>, Option<String>)>> {
    let names: Vec<&str> = args
        .model
        .as_deref()
        .map(|m| m.split(',').map(str::trim).filter(|n| !n.is_empty()).collect())
        .unwrap_or_default();
    if names.is_empty() {
        return Ok(vec![(args.weights.clone(), None)]);
    }
    let mut specs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut learned = false;
    for name in &names {
        let family = crate::models::family(name)?;
        if !seen.insert(family.name()) {
            return Err(Error::invalid(format!("--model names {} twice", family.name())));
        }
        if family.needs_weights() {
            if learned {
                return Err(Error::invalid(
                    "--model names two learned models; one run evaluates one weight file (--weights)",
                ));
            }
            learned = true;
            specs.push((args.weights.clone(), Some(name.to_string())));
        } else {
            specs.push((None, Some(name.to_string())));
        }
    }
    if !learned {
        if let Some(w) = &args.weights {
            specs.push((Some(w.clone()), None));
        }
    }
    Ok(specs)
}

/// One model's results over the run.
struct ModelRun<'g> {
    det: Detector<'g>,
    resolution: String,
    rows: Vec<ImageRow>,
    per_condition: Vec<Vec<ImageMetrics>>,
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
    let specs = model_specs(args)?;
    let settings = crate::cli::infer::parse_settings(&args.set)?;
    // The settings' model: the learned one, else the only one.
    let set_for = match specs.iter().position(|(w, m)| {
        w.is_some() || m.as_deref().is_some_and(|m| crate::models::family(m).is_ok_and(|f| f.needs_weights()))
    }) {
        Some(i) => i,
        None if specs.len() == 1 || settings.is_empty() => 0,
        None => return Err(Error::invalid("--set: name one detector with --model (or give --weights) to set it")),
    };
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
    let at_model = args.resolution == "model";
    if at_model && args.tile {
        return Err(Error::invalid("--tile scores at the image's resolution; drop --resolution model"));
    }
    let backend = dev.backend()?;
    let engine = backend.engine();
    let mut conditions: Vec<Option<Perturbation>> = vec![None];
    conditions.extend(perturbations.iter().copied().map(Some));
    let mut runs = Vec::new();
    for (i, (weights, model)) in specs.iter().enumerate() {
        let set = if i == set_for { &settings[..] } else { &[] };
        let det = open_detector(engine, weights.as_deref(), model.as_deref(), set)?;
        if args.tile {
            det.check_tile_overlap(args.tile_overlap)?;
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
            engine.device_name(),
            args.threshold
        );
        runs.push(ModelRun { det, resolution, rows: Vec::new(), per_condition: vec![Vec::new(); conditions.len()] });
    }
    let several = runs.len() > 1;
    println!("{}", header_line(if several { "image / model" } else { "image" }));
    let load = LoadOptions {
        max_pixels: args.max_pixels.unwrap_or_else(crate::imageio::default_max_pixels),
        ..LoadOptions::default()
    };
    let batch = crate::cli::batching::check_batch(args.batch)?;
    for run in &mut runs {
        crate::cli::batching::announce(&mut run.det, batch, args.tile)?;
    }
    let mut failures: Vec<(Pair, String)> = Vec::new();
    // Pairs are loaded into groups of up to --batch, fewer once they hold --max-pixels pixels.
    let mut group: Vec<(&Pair, Result<(RgbImage, BinaryMask)>)> = Vec::new();
    let mut pixels = 0u64;
    for (k, pair) in pairing.pairs.iter().enumerate() {
        let loaded = load_pair(pair, &load);
        pixels += loaded.as_ref().map_or(0, |(img, _)| (img.width * img.height) as u64);
        group.push((pair, loaded));
        if group.len() < batch && pixels < load.max_pixels && k + 1 < pairing.pairs.len() {
            continue;
        }
        let mut dets: Vec<&mut Detector> = runs.iter_mut().map(|r| &mut r.det).collect();
        let results = evaluate_group(&mut dets, &group, &conditions, args, batch);
        for ((pair, _), result) in group.drain(..).zip(results) {
            record(&mut runs, &mut failures, pair, result);
        }
        pixels = 0;
    }
    let mut reports = Vec::new();
    let mut table = Vec::new();
    let mut lines = Vec::new();
    let mut clean_f1 = Vec::new();
    for run in &runs {
        let clean = MeanMetrics::of(&run.per_condition[0]);
        let empty = run.rows.iter().filter(|r| r.metrics.gt_empty).count();
        let tampered_only = MeanMetrics::of(run.rows.iter().map(|r| &r.metrics).filter(|m| !m.gt_empty));
        let calibration = run.det.calibration();
        let level = image_level(&run.per_condition[0], calibration.tampered);
        let robustness: Vec<(Perturbation, MeanMetrics)> =
            perturbations.iter().zip(&run.per_condition[1..]).map(|(p, all)| (*p, MeanMetrics::of(all))).collect();
        if several {
            println!("\n{}", run.det.name());
        }
        print_summary(&clean, &tampered_only, empty, level.as_ref(), calibration.tampered);
        if !robustness.is_empty() {
            println!("\nrobustness (means over the {} above)", images(clean.images));
            for (p, m) in &robustness {
                println!(
                    "{}",
                    row_text(&p.to_string(), m.f1, m.f1_permuted, m.iou, m.auc, m.best_f1, m.best_mcc, None)
                );
            }
        }
        let report = json!({
            "model": run.det.name(),
            "weights": run.det.weights.path.as_ref().map(|p| p.display().to_string()),
            "weights_sha256": run.det.weights.sha256,
            "resolution": args.resolution,
            "tile": args.tile,
            "resolution_note": run.resolution,
            "threshold": args.threshold,
            "image_score": calibration.score.describe(),
            "image_tampered_above": calibration.tampered,
            "images": run.rows.len(),
            "empty_mask_images": empty,
            "mean": mean_json(&clean),
            "mean_tampered_only": mean_json(&tampered_only),
            "image_level": level.map(|l| json!({"tampered": l.tampered, "authentic": l.authentic,
                "auc": l.auc, "balanced_accuracy": l.balanced_accuracy})),
            "per_image": run.rows.iter().map(row_json).collect::<Vec<_>>(),
            "robustness": robustness.iter().map(|(p, m)| json!({"kind": p.kind(), "strength": p.strength(),
                "mean": mean_json(m)})).collect::<Vec<_>>(),
            "failed": failures.iter().map(|(p, e)| json!({"image": p.image.display().to_string(),
                "mask": p.mask.as_ref().map(|m| m.display().to_string()), "error": e})).collect::<Vec<_>>(),
            "unpaired_images": pairing.unpaired_images.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "unpaired_masks": pairing.unpaired_masks.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        });
        table.push((run.det.name().to_string(), clean, level.map(|l| l.auc)));
        clean_f1.push(Some(clean.f1));
        lines.push((run.det.name().to_string(), robustness));
        reports.push((run.det.name().to_string(), report, per_image_csv(&run.rows)));
    }
    if several {
        println!(
            "\nmodels (means over the {}; imgAUC: image-level AUC of the image score)",
            images(runs[0].rows.len())
        );
        println!("{}", table_header("model", "imgAUC"));
        for (name, m, auc) in &table {
            println!("{}", row_text(&fit_name(name), m.f1, m.f1_permuted, m.iou, m.auc, m.best_f1, m.best_mcc, *auc));
        }
    }
    if let Some(out) = &args.out {
        let to_text =
            |v: &Value| serde_json::to_string_pretty(v).map_err(|e| Error::invalid(format!("metrics.json: {e}")));
        let mut files = Vec::new();
        let plot = if perturbations.is_empty() { None } else { Some(robustness_png(&series(&lines), &clean_f1)?) };
        if several {
            // One folder per model as a single run writes, the plot with every model's line, and
            // models.json (the table) last: its presence marks a complete run.
            for (name, report, csv) in &reports {
                let dir = out.join(name);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| Error::new(ErrorKind::Io, format!("cannot create {}: {e}", dir.display())))?;
                remove_stale_temps(&dir);
                files.push((dir.join("per_image.csv"), csv.clone().into_bytes()));
                files.push((dir.join("metrics.json"), to_text(report)?.into_bytes()));
            }
            if let Some(png) = plot {
                files.push((out.join("robustness.png"), png));
            }
            let summary = json!({
                "models": reports.iter().map(|(name, r, _)| json!({"model": name, "weights": r["weights"],
                    "metrics": format!("{name}/metrics.json"), "images": r["images"], "mean": r["mean"],
                    "image_level": r["image_level"], "robustness": r["robustness"]})).collect::<Vec<_>>(),
                "resolution": args.resolution,
                "threshold": args.threshold,
                "failed": failures.len(),
            });
            files.push((out.join("models.json"), to_text(&summary)?.into_bytes()));
        } else {
            // One set, metrics.json last: its presence marks a complete run.
            let (_, report, csv) = &reports[0];
            files.push((out.join("per_image.csv"), csv.clone().into_bytes()));
            if let Some(png) = plot {
                files.push((out.join("robustness.png"), png));
            }
            files.push((out.join("metrics.json"), to_text(report)?.into_bytes()));
        }
        remove_stale_temps(out);
        write_set(&files)?;
        eprintln!("wrote {}", files.last().map(|(p, _)| p.display().to_string()).unwrap_or_default());
    }
    Ok(failures.len())
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
    fit_name(&path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
}

/// `name` shortened from the front to the table's first column.
fn fit_name(name: &str) -> String {
    let n = name.chars().count();
    if n <= NAME_WIDTH {
        name.to_string()
    } else {
        format!("…{}", name.chars().skip(n - NAME_WIDTH + 1).collect::<String>())
    }
}

fn header_line(first: &str) -> String {
    table_header(first, "score")
}

fn table_header(first: &str, last: &str) -> String {
    format!(
        "{:<NAME_WIDTH$} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
        first, "F1", "F1perm", "IoU", "AUC", "bestF1", "MCC", last
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
            "image level ({} tampered, {} authentic; the model's calibrated score, docs/report.md): AUC {:.3}, \
             balanced accuracy {:.3} at score > {threshold} (its tampered threshold)",
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

/// Plot panels, one per perturbation kind in the order first given, each with one line per model
/// (`(model name, its robustness means)`, every model over the same perturbations).
fn series(models: &[(String, Vec<(Perturbation, MeanMetrics)>)]) -> Vec<Series> {
    let mut out: Vec<(&str, Series)> = Vec::new();
    let Some((_, first)) = models.first() else { return Vec::new() };
    for (k, (p, _)) in first.iter().enumerate() {
        let (title, x_title) = match p {
            Perturbation::Noise { .. } => ("Gaussian noise", "variance"),
            Perturbation::Blur { .. } => ("Gaussian blur", "kernel size"),
            Perturbation::Jpeg { .. } => ("JPEG compression", "quality"),
        };
        let idx = match out.iter().position(|(kind, _)| *kind == p.kind()) {
            Some(i) => i,
            None => {
                let lines = models.iter().map(|(m, _)| Line { model: m.clone(), f1: Vec::new() }).collect();
                let s = Series { title: title.into(), x_title: x_title.into(), strengths: Vec::new(), lines };
                out.push((p.kind(), s));
                out.len() - 1
            }
        };
        let s = &mut out[idx].1;
        s.strengths.push(p.strength());
        for (line, (_, r)) in s.lines.iter_mut().zip(models) {
            line.f1.push(r.get(k).map(|(_, m)| m.f1));
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
    fn model_lists_keep_their_order_and_take_one_learned_model() {
        let args = |model: Option<&str>, weights: Option<&str>| EvalArgs {
            images: PathBuf::new(),
            masks: PathBuf::new(),
            weights: weights.map(PathBuf::from),
            model: model.map(String::from),
            set: Vec::new(),
            out: None,
            perturb: Vec::new(),
            threshold: 0.5,
            resolution: "image".into(),
            authentic_without_mask: false,
            max_pixels: None,
            tile: false,
            tile_overlap: 64,
            batch: 1,
        };
        let names = |a: &EvalArgs| {
            model_specs(a)
                .unwrap()
                .into_iter()
                .map(|(w, m)| (w.map(|w| w.display().to_string()), m))
                .collect::<Vec<_>>()
        };
        let s = |v: &str| Some(v.to_string());
        assert_eq!(names(&args(None, Some("w.st"))), [(s("w.st"), None)]);
        assert_eq!(names(&args(Some("noise, ela"), None)), [(None, s("noise")), (None, s("ela"))]);
        assert_eq!(names(&args(Some("ela"), Some("w.st"))), [(None, s("ela")), (s("w.st"), None)]);
        assert_eq!(names(&args(Some("pmsp,ela"), Some("w.st"))), [(s("w.st"), s("pmsp")), (None, s("ela"))]);
        assert!(model_specs(&args(Some("ela,ela"), None)).unwrap_err().message.contains("twice"));
        assert!(model_specs(&args(Some("pmsp,mesorch"), None)).unwrap_err().message.contains("two learned"));
        assert!(model_specs(&args(Some("ela,nope"), None)).is_err());
    }

    #[test]
    fn series_group_by_kind_in_order() {
        let m = MeanMetrics { f1: 0.5, ..MeanMetrics::default() };
        let r = [
            (Perturbation::Jpeg { quality: 90 }, m),
            (Perturbation::Noise { variance: 3.0 }, m),
            (Perturbation::Jpeg { quality: 50 }, m),
        ];
        let s = series(&[("a".into(), r.to_vec()), ("b".into(), r.to_vec())]);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].title.as_str(), s[0].strengths.clone()), ("JPEG compression", vec![90.0, 50.0]));
        assert_eq!(s[0].lines.len(), 2);
        assert_eq!((s[0].lines[1].model.as_str(), s[0].lines[1].f1.clone()), ("b", vec![Some(0.5), Some(0.5)]));
        assert_eq!(noise_seed(Path::new("a/x.png")), noise_seed(Path::new("b/x.png")));
    }
}
