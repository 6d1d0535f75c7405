//! Fusion by pattern, applied by the planner to any graph (models know nothing of it).
//!
//! Residual adds: `y = add(x, op(...))`, where `op`'s output feeds only that add, has the add's
//! shape, and is not a graph output, becomes one node `ResidualAdd { op }` with `x` as an extra
//! input, placed where the add was. Its `plan` asks `op` to add the residual in its own store
//! ([`Op::plan_residual`]: the texture GEMM does); an op or kernel that cannot is planned into a
//! pooled scratch buffer followed by the add, the unfused composition. Either way the fused node's
//! CPU reference is the unfused one, which the tests compare the GPU against.

use std::sync::Arc;

use crate::error::Result;
use crate::graph::ir::{Graph, Node, Source, ValueId};
use crate::ops::elementwise::Binary;
use crate::ops::{Cost, Op, PlanCtx, TensorView};
use crate::tensor::{Shape, Tensor};

/// `op(inputs[..n-1]) + inputs[n-1]`: the inner op's node with a residual add folded in.
#[derive(Debug)]
pub struct ResidualAdd {
    pub inner: Arc<dyn Op>,
}

impl Op for ResidualAdd {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        let (r, ins) = inputs.split_last().ok_or("takes the inner op's inputs and a residual")?;
        let outs = self.inner.infer(ins)?;
        match &outs[..] {
            [y] if y.as_slice() == *r => Ok(outs),
            _ => Err(format!("residual {r:?} must have the shape of the single output {outs:?}")),
        }
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let (r, ins) = inputs.split_last().expect("checked by infer");
        let mut y = self.inner.reference(ins).remove(0);
        y.data.iter_mut().zip(&r.data).for_each(|(v, &rv)| *v = (*v as f64 + rv as f64) as f32);
        vec![y]
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let (r, ins) = inputs.split_last().expect("checked by infer");
        if self.inner.plan_residual(ctx, ins, r, outputs)? {
            return Ok(());
        }
        let tmp = ctx.pooled_scratch(outputs[0].numel())?;
        let tmp = TensorView { shape: outputs[0].shape.clone(), ..tmp };
        self.inner.plan(ctx, ins, std::slice::from_ref(&tmp))?;
        Binary::add().plan(ctx, &[r.clone(), tmp], outputs)
    }
    fn half_weight_input(&self, ctx: &PlanCtx, inputs: &[&[usize]]) -> Option<usize> {
        // The inner op's inputs come first, at the same indices.
        self.inner.half_weight_input(ctx, inputs.split_last()?.1)
    }
    fn cost(&self, inputs: &[&[usize]], outputs: &[&[usize]]) -> Cost {
        let (r, ins) = inputs.split_last().expect("checked by infer");
        let c = self.inner.cost(ins, outputs);
        let extra = Cost::streaming(&[r], &[], 0.0);
        Cost { flops: c.flops + crate::tensor::numel(r) as f64, bytes: c.bytes + extra.bytes }
    }
}

/// The graph with every foldable residual add folded into its producer, and how many were.
pub fn residual_adds(graph: &Graph) -> (Graph, usize) {
    let mut consumers = vec![0usize; graph.values.len()];
    for node in &graph.nodes {
        for v in &node.inputs {
            consumers[v.0] += 1;
        }
    }
    for (_, v) in &graph.outputs {
        consumers[v.0] += 1;
    }
    let producer = |v: ValueId| match graph.values[v.0].source {
        Source::Node(n, 0) if graph.nodes[n].outputs.len() == 1 && graph.nodes[n].op.fuses_residual() => Some(n),
        _ => None,
    };
    // fold[add node] = (producer node, the other input); producers are dropped.
    let mut fold: Vec<Option<(usize, ValueId)>> = vec![None; graph.nodes.len()];
    let mut dropped = vec![false; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        if !node.op.is_plain_add() || node.inputs.len() != 2 {
            continue;
        }
        let shape = &graph.values[node.outputs[0].0].shape;
        let same = node.inputs.iter().all(|v| &graph.values[v.0].shape == shape);
        // Prefer the second operand (`x + f(x)` in the models' blocks), then the first.
        for (k, other) in [(1, 0), (0, 1)] {
            let v = node.inputs[k];
            if let Some(p) = producer(v) {
                if same && consumers[v.0] == 1 && !dropped[p] && node.inputs[other] != v {
                    fold[i] = Some((p, node.inputs[other]));
                    dropped[p] = true;
                    break;
                }
            }
        }
    }
    let mut g = Graph {
        values: graph.values.clone(),
        nodes: Vec::new(),
        inputs: graph.inputs.clone(),
        outputs: graph.outputs.clone(),
    };
    let mut fused = 0;
    for (i, node) in graph.nodes.iter().enumerate() {
        if dropped[i] {
            continue;
        }
        let new = match fold[i] {
            Some((p, r)) => {
                fused += 1;
                let inner = &graph.nodes[p];
                let mut inputs = inner.inputs.clone();
                inputs.push(r);
                Node {
                    name: format!("{}+{}", inner.name, node.name),
                    op: Arc::new(ResidualAdd { inner: inner.op.clone() }),
                    inputs,
                    outputs: node.outputs.clone(),
                }
            }
            None => node.clone(),
        };
        g.nodes.push(new);
    }
    // Sources follow the nodes' new positions; the producers' old outputs are no longer made.
    for (n, node) in g.nodes.iter().enumerate() {
        for (k, v) in node.outputs.iter().enumerate() {
            g.values[v.0].source = Source::Node(n, k);
        }
    }
    (g, fused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{GraphBuilder, Plan};
    use crate::ops::act::Act;
    use crate::ops::matmul::{MatMul, MatMulVariant};
    use crate::ops::testing::device;
    use crate::tensor::{check_close, Rng};

    /// A residual block in the models' shape, plus adds that must not fold: a product whose output
    /// is also used elsewhere, a broadcast add, and a graph output.
    fn graph(variant: Option<MatMulVariant>) -> Graph {
        let mm = |act| MatMul { act, variant, ..MatMul::new() };
        let mut b = GraphBuilder::new();
        let x = b.input("x", &[2, 37, 24]);
        let w1 = b.constant("w1", Tensor::random(&[24, 24], 1, -0.3, 0.3));
        let w2 = b.constant("w2", Tensor::random(&[24, 24], 2, -0.3, 0.3));
        let bias = b.constant("bias", Tensor::random(&[24], 3, -0.5, 0.5));
        let row = b.constant("row", Tensor::random(&[24], 4, -0.5, 0.5));
        let h = b.add("fc1", mm(Act::Gelu), &[x, w1, bias]).unwrap();
        let y = b.add("fc1.residual", Binary::add(), &[x, h]).unwrap(); // folds (second operand)
        let f = b.add("fc2", mm(Act::None), &[y, w2]).unwrap();
        let z = b.add("fc2.residual", Binary::add(), &[f, y]).unwrap(); // folds (first operand)
        let s = b.add("shared", mm(Act::None), &[z, w1]).unwrap();
        let u = b.add("shared.residual", Binary::add(), &[z, s]).unwrap(); // s used twice: stays
        let v = b.add("shared.again", Binary::mul(), &[s, u]).unwrap();
        let t = b.add("bcast", Binary::add(), &[v, row]).unwrap(); // broadcast: stays
        let o = b.add("out.mm", mm(Act::Relu), &[t, w2]).unwrap();
        b.output("mm", o);
        let q = b.add("last.residual", Binary::add(), &[t, o]).unwrap(); // o is an output: stays
        b.output("y", q);
        b.finish()
    }

    #[test]
    fn folds_exactly_the_single_use_same_shape_adds() {
        let (g, n) = residual_adds(&graph(None));
        assert_eq!(n, 2);
        let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "fc1+fc1.residual",
                "fc2+fc2.residual",
                "shared",
                "shared.residual",
                "shared.again",
                "bcast",
                "out.mm",
                "last.residual"
            ]
        );
    }

    /// The fused graph on the GPU against the unfused graph's CPU references, with the product's
    /// own store adding the residual (texture GEMM, where the device has it) and with the fallback
    /// (a kernel that cannot: product into scratch, then the add).
    #[test]
    fn fused_residuals_match_the_unfused_composition() {
        let seed = Rng::fresh_seed();
        let x = Tensor::random(&[2, 37, 24], seed, -1.0, 1.0);
        for variant in [None, Some(MatMulVariant::Scalar)] {
            let g = graph(variant);
            let want = g.run_reference(&[("x", &x)]).unwrap();
            let plan = Plan::new(device(), &g).unwrap();
            assert_eq!(plan.stats.fused_nodes, 2);
            // The texture GEMM adds in its store (two dispatches fewer than unfused); a kernel
            // that cannot gets the unfused composition (the same count).
            let unfused = crate::graph::PlanOptions { fuse: false, ..Default::default() };
            let before = Plan::with_options(device(), &g, &unfused).unwrap().stats.dispatches;
            let saved = if variant.is_none() && crate::ops::matmul::sg_ok(device()) { 2 } else { 0 };
            assert_eq!(plan.stats.dispatches + saved, before, "{variant:?}");
            let got = plan.run(&[("x", &x)]).unwrap();
            for name in ["y", "mm"] {
                check_close(&format!("{name} ({variant:?}) seed {seed}"), &got[name], &want[name], 1e-4).unwrap();
            }
        }
    }
}
