//! The per-image report, `S.json` and `infer --json`. Field names are stable and documented in
//! docs/report.md; `schema` changes when a field changes meaning or goes away.

use serde_json::{json, Value};

use super::mask::Region;
use super::verdict::{r6, Calibration, Verdict};
use crate::models::ClonePair;
use crate::pipeline::Timings;

pub const SCHEMA: &str = "wgpu-forge.report/3";

/// Everything a report says, gathered by the caller.
pub struct ReportInput<'a> {
    pub file: &'a str,
    pub width: usize,
    pub height: usize,
    pub model: &'a str,
    pub weights: Option<&'a str>,
    pub weights_sha256: Option<&'a str>,
    /// "resize" (to the model's input), "tile" (native-resolution tiles) or "native".
    pub mode: &'a str,
    pub model_input: Option<[usize; 2]>,
    /// The mask threshold (`--threshold`).
    pub threshold: f32,
    /// The image score by the calibration's rule, and what it says.
    pub score: f32,
    pub verdict: Verdict,
    pub calibration: &'a Calibration,
    pub open: usize,
    pub close: usize,
    pub min_area: usize,
    pub marked_pixels: usize,
    pub regions: &'a [Region],
    /// (scale name, mean probability, max probability, mean weight if the model weighs its scales).
    pub scales: &'a [(String, f32, f32, Option<f32>)],
    pub timings: Timings,
    pub adapter: &'a str,
    pub backend: &'a str,
    /// (kind, file name) of every file written for this image.
    pub outputs: &'a [(String, String)],
    /// What the reader should know about how the image was read (a truncated file analysed on
    /// request, the first page of several) and how the model analysed it.
    pub notes: &'a [String],
    /// Matched region pairs from models that look for them (copy-move); `None` writes no
    /// `pairs` field, so other models' reports stay as they were.
    pub pairs: Option<&'a [ClonePair]>,
}

fn pair_json(i: usize, p: &ClonePair) -> Value {
    json!({
        "id": i + 1,
        "source": {"bbox": p.source},
        "destination": {"bbox": p.destination},
        "offset": [r4(p.offset[0]), r4(p.offset[1])],
        "rotation_deg": r4(p.rotation_deg),
        "scale": r4(p.scale),
        "area": p.area,
        "strength": r4(p.strength),
    })
}

fn r4(v: f32) -> f64 {
    (v as f64 * 1e4).round() / 1e4
}

/// The `regions` array of a report for a `width x height` image.
pub fn regions_json(regions: &[Region], width: usize, height: usize) -> Vec<Value> {
    let total = (width * height).max(1) as f64;
    regions
        .iter()
        .map(|g| {
            json!({
                "bbox": [g.x0, g.y0, g.x1, g.y1],
                "area": g.area,
                "area_fraction": (g.area as f64 / total * 1e6).round() / 1e6,
                "mean_prob": r4(g.mean_prob),
                "max_prob": r4(g.max_prob),
                "evidence": (super::clean::evidence(g) * 100.0).round() / 100.0,
            })
        })
        .collect()
}

/// One detector's entry of the report's `panel` array (`infer --panel`, docs/report.md).
pub struct PanelEntryInput<'a> {
    pub model: &'a str,
    pub weights: Option<&'a str>,
    pub score: f32,
    /// The verdict's word (`tampered`, `clean`).
    pub verdict: &'a str,
    pub width: usize,
    pub height: usize,
    pub marked_pixels: usize,
    pub regions: &'a [Region],
    /// How many of the regions (the first) the panel numbers.
    pub numbered: usize,
}

pub fn panel_entry(e: &PanelEntryInput) -> Value {
    let total = (e.width * e.height).max(1) as f64;
    json!({
        "model": e.model,
        "weights": e.weights,
        "score": r6(e.score),
        "verdict": e.verdict,
        "tampered_fraction": (e.marked_pixels as f64 / total * 1e6).round() / 1e6,
        "numbered": e.numbered.min(e.regions.len()),
        "regions": regions_json(e.regions, e.width, e.height),
    })
}

pub fn report(r: &ReportInput) -> Value {
    let total = (r.width * r.height).max(1) as f64;
    let regions = regions_json(r.regions, r.width, r.height);
    let scales: Vec<Value> = r
        .scales
        .iter()
        .map(|(name, mean, max, weight)| {
            json!({"name": name, "mean_prob": r4(*mean), "max_prob": r4(*max), "mean_weight": weight.map(r4)})
        })
        .collect();
    let t = r.timings;
    let pairs: Option<Vec<Value>> = r.pairs.map(|v| v.iter().enumerate().map(|(i, p)| pair_json(i, p)).collect());
    let outputs: serde_json::Map<String, Value> =
        r.outputs.iter().map(|(k, f)| (k.to_string(), Value::String(f.clone()))).collect();
    let mut rep = json!({
        "schema": SCHEMA,
        "file": r.file,
        "width": r.width,
        "height": r.height,
        "model": {
            "name": r.model,
            "weights": r.weights,
            "weights_sha256": r.weights_sha256,
            "mode": r.mode,
            "input": r.model_input,
        },
        "notes": r.notes,
        "threshold": r.threshold,
        "score": r6(r.score),
        "verdict": r.verdict.word(),
        "calibration": r.calibration.to_json(),
        "tampered_fraction": (r.marked_pixels as f64 / total * 1e6).round() / 1e6,
        "cleaning": {"open": r.open, "close": r.close, "min_area": r.min_area},
        "regions": regions,
        "scales": scales,
        "timings_s": {
            "decode": t.decode_s,
            "preprocess": t.preprocess_s,
            "gpu": t.gpu_s,
            "postprocess": t.postprocess_s,
            "total": t.decode_s + t.preprocess_s + t.gpu_s + t.postprocess_s,
        },
        "adapter": {"name": r.adapter, "backend": r.backend},
        "outputs": outputs,
        "version": env!("CARGO_PKG_VERSION"),
    });
    if let (Some(pairs), Some(obj)) = (pairs, rep.as_object_mut()) {
        obj.insert("pairs".into(), Value::Array(pairs));
    }
    rep
}
