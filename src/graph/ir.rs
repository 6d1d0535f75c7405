//! The graph IR: values with shapes, nodes with an op. f32 throughout for now.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ops::Op;
use crate::tensor::{Shape, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

#[derive(Clone, Debug)]
pub enum Source {
    /// Supplied by the caller at every run.
    Input,
    /// Weights and other constants, uploaded once at plan time.
    Constant(Arc<Tensor>),
    /// Output `1` of node `0`.
    Node(usize, usize),
}

#[derive(Clone, Debug)]
pub struct Value {
    pub name: String,
    pub shape: Shape,
    pub source: Source,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub op: Arc<dyn Op>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub values: Vec<Value>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<(String, ValueId)>,
}

impl Graph {
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.0]
    }

    pub fn input_named(&self, name: &str) -> Option<ValueId> {
        self.inputs.iter().copied().find(|&v| self.values[v.0].name == name)
    }

    /// Bytes of one run's inputs and outputs (f32): what each image of a batch adds to the
    /// batch's buffers, on the host and on the device.
    pub fn io_bytes(&self) -> u64 {
        let numel = |v: ValueId| self.values[v.0].shape.iter().product::<usize>() as u64;
        4 * (self.inputs.iter().map(|&v| numel(v)).sum::<u64>()
            + self.outputs.iter().map(|(_, v)| numel(*v)).sum::<u64>())
    }

    /// Evaluate the whole graph with the ops' CPU references (the ground truth for graph tests).
    pub fn run_reference(&self, inputs: &[(&str, &Tensor)]) -> Result<HashMap<String, Tensor>> {
        let mut vals: Vec<Option<Arc<Tensor>>> = vec![None; self.values.len()];
        for (i, v) in self.values.iter().enumerate() {
            if let Source::Constant(t) = &v.source {
                vals[i] = Some(t.clone());
            }
        }
        for &id in &self.inputs {
            let v = &self.values[id.0];
            let (_, t) = inputs
                .iter()
                .find(|(n, _)| *n == v.name)
                .ok_or_else(|| Error::invalid(format!("missing input '{}'", v.name)))?;
            if t.shape != v.shape {
                return Err(Error::invalid(format!(
                    "input '{}' has shape {:?}, graph expects {:?}",
                    v.name, t.shape, v.shape
                )));
            }
            vals[id.0] = Some(Arc::new((*t).clone()));
        }
        for node in &self.nodes {
            let ins: Vec<&Tensor> =
                node.inputs.iter().map(|i| vals[i.0].as_deref().expect("value computed before use")).collect();
            let outs = node.op.reference(&ins);
            for (o, t) in node.outputs.iter().zip(outs) {
                vals[o.0] = Some(Arc::new(t));
            }
        }
        Ok(self.outputs.iter().map(|(n, id)| (n.clone(), (*vals[id.0].clone().unwrap()).clone())).collect())
    }
}
