//! The ELA map on the CPU backend: rows on the pool for the channel maximum and the box sums
//! (separable: along rows, then down columns, edges replicated), an exact histogram of the sums
//! for the percentile (counts, not a sort), then the division. With integer inputs (ELA levels)
//! every sum is an exact integer, so the map is the reference's bit for bit; other inputs may
//! differ by the f32 rounding of the sums' order, as on the GPU.

use super::ElaMap;
use crate::cpu::{CpuInput, CpuKernel};
use rayon::prelude::*;

pub(super) struct ElaMapCpu {
    m: ElaMap,
    c: usize,
    h: usize,
    w: usize,
}

pub(super) fn kernel(m: &ElaMap, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    let x = inputs[0].shape;
    Some(Box::new(ElaMapCpu { m: m.clone(), c: x[1], h: x[2], w: x[3] }))
}

impl ElaMapCpu {
    /// The box sums of one sample's channel maximum into `out` (`h x w`).
    fn box_sums(&self, x: &[f32], out: &mut [f32]) {
        let (c, h, w, r) = (self.c, self.h, self.w, self.m.radius as usize);
        let plane = h * w;
        // Along rows: the channel maximum, replicated r past each edge, summed over 2r + 1.
        let mut along = vec![0.0f32; plane];
        along.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
            let mut padded = vec![0.0f32; w + 2 * r];
            for (i, v) in padded.iter_mut().enumerate() {
                let x0 = (i.saturating_sub(r)).min(w - 1);
                *v = (0..c).map(|k| x[k * plane + y * w + x0]).fold(f32::NEG_INFINITY, f32::max);
            }
            row.fill(0.0);
            for k in 0..=2 * r {
                for (o, v) in row.iter_mut().zip(&padded[k..]) {
                    *o += v;
                }
            }
        });
        // Down columns, rows clamped to the image.
        out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
            row.fill(0.0);
            for dy in 0..=2 * r {
                let src = (y + dy).saturating_sub(r).min(h - 1);
                for (o, v) in row.iter_mut().zip(&along[src * w..(src + 1) * w]) {
                    *o += v;
                }
            }
        });
    }

    /// The scale of one sample's sums: the histogram bin of the percentile's rank (the
    /// reference's sorted bins at that rank), at least the floor.
    fn scale(&self, sums: &[f32]) -> f32 {
        let bins = self.m.bins();
        let bin = |s: f32| s.floor().clamp(0.0, (bins - 1) as f32) as usize;
        let hist = sums
            .par_chunks(1 << 14)
            .fold(
                || vec![0usize; bins],
                |mut hist, part| {
                    part.iter().for_each(|&s| hist[bin(s)] += 1);
                    hist
                },
            )
            .reduce(|| vec![0usize; bins], |a, b| a.into_iter().zip(b).map(|(x, y)| x + y).collect());
        let rank = self.m.rank(sums.len());
        let mut seen = 0;
        let at = hist
            .iter()
            .position(|&count| {
                seen += count;
                seen >= rank
            })
            .unwrap_or(bins - 1);
        (at as f32).max(self.m.floor * self.m.taps() as f32)
    }
}

impl CpuKernel for ElaMapCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (c, h, w) = (self.c, self.h, self.w);
        for (x, y) in inputs[0].chunks(c * h * w).zip(outputs[0].chunks_mut(h * w)) {
            self.box_sums(x, y);
            let scale = self.scale(y);
            y.par_chunks_mut(1 << 14).for_each(|part| part.iter_mut().for_each(|s| *s = (*s / scale).min(1.0)));
        }
    }
    fn name(&self) -> &'static str {
        "ela_map separable box sums"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::check_cpu_kernel_bits;
    use crate::tensor::{Rng, Tensor};

    /// Against the reference, bit for bit, on integer levels (what ELA gives): one to four
    /// channels, radius 0 to 3, images narrower and shorter than the box, a sparse image whose
    /// percentile is under the floor, two samples.
    #[test]
    fn matches_reference_bit_for_bit_on_levels() {
        let seed = Rng::fresh_seed();
        let cases = [(1, 7, 5, 2, 0.99), (3, 40, 33, 2, 0.99), (4, 3, 2, 3, 0.5), (3, 64, 48, 0, 1.0), (2, 17, 90, 1, 0.9)];
        for (i, &(c, h, w, radius, percentile)) in cases.iter().enumerate() {
            let mut x = Tensor::random(&[2, c, h, w], seed + i as u64, -40.0, 60.0);
            x.data.iter_mut().for_each(|v| *v = v.max(0.0).round());
            let op = ElaMap { radius, percentile, floor: 3.0 };
            check_cpu_kernel_bits(&format!("case {i} (seed {seed})"), &op, &[&x]);
        }
    }
}
