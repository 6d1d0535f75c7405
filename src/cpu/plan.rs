//! [`CpuPlan`]: a graph planned for the CPU, run as often as you like.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::cpu::{CpuInput, CpuKernel};
use crate::error::{Error, Result};
use crate::graph::ir::{Graph, Source, ValueId};
use crate::graph::NonFinite;
use crate::graph::{NodeProfile, Profile};
use crate::ops::{Cost, Op};
use crate::tensor::{numel, Shape, Tensor};

/// Memory a CPU plan holds (the CPU side of [`crate::graph::PlanStats`]).
#[derive(Clone, Debug, Default)]
pub struct CpuStats {
    /// Bytes of the shared intermediate arenas (the activation peak).
    pub peak_activation_bytes: u64,
    /// Bytes the intermediates would take with one arena each.
    pub unshared_activation_bytes: u64,
    pub weight_bytes: u64,
    pub intermediate_buffers: usize,
    /// Nodes run by an op's own CPU kernel, and by the plain reference.
    pub fast_nodes: usize,
    pub reference_nodes: usize,
}

/// Where a value's data lives during a run.
#[derive(Clone, Copy, Debug)]
enum Place {
    Input(usize),
    Constant(usize),
    Arena(usize),
}

struct Step {
    name: String,
    kind: &'static str,
    kernel: Box<dyn CpuKernel>,
    inputs: Vec<(Place, usize)>,
    /// (arena, element count) of each output.
    outputs: Vec<(usize, usize)>,
    cost: Cost,
}

/// The op's plain reference as a kernel: inputs copied into tensors, outputs copied back.
struct Reference {
    op: Arc<dyn Op>,
    shapes: Vec<Shape>,
}

impl CpuKernel for Reference {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let ts: Vec<Tensor> =
            inputs.iter().zip(&self.shapes).map(|(d, s)| Tensor { shape: s.clone(), data: d.to_vec() }).collect();
        let refs: Vec<&Tensor> = ts.iter().collect();
        for (o, t) in outputs.iter_mut().zip(self.op.reference(&refs)) {
            o.copy_from_slice(&t.data);
        }
    }
    fn name(&self) -> &'static str {
        "reference"
    }
}

/// "KIND (reference)" as a static string, for profiles (one leak per op family, ever).
fn reference_kind(kind: &'static str) -> &'static str {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    let want = format!("{kind} (reference)");
    if let Some(n) = names.iter().find(|n| **n == want) {
        return n;
    }
    let n: &'static str = Box::leak(want.into_boxed_str());
    names.push(n);
    n
}

/// What the planner does with a node to fold a transpose into the node before or after it.
enum Fold {
    /// The producer: its kernel, which writes the transpose (node `.0`)'s output.
    Producer(usize, Box<dyn CpuKernel>),
    /// The reader: its kernel, which reads its input `.0` as the transpose's input (value `.1`).
    Consumer(usize, ValueId, Box<dyn CpuKernel>),
    /// A node between two transposes: its kernel reads input `.1` as the first transpose's input
    /// (value `.2`) and writes the second transpose (node `.0`)'s output.
    Both(usize, usize, ValueId, Box<dyn CpuKernel>),
    /// The transpose: no step.
    Into,
}

impl Fold {
    fn kernel(self) -> Option<Box<dyn CpuKernel>> {
        match self {
            Fold::Producer(_, k) | Fold::Consumer(_, _, k) | Fold::Both(_, _, _, k) => Some(k),
            Fold::Into => None,
        }
    }
}

/// Each node's kernel inputs: shapes, and the values of constants.
fn cpu_inputs(graph: &Graph, n: usize) -> Vec<CpuInput<'_>> {
    let value = |v: &ValueId| {
        let constant = match &graph.value(*v).source {
            Source::Constant(t) => Some(&**t),
            _ => None,
        };
        CpuInput { shape: &graph.value(*v).shape, constant }
    };
    graph.nodes[n].inputs.iter().map(value).collect()
}

/// Transposes ([`Op::as_transpose`]) folded into a neighbour: into the producer of their input
/// when nothing else reads it and the producer can store its output transposed
/// ([`Op::cpu_kernel_transposed`]), else into the one reader of their output (through views)
/// when it can read that input transposed ([`Op::cpu_kernel_transposed_input`]); the transpose's
/// input then lives until that reader. A node between two transposes that can take both
/// ([`Op::cpu_kernel_transposed_both`]) takes both first, so that the nodes around keep their
/// plain layouts. Per node, what to do instead.
fn fold_transposes(graph: &Graph, root: &[usize], last_use: &mut [usize]) -> Vec<Option<Fold>> {
    let nv = graph.values.len();
    let (mut readers, mut producer, mut reader) = (vec![0usize; nv], vec![None; nv], vec![None; nv]);
    let mut direct_reader = vec![None; nv];
    for (n, node) in graph.nodes.iter().enumerate() {
        for v in &node.inputs {
            readers[v.0] += 1;
            direct_reader[v.0] = Some(n);
            if node.op.view_of().is_none() {
                // Readers of the bytes (views only rename them): (count, last reader).
                let r: &mut Option<(usize, usize)> = &mut reader[root[v.0]];
                *r = Some((r.map_or(0, |r| r.0) + 1, n));
            }
        }
        node.outputs.iter().for_each(|v| producer[v.0] = Some(n));
    }
    for (_, v) in &graph.outputs {
        readers[v.0] += 1;
        reader[root[v.0]] = Some((2, usize::MAX));
    }
    let mut folds: Vec<Option<Fold>> = (0..graph.nodes.len()).map(|_| None).collect();
    // A transpose node, its input and its [B, X, Y].
    let transpose = |q: usize| {
        let node = &graph.nodes[q];
        let (&[v], &[_]) = (&node.inputs[..], &node.outputs[..]) else { return None };
        node.op.as_transpose(&graph.value(v).shape).map(|bxy| (v, bxy))
    };
    for (c, node) in graph.nodes.iter().enumerate() {
        let &[w] = &node.outputs[..] else { continue };
        if node.op.view_of().is_some() || readers[w.0] != 1 {
            continue;
        }
        let Some((q2, (_, bxy_out))) = direct_reader[w.0].and_then(|q| Some((q, transpose(q)?))) else { continue };
        // An input whose bytes are a transpose's output read by this node alone.
        let from_transpose = node.inputs.iter().enumerate().find_map(|(i, u)| {
            let q1 = producer[root[u.0]].filter(|_| reader[root[u.0]] == Some((1, c)))?;
            let (v, bxy_in) = transpose(q1)?;
            Some((i, q1, v, bxy_in))
        });
        let Some((i, q1, v, bxy_in)) = from_transpose else { continue };
        if folds[q1].is_some() || folds[q2].is_some() {
            continue;
        }
        if let Some(k) = node.op.cpu_kernel_transposed_both(&cpu_inputs(graph, c), i, bxy_in, bxy_out) {
            folds[c] = Some(Fold::Both(q2, i, v, k));
            folds[q1] = Some(Fold::Into);
            folds[q2] = Some(Fold::Into);
            last_use[root[v.0]] = last_use[root[v.0]].max(c);
        }
    }
    for q in 0..graph.nodes.len() {
        if folds[q].is_some() {
            continue;
        }
        let Some((v, bxy)) = transpose(q) else { continue };
        let out = graph.nodes[q].outputs[0];
        if let Some(p) = producer[v.0].filter(|&p| readers[v.0] == 1 && graph.nodes[p].outputs.len() == 1) {
            if folds[p].is_none() {
                if let Some(k) = graph.nodes[p].op.cpu_kernel_transposed(&cpu_inputs(graph, p), bxy) {
                    folds[p] = Some(Fold::Producer(q, k));
                    folds[q] = Some(Fold::Into);
                    continue;
                }
            }
        }
        let Some((1, c)) = reader[out.0] else { continue };
        let Some(i) = graph.nodes[c].inputs.iter().position(|u| root[u.0] == out.0) else { continue };
        if folds[c].is_some() {
            continue;
        }
        if let Some(k) = graph.nodes[c].op.cpu_kernel_transposed_input(&cpu_inputs(graph, c), i, bxy) {
            folds[c] = Some(Fold::Consumer(i, v, k));
            folds[q] = Some(Fold::Into);
            last_use[root[v.0]] = last_use[root[v.0]].max(c);
        }
    }
    folds
}

/// A graph planned for the CPU.
pub struct CpuPlan {
    steps: Vec<Step>,
    inputs: Vec<(String, Shape)>,
    constants: Vec<Arc<Tensor>>,
    outputs: Vec<(String, Shape, Place)>,
    arena_len: Vec<usize>,
    /// The arenas, made at the first run and kept (a run at a time).
    arenas: Mutex<Vec<Vec<f32>>>,
    pub stats: CpuStats,
}

impl CpuPlan {
    pub fn new(graph: &Graph) -> Result<CpuPlan> {
        let nv = graph.values.len();
        let (root, mut last_use) = crate::graph::plan::liveness(graph)?;
        let mut stats = CpuStats::default();
        let mut place: Vec<Option<Place>> = vec![None; nv];
        let mut inputs = Vec::new();
        let mut constants = Vec::new();
        for (i, v) in graph.values.iter().enumerate() {
            match &v.source {
                Source::Input => {
                    place[i] = Some(Place::Input(inputs.len()));
                    inputs.push((v.name.clone(), v.shape.clone()));
                }
                Source::Constant(t) => {
                    if t.shape != v.shape {
                        return Err(Error::graph(format!("constant '{}' does not have its value's shape", v.name)));
                    }
                    place[i] = Some(Place::Constant(constants.len()));
                    stats.weight_bytes += (t.numel() * 4) as u64;
                    constants.push(t.clone());
                }
                Source::Node(..) => {}
            }
        }
        let mut folds = fold_transposes(graph, &root, &mut last_use);
        // Intermediates: greedy best-fit over arenas freed by liveness (as the GPU plan does).
        let mut arena_len: Vec<usize> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut steps = Vec::new();
        for (n, node) in graph.nodes.iter().enumerate() {
            let fold = folds[n].take();
            let folded_away = matches!(fold, Some(Fold::Into));
            // A producer with a transpose folded in writes the transpose's output instead of its own.
            let out_values = match &fold {
                Some(Fold::Producer(q, _) | Fold::Both(q, ..)) => &graph.nodes[*q].outputs,
                _ => &node.outputs,
            };
            if node.op.view_of().is_none() && !folded_away {
                for &o in out_values {
                    let need = numel(&graph.value(o).shape).max(1);
                    stats.unshared_activation_bytes += 4 * need as u64;
                    let fit = free
                        .iter()
                        .enumerate()
                        .filter(|(_, &a)| arena_len[a] >= need)
                        .min_by_key(|(_, &a)| arena_len[a])
                        .map(|(k, _)| k)
                        .or_else(|| free.iter().enumerate().max_by_key(|(_, &a)| arena_len[a]).map(|(k, _)| k));
                    let a = match fit {
                        Some(k) => free.swap_remove(k),
                        None => {
                            arena_len.push(0);
                            arena_len.len() - 1
                        }
                    };
                    arena_len[a] = arena_len[a].max(need);
                    place[o.0] = Some(Place::Arena(a));
                }
            }
            for &o in &node.outputs {
                if place[o.0].is_none() && !matches!(fold, Some(Fold::Producer(..) | Fold::Both(..))) {
                    place[o.0] = place[root[o.0]];
                }
            }
            // A reader with a transpose folded in reads the transpose's input instead.
            let read_from = match &fold {
                Some(Fold::Consumer(i, t, _) | Fold::Both(_, i, t, _)) => Some((*i, *t)),
                _ => None,
            };
            if node.op.view_of().is_none() && !folded_away {
                let shapes: Vec<&[usize]> = node.inputs.iter().map(|v| graph.value(*v).shape.as_slice()).collect();
                let ins = cpu_inputs(graph, n);
                let kernel = match fold.map_or_else(|| node.op.cpu_kernel(&ins), |f| f.kernel()) {
                    Some(k) => {
                        stats.fast_nodes += 1;
                        k
                    }
                    None => {
                        stats.reference_nodes += 1;
                        Box::new(Reference { op: node.op.clone(), shapes: shapes.iter().map(|s| s.to_vec()).collect() })
                            as Box<dyn CpuKernel>
                    }
                };
                let inputs = (node.inputs.iter().enumerate())
                    .map(|(i, v)| read_from.filter(|r| r.0 == i).map_or(*v, |r| r.1))
                    .map(|v| (place[v.0].expect("inputs come before their users"), numel(&graph.value(v).shape)))
                    .collect();
                let outputs = out_values
                    .iter()
                    .map(|v| match place[v.0] {
                        Some(Place::Arena(a)) => (a, numel(&graph.value(*v).shape)),
                        _ => unreachable!("node outputs are placed in arenas"),
                    })
                    .collect();
                let out_shapes: Vec<&[usize]> = out_values.iter().map(|v| graph.value(*v).shape.as_slice()).collect();
                let cost = node.op.cost(&shapes, &out_shapes);
                steps.push(Step { name: node.name.clone(), kind: node.op.kind(), kernel, inputs, outputs, cost });
            }
            // Release roots whose last use is this node (after its outputs were placed).
            for v in node.inputs.iter().chain(&node.outputs).chain(read_from.as_ref().map(|r| &r.1)) {
                let r = root[v.0];
                if last_use[r] == n {
                    if let Some(Place::Arena(a)) = place[r] {
                        if !free.contains(&a) {
                            free.push(a);
                        }
                    }
                    last_use[r] = usize::MAX - 1;
                }
            }
        }
        stats.peak_activation_bytes = arena_len.iter().map(|&l| 4 * l as u64).sum();
        stats.intermediate_buffers = arena_len.len();
        let outputs = graph
            .outputs
            .iter()
            .map(|(name, v)| (name.clone(), graph.value(*v).shape.clone(), place[v.0].expect("outputs placed")))
            .collect();
        Ok(CpuPlan { steps, inputs, constants, outputs, arena_len, arenas: Mutex::new(Vec::new()), stats })
    }

    /// Run once; returns the graph's outputs by name.
    pub fn run(&self, inputs: &[(&str, &Tensor)]) -> Result<HashMap<String, Tensor>> {
        self.run_checked(inputs, false).map(|r| r.0)
    }

    /// Run and return the first node whose output holds a NaN or an infinity.
    pub fn first_nonfinite(&self, inputs: &[(&str, &Tensor)]) -> Result<Option<NonFinite>> {
        self.run_checked(inputs, true).map(|r| r.1)
    }

    /// Deterministic inputs of the plan's shapes, for timing ([`crate::graph::Plan::synthetic_inputs`]).
    pub fn synthetic_inputs(&self) -> Vec<(String, Tensor)> {
        self.inputs.iter().map(|(n, s)| (n.clone(), crate::graph::profile::synthetic(s))).collect()
    }

    /// Each node's kernel: (node, op kind, "fast" or "reference").
    pub fn kernels(&self) -> Vec<(&str, &'static str, &'static str)> {
        self.steps.iter().map(|s| (s.name.as_str(), s.kind, s.kernel.name())).collect()
    }

    /// One warm-up run, then `reps` runs timed whole and node by node; medians throughout. The
    /// per-node kind says which kernel ran: "conv2d" for an op's own, "conv2d (reference)" else.
    pub fn profile(&self, inputs: &[(&str, &Tensor)], reps: usize) -> Result<Profile> {
        if reps == 0 {
            return Err(Error::invalid("profile: reps must be at least 1"));
        }
        let feed = self.feed(inputs)?;
        self.run(inputs)?;
        let mut whole = Vec::new();
        let mut walls = vec![Vec::new(); self.steps.len()];
        for _ in 0..reps {
            let t = std::time::Instant::now();
            self.run(inputs)?;
            whole.push(t.elapsed().as_secs_f64() * 1e3);
            let mut arenas = self.lock_arenas();
            for (k, step) in self.steps.iter().enumerate() {
                let t = std::time::Instant::now();
                self.exec(step, &feed, &mut arenas);
                walls[k].push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        let median = crate::graph::profile::median;
        let nodes = self
            .steps
            .iter()
            .zip(walls)
            .map(|(s, w)| NodeProfile {
                node: s.name.clone(),
                kind: if s.kernel.name() == "reference" { reference_kind(s.kind) } else { s.kind },
                cost: s.cost,
                wall_us: median(w),
                gpu_us: None,
                kernel: Some(s.kernel.name()),
            })
            .collect();
        Ok(Profile { nodes, whole_ms: median(whole), reps })
    }

    fn lock_arenas(&self) -> std::sync::MutexGuard<'_, Vec<Vec<f32>>> {
        let mut arenas = self.arenas.lock().unwrap_or_else(|p| p.into_inner());
        if arenas.len() != self.arena_len.len() {
            *arenas = self.arena_len.iter().map(|&l| vec![0.0; l]).collect();
        }
        arenas
    }

    fn feed<'t>(&self, inputs: &[(&str, &'t Tensor)]) -> Result<Vec<&'t Tensor>> {
        for (n, _) in inputs {
            if !self.inputs.iter().any(|(s, _)| s == n) {
                return Err(Error::invalid(format!("unknown input '{n}'")));
            }
        }
        self.inputs
            .iter()
            .map(|(name, shape)| {
                let (_, t) = inputs
                    .iter()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| Error::invalid(format!("missing input '{name}'")))?;
                if &t.shape != shape {
                    return Err(Error::invalid(format!(
                        "input '{name}' has shape {:?}, the plan expects {shape:?}",
                        t.shape
                    )));
                }
                Ok(*t)
            })
            .collect()
    }

    fn exec(&self, step: &Step, feed: &[&Tensor], arenas: &mut [Vec<f32>]) {
        // Outputs never share an arena with the node's inputs (they are placed before any input is
        // released), so they are taken out while the inputs are read in place.
        let mut outs: Vec<Vec<f32>> = step.outputs.iter().map(|&(a, _)| std::mem::take(&mut arenas[a])).collect();
        {
            let ins: Vec<&[f32]> = step
                .inputs
                .iter()
                .map(|&(p, len)| match p {
                    Place::Input(i) => &feed[i].data[..len],
                    Place::Constant(i) => &self.constants[i].data[..len],
                    Place::Arena(a) => &arenas[a][..len],
                })
                .collect();
            let mut views: Vec<&mut [f32]> =
                outs.iter_mut().zip(&step.outputs).map(|(v, &(_, len))| &mut v[..len]).collect();
            step.kernel.run(&ins, &mut views);
        }
        for (v, &(a, _)) in outs.into_iter().zip(&step.outputs) {
            arenas[a] = v;
        }
    }

    fn run_checked(
        &self,
        inputs: &[(&str, &Tensor)],
        find_nonfinite: bool,
    ) -> Result<(HashMap<String, Tensor>, Option<NonFinite>)> {
        let feed = self.feed(inputs)?;
        let mut arenas = self.lock_arenas();
        let mut bad = None;
        for step in &self.steps {
            self.exec(step, &feed, &mut arenas);
            if find_nonfinite && bad.is_none() {
                for (k, &(a, len)) in step.outputs.iter().enumerate() {
                    if let Some((index, &value)) = arenas[a][..len].iter().enumerate().find(|(_, v)| !v.is_finite()) {
                        bad = Some(NonFinite { node: step.name.clone(), kind: step.kind, output: k, index, value });
                        break;
                    }
                }
                if bad.is_some() {
                    return Ok((HashMap::new(), bad));
                }
            }
        }
        let mut out = HashMap::new();
        for (name, shape, p) in &self.outputs {
            let len = numel(shape);
            let data = match *p {
                Place::Input(i) => feed[i].data[..len].to_vec(),
                Place::Constant(i) => self.constants[i].data[..len].to_vec(),
                Place::Arena(a) => arenas[a][..len].to_vec(),
            };
            out.insert(name.clone(), Tensor::new(shape, data)?);
        }
        Ok((out, bad))
    }
}

#[cfg(test)]
mod tests;
