//! PatchMatch on the CPU backend: every pixel on the pool. The candidates, their order, the early
//! stop and the f32 sums over channels in order are those of the op's definition, so the field is
//! bit-identical to the reference's. The features stay planar: most candidates lose on channel 0
//! (the patch mean), so the random targets touch one plane that stays in cache; a pixel-major copy
//! spread them over all K and ran 1.5x slower than the single-threaded reference.

use super::{rnd, PatchMatchInit, PatchMatchStep, BIG};
use crate::cpu::{CpuInput, CpuKernel};
use rayon::prelude::*;

/// What both kernels share: the image size, the feature count and the matching rule.
#[derive(Clone, Copy)]
struct Grid {
    h: usize,
    w: usize,
    k: usize,
    min_off2: i64,
}

impl Grid {
    fn of(inputs: &[CpuInput], min_offset: usize) -> Option<Grid> {
        let &[_, k, h, w] = inputs.first()?.shape else { return None };
        Some(Grid { h, w, k, min_off2: (min_offset * min_offset) as i64 })
    }

    /// Squared distance between the features of pixel (x, y) and (x + dx, y + dy), stopping once
    /// it reaches `bound`; BIG for a target outside the image or an offset shorter than the minimum.
    fn cost(&self, f: &[f32], x: i64, y: i64, dx: i64, dy: i64, bound: f32) -> f32 {
        let (tx, ty) = (x + dx, y + dy);
        if dx * dx + dy * dy < self.min_off2 || tx < 0 || ty < 0 || tx >= self.w as i64 || ty >= self.h as i64 {
            return BIG;
        }
        let n = self.h * self.w;
        let (a, b) = (y as usize * self.w + x as usize, ty as usize * self.w + tx as usize);
        let mut sum = 0.0f32;
        for plane in f.chunks_exact(n).take(self.k) {
            let d = plane[a] - plane[b];
            sum += d * d;
            if sum >= bound {
                break;
            }
        }
        sum
    }

    /// Run `best(p)` for every pixel on the pool and store the field planes (dx, dy, cost).
    fn field(&self, out: &mut [f32], best: impl Fn(usize) -> (i64, i64, f32) + Sync + Send) {
        let n = self.h * self.w;
        let found: Vec<(i64, i64, f32)> = (0..n).into_par_iter().with_min_len(512).map(best).collect();
        for (p, &(dx, dy, c)) in found.iter().enumerate() {
            (out[p], out[n + p], out[2 * n + p]) = (dx as f32, dy as f32, c);
        }
    }
}

struct InitCpu(Grid);

pub(super) fn init_kernel(op: &PatchMatchInit, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    Some(Box::new(InitCpu(Grid::of(inputs, op.min_offset)?)))
}

impl CpuKernel for InitCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let g = self.0;
        let t = inputs[0];
        g.field(outputs[0], |p| {
            let (x, y) = ((p % g.w) as i64, (p / g.w) as i64);
            let mut best = (0, 0, BIG);
            for s in 0..4u32 {
                let dx = (rnd(p as u32, 0xffff, 2 * s) % g.w as u32) as i64 - x;
                let dy = (rnd(p as u32, 0xffff, 2 * s + 1) % g.h as u32) as i64 - y;
                let c = g.cost(t, x, y, dx, dy, best.2);
                if c < best.2 {
                    best = (dx, dy, c);
                }
            }
            best
        });
    }
    fn name(&self) -> &'static str {
        "planar-parallel"
    }
}

struct StepCpu {
    grid: Grid,
    op: PatchMatchStep,
}

pub(super) fn step_kernel(op: &PatchMatchStep, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    Some(Box::new(StepCpu { grid: Grid::of(inputs, op.min_offset)?, op: op.clone() }))
}

impl CpuKernel for StepCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (g, op) = (self.grid, &self.op);
        let (t, prev) = (inputs[0], inputs[1]);
        let n = g.h * g.w;
        let reach = g.h.max(g.w) as i64;
        g.field(outputs[0], |p| {
            let (x, y) = ((p % g.w) as i64, (p / g.w) as i64);
            let mut best = (prev[p] as i64, prev[n + p] as i64, prev[2 * n + p]);
            let try_offset = |dx: i64, dy: i64, best: &mut (i64, i64, f32)| {
                let c = g.cost(t, x, y, dx, dy, best.2);
                if c < best.2 {
                    *best = (dx, dy, c);
                }
            };
            // Propagation: the neighbours at `jump`, then the unit ones, each neighbour's offset.
            for j in [op.jump as i64, 1] {
                for (nx, ny) in [(x - j, y), (x + j, y), (x, y - j), (x, y + j)] {
                    if (0..g.w as i64).contains(&nx) && (0..g.h as i64).contains(&ny) {
                        let q = ny as usize * g.w + nx as usize;
                        try_offset(prev[q] as i64, prev[n + q] as i64, &mut best);
                    }
                }
            }
            // Random search in shrinking squares around the best offset so far.
            for s in 0..op.samples as u32 {
                let rad = (reach >> (s + 1)).max(1);
                let span = (2 * rad + 1) as u32;
                let dx = best.0 + (rnd(p as u32, op.iter as u32, 2 * s) % span) as i64 - rad;
                let dy = best.1 + (rnd(p as u32, op.iter as u32, 2 * s + 1) % span) as i64 - rad;
                try_offset(dx, dy, &mut best);
            }
            best
        });
    }
    fn name(&self) -> &'static str {
        "planar-parallel"
    }
}
