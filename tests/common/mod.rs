//! Helpers shared by the end-to-end tests of the binary (tests/infer.rs, tests/eval.rs).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use wgpu_forge::weights::{SaveDType, TensorStore};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mesorch");

/// A fresh, empty folder in the temp dir for one test.
pub fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("forge-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The tiny Mesorch fixture weights with the metadata `convert` writes, "trained" at 64 x 96, so
/// tests run a small graph.
pub fn tiny_weights(dir: &Path) -> PathBuf {
    let mut s = TensorStore::read_safetensors(&Path::new(FIXTURES).join("mesorch_tiny.weights.safetensors")).unwrap();
    s.tensors.retain(|k, _| !k.starts_with("convnext.head."));
    s.metadata.insert("arch".into(), "mesorch".into());
    s.metadata.insert("input_size".into(), "[64,96]".into());
    let p = dir.join("tiny.safetensors");
    s.write_safetensors(&p, SaveDType::F32).unwrap();
    p
}

/// A deterministic RGB test picture.
pub fn write_png(path: &Path, w: u32, h: u32, seed: u32) {
    image::RgbImage::from_fn(w, h, |x, y| {
        let v = (x * 7 + y * 13 + seed * 31) % 256;
        image::Rgb([v as u8, (255 - v) as u8, ((x ^ y) % 256) as u8])
    })
    .save(path)
    .unwrap();
}

/// The binary, on the software adapter without device-select layers.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wgpu-forge"));
    c.env("NODEVICE_SELECT", "1");
    c
}
