//! tools/ela_ref.py (the numpy ELA our trainers use) against the engine, on the fixtures it wrote
//! (tests/fixtures/ela_ref): the engine's CPU reference bit for bit, and the GPU graph within the
//! ELA op's stated tolerance (<= 0.1% of values may differ, by at most 16 levels, on drivers that
//! fuse multiply-adds). So a model trained on tools/ela_ref.py's ELA sees what the engine feeds it.

use wgpu_forge::graph::Plan;
use wgpu_forge::models::build_ela;
use wgpu_forge::ops::ela::jpeg_roundtrip;
use wgpu_forge::ops::testing::device;
use wgpu_forge::Tensor;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ela_ref");

#[test]
fn numpy_ela_equals_the_engine() {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/manifest.json")).unwrap()).unwrap();
    let cases = manifest["cases"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for c in cases {
        let (name, h, w) =
            (c["name"].as_str().unwrap(), c["h"].as_u64().unwrap() as usize, c["w"].as_u64().unwrap() as usize);
        let q = c["quality"].as_u64().unwrap() as u32;
        let hwc = std::fs::read(format!("{DIR}/{name}.rgb")).unwrap();
        let want = std::fs::read(format!("{DIR}/{name}.ela")).unwrap();
        assert_eq!((hwc.len(), want.len()), (h * w * 3, h * w * 3), "{name}");
        let planar: Vec<u8> = (0..3).flat_map(|ch| hwc.iter().skip(ch).step_by(3).copied()).collect();
        let rt = jpeg_roundtrip(&planar, h, w, q);
        let got: Vec<u8> =
            (0..h * w * 3).map(|i| planar[(i % 3) * h * w + i / 3].abs_diff(rt[(i % 3) * h * w + i / 3])).collect();
        let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(diff, 0, "{name}: the engine's CPU reference differs from tools/ela_ref.py on {diff} values");
        // The GPU graph's "ela" output.
        let x = Tensor::new(&[1, 3, h, w], planar.iter().map(|&v| v as f32).collect()).unwrap();
        let plan = Plan::new(device(), &build_ela(h, w, q).unwrap()).unwrap();
        let gpu = plan.run(&[("image", &x)]).unwrap().remove("ela").unwrap();
        let (mut off, mut worst) = (0usize, 0f32);
        for i in 0..h * w * 3 {
            let d = (gpu.data[(i % 3) * h * w + i / 3] - want[i] as f32).abs();
            off += (d != 0.0) as usize;
            worst = worst.max(d);
        }
        assert!(off * 1000 <= h * w * 3 && worst <= 16.0, "{name}: GPU differs on {off} values, by up to {worst}");
    }
}
