//! conv_transpose2d on the CPU backend: per batch item and group, one GEMM gives every tap's
//! contribution of a block of input pixels (`[O/g * kh * kw, P]`), then col2im adds them into the
//! output, one output channel per task (no two tasks write the same plane); bias and activation
//! in one pass after.

use crate::cpu::epilogue::{affine_act, Addend};
use super::ConvTranspose2d;
use crate::cpu::gemm::{sgemm, Mat};
use crate::cpu::{par_chunks, CpuInput, CpuKernel};
use crate::ops::conv2d::dims4;

/// Elements of one column block (rows x input pixels), about 8 MiB.
const COL_BLOCK: usize = 2 << 20;

pub(super) struct ConvTCpu {
    p: ConvTranspose2d,
    x: [usize; 4],
    /// [C, kh, kw, O/g]
    w: [usize; 4],
    y: [usize; 4],
}

pub(super) fn kernel(p: &ConvTranspose2d, inputs: &[CpuInput], y: [usize; 4]) -> Option<Box<dyn CpuKernel>> {
    Some(Box::new(ConvTCpu { p: p.clone(), x: dims4(inputs[0].shape)?, w: dims4(inputs[1].shape)?, y }))
}

impl CpuKernel for ConvTCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (x, wp) = (inputs[0], inputs[1]);
        let y = &mut *outputs[0];
        let [n, c, h, w] = self.x;
        let [_, kh, kw, og] = self.w;
        let [_, o, ho, wo] = self.y;
        let g = self.p.groups;
        let cg = c / g;
        let rows = og * kh * kw;
        let pix = h * w;
        let block = (COL_BLOCK / rows.max(1)).clamp(64, pix.max(64)).min(pix);
        let mut col = vec![0.0f32; rows * block];
        let [sy, sx] = self.p.stride;
        let [dy, dx] = self.p.dilation;
        let [py, px] = self.p.padding;
        y.fill(0.0);
        for b in 0..n {
            for gi in 0..g {
                // Row r = (ky * kw + kx) * og + j, column ci: wp[ci, ky, kx, j] of this group.
                let a = Mat { data: &wp[gi * cg * rows..], rs: 1, cs: rows };
                let xg = &x[(b * c + gi * cg) * pix..(b * c + (gi + 1) * cg) * pix];
                let yg = &mut y[(b * o + gi * og) * ho * wo..(b * o + (gi + 1) * og) * ho * wo];
                let mut p0 = 0;
                while p0 < pix {
                    let np = block.min(pix - p0);
                    let cb = &mut col[..rows * np];
                    sgemm(rows, cg, np, a, Mat { data: &xg[p0..], rs: pix, cs: 1 }, cb, np, false);
                    let cb = &*cb;
                    par_chunks(yg, ho * wo, 1, |j, plane| {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let src = &cb[((ky * kw + kx) * og + j) * np..][..np];
                                for (q, &v) in src.iter().enumerate() {
                                    let (iy, ix) = ((p0 + q) / w, (p0 + q) % w);
                                    let oy = (iy * sy + ky * dy) as isize - py as isize;
                                    let ox = (ix * sx + kx * dx) as isize - px as isize;
                                    if oy >= 0 && (oy as usize) < ho && ox >= 0 && (ox as usize) < wo {
                                        plane[oy as usize * wo + ox as usize] += v;
                                    }
                                }
                            }
                        }
                    });
                    p0 += np;
                }
            }
        }
        let (act, bias) = (self.p.act, inputs.get(2).copied());
        if bias.is_some() || act != crate::ops::act::Act::None {
            par_chunks(y, ho * wo, 1 << 14, |plane, out| {
                let add = bias.map_or(Addend::None, |bs| Addend::Scalar(bs[plane % o]));
                affine_act(act, out, 1.0, add);
            });
        }
    }
    fn name(&self) -> &'static str {
        "conv_transpose2d gemm + col2im"
    }
}
