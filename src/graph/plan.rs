//! Planning: liveness-based buffer assignment, pipelines and bind groups, all made once.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::device::{DeviceClass, Gpu};
use crate::graph::ir::{Graph, Source};
use crate::ops::{Cost, Dispatch, PlanCtx, TensorView};
use crate::tensor::{numel, Shape};

#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Share intermediate buffers between values whose lifetimes do not overlap.
    pub reuse_buffers: bool,
    /// Fuse by pattern first ([`crate::graph::fuse`]: residual adds into their producers).
    pub fuse: bool,
    /// Store weights in f16 where every kernel reading them can ([`crate::ops::Op::half_weight_input`]:
    /// the workgroup-memory GEMM and conv of hardware GPUs), halving their memory and traffic;
    /// arithmetic stays f32. Costs accuracy (docs/PARITY.md).
    pub half_weights: bool,
    /// Plan as if the device were of this class: `Hardware` runs the GPU kernels on lavapipe, which
    /// is how CI proves them correct. `None`: the device's own class.
    pub class: Option<DeviceClass>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { reuse_buffers: true, fuse: true, half_weights: false, class: None }
    }
}

/// Memory and work a plan holds, for `info`, benches and profiles.
#[derive(Clone, Debug, Default)]
pub struct PlanStats {
    /// Bytes of intermediate buffers after sharing (the activation peak).
    pub peak_activation_bytes: u64,
    /// Bytes the intermediates would take with one buffer each.
    pub unshared_activation_bytes: u64,
    pub weight_bytes: u64,
    pub scratch_bytes: u64,
    pub uniform_bytes: u64,
    pub intermediate_buffers: usize,
    pub dispatches: usize,
    pub pipelines: usize,
    /// Nodes folded into others by [`crate::graph::fuse`].
    pub fused_nodes: usize,
    /// Constants stored in f16 ([`PlanOptions::half_weights`]).
    pub half_weights: usize,
}

pub(crate) struct InputSlot {
    pub name: String,
    pub shape: Shape,
    pub view: TensorView,
}

pub(crate) struct OutputSlot {
    pub name: String,
    pub view: TensorView,
    pub staging: wgpu::Buffer,
}

/// A graph planned for one device: run it as often as you like.
pub struct Plan<'g> {
    pub(crate) gpu: &'g Gpu,
    pub(crate) dispatches: Vec<Dispatch>,
    pub(crate) inputs: Vec<InputSlot>,
    pub(crate) outputs: Vec<OutputSlot>,
    /// (name, op kind) per node, for profiles.
    pub(crate) nodes: Vec<(String, &'static str)>,
    /// Where each node's outputs live (empty for views), for [`Plan::first_nonfinite`].
    pub(crate) node_outputs: Vec<Vec<TensorView>>,
    /// Each node's FLOPs and bytes from its op's shape rule ([`crate::ops::Op::cost`]; zero for views).
    pub(crate) costs: Vec<Cost>,
    pub stats: PlanStats,
}

/// Bytes of weights uploaded between waits for the queue (see `Plan::with_options`).
const UPLOAD_FLUSH_BYTES: usize = 32 << 20;

fn storage_buffer(gpu: &Gpu, label: &str, bytes: u64) -> Result<Arc<wgpu::Buffer>> {
    let size = bytes.max(16).next_multiple_of(16);
    if size > gpu.limits.max_buffer_size {
        return Err(Error::gpu(format!(
            "'{label}' needs a buffer of {size} bytes, over the device's limit of {} bytes",
            gpu.limits.max_buffer_size
        )));
    }
    gpu.scoped(&format!("allocating '{label}' ({size} bytes)"), || {
        Ok(Arc::new(gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })))
    })
}

/// Each value's storage root (views share their source's storage) and the last node that touches
/// each root (`usize::MAX`: a graph output, lives to the end). Shared by the GPU and CPU planners.
pub(crate) fn liveness(graph: &Graph) -> Result<(Vec<usize>, Vec<usize>)> {
    let nv = graph.values.len();
    let mut root: Vec<usize> = (0..nv).collect();
    for node in &graph.nodes {
        if let Some(i) = node.op.view_of() {
            let src = graph.value(node.inputs[i]);
            let dst = graph.value(node.outputs[0]);
            if numel(&src.shape) != numel(&dst.shape) {
                return Err(Error::graph(format!("node '{}': a view must keep the element count", node.name)));
            }
            root[node.outputs[0].0] = root[node.inputs[i].0];
        }
    }
    let mut last_use = vec![0usize; nv];
    for (n, node) in graph.nodes.iter().enumerate() {
        for v in node.inputs.iter().chain(&node.outputs) {
            last_use[root[v.0]] = last_use[root[v.0]].max(n);
        }
    }
    for (_, v) in &graph.outputs {
        last_use[root[v.0]] = usize::MAX;
    }
    Ok((root, last_use))
}

impl<'g> Plan<'g> {
    /// Plan with the default options and the device's weight storage ([`Gpu::half_weights`]).
    pub fn new(gpu: &'g Gpu, graph: &Graph) -> Result<Plan<'g>> {
        Self::with_options(gpu, graph, &PlanOptions { half_weights: gpu.half_weights, ..Default::default() })
    }

    pub fn with_options(gpu: &'g Gpu, graph: &Graph, opts: &PlanOptions) -> Result<Plan<'g>> {
        let fused;
        let (graph, fused_nodes) = if opts.fuse {
            let (g, n) = crate::graph::fuse::residual_adds(graph);
            let (g, m) = crate::graph::fuse::channels_last(&g);
            fused = g;
            (&fused, n + m)
        } else {
            (graph, 0)
        };
        let nv = graph.values.len();
        let (root, mut last_use) = liveness(graph)?;

        let mut ctx = PlanCtx::new(gpu, &gpu.kernels);
        ctx.class_override = opts.class;
        let half = if opts.half_weights { half_constants(graph, &ctx) } else { vec![false; nv] };

        // Dedicated buffers for inputs and constants.
        let mut views: Vec<Option<TensorView>> = vec![None; nv];
        let mut stats = PlanStats { fused_nodes, ..Default::default() };
        let mut inputs = Vec::new();
        let mut staged = 0;
        for (i, v) in graph.values.iter().enumerate() {
            match &v.source {
                Source::Input => {
                    let buf = storage_buffer(gpu, &v.name, (numel(&v.shape) * 4) as u64)?;
                    let view = TensorView { buffer: buf, offset: 0, shape: v.shape.clone() };
                    inputs.push(InputSlot { name: v.name.clone(), shape: v.shape.clone(), view: view.clone() });
                    views[i] = Some(view);
                }
                Source::Constant(t) => {
                    // f32, or f16 pairs where every reader takes them (`half_constants`).
                    let words = half[i].then(|| f16_pairs(&t.data));
                    let bytes: &[u8] = match &words {
                        Some(w) => bytemuck::cast_slice(w),
                        None => bytemuck::cast_slice(&t.data),
                    };
                    let buf = storage_buffer(gpu, &v.name, bytes.len() as u64)?;
                    gpu.queue.write_buffer(&buf, 0, bytes);
                    // write_buffer stages a copy until a submission completes: flush every
                    // UPLOAD_FLUSH_BYTES so the staged copies of all weights never coexist.
                    staged += bytes.len();
                    if staged >= UPLOAD_FLUSH_BYTES {
                        gpu.queue.submit(std::iter::empty());
                        gpu.wait("uploading weights")?;
                        staged = 0;
                    }
                    stats.weight_bytes += bytes.len() as u64;
                    stats.half_weights += half[i] as usize;
                    views[i] = Some(TensorView { buffer: buf, offset: 0, shape: v.shape.clone() });
                }
                Source::Node(..) => {}
            }
        }

        // Intermediates: greedy best-fit over slots freed by liveness.
        let mut slot_of = vec![usize::MAX; nv];
        let mut slot_size: Vec<u64> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        for (n, node) in graph.nodes.iter().enumerate() {
            for &o in &node.outputs {
                if root[o.0] != o.0 {
                    continue;
                }
                let need = (numel(&graph.value(o).shape) * 4).max(4) as u64;
                stats.unshared_activation_bytes += need;
                let pick = if opts.reuse_buffers {
                    let fit = free
                        .iter()
                        .enumerate()
                        .filter(|(_, &s)| slot_size[s] >= need)
                        .min_by_key(|(_, &s)| slot_size[s])
                        .map(|(k, _)| k);
                    fit.or_else(|| free.iter().enumerate().max_by_key(|(_, &s)| slot_size[s]).map(|(k, _)| k))
                        .map(|k| free.swap_remove(k))
                } else {
                    None
                };
                let s = pick.unwrap_or_else(|| {
                    slot_size.push(0);
                    slot_size.len() - 1
                });
                slot_size[s] = slot_size[s].max(need);
                slot_of[o.0] = s;
            }
            // Release roots whose last use is this node (after its outputs were placed).
            for v in node.inputs.iter().chain(&node.outputs) {
                let r = root[v.0];
                if last_use[r] == n && slot_of[r] != usize::MAX && !free.contains(&slot_of[r]) {
                    free.push(slot_of[r]);
                    last_use[r] = usize::MAX - 1; // released once
                }
            }
        }
        let slot_buffers: Vec<Arc<wgpu::Buffer>> = slot_size
            .iter()
            .enumerate()
            .map(|(i, &s)| storage_buffer(gpu, &format!("activations[{i}]"), s))
            .collect::<Result<_>>()?;
        stats.peak_activation_bytes = slot_size.iter().sum();
        stats.intermediate_buffers = slot_size.len();
        // Values no node makes any more (a fused producer's old output, see graph::fuse) get none.
        for (i, v) in graph.values.iter().enumerate() {
            if views[i].is_none() && root[i] == i && slot_of[i] != usize::MAX {
                views[i] =
                    Some(TensorView { buffer: slot_buffers[slot_of[i]].clone(), offset: 0, shape: v.shape.clone() });
            }
        }
        for i in 0..nv {
            if views[i].is_none() {
                if let Some(base) = views[root[i]].clone() {
                    views[i] = Some(TensorView { shape: graph.values[i].shape.clone(), ..base });
                }
            }
        }

        // Pipelines and bind groups, once.
        let mut nodes = Vec::new();
        let mut node_outputs = Vec::new();
        let mut costs = Vec::new();
        for (n, node) in graph.nodes.iter().enumerate() {
            nodes.push((node.name.clone(), node.op.kind()));
            if node.op.view_of().is_some() {
                node_outputs.push(Vec::new());
                costs.push(Cost::default());
                continue;
            }
            let shapes = |vs: &[crate::graph::ir::ValueId]| -> Vec<&[usize]> {
                vs.iter().map(|v| graph.values[v.0].shape.as_slice()).collect()
            };
            costs.push(node.op.cost(&shapes(&node.inputs), &shapes(&node.outputs)));
            node_outputs.push(node.outputs.iter().map(|v| views[v.0].clone().unwrap()).collect());
            ctx.node_name = node.name.clone();
            ctx.node_index = n;
            let ins: Vec<TensorView> = node.inputs.iter().map(|v| views[v.0].clone().unwrap()).collect();
            let outs: Vec<TensorView> = node.outputs.iter().map(|v| views[v.0].clone().unwrap()).collect();
            ctx.half_inputs = node.inputs.iter().map(|v| half[v.0]).collect();
            node.op
                .plan(&mut ctx, &ins, &outs)
                .map_err(|e| e.context(format!("planning node '{}' ({})", node.name, node.op.kind())))?;
        }
        stats.scratch_bytes = ctx.scratch_bytes;
        stats.uniform_bytes = ctx.uniform_bytes;
        stats.dispatches = ctx.dispatches.len();
        stats.pipelines = gpu.kernels.pipeline_count();

        let mut outputs = Vec::new();
        for (name, v) in &graph.outputs {
            let view = views[v.0].clone().unwrap();
            let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(name),
                size: view.bytes().max(4).next_multiple_of(4),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            outputs.push(OutputSlot { name: name.clone(), view, staging });
        }
        gpu.check("planning")?;
        Ok(Plan { gpu, dispatches: ctx.dispatches, inputs, outputs, nodes, node_outputs, costs, stats })
    }
}

/// Which constants to store in f16: those that some node reads, every node reading them does so
/// through the input its op names in [`crate::ops::Op::half_weight_input`], and whose values all
/// fit f16's range (a larger one would become infinite: such a tensor stays f32).
fn half_constants(graph: &Graph, ctx: &PlanCtx) -> Vec<bool> {
    let f16_max = half::f16::MAX.to_f32();
    let mut half: Vec<bool> = graph
        .values
        .iter()
        .map(|v| matches!(&v.source, Source::Constant(t) if t.data.iter().all(|x| x.abs() <= f16_max)))
        .collect();
    let mut read = vec![false; graph.values.len()];
    for node in &graph.nodes {
        let shapes: Vec<&[usize]> = node.inputs.iter().map(|v| graph.values[v.0].shape.as_slice()).collect();
        let takes = node.op.half_weight_input(ctx, &shapes);
        for (i, v) in node.inputs.iter().enumerate() {
            read[v.0] = true;
            half[v.0] &= takes == Some(i);
        }
    }
    for (_, v) in &graph.outputs {
        half[v.0] = false;
    }
    half.iter().zip(&read).map(|(&h, &r)| h && r).collect()
}

/// f32 values as f16 (round to nearest even), two per little-endian u32 word, element `2i` in
/// the low half of word `i` (what WGSL's `unpack2x16float` reads); an odd count pads with zero.
pub fn f16_pairs(data: &[f32]) -> Vec<u32> {
    data.chunks(2)
        .map(|p| {
            let lo = half::f16::from_f32(p[0]).to_bits() as u32;
            let hi = p.get(1).map_or(0, |&v| half::f16::from_f32(v).to_bits() as u32);
            lo | (hi << 16)
        })
        .collect()
}
