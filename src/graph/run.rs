//! Running a plan: inputs written, the whole graph recorded into one encoder, outputs read back.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::graph::plan::Plan;
use crate::tensor::Tensor;

/// The first node whose output holds a NaN or an infinity ([`Plan::first_nonfinite`]).
#[derive(Clone, Debug, PartialEq)]
pub struct NonFinite {
    pub node: String,
    pub kind: &'static str,
    /// Which of the node's outputs, and the flat index and value of its first bad element.
    pub output: usize,
    pub index: usize,
    pub value: f32,
}

impl std::fmt::Display for NonFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "node '{}' ({}) output {} holds {} at element {}",
            self.node, self.kind, self.output, self.value, self.index
        )
    }
}

/// GPU time of one node, from timestamp queries.
#[derive(Clone, Debug)]
pub struct NodeTiming {
    pub node: String,
    pub kind: &'static str,
    pub micros: f64,
}

impl<'g> Plan<'g> {
    /// Run once; returns the graph's outputs by name.
    pub fn run(&self, inputs: &[(&str, &Tensor)]) -> Result<HashMap<String, Tensor>> {
        self.run_inner(inputs, false).map(|(o, _)| o)
    }

    /// Run once with per-node GPU timestamps (each node's steps between its two timestamps).
    pub fn run_profiled(&self, inputs: &[(&str, &Tensor)]) -> Result<(HashMap<String, Tensor>, Vec<NodeTiming>)> {
        if !self.gpu.has(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(Error::invalid(format!(
                "adapter '{}' has no timestamp queries; profiling is unavailable",
                self.gpu.info.name
            )));
        }
        self.run_inner(inputs, true)
    }

    /// Run the graph node by node, reading each node's outputs back before the next node may
    /// reuse their buffers, and return the first node whose output holds a NaN or an infinity
    /// (`None` when all are finite). One submission and read-back per node: for finding where a
    /// bad map came from, not for serving.
    pub fn first_nonfinite(&self, inputs: &[(&str, &Tensor)]) -> Result<Option<NonFinite>> {
        let gpu = self.gpu;
        self.write_inputs(inputs)?;
        let most = self.node_outputs.iter().flatten().map(|v| v.bytes()).max().unwrap_or(4).max(4);
        let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("finite check"),
            size: most.next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut i = 0;
        for (n, outs) in self.node_outputs.iter().enumerate() {
            let start = i;
            while i < self.dispatches.len() && self.dispatches[i].node == n {
                i += 1;
            }
            for (k, view) in outs.iter().enumerate() {
                gpu.scoped("checking a node's output", || {
                    let mut enc = gpu.device.create_command_encoder(&Default::default());
                    if k == 0 {
                        super::record::record(&mut enc, &self.dispatches[start..i], &self.nodes[n].0, None);
                    }
                    enc.copy_buffer_to_buffer(&view.buffer, view.offset, &staging, 0, view.bytes());
                    gpu.queue.submit([enc.finish()]);
                    Ok(())
                })?;
                let slice = staging.slice(..view.bytes());
                slice.map_async(wgpu::MapMode::Read, |_| {});
                gpu.wait("checking a node's output")?;
                let bad = {
                    let data =
                        slice.get_mapped_range().map_err(|e| Error::gpu(format!("mapping a node's output: {e}")))?;
                    bytemuck::cast_slice::<u8, f32>(&data)
                        .iter()
                        .enumerate()
                        .find(|(_, v)| !v.is_finite())
                        .map(|(j, &v)| (j, v))
                };
                staging.unmap();
                if let Some((index, value)) = bad {
                    let (node, kind) = self.nodes[n].clone();
                    return Ok(Some(NonFinite { node, kind, output: k, index, value }));
                }
            }
        }
        Ok(None)
    }

    /// The tensor of each input slot, in the plan's order: every input given, with its shape,
    /// and no input the plan does not have.
    pub(super) fn slot_tensors<'t>(&self, inputs: &[(&str, &'t Tensor)]) -> Result<Vec<&'t Tensor>> {
        if let Some((n, _)) = inputs.iter().find(|(n, _)| !self.inputs.iter().any(|s| s.name == *n)) {
            return Err(Error::invalid(format!("unknown input '{n}'")));
        }
        self.inputs
            .iter()
            .map(|slot| {
                let (_, t) = inputs
                    .iter()
                    .find(|(n, _)| *n == slot.name)
                    .ok_or_else(|| Error::invalid(format!("missing input '{}'", slot.name)))?;
                if t.shape != slot.shape {
                    return Err(Error::invalid(format!(
                        "input '{}' has shape {:?}, the plan expects {:?}",
                        slot.name, t.shape, slot.shape
                    )));
                }
                Ok(*t)
            })
            .collect()
    }

    fn write_inputs(&self, inputs: &[(&str, &Tensor)]) -> Result<()> {
        for (slot, t) in self.inputs.iter().zip(self.slot_tensors(inputs)?) {
            self.gpu.queue.write_buffer(&slot.view.buffer, slot.view.offset, bytemuck::cast_slice(&t.data));
        }
        Ok(())
    }

    /// Record every step; with `timed`, each node's steps bracketed by its timestamps.
    pub(super) fn encode(&self, enc: &mut wgpu::CommandEncoder, queries: Option<&wgpu::QuerySet>) {
        match queries {
            None => super::record::record(enc, &self.dispatches, "graph", None),
            Some(qs) => {
                for (node, steps) in super::record::by_node(&self.dispatches) {
                    super::record::record(enc, steps, &self.nodes[node].0, Some((qs, 2 * node as u32)));
                }
            }
        }
    }

    fn run_inner(&self, inputs: &[(&str, &Tensor)], timed: bool) -> Result<(HashMap<String, Tensor>, Vec<NodeTiming>)> {
        let gpu = self.gpu;
        self.write_inputs(inputs)?;
        let nq = (2 * self.nodes.len()).max(2) as u32;
        let (qs, resolve, qstaging) = if timed {
            let qs = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("node times"),
                ty: wgpu::QueryType::Timestamp,
                count: nq,
            });
            let mk = |usage| {
                gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("timestamps"),
                    size: nq as u64 * 8,
                    usage,
                    mapped_at_creation: false,
                })
            };
            (
                Some(qs),
                Some(mk(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC)),
                Some(mk(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST)),
            )
        } else {
            (None, None, None)
        };
        gpu.scoped("running the graph", || {
            let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("graph") });
            self.encode(&mut enc, qs.as_ref());
            for o in &self.outputs {
                enc.copy_buffer_to_buffer(&o.view.buffer, o.view.offset, &o.staging, 0, o.view.bytes());
            }
            if let (Some(qs), Some(r), Some(s)) = (&qs, &resolve, &qstaging) {
                enc.resolve_query_set(qs, 0..nq, r, 0);
                enc.copy_buffer_to_buffer(r, 0, s, 0, nq as u64 * 8);
            }
            gpu.queue.submit([enc.finish()]);
            Ok(())
        })?;
        let mut stagings: Vec<&wgpu::Buffer> = self.outputs.iter().map(|o| &o.staging).collect();
        if let Some(s) = &qstaging {
            stagings.push(s);
        }
        let status = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        for b in &stagings {
            let st = status.clone();
            b.slice(..).map_async(wgpu::MapMode::Read, move |r| st.lock().unwrap().push(r.is_ok()));
        }
        gpu.wait("running the graph")?;
        // When several threads share the device, another thread's poll may have taken our map
        // callbacks and run them a moment after our wait returned: wait for all of them (bounded).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let st = status.lock().unwrap().clone();
            if st.iter().any(|ok| !ok) {
                return Err(Error::gpu("reading results back from the GPU failed"));
            }
            if st.len() == stagings.len() {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(Error::gpu("reading results back from the GPU timed out"));
            }
            gpu.device.poll(wgpu::PollType::Poll).map_err(|e| Error::gpu(format!("polling the GPU: {e}")))?;
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let mut out = HashMap::new();
        for o in &self.outputs {
            let data: Vec<f32> = {
                let view = o
                    .staging
                    .slice(..)
                    .get_mapped_range()
                    .map_err(|e| Error::gpu(format!("mapping '{}': {e}", o.name)))?;
                bytemuck::cast_slice(&view[..o.view.bytes() as usize]).to_vec()
            };
            o.staging.unmap();
            out.insert(o.name.clone(), Tensor::new(&o.view.shape, data)?);
        }
        let mut times = Vec::new();
        if let Some(s) = &qstaging {
            let ticks: Vec<u64> = {
                let view =
                    s.slice(..).get_mapped_range().map_err(|e| Error::gpu(format!("mapping timestamps: {e}")))?;
                bytemuck::cast_slice(&view[..]).to_vec()
            };
            s.unmap();
            let period = gpu.queue.get_timestamp_period() as f64;
            let mut has = vec![false; self.nodes.len()];
            for d in &self.dispatches {
                has[d.node] = true;
            }
            for (n, (name, kind)) in self.nodes.iter().enumerate() {
                if has[n] {
                    let dt = ticks[2 * n + 1].wrapping_sub(ticks[2 * n]) as f64 * period / 1000.0;
                    times.push(NodeTiming { node: name.clone(), kind, micros: dt });
                }
            }
        }
        Ok((out, times))
    }
}
