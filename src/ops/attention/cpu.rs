//! Attention on the CPU backend: per (batch, head, block of query rows) task, scores through the
//! GEMM (`Q K^T`), a fused scale + softmax over each row in place, then `P V` through the GEMM
//! straight into the head's columns of the output.

use super::Attention;
use crate::cpu::gemm::{sgemm_into, sgemm_serial, Mat};
use crate::cpu::{CpuInput, CpuKernel};
use rayon::prelude::*;

/// Query rows per task.
const ROWS: usize = 128;

pub(super) struct AttnCpu {
    scale: f32,
    heads: usize,
    /// (batch, lq, lk, d, dv)
    dims: (usize, usize, usize, usize, usize),
}

pub(super) fn kernel(a: &Attention, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    let dims = a.dims(inputs[0].shape, inputs[1].shape, inputs[2].shape);
    Some(Box::new(AttnCpu { scale: a.scale, heads: a.heads, dims }))
}

crate::multiversion!(
    /// `row = softmax(scale * row)`, in place, in f32 with the max subtracted first.
    fn softmax_scaled(row: &mut [f32], scale: f32) => softmax_scaled_any
);

/// Lanes of the max and sum reductions: a sequential f32 sum cannot be vectorized (its order is
/// fixed), 16 running sums can.
const LANES: usize = 16;

#[inline(always)]
fn softmax_scaled_any(row: &mut [f32], scale: f32) {
    let mut maxes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (m, &v) in maxes.iter_mut().zip(c) {
            *m = m.max(v * scale);
        }
    }
    let max = chunks.remainder().iter().fold(maxes.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)), |m, &v| m.max(v * scale));
    row.iter_mut().for_each(|v| *v = crate::ops::act::exp_fast(*v * scale - max));
    let mut sums = [0.0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (s, &v) in sums.iter_mut().zip(c) {
            *s += v;
        }
    }
    let sum = chunks.remainder().iter().sum::<f32>() + sums.iter().sum::<f32>();
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl CpuKernel for AttnCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (q, k, v) = (inputs[0], inputs[1], inputs[2]);
        let out = &mut *outputs[0];
        let (b, lq, lk, d, dv) = self.dims;
        let h = self.heads;
        if out.is_empty() {
            return;
        }
        if lk == 0 {
            out.fill(f32::NAN); // softmax over no keys: 0 / 0, as the reference
            return;
        }
        let blocks = lq.div_ceil(ROWS);
        let len = out.len();
        let ptr = OutPtr(out.as_mut_ptr());
        (0..b * h * blocks).into_par_iter().for_each_init(
            || vec![0.0f32; ROWS * lk],
            |scores, t| {
                let (bi, hi, blk) = (t / (h * blocks), (t / blocks) % h, t % blocks);
                let r0 = blk * ROWS;
                let rows = ROWS.min(lq - r0);
                let s = &mut scores[..rows * lk];
                let qm = Mat { data: &q[(bi * lq + r0) * h * d + hi * d..], rs: h * d, cs: 1 };
                let kt = Mat { data: &k[bi * lk * h * d + hi * d..], rs: 1, cs: h * d };
                sgemm_serial(rows, d, lk, qm, kt, s, lk, false);
                s.chunks_mut(lk).for_each(|row| softmax_scaled(row, self.scale));
                let vm = Mat { data: &v[bi * lk * h * dv + hi * dv..], rs: h * dv, cs: 1 };
                let start = (bi * lq + r0) * h * dv + hi * dv;
                let span = (rows - 1) * h * dv + dv;
                assert!(start + span <= len);
                let p = ptr;
                // SAFETY: tasks write disjoint (batch, rows, head) blocks: rows r0 .. r0 + rows of
                // batch bi, columns hi * dv .. (hi + 1) * dv, inside `out` (checked above).
                unsafe { sgemm_into(rows, lk, dv, Mat::rows(s, lk), vm, p.0.add(start), h * dv) };
            },
        );
    }
    fn name(&self) -> &'static str {
        "attention gemm + softmax"
    }
}
