//! One graph, two engines: the GPU ([`Plan`], WGSL kernels through wgpu) or the host's cores
//! ([`CpuPlan`]). Callers above the graph (the pipeline, the CLI) hold an [`Engine`] and plan
//! through it; models never know which one runs them.

use std::collections::HashMap;

use crate::cpu::CpuPlan;
use crate::error::Result;
use crate::gpu::device::Gpu;
use crate::graph::{Graph, NonFinite, Plan, PlanStats, Profile};
use crate::tensor::Tensor;

/// Where graphs are planned and run.
#[derive(Clone, Copy)]
pub enum Engine<'g> {
    Gpu(&'g Gpu),
    /// The native CPU backend ([`crate::cpu`]).
    Cpu,
}

impl<'g> From<&'g Gpu> for Engine<'g> {
    fn from(gpu: &'g Gpu) -> Engine<'g> {
        Engine::Gpu(gpu)
    }
}

impl<'g> Engine<'g> {
    /// Plan `graph` on this engine.
    pub fn plan(self, graph: &Graph) -> Result<Executor<'g>> {
        Ok(match self {
            Engine::Gpu(gpu) => Executor::Gpu(Plan::new(gpu, graph)?),
            Engine::Cpu => Executor::Cpu(CpuPlan::new(graph)?),
        })
    }
    /// The device in words, for logs and reports: the adapter's name, or "CPU (N threads)".
    pub fn device_name(self) -> String {
        match self {
            // Reports say when weights were stored in f16 (only hardware GPUs do so).
            Engine::Gpu(gpu) if gpu.half_weights && gpu.class == crate::gpu::DeviceClass::Hardware => {
                format!("{} (weights in f16)", gpu.info.name)
            }
            Engine::Gpu(gpu) => gpu.info.name.clone(),
            Engine::Cpu => format!("CPU ({} threads)", crate::cpu::threads()),
        }
    }
    /// The backend in words: the graphics API ("Vulkan", "Metal" ...) or "Cpu".
    pub fn backend_name(self) -> String {
        match self {
            Engine::Gpu(gpu) => format!("{:?}", gpu.info.backend),
            Engine::Cpu => "Cpu".to_string(),
        }
    }
}

/// A graph planned on an [`Engine`].
pub enum Executor<'g> {
    Gpu(Plan<'g>),
    Cpu(CpuPlan),
}

impl<'g> Executor<'g> {
    /// Run once; returns the graph's outputs by name.
    pub fn run(&self, inputs: &[(&str, &Tensor)]) -> Result<HashMap<String, Tensor>> {
        match self {
            Executor::Gpu(p) => p.run(inputs),
            Executor::Cpu(p) => p.run(inputs),
        }
    }
    /// Run once per item ([`Plan::run_batch`]: on the GPU, one submission for all of them; on
    /// the CPU, one run after another); returns each item's outputs, in order, each equal to
    /// what [`Executor::run`] gives for the item alone.
    pub fn run_batch(&self, items: &[Vec<(&str, &Tensor)>]) -> Result<Vec<HashMap<String, Tensor>>> {
        match self {
            Executor::Gpu(p) => p.run_batch(items),
            Executor::Cpu(p) => items.iter().map(|item| p.run(item)).collect(),
        }
    }
    /// The first node whose output holds a NaN or an infinity (slow; for error paths).
    pub fn first_nonfinite(&self, inputs: &[(&str, &Tensor)]) -> Result<Option<NonFinite>> {
        match self {
            Executor::Gpu(p) => p.first_nonfinite(inputs),
            Executor::Cpu(p) => p.first_nonfinite(inputs),
        }
    }
    /// Memory the plan holds (on the CPU: arenas and weights; no scratch, uniforms or pipelines).
    pub fn stats(&self) -> PlanStats {
        match self {
            Executor::Gpu(p) => p.stats.clone(),
            Executor::Cpu(p) => PlanStats {
                peak_activation_bytes: p.stats.peak_activation_bytes,
                unshared_activation_bytes: p.stats.unshared_activation_bytes,
                weight_bytes: p.stats.weight_bytes,
                intermediate_buffers: p.stats.intermediate_buffers,
                dispatches: p.stats.fast_nodes + p.stats.reference_nodes,
                ..Default::default()
            },
        }
    }
    /// Deterministic inputs of the plan's shapes, for timing.
    pub fn synthetic_inputs(&self) -> Vec<(String, Tensor)> {
        match self {
            Executor::Gpu(p) => p.synthetic_inputs(),
            Executor::Cpu(p) => p.synthetic_inputs(),
        }
    }
    /// Per-node profile ([`Plan::profile`]; on the CPU every node's wall time, no timestamps).
    pub fn profile(&self, inputs: &[(&str, &Tensor)], reps: usize) -> Result<Profile> {
        match self {
            Executor::Gpu(p) => p.profile(inputs, reps),
            Executor::Cpu(p) => p.profile(inputs, reps),
        }
    }
}
