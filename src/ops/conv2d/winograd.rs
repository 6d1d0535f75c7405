//! 3x3 stride-1 convolutions on the CPU backend by Winograd's F(2x2, 3x3): every 2x2 block of
//! output pixels (a tile) comes from a 4x4 patch of input through 16 products instead of 36.
//! Per tile `Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A`; over all channels the element-wise products
//! become 16 GEMMs `M_ξ [O x T] = U_ξ [O x C] · V_ξ [C x T]` (ξ the 16 places of the 4x4
//! transform, T tiles). The transforms' entries are 0, ±1 and ±1/2, so they add little rounding;
//! the weight transform `U = G g Gᵀ` is made once at plan time, in f64.
//!
//! Tasks are blocks of up to [`TILES`] tiles of one tile row of one image: their input patch is
//! copied zero-padded into a per-thread buffer, transformed, multiplied and transformed back
//! into the output with the bias and activation.

use crate::cpu::epilogue::{affine_act, Addend};
use crate::cpu::gemm::{sgemm_serial, Mat};
use crate::cpu::SendPtr;
use crate::ops::act::Act;
use rayon::prelude::*;

/// Tiles per task: with 192 channels the transformed input and the products are ~0.8 MiB each,
/// in L2 with the GEMMs' packing.
const TILES: usize = 64;


/// Whether F(2x2, 3x3) takes a conv: 3x3, stride 1, no dilation, one group, and enough channels
/// on both sides that 16 GEMMs of `O x C` beat one of `O x 9C` (the transforms cost per channel).
pub(super) fn fits(c: usize, o: usize, k: [usize; 2], stride: [usize; 2], dilation: [usize; 2], groups: usize) -> bool {
    k == [3, 3] && stride == [1, 1] && dilation == [1, 1] && groups == 1 && c >= 32 && o >= 32
}

/// The transformed weight of one conv.
pub(super) struct Winograd {
    c: usize,
    o: usize,
    /// `U_ξ` for ξ = 0..16, each `[O, C]` row-major.
    u: Vec<f32>,
}

/// Rows of Bᵀ (input transform), G (weight transform) and Aᵀ (output transform).
const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];

impl Winograd {
    /// From the packed weight `[C, 3, 3, O]`.
    pub(super) fn new(w: &[f32], c: usize, o: usize) -> Winograd {
        let mut u = vec![0.0f32; 16 * o * c];
        for ci in 0..c {
            for oi in 0..o {
                let g = |ky: usize, kx: usize| w[((ci * 3 + ky) * 3 + kx) * o + oi] as f64;
                for (a, ga) in G.iter().enumerate() {
                    for (b, gb) in G.iter().enumerate() {
                        let mut s = 0.0;
                        for (ky, gay) in ga.iter().enumerate() {
                            for (kx, gbx) in gb.iter().enumerate() {
                                s += gay * g(ky, kx) * gbx;
                            }
                        }
                        u[((a * 4 + b) * o + oi) * c + ci] = s as f32;
                    }
                }
            }
        }
        Winograd { c, o, u }
    }

    /// `y = act(conv3x3(x) + bias)` for `x [n, C, h, wd]`, `y [n, O, ho, wo]`, padding `[py, px]`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run(&self, x: &[f32], dims: [usize; 3], pad: [usize; 2], out: [usize; 2], bias: Option<&[f32]>, act: Act, y: &mut [f32]) {
        let (c, o) = (self.c, self.o);
        let [n, h, wd] = dims;
        let [ho, wo] = out;
        let (th, tw) = (ho.div_ceil(2), wo.div_ceil(2));
        let per_row = tw.div_ceil(TILES);
        assert_eq!(y.len(), n * o * ho * wo, "winograd output length");
        assert_eq!(x.len(), n * c * h * wd, "winograd input length");
        let ptr = SendPtr(y.as_mut_ptr());
        (0..n * th * per_row).into_par_iter().for_each(|t| {
            SCRATCH.with_borrow_mut(|s| {
                s.v.resize(16 * c * TILES, 0.0);
                s.m.resize(16 * o * TILES, 0.0);
                let (b, ty, t0) = (t / (th * per_row), (t / per_row) % th, (t % per_row) * TILES);
                let nt = TILES.min(tw - t0);
                let xb = &x[b * c * h * wd..(b + 1) * c * h * wd];
                self.input_transform(xb, [h, wd], pad, ty, t0, nt, s);
                for xi in 0..16 {
                    let u = Mat::rows(&self.u[xi * o * c..(xi + 1) * o * c], c);
                    let v = Mat::rows(&s.v[xi * c * nt..(xi + 1) * c * nt], nt);
                    sgemm_serial(o, c, nt, u, v, &mut s.m[xi * o * nt..(xi + 1) * o * nt], nt, false);
                }
                let p = ptr;
                for oi in 0..o {
                    let add = bias.map_or(Addend::None, |bs| Addend::Scalar(bs[oi]));
                    // Output rows 2ty and 2ty + 1 (if inside), columns 2t0 .. of channel oi.
                    let plane = (b * o + oi) * ho * wo;
                    let (x0, x1) = (2 * t0, (2 * (t0 + nt)).min(wo));
                    let mut rows = [[0.0f32; 2 * TILES]; 2];
                    output_tile_row(&s.m, o, oi, nt, &mut rows);
                    for (dy, row) in rows.iter_mut().enumerate() {
                        let oy = 2 * ty + dy;
                        if oy >= ho {
                            continue;
                        }
                        let r = &mut row[..x1 - x0];
                        affine_act(act, r, 1.0, add);
                        // SAFETY: tasks write disjoint (image, tile row, tile columns) blocks of
                        // every channel's plane, all inside `y` (length asserted above).
                        unsafe { std::ptr::copy_nonoverlapping(r.as_ptr(), p.0.add(plane + oy * wo + x0), r.len()) };
                    }
                }
            })
        });
    }

    /// `V_ξ [C x nt]` of tiles `t0 .. t0 + nt` of tile row `ty`: the 4 x (2 nt + 2) input patch of
    /// each channel, zero-padded and split into even and odd columns, then `Bᵀ d B` per tile.
    #[allow(clippy::too_many_arguments)]
    fn input_transform(&self, xb: &[f32], [h, wd]: [usize; 2], [py, px]: [usize; 2], ty: usize, t0: usize, nt: usize, s: &mut Scratch) {
        let c = self.c;
        let half = nt + 1;
        s.patch.resize(8 * half, 0.0);
        // Patch column j is input column 2 t0 + j - px; tile j reads patch columns 2j .. 2j + 4.
        let first = (2 * t0) as isize - px as isize;
        for ci in 0..c {
            let plane = &xb[ci * h * wd..(ci + 1) * h * wd];
            for (i, phases) in s.patch.chunks_exact_mut(2 * half).enumerate() {
                let (even, odd) = phases.split_at_mut(half);
                let iy = (2 * ty + i) as isize - py as isize;
                if iy < 0 || iy >= h as isize {
                    even.fill(0.0);
                    odd.fill(0.0);
                    continue;
                }
                let row = &plane[iy as usize * wd..(iy as usize + 1) * wd];
                let at = |j: isize| if j >= 0 && (j as usize) < wd { row[j as usize] } else { 0.0 };
                for (q, (e, o)) in even.iter_mut().zip(odd.iter_mut()).enumerate() {
                    let j = first + 2 * q as isize;
                    (*e, *o) = (at(j), at(j + 1));
                }
            }
            transform_patch(&s.patch, nt, ci, c, &mut s.v);
        }
    }
}

crate::multiversion!(
    /// `Bᵀ d B` of every tile of one channel's patch (`patch`: 4 rows, each its even then its odd
    /// columns, `nt + 1` floats apiece) into `v[ξ][ci][j]` (`v` laid out `[16][c][nt]`): the
    /// row transform of each patch row, then the column transform, each a loop along the tiles.
    fn transform_patch(patch: &[f32], nt: usize, ci: usize, c: usize, v: &mut [f32]) => transform_patch_any
);

#[inline(always)]
fn transform_patch_any(patch: &[f32], nt: usize, ci: usize, c: usize, v: &mut [f32]) {
    let half = nt + 1;
    // t[i][k]: row i of the patch times B, column k, for every tile.
    let mut t = [[[0.0f32; TILES]; 4]; 4];
    for (i, ti) in t.iter_mut().enumerate() {
        let (e, o) = patch[2 * i * half..2 * (i + 1) * half].split_at(half);
        let [t0, t1, t2, t3] = ti;
        for j in 0..nt {
            // Tile j's four columns are e[j], o[j], e[j + 1], o[j + 1].
            t0[j] = e[j] - e[j + 1];
            t1[j] = o[j] + e[j + 1];
            t2[j] = e[j + 1] - o[j];
            t3[j] = o[j] - o[j + 1];
        }
    }
    for k in 0..4 {
        let (r0, r1, r2, r3) = (&t[0][k][..nt], &t[1][k][..nt], &t[2][k][..nt], &t[3][k][..nt]);
        let rows: [(&[f32], &[f32], f32); 4] = [(r0, r2, -1.0), (r1, r2, 1.0), (r2, r1, -1.0), (r1, r3, -1.0)];
        for (a, (p, q, sign)) in rows.into_iter().enumerate() {
            let dst = &mut v[((a * 4 + k) * c + ci) * nt..][..nt];
            if sign > 0.0 {
                dst.iter_mut().zip(p.iter().zip(q)).for_each(|(d, (x, y))| *d = x + y);
            } else {
                dst.iter_mut().zip(p.iter().zip(q)).for_each(|(d, (x, y))| *d = x - y);
            }
        }
    }
}

thread_local! {
    /// Per thread: the input patch, the transformed input and the products of one task.
    static SCRATCH: std::cell::RefCell<Scratch> = const { std::cell::RefCell::new(Scratch { patch: Vec::new(), v: Vec::new(), m: Vec::new() }) };
}

struct Scratch {
    patch: Vec<f32>,
    v: Vec<f32>,
    m: Vec<f32>,
}

/// `Aᵀ m A` of every tile of channel `oi` (`m` laid out `[16][o][nt]`): the two output rows of
/// the tile row, 2 nt columns each.
fn output_tile_row(m: &[f32], o: usize, oi: usize, nt: usize, rows: &mut [[f32; 2 * TILES]; 2]) {
    let at = |xi: usize, j: usize| m[(xi * o + oi) * nt + j];
    for j in 0..nt {
        // Columns of Aᵀ m: s_k = m0k + m1k + m2k, d_k = m1k - m2k - m3k.
        let mut s = [0.0f32; 4];
        let mut d = [0.0f32; 4];
        for k in 0..4 {
            let (m0, m1, m2, m3) = (at(k, j), at(4 + k, j), at(8 + k, j), at(12 + k, j));
            s[k] = m0 + m1 + m2;
            d[k] = m1 - m2 - m3;
        }
        rows[0][2 * j] = s[0] + s[1] + s[2];
        rows[0][2 * j + 1] = s[1] - s[2] - s[3];
        rows[1][2 * j] = d[0] + d[1] + d[2];
        rows[1][2 * j + 1] = d[1] - d[2] - d[3];
    }
}

#[cfg(test)]
mod tests {
    use super::super::{conv2d_reference, pack_conv2d_weight, Conv2d};
    use super::*;
    use crate::tensor::{check_close, Rng, Tensor};

    /// Against the direct reference: odd and even output sizes (half tiles at the edges), a tile
    /// row wider than one task (131 columns: tiles in two blocks), padding 0, 1 and 2, a batch,
    /// bias and GELU; relative tolerance 1e-4.
    #[test]
    fn matches_direct_convolution() {
        let seed = Rng::fresh_seed();
        let cases: [(usize, usize, [usize; 2], usize, usize, Act); 4] = [
            (1, 5, [7, 131], 6, 1, Act::Gelu),
            (2, 3, [6, 9], 4, 0, Act::None),
            (1, 4, [5, 4], 3, 2, Act::Relu),
            (1, 2, [3, 3], 2, 0, Act::None),
        ];
        for (i, (n, c, [h, wd], o, pad, act)) in cases.into_iter().enumerate() {
            let s = seed ^ (i as u64) << 8;
            let p = Conv2d::new(1, pad).act(act);
            let x = Tensor::random(&[n, c, h, wd], s, -1.0, 1.0);
            let w = Tensor::random(&[o, c, 3, 3], s + 1, -0.5, 0.5);
            let bias = Tensor::random(&[o], s + 2, -1.0, 1.0);
            let want = conv2d_reference(&x, &w, Some(&bias), &p);
            let wg = Winograd::new(&pack_conv2d_weight(&w).unwrap().data, c, o);
            let mut y = vec![f32::NAN; want.data.len()];
            let out = [want.shape[2], want.shape[3]];
            wg.run(&x.data, [n, h, wd], [pad, pad], out, Some(&bias.data), act, &mut y);
            let got = Tensor { shape: want.shape.clone(), data: y };
            check_close(&format!("case {i} (seed {seed})"), &got, &want, 1e-4).unwrap();
        }
    }

    #[test]
    fn takes_only_wide_3x3_stride_1_convs() {
        assert!(fits(32, 64, [3, 3], [1, 1], [1, 1], 1));
        assert!(!fits(16, 64, [3, 3], [1, 1], [1, 1], 1));
        assert!(!fits(64, 64, [3, 3], [2, 2], [1, 1], 1));
        assert!(!fits(64, 64, [3, 3], [1, 1], [2, 2], 1));
        assert!(!fits(64, 64, [3, 3], [1, 1], [1, 1], 2));
        assert!(!fits(64, 64, [5, 5], [1, 1], [1, 1], 1));
    }
}
