//! The noise map on the CPU backend: the reference's per-block sigmas, block rows on the pool,
//! its median over all blocks, then the map rows on the pool: the same operations, so the same
//! bits.

use super::{block_row_sigmas, grid, median, NoiseMap};
use crate::cpu::{CpuInput, CpuKernel};
use rayon::prelude::*;

pub(super) struct NoiseCpu {
    block: usize,
    h: usize,
    w: usize,
}

pub(super) fn kernel(m: &NoiseMap, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    let x = inputs[0].shape;
    Some(Box::new(NoiseCpu { block: m.block, h: x[2], w: x[3] }))
}

impl CpuKernel for NoiseCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (h, w) = (self.h, self.w);
        let (hh, wh, b, nbx, nby) = grid(h, w, self.block);
        for (x, y) in inputs[0].chunks(3 * h * w).zip(outputs[0].chunks_mut(h * w)) {
            if hh == 0 || wh == 0 {
                y.fill(0.0);
                continue;
            }
            let sig: Vec<f32> =
                (0..nby).into_par_iter().flat_map_iter(|by| block_row_sigmas(x, h, w, self.block, by)).collect();
            let m = median(&mut sig.clone());
            y.par_chunks_mut(w).enumerate().for_each(|(row, out)| {
                let i = (row / 2).min(hh - 1);
                for (col, v) in out.iter_mut().enumerate() {
                    let d = (sig[(i / b) * nbx + (col / 2).min(wh - 1) / b] - m).abs();
                    *v = d / (d + m + 1e-3);
                }
            });
        }
    }
    fn name(&self) -> &'static str {
        "noise_map block rows"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::check_cpu_kernel_bits;
    use crate::tensor::{Rng, Tensor};

    /// Against the reference, bit for bit: blocks of 4 to 32 pixels, partial edge blocks, odd
    /// sizes, an image with no full 2 x 2 cell, two samples.
    #[test]
    fn matches_reference_bit_for_bit() {
        let seed = Rng::fresh_seed();
        for (i, &(h, w, block)) in [(37, 53, 16), (64, 64, 4), (9, 130, 32), (1, 20, 8), (100, 31, 6)].iter().enumerate() {
            let x = Tensor::random(&[2, 3, h, w], seed + i as u64, 0.0, 255.0);
            check_cpu_kernel_bits(&format!("case {i} (seed {seed})"), &NoiseMap { block }, &[&x]);
        }
    }
}
