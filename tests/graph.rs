//! Whole-graph behaviour: buffer sharing, errors that name nodes, large tensors, profiling.

use wgpu_forge::cpu::CpuPlan;
use wgpu_forge::graph::{GraphBuilder, Plan, PlanOptions};
use wgpu_forge::ops::act::Act;
use wgpu_forge::ops::elementwise::{Binary, BinaryKind, Unary};
use wgpu_forge::ops::layout::{Concat, Permute, Reshape, Slice};
use wgpu_forge::ops::testing::device;
use wgpu_forge::tensor::{check_close, Rng};
use wgpu_forge::Tensor;

/// A graph with branches, views and values of several sizes, so buffers get shared.
fn diamond() -> wgpu_forge::graph::Graph {
    let mut b = GraphBuilder::new();
    let x = b.input("x", &[2, 6, 9, 11]);
    let w = b.constant("w", Tensor::random(&[6, 1, 1], 7, -1.0, 1.0));
    let mut h = b.add("relu0", Unary { act: Act::Relu }, &[x]).unwrap();
    for i in 0..4 {
        let t = b.add(&format!("mul{i}"), Binary { kind: BinaryKind::Mul, act: Act::Gelu }, &[h, w]).unwrap();
        h = b.add(&format!("add{i}"), Binary { kind: BinaryKind::Add, act: Act::None }, &[t, x]).unwrap();
    }
    let p = b.add("nhwc", Permute { perm: vec![0, 2, 3, 1] }, &[h]).unwrap();
    let r = b.add("flat", Reshape { shape: vec![2, 99, 6] }, &[p]).unwrap();
    let s = b.add("head", Slice { axis: 2, start: 1, end: 4 }, &[r]).unwrap();
    let s2 = b.add("tail", Slice { axis: 2, start: 4, end: 6 }, &[r]).unwrap();
    let c = b.add("cat", Concat { axis: 2 }, &[s2, s]).unwrap();
    let y = b.add("sig", Unary { act: Act::Sigmoid }, &[c]).unwrap();
    let v = b.add("flat_out", Reshape { shape: vec![2, 6, 99] }, &[h]).unwrap();
    b.output("y", y);
    b.output("h", h);
    b.output("v", v);
    b.output("x_again", x);
    b.finish()
}

/// The CPU backend: arenas shared by liveness give the references' results, run after run (views
/// and an input among the outputs), and take less memory than one arena per value.
#[test]
fn cpu_plan_shares_arenas_and_matches_the_references() {
    let g = diamond();
    let plan = CpuPlan::new(&g).unwrap();
    assert!(plan.stats.intermediate_buffers < g.nodes.len() - 3, "{:?}", plan.stats);
    assert!(plan.stats.peak_activation_bytes < plan.stats.unshared_activation_bytes, "{:?}", plan.stats);
    for _ in 0..2 {
        let seed = Rng::fresh_seed();
        let x = Tensor::random(&[2, 6, 9, 11], seed, -3.0, 3.0);
        let got = plan.run(&[("x", &x)]).unwrap();
        let want = g.run_reference(&[("x", &x)]).unwrap();
        assert_eq!(got.len(), 4);
        for name in ["y", "h", "v", "x_again"] {
            check_close(name, &got[name], &want[name], 1e-5).unwrap_or_else(|e| panic!("{e} (seed {seed})"));
        }
        assert_eq!(plan.first_nonfinite(&[("x", &x)]).unwrap(), None);
    }
}

#[test]
fn buffer_reuse_does_not_change_results() {
    let gpu = device();
    let g = diamond();
    let seed = Rng::fresh_seed();
    let x = Tensor::random(&[2, 6, 9, 11], seed, -3.0, 3.0);
    let shared = Plan::new(gpu, &g).unwrap();
    let unshared = Plan::with_options(gpu, &g, &PlanOptions { reuse_buffers: false, ..Default::default() }).unwrap();
    assert!(shared.stats.intermediate_buffers < unshared.stats.intermediate_buffers);
    assert!(shared.stats.peak_activation_bytes < unshared.stats.peak_activation_bytes);
    let a = shared.run(&[("x", &x)]).unwrap();
    let b = unshared.run(&[("x", &x)]).unwrap();
    let want = g.run_reference(&[("x", &x)]).unwrap();
    for name in ["y", "h"] {
        assert_eq!(a[name].data, b[name].data, "output '{name}' differs with buffer reuse (seed {seed})");
        check_close(name, &a[name], &want[name], 1e-5).unwrap_or_else(|e| panic!("{e} (seed {seed})"));
    }
    // Running a plan again gives the same bits.
    assert_eq!(shared.run(&[("x", &x)]).unwrap()["y"].data, a["y"].data);
}

#[test]
fn shape_errors_name_the_node_and_shapes() {
    let mut b = GraphBuilder::new();
    let x = b.input("x", &[2, 3]);
    let y = b.input("y", &[4, 3]);
    let err = b.add("block1.add", Binary::add(), &[x, y]).unwrap_err().to_string();
    assert!(err.contains("block1.add") && err.contains("[2, 3]") && err.contains("[4, 3]"), "{err}");
}

#[test]
fn run_rejects_missing_or_misshapen_inputs() {
    let gpu = device();
    let mut b = GraphBuilder::new();
    let x = b.input("x", &[4]);
    let y = b.add("relu", Unary { act: Act::Relu }, &[x]).unwrap();
    b.output("y", y);
    let plan = Plan::new(gpu, &b.finish()).unwrap();
    assert!(plan.run(&[]).unwrap_err().to_string().contains("missing input 'x'"));
    let bad = Tensor::zeros(&[5]);
    assert!(plan.run(&[("x", &bad)]).unwrap_err().to_string().contains("shape [5]"));
}

#[test]
fn tensors_over_the_binding_limit_still_work() {
    let gpu = device();
    let limit = gpu.max_binding_bytes() as usize / 4;
    let n = limit + limit / 4 + 37; // over one binding, not a multiple of anything
    let seed = Rng::fresh_seed();
    let x = Tensor::random(&[n], seed, -1.0, 1.0);
    let bias = Tensor::random(&[1], seed + 1, -1.0, 1.0);
    let mut b = GraphBuilder::new();
    let xi = b.input("x", &[n]);
    let bi = b.constant("bias", bias.clone());
    let r = b.add("relu", Unary { act: Act::Relu }, &[xi]).unwrap();
    let s = b.add("sum", Binary::add(), &[r, xi]).unwrap();
    let y = b.add("shift", Binary::add(), &[s, bi]).unwrap();
    b.output("y", y);
    let plan = Plan::new(gpu, &b.finish()).unwrap();
    let got = plan.run(&[("x", &x)]).unwrap().remove("y").unwrap();
    for (i, (&g, &v)) in got.data.iter().zip(&x.data).enumerate() {
        let want = v.max(0.0) + v + bias.data[0];
        assert!((g - want).abs() <= 1e-6, "element {i}: {g} vs {want} (seed {seed})");
    }
}

/// A node that overflows is named by `first_nonfinite`, even though later nodes turn its
/// infinities into NaN and then into an ordinary-looking output; a finite graph gives `None`.
#[test]
fn the_first_node_making_nonfinite_values_is_named() {
    let gpu = device();
    let seed = Rng::fresh_seed();
    let mut b = GraphBuilder::new();
    let x = b.input("x", &[3, 7]);
    let big = b.constant("big", Tensor::new(&[1], vec![1e30]).unwrap());
    let h = b.add("scale", Binary::mul(), &[x, big]).unwrap();
    let h = b.add("overflow", Binary::mul(), &[h, big]).unwrap();
    let h = b.add("nan", Binary { kind: BinaryKind::Sub, act: Act::None }, &[h, h]).unwrap();
    let y = b.add("sig", Unary { act: Act::Sigmoid }, &[h]).unwrap();
    b.output("y", y);
    let plan = Plan::new(gpu, &b.finish()).unwrap();
    // Values in [0.5, 1): 1e30 x 1e30 overflows everywhere.
    let xt = Tensor::random(&[3, 7], seed, 0.5, 1.0);
    let nf = plan.first_nonfinite(&[("x", &xt)]).unwrap().unwrap_or_else(|| panic!("nothing found (seed {seed})"));
    assert_eq!((nf.node.as_str(), nf.output, nf.index), ("overflow", 0, 0), "seed {seed}");
    assert!(nf.value.is_infinite(), "{nf} (seed {seed})");
    assert!(nf.to_string().contains("node 'overflow'"), "{nf}");
    // The plan still runs normally afterwards, and a finite input is clean.
    assert!(plan.run(&[("x", &xt)]).unwrap()["y"].data.iter().all(|v| v.is_nan()));
    let small = Tensor::random(&[3, 7], seed, -1e-35, 1e-35);
    assert_eq!(plan.first_nonfinite(&[("x", &small)]).unwrap(), None, "seed {seed}");
}

#[test]
fn profiling_reports_every_node() {
    let gpu = device();
    if !gpu.has(wgpu::Features::TIMESTAMP_QUERY) {
        eprintln!("adapter '{}' has no timestamp queries; profiling test not applicable", gpu.info.name);
        return;
    }
    let g = diamond();
    let plan = Plan::new(gpu, &g).unwrap();
    let x = Tensor::random(&[2, 6, 9, 11], 3, -1.0, 1.0);
    let (out, times) = plan.run_profiled(&[("x", &x)]).unwrap();
    assert_eq!(out["y"].data, plan.run(&[("x", &x)]).unwrap()["y"].data);
    // Every node but the two free reshapes is timed.
    assert_eq!(times.len(), g.nodes.len() - 2);
    assert!(times.iter().all(|t| t.micros >= 0.0 && t.micros.is_finite()));
}

/// Convs of the same shape share their packing textures (scratch is pooled by size across nodes);
/// each must still see only its own data.
#[test]
fn shared_textures_do_not_leak_between_nodes() {
    use wgpu_forge::ops::conv2d::{conv2d, Conv2d};
    let gpu = device();
    let seed = Rng::fresh_seed();
    let mut b = GraphBuilder::new();
    let x = b.input("x", &[1, 5, 13, 11]);
    let mut h = x;
    for i in 0..3u64 {
        let w = Tensor::random(&[5, 5, 3, 3], seed + i, -0.5, 0.5);
        let bias = Tensor::random(&[5], seed + 10 + i, -0.5, 0.5);
        h = conv2d(&mut b, &format!("conv{i}"), h, w, Some(bias), Conv2d { act: Act::Gelu, ..Conv2d::new(1, 1) })
            .unwrap();
    }
    b.output("y", h);
    let g = b.finish();
    let x_t = Tensor::random(&[1, 5, 13, 11], seed + 99, -2.0, 2.0);
    let plan = Plan::new(gpu, &g).unwrap();
    let got = plan.run(&[("x", &x_t)]).unwrap();
    let want = g.run_reference(&[("x", &x_t)]).unwrap();
    check_close("y", &got["y"], &want["y"], 1e-4).unwrap_or_else(|e| panic!("{e} (seed {seed})"));
    // Three identical convs: the textures of one serve all three.
    let one = {
        let mut b = GraphBuilder::new();
        let x = b.input("x", &[1, 5, 13, 11]);
        let w = Tensor::random(&[5, 5, 3, 3], seed, -0.5, 0.5);
        let y = conv2d(&mut b, "conv0", x, w, None, Conv2d::new(1, 1)).unwrap();
        b.output("y", y);
        Plan::new(gpu, &b.finish()).unwrap().stats.scratch_bytes
    };
    assert!(one > 0, "the conv packs its operands into textures on this device");
    assert!(plan.stats.scratch_bytes <= one + 4096, "{} vs one conv's {}", plan.stats.scratch_bytes, one);
}
