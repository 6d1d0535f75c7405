//! zernike on the CPU backend: per output row, the disks of its pixels as im2col columns
//! (`p x p` taps by `W` pixels, zero outside the image), times the `24 x p*p` basis through the
//! shared GEMM, then the 12 magnitudes; rows run in parallel on the pool.

use super::{zernike_basis, ZernikeMagnitudes};
use crate::cpu::gemm::{sgemm_serial, Mat};
use crate::cpu::{CpuInput, CpuKernel};
use rayon::prelude::*;

pub(super) struct ZernikeCpu {
    radius: usize,
    h: usize,
    w: usize,
    /// The basis as a `[24, p * p]` row-major matrix (real parts, then imaginary).
    basis: Vec<f32>,
}

pub(super) fn kernel(op: &ZernikeMagnitudes, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    let &[_, _, h, w] = inputs.first()?.shape else { return None };
    Some(Box::new(ZernikeCpu { radius: op.radius, h, w, basis: zernike_basis(op.radius).data }))
}

impl CpuKernel for ZernikeCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (x, (h, w)) = (inputs[0], (self.h, self.w));
        let r = self.radius as isize;
        let taps = (2 * self.radius + 1).pow(2);
        let p = 2 * r + 1;
        // Each row's 12 magnitude rows, [12, W].
        let rows: Vec<Vec<f32>> = (0..h)
            .into_par_iter()
            .map(|y| {
                let mut cols = vec![0.0f32; taps * w];
                for i in 0..p {
                    let sy = y as isize + i - r;
                    if sy < 0 || sy >= h as isize {
                        continue;
                    }
                    let src = &x[sy as usize * w..(sy as usize + 1) * w];
                    for j in 0..p {
                        let dst = &mut cols[(i * p + j) as usize * w..][..w];
                        // Pixel q reads column q + j - r of the source row, when inside it.
                        let shift = j - r;
                        let lo = (-shift).max(0) as usize;
                        let hi = (w as isize - shift).clamp(0, w as isize) as usize;
                        if lo < hi {
                            let s0 = (lo as isize + shift) as usize;
                            dst[lo..hi].copy_from_slice(&src[s0..s0 + (hi - lo)]);
                        }
                    }
                }
                let mut acc = vec![0.0f32; 24 * w];
                sgemm_serial(24, taps, w, Mat::rows(&self.basis, taps), Mat::rows(&cols, w), &mut acc, w, false);
                let mut mags = vec![0.0f32; 12 * w];
                for k in 0..12 {
                    let (re, im) = (&acc[k * w..][..w], &acc[(12 + k) * w..][..w]);
                    for (m, (a, b)) in mags[k * w..][..w].iter_mut().zip(re.iter().zip(im)) {
                        *m = a.hypot(*b);
                    }
                }
                mags
            })
            .collect();
        let out = &mut *outputs[0];
        for (y, mags) in rows.iter().enumerate() {
            for k in 0..12 {
                out[(k * h + y) * w..][..w].copy_from_slice(&mags[k * w..][..w]);
            }
        }
    }
    fn name(&self) -> &'static str {
        "im2col-gemm"
    }
}
