//! Attention on the CPU backend: each head's `K^T` and `V` prepared for the GEMM once (packed
//! into our kernel's panels), then per (batch, head, block of query rows) task the scaled scores
//! through the GEMM (`scale * Q K^T`, the scale applied in its registers), a softmax over each
//! row in place, then `P V` through the GEMM straight into the head's columns of the output.

use super::Attention;
use crate::cpu::gemm::{Mat, PackedRhs, Tail};
use crate::cpu::{with_scratch, CpuInput, CpuKernel, Scratch};
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

/// `row = softmax(row)`, in place, in f32 with the max subtracted first: on AVX-512 in three
/// passes of 16 lanes ([`softmax_avx512`]; through `exp_fast` a fifth of attention's time), else
/// through [`exp_fast`](crate::ops::act::exp_fast) compiled for the widest ISA.
pub(crate) fn softmax(row: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { softmax_avx512(row) };
    }
    softmax_isa(row)
}

crate::multiversion!(fn softmax_isa(row: &mut [f32]) => softmax_any);

/// The max, then `e^(x - max)` and its sum (16 running sums), then the scale by `1 / sum`.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn softmax_avx512(row: &mut [f32]) {
    use crate::cpu::epilogue::exp_nonpositive_zmm;
    use std::arch::x86_64::*;
    let (p, n) = (row.as_mut_ptr(), row.len());
    // Plain loops: an iterator of (offset, mask) pairs was not inlined here (a call per 16 floats).
    let tail = ((1u32 << (n % 16)) - 1) as __mmask16;
    let mask = |j: usize| if n - j >= 16 { !0 } else { tail };
    let mut maxes = _mm512_set1_ps(f32::NEG_INFINITY);
    let mut j = 0;
    while j < n {
        maxes = _mm512_max_ps(maxes, _mm512_mask_loadu_ps(maxes, mask(j), p.add(j)));
        j += 16;
    }
    let max = _mm512_set1_ps(_mm512_reduce_max_ps(maxes));
    let mut sums = _mm512_setzero_ps();
    j = 0;
    while j < n {
        let m = mask(j);
        let e = exp_nonpositive_zmm(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p.add(j)), max));
        _mm512_mask_storeu_ps(p.add(j), m, e);
        sums = _mm512_add_ps(sums, _mm512_maskz_mov_ps(m, e));
        j += 16;
    }
    let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sums));
    j = 0;
    while j < n {
        let m = mask(j);
        _mm512_mask_storeu_ps(p.add(j), m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p.add(j)), inv));
        j += 16;
    }
}

/// Lanes of the max and sum reductions: a sequential f32 sum cannot be vectorized (its order is
/// fixed), 16 running sums can.
const LANES: usize = 16;

#[inline(always)]
fn softmax_any(row: &mut [f32]) {
    let mut maxes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (m, &v) in maxes.iter_mut().zip(c) {
            *m = m.max(v);
        }
    }
    let max = chunks.remainder().iter().fold(maxes.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)), |m, &v| m.max(v));
    row.iter_mut().for_each(|v| *v = crate::ops::act::exp_fast(*v - max));
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
        // Per (batch, head): K^T (d x lk) and V (lk x dv), strided views of the inputs.
        let heads: Vec<(PackedRhs, PackedRhs)> = (0..b * h)
            .into_par_iter()
            .map(|t| {
                let (bi, hi) = (t / h, t % h);
                let kt = Mat { data: &k[bi * lk * h * d + hi * d..], rs: 1, cs: h * d };
                let vm = Mat { data: &v[bi * lk * h * dv + hi * dv..], rs: h * dv, cs: 1 };
                (PackedRhs::new(d, lk, kt), PackedRhs::new(lk, dv, vm))
            })
            .collect();
        (0..b * h * blocks).into_par_iter().for_each(|t| {
            with_scratch(Scratch::Task, ROWS * lk, |scores| {
                let (bi, hi, blk) = (t / (h * blocks), (t / blocks) % h, t % blocks);
                let (kt, vm) = &heads[bi * h + hi];
                let r0 = blk * ROWS;
                let rows = ROWS.min(lq - r0);
                let s = &mut scores[..rows * lk];
                let qm = Mat { data: &q[(bi * lq + r0) * h * d + hi * d..], rs: h * d, cs: 1 };
                // SAFETY: `s` holds rows x lk floats; the operands' bounds are checked.
                unsafe { kt.product_into(rows, qm, s.as_mut_ptr(), lk, Tail::scale(self.scale)) };
                s.chunks_mut(lk).for_each(softmax);
                let start = (bi * lq + r0) * h * dv + hi * dv;
                let span = (rows - 1) * h * dv + dv;
                assert!(start + span <= len);
                let p = ptr;
                // SAFETY: tasks write disjoint (batch, rows, head) blocks: rows r0 .. r0 + rows of
                // batch bi, columns hi * dv .. (hi + 1) * dv, inside `out` (checked above).
                unsafe { vm.product_into(rows, Mat::rows(s, lk), p.0.add(start), h * dv, Tail::scale(1.0)) };
            })
        });
    }
    fn name(&self) -> &'static str {
        "attention gemm + softmax"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{Rng, Tensor};

    /// Both softmax paths agree within 2e-6 (relative to the row's largest) on rows around the
    /// 16 lanes, with -inf entries and logits up to +-80; each row sums to 1.
    #[test]
    fn softmax_paths_agree() {
        let seed = Rng::fresh_seed();
        for (i, n) in [1, 2, 15, 16, 17, 33, 256, 300].into_iter().enumerate() {
            let mut row = Tensor::random(&[n], seed ^ i as u64, -80.0, 80.0).data;
            if n > 2 {
                row[1] = f32::NEG_INFINITY;
            }
            let mut want = row.clone();
            softmax_isa(&mut want);
            let mut got = row.clone();
            softmax(&mut got);
            let top = want.iter().fold(0.0f32, |m, &v| m.max(v));
            for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= 2e-6 * top, "n {n} at {j}: {g} vs {w} (seed {seed})");
            }
            let sum: f32 = got.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "n {n}: sum {sum} (seed {seed})");
        }
    }
}
