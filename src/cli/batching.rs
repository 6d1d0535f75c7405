//! `--batch N` for `infer` and `eval`: images are decoded into a group of up to N, the group's
//! detections come from [`Detector::detect_batch`] (images of the same model input size in one
//! engine submission, each map the one an unbatched run gives), then each image is finished
//! (written, logged, printed) on its own, in listing order. An image that cannot be read or
//! decoded is named with its own error and leaves the rest of its group alone.
//!
//! A group also ends once its decoded images hold `--max-pixels` pixels (the bound one image
//! has), so `--batch 64` over large photos holds no more decoded pixels than one image may;
//! [`crate::pipeline::BATCH_IO_BUDGET_BYTES`] bounds each submission's inputs and outputs.
//! `--tile` runs each image alone (its tiles are one image's, in one go each).

use std::path::Path;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::imageio::{load_image, Decoded, LoadOptions, RgbImage};
use crate::pipeline::{Detection, Detector, InputMode, BATCH_IO_BUDGET_BYTES};

/// `--batch N`: at least 1.
pub fn check_batch(n: usize) -> Result<usize> {
    if n == 0 {
        return Err(Error::invalid("--batch 0: give at least 1 (images per engine submission)"));
    }
    Ok(n)
}

/// Say on stderr how `--batch` will group images, and where a bound makes batches smaller.
pub fn announce(det: &mut Detector, batch: usize, tile: bool) -> Result<()> {
    if batch == 1 {
        return Ok(());
    }
    if tile {
        eprintln!("wgpu-forge: note: --batch is ignored with --tile (each image's tiles run on their own)");
        return Ok(());
    }
    let budget = BATCH_IO_BUDGET_BYTES >> 20;
    match det.mode() {
        InputMode::Resized(hw) => {
            let cap = det.batch_cap(hw, batch)?;
            let why = if cap < batch {
                format!(" (capped from {batch}: {budget} MiB of inputs and outputs)")
            } else {
                String::new()
            };
            eprintln!("wgpu-forge: up to {cap} images per engine submission{why}");
        }
        InputMode::Native => eprintln!(
            "wgpu-forge: up to {batch} images of the same size per engine submission ({} runs at each image's \
             size; fewer where they would pass {budget} MiB of inputs and outputs)",
            det.name()
        ),
    }
    Ok(())
}

/// The detections of `imgs` in order: with `--tile` each image alone (tiled), else up to
/// `batch` images of the same model input size per submission.
pub fn detect_all(det: &mut Detector, imgs: &[&RgbImage], batch: usize, tile: Option<usize>) -> Vec<Result<Detection>> {
    match tile {
        Some(_) => imgs.iter().map(|img| det.detect_with(img, tile)).collect(),
        None => det.detect_batch(imgs, batch),
    }
}

/// An image read for a group: decoded with the seconds it took, or why it could not be.
pub type Read = Result<(Decoded, f64)>;

/// One queued input of `infer`: its path, file stem, its sha256 (with `--jsonl`) and the image.
pub struct Queued<'a> {
    pub input: &'a Path,
    pub stem: String,
    pub sha: Option<String>,
    pub read: Read,
}

/// Images waiting for their group to be full.
pub struct Group<'a> {
    pub batch: usize,
    max_pixels: u64,
    pixels: u64,
    pub items: Vec<Queued<'a>>,
}

impl<'a> Group<'a> {
    pub fn new(batch: usize, load: &LoadOptions) -> Group<'a> {
        Group { batch, max_pixels: load.max_pixels, pixels: 0, items: Vec::new() }
    }

    /// Decode `input` into the group; true when the group is full (N images, or its pixels).
    pub fn push(&mut self, input: &'a Path, stem: String, sha: Option<String>, load: &LoadOptions) -> bool {
        let t = Instant::now();
        let read = load_image(input, load).map(|d| (d, t.elapsed().as_secs_f64()));
        if let Ok((d, _)) = &read {
            self.pixels += (d.image.width * d.image.height) as u64;
        }
        self.items.push(Queued { input, stem, sha, read });
        self.items.len() >= self.batch || self.pixels >= self.max_pixels
    }

    /// Take the group's images and their detections (with their decode time), in order.
    pub fn detect(&mut self, det: &mut Detector, tile: Option<usize>) -> Vec<(Queued<'a>, Result<Detection>)> {
        self.pixels = 0;
        let items = std::mem::take(&mut self.items);
        let imgs: Vec<&RgbImage> = items.iter().filter_map(|q| q.read.as_ref().ok().map(|(d, _)| &d.image)).collect();
        let mut found = detect_all(det, &imgs, self.batch, tile).into_iter();
        items
            .into_iter()
            .map(|q| {
                let d = match &q.read {
                    Ok((_, decode_s)) => found.next().expect("one detection per decoded image").map(|mut d| {
                        d.timings.decode_s = *decode_s;
                        d
                    }),
                    Err(e) => Err(e.clone()),
                };
                (q, d)
            })
            .collect()
    }
}
