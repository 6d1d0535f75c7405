use super::*;
use crate::graph::GraphBuilder;
use crate::ops::act::Act;
use crate::ops::elementwise::{Binary, BinaryKind, Unary};
use crate::ops::layout::Reshape;

/// A graph with one view among its outputs.
fn small() -> Graph {
    let mut b = GraphBuilder::new();
    let x = b.input("x", &[2, 6]);
    let y = b.add("sig", Unary { act: Act::Sigmoid }, &[x]).unwrap();
    let v = b.add("flat", Reshape { shape: vec![12] }, &[y]).unwrap();
    b.output("v", v);
    b.finish()
}

/// Wrong, missing and unknown inputs are errors that say which, never panics.
#[test]
fn bad_inputs_are_errors() {
    let plan = CpuPlan::new(&small()).unwrap();
    let x = Tensor::zeros(&[2, 6]);
    let bad = Tensor::zeros(&[2, 5]);
    let e = plan.run(&[("x", &bad)]).unwrap_err().to_string();
    assert!(e.contains("'x'") && e.contains("[2, 5]"), "{e}");
    let e = plan.run(&[]).unwrap_err().to_string();
    assert!(e.contains("missing input 'x'"), "{e}");
    let e = plan.run(&[("x", &x), ("z", &x)]).unwrap_err().to_string();
    assert!(e.contains("unknown input 'z'"), "{e}");
}

/// The first node whose output is not finite is named, with the element.
#[test]
fn first_nonfinite_names_the_node() {
    let mut b = GraphBuilder::new();
    let x = b.input("x", &[5]);
    let y = b.add("double", Binary { kind: BinaryKind::Add, act: Act::None }, &[x, x]).unwrap();
    let z = b.add("div", Binary { kind: BinaryKind::Div, act: Act::None }, &[y, x]).unwrap();
    b.output("z", z);
    let plan = CpuPlan::new(&b.finish()).unwrap();
    let x = Tensor::new(&[5], vec![1.0, 2.0, 3.0, f32::MAX, 5.0]).unwrap();
    let nf = plan.first_nonfinite(&[("x", &x)]).unwrap().expect("an overflow");
    assert_eq!((nf.node.as_str(), nf.output, nf.index), ("double", 0, 3), "{nf}");
}

/// Every output of the plan run on `x` within 1e-5 (relative beyond 1) of the references'.
fn assert_matches_reference(graph: &Graph, plan: &CpuPlan, x: &Tensor, what: &str) {
    let got = plan.run(&[("x", x)]).unwrap();
    for (name, w) in &graph.run_reference(&[("x", x)]).unwrap() {
        let g = &got[name];
        assert_eq!(g.shape, w.shape, "{what} '{name}'");
        let err = g.data.iter().zip(&w.data).fold(0.0f32, |e, (a, b)| e.max((a - b).abs() / b.abs().max(1.0)));
        assert!(err <= 1e-5, "{what} '{name}': error {err}");
    }
}

/// A transpose after a linear layer (bias, GELU) is folded into the product's store, and the
/// result equals the unfused graph's references: one and two batch planes, both weight layouts.
/// Where the product has another reader, or is itself an output, nothing is folded.
#[test]
fn transposes_fold_into_matmul() {
    use crate::ops::layout::Permute;
    use crate::ops::matmul::linear;
    let seed = crate::tensor::Rng::fresh_seed();
    for (batch, rows, k, n, extra_reader) in
        [(1, 50, 24, 40, false), (2, 37, 24, 30, false), (1, 300, 16, 20, false), (1, 20, 8, 12, true)]
    {
        let mut b = GraphBuilder::new();
        let x = b.input("x", &[batch, rows, k]);
        let w = Tensor::random(&[n, k], seed ^ 1, -1.0, 1.0);
        let bias = Tensor::random(&[n], seed ^ 2, -1.0, 1.0);
        let y = linear(&mut b, "fc", x, w, Some(bias), Act::Gelu).unwrap();
        let t = b.add("t", Permute { perm: vec![0, 2, 1] }, &[y]).unwrap();
        let s = b.add("sig", Unary { act: Act::Sigmoid }, &[t]).unwrap();
        b.output("s", s);
        if extra_reader {
            b.output("y", y);
        }
        let graph = b.finish();
        let plan = CpuPlan::new(&graph).unwrap();
        let kinds: Vec<&str> = plan.kernels().iter().map(|k| k.1).collect();
        let folded = plan.kernels().iter().any(|k| k.2 == "matmul gemm, transposed store");
        assert_eq!(folded, !extra_reader, "{kinds:?}");
        assert_eq!(kinds.contains(&"permute"), extra_reader, "{kinds:?}");
        let xv = Tensor::random(&[batch, rows, k], seed ^ 3, -2.0, 2.0);
        assert_matches_reference(&graph, &plan, &xv, &format!("{batch}x{rows}x{k}x{n} (seed {seed})"));
    }
}

/// A transpose read only by a linear layer (directly or through a reshape) is folded into the
/// product's reading of a; results equal the unfused graph's references. Where the transposed
/// value has another reader, nothing is folded.
#[test]
fn transposes_fold_into_the_reading_matmul() {
    use crate::ops::layout::Permute;
    use crate::ops::matmul::linear;
    let seed = crate::tensor::Rng::fresh_seed();
    // (input shape, permutation, tokens shape for a reshape or none, extra reader)
    let cases: [(&[usize], &[usize], Option<&[usize]>, bool); 4] = [
        (&[1, 24, 5, 7], &[0, 2, 3, 1], Some(&[1, 35, 24]), false),
        (&[2, 16, 300], &[0, 2, 1], None, false),
        (&[3, 12, 9], &[0, 2, 1], Some(&[27, 12]), false),
        (&[1, 8, 20], &[0, 2, 1], None, true),
    ];
    for (shape, perm, tokens, extra_reader) in cases {
        let k = shape[1];
        let mut b = GraphBuilder::new();
        let x = b.input("x", shape);
        let xs = b.add("sig", Unary { act: Act::Sigmoid }, &[x]).unwrap();
        let mut t = b.add("t", Permute { perm: perm.to_vec() }, &[xs]).unwrap();
        if let Some(s) = tokens {
            t = b.add("r", Reshape { shape: s.to_vec() }, &[t]).unwrap();
        }
        let w = Tensor::random(&[10, k], seed ^ 1, -1.0, 1.0);
        let bias = Tensor::random(&[10], seed ^ 2, -1.0, 1.0);
        let y = linear(&mut b, "fc", t, w, Some(bias), Act::Gelu).unwrap();
        b.output("y", y);
        if extra_reader {
            b.output("t", t);
        }
        let graph = b.finish();
        let plan = CpuPlan::new(&graph).unwrap();
        let kernels: Vec<&str> = plan.kernels().iter().map(|k| k.2).collect();
        assert_eq!(kernels.contains(&"matmul gemm, transposed a"), !extra_reader, "{shape:?}: {kernels:?}");
        assert_eq!(plan.kernels().iter().any(|k| k.1 == "permute"), extra_reader, "{shape:?}: {kernels:?}");
        let xv = Tensor::random(shape, seed ^ 3, -2.0, 2.0);
        assert_matches_reference(&graph, &plan, &xv, &format!("{shape:?} (seed {seed})"));
    }
}

/// A conv between two transposes (tokens to planes, the conv, planes to tokens, as MiT's Mix-FFN
/// and spatial reductions) takes both: the linear layers around read and write plain rows and no
/// permute runs; results equal the unfused graph's references. A depthwise conv with GELU and a
/// patchify conv; where the transposed tokens are also an output, or the conv's output has another
/// reader, the transposes fold as before (into the linear layers) or run.
#[test]
fn convs_between_transposes_take_both() {
    use crate::ops::conv2d::{conv2d, Conv2d};
    use crate::ops::layout::Permute;
    use crate::ops::matmul::linear;
    let seed = crate::tensor::Rng::fresh_seed();
    let (n, h, w, c) = (2, 6, 8, 24);
    // (depthwise, extra reader of the planes in, extra reader of the conv's output)
    for (depthwise, extra_in, extra_out) in
        [(true, false, false), (false, false, false), (true, true, false), (true, false, true)]
    {
        let mut b = GraphBuilder::new();
        let x = b.input("x", &[n, h * w, 5]);
        let fc1 = linear(&mut b, "fc1", x, Tensor::random(&[c, 5], seed ^ 1, -1.0, 1.0), None, Act::None).unwrap();
        let t = b.add("in", Permute { perm: vec![0, 2, 1] }, &[fc1]).unwrap();
        let m = b.add("in.map", Reshape { shape: vec![n, c, h, w] }, &[t]).unwrap();
        let (o, k, params) =
            if depthwise { (c, 3, Conv2d::new(1, 1).groups(c).act(Act::Gelu)) } else { (16, 2, Conv2d::new(2, 0)) };
        let wt = Tensor::random(&[o, c / params.groups, k, k], seed ^ 2, -0.5, 0.5);
        let bias = Tensor::random(&[o], seed ^ 3, -1.0, 1.0);
        let y = conv2d(&mut b, "conv", m, wt, Some(bias), params).unwrap();
        let pix = b.shape(y)[2] * b.shape(y)[3];
        let p = b.add("out", Permute { perm: vec![0, 2, 3, 1] }, &[y]).unwrap();
        let tok = b.add("out.flat", Reshape { shape: vec![n, pix, o] }, &[p]).unwrap();
        let fc2 = linear(&mut b, "fc2", tok, Tensor::random(&[7, o], seed ^ 4, -1.0, 1.0), None, Act::None).unwrap();
        b.output("y", fc2);
        if extra_in {
            b.output("planes", m);
        }
        if extra_out {
            b.output("conv", y);
        }
        let graph = b.finish();
        let plan = CpuPlan::new(&graph).unwrap();
        let kernels: Vec<&str> = plan.kernels().iter().map(|k| k.2).collect();
        let on_tokens = if depthwise { "conv2d depthwise on tokens" } else { "conv2d gemm on tokens" };
        let both = !extra_in && !extra_out;
        let case = format!("depthwise {depthwise} extra in {extra_in} out {extra_out}: {kernels:?} (seed {seed})");
        assert_eq!(kernels.contains(&on_tokens), both, "{case}");
        assert_eq!(kernels.iter().filter(|k| k.starts_with("matmul gemm")).count(), 2, "{case}");
        if both {
            assert!(kernels.iter().all(|k| !k.contains("transposed")), "{case}");
            assert!(plan.kernels().iter().all(|k| k.1 != "permute"), "{case}");
        } else {
            // The linear layers still take the transposes they can.
            assert!(kernels.iter().any(|k| k.contains("transposed")), "{case}");
        }
        let xv = Tensor::random(&[n, h * w, 5], seed ^ 5, -2.0, 2.0);
        assert_matches_reference(&graph, &plan, &xv, &case);
    }
}
