//! Batched inference in the library ([`Detector::detect_batch`]): every image's detection is the
//! one `detect` gives it alone, bit for bit, on the CPU backend and on the GPU (lavapipe here),
//! for the shipped default (pmsp), training-free detectors at native size (mixed sizes: grouped)
//! and the tiny Mesorch fixture (the shipped compact models and copymove on the CPU backend); a
//! bad image in a batch fails alone.

mod common;

use common::{tiny_weights, tmpdir};

use wgpu_forge::graph::Engine;
use wgpu_forge::imageio::RgbImage;
use wgpu_forge::models;
use wgpu_forge::pipeline::{Detection, Detector};

fn image(w: usize, h: usize, seed: usize) -> RgbImage {
    let data = (0..w * h * 3).map(|i| ((i * 7 + seed * 131 + (i / (3 * w)) * 13) % 251) as u8).collect();
    RgbImage { width: w, height: h, data }
}

/// Everything a detection says that depends on the engine's outputs.
fn assert_same(single: &Detection, batched: &Detection, what: &str) {
    assert_eq!((single.width, single.height, single.model_size), (batched.width, batched.height, batched.model_size));
    assert!(single.prob == batched.prob, "{what}: the map differs from the unbatched run");
    assert!(single.model_prob == batched.model_prob, "{what}: the model's map differs from the unbatched run");
    assert_eq!(single.scales.len(), batched.scales.len(), "{what}");
    for (a, b) in single.scales.iter().zip(&batched.scales) {
        assert!(a.prob == b.prob && a.weight == b.weight, "{what}: scale {} differs", a.name);
    }
    let mut names: Vec<&String> = single.extras.keys().collect();
    names.sort();
    assert_eq!(names.len(), batched.extras.len(), "{what}");
    for n in names {
        assert!(single.extras[n].data == batched.extras[n].data, "{what}: output '{n}' differs");
    }
    assert_eq!(single.pairs, batched.pairs, "{what}");
    assert_eq!(single.notes, batched.notes, "{what}");
}

/// `detect_batch` over `imgs` (at most `max` per submission) against `detect` on each alone.
fn check(det: &mut Detector, imgs: &[RgbImage], max: usize, what: &str) {
    let singles: Vec<Detection> = imgs.iter().map(|i| det.detect(i).unwrap()).collect();
    let refs: Vec<&RgbImage> = imgs.iter().collect();
    let batched = det.detect_batch(&refs, max);
    assert_eq!(batched.len(), imgs.len());
    for (k, (s, b)) in singles.iter().zip(batched).enumerate() {
        let b = b.unwrap_or_else(|e| panic!("{what}: image {k} failed in the batch: {e}"));
        assert_same(s, &b, &format!("{what}, image {k}"));
    }
}

fn engines() -> [(Engine<'static>, &'static str); 2] {
    [(Engine::Cpu, "cpu"), (Engine::Gpu(wgpu_forge::ops::testing::device()), "gpu")]
}

#[test]
fn shipped_default_batches_bit_identically_on_both_engines() {
    // Three sizes: a fixed-input model batches them all; 5 images at most 4 per submission.
    let imgs = [image(96, 64, 1), image(50, 70, 2), image(96, 64, 3), image(33, 41, 4), image(80, 80, 5)];
    for (engine, name) in engines() {
        let mut det = wgpu_forge::cli::infer::default_detector(engine, &[]).unwrap();
        check(&mut det, &imgs, 4, &format!("pmsp on {name}"));
    }
}

#[test]
fn native_size_detectors_group_images_by_size() {
    let imgs = [image(40, 30, 1), image(24, 36, 2), image(40, 30, 3), image(40, 30, 4), image(24, 36, 5)];
    for (engine, name) in engines() {
        for family in ["ela", "noise"] {
            let mut det = Detector::without_weights(engine, models::family(family).unwrap()).unwrap();
            check(&mut det, &imgs, 8, &format!("{family} on {name}"));
        }
    }
}

#[test]
fn tiny_mesorch_batches_bit_identically() {
    let dir = tmpdir("batch-tiny");
    let weights = tiny_weights(&dir);
    let imgs = [image(75, 41, 1), image(33, 50, 2), image(64, 96, 3)];
    for (engine, name) in engines() {
        let mut det = Detector::from_weights_file(engine, &weights, None).unwrap();
        check(&mut det, &imgs, 3, &format!("tiny mesorch on {name}"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_image_fails_alone_and_the_cap_bounds_the_batch() {
    let empty = RgbImage { width: 0, height: 0, data: Vec::new() };
    let (a, b) = (image(40, 30, 1), image(40, 30, 2));
    for (engine, name) in engines() {
        let mut det = Detector::without_weights(engine, models::family("ela").unwrap()).unwrap();
        let alone = [det.detect(&a).unwrap(), det.detect(&b).unwrap()];
        let out = det.detect_batch(&[&a, &empty, &b], 8);
        assert!(out[1].as_ref().unwrap_err().message.contains("no pixels"), "{name}");
        assert_same(&alone[0], out[0].as_ref().unwrap(), name);
        assert_same(&alone[1], out[2].as_ref().unwrap(), name);
        // A batch holds what the I/O budget allows: 512 MiB over one 40x30 image's inputs and outputs.
        assert_eq!(det.batch_cap([30, 40], 64).unwrap(), 64);
        let big = det.batch_cap([4000, 6000], 64).unwrap();
        assert!((1..64).contains(&big), "{name}: a 24 MP native image caps the batch, got {big}");
    }
}

#[test]
fn shipped_compact_models_and_copymove_batch_bit_identically_on_the_cpu() {
    let imgs = [image(96, 64, 1), image(50, 70, 2), image(96, 64, 3)];
    for w in ["hifi-compact", "mesorch-compact", "u2net-mst-compact"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("weights/{w}.safetensors"));
        let mut det = Detector::from_weights_file(Engine::Cpu, &path, None).unwrap();
        check(&mut det, &imgs, 3, &format!("{w} on cpu"));
    }
    let mut det = Detector::without_weights(Engine::Cpu, models::family("copymove").unwrap()).unwrap();
    check(&mut det, &[image(48, 40, 1), image(48, 40, 2)], 2, "copymove on cpu");
}
