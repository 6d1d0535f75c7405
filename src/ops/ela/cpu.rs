//! ELA on the CPU backend: the round trip in bands of MCU rows on the pool, each band
//! [`jpeg_roundtrip`] of its rows with one MCU row of context above and below (the GPU path's
//! banding, `mcu_bands`): every block, chroma sample and upsampled pixel of a band's core rows
//! sees what it sees in the whole image, so the result is the reference's bit for bit.

use super::{jpeg_roundtrip, to_u8, Ela};
use crate::cpu::{CpuInput, CpuKernel};
use crate::ops::ela::bands;
use rayon::prelude::*;

/// Image rows per MCU row (4:2:0).
const MCU: usize = 16;
/// Fewest MCU rows per band: below this the two context rows cost more than the split gains.
const MIN_CORE: usize = 4;

pub(super) struct ElaCpu {
    quality: u32,
    h: usize,
    w: usize,
}

pub(super) fn kernel(e: &Ela, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    let x = inputs[0].shape;
    Some(Box::new(ElaCpu { quality: e.quality, h: x[2], w: x[3] }))
}

impl ElaCpu {
    /// Bands of `per` core MCU rows (one MCU row of context each side).
    fn bands(&self, per: usize) -> Vec<bands::Band> {
        bands::split(self.h.div_ceil(MCU), per, 1)
    }

    fn run_bands(&self, x: &[f32], y: &mut [f32], bands: &[bands::Band]) {
        let (h, w) = (self.h, self.w);
        let plane = h * w;
        for (x, y) in x.chunks(3 * plane).zip(y.chunks_mut(3 * plane)) {
            let orig: Vec<u8> = x.iter().map(|&v| to_u8(v)).collect();
            // Each band's core rows, channel by channel: |orig - round trip|.
            let parts: Vec<(usize, Vec<f32>)> = bands
                .par_iter()
                .map(|b| {
                    let (y0, y1) = (b.halo.start * MCU, (b.halo.end * MCU).min(h));
                    let (c0, c1) = (b.core.start * MCU, (b.core.end * MCU).min(h));
                    let rows = y1 - y0;
                    let sub: Vec<u8> = (0..3).flat_map(|c| &orig[c * plane + y0 * w..c * plane + y1 * w]).copied().collect();
                    let rt = jpeg_roundtrip(&sub, rows, w, self.quality);
                    let core: Vec<f32> = (0..3)
                        .flat_map(|c| {
                            let at = c * rows * w + (c0 - y0) * w;
                            sub[at..at + (c1 - c0) * w].iter().zip(&rt[at..at + (c1 - c0) * w])
                        })
                        .map(|(&a, &b)| (a as f32 - b as f32).abs())
                        .collect();
                    (c0, core)
                })
                .collect();
            for (c0, core) in parts {
                let n = core.len() / 3;
                for (c, part) in core.chunks_exact(n).enumerate() {
                    y[c * plane + c0 * w..][..n].copy_from_slice(part);
                }
            }
        }
    }
}

impl CpuKernel for ElaCpu {
    /// About one band per thread, of at least [`MIN_CORE`] MCU rows.
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let per = self.h.div_ceil(MCU).div_ceil(crate::cpu::threads()).max(MIN_CORE);
        self.run_bands(inputs[0], outputs[0], &self.bands(per))
    }
    fn name(&self) -> &'static str {
        "ela bands of MCU rows"
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::test_image;
    use super::*;
    use crate::ops::testing::check_cpu_kernel_bits;
    use crate::ops::Op;

    /// Against the reference, bit for bit: bands of 1, 2 and 3 MCU rows and the kernel's own
    /// choice, with the last MCU row partial (the image's own edge padding), widths not a
    /// multiple of 16, uniform noise, two samples.
    #[test]
    fn matches_reference_bit_for_bit() {
        for (i, &(h, w)) in [(9, 13), (64, 40), (150, 37), (200, 61), (131, 16)].iter().enumerate() {
            let x = test_image(2, h, w, 7 + i as u64, 6.0, i == 2);
            let op = Ela { quality: [90, 95, 75, 90, 50][i] };
            let want = op.reference(&[&x]).remove(0);
            let k = ElaCpu { quality: op.quality, h, w };
            for per in [1, 2, 3] {
                let mut y = vec![f32::NAN; want.numel()];
                k.run_bands(&x.data, &mut y, &k.bands(per));
                let same = y.iter().zip(&want.data).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{h} x {w}, bands of {per} MCU rows");
            }
            check_cpu_kernel_bits(&format!("{h} x {w}"), &op, &[&x]);
        }
    }
}
