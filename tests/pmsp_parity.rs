//! PMSP-Net against our PyTorch reference (tools/pmsp_ref.py), on the tiny seeded fixtures of
//! tests/fixtures/pmsp (tools/make_pmsp_fixtures.py): the checkpoint through `convert`, every stage
//! of the graph on the device and on the CPU references (<= 1e-4 relative to max(|x|, 1)), and a
//! picture through the whole input path (ELA at its own size, OpenCV's resizes) with the detector.

use std::path::PathBuf;

use wgpu_forge::cli::convert::{convert_with, Options};
use wgpu_forge::cpu::CpuPlan;
use wgpu_forge::graph::Plan;
use wgpu_forge::imageio::{default_max_pixels, load_rgb8};
use wgpu_forge::models::{self, WeightStore};
use wgpu_forge::ops::testing::device;
use wgpu_forge::pipeline::Detector;
use wgpu_forge::tensor::check_close;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pmsp");
const TOL: f32 = 1e-4;

fn converted(name: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("forge-pmsp-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dst = dir.join(format!("{name}.safetensors"));
    let s = convert_with(&PathBuf::from(DIR).join(format!("{name}.pth")), &dst, Options::default()).unwrap();
    assert_eq!(s.model, "pmsp", "recognised from the key names");
    assert!(s.unexpected.is_empty(), "{:?}", s.unexpected);
    assert!(s.dropped.iter().all(|k| k.ends_with("num_batches_tracked")), "{:?}", s.dropped);
    dst
}

/// Both backbones: MobileNetV1 streams (width 0.125) and EfficientNet streams (a short block
/// table read from the metadata, every kind of MBConv block).
#[test]
fn every_stage_matches_the_reference() {
    for name in ["pmsp_tiny", "pmsp_eff_tiny"] {
        stages_match(name);
    }
}

fn stages_match(name: &str) {
    let path = converted(name, "stages");
    let w = WeightStore::from_safetensors(&path).unwrap();
    let model = models::family("pmsp").unwrap().configure(&w).unwrap();
    assert_eq!(model.input(), models::InputMode::Resized([64, 96]), "input size from the forge entry");
    let graph = model.build([64, 96], &w).unwrap();
    let want = WeightStore::from_safetensors(format!("{DIR}/{name}_stages.safetensors")).unwrap();
    let (image, ela) = (want.get("image").unwrap(), want.get("ela").unwrap());
    let inputs = [("image", image), ("ela", ela)];
    let gpu = Plan::new(device(), &graph).unwrap().run(&inputs).unwrap();
    let cpu = graph.run_reference(&inputs).unwrap();
    let backend = CpuPlan::new(&graph).unwrap().run(&inputs).unwrap();
    let stages = ["rgb_f5", "ela_f5", "fused", "ppm", "head", "logits", "prob", "ela_view", "ela_share"];
    let model_name = name;
    for name in stages {
        let w = want.get(name).unwrap_or_else(|| panic!("fixture has no {name}"));
        check_close(&format!("{model_name} {name} (device)"), &gpu[name], w, TOL).unwrap_or_else(|e| panic!("{e}"));
        check_close(&format!("{model_name} {name} (CPU references)"), &cpu[name], w, TOL)
            .unwrap_or_else(|e| panic!("{e}"));
        check_close(&format!("{model_name} {name} (CPU backend)"), &backend[name], w, TOL)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let p = &gpu["prob"];
    assert!(p.data.iter().any(|&v| (v - p.data[0]).abs() > 1e-3), "the map is not flat, so the check means something");
}

#[test]
fn a_picture_through_the_whole_input_path() {
    let path = converted("pmsp_tiny", "photo");
    let mut det = Detector::from_weights_file(device(), &path, None).unwrap();
    let img = load_rgb8(format!("{DIR}/pmsp_tiny_photo.png"), default_max_pixels()).unwrap();
    assert_eq!((img.width, img.height), (150, 110));
    let d = det.detect(&img).unwrap();
    let want = WeightStore::from_safetensors(format!("{DIR}/pmsp_tiny_photo.safetensors")).unwrap();
    let got = wgpu_forge::Tensor::new(&[1, 1, 64, 96], d.model_prob.clone()).unwrap();
    check_close("photo prob at 64 x 96", &got, want.get("prob").unwrap(), TOL).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((d.width, d.height), (150, 110));
    let names: Vec<&str> = d.scales.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["ela_input", "ela_share"]);
    assert_eq!((d.scales[0].width, d.scales[0].height), (96, 64));
    assert!(d.scales.iter().all(|s| s.prob.iter().all(|v| (0.0..=1.0).contains(v))));
}
