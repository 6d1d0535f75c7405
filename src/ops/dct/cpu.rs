//! The DCT filter on the CPU backend: per plane, two GEMMs with the f32 DCT matrices (the same
//! ones the GPU path uses) forward, the mask, two back.

use super::{dct_matrix, DctFilter, DctMode};
use crate::cpu::gemm::{sgemm, Mat};
use crate::cpu::{with_scratch, CpuInput, CpuKernel, Scratch};

pub(super) struct DctCpu {
    f: DctFilter,
    h: usize,
    w: usize,
    dh: Vec<f32>,
    dw: Vec<f32>,
}

pub(super) fn kernel(f: &DctFilter, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    let x = inputs[0].shape;
    let (h, w) = (x[x.len() - 2], x[x.len() - 1]);
    Some(Box::new(DctCpu { f: f.clone(), h, w, dh: dct_matrix(h), dw: dct_matrix(w) }))
}

impl CpuKernel for DctCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (h, w) = (self.h, self.w);
        let (dh, dw) = (&self.dh[..], &self.dw[..]);
        let (rows, cols) = self.f.mask.zeroed(h, w);
        // Two planes of scratch: the half-way product and the coefficients.
        with_scratch(Scratch::Call, 2 * h * w, |buf| {
            let (t, coef) = buf.split_at_mut(h * w);
            for (x, y) in inputs[0].chunks(h * w).zip(outputs[0].chunks_mut(h * w)) {
                let mut cur: &[f32] = x;
                if self.f.mode != DctMode::Inverse {
                    // X = D_h x D_w^T, then the mask.
                    sgemm(h, w, w, Mat::rows(cur, w), Mat::t(dw, w), t, w, false);
                    sgemm(h, h, w, Mat::rows(dh, h), Mat::rows(t, w), coef, w, false);
                    for r in rows.clone() {
                        coef[r * w + cols.start..r * w + cols.end].fill(0.0);
                    }
                    cur = coef;
                }
                if self.f.mode == DctMode::Forward {
                    y.copy_from_slice(cur);
                    continue;
                }
                // x = D_h^T X D_w.
                sgemm(h, h, w, Mat::t(dh, h), Mat::rows(cur, w), t, w, false);
                sgemm(h, w, w, Mat::rows(t, w), Mat::rows(dw, w), y, w, false);
            }
        });
    }
    fn name(&self) -> &'static str {
        "dct gemm"
    }
}
