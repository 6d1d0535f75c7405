//! U^2-Net-MST against our PyTorch reference (tools/u2net_mst_ref.py), on the tiny seeded fixture
//! of tests/fixtures/u2net_mst (tools/make_u2net_mst_fixtures.py): the checkpoint through
//! `convert`, then every stage of the graph on the device and on the CPU references (<= 1e-4
//! relative to max(|x|, 1)). The shipped weights are checked in tests/shipped_weights.rs.

use std::path::PathBuf;

use wgpu_forge::cli::convert::{convert_with, Options};
use wgpu_forge::cpu::CpuPlan;
use wgpu_forge::graph::Plan;
use wgpu_forge::models::{self, MapKind, WeightStore};
use wgpu_forge::ops::testing::device;
use wgpu_forge::tensor::check_close;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/u2net_mst");
const TOL: f32 = 1e-4;
const STAGES: [&str; 17] = [
    "stage1", "stage2", "stage3", "stage4", "stage5", "mst_attn", "mst", "stage4d", "stage3d", "stage2d", "stage1d",
    "side1", "side2", "side3", "side4", "fuse", "prob",
];

fn converted(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("forge-u2net-mst-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dst = dir.join(format!("{name}.safetensors"));
    let s = convert_with(&PathBuf::from(DIR).join(format!("{name}.pth")), &dst, Options::default()).unwrap();
    assert_eq!(s.model, "u2net_mst", "recognised from the key names");
    assert!(s.unexpected.is_empty(), "{:?}", s.unexpected);
    assert!(s.dropped.iter().all(|k| k.ends_with("num_batches_tracked")), "{:?}", s.dropped);
    dst
}

/// Width 0.03125, patches 2/1/2/1, a positional embedding, input 30 x 54 (odd maps from the
/// ceil-mode pools, 1 x 2 at the bottom of stage1's RSU-7).
#[test]
fn every_stage_matches_the_reference() {
    let path = converted("u2net_mst_tiny");
    let w = WeightStore::from_safetensors(&path).unwrap();
    let model = models::family("u2net_mst").unwrap().configure(&w).unwrap();
    assert_eq!(model.input(), models::InputMode::Resized([30, 54]), "input size from the forge entry");
    let graph = model.build([30, 54], &w).unwrap();
    let want = WeightStore::from_safetensors(format!("{DIR}/u2net_mst_tiny_stages.safetensors")).unwrap();
    let inputs = [("image", want.get("image").unwrap())];
    let gpu = Plan::new(device(), &graph).unwrap().run(&inputs).unwrap();
    let cpu = graph.run_reference(&inputs).unwrap();
    let backend = CpuPlan::new(&graph).unwrap().run(&inputs).unwrap();
    let mut worst = [0f32; 2];
    for name in STAGES {
        let w = want.get(name).unwrap_or_else(|| panic!("fixture has no {name}"));
        check_close(&format!("{name} (device)"), &gpu[name], w, TOL).unwrap_or_else(|e| panic!("{e}"));
        check_close(&format!("{name} (CPU references)"), &cpu[name], w, TOL).unwrap_or_else(|e| panic!("{e}"));
        check_close(&format!("{name} (CPU backend)"), &backend[name], w, TOL).unwrap_or_else(|e| panic!("{e}"));
        for (k, got) in [&gpu[name], &cpu[name]].into_iter().enumerate() {
            let scale = w.max_abs().max(1.0);
            let e = got.data.iter().zip(&w.data).map(|(a, b)| (a - b).abs() / scale).fold(0f32, f32::max);
            worst[k] = worst[k].max(e);
        }
    }
    eprintln!(
        "worst relative error over {} stages: device {:.2e}, CPU references {:.2e}",
        STAGES.len(),
        worst[0],
        worst[1]
    );
    let p = &gpu["prob"];
    assert!(p.data.iter().any(|&v| (v - p.data[0]).abs() > 1e-2), "the map is not flat, so the check means something");
    let scales = model.scales();
    let names: Vec<&str> = scales.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["side1", "side2", "side3", "side4", "fused"]);
    assert!(scales.iter().all(|s| s.map.kind == MapKind::Logit && gpu.contains_key(s.map.output)));
}

/// Where the time goes: the shipped compact model at 256 x 256, per-node GPU timestamps, the 15
/// slowest nodes and the total by op kind:
/// `cargo test --release --test u2net_mst_parity -- --ignored --nocapture`.
#[test]
#[ignore]
fn profile_the_shipped_model() {
    let w =
        WeightStore::from_safetensors(concat!(env!("CARGO_MANIFEST_DIR"), "/weights/u2net-mst-compact.safetensors"))
            .unwrap();
    let model = models::family("u2net_mst").unwrap().configure(&w).unwrap();
    let graph = model.build([256, 256], &w).unwrap();
    let plan = Plan::new(device(), &graph).unwrap();
    let x = wgpu_forge::Tensor::full(&[1, 3, 256, 256], 0.3);
    plan.run(&[("image", &x)]).unwrap();
    let t0 = std::time::Instant::now();
    plan.run(&[("image", &x)]).unwrap();
    eprintln!("wall {:.0} ms for one run", t0.elapsed().as_secs_f64() * 1e3);
    let (_, mut t) = plan.run_profiled(&[("image", &x)]).unwrap();
    let total: f64 = t.iter().map(|n| n.micros).sum();
    let mut by_kind = std::collections::BTreeMap::<&str, f64>::new();
    for n in &t {
        *by_kind.entry(n.kind).or_default() += n.micros;
    }
    t.sort_by(|a, b| b.micros.total_cmp(&a.micros));
    eprintln!(
        "total {:.1} ms over {} nodes; by kind (ms): {:?}",
        total / 1e3,
        t.len(),
        by_kind.iter().map(|(k, v)| (k, (v / 1e3).round())).collect::<Vec<_>>()
    );
    for n in t.iter().take(15) {
        eprintln!("{:>9.1} ms  {:<10} {}", n.micros / 1e3, n.kind, n.node);
    }
}
