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
