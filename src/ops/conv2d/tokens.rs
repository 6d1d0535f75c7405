//! conv2d on the CPU backend with input and output as tokens (channels last): the input stored
//! `[N, H*W, C]`, the output written `[N, Ho*Wo, O]`. This is the kernel of a conv between two
//! transposes (MiT's Mix-FFN depthwise conv and its spatial reductions, each between
//! `tokens_to_nchw` and `nchw_to_tokens`), planned with both folded in
//! ([`crate::ops::Op::cpu_kernel_transposed_both`]): the linear layers around then read and
//! write plain rows (the transposed reads and stores cost them a fifth of their rate) and no
//! permute runs.
//! - depthwise: per output row, 16 channels at a time over the row's pixels, each tap one
//!   multiply-add of 16 contiguous channels; then the bias and activation (in registers on
//!   AVX-512 for identity and GELU).
//! - one group, constant weight: per block of pixels, im2col as rows with the taps in (ky, kx, c)
//!   order (each tap is one contiguous run of C channels, copied), times the weight reordered
//!   and packed at plan time, stored as tokens with the bias and activation.

use super::depthwise::Path;
use super::Conv2d;
use crate::cpu::epilogue::{affine_act, Addend};
use crate::cpu::gemm::{Bias, Mat, PackedWeight, Tail};
use crate::cpu::{with_scratch, CpuInput, CpuKernel, Scratch, SendPtr};
use crate::ops::act::Act;
use rayon::prelude::*;

/// Floats of one task's im2col block (1 MiB), as the planes' GEMM path.
const COL_BLOCK: usize = 1 << 18;

pub(super) struct ConvTokens {
    p: Conv2d,
    /// [N, C, H, W] of the op's input (stored as tokens).
    x: [usize; 4],
    /// [C/g, kh, kw, O]
    w: [usize; 4],
    /// [N, O, Ho, Wo] of the op's output (written as tokens).
    y: [usize; 4],
    /// One group: the weight as `[(ky, kx, c), O]`, packed. `None`: depthwise.
    gemm: Option<PackedWeight>,
    /// How depthwise rows are computed: in AVX-512 registers, or by portable loops.
    path: Path,
}

/// The kernel for input 0 stored as tokens (`bxy_in == [N, H*W, C]`) and the output written as
/// tokens (`bxy_out == [N, O, Ho*Wo]`), for depthwise convs and one-group convs with a constant
/// weight; `None` otherwise.
pub(super) fn kernel(
    p: &Conv2d,
    inputs: &[CpuInput],
    index: usize,
    bxy_in: [usize; 3],
    bxy_out: [usize; 3],
) -> Option<Box<dyn CpuKernel>> {
    Some(Box::new(ConvTokens::new(p, inputs, index, bxy_in, bxy_out, Path::chosen())?))
}

impl ConvTokens {
    pub(super) fn new(
        p: &Conv2d,
        inputs: &[CpuInput],
        index: usize,
        bxy_in: [usize; 3],
        bxy_out: [usize; 3],
        path: Path,
    ) -> Option<ConvTokens> {
        let (x, w, y) = super::cpu::geometry(p, inputs)?;
        let ([n, c, h, wd], [cg, kh, kw, o], [.., ho, wo]) = (x, w, y);
        if index != 0 || bxy_in != [n, h * wd, c] || bxy_out != [n, o, ho * wo] || c == 0 {
            return None;
        }
        let depthwise = p.groups > 1 && p.groups == c && c == o && cg == 1;
        let gemm = if depthwise {
            None
        } else if p.groups == 1 {
            // [(c, ky, kx), O] rows to [(ky, kx, c), O].
            let t = inputs[1].constant?;
            let mut v = vec![0.0f32; t.data.len()];
            for ci in 0..c {
                for tap in 0..kh * kw {
                    v[(tap * c + ci) * o..][..o].copy_from_slice(&t.data[(ci * kh * kw + tap) * o..][..o]);
                }
            }
            Some(PackedWeight::owned(kh * kw * c, o, Mat::rows(&v, o)))
        } else {
            return None;
        };
        Some(ConvTokens { p: p.clone(), x, w, y, gemm, path })
    }

    /// Input row `iy` and column `ix` of output (oy, ox)'s tap (ky, kx), if inside the image.
    fn at(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        Some((self.row_of(oy, ky)?, self.col_of(ox, kx)?))
    }

    /// Input row of output row `oy`'s taps `ky`, if inside the image.
    fn row_of(&self, oy: usize, ky: usize) -> Option<usize> {
        let iy = (oy * self.p.stride[0] + ky * self.p.dilation[0]).checked_sub(self.p.padding[0])?;
        (iy < self.x[2]).then_some(iy)
    }

    /// Input column of output column `ox`'s taps `kx`, if inside the image.
    fn col_of(&self, ox: usize, kx: usize) -> Option<usize> {
        let ix = (ox * self.p.stride[1] + kx * self.p.dilation[1]).checked_sub(self.p.padding[1])?;
        (ix < self.x[3]).then_some(ix)
    }

    /// One task per output row of an image.
    fn run_depthwise(&self, x: &[f32], taps: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        let [_, c, h, wd] = self.x;
        let [.., ho, wo] = self.y;
        assert!(taps.len() >= self.w[1] * self.w[2] * c, "depthwise taps");
        y.par_chunks_mut(wo * c).enumerate().for_each(|(row, out)| {
            let (b, oy) = (row / ho, row % ho);
            let img = &x[b * h * wd * c..(b + 1) * h * wd * c];
            #[cfg(target_arch = "x86_64")]
            if self.path == Path::Avx512 {
                // SAFETY: Avx512 is chosen only where the CPU has AVX-512F; `img` holds the image's
                // tokens and `out` one output row (wo x c), as `row_avx512` indexes them.
                return unsafe { self.row_avx512(img, taps, bias, oy, out) };
            }
            self.row_portable(img, taps, bias, oy, out);
        });
    }

    fn row_portable(&self, img: &[f32], taps: &[f32], bias: Option<&[f32]>, oy: usize, out: &mut [f32]) {
        let [_, c, _, wd] = self.x;
        let [_, kh, kw, _] = self.w;
        for (ox, o) in out.chunks_exact_mut(c).enumerate() {
            o.fill(0.0);
            for ky in 0..kh {
                for kx in 0..kw {
                    let Some((iy, ix)) = self.at(oy, ox, ky, kx) else { continue };
                    let xs = &img[(iy * wd + ix) * c..][..c];
                    let ts = &taps[(ky * kw + kx) * c..][..c];
                    for ((o, &xv), &tv) in o.iter_mut().zip(xs).zip(ts) {
                        *o += xv * tv;
                    }
                }
            }
            affine_act(self.p.act, o, 1.0, bias.map_or(Addend::None, Addend::Row));
        }
    }

    /// The row 16 channels at a time (masked at the end), the taps in (ky, kx) order as fused
    /// multiply-adds, then the bias and GELU with the operations of the planes' depthwise kernel
    /// (the same bits), or the tail by [`affine_act`] for other activations. The taps' rows
    /// inside the image are found once per row, and pixels whose taps' columns are all inside
    /// it (all but the edges) skip the per-tap checks.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `img` holds the image's `h * wd * c` tokens, `out` `wo * c` floats.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn row_avx512(&self, img: &[f32], taps: &[f32], bias: Option<&[f32]>, oy: usize, out: &mut [f32]) {
        use crate::cpu::epilogue::gelu_zmm;
        use std::arch::x86_64::*;
        let [_, c, h, wd] = self.x;
        let [_, kh, kw, _] = self.w;
        let wo = self.y[3];
        let ([_, sx], [_, dx], [_, px]) = (self.p.stride, self.p.dilation, self.p.padding);
        assert!(img.len() >= h * wd * c && out.len() >= wo * c && taps.len() >= kh * kw * c);
        let act = self.p.act;
        let fused = matches!(act, Act::None | Act::Gelu);
        // (ky, input row) of the taps' rows inside the image.
        let rows: Vec<(usize, usize)> = (0..kh).filter_map(|ky| self.row_of(oy, ky).map(|iy| (ky, iy))).collect();
        // Pixel by pixel, all channels of one before the next: its taps' inputs and its output are
        // runs of whole cache lines (16 channels at a time along the row fetched a line per load
        // from L2, at half this rate). Four vectors of channels at a time, so that their GELUs
        // (a long chain each) overlap.
        const V: usize = 4;
        for ox in 0..wo {
            let first = (ox * sx).wrapping_sub(px);
            let inside = ox * sx >= px && first + (kw - 1) * dx < wd;
            for c0 in (0..c).step_by(16 * V) {
                let m: [__mmask16; V] =
                    std::array::from_fn(|j| ((1u32 << (c.saturating_sub(c0 + 16 * j)).min(16)) - 1) as __mmask16);
                let mut acc = [_mm512_setzero_ps(); V];
                let mut tap = |src: *const f32, t: usize| {
                    for (j, acc) in acc.iter_mut().enumerate() {
                        let xv = _mm512_maskz_loadu_ps(m[j], src.wrapping_add(c0 + 16 * j));
                        let tv = _mm512_maskz_loadu_ps(m[j], taps.as_ptr().wrapping_add(t * c + c0 + 16 * j));
                        *acc = _mm512_fmadd_ps(xv, tv, *acc);
                    }
                };
                if inside {
                    for &(ky, iy) in &rows {
                        let base = img.as_ptr().add((iy * wd + first) * c);
                        for kx in 0..kw {
                            tap(base.wrapping_add(kx * dx * c), ky * kw + kx);
                        }
                    }
                } else {
                    for &(ky, iy) in &rows {
                        for kx in 0..kw {
                            if let Some(ix) = self.col_of(ox, kx) {
                                tap(img.as_ptr().add((iy * wd + ix) * c), ky * kw + kx);
                            }
                        }
                    }
                }
                for (j, acc) in acc.into_iter().enumerate() {
                    let add = bias.map_or(_mm512_setzero_ps(), |b| _mm512_maskz_loadu_ps(m[j], b.as_ptr().wrapping_add(c0 + 16 * j)));
                    let v = match (fused, act == Act::Gelu, bias.is_some()) {
                        (true, true, _) => gelu_zmm(_mm512_fmadd_ps(_mm512_set1_ps(1.0), acc, add)),
                        (true, false, true) => _mm512_add_ps(acc, add),
                        _ => acc,
                    };
                    _mm512_mask_storeu_ps(out.as_mut_ptr().wrapping_add(ox * c + c0 + 16 * j), m[j], v);
                }
            }
        }
        if !fused {
            for o in out.chunks_exact_mut(c) {
                affine_act(act, o, 1.0, bias.map_or(Addend::None, Addend::Row));
            }
        }
    }

    /// Tasks of a block of output pixels of one image: im2col of the block as rows, then the
    /// product with the packed weight into the block's output tokens, with the bias and activation.
    fn run_gemm(&self, pw: &PackedWeight, x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        let [n, c, h, wd] = self.x;
        let [_, kh, kw, o] = self.w;
        let [.., ho, wo] = self.y;
        let k = kh * kw * c;
        let pix = ho * wo;
        // Whole strips of 12 rows, about COL_BLOCK floats, and a couple of tasks per thread.
        let by_cache = (COL_BLOCK / k.max(1)).max(24);
        let by_threads = (n * pix).div_ceil(2 * crate::cpu::threads()).max(24);
        let block = (by_cache.min(by_threads) / 12 * 12).clamp(12, pix.max(12));
        let blocks = pix.div_ceil(block);
        assert_eq!(y.len(), n * pix * o, "conv2d output length");
        let ptr = SendPtr(y.as_mut_ptr());
        let tail = Tail { alpha: 1.0, bias: bias.map_or(Bias::None, Bias::Cols), act: self.p.act };
        (0..n * blocks).into_par_iter().for_each(|t| {
            let (b, p0) = (t / blocks, (t % blocks) * block);
            let np = block.min(pix - p0);
            let img = &x[b * h * wd * c..(b + 1) * h * wd * c];
            with_scratch(Scratch::Task, np * k, |col| {
                for (j, row) in col.chunks_exact_mut(k).enumerate() {
                    let (oy, ox) = ((p0 + j) / wo, (p0 + j) % wo);
                    for (tap, dst) in row.chunks_exact_mut(c).enumerate() {
                        match self.at(oy, ox, tap / kw, tap % kw) {
                            Some((iy, ix)) => dst.copy_from_slice(&img[(iy * wd + ix) * c..][..c]),
                            None => dst.fill(0.0),
                        }
                    }
                }
                let p = ptr;
                // SAFETY: each task writes the output tokens b * pix + p0 .. + np (o floats each):
                // disjoint across tasks and inside `y` (length checked above).
                unsafe { pw.product_into(np, Mat::rows(col, k), p.0.add((b * pix + p0) * o), o, tail) };
            });
        });
    }
}

impl CpuKernel for ConvTokens {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (x, wp) = (inputs[0], inputs[1]);
        let bias = inputs.get(2).copied();
        let y = &mut *outputs[0];
        match &self.gemm {
            Some(pw) => self.run_gemm(pw, x, bias, y),
            // The depthwise weight [1, kh, kw, C] is the taps channels last.
            None => self.run_depthwise(x, wp, bias, y),
        }
    }
    fn name(&self) -> &'static str {
        match self.gemm {
            Some(_) => "conv2d gemm on tokens",
            None => "conv2d depthwise on tokens",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{conv2d_reference, pack_conv2d_weight};
    use super::*;
    use crate::tensor::{check_close, Rng, Tensor};

    /// `[N, C, H*W]` to tokens `[N, H*W, C]`.
    fn to_tokens(x: &[f32], n: usize, c: usize, hw: usize) -> Vec<f32> {
        (0..n * hw * c).map(|e| x[((e / (hw * c)) * c + e % c) * hw + (e / c) % hw]).collect()
    }

    /// Both kernels against the reference on tokens in and out: depthwise with a channel count
    /// that is not a multiple of 16, dilation, unequal padding, stride 2, 7x7, fused (identity,
    /// GELU) and later (ReLU) activations, with and without bias, on each path; one group:
    /// patchify (kernel = stride), strided with padding, 1x1 and 7x7; batch 2; relative
    /// tolerance 1e-4. Shapes that do not match the transposes, several groups and a weight that
    /// is not a constant get no kernel.
    #[test]
    fn convs_on_tokens_match_reference() {
        let seed = Rng::fresh_seed();
        // (channels, input size, outputs (0: depthwise), kernel size, conv, bias)
        type Case = (usize, [usize; 2], usize, [usize; 2], Conv2d, bool);
        let cases: [Case; 11] = [
            (20, [9, 11], 0, [3, 3], Conv2d::new(1, 1).act(Act::Gelu), true),
            (37, [13, 8], 0, [3, 5], Conv2d { padding: [2, 1], ..Conv2d::new(1, 0).dilation(2) }, true),
            (16, [15, 12], 0, [3, 3], Conv2d::new(2, 1).act(Act::Relu), true),
            (3, [6, 5], 0, [3, 3], Conv2d::new(1, 0), false),
            (33, [10, 10], 0, [7, 7], Conv2d::new(1, 3).act(Act::Gelu), false),
            (5, [16, 16], 7, [8, 8], Conv2d::new(8, 0), true),
            (6, [11, 19], 40, [3, 3], Conv2d::new(2, 1).act(Act::Gelu), true),
            (4, [9, 9], 33, [4, 4], Conv2d::new(4, 0), false),
            (8, [10, 7], 17, [1, 1], Conv2d::new(1, 0).act(Act::Relu), true),
            (3, [13, 17], 5, [7, 7], Conv2d::new(2, 3), true),
            (64, [8, 8], 64, [2, 2], Conv2d::new(2, 0), true),
        ];
        let mut ran = 0;
        for (i, (c, [h, wd], o, [kh, kw], p, with_bias)) in cases.into_iter().enumerate() {
            let (o, p) = if o == 0 { (c, p.groups(c)) } else { (o, p) };
            let s = seed ^ (i as u64) << 8;
            let n = 2;
            let x = Tensor::random(&[n, c, h, wd], s, -1.0, 1.0);
            let w = Tensor::random(&[o, c / p.groups, kh, kw], s + 1, -0.5, 0.5);
            let bias = Tensor::random(&[o], s + 2, -1.0, 1.0);
            let wp = pack_conv2d_weight(&w).unwrap();
            let want = conv2d_reference(&x, &w, with_bias.then_some(&bias), &p);
            let [ho, wo] = [want.shape[2], want.shape[3]];
            let want = Tensor { shape: vec![n, ho * wo, o], data: to_tokens(&want.data, n, o, ho * wo) };
            let xt = to_tokens(&x.data, n, c, h * wd);
            let (bxy_in, bxy_out) = ([n, h * wd, c], [n, o, ho * wo]);
            let mut shapes = vec![x.shape.as_slice(), wp.shape.as_slice()];
            if with_bias {
                shapes.push(bias.shape.as_slice());
            }
            let ins = |constant: bool| -> Vec<CpuInput> {
                (shapes.iter().enumerate())
                    .map(|(j, &shape)| CpuInput { shape, constant: (constant && j == 1).then_some(&wp) })
                    .collect()
            };
            let depthwise = p.groups > 1;
            assert!(ConvTokens::new(&p, &ins(true), 1, bxy_in, bxy_out, Path::Portable).is_none(), "case {i}: input 1");
            let swapped = [n, c, h * wd];
            assert!(ConvTokens::new(&p, &ins(true), 0, swapped, bxy_out, Path::Portable).is_none() || c == h * wd);
            assert_eq!(ConvTokens::new(&p, &ins(false), 0, bxy_in, bxy_out, Path::Portable).is_some(), depthwise);
            let paths = if depthwise { Path::all_available() } else { vec![Path::chosen()] };
            for path in paths {
                let kern = ConvTokens::new(&p, &ins(true), 0, bxy_in, bxy_out, path).unwrap();
                let mut y = vec![f32::NAN; want.data.len()];
                let mut inputs: Vec<&[f32]> = vec![&xt, &wp.data];
                if with_bias {
                    inputs.push(&bias.data);
                }
                kern.run(&inputs, &mut [&mut y]);
                let got = Tensor { shape: want.shape.clone(), data: y };
                check_close(&format!("case {i} {path:?} {} (seed {seed})", kern.name()), &got, &want, 1e-4).unwrap();
                ran += 1;
            }
        }
        assert_eq!(ran, 6 + 5 * Path::all_available().len(), "kernels run");
        // Several groups (not depthwise) on tokens: no kernel.
        let p = Conv2d::new(1, 1).groups(2);
        let (xs, ws) = ([1, 4, 5, 5], [2, 3, 3, 4]);
        let ins = [CpuInput { shape: &xs, constant: None }, CpuInput { shape: &ws, constant: None }];
        assert!(ConvTokens::new(&p, &ins, 0, [1, 25, 4], [1, 4, 25], Path::chosen()).is_none());
    }
}
