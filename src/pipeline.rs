//! One image's trip: decoded RGB -> model input -> planned graph -> probability map at the image's
//! own size. The graph is planned once per [`Detector`] and run for every image.
//!
//! The pipeline knows models only through their interface ([`crate::models::Model`]). Models with
//! a fixed input see the image the way the benchmark's test path does: an OpenCV-exact uint8
//! bilinear resize to the model's input size (512 x 512 for the published weights), ImageNet
//! normalization; the map comes back with a bilinear, align_corners=False resize. Native-resolution
//! models (the training-free detectors) take the RGB values 0..255 at the image's own size and are
//! re-planned when the size changes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::graph::{Engine, Executor, Graph};
use crate::imageio::RgbImage;
pub use crate::models::InputMode;
use crate::models::{self, ClonePair, Family, GraphModel, Model, Scale, WeightStore};
use crate::preprocess::{resize_bilinear_u8_cv, resize_prob_back, to_model_input_hw};
use crate::report::verdict::Calibration;
use crate::tensor::Tensor;

mod batch;
pub use batch::BATCH_IO_BUDGET_BYTES;

/// Where the weights came from, for reports.
#[derive(Clone, Debug, Default)]
pub struct WeightsInfo {
    pub path: Option<PathBuf>,
    pub sha256: Option<String>,
    /// The `arch` / `config` / `source_sha256` metadata written by `convert`.
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// Seconds spent in each step of one image's trip.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timings {
    pub decode_s: f64,
    pub preprocess_s: f64,
    pub gpu_s: f64,
    pub postprocess_s: f64,
}

/// The calibration of model `name` with these weights; see [`Detector::calibration`].
pub fn calibration_for(name: &str, weights: &WeightsInfo) -> Calibration {
    if let Some(c) = weights.metadata.get("calibration").and_then(|s| Calibration::from_json(s)) {
        return c;
    }
    let Ok(family) = models::family(name) else { return Calibration::uncalibrated() };
    for_these_weights(family.calibration(), weights)
}

/// `c` when it was measured without naming weights or with these very weights, else uncalibrated.
fn for_these_weights(c: Calibration, weights: &WeightsInfo) -> Calibration {
    match &c.weights_sha256 {
        Some(want) if weights.sha256.as_ref() != Some(want) => Calibration::uncalibrated(),
        _ => c,
    }
}

/// One scale's map as the model describes it ([`Scale`]), in [0, 1] (logits through a sigmoid), at
/// the resolution the model computes it.
#[derive(Clone, Debug)]
pub struct ScaleMap {
    pub name: String,
    pub width: usize,
    pub height: usize,
    pub prob: Vec<f32>,
    /// The weight the model gives this scale, per pixel, when it weighs its scales.
    pub weight: Option<Vec<f32>>,
}

/// What a detector says about one image.
#[derive(Clone, Debug)]
pub struct Detection {
    pub width: usize,
    pub height: usize,
    /// Tamper probability per pixel at the image's size, row-major `height x width`.
    pub prob: Vec<f32>,
    /// The map at the model's own resolution `[H, W]` (equal to the image's for native models).
    pub model_size: [usize; 2],
    pub model_prob: Vec<f32>,
    /// The model's per-scale maps (none for single-map models and for tiled runs).
    pub scales: Vec<ScaleMap>,
    /// Every other named graph output (per-scale logits, gate weights, raw residuals ...).
    pub extras: HashMap<String, Tensor>,
    /// Matched region pairs in image coordinates, from models that look for them
    /// ([`Model::finish`]); `None` for the others.
    pub pairs: Option<Vec<ClonePair>>,
    /// What the model says about how it analysed the image (for the report's notes).
    pub notes: Vec<String>,
    pub timings: Timings,
}

/// A model planned on an engine (a GPU, or the CPU backend), ready to run image after image.
/// Constructors take anything that converts into an [`Engine`]: `&Gpu` or `Engine::Cpu`.
pub struct Detector<'g> {
    engine: Engine<'g>,
    model: Box<dyn Model>,
    /// The weights, kept only for models planned per image size.
    store: WeightStore,
    pub weights: WeightsInfo,
    /// The plan and the input size it was made for.
    plan: Option<([usize; 2], Executor<'g>)>,
    /// Bytes of one run's inputs and outputs under the plan ([`Graph::io_bytes`]), to bound batches.
    plan_io_bytes: u64,
    /// The model's native stage planned for an image size, and whether it has none.
    native: Option<([usize; 2], Executor<'g>)>,
    native_none: bool,
}

/// Hand the allocator's free heap back to the system once a plan is made and its graph dropped.
/// glibc raises its mmap threshold (up to 32 MiB) whenever a block above it is freed, so after the
/// weight file's buffer is freed the graph's weight tensors come from the brk heap, and freeing
/// them leaves that memory resident: Mesorch on lavapipe peaked at 1584 MiB instead of 1263.
/// (Fixing the threshold instead made every run's large buffers fresh mappings: ~10% slower on
/// the CPU backend.)
fn return_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory at the heap's edges and in its free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl<'g> Detector<'g> {
    /// A learned model from a converted weight file (`wgpu-forge convert`): the model named by the
    /// file's `arch` metadata (or `model`), configured from the weights.
    pub fn from_weights_file(engine: impl Into<Engine<'g>>, path: &Path, model: Option<&str>) -> Result<Detector<'g>> {
        Self::from_weights_file_with(engine, path, model, &[])
    }

    /// As [`Detector::from_weights_file`], with the model's `settings` (`--set KEY=VALUE`, names
    /// from [`Family::settings`]) over what the weights say.
    pub fn from_weights_file_with(
        engine: impl Into<Engine<'g>>,
        path: &Path,
        model: Option<&str>,
        settings: &[(String, String)],
    ) -> Result<Detector<'g>> {
        use crate::weights::store::{MAX_SAFETENSORS_BYTES, MAX_SAFETENSORS_NOTE};
        // One read serves both the hash in the report and the parse.
        let bytes = crate::fileio::read_regular(path, MAX_SAFETENSORS_BYTES, "weights", MAX_SAFETENSORS_NOTE)?;
        Self::from_weights_bytes_with(engine, &bytes, path, model, settings)
    }

    /// As [`Detector::from_weights_file`], from the file's bytes (`path` names them in messages
    /// and in the report; the shipped default is built into the binary).
    pub fn from_weights_bytes(
        engine: impl Into<Engine<'g>>,
        bytes: &[u8],
        path: &Path,
        model: Option<&str>,
    ) -> Result<Detector<'g>> {
        Self::from_weights_bytes_with(engine, bytes, path, model, &[])
    }

    /// As [`Detector::from_weights_bytes`], with the model's `settings` over what the weights say.
    pub fn from_weights_bytes_with(
        engine: impl Into<Engine<'g>>,
        bytes: &[u8],
        path: &Path,
        model: Option<&str>,
        settings: &[(String, String)],
    ) -> Result<Detector<'g>> {
        // The digest (a quarter second for 250 MB) on a thread of its own while the tensors decode.
        let (sha256, parsed) = std::thread::scope(|s| {
            let digest = s.spawn(|| crate::weights::sha256_hex(bytes));
            let parsed = crate::weights::TensorStore::from_safetensors_bytes(bytes);
            (digest.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), parsed)
        });
        let store = parsed.map_err(|e| {
            // Not safetensors: say so plainly when it is a PyTorch checkpoint (a zip, or a legacy
            // pickle: PROTO 2..5). Checked only after the parse failed, since a safetensors
            // header's length may well start with the byte 0x80 too.
            let pickle = bytes.first() == Some(&0x80) && bytes.get(1).is_some_and(|p| (2..=5).contains(p));
            if bytes.starts_with(b"PK\x03\x04") || pickle {
                let stem = path.file_stem().map_or("weights".into(), |s| s.to_string_lossy().into_owned());
                Error::invalid(format!(
                    "weights {}: a PyTorch checkpoint, not a converted .safetensors file; convert it first: \
                     wgpu-forge convert {} {stem}.safetensors",
                    path.display(),
                    path.display()
                ))
            } else {
                e.context(format!("weights {}", path.display()))
            }
        })?;
        let bad = store.nonfinite(crate::weights::SaveDType::F32);
        if !bad.is_empty() {
            return Err(Error::invalid(format!(
                "weights {}: {} tensors hold NaN or infinite values, so every map would be NaN: {}",
                path.display(),
                bad.len(),
                bad.iter().take(4).cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let metadata = store.metadata.clone();
        let in_context = |e: Error| e.context(format!("weights {}", path.display()));
        let family = match (model, metadata.get("arch")) {
            (Some(m), _) => models::family(m)?,
            (None, Some(a)) => models::family(a).map_err(in_context)?,
            (None, None) => {
                return Err(Error::invalid(format!(
                    "{}: no 'arch' in the metadata; convert the checkpoint with `wgpu-forge convert` or pass --model",
                    path.display()
                )))
            }
        };
        if !family.needs_weights() {
            return Err(Error::invalid(format!("--model {} is training-free and takes no --weights", family.name())));
        }
        let weights = WeightStore::from_store(store);
        let model = family.configure_weights_with(&weights, settings).map_err(in_context)?;
        let info = WeightsInfo { path: Some(path.to_path_buf()), sha256: Some(sha256), metadata };
        Self::open(engine, model, weights, info).map_err(in_context)
    }

    /// A model that needs no weights (`ela`, `noise`), by its family.
    pub fn without_weights(engine: impl Into<Engine<'g>>, family: &dyn Family) -> Result<Detector<'g>> {
        Self::with_settings(engine, family, &[])
    }

    /// A model that needs no weights with `settings` over its defaults ([`Family::configure_with`]).
    pub fn with_settings(
        engine: impl Into<Engine<'g>>,
        family: &dyn Family,
        settings: &[(String, String)],
    ) -> Result<Detector<'g>> {
        if family.needs_weights() {
            return Err(Error::invalid(format!("'{}' needs weights: pass --weights FILE", family.name())));
        }
        Self::open(engine, family.configure_with(settings)?, WeightStore::new(), WeightsInfo::default())
    }

    /// A detector over any graph builder (`build([H, W])` gives a graph with input "image" and
    /// output "prob" of shape `[1, 1, H', W']`).
    pub fn new(
        engine: impl Into<Engine<'g>>,
        model: &str,
        weights: WeightsInfo,
        mode: InputMode,
        build: Box<dyn Fn([usize; 2]) -> Result<Graph>>,
    ) -> Detector<'g> {
        let model = Box::new(GraphModel { name: model.to_string(), input: mode, build });
        let engine = engine.into();
        Detector {
            engine,
            model,
            store: WeightStore::new(),
            weights,
            plan: None,
            plan_io_bytes: 0,
            native: None,
            native_none: false,
        }
    }

    /// A configured model on the device. A model with a fixed input is planned here, once, and
    /// keeps no host copy of its weights (the plan holds them on the device); a native-resolution
    /// model keeps its weights to build a graph per image size.
    pub fn open(
        engine: impl Into<Engine<'g>>,
        model: Box<dyn Model>,
        weights: WeightStore,
        info: WeightsInfo,
    ) -> Result<Detector<'g>> {
        let engine = engine.into();
        let mut det = Detector {
            engine,
            model,
            store: weights,
            weights: info,
            plan: None,
            plan_io_bytes: 0,
            native: None,
            native_none: false,
        };
        if let InputMode::Resized(hw) = det.model.input() {
            let graph = det.model.build(hw, &det.store)?;
            det.store = WeightStore::new();
            det.install_plan(hw, graph)?;
        }
        Ok(det)
    }

    /// Plan `graph` (built for input `hw`) as the current plan, then drop it and hand its freed
    /// memory back ([`return_freed_heap`]).
    fn install_plan(&mut self, hw: [usize; 2], graph: Graph) -> Result<()> {
        let plan = self.engine.plan(&graph)?;
        self.plan = Some((hw, plan));
        self.plan_io_bytes = graph.io_bytes();
        drop(graph);
        return_freed_heap();
        Ok(())
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        self.model.name()
    }

    /// The image score and verdict thresholds: the weight file's metadata `calibration` when it
    /// has one, else the family's ([`Family::calibration`]) when it was measured without naming
    /// weights or with these very weights (by sha256), else [`Calibration::uncalibrated`].
    pub fn calibration(&self) -> Calibration {
        match self.model.calibration() {
            // A configuration with its own calibration (hifi's product fusion) has it first.
            Some(c) => for_these_weights(c, &self.weights),
            None => calibration_for(self.name(), &self.weights),
        }
    }

    /// How the model sees the image.
    pub fn mode(&self) -> InputMode {
        self.model.input()
    }

    /// Plan the graph for an input of `hw` unless the current plan already is for it.
    fn plan_for(&mut self, hw: [usize; 2]) -> Result<&Executor<'g>> {
        if self.plan.as_ref().map(|(s, _)| *s) != Some(hw) {
            // A fixed-input model is planned once (at configuration, or here on first use).
            if self.plan.is_some() && self.model.input() != InputMode::Native {
                return Err(Error::invalid(format!("model '{}' is planned for one input size only", self.name())));
            }
            self.plan = None; // free the old plan's buffers first
            let graph = self.model.build(hw, &self.store)?;
            self.install_plan(hw, graph)?;
        }
        Ok(&self.plan.as_ref().expect("planned above").1)
    }

    /// The model's native-stage outputs for `img` (see [`Model::native_stage`]), each resized to
    /// the model's input `[h, w]` as uint8 levels with OpenCV's bilinear rule, as the graph's
    /// inputs of the same names. The stage is planned per image size and kept.
    fn native_inputs(&mut self, img: &RgbImage, [h, w]: [usize; 2]) -> Result<Vec<(String, Tensor)>> {
        let size = [img.height, img.width];
        if self.native.as_ref().map(|(s, _)| *s) != Some(size) {
            if self.native_none {
                return Ok(Vec::new());
            }
            let Some(graph) = self.model.native_stage(size) else {
                self.native_none = true;
                return Ok(Vec::new());
            };
            self.native = None;
            let plan = self.engine.plan(&graph?)?;
            self.native = Some((size, plan));
        }
        let plan = &self.native.as_ref().expect("planned above").1;
        let mut outs: Vec<(String, Tensor)> = plan.run(&[("image", &rgb_planes(img))])?.into_iter().collect();
        outs.sort_by(|a, b| a.0.cmp(&b.0));
        outs.into_iter()
            .map(|(name, t)| {
                let [1, c, sh, sw] = t.shape[..] else {
                    return Err(Error::graph(format!("native stage output '{name}' has shape {:?}", t.shape)));
                };
                // Planar levels -> interleaved u8 -> OpenCV's resize -> planar f32.
                let plane = sh * sw;
                let hwc: Vec<u8> =
                    (0..plane * c).map(|i| t.data[(i % c) * plane + i / c].round().clamp(0.0, 255.0) as u8).collect();
                let small = resize_bilinear_u8_cv(&hwc, sw, sh, c, w, h);
                let data: Vec<f32> = (0..c * h * w).map(|i| small[(i % (h * w)) * c + i / (h * w)] as f32).collect();
                Ok((name, Tensor::new(&[1, c, h, w], data)?))
            })
            .collect()
    }

    /// The model's graph planned for an input of `hw` (the size a fixed-input model was planned
    /// for when `None` or equal; a native-resolution model needs one), for profiles. The model's
    /// native stage, if any, is not part of it.
    pub fn plan_at(&mut self, hw: Option<[usize; 2]>) -> Result<&Executor<'g>> {
        match (self.model.input(), hw) {
            (InputMode::Resized(fixed), Some(want)) if fixed != want => Err(Error::invalid(format!(
                "model '{}' runs at its input size {}x{} only (images are resized to it)",
                self.name(),
                fixed[0],
                fixed[1]
            ))),
            (InputMode::Resized(fixed), _) => self.plan_for(fixed),
            (InputMode::Native, Some(want)) => self.plan_for(want),
            (InputMode::Native, None) => {
                Err(Error::invalid(format!("model '{}' runs at the image's size: give one (--size HxW)", self.name())))
            }
        }
    }

    /// Memory of the current plan (activations after sharing, weights, scratch, uniforms).
    pub fn plan_stats(&self) -> Option<crate::graph::PlanStats> {
        self.plan.as_ref().map(|(_, p)| p.stats())
    }

    /// The engine the detector runs on.
    pub fn engine(&self) -> Engine<'g> {
        self.engine
    }

    /// Run the model on one image.
    pub fn detect(&mut self, img: &RgbImage) -> Result<Detection> {
        let prepared = self.prepare(img)?;
        self.run_prepared(img, prepared)
    }

    /// Run the graph on one prepared image and finish its detection.
    fn run_prepared(&mut self, img: &RgbImage, prepared: Prepared) -> Result<Detection> {
        let t1 = Instant::now();
        let inputs = prepared.named();
        let out = self.plan_for(prepared.hw)?.run(&inputs)?;
        self.check_finite(prepared.hw, &inputs, &out)?;
        let gpu_s = prepared.side_s + t1.elapsed().as_secs_f64();
        let timings = Timings { preprocess_s: prepared.preprocess_s, gpu_s, ..Default::default() };
        self.finish_detection(img, prepared.hw, out, timings)
    }

    /// The graph's inputs for `img`: the model's input and the native stage's outputs, if any.
    fn prepare(&mut self, img: &RgbImage) -> Result<Prepared> {
        if img.width == 0 || img.height == 0 {
            return Err(Error::invalid("the image has no pixels"));
        }
        let t0 = Instant::now();
        let (input, hw) = match self.model.input() {
            InputMode::Resized([h, w]) => (to_model_input_hw(img, h, w), [h, w]),
            InputMode::Native => (rgb_planes(img), [img.height, img.width]),
        };
        let preprocess_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let mut inputs = vec![("image".to_string(), input)];
        if let InputMode::Resized(hw) = self.model.input() {
            inputs.extend(self.native_inputs(img, hw)?);
        }
        // The native stage runs the engine: counted with the graph, as before batching.
        Ok(Prepared { inputs, hw, preprocess_s, side_s: t1.elapsed().as_secs_f64() })
    }

    /// An error naming the output and, when it can be found, the node that first made a NaN or
    /// an infinity, if the graph's outputs `out` for `inputs` hold any.
    fn check_finite(
        &mut self,
        hw: [usize; 2],
        inputs: &[(&str, &Tensor)],
        out: &HashMap<String, Tensor>,
    ) -> Result<()> {
        let Some((name, bad)) = first_nonfinite_output(out) else { return Ok(()) };
        // Find the node that first produced one: slow, but only on this error path.
        let at = match self.plan_for(hw)?.first_nonfinite(inputs)? {
            Some(nf) => format!("; the first is made by {nf}"),
            None => String::new(),
        };
        Err(Error::invalid(format!(
            "model '{}' produced {bad} NaN or infinite values in its output '{name}'{at}; the map would be \
             meaningless (weights that overflow float32, or a bug: please report it)",
            self.model.name()
        )))
    }

    /// The detection from the graph's outputs `out` for `img` (an `hw` model input): the model's
    /// own CPU step, the map back at the image's size, its scales and pairs.
    fn finish_detection(
        &self,
        img: &RgbImage,
        hw: [usize; 2],
        mut out: HashMap<String, Tensor>,
        mut timings: Timings,
    ) -> Result<Detection> {
        let t2 = Instant::now();
        // The model's own CPU step at its resolution (may replace "prob"); counted as post-processing.
        let findings = self.model.finish(hw, &mut out)?;
        let name = self.model.name();
        let prob = out.remove("prob").ok_or_else(|| Error::graph(format!("model '{name}' has no 'prob' output")))?;
        let (ph, pw) = match prob.shape.as_slice() {
            [1, 1, h, w] => (*h, *w),
            s => {
                return Err(Error::graph(format!("model '{name}' gave a 'prob' of shape {s:?}, expected [1, 1, H, W]")))
            }
        };
        let scales = scale_maps(name, &self.model.scales(), &out)?;
        let full = if (ph, pw) == (img.height, img.width) {
            prob.data.clone()
        } else {
            resize_prob_back(&prob.data, pw, ph, img.width, img.height)
        };
        let (sx, sy) = (img.width as f64 / pw as f64, img.height as f64 / ph as f64);
        let pairs =
            findings.pairs.map(|v| v.iter().map(|p| p.scaled(sx, sy, img.width, img.height)).collect::<Vec<_>>());
        timings.postprocess_s = t2.elapsed().as_secs_f64();
        Ok(Detection {
            width: img.width,
            height: img.height,
            prob: full,
            model_size: [ph, pw],
            model_prob: prob.data,
            scales,
            extras: out,
            pairs,
            notes: findings.notes,
            timings,
        })
    }
}

/// One image's graph inputs, made by [`Detector::prepare`].
struct Prepared {
    inputs: Vec<(String, Tensor)>,
    /// The model input's size (the plan it needs).
    hw: [usize; 2],
    preprocess_s: f64,
    /// Seconds the model's native stage took (an engine run, counted with the graph's).
    side_s: f64,
}

impl Prepared {
    fn named(&self) -> Vec<(&str, &Tensor)> {
        self.inputs.iter().map(|(n, t)| (n.as_str(), t)).collect()
    }
}

impl<'g> Detector<'g> {
    /// Whether tiles may overlap by `overlap` pixels: less than the model's input side (any for
    /// native-resolution models, which are not tiled). Checked before a batch starts.
    pub fn check_tile_overlap(&self, overlap: usize) -> Result<()> {
        match self.model.input() {
            InputMode::Resized([th, tw]) if overlap >= th.min(tw) => {
                Err(Error::invalid(format!("--tile-overlap {overlap} must be smaller than the model's {tw}x{th} tile")))
            }
            _ => Ok(()),
        }
    }

    /// [`Detector::detect_tiled`] with `Some(overlap)`, else [`Detector::detect`]: what `infer`
    /// and `eval` run for `--tile` / its absence.
    pub fn detect_with(&mut self, img: &RgbImage, tile_overlap: Option<usize>) -> Result<Detection> {
        match tile_overlap {
            Some(overlap) => self.detect_tiled(img, overlap),
            None => self.detect(img),
        }
    }

    /// Run a fixed-input model over overlapping tiles of the image at its own resolution, and
    /// blend: each tile's map is weighted by a ramp that rises over `overlap` pixels from its
    /// edges, so seams fade. Images smaller than a tile are padded by repeating their edge pixels.
    /// Native-resolution models just run [`Detector::detect`].
    pub fn detect_tiled(&mut self, img: &RgbImage, overlap: usize) -> Result<Detection> {
        let InputMode::Resized([th, tw]) = self.model.input() else { return self.detect(img) };
        self.check_tile_overlap(overlap)?;
        let t0 = Instant::now();
        let (w, h) = (img.width.max(tw), img.height.max(th));
        let starts = |n: usize, t: usize| -> Vec<usize> {
            let step = t - overlap;
            let mut v: Vec<usize> = (0..).map(|i| i * step).take_while(|&s| s + t < n).collect();
            v.push(n - t);
            v
        };
        let ramp = |i: usize, t: usize| ((i.min(t - 1 - i) + 1) as f32 / (overlap.max(1)) as f32).min(1.0);
        let mut acc = vec![0.0f32; w * h];
        let mut wsum = vec![0.0f32; w * h];
        let mut timings = Timings::default();
        let mut tile = RgbImage { width: tw, height: th, data: vec![0u8; tw * th * 3] };
        for &y0 in &starts(h, th) {
            for &x0 in &starts(w, tw) {
                for ty in 0..th {
                    let sy = (y0 + ty).min(img.height - 1);
                    for tx in 0..tw {
                        let sx = (x0 + tx).min(img.width - 1);
                        let (d, s) = ((ty * tw + tx) * 3, (sy * img.width + sx) * 3);
                        tile.data[d..d + 3].copy_from_slice(&img.data[s..s + 3]);
                    }
                }
                let d = self.detect(&tile)?;
                timings.gpu_s += d.timings.gpu_s;
                timings.preprocess_s += d.timings.preprocess_s;
                for ty in 0..th {
                    for tx in 0..tw {
                        let wgt = ramp(ty, th) * ramp(tx, tw);
                        let i = (y0 + ty) * w + x0 + tx;
                        acc[i] += wgt * d.prob[ty * tw + tx];
                        wsum[i] += wgt;
                    }
                }
            }
        }
        let t2 = Instant::now();
        let mut prob = Vec::with_capacity(img.width * img.height);
        for y in 0..img.height {
            for x in 0..img.width {
                prob.push(acc[y * w + x] / wsum[y * w + x]);
            }
        }
        timings.postprocess_s = t2.elapsed().as_secs_f64();
        timings.preprocess_s +=
            (t0.elapsed().as_secs_f64() - timings.gpu_s - timings.preprocess_s - timings.postprocess_s).max(0.0);
        Ok(Detection {
            width: img.width,
            height: img.height,
            model_size: [img.height, img.width],
            model_prob: prob.clone(),
            prob,
            scales: Vec::new(),
            extras: HashMap::new(),
            pairs: None,
            notes: Vec::new(),
            timings,
        })
    }
}

/// The model's scales read out of its outputs (each a channel of a `[1, C, H, W]` output).
fn scale_maps(model: &str, scales: &[Scale], out: &HashMap<String, Tensor>) -> Result<Vec<ScaleMap>> {
    let channel = |r: &models::MapRef| -> Result<(usize, usize, Vec<f32>)> {
        let t =
            out.get(r.output).ok_or_else(|| Error::graph(format!("model '{model}' has no '{}' output", r.output)))?;
        let [1, c, h, w] = t.shape[..] else {
            return Err(Error::graph(format!("model '{model}': '{}' has shape {:?}", r.output, t.shape)));
        };
        if r.channel >= c {
            return Err(Error::graph(format!("model '{model}': '{}' has no channel {}", r.output, r.channel)));
        }
        let plane = &t.data[r.channel * h * w..(r.channel + 1) * h * w];
        Ok((h, w, plane.iter().map(|&v| r.to_unit(v)).collect()))
    };
    scales
        .iter()
        .map(|s| {
            let (height, width, prob) = channel(&s.map)?;
            let weight = s.weight.as_ref().map(|r| channel(r).map(|c| c.2)).transpose()?;
            Ok(ScaleMap { name: s.name.clone(), width, height, prob, weight })
        })
        .collect()
}

/// The first output (by name) holding NaN or infinite values, and how many.
fn first_nonfinite_output(out: &HashMap<String, Tensor>) -> Option<(String, usize)> {
    let mut names: Vec<&String> = out.keys().collect();
    names.sort();
    names.into_iter().find_map(|n| {
        let bad = out[n].data.iter().filter(|v| !v.is_finite()).count();
        (bad > 0).then(|| (n.clone(), bad))
    })
}

/// `[1, 3, H, W]` f32 planes of the RGB values 0..255.
pub fn rgb_planes(img: &RgbImage) -> Tensor {
    let plane = img.width * img.height;
    let mut data = vec![0.0f32; 3 * plane];
    for (i, p) in img.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            data[c * plane + i] = p[c] as f32;
        }
    }
    Tensor { shape: vec![1, 3, img.height, img.width], data }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ScoreRule, Verdict};

    /// A weight file's own calibration wins; a learned family's applies only to the weights it was
    /// measured with; training-free families and unknown names need no weights.
    #[test]
    fn calibration_comes_from_metadata_then_family_for_its_weights() {
        let none = WeightsInfo::default();
        assert_eq!(calibration_for("ela", &none), models::ela::ELA.calibration());
        assert!(calibration_for("ela", &none).is_calibrated());
        assert!(!calibration_for("not-a-model", &none).is_calibrated());
        let pmsp = models::pmsp::PMSP.calibration();
        let shipped = WeightsInfo { sha256: pmsp.weights_sha256.clone(), ..Default::default() };
        assert_eq!(calibration_for("pmsp", &shipped), pmsp);
        let other = WeightsInfo { sha256: Some("0".repeat(64)), ..Default::default() };
        assert_eq!(calibration_for("pmsp", &other), Calibration::uncalibrated());
        let own = Calibration::measured(ScoreRule::BlurMax { box_frac: 0.02 }, 0.9, 0.3, 0.04, 200, "retrained");
        let mut with_meta = other.clone();
        with_meta.metadata.insert("calibration".into(), own.to_json().to_string());
        let got = calibration_for("pmsp", &with_meta);
        assert_eq!((got.score, got.tampered, got.clean, got.pristine_images), (own.score, 0.9, 0.3, 200));
        assert_eq!(got.verdict(0.95), Verdict::Tampered);
        // Unreadable metadata falls back as if absent.
        with_meta.metadata.insert("calibration".into(), "{".into());
        assert_eq!(calibration_for("pmsp", &with_meta), Calibration::uncalibrated());
    }
}
