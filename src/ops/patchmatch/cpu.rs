//! PatchMatch on the CPU backend: the definition's per-pixel searches ([`PatchMatchInit::best`],
//! [`PatchMatchStep::best`]) run on the pool, so the field is bit-identical to the reference's.
//! The features stay planar: most candidates lose on channel 0 (the patch mean), so the random
//! targets touch one plane that stays in cache; a pixel-major copy spread them over all K and ran
//! 1.5x slower than the single-threaded reference.

use super::{Matcher, PatchMatchInit, PatchMatchStep};
use crate::cpu::{CpuInput, CpuKernel};
use rayon::prelude::*;

/// Pixels per pool task: a search is a few hundred nanoseconds.
const MIN_PIXELS: usize = 512;

struct InitCpu {
    op: PatchMatchInit,
    shape: Vec<usize>,
}

pub(super) fn init_kernel(op: &PatchMatchInit, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    Some(Box::new(InitCpu { op: op.clone(), shape: inputs.first()?.shape.to_vec() }))
}

impl CpuKernel for InitCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let m = Matcher::new(inputs[0], &self.shape, self.op.min_offset);
        let n = m.h * m.w;
        let best: Vec<_> = (0..n).into_par_iter().with_min_len(MIN_PIXELS).map(|p| self.op.best(&m, p)).collect();
        m.field(outputs[0], best);
    }
    fn name(&self) -> &'static str {
        "parallel"
    }
}

struct StepCpu {
    op: PatchMatchStep,
    shape: Vec<usize>,
}

pub(super) fn step_kernel(op: &PatchMatchStep, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    Some(Box::new(StepCpu { op: op.clone(), shape: inputs.first()?.shape.to_vec() }))
}

impl CpuKernel for StepCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (m, prev) = (Matcher::new(inputs[0], &self.shape, self.op.min_offset), inputs[1]);
        let n = m.h * m.w;
        let best: Vec<_> =
            (0..n).into_par_iter().with_min_len(MIN_PIXELS).map(|p| self.op.best(&m, prev, p)).collect();
        m.field(outputs[0], best);
    }
    fn name(&self) -> &'static str {
        "parallel"
    }
}
