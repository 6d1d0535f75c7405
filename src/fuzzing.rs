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
use crate::imageio::{decode_image, LoadOptions};
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

/// Target `torch_zip`: a whole `torch.save` checkpoint held in memory ([`load_torch_zip`]), twice:
/// as given (the zip layer, CRC-32 mismatches included), then, if that changes anything, with the
/// CRC-32 of every entry made right by [`fix_zip_crcs`], so that mutations inside `data.pkl` and
/// the storages get past the CRC check to the pickle VM, the state_dict walk and the tensor views
/// (libFuzzer cannot compute checksums). Returns the first outcome.
pub fn torch_zip(data: &[u8]) -> Result<()> {
    let raw = load_torch_zip(Cursor::new(data)).map(|l| check_store(&l.store));
    let mut fixed = data.to_vec();
    if fix_zip_crcs(&mut fixed) {
        if let Ok(l) = load_torch_zip(Cursor::new(&fixed[..])) {
            check_store(&l.store);
        }
    }
    raw
}

/// Rewrite the CRC-32 of every entry of a zip held in `z` (in its central directory record and its
/// local header) to match the bytes the directory points at, reading the directory as leniently
/// as `weights::torchzip` does; whatever does not parse is left alone. Returns whether anything
/// changed.
pub fn fix_zip_crcs(z: &mut [u8]) -> bool {
    let mut changed = false;
    let _ = fix_crcs_inner(z, &mut changed);
    changed
}

fn fix_crcs_inner(z: &mut [u8], changed: &mut bool) -> Option<()> {
    fn le16(b: &[u8], at: usize) -> Option<u64> {
        b.get(at..at.checked_add(2)?).map(|s| u16::from_le_bytes([s[0], s[1]]) as u64)
    }
    fn le32(b: &[u8], at: usize) -> Option<u64> {
        b.get(at..at.checked_add(4)?).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64)
    }
    fn le64(b: &[u8], at: usize) -> Option<u64> {
        b.get(at..at.checked_add(8)?).map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
    }
    let at = |v: u64| usize::try_from(v).ok();
    let eocd = (0..z.len().saturating_sub(21)).rev().find(|&i| z[i..i + 4] == *b"PK\x05\x06")?;
    let mut count = le16(z, eocd + 10)?;
    let mut cd_off = le32(z, eocd + 16)?;
    if count == 0xffff || cd_off == 0xffff_ffff {
        let loc = eocd.checked_sub(20)?;
        if z.get(loc..loc + 4)? != b"PK\x06\x07" {
            return None;
        }
        let rec = at(le64(z, loc + 8)?)?;
        if z.get(rec..rec.checked_add(4)?)? != b"PK\x06\x06" {
            return None;
        }
        count = le64(z, rec + 32)?;
        cd_off = le64(z, rec + 48)?;
    }
    let mut p = at(cd_off)?;
    for _ in 0..count.min(1 << 16) {
        if z.get(p..p.checked_add(4)?)? != b"PK\x01\x02" {
            return None;
        }
        let (mut csize, mut size, mut header) = (le32(z, p + 20)?, le32(z, p + 24)?, le32(z, p + 42)?);
        let (nlen, xlen, clen) = (at(le16(z, p + 28)?)?, at(le16(z, p + 30)?)?, at(le16(z, p + 32)?)?);
        // ZIP64 extra field: values replace the 0xffffffff placeholders, in this order.
        let mut x = z.get(p + 46 + nlen..p + 46 + nlen + xlen)?;
        while x.len() >= 4 {
            let n = (le16(x, 2)? as usize).min(x.len() - 4);
            if le16(x, 0)? == 1 {
                let mut q = 4;
                for field in [&mut size, &mut csize, &mut header] {
                    if *field == 0xffff_ffff {
                        if let Some(v) = le64(&x[..4 + n], q) {
                            *field = v;
                            q += 8;
                        }
                    }
                }
            }
            x = &x[4 + n..];
        }
        let h = at(header)?;
        if z.get(h..h.checked_add(4)?) == Some(b"PK\x03\x04") {
            let start = h.checked_add(30)?.checked_add(at(le16(z, h + 26)?)?)?.checked_add(at(le16(z, h + 28)?)?)?;
            if let Some(data) = z.get(start..start.checked_add(at(csize)?)?) {
                let crc = crc32fast::hash(data).to_le_bytes();
                if z[p + 16..p + 20] != crc {
                    z[p + 16..p + 20].copy_from_slice(&crc);
                    z[h + 14..h + 18].copy_from_slice(&crc);
                    *changed = true;
                }
            }
        }
        p = p.checked_add(46 + nlen + xlen + clen)?;
    }
    Some(())
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

/// Target `image`: [`decode_image`] (what `decode_rgb8` and `load_image` run; at most
/// [`IMAGE_MAX_PIXELS`] pixels, EXIF orientation applied as `infer` does by default, truncated
/// JPEGs decoded as with `--allow-truncated` so their notes are made too), then the model-input
/// preprocessing the pipeline runs on the image: the OpenCV-style resize with its three paths
/// (equal size, exact halving, general bilinear), the ImageNet normalization, and the resize of a
/// probability map back to the image size.
pub fn image(data: &[u8]) -> Result<()> {
    let opts = LoadOptions {
        max_pixels: IMAGE_MAX_PIXELS,
        apply_exif_orientation: true,
        allow_truncated: true,
        ..LoadOptions::default()
    };
    let img = decode_image(data, &opts)?.image;
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
