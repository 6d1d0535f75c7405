//! The interface every model implements, so that the pipeline, `convert`, `infer` and `eval` work
//! with any of them without knowing one by name.
//!
//! A [`Family`] is a registry entry (one per model name): it says whether it needs weights,
//! recognises its checkpoints by their keys, and reads a [`Model`] (its configuration) off a weight
//! store. A [`Model`] says how it sees the image, builds its graph, lists the keys and shapes its
//! weights must have (for `convert`), and describes its per-scale maps.

use std::collections::HashMap;

use crate::error::Result;
use crate::graph::Graph;
use crate::models::weights::WeightStore;
use crate::report::verdict::Calibration;
use crate::tensor::Tensor;

/// How a model sees the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputMode {
    /// Resized to a fixed `[H, W]` (OpenCV-exact bilinear on uint8) and ImageNet-normalized.
    Resized([usize; 2]),
    /// RGB 0..255 at the image's own size (the graph is built per image size).
    Native,
}

/// What the values of a map are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// A logit: shown as `sigmoid(v)`.
    Logit,
    /// A probability in [0, 1].
    Probability,
    /// A weight in [0, 1] (a gate's share for a scale).
    Weight,
}

/// Channel `channel` of the graph output `output` (`[1, C, H, W]`), and what its values are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapRef {
    pub output: &'static str,
    pub channel: usize,
    pub kind: MapKind,
}

impl MapRef {
    /// The map's values as probabilities or weights in [0, 1] (logits through a sigmoid).
    pub fn to_unit(&self, v: f32) -> f32 {
        match self.kind {
            MapKind::Logit => 1.0 / (1.0 + (-v).exp()),
            MapKind::Probability | MapKind::Weight => v,
        }
    }
}

/// One scale of a multi-scale model: its own map and, when the model weighs its scales, the
/// weight it gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scale {
    /// Display name (`c1`, `s4`, `coarse` ...), used in file names and reports.
    pub name: String,
    pub map: MapRef,
    pub weight: Option<MapRef>,
}

/// A model with its configuration, ready to build graphs.
pub trait Model {
    /// The registry name of its family.
    fn name(&self) -> &str;
    /// How it sees the image.
    fn input(&self) -> InputMode;
    /// The graph for an input of `hw` (the fixed input of a resized model): input "image"
    /// `[1, 3, H, W]`, output "prob" `[1, 1, H', W']` in [0, 1], plus the outputs its scales name.
    fn build(&self, hw: [usize; 2], weights: &WeightStore) -> Result<Graph>;
    /// Graph inputs computed at the image's own size, before the resize (an ELA stream's input):
    /// a graph for an `hw` image with input "image" `[1, 3, H, W]` (RGB 0..255) whose outputs,
    /// `[1, C, H, W]` integer levels in 0..255, the pipeline resizes like the image (OpenCV's
    /// uint8 bilinear) to the model's input and feeds to its graph under the same names. `None`
    /// for models that take the image alone.
    fn native_stage(&self, _hw: [usize; 2]) -> Option<Result<Graph>> {
        None
    }
    /// Every weight key it reads, with its shape (what `convert` checks and keeps).
    fn expected_keys(&self) -> Vec<(String, Vec<usize>)> {
        Vec::new()
    }
    /// Key prefixes its checkpoints may carry that it does not use (dropped by `convert` and
    /// reported as known, not as unexpected).
    fn unused_prefixes(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// The configuration as JSON, written into converted files' metadata (`config`).
    fn config_json(&self) -> String {
        "{}".to_string()
    }
    /// Its per-scale maps, in order (empty for single-map models).
    fn scales(&self) -> Vec<Scale> {
        Vec::new()
    }
    /// The model's CPU step after its graph ran on an `hw` input (the size `build` was given):
    /// it may rewrite the outputs (replace "prob" with a cleaned map at the same size) and
    /// returns what it found besides the map. The default changes nothing and finds nothing.
    fn finish(&self, _hw: [usize; 2], _outputs: &mut HashMap<String, Tensor>) -> Result<Findings> {
        Ok(Findings::default())
    }
    /// A calibration for this configuration when it differs from the family's (hifi's product
    /// fusion scores on another scale than its learned one); checked against the weights' sha256
    /// like the family's. Default: none, the family's applies.
    fn calibration(&self) -> Option<Calibration> {
        None
    }
}

/// What a model's [`Model::finish`] reports besides the map.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Findings {
    /// Matched region pairs, for models that look for them (copy-move); `None` for models that
    /// do not, so their reports carry no `pairs` field.
    pub pairs: Option<Vec<ClonePair>>,
    /// Lines for the report's `notes` (how the model analysed the image).
    pub notes: Vec<String>,
}

/// Two regions of an image with the same content (a copy-move forgery): one side, the other, and
/// the geometry that maps the first onto the second. Copy-move detection cannot tell which side
/// was copied: `source` is the side found first (the larger candidate region).
#[derive(Clone, Debug, PartialEq)]
pub struct ClonePair {
    /// Pixel boxes `[x0, y0, x1, y1]`, x1 and y1 exclusive.
    pub source: [usize; 4],
    pub destination: [usize; 4],
    /// Mean displacement from source to destination, pixels `(dx, dy)`.
    pub offset: [f32; 2],
    /// Rotation (degrees, counter-clockwise in image coordinates with y down: positive turns x
    /// towards y) and scale of the affine map from source to destination.
    pub rotation_deg: f32,
    pub scale: f32,
    /// Matched pixels of the source side.
    pub area: usize,
    /// In [0, 1]: the share of matched pixels whose match lands on the other side and matches
    /// back (1 for a clean clone).
    pub strength: f32,
}

impl ClonePair {
    /// The pair in a map `sx` times wider and `sy` times higher (model resolution to the image's).
    pub fn scaled(&self, sx: f64, sy: f64, width: usize, height: usize) -> ClonePair {
        let bbox = |b: [usize; 4]| {
            [
                ((b[0] as f64 * sx).floor() as usize).min(width),
                ((b[1] as f64 * sy).floor() as usize).min(height),
                ((b[2] as f64 * sx).ceil() as usize).min(width),
                ((b[3] as f64 * sy).ceil() as usize).min(height),
            ]
        };
        ClonePair {
            source: bbox(self.source),
            destination: bbox(self.destination),
            offset: [(self.offset[0] as f64 * sx) as f32, (self.offset[1] as f64 * sy) as f32],
            area: (self.area as f64 * sx * sy).round() as usize,
            ..self.clone()
        }
    }
}

/// A registry entry: one model name.
pub trait Family: Sync {
    /// The model's name (`--model`, the `arch` metadata of converted files).
    fn name(&self) -> &'static str;
    /// Other names it answers to (`mesorch-p` for `mesorch_p`).
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    /// One line for `wgpu-forge info` and errors.
    fn about(&self) -> &'static str;
    /// Whether it needs weights (training-free detectors do not).
    fn needs_weights(&self) -> bool;
    /// Whether a checkpoint with these keys is one of this family's (for `convert` without
    /// `--arch`). Training-free families recognise nothing.
    fn recognises(&self, _has_prefix: &dyn Fn(&str) -> bool) -> bool {
        false
    }
    /// The model the weights describe: sizes read off their shapes, the rest from their metadata
    /// (`config`, `input_size`), published values where neither says. Families without weights
    /// ignore `weights`.
    fn configure(&self, weights: &WeightStore) -> Result<Box<dyn Model>>;
    /// The settings the model takes (`infer --set KEY=VALUE`): name and meaning. A training-free
    /// detector gets them through [`Family::configure_with`], a learned model through
    /// [`Family::configure_weights_with`].
    fn settings(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// The detector with `settings` (names from [`Family::settings`]) over its defaults; with none,
    /// [`Family::configure`] without weights. Families without settings refuse any.
    fn configure_with(&self, settings: &[(String, String)]) -> Result<Box<dyn Model>> {
        if let Some((k, _)) = settings.first() {
            return Err(crate::error::Error::invalid(format!(
                "--set {k}: model '{}' takes no settings{}",
                self.name(),
                if self.needs_weights() { " (its weights configure it)" } else { "" }
            )));
        }
        self.configure(&WeightStore::new())
    }
    /// The model the weights describe ([`Family::configure`]) with `settings` (names from
    /// [`Family::settings`]) over what the weights say. Families without settings refuse any.
    fn configure_weights_with(&self, weights: &WeightStore, settings: &[(String, String)]) -> Result<Box<dyn Model>> {
        if let Some((k, _)) = settings.first() {
            return Err(crate::error::Error::invalid(format!("--set {k}: model '{}' takes no settings", self.name())));
        }
        self.configure(weights)
    }
    /// How its image score is computed and where its verdict thresholds lie, measured on pristine
    /// photographs held out from training (tools/calibrate.py; docs/report.md "Scores and
    /// verdicts"). A learned family's entry names the weights it was measured with; a weight
    /// file's metadata `calibration` overrides it ([`crate::pipeline::Detector::calibration`]).
    /// Default: [`Calibration::uncalibrated`].
    fn calibration(&self) -> Calibration {
        Calibration::uncalibrated()
    }
}

/// A model made of any graph builder (for tests and tools): `build(hw)` gives the graph.
pub struct GraphModel {
    pub name: String,
    pub input: InputMode,
    pub build: Box<dyn Fn([usize; 2]) -> Result<Graph>>,
}

impl std::fmt::Debug for dyn Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "model family '{}'", self.name())
    }
}

impl Model for GraphModel {
    fn name(&self) -> &str {
        &self.name
    }
    fn input(&self) -> InputMode {
        self.input
    }
    fn build(&self, hw: [usize; 2], _weights: &WeightStore) -> Result<Graph> {
        (self.build)(hw)
    }
}
