//! Depthwise conv2d on the CPU backend, one plane at a time, three ways (chosen by [`Path`]):
//! - stride 1 on AVX-512: blocks of 4 output rows x 32 columns, read from the unpadded plane
//!   with the padding as masked-off lanes, keep their sums in registers through every tap (a
//!   masked load of input and a fused multiply-add per tap and 16 outputs) and end with the bias
//!   and activation (identity or GELU) before their only store. The frame path below instead
//!   loaded and stored its frame once per tap: 4 cycles per 16 outputs and tap, 105 ms of
//!   Mesorch-P's 1.2 s;
//! - stride 1 elsewhere: frames of whole padded rows, one shifted multiply-add per tap;
//! - strided: row by row, every tap into the output row while it is in L1.

use crate::cpu::epilogue::{affine_act, Addend};
use crate::cpu::{with_scratch, Scratch};
use crate::ops::act::Act;

/// The geometry of one depthwise plane.
#[derive(Clone, Copy)]
pub(super) struct PlaneGeom {
    pub h: usize,
    pub wd: usize,
    pub ho: usize,
    pub wo: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub padding: [usize; 2],
}

/// How a plane is computed (the tests run each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Path {
    /// Register blocks on AVX-512 for stride 1, else as `Portable`.
    Avx512,
    /// Frames of padded rows for stride 1, row by row when strided.
    Portable,
}

impl Path {
    pub fn chosen() -> Path {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f") {
            return Path::Avx512;
        }
        Path::Portable
    }

    #[cfg(test)]
    pub fn all_available() -> Vec<Path> {
        let mut all = vec![Path::Portable];
        if Path::chosen() == Path::Avx512 {
            all.push(Path::Avx512);
        }
        all
    }
}

/// Floats of the output frame that [`frames`] finishes at a time (16 KiB, in L1 with the input
/// rows it reads).
const DW_FRAME: usize = 4096;

/// One output plane from its input plane and its `kh * kw` taps, then `act(y + bias)`.
pub(super) fn plane(path: Path, g: PlaneGeom, xin: &[f32], taps: &[f32], bias: Option<f32>, act: Act, out: &mut [f32]) {
    assert!(xin.len() >= g.h * g.wd && out.len() >= g.ho * g.wo && taps.len() >= g.kh * g.kw, "depthwise plane sizes");
    let add = bias.map_or(Addend::None, Addend::Scalar);
    if g.stride != [1, 1] {
        strided(g, xin, taps, out);
        return affine_act(act, out, 1.0, add);
    }
    #[cfg(target_arch = "x86_64")]
    if path == Path::Avx512 {
        let fused = matches!(act, Act::None | Act::Gelu);
        let tail = fused.then_some((bias, act == Act::Gelu));
        // SAFETY: Avx512 is only chosen where the CPU has AVX-512F; `xin` holds the input plane and
        // `out` the output plane (asserted above).
        unsafe { registers(g, xin, taps, tail, out) };
        if !fused {
            affine_act(act, out, 1.0, add);
        }
        return;
    }
    // The thread's task scratch: the padded plane, then the output frame.
    let wp = g.wd + 2 * g.padding[1];
    let pad_len = (g.h + 2 * g.padding[0]) * wp + (g.kw - 1) * g.dilation[1];
    let frame_len = (DW_FRAME / wp).max(1) * wp;
    with_scratch(Scratch::Task, pad_len + frame_len, |buf| {
        let (pad, frame) = buf.split_at_mut(pad_len);
        pad_plane(g, xin, pad);
        frames(g, pad, taps, frame, out);
        affine_act(act, out, 1.0, add);
    });
}

/// `xin` zero-padded into `pad` (every element written): `h + 2 py` rows of `wd + 2 px`, and
/// `(kw - 1) dx` floats of slack, which the frames' last taps read.
fn pad_plane(g: PlaneGeom, xin: &[f32], pad: &mut [f32]) {
    let PlaneGeom { h, wd, padding: [py, px], .. } = g;
    let wp = wd + 2 * px;
    pad.fill(0.0);
    for (iy, row) in xin.chunks_exact(wd).enumerate().take(h) {
        pad[(iy + py) * wp + px..][..wd].copy_from_slice(row);
    }
}

/// Output rows per register block of [`registers`].
#[cfg(target_arch = "x86_64")]
const BLOCK_ROWS: usize = 4;

/// The stride-1 plane straight from the input plane, 4 rows x 32 columns at a time in 8 zmm
/// accumulators, taps in the order (ky, kx): taps over rows of the padding are skipped, and the
/// columns of the padding are masked-off lanes of the loads (not read); then `tail` = (bias,
/// GELU) with the operations of [`affine_act`] (the same bits), or nothing. (A zero-padded copy
/// of each plane first cost a memset and a copy per plane: without them Mesorch-P's depthwise
/// nodes went from 46.5 to 42.7 ms.)
///
/// # Safety
/// The CPU has AVX-512F; `xin` holds the `h * wd` input plane, `out` `ho * wo` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn registers(g: PlaneGeom, xin: &[f32], taps: &[f32], tail: Option<(Option<f32>, bool)>, out: &mut [f32]) {
    use crate::cpu::epilogue::gelu_zmm;
    use std::arch::x86_64::*;
    let PlaneGeom { h, wd, ho, wo, kh, kw, dilation: [dy, dx], padding: [py, px], .. } = g;
    let zero = _mm512_setzero_ps();
    for oy0 in (0..ho).step_by(BLOCK_ROWS) {
        let rows = BLOCK_ROWS.min(ho - oy0);
        for x0 in (0..wo).step_by(32) {
            let live = (wo - x0).min(32) as isize;
            let mut acc = [[zero; 2]; BLOCK_ROWS];
            for ky in 0..kh {
                for kx in 0..kw {
                    let off = (x0 + kx * dx) as isize - px as isize;
                    let (lo, hi) = ((-off).clamp(0, 32), (wd as isize - off).clamp(0, live));
                    if lo >= hi {
                        continue;
                    }
                    let bits = ((1u64 << hi) - (1u64 << lo)) as u32;
                    let (m0, m1) = (bits as __mmask16, (bits >> 16) as __mmask16);
                    let t = _mm512_set1_ps(taps[ky * kw + kx]);
                    for (r, acc) in acc.iter_mut().enumerate().take(rows) {
                        let iy = (oy0 + r + ky * dy) as isize - py as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let s = xin.as_ptr().wrapping_offset(iy * wd as isize + off);
                        acc[0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, s), t, acc[0]);
                        acc[1] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, s.wrapping_add(16)), t, acc[1]);
                    }
                }
            }
            let bits = ((1u64 << live) - 1) as u32;
            let masks = [bits as __mmask16, (bits >> 16) as __mmask16];
            for (r, acc) in acc.iter().enumerate().take(rows) {
                let dst = out.as_mut_ptr().add((oy0 + r) * wo + x0);
                for (h, (&v, m)) in acc.iter().zip(masks).enumerate() {
                    let v = match tail {
                        None | Some((None, false)) => v,
                        Some((b, true)) => {
                            let add = _mm512_set1_ps(b.unwrap_or(0.0));
                            gelu_zmm(_mm512_fmadd_ps(_mm512_set1_ps(1.0), v, add))
                        }
                        Some((Some(b), false)) => _mm512_add_ps(v, _mm512_set1_ps(b)),
                    };
                    _mm512_mask_storeu_ps(dst.wrapping_add(16 * h), m, v);
                }
            }
        }
    }
}

crate::multiversion!(
    /// The stride-1 plane from its padded form: in a frame as wide as the padded rows each tap is
    /// one shifted multiply-add over whole blocks of rows (no edge arithmetic per row; short rows
    /// cost what long ones do); then the frame's valid columns are the output. Each output is the
    /// sum over taps in the same order as [`strided`].
    fn frames(g: PlaneGeom, pad: &[f32], taps: &[f32], frame: &mut [f32], out: &mut [f32]) => frames_any
);

#[inline(always)]
fn frames_any(g: PlaneGeom, pad: &[f32], taps: &[f32], frame: &mut [f32], out: &mut [f32]) {
    let PlaneGeom { wd, ho, wo, kh, kw, dilation: [dy, dx], padding: [_, px], .. } = g;
    let wp = wd + 2 * px;
    let rows = (DW_FRAME / wp).max(1);
    for r0 in (0..ho).step_by(rows) {
        let nr = rows.min(ho - r0);
        let f = &mut frame[..nr * wp];
        f.fill(0.0);
        for ky in 0..kh {
            for kx in 0..kw {
                let t = taps[ky * kw + kx];
                let src = &pad[(r0 + ky * dy) * wp + kx * dx..][..nr * wp];
                for (v, &s) in f.iter_mut().zip(src) {
                    *v += t * s;
                }
            }
        }
        for (orow, frow) in out[r0 * wo..(r0 + nr) * wo].chunks_exact_mut(wo).zip(f.chunks_exact(wp)) {
            orow.copy_from_slice(&frow[..wo]);
        }
    }
}

crate::multiversion!(
    /// A strided plane from its input plane, row by row.
    fn strided(g: PlaneGeom, xin: &[f32], taps: &[f32], out: &mut [f32]) => strided_any
);

/// Row by row: every tap adds into the output row while it is in L1 (tap-major over the whole
/// plane streamed the plane through L2 once per tap); the inner loop runs along contiguous
/// output pixels, so it vectorizes.
#[inline(always)]
fn strided_any(g: PlaneGeom, xin: &[f32], taps: &[f32], out: &mut [f32]) {
    let PlaneGeom { h, wd, ho, wo, kh, kw, stride: [sy, sx], dilation: [dy, dx], padding: [py, px] } = g;
    for (oy, orow) in out.chunks_mut(wo).enumerate().take(ho) {
        orow.fill(0.0);
        for ky in 0..kh {
            let iy = (oy * sy + ky * dy) as isize - py as isize;
            if iy < 0 || iy >= h as isize {
                continue;
            }
            let row = &xin[iy as usize * wd..(iy as usize + 1) * wd];
            for kx in 0..kw {
                let wv = taps[ky * kw + kx];
                // Output columns whose input column x0 = ox * sx + kx * dx - px is inside.
                let off = kx * dx;
                let (lo, hi) = crate::cpu::valid_run(wo, sx, off, px, wd);
                if lo >= hi {
                    continue;
                }
                let x0 = lo * sx + off - px;
                if sx == 1 {
                    for (ov, xv) in orow[lo..hi].iter_mut().zip(&row[x0..x0 + hi - lo]) {
                        *ov += wv * xv;
                    }
                } else {
                    for (j, ov) in orow[lo..hi].iter_mut().enumerate() {
                        *ov += wv * row[x0 + j * sx];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{conv2d_reference, Conv2d};
    use super::*;
    use crate::tensor::{check_close, Rng, Tensor};

    /// Every path on one plane against the reference: 7x7 and 3x3 at sizes around the register
    /// block (rows 1-9, columns 1-40 across 16 and 32), dilation, unequal padding, strides; with
    /// and without bias, identity, GELU and ReLU (not fused: applied after); relative tolerance
    /// 1e-4.
    #[test]
    fn every_path_matches_reference() {
        let seed = Rng::fresh_seed();
        let cases: [([usize; 2], [usize; 2], Conv2d); 8] = [
            ([9, 40], [7, 7], Conv2d::new(1, 3)),
            ([1, 1], [3, 3], Conv2d::new(1, 1)),
            ([5, 17], [3, 3], Conv2d::new(1, 1).act(Act::Gelu)),
            ([6, 33], [3, 3], Conv2d::new(1, 1).act(Act::Relu)),
            ([13, 16], [3, 5], Conv2d { padding: [2, 1], ..Conv2d::new(1, 0).dilation(2) }),
            ([4, 31], [7, 7], Conv2d::new(1, 3).act(Act::Gelu)),
            ([15, 12], [3, 3], Conv2d::new(2, 1)),
            ([2, 3], [1, 1], Conv2d::new(1, 0)),
        ];
        for (i, ([h, wd], [kh, kw], p)) in cases.into_iter().enumerate() {
            let s = seed ^ (i as u64) << 8;
            let x = Tensor::random(&[1, 1, h, wd], s, -1.0, 1.0);
            let w = Tensor::random(&[1, 1, kh, kw], s + 1, -0.5, 0.5);
            for bias in [None, Some(Tensor::random(&[1], s + 2, -1.0, 1.0))] {
                let want = conv2d_reference(&x, &w, bias.as_ref(), &p);
                let [ho, wo] = [want.shape[2], want.shape[3]];
                let g = PlaneGeom { h, wd, ho, wo, kh, kw, stride: p.stride, dilation: p.dilation, padding: p.padding };
                for path in Path::all_available() {
                    let mut out = vec![f32::NAN; ho * wo];
                    plane(path, g, &x.data, &w.data, bias.as_ref().map(|b| b.data[0]), p.act, &mut out);
                    let got = Tensor { shape: want.shape.clone(), data: out };
                    let what = format!("case {i} {path:?} bias {} (seed {seed})", bias.is_some());
                    check_close(&what, &got, &want, 1e-4).unwrap();
                }
            }
        }
    }
}
