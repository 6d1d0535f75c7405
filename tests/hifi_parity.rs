//! hifi against our PyTorch reference (tools/hifi_ref.py), on the tiny seeded fixtures of
//! tests/fixtures/hifi (tools/make_hifi_fixtures.py): the checkpoint through `convert`, then every
//! stage of the graph, both fusions from the one weight file, on the device and on the CPU
//! references (<= 1e-4 relative to max(|x|, 1)).

use std::path::PathBuf;

use wgpu_forge::cli::convert::{convert_with, Options};
use wgpu_forge::cpu::CpuPlan;
use wgpu_forge::graph::Plan;
use wgpu_forge::models::hifi::{build_hifi, Fusion, HifiConfig};
use wgpu_forge::models::{self, WeightStore};
use wgpu_forge::ops::testing::device;
use wgpu_forge::tensor::check_close;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hifi");
const TOL: f32 = 1e-4;
const COMMON: [&str; 13] = [
    "coarse_pool",
    "coarse_feat",
    "coarse_ctx",
    "coarse_head",
    "logit_coarse_lo",
    "mid_stem",
    "mid_feat",
    "logit_mid_lo",
    "fine_stem",
    "fine_feat",
    "logits",
    "p_scales",
    "prob_product",
];
const LEARNED: [&str; 4] = ["gate_hidden", "gate_logits", "gate", "prob_learned"];

fn converted(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("forge-hifi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dst = dir.join(format!("{name}.safetensors"));
    let s = convert_with(&PathBuf::from(DIR).join(format!("{name}.pth")), &dst, Options::default()).unwrap();
    assert_eq!(s.model, "hifi", "recognised from the key names");
    assert!(s.unexpected.is_empty(), "{:?}", s.unexpected);
    assert!(s.dropped.iter().all(|k| k.ends_with("num_batches_tracked")), "{:?}", s.dropped);
    dst
}

/// hifi_tiny (gate over logits and fine features, learned by default) and hifi_tiny_logits
/// (logits-only gate, product by default): both fusions, every stage.
#[test]
fn every_stage_of_both_fusions_matches_the_reference() {
    for (name, default) in [("hifi_tiny", Fusion::Learned), ("hifi_tiny_logits", Fusion::Product)] {
        let path = converted(name);
        let w = WeightStore::from_safetensors(&path).unwrap();
        let model = models::family("hifi").unwrap().configure(&w).unwrap();
        assert_eq!(model.input(), models::InputMode::Resized([32, 48]), "input size from the forge entry");
        let cfg = HifiConfig::from_weights(&w).unwrap();
        assert_eq!(cfg.fusion, default, "{name}: the default fusion comes from the metadata");
        let want = WeightStore::from_safetensors(format!("{DIR}/{name}_stages.safetensors")).unwrap();
        let inputs = [("image", want.get("image").unwrap())];
        for fusion in [Fusion::Learned, Fusion::Product] {
            let w = WeightStore::from_safetensors(&path).unwrap();
            let graph = build_hifi(&HifiConfig { fusion, ..cfg.clone() }, &w, true).unwrap();
            let gpu = Plan::new(device(), &graph).unwrap().run(&inputs).unwrap();
            let cpu = graph.run_reference(&inputs).unwrap();
            let backend = CpuPlan::new(&graph).unwrap().run(&inputs).unwrap();
            let stages: Vec<&str> =
                COMMON.iter().chain(if fusion == Fusion::Learned { &LEARNED[..] } else { &[] }).copied().collect();
            let mut worst = (0f32, "");
            for stage in stages {
                let w = want.get(stage).unwrap_or_else(|| panic!("fixture has no {stage}"));
                let e = gpu[stage].max_abs_diff(w).max(cpu[stage].max_abs_diff(w));
                if e > worst.0 {
                    worst = (e, stage);
                }
                let tag = format!("{name} {fusion:?} {stage}");
                check_close(&format!("{tag} (device)"), &gpu[stage], w, TOL).unwrap_or_else(|e| panic!("{e}"));
                check_close(&format!("{tag} (CPU references)"), &cpu[stage], w, TOL).unwrap_or_else(|e| panic!("{e}"));
                check_close(&format!("{tag} (CPU backend)"), &backend[stage], w, TOL).unwrap_or_else(|e| panic!("{e}"));
            }
            println!("{name} {fusion:?}: largest |engine - pytorch| {:.2e} ({})", worst.0, worst.1);
            let key = if fusion == Fusion::Learned { "prob_learned" } else { "prob_product" };
            check_close(&format!("{name} {fusion:?} prob"), &gpu["prob"], want.get(key).unwrap(), TOL)
                .unwrap_or_else(|e| panic!("{e}"));
            let p = &gpu["prob"];
            assert!(p.data.iter().any(|&v| (v - p.data[0]).abs() > 1e-3), "{name}: the map is not flat");
        }
    }
}
