//! Copy-move forgery detector (training-free), after Cozzolino, Poggi & Verdoliva, "Efficient
//! dense-field copy-move forgery detection", IEEE TIFS 2015: dense rotation-invariant features,
//! a nearest-neighbour field by PatchMatch, and a dense linear fit that keeps the regions whose
//! offsets move together.
//!
//! ```text
//! image [1,3,H,W] ─ Resize (only when H·W > max_pixels) ─ conv2d 1x1 (luma) ─ ZernikeMagnitudes ─ features [1,12,h,w]
//! features ─ PatchMatchInit ─ PatchMatchStep × iters ─ OffsetMedian ─ "field" [1,3,h,w] (dx, dy, cost)
//! field, features ─ OffsetFit ─ "cand" [1,2,h,w] (candidate flag, fit error) ; "prob" = candidate flag
//! finish (CPU, `pairs.rs`): regions of candidates >= min_area, each mirrored to p + offset, paired
//!   with the region its matches land in, dilated by the patch radius ─ "prob" and the pairs
//! ```
//!
//! - Features: the magnitudes `|Z_nm|` of the Zernike moments of order n <= 5 (12 of them: (0,0),
//!   (1,1), (2,0), (2,2), (3,1), (3,3), (4,0), (4,2), (4,4), (5,1), (5,3), (5,5)) of the luma
//!   `0.299 R + 0.587 G + 0.114 B` over a disk of radius `patch_radius + 0.5` (diameter 17 by
//!   default, the paper's ~16): `Z_nm = (n+1)/N Σ_disk Y(p + q) R_nm(ρ) e^{-i m θ}`, N the disk's
//!   pixel count, ρ = |q| / (patch_radius + 0.5). Rotating the patch only turns the phase, so the
//!   magnitudes are rotation invariant; they change little with mild scaling, JPEG and noise.
//!   `Z_00` is the patch mean: all features are in luma levels.
//! - Matching: PatchMatch (`ops::patchmatch`) with offsets of at least `min_offset` pixels,
//!   `iters` iterations whose propagation jumps halve from `max(h, w) / 2`, and random search at
//!   radii `max(h, w) / 2^(s+1)`, `s < log2(max(h, w))`.
//! - Post-processing (`ops::offset_fit`): 5 x 5 median of dx and dy; affine least-squares fit of
//!   the offsets over a 9 x 9 window; candidates where the mean squared residual is at most
//!   `max_err` px² and the patch's feature energy `Σ_{k>=1} |Z_k|²` is at least `min_energy`.
//! - `finish` (CPU): see `pairs.rs`.
//!
//! Large photos are analysed at most at `max_pixels` (1 megapixel by default): the model resizes
//! the image by `s = sqrt(max_pixels / (H·W))` (bilinear) in its graph, the pipeline resizes the
//! map back, and the pairs are scaled back to the image. The report's notes give the analysis size
//! and `s`. Sizes in the configuration (patch, offsets, areas) are analysis pixels.

mod pairs;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::graph::{Graph, GraphBuilder};
use crate::models::model::{Family, Findings, InputMode, Model};
use crate::models::weights::WeightStore;
use crate::ops::conv2d::{conv2d, Conv2d, ConvVariant};
use crate::ops::offset_fit::{OffsetFit, OffsetMedian};
use crate::ops::patchmatch::{jump, PatchMatchInit, PatchMatchStep};
use crate::ops::resize::Resize;
use crate::ops::zernike::ZernikeMagnitudes;
use crate::report::verdict::{Calibration, ScoreRule, NEVER_CLEAN};
use crate::tensor::Tensor;

/// The registry entry.
pub struct CopyMoveFamily;
pub static COPYMOVE: CopyMoveFamily = CopyMoveFamily;

impl Family for CopyMoveFamily {
    fn name(&self) -> &'static str {
        "copymove"
    }
    fn about(&self) -> &'static str {
        "copy-move (training-free): Zernike-moment features, PatchMatch, dense affine fit; marks both copies and reports the pairs"
    }
    fn needs_weights(&self) -> bool {
        false
    }
    fn configure(&self, _weights: &WeightStore) -> Result<Box<dyn Model>> {
        Ok(Box::new(CopyMoveConfig::default()))
    }
    fn settings(&self) -> &'static [(&'static str, &'static str)] {
        SETTINGS
    }
    /// The map is 0 unless a clone is found (then 0.6 to 1 on both copies), so the blurred maximum
    /// is 0 or about 0.6+: any found clone is `tampered` (0 of 107 pristine images had one). No
    /// score is `clean`: 80% of the synthetic copy-moves were not found (score 0), and finding no
    /// clone says nothing about splicing or inpainting; without a clone the verdict is
    /// `inconclusive`.
    fn calibration(&self) -> Calibration {
        let rule = ScoreRule::BlurMax { box_frac: 0.01 };
        Calibration::measured(rule, 0.001, NEVER_CLEAN, 0.0, 107, CALIBRATION_SOURCE)
    }
    fn configure_with(&self, settings: &[(String, String)]) -> Result<Box<dyn Model>> {
        let mut c = CopyMoveConfig::default();
        for (k, v) in settings {
            c.set(k, v)?;
        }
        c.check()?;
        Ok(Box::new(c))
    }
}

/// What tools/calibrate.py measured for the defaults (docs/report.md, "Scores and verdicts").
const CALIBRATION_SOURCE: &str = "tools/calibrate.py --forged-kinds copymove --forged-every 2 --work \
     target/calibrate-cm, 2026-11-29: tampered threshold at <= 5% false alarms on 107 pristine images (17 \
     photo-pool val photos as PNG, 60 synth384 val and 30 synth384 train pristine samples; 0 had a clone); \
     never clean (37 of 46 synth384 val copy-moves scored 0)";

/// `infer --set` names (the [`CopyMoveConfig`] fields).
const SETTINGS: &[(&str, &str)] = &[
    ("patch_radius", "feature disk radius, 1..=8 (default 8: 17 pixels across)"),
    ("min_offset", "shortest match offset, pixels (default 32)"),
    ("min_area", "smallest candidate region, pixels (default 900)"),
    ("iters", "PatchMatch iterations, 1..=64 (default 8)"),
    ("median_radius", "offset median filter radius (default 2)"),
    ("fit_radius", "affine-fit window radius (default 4)"),
    ("max_err", "largest mean squared fit residual, px^2 (default 1.0)"),
    ("min_energy", "smallest feature energy, levels^2 (default 25)"),
    ("max_pixels", "largest analysed size, pixels (default 1000000)"),
];

/// The detector's settings (all sizes in analysis pixels). [`Default`] gives the documented
/// defaults; the fields are public so a caller can build another configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct CopyMoveConfig {
    /// Radius of the feature patch: a disk of diameter `2 r + 1` (default 8: 17 pixels).
    pub patch_radius: usize,
    /// Shortest offset a match may have (default 32).
    pub min_offset: usize,
    /// Smallest candidate region kept, pixels (default 900: a 30 x 30 clone).
    pub min_area: usize,
    /// PatchMatch iterations (default 8).
    pub iters: usize,
    /// Median-filter radius of the offsets (default 2: 5 x 5).
    pub median_radius: usize,
    /// Affine-fit window radius (default 4: 9 x 9).
    pub fit_radius: usize,
    /// Largest mean squared fit residual of a candidate, px² (default 1.0).
    pub max_err: f32,
    /// Smallest feature energy of a candidate, levels² (default 25).
    pub min_energy: f32,
    /// Largest analysed size; larger images are downscaled (default 1 000 000).
    pub max_pixels: usize,
}

impl Default for CopyMoveConfig {
    fn default() -> Self {
        CopyMoveConfig {
            patch_radius: 8,
            min_offset: 32,
            min_area: 900,
            iters: 8,
            median_radius: 2,
            fit_radius: 4,
            max_err: 1.0,
            min_energy: 25.0,
            max_pixels: 1_000_000,
        }
    }
}

impl CopyMoveConfig {
    /// The size the image is analysed at: itself, or scaled by `sqrt(max_pixels / (H·W))`.
    pub fn analysis_size(&self, [h, w]: [usize; 2]) -> [usize; 2] {
        if h * w <= self.max_pixels {
            return [h, w];
        }
        let s = (self.max_pixels as f64 / (h * w) as f64).sqrt();
        [((h as f64 * s).round() as usize).max(1), ((w as f64 * s).round() as usize).max(1)]
    }

    /// One setting by its name (see [`Family::settings`]).
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let whole = |v: &str| {
            v.trim().parse::<usize>().map_err(|_| Error::invalid(format!("--set {key}={v}: a whole number is needed")))
        };
        let real = |v: &str| {
            v.trim()
                .parse::<f32>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| Error::invalid(format!("--set {key}={v}: a number is needed")))
        };
        match key {
            "patch_radius" => self.patch_radius = whole(value)?,
            "min_offset" => self.min_offset = whole(value)?,
            "min_area" => self.min_area = whole(value)?,
            "iters" => self.iters = whole(value)?,
            "median_radius" => self.median_radius = whole(value)?,
            "fit_radius" => self.fit_radius = whole(value)?,
            "max_err" => self.max_err = real(value)?,
            "min_energy" => self.min_energy = real(value)?,
            "max_pixels" => self.max_pixels = whole(value)?,
            _ => {
                let known: Vec<&str> = SETTINGS.iter().map(|(k, _)| *k).collect();
                return Err(Error::invalid(format!(
                    "--set {key}: copymove has no such setting; known: {}",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(format!("copymove: {m}")));
        if !(1..=8).contains(&self.patch_radius) {
            return bad(format!("patch radius must be 1..=8, got {}", self.patch_radius));
        }
        if self.min_offset == 0 || self.iters == 0 || self.iters > 64 {
            return bad(format!(
                "needs min_offset >= 1 and 1..=64 iterations, got {} and {}",
                self.min_offset, self.iters
            ));
        }
        if !(self.max_err >= 0.0 && self.min_energy >= 0.0) {
            return bad("max_err and min_energy must be >= 0".into());
        }
        if self.max_pixels < 64 {
            return bad(format!("max_pixels must be at least 64, got {}", self.max_pixels));
        }
        Ok(())
    }
}

impl Model for CopyMoveConfig {
    fn name(&self) -> &str {
        COPYMOVE.name()
    }
    fn input(&self) -> InputMode {
        InputMode::Native
    }
    fn build(&self, [h, w]: [usize; 2], _weights: &WeightStore) -> Result<Graph> {
        build_copymove(h, w, self)
    }
    fn config_json(&self) -> String {
        serde_json::json!({
            "patch_radius": self.patch_radius, "min_offset": self.min_offset, "min_area": self.min_area,
            "iters": self.iters, "median_radius": self.median_radius, "fit_radius": self.fit_radius,
            "max_err": self.max_err, "min_energy": self.min_energy, "max_pixels": self.max_pixels,
        })
        .to_string()
    }
    fn finish(&self, hw: [usize; 2], outputs: &mut HashMap<String, Tensor>) -> Result<Findings> {
        let [ah, aw] = self.analysis_size(hw);
        let get = |name: &str| outputs.get(name).ok_or_else(|| Error::graph(format!("copymove: no '{name}' output")));
        let found = pairs::find(get("field")?, get("cand")?, self)?;
        outputs.insert("prob".into(), found.prob);
        let s = (ah * aw) as f64 / (hw[0] * hw[1]) as f64;
        let mut notes = vec![format!(
            "copy-move analysed at {aw}x{ah} (scale {:.4} of the image); {} pair{} found",
            s.sqrt(),
            found.pairs.len(),
            if found.pairs.len() == 1 { "" } else { "s" }
        )];
        if *self != CopyMoveConfig::default() {
            notes.push(format!("copy-move settings (not the defaults): {}", self.config_json()));
        }
        Ok(Findings { pairs: Some(found.pairs), notes })
    }
}

/// The copy-move graph for an `h x w` image: input "image", outputs "prob" (the candidate flag;
/// `finish` replaces it), "field" and "cand", at the analysis size.
pub fn build_copymove(h: usize, w: usize, cfg: &CopyMoveConfig) -> Result<Graph> {
    if h == 0 || w == 0 {
        return Err(Error::invalid(format!("copymove needs a non-empty image, got {h} x {w}")));
    }
    cfg.check()?;
    let [ah, aw] = cfg.analysis_size([h, w]);
    let mut b = GraphBuilder::new();
    let mut x = b.input("image", &[1, 3, h, w]);
    if [ah, aw] != [h, w] {
        x = b.add("analysis_size", Resize { out: [ah, aw], align_corners: false }, &[x])?;
    }
    let luma_w = Tensor::new(&[1, 3, 1, 1], vec![0.299, 0.587, 0.114])?;
    // The direct implicit-GEMM kernel: the texture path lavapipe would choose spends seconds on
    // im2col and a GEMM one column wide.
    let luma_conv = Conv2d { variant: Some(ConvVariant::General), ..Conv2d::new(1, 0) };
    let luma = conv2d(&mut b, "luma", x, luma_w, None, luma_conv)?;
    let features = b.add("features", ZernikeMagnitudes { radius: cfg.patch_radius }, &[luma])?;
    let mut field = b.add("pm_init", PatchMatchInit { min_offset: cfg.min_offset }, &[features])?;
    let samples = (usize::BITS - ah.max(aw).leading_zeros()).clamp(1, 16) as usize;
    for i in 0..cfg.iters {
        let step = PatchMatchStep { min_offset: cfg.min_offset, jump: jump(ah, aw, i), iter: i, samples };
        field = b.add(&format!("pm_step{i}"), step, &[features, field])?;
    }
    let field = b.add("field", OffsetMedian { radius: cfg.median_radius }, &[field])?;
    let fit = OffsetFit { radius: cfg.fit_radius, max_err: cfg.max_err, min_energy: cfg.min_energy };
    let cand = b.add("cand", fit, &[field, features])?;
    let flag = b.add("prob", crate::ops::layout::Slice { axis: 1, start: 0, end: 1 }, &[cand])?;
    b.output("prob", flag);
    b.output("field", field);
    b.output("cand", cand);
    Ok(b.finish())
}
