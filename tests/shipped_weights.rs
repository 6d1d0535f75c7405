//! Every shipped weights file (`weights/*.safetensors`) through the engine against our PyTorch
//! reference on the same file, on one non-square PNG (`tests/fixtures/shipped/input.png` and
//! `<stem>.safetensors`, made by `tools/make_shipped_fixture.py`; no Python here). Both the map at
//! the model's resolution and the map resized back to the image's size must agree within 1e-3 (for
//! hifi also its product fusion at the model's resolution, `--set fusion=product`).

use std::path::Path;

use wgpu_forge::imageio::load_rgb8;
use wgpu_forge::ops::testing::device;
use wgpu_forge::pipeline::{Detector, InputMode};
use wgpu_forge::weights::TensorStore;
use wgpu_forge::Tensor;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const TOL: f32 = 1e-3;

#[test]
fn shipped_weights_match_the_pytorch_reference() {
    let mut files: Vec<_> = std::fs::read_dir(Path::new(ROOT).join("weights"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no weights/*.safetensors");
    for weights in files {
        check_shipped(&weights);
    }
}

fn check_shipped(weights: &Path) {
    let stem = weights.file_stem().unwrap().to_string_lossy();
    println!("{stem}:");
    let fixture = Path::new(ROOT).join("tests/fixtures/shipped");
    let want = TensorStore::read_safetensors(&fixture.join(format!("{stem}.safetensors"))).unwrap_or_else(|e| {
        panic!("no fixture for {stem} ({e}); run tools/make_shipped_fixture.py --weights weights/{stem}.safetensors")
    });

    let mut det = Detector::from_weights_file(device(), weights, None)
        .unwrap_or_else(|e| panic!("the shipped weights must load: {e}"));
    // A stale fixture would make a mismatch look like an engine bug: say which it is.
    let sha = det.weights.sha256.clone().unwrap();
    assert_eq!(
        Some(&sha),
        want.metadata.get("weights_sha256"),
        "{stem}: the fixture was made for other weights; rerun tools/make_shipped_fixture.py"
    );
    assert!(matches!(det.mode(), InputMode::Resized(_)), "{stem}: the shipped files have a fixed input size");

    let img = load_rgb8(fixture.join("input.png"), u64::MAX).unwrap();
    let d = det.detect(&img).unwrap();
    let check = |name: &str, got: &[f32], hw: [usize; 2]| {
        let w = want.get(name).unwrap_or_else(|| panic!("fixture lacks {name}"));
        assert_eq!(w.shape, vec![hw[0], hw[1]], "{stem}: shape of {name}");
        // max_abs_diff counts a NaN as an infinite error.
        let err = Tensor::new(&w.shape, got.to_vec()).unwrap().max_abs_diff(w);
        let (lo, hi) = w.data.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        println!("{name}: max |engine - pytorch| {err:.2e} (reference p in [{lo:.3}, {hi:.3}])");
        assert!(err <= TOL, "{stem} {name}: max abs error {err} over {TOL}");
        // A constant map would pass trivially: the fixture must show the model reacting.
        assert!(hi - lo > 0.05, "{stem} {name}: reference map is nearly constant ({lo}..{hi})");
    };
    check("model_prob", &d.model_prob, d.model_size);
    check("prob", &d.prob, [d.height, d.width]);
    // hifi: the other fusion of the same file, chosen by the setting.
    if want.get("model_prob_product").is_some() {
        let set = [("fusion".to_string(), "product".to_string())];
        let mut det = Detector::from_weights_file_with(device(), weights, None, &set).unwrap();
        let d = det.detect(&img).unwrap();
        check("model_prob_product", &d.model_prob, d.model_size);
    }
}
