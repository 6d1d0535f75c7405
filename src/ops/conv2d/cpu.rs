//! conv2d on the CPU backend: depthwise as direct loops over whole rows (the inner loop runs
//! along contiguous output pixels, so it vectorizes), everything else as GEMM per group: 1x1 /
//! stride 1 / no padding straight on the input, other shapes through im2col in column blocks;
//! then bias and activation in one pass. The weight is prepacked to `[O, C/g * kh * kw]` rows at
//! plan time when it is a constant.

use crate::cpu::epilogue::{affine_act, Addend};
use super::{dims4, Conv2d};
use crate::cpu::gemm::{sgemm, Mat};
use crate::cpu::{par_chunks, CpuInput, CpuKernel};
use rayon::prelude::*;

/// Elements of one im2col block (K rows x P pixels), about 8 MiB.
const COL_BLOCK: usize = 2 << 20;

pub(super) struct ConvCpu {
    p: Conv2d,
    x: [usize; 4],
    /// [C/g, kh, kw, O]
    w: [usize; 4],
    y: [usize; 4],
    /// The weight as `[O, K]` rows (K = C/g * kh * kw) when it is a constant.
    packed: Option<Vec<f32>>,
}

pub(super) fn kernel(p: &Conv2d, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    let x = dims4(inputs[0].shape)?;
    let w = dims4(inputs[1].shape)?;
    let [n, _, h, wd] = x;
    let [cg, kh, kw, o] = w;
    let ho = (h + 2 * p.padding[0] - p.dilation[0] * (kh - 1) - 1) / p.stride[0] + 1;
    let wo = (wd + 2 * p.padding[1] - p.dilation[1] * (kw - 1) - 1) / p.stride[1] + 1;
    let packed = inputs[1].constant.map(|t| {
        let k = cg * kh * kw;
        let mut v = vec![0.0f32; o * k];
        for (kk, row) in t.data.chunks_exact(o).enumerate() {
            for (oi, &val) in row.iter().enumerate() {
                v[oi * k + kk] = val;
            }
        }
        v
    });
    Some(Box::new(ConvCpu { p: p.clone(), x, w, y: [n, o, ho, wo], packed }))
}

impl ConvCpu {
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

    fn run_depthwise(&self, x: &[f32], wp: &[f32], y: &mut [f32]) {
        let [_, c, h, wd] = self.x;
        let [_, kh, kw, o] = self.w;
        let [_, _, ho, wo] = self.y;
        let (w, _) = self.weight(wp);
        let g = PlaneGeom { h, wd, ho, wo, kh, kw, stride: self.p.stride, dilation: self.p.dilation, padding: self.p.padding };
        par_chunks(y, ho * wo, 1 << 14, |plane, out| {
            let (b, ch) = (plane / o, plane % o);
            let xin = &x[(b * c + ch) * h * wd..(b * c + ch + 1) * h * wd];
            let taps: Vec<f32> = (0..kh * kw).map(|t| w.data[ch * w.rs + t * w.cs]).collect();
            depthwise_plane(g, xin, &taps, out);
        });
    }

    fn run_gemm(&self, x: &[f32], wp: &[f32], y: &mut [f32]) {
        let [n, c, h, wd] = self.x;
        let [cg, kh, kw, o] = self.w;
        let [_, _, ho, wo] = self.y;
        let g = self.p.groups;
        let og = o / g;
        let (w, k) = self.weight(wp);
        let pix = ho * wo;
        let direct = kh == 1 && kw == 1 && self.p.stride == [1, 1] && self.p.padding == [0, 0];
        let block = (COL_BLOCK / k.max(1)).clamp(64, pix.max(64)).min(pix);
        let mut col = if direct { Vec::new() } else { vec![0.0f32; k * block] };
        for b in 0..n {
            for gi in 0..g {
                let a = Mat { data: &w.data[gi * og * w.rs..], ..w };
                let xg = &x[(b * c + gi * cg) * h * wd..(b * c + (gi + 1) * cg) * h * wd];
                let yg = &mut y[(b * o + gi * og) * pix..(b * o + (gi + 1) * og) * pix];
                if direct {
                    sgemm(og, k, pix, a, Mat::rows(xg, pix), yg, pix, false);
                    continue;
                }
                let mut p0 = 0;
                while p0 < pix {
                    let np = block.min(pix - p0);
                    self.im2col(xg, p0, np, &mut col[..k * np]);
                    sgemm(og, k, np, a, Mat::rows(&col[..k * np], np), &mut yg[p0..], pix, false);
                    p0 += np;
                }
            }
        }
    }

    /// Rows (c, ky, kx) of the im2col matrix for output pixels `p0 .. p0 + np` of one group.
    fn im2col(&self, xg: &[f32], p0: usize, np: usize, col: &mut [f32]) {
        let [_, _, h, wd] = self.x;
        let [_, kh, kw, _] = self.w;
        let wo = self.y[3];
        let [sy, sx] = self.p.stride;
        let [dy, dx] = self.p.dilation;
        let [py, px] = self.p.padding;
        col.par_chunks_mut(np).enumerate().for_each(|(r, row)| {
            let (ci, ky, kx) = (r / (kh * kw), (r / kw) % kh, r % kw);
            let plane = &xg[ci * h * wd..(ci + 1) * h * wd];
            for (j, v) in row.iter_mut().enumerate() {
                let (oy, ox) = ((p0 + j) / wo, (p0 + j) % wo);
                let iy = (oy * sy + ky * dy) as isize - py as isize;
                let ix = (ox * sx + kx * dx) as isize - px as isize;
                *v = if iy >= 0 && iy < h as isize && ix >= 0 && ix < wd as isize {
                    plane[iy as usize * wd + ix as usize]
                } else {
                    0.0
                };
            }
        });
    }
}

impl CpuKernel for ConvCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (x, wp) = (inputs[0], inputs[1]);
        let y = &mut *outputs[0];
        if self.depthwise() {
            self.run_depthwise(x, wp, y);
        } else {
            self.run_gemm(x, wp, y);
        }
        let [_, o, ho, wo] = self.y;
        let bias = inputs.get(2).copied();
        let act = self.p.act;
        if bias.is_some() || act != crate::ops::act::Act::None {
            par_chunks(y, ho * wo, 1 << 14, |plane, out| {
                let add = bias.map_or(Addend::None, |b| Addend::Scalar(b[plane % o]));
                affine_act(act, out, 1.0, add);
            });
        }
    }
    fn name(&self) -> &'static str {
        if self.depthwise() {
            "conv2d depthwise direct"
        } else {
            "conv2d gemm"
        }
    }
}

/// The geometry of one depthwise plane.
#[derive(Clone, Copy)]
struct PlaneGeom {
    h: usize,
    wd: usize,
    ho: usize,
    wo: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
    padding: [usize; 2],
}

crate::multiversion!(
    /// One output plane of a depthwise conv from its input plane and its `kh * kw` taps.
    fn depthwise_plane(g: PlaneGeom, xin: &[f32], taps: &[f32], out: &mut [f32]) => depthwise_plane_any
);

/// Row by row: every tap adds into the output row while it is in L1 (tap-major over the whole
/// plane streamed the plane through L2 once per tap); the inner loop runs along contiguous
/// output pixels, so it vectorizes.
#[inline(always)]
fn depthwise_plane_any(g: PlaneGeom, xin: &[f32], taps: &[f32], out: &mut [f32]) {
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
                let lo = if off >= px { 0 } else { (px - off).div_ceil(sx) };
                let hi = if wd + px > off { ((wd + px - off - 1) / sx + 1).min(wo) } else { 0 };
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
