//! conv2d on the CPU backend, one path per shape family (chosen in `run`):
//! - 3x3 stride-1 convs with 32+ channels each side: Winograd F(2x2, 3x3) (`winograd.rs`);
//! - depthwise: direct loops (stride 1: each tap over whole zero-padded frames of rows);
//! - few output channels (< 32): the product reads the input rows in place, one task per output
//!   row, through the register-strip GEMM (`sgemm_few_rows_at`);
//! - the rest: GEMM per group, 1x1 / stride 1 / no padding straight on the input, other shapes
//!   through im2col, in tasks of a block of output pixels.
//!
//! Every path ends each block with its bias and activation while it is in cache. Constant
//! weights are prepacked at plan time (`[O, C/g * kh * kw]` rows, or Winograd's transform).
//! A conv planned between two transposes reads and writes tokens instead (`tokens.rs`).

use crate::cpu::epilogue::{affine_act, Addend};
use super::depthwise::{self, Path, PlaneGeom};
use super::winograd::{self, Winograd};
use super::{dims4, Conv2d};
use crate::cpu::gemm::{sgemm_few_rows_at, sgemm_into, Bias, Mat, PackedWeight, Tail, FEW_ROWS};
use crate::cpu::{par_chunks, valid_run, with_scratch, CpuInput, CpuKernel, Scratch, SendPtr};
use crate::ops::act::Act;
use rayon::prelude::*;

/// Floats of one task's im2col block (K rows x P pixels), 1 MiB: it is still in L2 when the GEMM
/// packs it (blocks of 8 MiB for the whole pool ran Mesorch's gate convs at half the GEMM's rate).
const COL_BLOCK: usize = 1 << 18;
/// Fewest pixels per task: below this the GEMM's per-call packing of the weight dominates.
const MIN_BLOCK: usize = 64;

pub(super) struct ConvCpu {
    p: Conv2d,
    x: [usize; 4],
    /// [C/g, kh, kw, O]
    w: [usize; 4],
    y: [usize; 4],
    /// The weight as `[O, K]` rows (K = C/g * kh * kw) when it is a constant.
    packed: Option<Vec<f32>>,
    /// Winograd's transformed weight when the conv is a constant 3x3 stride-1 one with enough
    /// channels (then `packed` is not kept).
    wino: Option<Winograd>,
    /// The constant weight (`[K, O]`) packed as the right operand of products with a block's
    /// pixels as rows, for ungrouped convs with few output channels (then `packed` is not kept).
    pixel_rows: Option<PackedWeight>,
}

/// Most output channels for which the GEMM path takes a block's pixels as the product's rows
/// and stores it transposed (the weight packed once at plan time, no packing per task): with
/// few channels as rows (MiT's patch embeddings and spatial reductions: 64-128) the product had
/// only 5-11 strips of 12 to share each packed block of pixels.
const PIXEL_ROWS_MAX_O: usize = 128;

/// The input `[N, C, H, W]`, the packed weight's `[C/g, kh, kw, O]` and the output
/// `[N, O, Ho, Wo]` (the shapes were checked by the op's shape rule).
pub(super) fn geometry(p: &Conv2d, inputs: &[CpuInput]) -> Option<([usize; 4], [usize; 4], [usize; 4])> {
    let x = dims4(inputs[0].shape)?;
    let w = dims4(inputs[1].shape)?;
    let ([n, _, h, wd], [_, kh, kw, o]) = (x, w);
    let ho = (h + 2 * p.padding[0] - p.dilation[0] * (kh - 1) - 1) / p.stride[0] + 1;
    let wo = (wd + 2 * p.padding[1] - p.dilation[1] * (kw - 1) - 1) / p.stride[1] + 1;
    Some((x, w, [n, o, ho, wo]))
}

pub(super) fn kernel(p: &Conv2d, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    Some(Box::new(ConvCpu::new(p, inputs)?))
}

impl ConvCpu {
    fn new(p: &Conv2d, inputs: &[CpuInput]) -> Option<ConvCpu> {
        let (x, w, y) = geometry(p, inputs)?;
        let [_, c, ..] = x;
        let [cg, kh, kw, o] = w;
        let constant = inputs[1].constant;
        let wino = constant
            .filter(|_| winograd::fits(c, o, [kh, kw], p.stride, p.dilation, p.groups))
            .map(|t| Winograd::new(&t.data, c, o));
        let pixel_rows = constant
            .filter(|_| wino.is_none() && p.groups == 1 && (FEW_ROWS..=PIXEL_ROWS_MAX_O).contains(&o))
            .map(|t| PackedWeight::owned(cg * kh * kw, o, Mat::rows(&t.data, o)));
        let packed = constant.filter(|_| wino.is_none() && pixel_rows.is_none()).map(|t| {
            // [K, O] to [O, K].
            let mut v = vec![0.0f32; t.data.len()];
            crate::cpu::transpose::batched_transpose(&t.data, &mut v, [1, cg * kh * kw, o]);
            v
        });
        Some(ConvCpu { p: p.clone(), x, w, y, packed, wino, pixel_rows })
    }

    fn depthwise(&self) -> bool {
        let g = self.p.groups;
        g == self.x[1] && g == self.w[3] && g > 1
    }

    /// The weight of output channel `oc` at tap (c, ky, kx) is `w(oc, (c * kh + ky) * kw + kx)`.
    fn weight<'a>(&'a self, wp: &'a [f32]) -> (Mat<'a>, usize) {
        let [cg, kh, kw, o] = self.w;
        let k = cg * kh * kw;
        match &self.packed {
            Some(v) => (Mat::rows(v, k), k),
            None => (Mat { data: wp, rs: 1, cs: o }, k),
        }
    }

    /// One plane per step on the pool, finished with its bias and activation while in cache.
    fn run_depthwise(&self, x: &[f32], wp: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        let [_, c, h, wd] = self.x;
        let [_, kh, kw, o] = self.w;
        let [_, _, ho, wo] = self.y;
        let (w, _) = self.weight(wp);
        let g = PlaneGeom { h, wd, ho, wo, kh, kw, stride: self.p.stride, dilation: self.p.dilation, padding: self.p.padding };
        let act = self.p.act;
        par_chunks(y, ho * wo, 1 << 14, |plane, out| {
            let (b, ch) = (plane / o, plane % o);
            let xin = &x[(b * c + ch) * h * wd..(b * c + ch + 1) * h * wd];
            let taps: Vec<f32> = (0..kh * kw).map(|t| w.data[ch * w.rs + t * w.cs]).collect();
            depthwise::plane(Path::chosen(), g, xin, &taps, bias.map(|b| b[ch]), act, out);
        });
    }

    /// Few output channels and not a plain 1x1 product: the GEMM reads the input rows in place.
    fn few(&self) -> bool {
        let [_, kh, kw, o] = self.w;
        let plain = kh == 1 && kw == 1 && self.p.stride == [1, 1] && self.p.padding == [0, 0];
        o / self.p.groups < FEW_ROWS && !plain && self.x[3] > 0
    }

    /// One task per output row of an image and group: every (channel, ky, kx) row of the
    /// product is a run of the input (zero-padded, split by phase), read in place by
    /// [`sgemm_few_rows_at`] with no im2col copy (with few output channels each copied element
    /// would be used only a few times); rows of the padding above and below are left out.
    fn run_few(&self, x: &[f32], wp: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        let [n, c, h, wd] = self.x;
        let [cg, kh, kw, o] = self.w;
        let [_, _, ho, wo] = self.y;
        let [sy, sx] = self.p.stride;
        let [dy, dx] = self.p.dilation;
        let [py, px] = self.p.padding;
        let (g, act) = (self.p.groups, self.p.act);
        let og = o / g;
        let (w, k) = self.weight(wp);
        with_scratch(Scratch::Call, split_len(x.len(), wd, px, sx), |xs| {
            split_phases(x, wd, px, sx, xs);
            let xs = &*xs;
            let q = (wd + 2 * px).div_ceil(sx);
            let pix = ho * wo;
            assert_eq!(y.len(), n * o * pix, "conv2d output length");
            let ptr = SendPtr(y.as_mut_ptr());
            (0..n * g * ho).into_par_iter().for_each(|t| {
                let (b, gi, oy) = (t / (g * ho), (t / ho) % g, t % ho);
                let mut rows = Vec::with_capacity(k);
                for ci in 0..cg {
                    for ky in 0..kh {
                        let iy = (oy * sy + ky * dy) as isize - py as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let row = ((b * c + gi * cg + ci) * h + iy as usize) * sx * q;
                        for kx in 0..kw {
                            // Padded column ox * sx + kx * dx: phase (kx * dx) % sx, index ox + (kx * dx) / sx.
                            let off = kx * dx;
                            rows.push((row + (off % sx) * q + off / sx, (ci * kh + ky) * kw + kx));
                        }
                    }
                }
                let a = Mat { data: &w.data[gi * og * w.rs..], ..w };
                let first = (b * o + gi * og) * pix + oy * wo;
                let p = ptr;
                // SAFETY: each task writes output row oy of channels gi * og .. (gi + 1) * og of
                // image b: disjoint across tasks and inside `y` (length checked above).
                unsafe { sgemm_few_rows_at(og, wo, a, xs, &rows, p.0.add(first), pix) };
                if bias.is_some() || act != Act::None {
                    for oi in 0..og {
                        // SAFETY: one row of this task's own block (see above).
                        let out = unsafe { std::slice::from_raw_parts_mut(p.0.add(first + oi * pix), wo) };
                        affine_act(act, out, 1.0, bias.map_or(Addend::None, |bs| Addend::Scalar(bs[gi * og + oi])));
                    }
                }
            });
        });
    }

    /// Pixels per task: an im2col block of about [`COL_BLOCK`] floats, at least [`MIN_BLOCK`]
    /// pixels, and small enough that every thread gets a couple of tasks.
    fn block_pixels(&self) -> usize {
        let [n, ..] = self.x;
        let [cg, kh, kw, _] = self.w;
        let pix = self.y[2] * self.y[3];
        let planes = n * self.p.groups;
        let by_cache = (COL_BLOCK / (cg * kh * kw).max(1)).max(MIN_BLOCK);
        let by_threads = (planes * pix).div_ceil(2 * crate::cpu::threads()).max(MIN_BLOCK);
        // Whole strips of the GEMMs: 12 rows (pixels as rows), else 16 columns.
        let strip = if self.pixel_rows.is_some() { 24 } else { 16 };
        (by_cache.min(by_threads) / strip * strip).min(pix).max(1)
    }

    /// Tasks of `block` output pixels of one (image, group) each, on the pool: im2col of the
    /// block into a per-thread buffer (1x1 / stride 1 / no padding reads the input in place),
    /// the GEMM into the block's columns of the output, then bias and activation on them while
    /// they are still in cache.
    fn run_gemm(&self, x: &[f32], wp: &[f32], bias: Option<&[f32]>, y: &mut [f32], block: usize) {
        let [n, c, h, wd] = self.x;
        let [cg, kh, kw, o] = self.w;
        let [_, _, ho, wo] = self.y;
        let g = self.p.groups;
        let og = o / g;
        let (w, k) = self.weight(wp);
        let pix = ho * wo;
        let direct = kh == 1 && kw == 1 && self.p.stride == [1, 1] && self.p.padding == [0, 0];
        let blocks = pix.div_ceil(block);
        assert_eq!(y.len(), n * o * pix, "conv2d output length");
        let ptr = SendPtr(y.as_mut_ptr());
        let act = self.p.act;
        // Strided convs read the input with each row split by phase (column mod stride): every
        // row of an im2col block is then a contiguous run of one phase, copied, not gathered.
        let sx = self.p.stride[1];
        let split = !direct && sx > 1 && wd > 0;
        let split_floats = if split { split_len(x.len(), wd, 0, sx) } else { 0 };
        with_scratch(Scratch::Call, split_floats, |phases| {
            let (x, rw) = if split {
                split_phases(x, wd, 0, sx, phases);
                (&phases[..], sx * wd.div_ceil(sx))
            } else {
                (x, wd)
            };
            let col_floats = if direct { 0 } else { k * block };
            (0..n * g * blocks).into_par_iter().for_each(|t| {
                with_scratch(Scratch::Task, col_floats, |col| {
                    let (b, gi, p0) = (t / (g * blocks), (t / blocks) % g, (t % blocks) * block);
                    let np = block.min(pix - p0);
                    let a = Mat { data: &w.data[gi * og * w.rs..], ..w };
                    let xg = &x[(b * c + gi * cg) * h * rw..(b * c + (gi + 1) * cg) * h * rw];
                    let bm = if direct {
                        Mat { data: &xg[p0..], rs: pix, cs: 1 }
                    } else {
                        self.im2col(xg, rw, p0, np, &mut col[..k * np]);
                        Mat::rows(&col[..k * np], np)
                    };
                    let first = (b * o + gi * og) * pix + p0;
                    let p = ptr;
                    if let Some(pw) = &self.pixel_rows {
                        // The block's pixels as rows: the transpose of `bm`, times the weight,
                        // stored transposed into the output planes with the bias and activation.
                        let pixels = Mat { data: bm.data, rs: bm.cs, cs: bm.rs };
                        let tail = Tail { alpha: 1.0, bias: bias.map_or(Bias::None, Bias::Cols), act };
                        // SAFETY: as below (g == 1 here).
                        unsafe { pw.product_t_into(np, pixels, p.0.add(first), pix, tail) };
                        return;
                    }
                    // SAFETY: each task writes rows gi * og .. (gi + 1) * og of image b, columns
                    // p0 .. p0 + np: disjoint across tasks and inside `y` (length checked above).
                    unsafe { sgemm_into(og, k, np, a, bm, p.0.add(first), pix) };
                    if bias.is_some() || act != Act::None {
                        for oi in 0..og {
                            // SAFETY: one row of this task's own block (see above).
                            let row = unsafe { std::slice::from_raw_parts_mut(p.0.add(first + oi * pix), np) };
                            let add = bias.map_or(Addend::None, |bs| Addend::Scalar(bs[gi * og + oi]));
                            affine_act(act, row, 1.0, add);
                        }
                    }
                })
            });
        });
    }

    /// Rows (c, ky, kx) of the im2col matrix for output pixels `p0 .. p0 + np` of one group, from
    /// input rows of `rw` floats (split by phase when the stride is above 1, see
    /// [`split_phases`]): per row and output row, the zeros of the padding and one contiguous
    /// run of input, with no division per element.
    fn im2col(&self, xg: &[f32], rw: usize, p0: usize, np: usize, col: &mut [f32]) {
        let [_, _, h, wd] = self.x;
        let [_, kh, kw, _] = self.w;
        let wo = self.y[3];
        let [sy, sx] = self.p.stride;
        let [dy, dx] = self.p.dilation;
        let [py, px] = self.p.padding;
        let phase_len = rw / sx;
        for (r, dst) in col.chunks_exact_mut(np).enumerate() {
            let (ci, ky, kx) = (r / (kh * kw), (r / kw) % kh, r % kw);
            let plane = &xg[ci * h * rw..(ci + 1) * h * rw];
            // Output columns whose input column ox * sx + kx * dx - px is inside [0, wd).
            let off = kx * dx;
            let (lo, hi) = valid_run(wo, sx, off, px, wd);
            let (mut j, mut p) = (0, p0);
            while j < np {
                let (oy, ox0) = (p / wo, p % wo);
                let len = (wo - ox0).min(np - j);
                let seg = &mut dst[j..j + len];
                let iy = (oy * sy + ky * dy) as isize - py as isize;
                if iy < 0 || iy >= h as isize {
                    seg.fill(0.0);
                } else {
                    let row = &plane[iy as usize * rw..(iy as usize + 1) * rw];
                    // This segment covers output columns ox0 .. ox0 + len.
                    let (a, z) = (lo.clamp(ox0, ox0 + len), hi.clamp(ox0, ox0 + len));
                    seg[..a - ox0].fill(0.0);
                    seg[z - ox0..].fill(0.0);
                    if a < z {
                        // Input column of output column a, then its place in the split row.
                        let ix = a * sx + off - px;
                        let src = (ix % sx) * phase_len + ix / sx;
                        seg[a - ox0..z - ox0].copy_from_slice(&row[src..src + z - a]);
                    }
                }
                j += len;
                p += len;
            }
        }
    }
}

/// Floats of [`split_phases`]'s output for `len` input floats in rows of `wd`.
fn split_len(len: usize, wd: usize, pad: usize, stride: usize) -> usize {
    len / wd * stride * (wd + 2 * pad).div_ceil(stride)
}

/// Each row of `wd` floats, zero-padded by `pad` on both sides, as `stride` phases of
/// `ceil((wd + 2 pad) / stride)` floats (phase f holds padded columns f, f + stride, ...; zeros
/// past the end), so that a strided read of a row is a contiguous one. Every element of `out`
/// ([`split_len`] floats) is written.
fn split_phases(x: &[f32], wd: usize, pad: usize, stride: usize, out: &mut [f32]) {
    let q = (wd + 2 * pad).div_ceil(stride);
    assert_eq!(out.len(), split_len(x.len(), wd, pad, stride), "phase split length");
    par_chunks(out, stride * q, 1 << 14, |r, dst| {
        let src = &x[r * wd..(r + 1) * wd];
        for (f, phase) in dst.chunks_exact_mut(q).enumerate() {
            for (i, v) in phase.iter_mut().enumerate() {
                let col = (f + i * stride).wrapping_sub(pad);
                *v = if col < wd { src[col] } else { 0.0 };
            }
        }
    });
}

impl CpuKernel for ConvCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (x, wp) = (inputs[0], inputs[1]);
        let y = &mut *outputs[0];
        let bias = inputs.get(2).copied();
        if let Some(wg) = &self.wino {
            let [n, _, h, wd] = self.x;
            let [.., ho, wo] = self.y;
            wg.run(x, [n, h, wd], self.p.padding, [ho, wo], bias, self.p.act, y)
        } else if self.depthwise() {
            self.run_depthwise(x, wp, bias, y)
        } else if self.few() {
            self.run_few(x, wp, bias, y)
        } else {
            self.run_gemm(x, wp, bias, y, self.block_pixels())
        }
    }
    fn name(&self) -> &'static str {
        if self.wino.is_some() {
            "conv2d winograd f(2x2, 3x3)"
        } else if self.depthwise() {
            "conv2d depthwise direct"
        } else {
            "conv2d gemm"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{conv2d_reference, pack_conv2d_weight};
    use super::*;
    use crate::tensor::{check_close, Rng, Tensor};

    /// The depthwise paths against the reference: stride 1 (padded frames, one block of rows and
    /// several: 90 x 70 planes span three 4096-float blocks) with dilation and unequal padding,
    /// and strided; with bias and GELU, batch 2; relative tolerance 1e-4.
    #[test]
    fn depthwise_matches_reference() {
        let seed = Rng::fresh_seed();
        let cases: [(usize, [usize; 2], [usize; 2], Conv2d); 5] = [
            (3, [90, 70], [7, 7], Conv2d::new(1, 3)),
            (5, [9, 11], [3, 3], Conv2d::new(1, 1).act(Act::Gelu)),
            (4, [13, 8], [3, 5], Conv2d { padding: [2, 1], ..Conv2d::new(1, 0).dilation(2) }),
            (2, [6, 5], [3, 3], Conv2d::new(1, 0)),
            (3, [15, 12], [3, 3], Conv2d::new(2, 1)),
        ];
        for (i, (c, [h, wd], [kh, kw], p)) in cases.into_iter().enumerate() {
            let p = p.groups(c);
            let s = seed ^ (i as u64) << 8;
            let x = Tensor::random(&[2, c, h, wd], s, -1.0, 1.0);
            let w = Tensor::random(&[c, 1, kh, kw], s + 1, -0.5, 0.5);
            let bias = Tensor::random(&[c], s + 2, -1.0, 1.0);
            let wp = pack_conv2d_weight(&w).unwrap();
            let want = conv2d_reference(&x, &w, Some(&bias), &p);
            let shapes = [x.shape.as_slice(), wp.shape.as_slice(), bias.shape.as_slice()];
            let ins: Vec<CpuInput> = shapes.iter().map(|sh| CpuInput { shape: sh, constant: None }).collect();
            let kern = kernel(&p, &ins).unwrap();
            assert_eq!(kern.name(), "conv2d depthwise direct");
            let mut y = vec![f32::NAN; want.data.len()];
            kern.run(&[&x.data, &wp.data, &bias.data], &mut [&mut y]);
            let got = Tensor { shape: want.shape.clone(), data: y };
            check_close(&format!("depthwise case {i} (seed {seed})"), &got, &want, 1e-4).unwrap();
        }
    }

    /// The GEMM paths against the reference: im2col with blocks of every awkward size (one pixel, a
    /// prime, across output rows, the whole image) and the chosen one, and for few output
    /// channels the rows read in place (the register-strip GEMM); strides 1-3 per axis (the
    /// phase split), padding beyond the kernel's reach, dilation, groups and a batch; relative
    /// tolerance 1e-4.
    #[test]
    fn gemm_path_matches_reference_for_any_block() {
        let seed = Rng::fresh_seed();
        let cases: [(usize, usize, [usize; 2], usize, [usize; 2], Conv2d); 8] = [
            (1, 5, [13, 17], 3, [7, 7], Conv2d::new(2, 3)),
            (2, 6, [11, 19], 40, [3, 3], Conv2d::new(1, 1).act(Act::Gelu)),
            (1, 4, [16, 23], 9, [3, 5], Conv2d { stride: [2, 3], padding: [1, 4], ..Conv2d::new(1, 0) }),
            (2, 9, [12, 14], 6, [3, 3], Conv2d::new(2, 2).groups(3).dilation(2)),
            (1, 3, [9, 9], 33, [4, 4], Conv2d::new(4, 0)),
            (1, 8, [10, 7], 17, [1, 1], Conv2d::new(1, 0)),
            (1, 2, [8, 9], 5, [2, 2], Conv2d::new(3, 5)),
            (2, 8, [10, 7], 35, [1, 1], Conv2d::new(1, 0).act(Act::Relu)),
        ];
        let (mut few, mut pixel_rows) = (0, 0);
        for (i, (n, c, [h, wd], o, [kh, kw], p)) in cases.into_iter().enumerate() {
            let s = seed ^ (i as u64) << 8;
            let x = Tensor::random(&[n, c, h, wd], s, -1.0, 1.0);
            let w = Tensor::random(&[o, c / p.groups, kh, kw], s + 1, -0.5, 0.5);
            let bias = Tensor::random(&[o], s + 2, -1.0, 1.0);
            let wp = pack_conv2d_weight(&w).unwrap();
            let want = conv2d_reference(&x, &w, Some(&bias), &p);
            for constant in [false, true] {
                let shapes = [x.shape.as_slice(), wp.shape.as_slice(), bias.shape.as_slice()];
                let ins: Vec<CpuInput> = shapes
                    .iter()
                    .enumerate()
                    .map(|(j, sh)| CpuInput { shape: sh, constant: (constant && j == 1).then_some(&wp) })
                    .collect();
                let conv = ConvCpu::new(&p, &ins).unwrap();
                pixel_rows += conv.pixel_rows.is_some() as usize;
                let pix = want.shape[2] * want.shape[3];
                for block in [1, 7, wd + 3, pix, conv.block_pixels()] {
                    let mut y = vec![f32::NAN; want.data.len()];
                    conv.run_gemm(&x.data, &wp.data, Some(&bias.data), &mut y, block);
                    let got = Tensor { shape: want.shape.clone(), data: y };
                    check_close(&format!("case {i} block {block} constant {constant} (seed {seed})"), &got, &want, 1e-4)
                        .unwrap();
                }
                if conv.few() {
                    let mut y = vec![f32::NAN; want.data.len()];
                    conv.run_few(&x.data, &wp.data, Some(&bias.data), &mut y);
                    let got = Tensor { shape: want.shape.clone(), data: y };
                    check_close(&format!("case {i} rows in place, constant {constant} (seed {seed})"), &got, &want, 1e-4)
                        .unwrap();
                    few += 1;
                }
            }
        }
        assert_eq!(few, 2 * 4, "cases on the in-place path (both weight kinds)");
        assert_eq!(pixel_rows, 3, "cases with pixels as the product's rows (constant weights only)");
    }
}
