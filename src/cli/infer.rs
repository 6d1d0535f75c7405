//! `wgpu-forge infer [options] INPUT...`: tamper-probability maps, masks, overlays and reports.
//!
//! Inputs are files, folders (their image files, not recursive) and glob patterns. Per input with
//! stem S, into `--out` (default `forge-out`): `S.mask.png` (cleaned binary mask), `S.prob.png`
//! (8-bit probability), `S.overlay.png` (heat map over the photo with a colour bar), `S.json`
//! (the report, docs/report.md); with `--save-raw` `S.prob.npy` (float32 H x W at the image's size)
//! and `S.model.npy` (float32 at the model's resolution); with `--scales` the model's per-scale
//! maps. One bad input (a file, or a folder or pattern with no images) never stops the batch: it
//! is named on stderr with its reason and the run ends with exit code 1. An image's files are all
//! encoded, then written as a set ([`crate::fileio::write_set`]): all of them or none. Stems are
//! unique in a batch; `--out` may not be the folder of an input (outputs would overwrite files
//! there and be read back as inputs by the next run). With `--panel` also `S.panel.png` and a
//! `panel` array in `S.json`: every training-free detector of the registry and the learned model,
//! side by side (docs/report.md). Listing, `--jsonl` (resumable batches) and `--shard` (one share
//! of the listing per process) are in [`crate::cli::batch`]; docs/deploy.md shows them at scale.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cli::batch::{self, JsonlLog, Shard};
pub use crate::cli::batch::{check_out_folder, expand_inputs, unique_stems};
use crate::cli::batching::{self, Group};
use crate::cli::DeviceArgs;
use crate::error::{Error, ErrorKind, Result};
use crate::fileio::{remove_stale_temps, write_set};
use crate::imageio::{Decoded, LoadOptions, RgbImage};
use crate::models;
use crate::pipeline::{Detection, Detector, InputMode};
use crate::report::clean::{pairs_phrase, rank, regions_phrase, verdict_phrase, Cleaning};
use crate::report::json::{report, ReportInput};
use crate::report::overlay::{draw_pairs, overlay};
use crate::report::{npy_f32, png_gray8, png_rgb8, regions, Calibration, Mask, Region, Verdict};

mod grouped;
use grouped::Run;

/// Options of `infer`.
#[derive(clap::Args, Debug, Clone)]
pub struct InferArgs {
    /// Images, folders of images, or glob patterns.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Converted weights (.safetensors from `wgpu-forge convert`, e.g. the shipped
    /// weights/mesorch-compact.safetensors); default: env FORGE_WEIGHTS, else the shipped default
    /// model (weights/pmsp-mobilenet.safetensors, built into the binary).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Model by name: one that needs no weights (the training-free detectors), or a learned
    /// model's name to override the weights' `arch` metadata; `wgpu-forge info` lists them.
    #[arg(long)]
    pub model: Option<String>,
    /// A setting of the model, over its default (repeatable): of the training-free detector named
    /// by --model, e.g. `--model copymove --set min_area=400 --set iters=12`, or of the learned
    /// model of --weights, e.g. `--set fusion=product` for hifi; `wgpu-forge info` lists each
    /// model's settings, docs/detectors.md explains the detectors'.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Output folder.
    #[arg(long, default_value = "forge-out")]
    pub out: PathBuf,
    /// Also write S.prob.npy and S.model.npy.
    #[arg(long)]
    pub save_raw: bool,
    /// Also write the model's per-scale maps (and the weight it gives each scale, where it weighs
    /// them), S.scale-NAME.png / S.weight-NAME.png.
    #[arg(long)]
    pub scales: bool,
    /// Mask threshold: a pixel is marked when p > threshold. The verdict uses the model's own
    /// calibrated thresholds (docs/report.md, "Scores and verdicts").
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Morphological opening of the mask with a (2R+1)-pixel square: removes specks [default:
    /// none (report::clean)].
    #[arg(long, value_name = "R")]
    pub open: Option<usize>,
    /// Morphological closing of the mask with a (2R+1)-pixel square: fills small gaps.
    #[arg(long, default_value_t = 0, value_name = "R")]
    pub close: usize,
    /// Drop regions smaller than this many pixels (from the mask and the report) [default: 0.1% of
    /// the image's pixels (report::clean)].
    #[arg(long, value_name = "PIXELS")]
    pub min_area: Option<usize>,
    /// Run the model on overlapping tiles at the image's own resolution instead of resizing the
    /// whole image to the model's input (keeps fine traces in large photos).
    #[arg(long)]
    pub tile: bool,
    /// Overlap of neighbouring tiles, in pixels.
    #[arg(long, default_value_t = 64)]
    pub tile_overlap: usize,
    /// Print each report as one JSON line on stdout (instead of the summary line).
    #[arg(long)]
    pub json: bool,
    /// Refuse images with more pixels than this (decompression-bomb guard); default: what this
    /// machine's memory allows, at most 100000000.
    #[arg(long, value_name = "PIXELS")]
    pub max_pixels: Option<u64>,
    /// Analyse a truncated JPEG (its missing rows are grey) with a note in the report, instead of
    /// refusing it.
    #[arg(long)]
    pub allow_truncated: bool,
    /// Do not rotate images by their EXIF orientation (the benchmark's loader does not).
    #[arg(long)]
    pub no_exif_orientation: bool,
    /// Also run every training-free detector and the learned model (--weights, else
    /// FORGE_WEIGHTS, else the shipped default) and write S.panel.png, the photo and
    /// each detector's map side by side, and their scores, verdicts and regions in S.json's
    /// `panel` array.
    #[arg(long)]
    pub panel: bool,
    /// Also append each image's report, with the file's sha256, as one JSON line to this file,
    /// and skip the images it already holds: a killed batch run again resumes (src/cli/batch.rs).
    #[arg(long, value_name = "OUT.jsonl")]
    pub jsonl: Option<PathBuf>,
    /// Only this process's share of the inputs: every N-th image of the sorted listing, from the
    /// I-th (0-based, as Kubernetes' JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Run up to N images whose model input has the same size in one engine submission (any
    /// images for a fixed-input model, same-size images for a native-size one); each image's
    /// outputs are those of an unbatched run. Not with --tile (tiled images run alone).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub batch: usize,
}

impl InferArgs {
    /// Every option at its default, with no inputs (for `serve`, whose images come over HTTP).
    pub fn defaults() -> InferArgs {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            args: InferArgs,
        }
        let mut a =
            <Only as clap::Parser>::try_parse_from(["infer", "-"]).expect("infer's options all have defaults").args;
        a.inputs.clear();
        a
    }
}

/// The default: the shipped learned weights, the best model we ship by pixel F1 on real forgeries
/// (weights/pmsp.md). `infer` and `eval` run them when neither --weights, FORGE_WEIGHTS nor
/// --model is given. They are built into the binary ([`SHIPPED_WEIGHTS_BYTES`]), so the binary
/// alone is what a deployer ships; this path names them in reports and messages.
pub const SHIPPED_WEIGHTS: &str = "weights/pmsp-mobilenet.safetensors";

/// The bytes of [`SHIPPED_WEIGHTS`] (2.2 MB, f16).
pub static SHIPPED_WEIGHTS_BYTES: &[u8] = include_bytes!("../../weights/pmsp-mobilenet.safetensors");

/// The default detector: the shipped weights, from the binary, with the model's `settings`.
pub fn default_detector<'g>(
    engine: impl Into<crate::graph::Engine<'g>>,
    settings: &[(String, String)],
) -> Result<Detector<'g>> {
    Detector::from_weights_bytes_with(engine, SHIPPED_WEIGHTS_BYTES, Path::new(SHIPPED_WEIGHTS), None, settings)
}

/// Weights named by FORGE_WEIGHTS, if set.
pub fn default_weights() -> Option<PathBuf> {
    std::env::var_os("FORGE_WEIGHTS").map(PathBuf::from)
}

/// Open the detector: a model that needs no weights by name (`--model NAME`), else a learned
/// model through its weights (`model` overriding their `arch`); with neither, FORGE_WEIGHTS when
/// set, else the shipped default ([`SHIPPED_WEIGHTS`], built in).
pub fn open_detector<'g>(
    engine: impl Into<crate::graph::Engine<'g>>,
    weights: Option<&Path>,
    model: Option<&str>,
    settings: &[(String, String)],
) -> Result<Detector<'g>> {
    let engine = engine.into();
    let family = model.map(models::family).transpose()?;
    if let Some(f) = family.filter(|f| !f.needs_weights()) {
        if weights.is_some() {
            return Err(Error::invalid(format!("--model {} is training-free and takes no --weights", f.name())));
        }
        return Detector::with_settings(engine, f, settings);
    }
    let weights = match (weights, default_weights()) {
        (Some(w), _) => w.to_path_buf(),
        (None, Some(w)) => w,
        (None, None) if model.is_none() => return default_detector(engine, settings),
        (None, None) => {
            return Err(Error::invalid(format!(
                "no weights: pass --weights FILE (a .safetensors made by `wgpu-forge convert`, e.g. \
                 {SHIPPED_WEIGHTS}), or set FORGE_WEIGHTS"
            )))
        }
    };
    Detector::from_weights_file_with(engine, &weights, model, settings)
}

/// `KEY=VALUE` settings, in order.
pub fn parse_settings(set: &[String]) -> Result<Vec<(String, String)>> {
    set.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
            _ => Err(Error::invalid(format!("--set {kv}: expected KEY=VALUE"))),
        })
        .collect()
}

/// A detector of the panel: the command's own (its detection is reused) or another one.
enum Slot<'g> {
    Main,
    Other(Box<Detector<'g>>),
}

/// The panel's detectors, planned once for the batch: every training-free detector in the
/// registry's order, then the learned model (`--weights`, else FORGE_WEIGHTS, else the shipped
/// default, built into the binary). `main` is the command's own detector.
fn panel_detectors<'g>(engine: crate::graph::Engine<'g>, main: &Detector, args: &InferArgs) -> Result<Vec<Slot<'g>>> {
    let mut slots = Vec::new();
    for f in models::REGISTRY.iter().filter(|f| !f.needs_weights()) {
        if main.weights.path.is_none() && main.name() == f.name() {
            slots.push(Slot::Main);
        } else {
            slots.push(Slot::Other(Box::new(Detector::without_weights(engine, *f)?)));
        }
    }
    let learned = args.weights.clone().or_else(default_weights);
    let own = main.weights.path.as_deref();
    match learned {
        Some(w) if own == Some(w.as_path()) => slots.push(Slot::Main),
        Some(w) => slots.push(Slot::Other(Box::new(Detector::from_weights_file(engine, &w, None)?))),
        None if own == Some(Path::new(SHIPPED_WEIGHTS)) => slots.push(Slot::Main),
        None => slots.push(Slot::Other(Box::new(default_detector(engine, &[])?))),
    }
    if args.tile {
        for slot in &slots {
            if let Slot::Other(d) = slot {
                d.check_tile_overlap(args.tile_overlap)?;
            }
        }
    }
    Ok(slots)
}

/// Run the command; returns how many inputs failed.
pub fn run(dev: &DeviceArgs, args: &InferArgs) -> Result<usize> {
    if !(0.0..1.0).contains(&args.threshold) {
        return Err(Error::invalid(format!("--threshold {} must be in [0, 1)", args.threshold)));
    }
    let shard = args.shard.as_deref().map(Shard::parse).transpose()?;
    let (expanded, stems) = batch::listing(expand_inputs(&args.inputs), shard);
    let inputs: Vec<&Path> = expanded.iter().filter_map(|r| r.as_ref().ok().map(PathBuf::as_path)).collect();
    check_out_folder(&args.out, &inputs, &args.inputs)?;
    if args.tile && args.scales {
        eprintln!("wgpu-forge: note: --scales is ignored with --tile (per-scale maps are not stitched across tiles)");
    }
    std::fs::create_dir_all(&args.out).map_err(|e| {
        Error::new(ErrorKind::Io, format!("cannot create the output folder {}: {e}", args.out.display()))
    })?;
    let stale = remove_stale_temps(&args.out);
    if stale > 0 {
        eprintln!("wgpu-forge: note: removed {stale} temporary files left in {} by runs that died", args.out.display());
    }
    let backend = dev.backend()?;
    let engine = backend.engine();
    let t = Instant::now();
    let settings = parse_settings(&args.set)?;
    let mut det = open_detector(engine, args.weights.as_deref(), args.model.as_deref(), &settings)?;
    if args.tile {
        det.check_tile_overlap(args.tile_overlap)?;
    }
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let mem = det.plan_stats().map_or(String::new(), |s| {
        format!(
            "; memory {:.1} MiB (weights {:.1}, activations {:.1}, scratch {:.1})",
            mib(s.peak_activation_bytes + s.weight_bytes + s.scratch_bytes + s.uniform_bytes),
            mib(s.weight_bytes),
            mib(s.peak_activation_bytes),
            mib(s.scratch_bytes)
        )
    });
    let source = det.weights.path.as_ref().map_or("built in".to_string(), |p| p.display().to_string());
    let (device, why) = match &backend {
        crate::cli::Backend::Cpu { reason, .. } => (engine.device_name(), format!(" (CPU backend: {reason})")),
        crate::cli::Backend::Gpu(_) => (engine.device_name(), String::new()),
    };
    eprintln!("{} ({source}) on {device}{why}: planned in {:.1} s{mem}", det.name(), t.elapsed().as_secs_f64());
    let mut panel = if args.panel { panel_detectors(engine, &det, args)? } else { Vec::new() };
    let ctx = Context::new(args, engine);
    let mut log = args.jsonl.as_deref().map(JsonlLog::open).transpose()?;
    if let Some(l) = log.as_ref().filter(|l| l.lines > 0 || l.torn > 0) {
        let torn = if l.torn > 0 { format!(" ({} unfinished lines skipped)", l.torn) } else { String::new() };
        eprintln!(
            "wgpu-forge: resuming: {} images already in {}{torn}",
            l.lines,
            args.jsonl.as_ref().map_or(String::new(), |p| p.display().to_string())
        );
    }
    // Photos are analysed the way viewers show them; --no-exif-orientation gives the benchmark's view.
    let load = LoadOptions {
        max_pixels: args.max_pixels.unwrap_or_else(crate::imageio::default_max_pixels),
        apply_exif_orientation: !args.no_exif_orientation,
        allow_truncated: args.allow_truncated,
    };
    let batch = batching::check_batch(args.batch)?;
    batching::announce(&mut det, batch, args.tile)?;
    let mut group = Group::new(batch, &load);
    let mut stems = stems.into_iter();
    let bar = progress_bar(expanded.len());
    let (mut failed, mut skipped) = (0, 0);
    let mut run = Run { det: &mut det, panel: &mut panel, ctx: &ctx, log: log.as_mut(), bar: &bar };
    for item in &expanded {
        match item {
            Ok(input) => {
                let stem = stems.next().expect("one stem per file");
                bar.set_message(input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
                // With --jsonl: the file's content names it with its path; one already logged is skipped.
                let digest = run.log.as_ref().map(|_| crate::fileio::sha256_file(input, "image")).transpose();
                let file = input.display().to_string();
                match digest {
                    Ok(Some(sha)) if run.log.as_ref().is_some_and(|l| l.has(&file, &sha)) => {
                        skipped += 1;
                        bar.inc(1);
                    }
                    Ok(sha) => {
                        if group.push(input, stem, sha, &load) {
                            failed += run.finish(&mut group);
                        }
                    }
                    Err(e) => {
                        // Queued images first: lines keep the listing's order.
                        failed += run.finish(&mut group) + 1;
                        run.fail(input, &e);
                    }
                }
            }
            Err((arg, e)) => {
                failed += run.finish(&mut group) + 1;
                run.fail(arg, e);
            }
        }
    }
    failed += run.finish(&mut group);
    bar.finish_and_clear();
    if skipped > 0 {
        eprintln!("wgpu-forge: skipped {skipped} images already in the --jsonl file");
    }
    if failed > 0 {
        eprintln!("wgpu-forge: {failed} of {} inputs failed", expanded.len());
    }
    Ok(failed)
}

/// A bar with rate and ETA on stderr for batches, hidden when stderr is not a terminal.
fn progress_bar(n: usize) -> indicatif::ProgressBar {
    if n < 2 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(n as u64);
    let style = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} images, {per_sec}, ETA {eta} {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// What every image's report shares: the options and the device.
pub struct Context<'a> {
    args: &'a InferArgs,
    adapter: String,
    backend: String,
}

impl<'a> Context<'a> {
    /// The report's context for models run by `engine` (its device and backend names).
    pub fn new(args: &'a InferArgs, engine: crate::graph::exec::Engine) -> Context<'a> {
        Context { args, adapter: engine.device_name(), backend: engine.backend_name() }
    }
}

/// The report of `det`'s detection `d` of `img` (named `file` in it), as `infer` writes it in
/// S.json, without writing or encoding any file (its `outputs` are empty): for `serve`.
pub fn report_only(
    det: &Detector,
    img: &RgbImage,
    d: &Detection,
    file: &str,
    ctx: &Context,
    notes: &[String],
) -> Result<serde_json::Value> {
    render(det, img, d, &[], Path::new(file), "", ctx, notes, false).map(|(_, _, rep)| rep)
}

/// One image's panel, files and report from its detection `d`.
fn one(
    det: &Detector,
    panel: &mut [Slot],
    input: &Path,
    stem: &str,
    ctx: &Context,
    decoded: &Decoded,
    d: Detection,
) -> Result<(String, serde_json::Value)> {
    let args = ctx.args;
    let img = &decoded.image;
    let tile = args.tile.then_some(args.tile_overlap);
    let others = panel
        .iter_mut()
        .map(|slot| match slot {
            Slot::Main => Ok(None),
            Slot::Other(o) => o.detect_with(img, tile).map(Some).map_err(|e| e.context(format!("panel, {}", o.name()))),
        })
        .collect::<Result<Vec<Option<Detection>>>>()?;
    let views: Vec<(&Detector, &Detection)> = panel
        .iter()
        .zip(&others)
        .map(|(slot, other)| match (slot, other) {
            (Slot::Other(o), Some(od)) => (&**o, od),
            _ => (det, &d),
        })
        .collect();
    let (files, summary, rep) = render(det, img, &d, &views, input, stem, ctx, &decoded.notes, true)?;
    // The report comes last in `files`: its presence marks a complete set.
    let files: Vec<(PathBuf, Vec<u8>)> = files.into_iter().map(|(n, b)| (args.out.join(n), b)).collect();
    write_set(&files)?;
    Ok((summary, rep))
}

/// What a detection says once cleaned and scored: the same for the report and the panel.
struct Assessment {
    clean: Cleaning,
    mask: Mask,
    /// Ranked by evidence.
    regions: Vec<Region>,
    calibration: Calibration,
    score: f32,
    verdict: Verdict,
}

/// The cleaned mask (`--threshold`, the cleaning options or their defaults), its ranked regions,
/// and the calibrated score and verdict of `det`'s detection `d`.
fn assess(det: &Detector, d: &Detection, args: &InferArgs) -> Assessment {
    let clean = Cleaning::resolve(args.open, args.close, args.min_area, d.width, d.height);
    let mut mask = Mask::threshold(&d.prob, d.width, d.height, args.threshold).open(clean.open).close(clean.close);
    let mut regions = regions(&mut mask, &d.prob, clean.min_area);
    rank(&mut regions);
    let calibration = det.calibration();
    let score = calibration.score.score(&d.prob, d.width, d.height);
    let verdict = calibration.verdict(score);
    Assessment { clean, mask, regions, calibration, score, verdict }
}

/// Everything written for one image, encoded (none without `write`), the line printed for it, and
/// the report; `panel` holds the panel's detectors and their detections (empty without `--panel`).
#[allow(clippy::too_many_arguments)]
fn render(
    det: &Detector,
    img: &RgbImage,
    d: &Detection,
    panel: &[(&Detector, &Detection)],
    input: &Path,
    stem: &str,
    ctx: &Context,
    notes: &[String],
    write: bool,
) -> Result<(Vec<(String, Vec<u8>)>, String, serde_json::Value)> {
    let args = ctx.args;
    let t = Instant::now();
    let Assessment { clean, mask, regions: regs, calibration, score, verdict } = assess(det, d, args);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut add = |kind: &str, name: String, bytes: Vec<u8>| {
        outputs.push((kind.to_string(), name.clone()));
        files.push((name, bytes));
    };
    if write {
        add("mask", format!("{stem}.mask.png"), png_gray8(d.width, d.height, mask.to_u8())?);
        add("prob", format!("{stem}.prob.png"), png_gray8(d.width, d.height, to_u8(&d.prob))?);
        let mut ov = overlay(img, &d.prob, &mask, args.threshold);
        if let Some(pairs) = &d.pairs {
            draw_pairs(&mut ov, pairs);
        }
        add("overlay", format!("{stem}.overlay.png"), png_rgb8(ov.width, ov.height, ov.data)?);
    }
    if write && args.save_raw {
        add("prob_npy", format!("{stem}.prob.npy"), npy_f32(&[d.height, d.width], &d.prob)?);
        add("model_npy", format!("{stem}.model.npy"), npy_f32(&d.model_size, &d.model_prob)?);
    }
    let mut scale_summary = Vec::new();
    for s in &d.scales {
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len().max(1) as f32;
        let max = s.prob.iter().cloned().fold(0.0, f32::max);
        scale_summary.push((s.name.clone(), mean(&s.prob), max, s.weight.as_deref().map(mean)));
        if write && args.scales {
            // One kind per scale (`scale-NAME`), as the file name: several scales must not share a key.
            let (scale, weight) = (format!("scale-{}", s.name), format!("weight-{}", s.name));
            add(&scale, format!("{stem}.{scale}.png"), png_gray8(s.width, s.height, to_u8(&s.prob))?);
            if let Some(g) = &s.weight {
                add(&weight, format!("{stem}.{weight}.png"), png_gray8(s.width, s.height, to_u8(g))?);
            }
        }
    }
    let file = input.display().to_string();
    let (panel_json, panel_summary) = if panel.is_empty() {
        (None, String::new())
    } else {
        let (json, png, summary) = render_panel(img, panel, &file, ctx)?;
        add("panel", format!("{stem}.panel.png"), png);
        (Some(json), summary)
    };
    let mut timings = d.timings;
    timings.postprocess_s += t.elapsed().as_secs_f64();
    let weights = det.weights.path.as_ref().map(|p| p.display().to_string());
    let mode = match (det.mode(), args.tile) {
        (InputMode::Native, _) => "native",
        (_, true) => "tile",
        _ => "resize",
    };
    let model_input = match det.mode() {
        InputMode::Resized(hw) => Some(hw),
        InputMode::Native => None,
    };
    // The reader's notes, then the model's (how it analysed the image).
    let notes: Vec<String> = notes.iter().chain(&d.notes).cloned().collect();
    let json_name = format!("{stem}.json");
    if write {
        outputs.push(("report".to_string(), json_name.clone()));
    }
    let rep = report(&ReportInput {
        file: &file,
        width: d.width,
        height: d.height,
        model: det.name(),
        weights: weights.as_deref(),
        weights_sha256: det.weights.sha256.as_deref(),
        mode,
        model_input,
        threshold: args.threshold,
        score,
        verdict,
        calibration: &calibration,
        open: clean.open,
        close: clean.close,
        min_area: clean.min_area,
        marked_pixels: mask.count(),
        regions: &regs,
        scales: &scale_summary,
        timings,
        adapter: &ctx.adapter,
        backend: &ctx.backend,
        outputs: &outputs,
        notes: &notes,
        pairs: d.pairs.as_deref(),
    });
    let mut rep = rep;
    if let (Some(p), Some(obj)) = (panel_json, rep.as_object_mut()) {
        obj.insert("panel".to_string(), p);
    }
    if write {
        files.push((json_name, serde_json::to_vec_pretty(&rep).map_err(|e| Error::invalid(e.to_string()))?));
    }
    let line = if args.json {
        rep.to_string()
    } else {
        format!(
            // "GPU" names the model's share on either engine: ../shared/tools/peer_speed.py reads it.
            "{file}: {}x{}, {}, {}{}, {:.2}% marked, {:.2} s (GPU {:.2} s)",
            d.width,
            d.height,
            verdict_phrase(verdict, score, &calibration),
            regions_phrase(&regs, d.width, d.height),
            pairs_phrase(d.pairs.as_deref()),
            100.0 * mask.count() as f64 / (d.width * d.height) as f64,
            timings.decode_s + timings.preprocess_s + timings.gpu_s + timings.postprocess_s,
            timings.gpu_s
        ) + &panel_summary
    };
    Ok((files, line, rep))
}

/// The panel's JSON array, its PNG, and a summary for the printed line.
fn render_panel(
    img: &RgbImage,
    panel: &[(&Detector, &Detection)],
    file: &str,
    ctx: &Context,
) -> Result<(serde_json::Value, Vec<u8>, String)> {
    let args = ctx.args;
    let mut maps = Vec::new();
    for (pdet, pd) in panel {
        // The same cleaning, score and verdict as the detector's own report.
        let Assessment { mask, regions: regs, score, verdict, .. } = assess(pdet, pd, args);
        let verdict = verdict.word();
        let boxes: Vec<_> = pd.pairs.iter().flatten().map(|p| (p.source, p.destination)).collect();
        let links = crate::report::panel::pair_links(&regs, &boxes);
        maps.push((pdet, pd, mask, regs, score, verdict, links));
    }
    let mut json = Vec::new();
    let mut entries = Vec::new();
    let mut summary = Vec::new();
    for (pdet, pd, mask, regs, score, verdict, links) in &maps {
        let verdict = *verdict;
        let weights = pdet.weights.path.as_ref().map(|p| p.display().to_string());
        let title = match pdet.weights.path.as_ref().and_then(|p| p.file_name()) {
            Some(f) => format!("{} ({})", pdet.name(), f.to_string_lossy()),
            None => pdet.name().to_string(),
        };
        json.push(crate::report::json::panel_entry(&crate::report::json::PanelEntryInput {
            model: pdet.name(),
            weights: weights.as_deref(),
            score: *score,
            verdict,
            width: pd.width,
            height: pd.height,
            marked_pixels: mask.count(),
            regions: regs,
            numbered: crate::report::panel::NUMBERED,
        }));
        summary.push(format!("{} {score:.3} {verdict}", pdet.name()));
        entries.push(crate::report::panel::Entry {
            title,
            score: *score,
            verdict,
            prob: &pd.prob,
            mask,
            regions: regs,
            links,
        });
    }
    let name = Path::new(file).file_name().map_or(file.to_string(), |n| n.to_string_lossy().into_owned());
    let note = format!("{} × {} px  ·  threshold {}", img.width, img.height, args.threshold);
    let picture = crate::report::panel::panel(img, &name, &note, &entries, args.threshold);
    let png = png_rgb8(picture.width, picture.height, picture.data)?;
    Ok((serde_json::Value::Array(json), png, format!("; panel: {}", summary.join(", "))))
}

/// Probabilities as 8-bit gray, `round(255 p)`, by the decoder's own unit-to-byte rule.
fn to_u8(p: &[f32]) -> Vec<u8> {
    p.iter().map(|&v| crate::imageio::unit_to_u8(v)).collect()
}
