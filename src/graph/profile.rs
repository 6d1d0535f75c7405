//! Per-node profiles of a planned graph: wall time per node, GPU timestamps where the device has
//! them, and each node's FLOPs and bytes from its op's shape rule (`wgpu-forge bench --model`).
//!
//! Two clocks, because neither is right everywhere: timestamps bracket each node's compute pass,
//! but on lavapipe they are implausibly low for some kernels (docs/BENCHMARKS.md); the wall clock
//! of a node submitted alone and waited for is honest but adds the submission and wait (tens of
//! microseconds on lavapipe). The report names the clock of every number.

use crate::error::{Error, Result};
use crate::graph::Plan;
use crate::ops::Cost;
use crate::tensor::{numel, Tensor};

/// One node of a profile.
#[derive(Clone, Debug)]
pub struct NodeProfile {
    pub node: String,
    pub kind: &'static str,
    pub cost: Cost,
    /// Median wall time of the node submitted alone and waited for, microseconds.
    pub wall_us: f64,
    /// Median time between the timestamps around its compute pass, microseconds (None without
    /// TIMESTAMP_QUERY).
    pub gpu_us: Option<f64>,
    /// The kernel variant that ran, where the backend chooses among several (the CPU backend's
    /// "matmul gemm, transposed store", ...); None on the GPU, whose kernels the op names.
    pub kernel: Option<&'static str>,
}

/// A whole graph's profile.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Nodes that dispatch work, in execution order (views are left out).
    pub nodes: Vec<NodeProfile>,
    /// Median wall time of the whole graph in one submission, as `Plan::run` does it, milliseconds.
    pub whole_ms: f64,
    pub reps: usize,
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

impl Profile {
    pub fn flops(&self) -> f64 {
        self.nodes.iter().map(|n| n.cost.flops).sum()
    }
    pub fn bytes(&self) -> f64 {
        self.nodes.iter().map(|n| n.cost.bytes).sum()
    }
    /// Sum of the per-node wall times, milliseconds.
    pub fn wall_sum_ms(&self) -> f64 {
        self.nodes.iter().map(|n| n.wall_us).sum::<f64>() / 1e3
    }
    /// Per op family: (kind, nodes, wall microseconds, cost), largest time first.
    pub fn by_family(&self) -> Vec<(&'static str, usize, f64, Cost)> {
        let mut fams: Vec<(&'static str, usize, f64, Cost)> = Vec::new();
        for n in &self.nodes {
            match fams.iter_mut().find(|f| f.0 == n.kind) {
                Some(f) => {
                    f.1 += 1;
                    f.2 += n.wall_us;
                    f.3 = Cost { flops: f.3.flops + n.cost.flops, bytes: f.3.bytes + n.cost.bytes };
                }
                None => fams.push((n.kind, 1, n.wall_us, n.cost)),
            }
        }
        fams.sort_by(|a, b| b.2.total_cmp(&a.2));
        fams
    }
}

/// Values in [0, 1), a fixed hash of the index: for timing, where only the shapes matter.
pub(crate) fn synthetic(shape: &[usize]) -> Tensor {
    let data =
        (0..numel(shape)).map(|i| ((i as u32).wrapping_mul(2654435761) >> 8) as f32 / (1u32 << 24) as f32).collect();
    Tensor::new(shape, data).expect("the shape's own element count")
}

impl<'g> Plan<'g> {
    /// Deterministic inputs for every input of the plan (values in [0, 1), a fixed hash of the
    /// index): for timing, where only the shapes matter.
    pub fn synthetic_inputs(&self) -> Vec<(String, Tensor)> {
        self.inputs.iter().map(|s| (s.name.clone(), synthetic(&s.shape))).collect()
    }

    /// Wall time of each node submitted alone and waited for, microseconds (0 for nodes that
    /// dispatch nothing). The inputs must have been written (`run` does it).
    fn node_walls(&self) -> Result<Vec<f64>> {
        let gpu = self.gpu;
        let mut walls = vec![0.0; self.nodes.len()];
        for (node, steps) in super::record::by_node(&self.dispatches) {
            let t = std::time::Instant::now();
            gpu.scoped("profiling a node", || {
                let mut enc = gpu.device.create_command_encoder(&Default::default());
                super::record::record(&mut enc, steps, &self.nodes[node].0, None);
                gpu.queue.submit([enc.finish()]);
                Ok(())
            })?;
            gpu.wait("profiling a node")?;
            walls[node] += t.elapsed().as_secs_f64() * 1e6;
        }
        Ok(walls)
    }

    /// Profile the plan on `inputs`: one warm-up run, then `reps` whole runs, `reps` node-by-node
    /// passes and, where the device has timestamps, `reps` timed runs; medians throughout.
    pub fn profile(&self, inputs: &[(&str, &Tensor)], reps: usize) -> Result<Profile> {
        if reps == 0 {
            return Err(Error::invalid("profile: reps must be at least 1"));
        }
        self.run(inputs)?;
        let mut whole = Vec::new();
        for _ in 0..reps {
            let t = std::time::Instant::now();
            self.run(inputs)?;
            whole.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let n = self.nodes.len();
        let mut walls = vec![Vec::new(); n];
        for _ in 0..reps {
            for (k, w) in self.node_walls()?.into_iter().enumerate() {
                walls[k].push(w);
            }
        }
        let mut gpu_times: Vec<Vec<f64>> = vec![Vec::new(); n];
        let timed = self.gpu.has(wgpu::Features::TIMESTAMP_QUERY);
        if timed {
            for _ in 0..reps {
                let (_, times) = self.run_profiled(inputs)?;
                // run_profiled lists the nodes that dispatch, in order: match them by name.
                let mut t = times.into_iter().peekable();
                for (k, (name, _)) in self.nodes.iter().enumerate() {
                    if t.peek().is_some_and(|x| &x.node == name) {
                        gpu_times[k].push(t.next().expect("peeked").micros);
                    }
                }
            }
        }
        let mut dispatching = vec![false; n];
        for d in &self.dispatches {
            dispatching[d.node] = true;
        }
        let nodes = (0..n)
            .filter(|&k| dispatching[k])
            .map(|k| NodeProfile {
                node: self.nodes[k].0.clone(),
                kind: self.nodes[k].1,
                cost: self.costs[k],
                wall_us: median(walls[k].clone()),
                gpu_us: (timed && !gpu_times[k].is_empty()).then(|| median(gpu_times[k].clone())),
                kernel: None,
            })
            .collect();
        Ok(Profile { nodes, whole_ms: median(whole), reps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphBuilder;
    use crate::ops::act::Act;
    use crate::ops::conv2d::{conv2d, Conv2d};
    use crate::ops::elementwise::Unary;

    /// A conv + ReLU graph: the costs are the shape rules' (2 x taps per conv output, one read and
    /// write per element for the ReLU), every dispatching node is timed, views are left out.
    #[test]
    fn profile_counts_costs_and_times_every_node() {
        let gpu = crate::gpu::device::shared().unwrap();
        let mut b = GraphBuilder::new();
        let x = b.input("image", &[1, 3, 9, 7]);
        let w = Tensor::new(&[5, 3, 3, 3], vec![0.01; 135]).unwrap();
        let y = conv2d(&mut b, "conv", x, w, None, Conv2d::new(1, 1)).unwrap();
        let z = b.add("act", Unary { act: Act::Relu }, &[y]).unwrap();
        b.output("prob", z);
        let plan = Plan::new(gpu, &b.finish()).unwrap();
        let inputs = plan.synthetic_inputs();
        assert_eq!(inputs.len(), 1);
        assert!(inputs[0].1.data.iter().all(|v| (0.0..1.0).contains(v)));
        let refs: Vec<(&str, &Tensor)> = inputs.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let p = plan.profile(&refs, 2).unwrap();
        let conv = p.nodes.iter().find(|n| n.kind == "conv2d").expect("the conv is profiled");
        assert_eq!(conv.cost.flops, 2.0 * 27.0 * (5 * 9 * 7) as f64);
        let act = p.nodes.iter().find(|n| n.node == "act").expect("the activation is profiled");
        assert_eq!(act.cost.bytes, 4.0 * 2.0 * (5 * 9 * 7) as f64);
        assert!(p.nodes.iter().all(|n| n.wall_us > 0.0), "{:?}", p.nodes);
        assert!(p.whole_ms > 0.0 && p.flops() >= conv.cost.flops);
        let fams = p.by_family();
        assert_eq!(fams.iter().map(|f| f.1).sum::<usize>(), p.nodes.len());
        assert!(plan.profile(&refs, 0).is_err());
    }

    /// The ops that count their own arithmetic, on small shapes worked out by hand.
    #[test]
    fn op_costs_count_their_arithmetic() {
        use crate::ops::attention::Attention;
        use crate::ops::conv_transpose2d::ConvTranspose2d;
        use crate::ops::matmul::MatMul;
        use crate::ops::msattn::MsAttn;
        use crate::ops::Op;
        let cost = |op: &dyn Op, ins: &[&[usize]]| {
            let outs = op.infer(ins).unwrap();
            let outs: Vec<&[usize]> = outs.iter().map(|s| s.as_slice()).collect();
            op.cost(ins, &outs)
        };
        // [2, 3, 4] @ [4, 5]: 2 x 3 x 5 outputs of 4 multiply-adds.
        let mm = cost(&MatMul::new(), &[&[2, 3, 4], &[4, 5]]);
        assert_eq!(mm.flops, 240.0);
        assert_eq!(mm.bytes, 4.0 * (24 + 20 + 30) as f64);
        // 6 queries, 10 keys, 8 channels, 2 heads: 6 x 10 x (2 x 8 + 2 x 8 + 5 x 2).
        assert_eq!(cost(&Attention::new(2, 4), &[&[1, 6, 8], &[1, 10, 8], &[1, 10, 8]]).flops, 2520.0);
        // 8 channels at 4x4 in 2 groups, patches 2 and 1: 4 tokens of 16 and 16 tokens of 4.
        let m = [1, 8, 4, 4];
        assert_eq!(cost(&MsAttn::new(&[2, 1]), &[&m, &m, &m]).flops, 16.0 * 69.0 + 256.0 * 21.0);
        // 18 inputs scattered to 4 x 4 taps x 3 outputs each.
        assert_eq!(cost(&ConvTranspose2d::new(2, 1), &[&[1, 2, 3, 3], &[2, 4, 4, 3]]).flops, 2.0 * 18.0 * 48.0);
        // A DCT filter of 2 planes of 3 x 5: forward and inverse, each 3 x 5 x (3 + 5) multiply-adds.
        assert_eq!(cost(&crate::ops::dct::DctFilter::high(), &[&[2, 3, 5]]).flops, 2.0 * 2.0 * 2.0 * 15.0 * 8.0);
        // Element-wise by default: one FLOP per output, one read and one write per element.
        let relu = cost(&Unary { act: Act::Relu }, &[&[3, 5]]);
        assert_eq!((relu.flops, relu.bytes), (15.0, 120.0));
    }
}
