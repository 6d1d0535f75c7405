use super::*;
use crate::graph::{Graph, Plan};
use crate::ops::testing::{check_op, device};
use crate::tensor::{check_close, Rng};

const TOL: f32 = 1e-4;

fn run_case(case: &str, op: &MatMul, a: &[usize], b: &[usize], bias: bool, seed: u64) {
    let mut ins = vec![Tensor::random(a, seed, -1.0, 1.0), Tensor::random(b, seed + 1, -1.0, 1.0)];
    if bias {
        let n = if op.trans_b { b[b.len() - 2] } else { b[b.len() - 1] };
        ins.push(Tensor::random(&[n], seed + 2, -1.0, 1.0));
    }
    check_op(&format!("{case} a {a:?} b {b:?} bias {bias} seed {seed}"), op, &ins, TOL);
}

/// Shapes every variant must handle (b's shape given for trans_b = false).
const SHAPES: &[(&[usize], &[usize])] = &[
    (&[1, 1], &[1, 1]),
    (&[37, 29], &[29, 53]),
    (&[1, 3], &[3, 1000]),
    (&[130, 257], &[257, 7]),
    (&[3, 33, 20], &[20, 36]),
    (&[2, 3, 9, 12], &[3, 12, 8]),
    (&[2, 1, 5, 8], &[1, 4, 8, 12]),
    (&[70, 64], &[64, 68]),
];

fn tb_shape(b: &[usize]) -> Vec<usize> {
    let mut s = b.to_vec();
    let r = s.len();
    s.swap(r - 1, r - 2);
    s
}

#[test]
fn every_variant_matches_reference() {
    let seed = Rng::fresh_seed();
    let mut vs = vec![MatMulVariant::Scalar, MatMulVariant::Vec, MatMulVariant::VecTransB, MatMulVariant::Tiled];
    if sg_ok(device()) {
        vs.push(MatMulVariant::VecSg);
        vs.push(MatMulVariant::Tex);
    }
    for v in vs {
        for trans_b in [false, true] {
            for (i, (a, b)) in SHAPES.iter().enumerate() {
                let (k, n) = (b[b.len() - 2], b[b.len() - 1]);
                if v.unfit(&MatMulProblem { trans_b, k, n, sg: true, tex_fits: true }).is_some() {
                    continue;
                }
                let bs = if trans_b { tb_shape(b) } else { b.to_vec() };
                let op = MatMul { trans_b, alpha: 1.0, act: Act::None, variant: Some(v) };
                run_case(&format!("{v:?} trans_b {trans_b}"), &op, a, &bs, i % 2 == 0, seed + i as u64);
            }
        }
    }
}

#[test]
fn fused_bias_alpha_and_activations() {
    let seed = Rng::fresh_seed();
    let acts = [Act::None, Act::Relu, Act::Relu6, Act::Gelu, Act::Sigmoid, Act::HSwish, Act::LeakyRelu(0.1)];
    for (i, act) in acts.into_iter().enumerate() {
        for (j, (a, b, trans_b)) in [
            (&[2usize, 19, 24][..], &[24usize, 40][..], false),
            (&[19, 24], &[13, 24], true),
            (&[11, 7], &[7, 9], false),
        ]
        .into_iter()
        .enumerate()
        {
            let op = MatMul { trans_b, alpha: 0.75, act, variant: None };
            run_case(&format!("{act:?}"), &op, a, b, true, seed + (10 * i + j) as u64);
        }
    }
}

#[test]
fn auto_choice_on_this_device_and_big_k() {
    let seed = Rng::fresh_seed();
    let op = MatMul::new();
    run_case("auto", &op, &[65, 1024], &[1024, 72], true, seed);
    run_case("auto", &op.clone().trans_b(true), &[4, 10, 96], &[4, 18, 96], false, seed + 1);
    let _ = device();
}

#[test]
fn shape_errors_are_clear() {
    let op = MatMul::new();
    assert!(op.infer(&[&[3, 4], &[5, 6]]).unwrap_err().contains("inner dimensions differ"));
    assert!(op.infer(&[&[4], &[4, 6]]).unwrap_err().contains("rank >= 2"));
    assert!(op.infer(&[&[2, 3, 4], &[3, 4, 6]]).unwrap_err().contains("batch dimensions"));
    assert!(op.infer(&[&[3, 4], &[4, 6], &[5]]).unwrap_err().contains("bias must have shape [N] = [6]"));
    assert_eq!(op.infer(&[&[2, 1, 3, 4], &[5, 4, 6]]).unwrap(), vec![vec![2, 5, 3, 6]]);
    assert_eq!(op.clone().trans_b(true).infer(&[&[3, 4], &[6, 4]]).unwrap(), vec![vec![3, 6]]);
}

fn linear_graph(x_shape: &[usize], n: usize, act: Act, seed: u64) -> (Graph, Tensor) {
    let k = x_shape[x_shape.len() - 1];
    let mut g = GraphBuilder::new();
    let x = g.input("x", x_shape);
    let w = Tensor::random(&[n, k], seed, -0.5, 0.5);
    let bias = Tensor::random(&[n], seed + 1, -0.5, 0.5);
    let y = linear(&mut g, "fc", x, w, Some(bias), act).unwrap();
    g.output("y", y);
    (g.finish(), Tensor::random(x_shape, seed + 2, -1.0, 1.0))
}

#[test]
fn linear_matches_graph_reference() {
    let seed = Rng::fresh_seed();
    for (i, (xs, n)) in [(&[2usize, 17, 32][..], 48usize), (&[5, 12], 6), (&[3, 7], 5)].into_iter().enumerate() {
        let (g, x) = linear_graph(xs, n, Act::Gelu, seed + 10 * i as u64);
        let want = g.run_reference(&[("x", &x)]).unwrap();
        let plan = Plan::new(device(), &g).unwrap();
        let got = plan.run(&[("x", &x)]).unwrap();
        check_close(&format!("linear x {xs:?} n {n} seed {seed}"), &got["y"], &want["y"], TOL).unwrap();
    }
}

#[test]
fn variant_entry_points_exist() {
    use MatMulVariant::*;
    for v in [Scalar, Vec, VecTransB, Tiled, VecSg, Tex] {
        if let Some((kernel, entry, _)) = v.kernel() {
            crate::ops::testing::assert_entry_points(kernel, &[entry]);
        }
    }
}

/// Operands over the binding limit: one dispatch per batch item and run of rows, for every
/// storage-buffer variant (the texture path needs whole operands).
#[test]
fn windows_of_rows_per_batch_item() {
    use crate::ops::testing::check_op_windowed;
    use crate::ops::window::Windows;
    let seed = Rng::fresh_seed();
    let room = |limit: usize| Windows::new(limit, Windows::of(device()).align()).room();
    // (a, b, limit, dispatches): shared weights fold the batch into M = 74 rows; with b per batch.
    let cases: [(&[usize], &[usize], usize, Box<dyn Fn(usize) -> usize>); 2] = [
        (&[2, 37, 24], &[24, 20], 600, Box::new(|room| 74usize.div_ceil((room / 24).min(room / 20)))),
        (&[3, 10, 16], &[3, 16, 12], 400, Box::new(|_| 3)),
    ];
    let sg = sg_ok(device());
    for (i, (a, b, limit, want)) in cases.iter().enumerate() {
        let want = want(room(*limit));
        assert!(want > 1);
        for v in [
            MatMulVariant::Scalar,
            MatMulVariant::Vec,
            MatMulVariant::VecTransB,
            MatMulVariant::Tiled,
            MatMulVariant::VecSg,
        ] {
            for trans_b in [false, true] {
                let (k, n) = (b[b.len() - 2], b[b.len() - 1]);
                if v.unfit(&MatMulProblem { trans_b, k, n, sg, tex_fits: false }).is_some() {
                    continue;
                }
                let bs = if trans_b { tb_shape(b) } else { b.to_vec() };
                let s = seed + i as u64;
                let ins = vec![
                    Tensor::random(a, s, -1.0, 1.0),
                    Tensor::random(&bs, s + 1, -1.0, 1.0),
                    Tensor::random(&[n], s + 2, -1.0, 1.0),
                ];
                let op = MatMul { trans_b, alpha: 0.5, act: Act::Relu, variant: Some(v) };
                let case = format!("{v:?} trans_b {trans_b} a {a:?} b {bs:?} seed {s}");
                assert_eq!(check_op_windowed(&case, &op, &ins, TOL, *limit), want, "{case}: dispatches");
            }
        }
    }
}

/// mm_tiled reading b stored in f16 (issue 16: f16 storage, f32 arithmetic): awkward shapes, an
/// odd element count (the last word half padding), trans_b, shared weights over a batch, bias and
/// activation; compared with the reference on the f16-rounded b.
#[test]
fn tiled_reads_half_weights() {
    use crate::ops::testing::check_op_half_weight;
    let seed = Rng::fresh_seed();
    let cases: [(&str, MatMul, &[usize], &[usize]); 4] = [
        ("37x29 @ 29x53 odd count", MatMul::new(), &[37, 29], &[29, 53]),
        ("batch 2x70x67 @ 67x69 gelu", MatMul::new().act(Act::Gelu), &[2, 70, 67], &[67, 69]),
        ("trans_b 65x33 @ (130x33)^T", MatMul::new().trans_b(true), &[65, 33], &[130, 33]),
        ("batched b 2x5x8 @ 2x8x12", MatMul::new(), &[2, 5, 8], &[2, 8, 12]),
    ];
    for (i, (label, op, a, b)) in cases.into_iter().enumerate() {
        let s = seed + 10 * i as u64;
        let n = if op.trans_b { b[b.len() - 2] } else { b[b.len() - 1] };
        let ins = vec![Tensor::random(a, s, -1.0, 1.0), Tensor::random(b, s + 1, -1.0, 1.0), Tensor::random(&[n], s + 2, -1.0, 1.0)];
        check_op_half_weight(&format!("{label} seed {s}"), &op, &ins, 1, TOL);
    }
}

/// The planner stores a constant in f16 only when every reader takes it so, and only when every
/// value fits f16: a weight also read as `a`, and one holding 1e5, stay f32 (and stay right).
#[test]
fn half_weights_only_where_every_reader_takes_them() {
    use crate::gpu::device::DeviceClass;
    let seed = Rng::fresh_seed();
    let opts = crate::graph::PlanOptions { half_weights: true, class: Some(DeviceClass::Hardware), ..Default::default() };
    let x = Tensor::random(&[9, 16], seed, -1.0, 1.0);
    let w = Tensor::random(&[16, 16], seed + 1, -1.0, 1.0);
    let mut big = Tensor::random(&[16, 5], seed + 2, -1.0, 1.0);
    big.data[7] = 1e5;
    let mut b = GraphBuilder::new();
    let xi = b.input("x", &x.shape);
    let wi = b.constant("w", w.clone());
    let bi = b.constant("big", big.clone());
    let y = b.add("y", MatMul::new(), &[xi, wi]).unwrap();
    let ww = b.add("ww", MatMul::new(), &[wi, wi]).unwrap(); // w read as a too
    let z = b.add("z", MatMul::new(), &[y, bi]).unwrap();
    b.output("ww", ww);
    b.output("z", z);
    let plan = Plan::with_options(device(), &b.finish(), &opts).unwrap();
    assert_eq!(plan.stats.half_weights, 0);
    let out = plan.run(&[("x", &x)]).unwrap();
    let yr = MatMul::new().reference(&[&x, &w]).remove(0);
    check_close("big weight stays f32", &out["z"], &MatMul::new().reference(&[&yr, &big])[0], TOL).unwrap();
    check_close("shared weight stays f32", &out["ww"], &MatMul::new().reference(&[&w, &w])[0], TOL).unwrap();
}
