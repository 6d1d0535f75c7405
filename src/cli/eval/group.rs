//! `eval`'s pairs in groups (`--batch N`): loading a pair, running every condition's images of a
//! group through each detector together ([`crate::cli::batching::detect_all`]), and recording
//! each pair's rows or its failure, in order.

use super::{display_name, fit_name, noise_seed, row_line, score_detection, EvalArgs, ImageRow, ModelRun};
use crate::error::{Error, Result};
use crate::eval::metrics::ImageMetrics;
use crate::eval::pairs::{check_same_size, load_mask, BinaryMask, Pair};
use crate::eval::perturb::Perturbation;
use crate::imageio::{load_rgb8_with, LoadOptions, RgbImage};
use crate::pipeline::Detector;

/// The row of each model for one evaluated pair, or the pair's failure, into the runs' results.
pub(super) fn record(
    runs: &mut [ModelRun],
    failures: &mut Vec<(Pair, String)>,
    pair: &Pair,
    result: Result<PairResult>,
) {
    let several = runs.len() > 1;
    match result {
        Ok((width, height, per_model)) => {
            for (run, metrics) in runs.iter_mut().zip(per_model) {
                let name = if several {
                    let file = pair.image.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    fit_name(&format!("{file} / {}", run.det.name()))
                } else {
                    display_name(&pair.image)
                };
                println!("{}", row_line(&name, &metrics[0]));
                for (all, m) in run.per_condition.iter_mut().zip(&metrics) {
                    all.push(m.clone());
                }
                run.rows.push(ImageRow { pair: pair.clone(), width, height, metrics: metrics[0].clone() });
            }
        }
        Err(e) => {
            let mask = pair.mask.as_ref().map_or("none".to_string(), |m| m.display().to_string());
            eprintln!("wgpu-forge: {} (mask {mask}): {e}", pair.image.display());
            failures.push((pair.clone(), e.message));
        }
    }
}

/// One pair's image and its mask (empty for an authentic image without one).
pub(super) fn load_pair(pair: &Pair, load: &LoadOptions) -> Result<(RgbImage, BinaryMask)> {
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
    Ok((img, mask))
}

/// An evaluated pair: the image's size and, per detector, the metrics per condition.
pub(super) type PairResult = (usize, usize, Vec<Vec<ImageMetrics>>);

/// Run every condition with every detector over a group of loaded pairs, the group's images
/// through each detector together (`--batch`); one result per pair, in order. A pair fails
/// alone, at its first failure.
pub(super) fn evaluate_group(
    dets: &mut [&mut Detector],
    group: &[(&Pair, Result<(RgbImage, BinaryMask)>)],
    conditions: &[Option<Perturbation>],
    args: &EvalArgs,
    batch: usize,
) -> Vec<Result<PairResult>> {
    let tile = args.tile.then_some(args.tile_overlap);
    let mut out: Vec<Result<PairResult>> = group
        .iter()
        .map(|(_, l)| match l {
            Ok((img, _)) => {
                Ok((img.width, img.height, dets.iter().map(|_| Vec::with_capacity(conditions.len())).collect()))
            }
            Err(e) => Err(e.clone()),
        })
        .collect();
    for condition in conditions {
        let with_context = |e: Error| match condition {
            Some(p) => e.context(p),
            None => e,
        };
        // This condition's image of every pair still standing.
        let mut images: Vec<(usize, std::borrow::Cow<RgbImage>)> = Vec::new();
        for (i, (pair, loaded)) in group.iter().enumerate() {
            let (Ok((img, _)), true) = (loaded, out[i].is_ok()) else { continue };
            match condition {
                None => images.push((i, std::borrow::Cow::Borrowed(img))),
                Some(p) => match p.apply(img, noise_seed(&pair.image)) {
                    Ok(x) => images.push((i, std::borrow::Cow::Owned(x))),
                    Err(e) => out[i] = Err(with_context(e)),
                },
            }
        }
        let refs: Vec<&RgbImage> = images.iter().map(|(_, x)| x.as_ref()).collect();
        for (k, det) in dets.iter_mut().enumerate() {
            let found = crate::cli::batching::detect_all(det, &refs, batch, tile);
            for ((i, _), d) in images.iter().zip(found) {
                let (Ok((_, mask)), Ok((_, _, per_model))) = (&group[*i].1, &mut out[*i]) else { continue };
                match d {
                    Ok(d) => {
                        let mut m = score_detection(&d, mask, args.resolution == "model", args.threshold);
                        // The image-level score is the model's calibrated one, as `infer` reports it.
                        m.score = det.calibration().score.score(&d.prob, d.width, d.height) as f64;
                        per_model[k].push(m);
                    }
                    Err(e) => out[*i] = Err(with_context(e)),
                }
            }
        }
    }
    out
}
