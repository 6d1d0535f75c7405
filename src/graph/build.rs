//! The builder models call: shapes are inferred and checked as nodes are added.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::graph::ir::{Graph, Node, Source, Value, ValueId};
use crate::ops::Op;
use crate::tensor::Tensor;

#[derive(Default)]
pub struct GraphBuilder {
    g: Graph,
}

impl GraphBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn input(&mut self, name: &str, shape: &[usize]) -> ValueId {
        let id = self.push_value(name, shape.to_vec(), Source::Input);
        self.g.inputs.push(id);
        id
    }

    pub fn constant(&mut self, name: &str, t: Tensor) -> ValueId {
        let shape = t.shape.clone();
        self.push_value(name, shape, Source::Constant(Arc::new(t)))
    }

    /// Add a node with one output.
    pub fn add(&mut self, name: &str, op: impl Op + 'static, inputs: &[ValueId]) -> Result<ValueId> {
        let outs = self.add_multi(name, op, inputs)?;
        if outs.len() != 1 {
            return Err(Error::graph(format!("node '{name}': expected one output, op gives {}", outs.len())));
        }
        Ok(outs[0])
    }

    /// Add a node; returns its outputs. A shape mismatch names the node and the input shapes.
    pub fn add_multi(&mut self, name: &str, op: impl Op + 'static, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
        let op: Arc<dyn Op> = Arc::new(op);
        let shapes: Vec<&[usize]> = inputs.iter().map(|v| self.g.values[v.0].shape.as_slice()).collect();
        let out_shapes = op.infer(&shapes).map_err(|m| {
            let list: Vec<String> = inputs
                .iter()
                .map(|v| format!("'{}' {:?}", self.g.values[v.0].name, self.g.values[v.0].shape))
                .collect();
            Error::graph(format!("node '{name}' ({}): {m}; inputs: {}", op.kind(), list.join(", ")))
        })?;
        let node_idx = self.g.nodes.len();
        let outputs: Vec<ValueId> = out_shapes
            .into_iter()
            .enumerate()
            .map(|(k, s)| {
                let vname = if k == 0 { name.to_string() } else { format!("{name}:{k}") };
                self.push_value(&vname, s, Source::Node(node_idx, k))
            })
            .collect();
        self.g.nodes.push(Node { name: name.to_string(), op, inputs: inputs.to_vec(), outputs: outputs.clone() });
        Ok(outputs)
    }

    pub fn output(&mut self, name: &str, v: ValueId) {
        self.g.outputs.push((name.to_string(), v));
    }

    pub fn shape(&self, v: ValueId) -> &[usize] {
        &self.g.values[v.0].shape
    }

    pub fn finish(self) -> Graph {
        self.g
    }

    fn push_value(&mut self, name: &str, shape: Vec<usize>, source: Source) -> ValueId {
        self.g.values.push(Value { name: name.to_string(), shape, source });
        ValueId(self.g.values.len() - 1)
    }
}
