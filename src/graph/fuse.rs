//! Fusion by pattern, applied by the planner to any graph (models know nothing of it).
//!
//! Convolutions on tokens: `tokens [N, HW, C] -> permute -> reshape [N, C, H, W] -> op -> permute
//! -> [N, Ho, Wo, O]`, where each value in the chain feeds only the next node and none is a graph
//! output, and the op may take channels-last data ([`Op::takes_channels_last`]: MiT's depthwise
//! conv), becomes one node `ChannelsLast { op }` reading the tokens and writing the permuted
//! output. Its `plan` asks the op to read and write that layout itself
//! ([`Op::plan_channels_last`]); otherwise it plans the unfused permutes and op through pooled
//! scratch buffers. The two permutes cost a load and a store per element each on lavapipe.
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
use crate::ops::layout::Permute;
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
    let consumers = readers(graph);
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
    rebuild(graph, &dropped, |i, node| {
        let (p, r) = fold[i]?;
        let inner = &graph.nodes[p];
        let mut inputs = inner.inputs.clone();
        inputs.push(r);
        Some(Node {
            name: format!("{}+{}", inner.name, node.name),
            op: Arc::new(ResidualAdd { inner: inner.op.clone() }),
            inputs,
            outputs: node.outputs.clone(),
        })
    })
}

/// How many nodes read each value, a graph output counting as one more reader: 1 means "read by
/// one node and nothing else".
fn readers(graph: &Graph) -> Vec<usize> {
    let mut readers = vec![0usize; graph.values.len()];
    for node in &graph.nodes {
        node.inputs.iter().for_each(|v| readers[v.0] += 1);
    }
    for (_, v) in &graph.outputs {
        readers[v.0] += 1;
    }
    readers
}

/// The graph without the `dropped` nodes and with node `i` replaced by `fused(i, node)` where
/// that gives one (counted); the rest kept as they are, in order. Sources follow the nodes' new
/// positions; values only the dropped nodes made are no longer made.
fn rebuild(graph: &Graph, dropped: &[bool], mut fused: impl FnMut(usize, &Node) -> Option<Node>) -> (Graph, usize) {
    let mut g = Graph {
        values: graph.values.clone(),
        nodes: Vec::new(),
        inputs: graph.inputs.clone(),
        outputs: graph.outputs.clone(),
    };
    let mut count = 0;
    for (i, node) in graph.nodes.iter().enumerate() {
        if dropped[i] {
            continue;
        }
        let new = fused(i, node);
        count += new.is_some() as usize;
        g.nodes.push(new.unwrap_or_else(|| node.clone()));
    }
    for (n, node) in g.nodes.iter().enumerate() {
        for (k, v) in node.outputs.iter().enumerate() {
            g.values[v.0].source = Source::Node(n, k);
        }
    }
    (g, count)
}

/// `op` with input 0 given as tokens (`[N, HW, C]`, read as the NCHW `x_shape`) and its single
/// output stored channels-last (`[N, Ho, Wo, O]`): the op between the two permutes it replaces.
#[derive(Debug)]
pub struct ChannelsLast {
    pub inner: Arc<dyn Op>,
    /// The inner op's input 0 shape, NCHW.
    pub x_shape: Shape,
}

impl ChannelsLast {
    /// The inner op's input shapes: the NCHW input, then the rest as given.
    fn inner_shapes<'a>(&'a self, inputs: &[&'a [usize]]) -> Vec<&'a [usize]> {
        std::iter::once(self.x_shape.as_slice()).chain(inputs[1..].iter().copied()).collect()
    }
}

impl Op for ChannelsLast {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        let (&[n, c, h, w], Some(&[tn, thw, tc])) = (self.x_shape.as_slice(), inputs.first().map(|s| &s[..])) else {
            return Err(format!("takes tokens [N, HW, C] for an NCHW input {:?}", self.x_shape));
        };
        if [tn, thw, tc] != [n, h * w, c] {
            return Err(format!("tokens {:?} do not hold the NCHW input {:?}", inputs[0], self.x_shape));
        }
        match &self.inner.infer(&self.inner_shapes(inputs))?[..] {
            [y] if y.len() == 4 => Ok(vec![vec![y[0], y[2], y[3], y[1]]]),
            outs => Err(format!("the inner op must have one 4-D output, got {outs:?}")),
        }
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let to_nchw = Permute { perm: vec![0, 2, 1] }.reference(&[inputs[0]]).remove(0);
        let x = Tensor { shape: self.x_shape.clone(), data: to_nchw.data };
        let rest: Vec<&Tensor> = std::iter::once(&x).chain(inputs[1..].iter().copied()).collect();
        let y = self.inner.reference(&rest).remove(0);
        Permute { perm: vec![0, 2, 3, 1] }.reference(&[&y])
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let y = &outputs[0];
        let y_nchw = vec![y.shape[0], y.shape[3], y.shape[1], y.shape[2]];
        let mut ins: Vec<TensorView> = inputs.to_vec();
        ins[0] = TensorView { shape: self.x_shape.clone(), ..inputs[0].clone() };
        let out = TensorView { shape: y_nchw.clone(), ..y.clone() };
        if self.inner.plan_channels_last(ctx, &ins, std::slice::from_ref(&out))? {
            return Ok(());
        }
        // The unfused composition: tokens -> NCHW, the op, NCHW -> channels-last.
        let x = ctx.pooled_scratch(crate::tensor::numel(&self.x_shape))?;
        let x = TensorView { shape: self.x_shape.clone(), ..x };
        let t = TensorView { shape: inputs[0].shape.clone(), ..inputs[0].clone() };
        let tx = TensorView { shape: vec![t.shape[0], t.shape[2], t.shape[1]], ..x.clone() };
        Permute { perm: vec![0, 2, 1] }.plan(ctx, &[t], &[tx])?;
        ins[0] = x;
        let tmp = ctx.pooled_scratch(crate::tensor::numel(&y_nchw))?;
        let tmp = TensorView { shape: y_nchw, ..tmp };
        self.inner.plan(ctx, &ins, std::slice::from_ref(&tmp))?;
        Permute { perm: vec![0, 2, 3, 1] }.plan(ctx, &[tmp], outputs)
    }
    fn cost(&self, inputs: &[&[usize]], outputs: &[&[usize]]) -> Cost {
        let y = outputs[0];
        self.inner.cost(&self.inner_shapes(inputs), &[&[y[0], y[3], y[1], y[2]]])
    }
}

/// The graph with every convolution on tokens folded with the permutes around it (see the module
/// notes), and how many were.
pub fn channels_last(graph: &Graph) -> (Graph, usize) {
    let readers = readers(graph);
    let node_of = |v: ValueId| match graph.values[v.0].source {
        Source::Node(n, 0) if graph.nodes[n].outputs.len() == 1 && readers[v.0] == 1 => Some(n),
        _ => None,
    };
    let reader_of = |v: ValueId| graph.nodes.iter().position(|n| n.inputs.contains(&v));
    let shape = |v: ValueId| graph.values[v.0].shape.as_slice();
    // fold[op node] = (the first permute, the reshape, the second permute); those three are dropped.
    let mut fold: Vec<Option<[usize; 3]>> = vec![None; graph.nodes.len()];
    let mut dropped = vec![false; graph.nodes.len()];
    for (c, node) in graph.nodes.iter().enumerate() {
        let (Some(&x), &[y]) = (node.inputs.first(), &node.outputs[..]) else { continue };
        let (xs, ys) = (shape(x), shape(y));
        let in_shapes: Vec<&[usize]> = node.inputs.iter().map(|&v| shape(v)).collect();
        if xs.len() != 4 || ys.len() != 4 || readers[y.0] != 1 || !node.op.takes_channels_last(&in_shapes) {
            continue;
        }
        // x = reshape(permute(tokens)) with tokens [N, HW, C] -> [N, C, HW] -> [N, C, H, W].
        let Some(r) = node_of(x).filter(|&r| graph.nodes[r].op.view_of() == Some(0)) else { continue };
        let Some(p1) = node_of(graph.nodes[r].inputs[0]) else { continue };
        let p1_in = graph.nodes[p1].inputs[0];
        let want_in = [xs[0], xs[2] * xs[3], xs[1]];
        if shape(p1_in) != want_in || graph.nodes[p1].op.as_transpose(shape(p1_in)).is_none() {
            continue;
        }
        if shape(graph.nodes[p1].outputs[0]) != [xs[0], xs[1], xs[2] * xs[3]] {
            continue;
        }
        // y -> permute -> [N, Ho, Wo, O].
        let Some(p2) = reader_of(y) else { continue };
        let p2_out = graph.nodes[p2].outputs[0];
        if graph.nodes[p2].op.as_transpose(ys).is_none() || shape(p2_out) != [ys[0], ys[2], ys[3], ys[1]] {
            continue;
        }
        if [p1, r, p2].iter().any(|&k| dropped[k] || fold[k].is_some()) {
            continue;
        }
        fold[c] = Some([p1, r, p2]);
        [p1, r, p2].iter().for_each(|&k| dropped[k] = true);
    }
    rebuild(graph, &dropped, |i, node| {
        let [p1, _, p2] = fold[i]?;
        let mut inputs = node.inputs.clone();
        inputs[0] = graph.nodes[p1].inputs[0];
        let x_shape = shape(node.inputs[0]).to_vec();
        Some(Node {
            name: node.name.clone(),
            op: Arc::new(ChannelsLast { inner: node.op.clone(), x_shape }),
            inputs,
            outputs: graph.nodes[p2].outputs.clone(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{GraphBuilder, Plan};
    use crate::ops::act::Act;
    use crate::ops::conv2d::Conv2d;
    use crate::ops::layout::Reshape;
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

    /// Tokens through a conv between two permutes, as MiT's Mix-FFN does, twice in a row (the
    /// second conv reading the first's tokens), then a dense conv that must stay unfused. The first
    /// conv is depthwise `k x k` with GELU.
    fn tokens_graph(n: usize, c: usize, [h, w]: [usize; 2], k: usize, second: Conv2d) -> Graph {
        let mut b = GraphBuilder::new();
        let mut t = b.input("tokens", &[n, h * w, c]);
        let first = Conv2d::new(1, k / 2).groups(c).act(Act::Gelu);
        for (i, (conv, k)) in [(first, k), (second, 3)].into_iter().enumerate() {
            let wt = b.constant(&format!("w{i}"), Tensor::random(&[1, k, k, c], 10 + i as u64, -0.5, 0.5));
            let bias = b.constant(&format!("b{i}"), Tensor::random(&[c], 20 + i as u64, -0.5, 0.5));
            let p = b.add(&format!("in{i}"), Permute { perm: vec![0, 2, 1] }, &[t]).unwrap();
            let m = b.add(&format!("in{i}.map"), Reshape { shape: vec![n, c, h, w] }, &[p]).unwrap();
            let y = b.add(&format!("conv{i}"), conv, &[m, wt, bias]).unwrap();
            let q = b.add(&format!("out{i}"), Permute { perm: vec![0, 2, 3, 1] }, &[y]).unwrap();
            t = b.add(&format!("out{i}.flat"), Reshape { shape: vec![n, h * w, c] }, &[q]).unwrap();
        }
        let p = b.add("dense.in", Permute { perm: vec![0, 2, 1] }, &[t]).unwrap();
        let m = b.add("dense.in.map", Reshape { shape: vec![n, c, h, w] }, &[p]).unwrap();
        let wd = b.constant("wd", Tensor::random(&[c, 3, 3, 5], 30, -0.3, 0.3));
        let y = b.add("dense", Conv2d::new(1, 1), &[m, wd]).unwrap();
        let q = b.add("dense.out", Permute { perm: vec![0, 2, 3, 1] }, &[y]).unwrap();
        b.output("y", q);
        b.finish()
    }

    /// Folded convs on tokens on the GPU against the unfused graph's CPU references: the
    /// depthwise texture kernels reading and writing tokens where the device has them (`conv_dw_tex_cl`
    /// for channels a multiple of 4, batch items and 3x3 / 7x7 kernels; `conv_dw_tex` through
    /// strides otherwise), and the unfused composition inside the fused node where neither can
    /// (dilation 2). 2052 channels are more than lavapipe's 2048 texture layers, which
    /// `conv_dw_tex` needs and `conv_dw_tex_cl` does not: the variant choice must ask the latter.
    #[test]
    fn convs_on_tokens_match_the_unfused_composition() {
        let seed = Rng::fresh_seed();
        let cases =
            [(1, 12, [9, 13], 3), (2, 7, [6, 5], 3), (2, 8, [11, 6], 7), (1, 20, [3, 10], 5), (1, 2052, [3, 5], 3)];
        for (n, c, hw, k) in cases {
            let x = Tensor::random(&[n, hw[0] * hw[1], c], seed, -1.0, 1.0);
            let dilated = Conv2d::new(1, 2).dilation(2).groups(c).act(Act::Relu);
            for (second, texture_kernels) in [(Conv2d::new(1, 1).groups(c), 2), (dilated, 1)] {
                let g = tokens_graph(n, c, hw, k, second.clone());
                let (fused, folds) = channels_last(&g);
                assert_eq!(folds, 2, "{n} {c} {hw:?}");
                let names: Vec<&str> = fused.nodes.iter().map(|n| n.name.as_str()).collect();
                assert_eq!(
                    names,
                    ["conv0", "out0.flat", "conv1", "out1.flat", "dense.in", "dense.in.map", "dense", "dense.out"]
                );
                let want = g.run_reference(&[("tokens", &x)]).unwrap();
                let plan = Plan::new(device(), &g).unwrap();
                // Each conv a texture kernel takes saves both its permutes, and `conv_dw_tex_cl`
                // also the input pack of each batch item; the others keep them. With more channels
                // than texture layers the unfused conv is `conv_dw` (no packs), so the fused one
                // saves the permutes and adds its weight pack.
                let unfused = crate::graph::PlanOptions { fuse: false, ..Default::default() };
                let before = Plan::with_options(device(), &g, &unfused).unwrap().stats.dispatches;
                let layers = device().limits.max_texture_array_layers as usize;
                let per_conv = if c > layers { 1 } else { 2 + if c % 4 == 0 { n } else { 0 } };
                let saved = if crate::ops::matmul::sg_ok(device()) { per_conv * texture_kernels } else { 0 };
                assert_eq!(plan.stats.dispatches + saved, before, "{n} {c} {hw:?} {second:?}");
                let got = plan.run(&[("tokens", &x)]).unwrap();
                check_close(&format!("tokens {n} {c} {hw:?} k {k} seed {seed}"), &got["y"], &want["y"], 1e-4).unwrap();
            }
        }
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
