//! `wgpu-forge infer` end to end through the binary: outputs, their agreement with the library
//! pipeline, a bad input in a batch, exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;

use wgpu_forge::imageio::{load_rgb8, DEFAULT_MAX_PIXELS};
use wgpu_forge::pipeline::Detector;
use wgpu_forge::weights::{SaveDType, TensorStore};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mesorch");

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("forge-infer-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The tiny Mesorch fixture weights with the metadata `convert` writes, trained "at" 64 x 96, so
/// the test runs a small graph.
fn tiny_weights(dir: &Path) -> PathBuf {
    let mut s = TensorStore::read_safetensors(&Path::new(FIXTURES).join("mesorch_tiny.weights.safetensors")).unwrap();
    s.tensors.retain(|k, _| !k.starts_with("convnext.head."));
    s.metadata.insert("arch".into(), "mesorch".into());
    s.metadata.insert("input_size".into(), "[64,96]".into());
    let p = dir.join("tiny.safetensors");
    s.write_safetensors(&p, SaveDType::F32).unwrap();
    p
}

fn write_png(path: &Path, w: u32, h: u32, seed: u32) {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let v = (x * 7 + y * 13 + seed * 31) % 256;
        image::Rgb([v as u8, (255 - v) as u8, ((x ^ y) % 256) as u8])
    });
    img.save(path).unwrap();
}

fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00", "{}", path.display());
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    let shape_txt = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<usize> = shape_txt.split(',').filter_map(|t| t.trim().parse().ok()).collect();
    let data = b[10 + hl..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    (shape, data)
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wgpu-forge"));
    c.env("NODEVICE_SELECT", "1");
    c
}

#[test]
fn infer_writes_masks_and_raw_maps_and_survives_a_bad_file() {
    let dir = tmpdir("batch");
    let weights = tiny_weights(&dir);
    let (a, b) = (dir.join("wide.png"), dir.join("tall.png"));
    write_png(&a, 75, 41, 1);
    write_png(&b, 33, 50, 2);
    let bad = dir.join("broken.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let out = dir.join("out");
    let o = bin()
        .args(["infer", "--weights"])
        .arg(&weights)
        .arg("--out")
        .arg(&out)
        .arg("--save-raw")
        .args([&a, &bad, &b])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "one input is bad: {stderr}");
    assert!(stderr.contains("broken.jpg"), "the bad file is named: {stderr}");
    assert!(!out.join("broken.mask.png").exists());

    // The library pipeline on the same image gives the same maps.
    let gpu = wgpu_forge::ops::testing::device();
    let mut det = Detector::from_weights_file(gpu, &weights, None, None).unwrap();
    for (img_path, stem, (w, h)) in [(&a, "wide", (75, 41)), (&b, "tall", (33, 50))] {
        let mask = image::open(out.join(format!("{stem}.mask.png"))).unwrap().to_luma8();
        assert_eq!(mask.dimensions(), (w, h));
        let (pshape, prob) = read_npy(&out.join(format!("{stem}.prob.npy")));
        assert_eq!(pshape, vec![h as usize, w as usize]);
        let (mshape, model) = read_npy(&out.join(format!("{stem}.model.npy")));
        assert_eq!(mshape, vec![64, 96], "the input size recorded in the weights");
        for (m, p) in mask.as_raw().iter().zip(&prob) {
            assert_eq!(*m, if *p > 0.5 { 255 } else { 0 });
        }
        let d = det.detect(&load_rgb8(img_path, DEFAULT_MAX_PIXELS).unwrap()).unwrap();
        assert_eq!(d.model_prob, model, "{stem}: model map");
        assert_eq!(d.prob, prob, "{stem}: map at the image's size");
        assert!(prob.iter().all(|p| (0.0..=1.0).contains(p)));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn infer_usage_and_weight_errors_have_clear_messages() {
    let dir = tmpdir("errors");
    // No inputs: a usage error (exit 2).
    let o = bin().args(["infer"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    // Weights that are not a weight file: exit 1, naming the file.
    let fake = dir.join("fake.safetensors");
    std::fs::write(&fake, b"definitely not safetensors").unwrap();
    let img = dir.join("x.png");
    write_png(&img, 8, 8, 3);
    let o = bin().args(["infer", "--weights"]).arg(&fake).arg(&img).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("fake.safetensors"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
