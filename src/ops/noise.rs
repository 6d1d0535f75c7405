//! Noise-inconsistency map (after Mahdian & Saic, "Using noise inconsistencies for blind image
//! forensics", 2009): `[N, 3, H, W]` RGB in 0..255 to `[N, 1, H, W]` in [0, 1).
//!
//! ```text
//! Y        = 0.299 R + 0.587 G + 0.114 B                       (f32, not rounded)
//! HH(i, j) = (Y(2i,2j) - Y(2i,2j+1) - Y(2i+1,2j) + Y(2i+1,2j+1)) / 2   one-level orthonormal Haar,
//!            on the floor(H/2) x floor(W/2) full 2 x 2 cells (an odd last row/column is left out)
//! sigma_b  = median(|HH| over block b) / 0.6745                  (MAD estimator, Donoho)
//!            blocks of `block / 2` x `block / 2` HH coefficients (`block` x `block` pixels, no
//!            overlap); blocks at the right and bottom edge may be partial and use what they have
//! M        = median over the blocks of sigma_b                   (per sample)
//! p        = d / (d + M + 1e-3),  d = |sigma_b - M|              for every pixel of block b
//! ```
//! `p` is the relative deviation `r = d / M` mapped to `r / (1 + r)`: 0 where the block's noise
//! matches the image's, 0.5 at twice (or, from below, at zero) noise, -> 1 far above. It needs no
//! second global reduction, does not depend on the image's overall noise level, and is bounded.
//! The `1e-3` (levels) keeps a noiseless image at 0 instead of 0/0. Pixels map to blocks by
//! nearest (`HH(min(y/2, Hh-1), min(x/2, Wh-1))`'s block). Images with H or W < 2 have no HH
//! coefficient and give an all-zero map.
//!
//! Medians are exact: even counts average the two middle values (as numpy). Per block, each GPU
//! invocation sorts its <= 256 values in a private array; the image median is an exact radix
//! select (4 passes of 8 bits over the f32 bit patterns) in one workgroup per sample. GPU and CPU
//! differ only by the f32 rounding of the luminance and HH (a fused multiply-add), ~1e-6 relative.
//!
//! Images over one storage binding: the sigmas are computed in bands of block rows
//! (`block_bands`; blocks are disjoint, so no context) and the map in binding-sized runs of the
//! output, inside [`NoiseMap`]'s `plan`; the median is always over all blocks, and the map is the
//! whole image's, bit for bit.

use crate::error::Result;
use crate::kernel;
use crate::ops::ela::bands;
use crate::ops::{groups, Bind, Op, PlanCtx, TensorView};
use crate::tensor::{Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("noise")];

#[derive(Clone, Debug)]
pub struct NoiseMap {
    /// Block side in pixels: even, 4..=32 (default 16).
    pub block: usize,
}

impl Default for NoiseMap {
    fn default() -> Self {
        NoiseMap { block: 16 }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct NoiseParams {
    h: u32,
    w: u32,
    hh: u32,
    wh: u32,
    b: u32,
    nbx: u32,
    nblocks: u32,
    n: u32,
    row0: u32,
    first: u32,
    s: u32,
    _p0: u32,
    xb: [u32; 3],
    ob: u32,
}

/// The block rows of an image with `nby` block rows of `block` pixel rows and width `w`, in
/// bands whose channel windows (a band's pixel rows) fit `room` elements: one band when all
/// fit. Blocks are disjoint, so bands need no context. `None` when one block row does not fit.
pub(crate) fn block_bands(nby: usize, block: usize, w: usize, room: usize) -> Option<Vec<bands::Band>> {
    let per = room / (block * w);
    (per > 0).then(|| bands::split(nby, per, 0))
}

/// Block grid of an `h x w` image with `block`-pixel blocks: (HH rows, HH cols, side, across, down).
fn grid(h: usize, w: usize, block: usize) -> (usize, usize, usize, usize, usize) {
    let (hh, wh, b) = (h / 2, w / 2, block / 2);
    (hh, wh, b, wh.div_ceil(b), hh.div_ceil(b))
}

/// Exact median, averaging the two middle values of an even count (f32, as the kernels).
fn median(v: &mut [f32]) -> f32 {
    v.sort_by(f32::total_cmp);
    (v[(v.len() - 1) / 2] + v[v.len() / 2]) * 0.5
}

/// CPU reference of the per-block noise sigmas of one planar RGB image, row-major over blocks.
pub fn block_sigmas(rgb: &[f32], h: usize, w: usize, block: usize) -> Vec<f32> {
    let nby = grid(h, w, block).4;
    (0..nby).flat_map(|by| block_row_sigmas(rgb, h, w, block, by)).collect()
}

/// The sigmas of block row `by` (every block of it, left to right).
fn block_row_sigmas(rgb: &[f32], h: usize, w: usize, block: usize, by: usize) -> Vec<f32> {
    let (hh, wh, b, nbx, _) = grid(h, w, block);
    let luma = |y: usize, x: usize| {
        0.299 * rgb[y * w + x] + 0.587 * rgb[h * w + y * w + x] + 0.114 * rgb[2 * h * w + y * w + x]
    };
    let mut out = Vec::with_capacity(nbx);
    for bx in 0..nbx {
        let mut v = Vec::new();
        for i in by * b..((by + 1) * b).min(hh) {
            for j in bx * b..((bx + 1) * b).min(wh) {
                let (a, bb) = (luma(2 * i, 2 * j), luma(2 * i, 2 * j + 1));
                let (c, d) = (luma(2 * i + 1, 2 * j), luma(2 * i + 1, 2 * j + 1));
                v.push(((a - bb - c + d) * 0.5).abs());
            }
        }
        out.push(median(&mut v) / 0.6745);
    }
    out
}

impl Op for NoiseMap {
    fn kind(&self) -> &'static str {
        "noise_map"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        if !self.block.is_multiple_of(2) || !(4..=32).contains(&self.block) {
            return Err(format!("block must be even and in 4..=32 pixels, got {}", self.block));
        }
        match inputs {
            [x] if x.len() == 4 && x[1] == 3 && x.iter().all(|&d| d > 0) => Ok(vec![vec![x[0], 1, x[2], x[3]]]),
            [x] => Err(format!("needs an RGB image [N, 3, H, W] with non-empty dimensions, got {x:?}")),
            _ => Err(format!("takes 1 input, got {}", inputs.len())),
        }
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::kernel(self, inputs)
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let x = inputs[0];
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3]);
        let (hh, wh, b, nbx, _) = grid(h, w, self.block);
        let mut data = Vec::with_capacity(n * h * w);
        for sample in x.data.chunks(3 * h * w) {
            if hh == 0 || wh == 0 {
                data.extend(std::iter::repeat_n(0.0, h * w));
                continue;
            }
            let sig = block_sigmas(sample, h, w, self.block);
            let m = median(&mut sig.clone());
            data.extend((0..h * w).map(|p| {
                let (i, j) = ((p / w / 2).min(hh - 1), (p % w / 2).min(wh - 1));
                let d = (sig[(i / b) * nbx + j / b] - m).abs();
                d / (d + m + 1e-3)
            }));
        }
        vec![Tensor { shape: vec![n, 1, h, w], data }]
    }
    /// Per sample, `sigma` in bands of block rows (see `block_bands`; each channel's rows
    /// bound as their own window) writes every block's sigma; `median` takes each sample's
    /// median over all its blocks (the sigmas, 1/64 of the pixels with 16-pixel blocks and
    /// 1/16 with 4, stay in one binding); `map` writes the output in binding-sized runs. Every
    /// block sees the same pixels as in the whole image, so the map is the same bit for bit.
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let (x, y) = (&inputs[0], &outputs[0]);
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3]);
        let (hh, wh, b, nbx, nby) = grid(h, w, self.block);
        let nblocks = nbx * nby;
        let (limit, room, align) = bands::budget(ctx);
        let bands = match block_bands(nby, self.block, w, room) {
            Some(b) => b,
            None if nblocks == 0 => Vec::new(),
            None => {
                let what = format!("a row of {}-pixel blocks of a {w}-pixel-wide image", self.block);
                return Err(bands::too_large(ctx, &what, self.block * w + align, limit));
            }
        };
        if n * nblocks > limit {
            return Err(bands::too_large(ctx, "the block sigmas", n * nblocks, limit));
        }
        bands::check_u32(ctx, "map elements", n * h * w)?;
        let sig = ctx.scratch(n * nblocks)?;
        let med = ctx.scratch(n)?;
        let u = NoiseParams {
            h: h as u32,
            w: w as u32,
            hh: hh as u32,
            wh: wh as u32,
            b: b as u32,
            nbx: nbx as u32,
            nblocks: nblocks as u32,
            n: 0,
            row0: 0,
            first: 0,
            s: 0,
            _p0: 0,
            xb: [0; 3],
            ob: 0,
        };
        if nblocks > 0 {
            let p = ctx.pipeline(&KERNELS[0], "sigma", &[])?;
            for s in 0..n {
                for band in &bands {
                    // The band's pixel rows: 2 per HH row (an odd last image row is not used).
                    let rows = band.core.start * self.block..(band.core.end * self.block).min(2 * hh);
                    let (xs, xb) = bands::channel_rows(x, s, [0, 1, 2], &rows, align);
                    let items = band.core.len() * nbx;
                    let params = NoiseParams {
                        n: items as u32,
                        row0: rows.start as u32,
                        first: (band.core.start * nbx) as u32,
                        s: s as u32,
                        xb,
                        ..u
                    };
                    let binds = [&xs[0], &xs[1], &xs[2], &sig].map(Bind::Tensor);
                    ctx.dispatch_linear(&p, &bands::with_uniform(&params, binds), groups(items, 64))?;
                }
            }
            let p = ctx.pipeline(&KERNELS[0], "median", &[])?;
            let binds = [Bind::Tensor(&sig), Bind::Tensor(&med)];
            ctx.dispatch(&p, &bands::with_uniform(&NoiseParams { n: n as u32, ..u }, binds), [n as u32, 1, 1])?;
        }
        let p = ctx.pipeline(&KERNELS[0], "map", &[])?;
        for run in bands::runs(n * h * w, room / align * align) {
            let (ys, ob) = bands::window(y, run.start, run.len(), align);
            let params = NoiseParams { n: run.len() as u32, first: run.start as u32, ob, ..u };
            let binds = [Bind::Tensor(&sig), Bind::Tensor(&med), Bind::Tensor(&ys)];
            ctx.dispatch_linear(&p, &bands::with_uniform(&params, binds), groups(run.len(), 64))?;
        }
        Ok(())
    }
}

mod cpu;
#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::ela::bands::testing::{align, limit_for_room, run_counted};
    use crate::ops::testing::{check_op, run_on_gpu};
    use crate::ops::window::test_limit;
    use crate::tensor::{check_close, Rng};

    /// Gray gradient plus Gaussian noise of `sigma` levels (the same in R, G and B, so the
    /// luminance noise is `sigma` too).
    pub(crate) fn noisy_gray(h: usize, w: usize, sigma: f32, seed: u64) -> Tensor {
        let mut rng = Rng::new(seed);
        let mut t = Tensor::zeros(&[1, 3, h, w]);
        for i in 0..h * w {
            let (u1, u2) = (rng.next_f32().max(1e-7), rng.next_f32());
            let g = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
            let v = 60.0 + 120.0 * (i % w) as f32 / w as f32 + sigma * g;
            for c in 0..3 {
                t.data[c * h * w + i] = v;
            }
        }
        t
    }

    #[test]
    fn random_inputs_match_reference() {
        let seed = Rng::fresh_seed();
        let shapes: &[&[usize]] =
            &[&[1, 3, 1, 1], &[1, 3, 9, 17], &[2, 3, 29, 37], &[1, 3, 1, 40], &[1, 3, 70, 51], &[1, 3, 3, 3]];
        for (i, s) in shapes.iter().enumerate() {
            let x = Tensor::random(s, seed + i as u64, 0.0, 255.0);
            for block in [4, 16, 32] {
                check_op(
                    &format!("noise block {block} {s:?} seed {seed}"),
                    &NoiseMap { block },
                    std::slice::from_ref(&x),
                    1e-4,
                );
            }
        }
    }

    #[test]
    fn sigma_estimates_gaussian_noise() {
        let seed = Rng::fresh_seed();
        for sigma in [2.0f32, 8.0] {
            let x = noisy_gray(96, 128, sigma, seed);
            let m = median(&mut block_sigmas(&x.data, 96, 128, 32));
            assert!((m / sigma - 1.0).abs() < 0.1, "seed {seed}: sigma {sigma} estimated as {m}");
        }
    }

    #[test]
    fn uniform_noise_gives_a_flat_low_map() {
        let seed = Rng::fresh_seed();
        let y = run_on_gpu(&NoiseMap::default(), &[noisy_gray(128, 96, 5.0, seed)]).unwrap().remove(0);
        let mean = y.data.iter().sum::<f32>() / y.numel() as f32;
        // The MAD estimate of 64 coefficients scatters by ~15% around the truth, so a homogeneous
        // image still scores ~0.1 on average (~0.1 = 0.13 / 1.13).
        assert!(mean < 0.15, "seed {seed}: mean {mean} on homogeneous noise");
    }

    /// Over one binding the sigmas are computed in bands of block rows (blocks are disjoint: no
    /// context), the median is over all blocks, and the output is written in runs; the map is
    /// the whole image's, bit for bit. The binding limit is shrunk so small images split: `k`
    /// block rows per band, a short last band (partial blocks, an odd last row), widths off the
    /// alignment, 2 samples, and an image without HH coefficients (output runs only).
    #[test]
    fn banded_map_is_the_whole_image_one() {
        let seed = Rng::fresh_seed();
        // (shape, block, block rows per band, bands)
        let cases: &[(&[usize], usize, usize, usize)] = &[
            (&[1, 3, 70, 51], 4, 2, 9),
            (&[2, 3, 61, 45], 16, 1, 4),
            (&[1, 3, 128, 100], 32, 3, 2),
            (&[1, 3, 9, 17], 4, 1, 2),
            (&[1, 3, 1, 40], 16, 1, 0),
        ];
        for (i, &(shape, block, k, nb)) in cases.iter().enumerate() {
            let x = Tensor::random(shape, seed + i as u64, 0.0, 255.0);
            let op = NoiseMap { block };
            let case = format!("noise block {block} {shape:?}, {k} block rows per band, seed {seed}");
            let (n, h, w) = (shape[0], shape[2], shape[3]);
            let (whole, d1) = run_counted(&op, &x).unwrap();
            let median = (nb > 0) as usize;
            assert_eq!(d1, n * median + median + 1, "{case}: unbanded dispatches");
            // Windows of k block rows, plus the alignment (block rows of >= 64 elements keep the
            // count from growing with an alignment up to 256 bytes).
            let limit = limit_for_room(k * block * w);
            let (_, _, _, _, nby) = grid(h, w, block);
            let bands = block_bands(nby, block, w, limit - align()).unwrap();
            assert_eq!(bands.len(), nb, "{case}: {bands:?}");
            let _limit = test_limit(limit);
            let (banded, d) = run_counted(&op, &x).unwrap();
            let runs = (n * h * w).div_ceil(limit - align());
            assert_eq!(d, n * nb + median + runs, "{case}: dispatches");
            assert_eq!(banded.data, whole.data, "{case}: banded differs from the whole image");
            check_close(&case, &banded, &op.reference(&[&x]).remove(0), 1e-4).unwrap();
        }
        let _limit = test_limit(16 * 40);
        let e = run_counted(&NoiseMap::default(), &Tensor::random(&[1, 3, 64, 40], seed, 0.0, 255.0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("storage binding") && e.contains("16-pixel blocks of a 40-pixel-wide"), "{e}");
    }

    #[test]
    fn bad_blocks_are_refused() {
        for block in [0, 3, 2, 34] {
            assert!(NoiseMap { block }.infer(&[&[1, 3, 8, 8]]).is_err(), "block {block}");
        }
        assert!(NoiseMap::default().infer(&[&[1, 1, 8, 8]]).is_err());
    }
}
