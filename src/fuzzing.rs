//! The bodies of the fuzz targets in `fuzz/` (cargo-fuzz / libFuzzer), kept here so that the same
//! code runs in `cargo test`: `tests/fuzz_replay.rs` feeds every committed seed and regression
//! through these functions, `tests/fuzz_smoke.rs` builds and runs the real fuzzers for a few
//! seconds each. How to fuzz, and what was found: docs/RELIABILITY.md, section "Fuzzing".
//!
//! Each function takes arbitrary bytes and returns what the reader returned (`Ok` or a clean
//! `Err`); the contract under fuzzing is that none of them panics, hangs, or allocates without
//! bound. Where the result is `Ok`, the functions also check a few invariants of it (and panic,
//! which the fuzzer reports, when one is broken).

use std::io::Cursor;

use crate::error::Result;
use crate::imageio::{decode_rgb8, LoadOptions};
use crate::preprocess::{resize_bilinear_u8_cv, resize_prob_back, to_model_input_hw};
use crate::weights::{load_torch_zip, pickle, TensorStore};

/// Pixel limit for the `image` target: big enough for every image seed (up to 256 x 256), small
/// enough that the fuzzer does not spend its time decoding huge legitimate images.
pub const IMAGE_MAX_PIXELS: u64 = 1 << 16;

/// The fuzz targets by name (the names of `fuzz/fuzz_targets/*.rs`), for the replay and smoke tests.
pub const TARGETS: [(&str, fn(&[u8]) -> Result<()>); 4] =
    [("pickle", pickle), ("torch_zip", torch_zip), ("safetensors", safetensors), ("image", image)];

/// Target `pickle`: the pickle VM alone ([`pickle::load`]).
pub fn pickle(data: &[u8]) -> Result<()> {
    pickle::load(data).map(drop)
}

/// Target `torch_zip`: a whole `torch.save` checkpoint held in memory ([`load_torch_zip`]).
pub fn torch_zip(data: &[u8]) -> Result<()> {
    let loaded = load_torch_zip(Cursor::new(data))?;
    check_store(&loaded.store);
    Ok(())
}

/// Target `safetensors`: [`TensorStore::from_safetensors_bytes`].
pub fn safetensors(data: &[u8]) -> Result<()> {
    check_store(&TensorStore::from_safetensors_bytes(data)?);
    Ok(())
}

fn check_store(store: &TensorStore) {
    for (name, t) in &store.tensors {
        let numel = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        assert_eq!(numel, Some(t.data.len()), "tensor '{name}' of shape {:?}", t.shape);
    }
}

/// Target `image`: [`decode_rgb8`] (at most [`IMAGE_MAX_PIXELS`] pixels, EXIF orientation applied
/// as `infer` does by default), then the model-input preprocessing the pipeline runs on it: the
/// OpenCV-style resize with its three paths (equal size, exact halving, general bilinear), the
/// ImageNet normalization, and the resize of a probability map back to the image size.
pub fn image(data: &[u8]) -> Result<()> {
    let img = decode_rgb8(
        data,
        &LoadOptions { max_pixels: IMAGE_MAX_PIXELS, apply_exif_orientation: true, ..LoadOptions::default() },
    )?;
    let (w, h) = (img.width, img.height);
    assert!(w > 0 && h > 0 && (w * h) as u64 <= IMAGE_MAX_PIXELS, "decoded {w}x{h}");
    assert_eq!(img.data.len(), w * h * 3, "decoded {w}x{h}");
    // A small model input (general bilinear path, down or up), the image's own size (copy path)
    // and half of it when that is exact (2x2 averaging path).
    let mut sizes = vec![(7, 9), (h, w)];
    if h % 2 == 0 && w % 2 == 0 {
        sizes.push((h / 2, w / 2));
    }
    for (mh, mw) in sizes {
        let t = to_model_input_hw(&img, mh, mw);
        assert_eq!(t.shape, [1, 3, mh, mw]);
        assert_eq!(t.data.len(), 3 * mh * mw);
        assert!(t.data.iter().all(|v| v.is_finite() && v.abs() < 3.0), "normalized input out of range");
    }
    let gray: Vec<u8> = img.data.chunks_exact(3).map(|p| p[1]).collect();
    assert_eq!(resize_bilinear_u8_cv(&gray, w, h, 1, 5, 3).len(), 15);
    // A 4 x 3 probability map back to the image size, as after the model.
    let prob: Vec<f32> = (0..12).map(|i| i as f32 / 11.0).collect();
    let back = resize_prob_back(&prob, 4, 3, w, h);
    assert_eq!(back.len(), w * h);
    assert!(back.iter().all(|p| (-1e-5..=1.0 + 1e-5).contains(p)), "resized probabilities out of [0, 1]");
    Ok(())
}
