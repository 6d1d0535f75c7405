//! conv_transpose2d on the CPU backend: per batch item and group, one GEMM gives every tap's
//! contribution of a block of input pixels (`[O/g * kh * kw, P]`), then col2im adds them into the
//! output row by row, one output channel per task (no two tasks write the same plane), and each
//! plane ends with its bias and activation once its last block is in.

use crate::cpu::epilogue::{affine_act, Addend};
use super::ConvTranspose2d;
use crate::cpu::gemm::{sgemm, Mat};
use crate::cpu::{par_chunks, valid_run, with_scratch, CpuInput, CpuKernel, Scratch};
use crate::ops::conv2d::dims4;

/// Elements of one column block (rows x input pixels), about 8 MiB.
const COL_BLOCK: usize = 2 << 20;

pub(super) struct ConvTCpu {
    p: ConvTranspose2d,
    x: [usize; 4],
    /// [C, kh, kw, O/g]
    w: [usize; 4],
    y: [usize; 4],
    /// Input pixels per GEMM: whole input rows, about [`COL_BLOCK`] floats of columns.
    block: usize,
}

pub(super) fn kernel(p: &ConvTranspose2d, inputs: &[CpuInput], y: [usize; 4]) -> Option<Box<dyn CpuKernel>> {
    let (x, w) = (dims4(inputs[0].shape)?, dims4(inputs[1].shape)?);
    let rows = w[1] * w[2] * w[3];
    let block = ((COL_BLOCK / rows.max(1)) / x[3].max(1)).clamp(1, x[2].max(1)) * x[3];
    Some(Box::new(ConvTCpu { p: p.clone(), x, w, y, block }))
}

impl ConvTCpu {
    /// Add tap (ky, kx)'s contributions of input rows `iy0 ..` (`src`: whole rows of the block)
    /// into one output plane: per input row, the run of columns that land inside the output.
    fn col2im_tap(&self, ky: usize, kx: usize, iy0: usize, src: &[f32], plane: &mut [f32]) {
        let [_, _, _, w] = self.x;
        let [_, _, ho, wo] = self.y;
        let [sy, sx] = self.p.stride;
        let [dy, dx] = self.p.dilation;
        let [py, px] = self.p.padding;
        let off = kx * dx;
        // Input columns ix with ox = ix * sx + off - px inside [0, wo).
        let (lo, hi) = valid_run(w, sx, off, px, wo);
        if lo == hi {
            return;
        }
        for (r, row) in src.chunks_exact(w).enumerate() {
            let oy = ((iy0 + r) * sy + ky * dy) as isize - py as isize;
            if oy < 0 || oy >= ho as isize {
                continue;
            }
            let ox0 = lo * sx + off - px;
            let dst = plane[oy as usize * wo + ox0..].iter_mut().step_by(sx);
            dst.zip(&row[lo..hi]).for_each(|(d, &v)| *d += v);
        }
    }
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
        let block = self.block;
        let (act, bias) = (self.p.act, inputs.get(2).copied());
        with_scratch(Scratch::Call, rows * block.min(pix), |col| {
            for b in 0..n {
                for gi in 0..g {
                    // Row r = (ky * kw + kx) * og + j, column ci: wp[ci, ky, kx, j] of this group.
                    let a = Mat { data: &wp[gi * cg * rows..], rs: 1, cs: rows };
                    let xg = &x[(b * c + gi * cg) * pix..(b * c + (gi + 1) * cg) * pix];
                    let yg = &mut y[(b * o + gi * og) * ho * wo..(b * o + (gi + 1) * og) * ho * wo];
                    for p0 in (0..pix).step_by(block) {
                        let np = block.min(pix - p0);
                        let cb = &mut col[..rows * np];
                        sgemm(rows, cg, np, a, Mat { data: &xg[p0..], rs: pix, cs: 1 }, cb, np, false);
                        let cb = &*cb;
                        let last = p0 + np == pix;
                        par_chunks(yg, ho * wo, 1, |j, plane| {
                            if p0 == 0 {
                                plane.fill(0.0);
                            }
                            for t in 0..kh * kw {
                                let src = &cb[(t * og + j) * np..][..np];
                                self.col2im_tap(t / kw, t % kw, p0 / w, src, plane);
                            }
                            if last {
                                // The plane is whole: bias and activation while it is in cache.
                                let add = bias.map_or(Addend::None, |bs| Addend::Scalar(bs[gi * og + j]));
                                affine_act(act, plane, 1.0, add);
                            }
                        });
                    }
                }
            }
        });
    }
    fn name(&self) -> &'static str {
        "conv_transpose2d gemm + col2im"
    }
}

#[cfg(test)]
mod tests {
    use super::super::{conv_transpose2d_reference, pack_conv_transpose2d_weight};
    use super::*;
    use crate::ops::act::Act;
    use crate::tensor::{check_close, Rng, Tensor};

    /// Blocks of one input row, two, and all of them, against the reference: Mesorch's k4 s2 p1,
    /// dilation with unequal strides, groups with output padding and a batch; relative
    /// tolerance 1e-4.
    #[test]
    fn any_block_of_rows_matches_reference() {
        let seed = Rng::fresh_seed();
        let cases: [(usize, usize, [usize; 2], usize, [usize; 2], ConvTranspose2d); 3] = [
            (1, 6, [5, 7], 4, [4, 4], ConvTranspose2d { act: Act::Gelu, ..ConvTranspose2d::new(2, 1) }),
            (2, 3, [4, 6], 5, [3, 2], ConvTranspose2d { stride: [3, 1], padding: [1, 0], dilation: [2, 1], ..Default::default() }),
            (2, 4, [3, 5], 6, [3, 3], ConvTranspose2d { stride: [2, 2], padding: [1, 2], output_padding: [1, 0], groups: 2, ..Default::default() }),
        ];
        for (i, (n, c, [h, wd], o, [kh, kw], p)) in cases.into_iter().enumerate() {
            let s = seed ^ (i as u64) << 8;
            let x = Tensor::random(&[n, c, h, wd], s, -1.0, 1.0);
            let w = Tensor::random(&[c, o / p.groups, kh, kw], s + 1, -0.5, 0.5);
            let bias = Tensor::random(&[o], s + 2, -1.0, 1.0);
            let wp = pack_conv_transpose2d_weight(&w).unwrap();
            let want = conv_transpose2d_reference(&x, &w, Some(&bias), &p);
            let y = dims4(&want.shape).unwrap();
            for block in [wd, 2 * wd, h * wd] {
                let k = ConvTCpu { p: p.clone(), x: dims4(&x.shape).unwrap(), w: dims4(&wp.shape).unwrap(), y, block };
                let mut out = vec![f32::NAN; want.data.len()];
                k.run(&[&x.data, &wp.data, &bias.data], &mut [&mut out]);
                let got = Tensor { shape: want.shape.clone(), data: out };
                check_close(&format!("case {i} block {block} (seed {seed})"), &got, &want, 1e-4).unwrap();
            }
        }
    }
}
