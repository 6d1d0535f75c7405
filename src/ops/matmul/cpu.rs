//! matmul on the CPU backend: the shared GEMM ([`crate::cpu::gemm`]); a weight shared by every
//! batch item folds the batch into M (one large GEMM), other batches run one GEMM each (on the
//! pool, one per task, when there are enough of them); alpha, bias and activation are the folded
//! GEMM's tail ([`crate::cpu::gemm::Then::Tail`]: in its registers, or on each block of rows
//! while it is in cache), else one pass after.

use super::{batch_strides, MatMul, MAX_BATCH_RANK};
use crate::cpu::epilogue::{affine_act, Addend};
use crate::cpu::gemm::{sgemm, sgemm_serial, sgemm_t_then, sgemm_then, Bias, Mat, Tail, Then};
use crate::ops::act::Act;
use crate::cpu::{par_chunks, CpuInput, CpuKernel};
use crate::tensor::numel;
use rayon::prelude::*;

pub(super) struct MatMulCpu {
    p: MatMul,
    m: usize,
    k: usize,
    n: usize,
    /// Per output batch item: element offsets into a and b.
    offsets: Vec<(usize, usize)>,
    /// Every batch item reads the same b and consecutive a's: one GEMM of M = batch * m.
    folded: bool,
    /// `Some([planes, x, n])`: the folded product, `planes` blocks of `x` rows, is stored with
    /// each block transposed (a following transpose folded in by the CPU planner).
    transposed: Option<[usize; 3]>,
    /// `Some([planes, k, y])`: a is given as `planes` blocks of `k x y`, each the transpose of the
    /// block's `y` rows (a preceding transpose folded in by the CPU planner); folded products only.
    a_transposed: Option<[usize; 3]>,
}

pub(super) fn kernel(p: &MatMul, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    Some(Box::new(build(p, inputs)?))
}

/// The kernel writing the output, seen as `[B, X, Y]`, as `[B, Y, X]`: only for a folded product
/// whose blocks of `X` rows are the `B` planes (`Y` = n).
pub(super) fn kernel_transposed(p: &MatMul, inputs: &[CpuInput], bxy: [usize; 3]) -> Option<Box<dyn CpuKernel>> {
    let mut kern = build(p, inputs)?;
    let [planes, x, y] = bxy;
    let fits = kern.folded && planes * x == kern.offsets.len() * kern.m && y == kern.n;
    kern.transposed = Some(bxy).filter(|_| fits);
    kern.transposed.map(|_| Box::new(kern) as Box<dyn CpuKernel>)
}

/// The kernel reading a, seen as `[B, X, Y]`, from its `[B, Y, X]` transpose: only for a folded
/// product whose blocks of `Y` rows are the `B` planes (`X` = k).
pub(super) fn kernel_transposed_input(
    p: &MatMul,
    inputs: &[CpuInput],
    index: usize,
    bxy: [usize; 3],
) -> Option<Box<dyn CpuKernel>> {
    let mut kern = build(p, inputs)?;
    let [planes, x, y] = bxy;
    let fits = index == 0 && kern.folded && planes * y == kern.offsets.len() * kern.m && x == kern.k;
    kern.a_transposed = Some(bxy).filter(|_| fits);
    kern.a_transposed.map(|_| Box::new(kern) as Box<dyn CpuKernel>)
}

fn build(p: &MatMul, inputs: &[CpuInput]) -> Option<MatMulCpu> {
    let (a, b) = (inputs[0].shape, inputs[1].shape);
    let (batch, m, k, n) = p.dims(a, b).ok()?;
    let sa = batch_strides(&a[..a.len() - 2], &batch, m * k);
    let sb = batch_strides(&b[..b.len() - 2], &batch, k * n);
    let mut dims = [1usize; MAX_BATCH_RANK];
    dims[MAX_BATCH_RANK - batch.len()..].copy_from_slice(&batch);
    let offsets: Vec<(usize, usize)> = (0..numel(&batch))
        .map(|z| {
            let (mut r, mut oa, mut ob) = (z, 0, 0);
            for d in (0..MAX_BATCH_RANK).rev() {
                let i = r % dims[d];
                r /= dims[d];
                oa += i * sa[d];
                ob += i * sb[d];
            }
            (oa, ob)
        })
        .collect();
    let folded = offsets.iter().enumerate().all(|(z, &(oa, ob))| oa == z * m * k && ob == 0);
    Some(MatMulCpu { p: p.clone(), m, k, n, offsets, folded, transposed: None, a_transposed: None })
}

impl MatMulCpu {
    fn b_mat<'a>(&self, b: &'a [f32], ob: usize) -> Mat<'a> {
        if self.p.trans_b {
            Mat::t(&b[ob..], self.k)
        } else {
            Mat::rows(&b[ob..], self.n)
        }
    }
}

impl CpuKernel for MatMulCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (a, b) = (inputs[0], inputs[1]);
        let y = &mut *outputs[0];
        let (m, k, n) = (self.m, self.k, self.n);
        if y.is_empty() {
            return;
        }
        let (alpha, act, bias) = (self.p.alpha, self.p.act, inputs.get(2).copied());
        let tail = Then::Tail(Tail { alpha, bias: bias.map_or(Bias::None, Bias::Cols), act });
        if let Some([planes, x, _]) = self.transposed {
            for (z, yz) in y.chunks_mut(x * n).enumerate().take(planes) {
                sgemm_t_then(x, k, n, Mat::rows(&a[z * x * k..], k), self.b_mat(b, 0), yz, x, tail);
            }
            return;
        }
        if let Some([planes, _, rows]) = self.a_transposed {
            for (z, yz) in y.chunks_mut(rows * n).enumerate().take(planes) {
                let az = Mat::t(&a[z * k * rows..], rows);
                sgemm_then(rows, k, n, az, self.b_mat(b, 0), yz, n, false, tail);
            }
            return;
        }
        if self.folded {
            let rows = self.offsets.len() * m;
            sgemm_then(rows, k, n, Mat::rows(a, k), self.b_mat(b, 0), y, n, false, tail);
            return;
        } else if self.offsets.len() >= 2 * crate::cpu::threads() {
            y.par_chunks_mut(m * n).zip(&self.offsets).for_each(|(yz, &(oa, ob))| {
                sgemm_serial(m, k, n, Mat::rows(&a[oa..], k), self.b_mat(b, ob), yz, n, false);
            });
        } else {
            for (yz, &(oa, ob)) in y.chunks_mut(m * n).zip(&self.offsets) {
                sgemm(m, k, n, Mat::rows(&a[oa..], k), self.b_mat(b, ob), yz, n, false);
            }
        }
        if alpha != 1.0 || bias.is_some() || act != Act::None {
            let add = bias.map_or(Addend::None, Addend::Row);
            par_chunks(y, n, 1 << 14, |_, row| affine_act(act, row, alpha, add));
        }
    }
    fn name(&self) -> &'static str {
        match (self.transposed, self.a_transposed) {
            (Some(_), _) => "matmul gemm, transposed store",
            (_, Some(_)) => "matmul gemm, transposed a",
            _ => "matmul gemm",
        }
    }
}
