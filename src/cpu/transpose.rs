//! A cache-blocked batched transpose for the CPU backend: `[B, X, Y]` to `[B, Y, X]` (NCHW to
//! tokens and back). Gathering each output row with the input's row stride touches a new cache
//! line per element; a tile of output rows instead reuses each input line for all its columns.

use rayon::prelude::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Output rows (input columns) per tile.
const TILE_ROWS: usize = 16;
/// Output columns (input rows) per tile: 256 input lines (16 KiB) stay in L1 across the tile.
const TILE_COLS: usize = 256;

/// `y[b][j][i] = x[b][i][j]` for `x` of shape `[b, rows, cols]`, `y` of shape `[b, cols, rows]`.
pub fn batched_transpose(x: &[f32], y: &mut [f32], [b, rows, cols]: [usize; 3]) {
    let plane = rows * cols;
    assert!(x.len() == b * plane && y.len() == b * plane, "transpose of [{b}, {rows}, {cols}]");
    if plane == 0 {
        return;
    }
    // Tasks of TILE_ROWS output rows, grouped to at least 16K elements each.
    let min_tiles = (1 << 14) / (TILE_ROWS * rows) + 1;
    y.par_chunks_mut(plane).zip(x.par_chunks(plane)).for_each(|(yp, xp)| {
        yp.par_chunks_mut(TILE_ROWS * rows).enumerate().with_min_len(min_tiles).for_each(|(t, yt)| {
            let j0 = t * TILE_ROWS;
            for i0 in (0..rows).step_by(TILE_COLS) {
                let i1 = (i0 + TILE_COLS).min(rows);
                #[cfg(target_arch = "x86_64")]
                let from = if yt.len() == TILE_ROWS * rows && is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F; the tile has all 16 output rows.
                    unsafe { blocks16(xp, yt, j0, i0, i1, rows, cols) }
                } else {
                    i0
                };
                #[cfg(not(target_arch = "x86_64"))]
                let from = i0;
                for (jj, yr) in yt.chunks_mut(rows).enumerate() {
                    let col = &xp[j0 + jj..];
                    for (i, v) in (from..i1).zip(&mut yr[from..i1]) {
                        *v = col[i * cols];
                    }
                }
            }
        });
    });
}

/// Output rows `j0 .. j0 + 16` (the tile `yt`), input rows `i0 ..` in whole blocks of 16
/// transposed in registers; returns where the blocks stopped (the rest is left to the caller).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn blocks16(xp: &[f32], yt: &mut [f32], j0: usize, i0: usize, i1: usize, rows: usize, cols: usize) -> usize {
    let end = i0 + (i1 - i0) / 16 * 16;
    for ib in (i0..end).step_by(16) {
        transpose_block16(&xp[ib * cols + j0..], cols, 16, &mut yt[ib..], rows);
    }
    end
}

/// `dst[t * dst_stride + l] = src[l * src_stride + t]` for lines `l < lines` (at most 16) and
/// `t < 16`: 16 elements of each line, transposed in registers (missing lines read as zero and
/// are not stored). The batched transpose and the GEMM's packing both move data this way.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn transpose_block16(
    src: &[f32],
    src_stride: usize,
    lines: usize,
    dst: &mut [f32],
    dst_stride: usize,
) {
    assert!(lines <= 16);
    let r: [__m512; 16] = std::array::from_fn(|l| {
        if l < lines {
            _mm512_loadu_ps(src[l * src_stride..][..16].as_ptr())
        } else {
            _mm512_setzero_ps()
        }
    });
    let mask: __mmask16 = ((1u32 << lines) - 1) as __mmask16;
    for (t, v) in transpose16(r).iter().enumerate() {
        _mm512_mask_storeu_ps(dst[t * dst_stride..][..lines].as_mut_ptr(), mask, *v);
    }
}

/// The transpose of a 16 x 16 block held as 16 rows: pairs of rows interleaved, then pairs of
/// pairs, then 128-bit lanes gathered across.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    let a: [__m512; 16] = std::array::from_fn(|i| {
        let (x, y) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_ps(x, y)
        } else {
            _mm512_unpackhi_ps(x, y)
        }
    });
    // b[4g + c] holds, in 128-bit lane l, rows 4g .. 4g + 4 of column 4l + c.
    let b: [__m512; 16] = std::array::from_fn(|i| {
        let (g, c) = (i / 4, i % 4);
        let (x, y) = (_mm512_castps_pd(a[4 * g + c / 2]), _mm512_castps_pd(a[4 * g + 2 + c / 2]));
        _mm512_castpd_ps(if c % 2 == 0 { _mm512_unpacklo_pd(x, y) } else { _mm512_unpackhi_pd(x, y) })
    });
    let mut out = [_mm512_setzero_ps(); 16];
    for c in 0..4 {
        let u0 = _mm512_shuffle_f32x4::<0x88>(b[c], b[4 + c]);
        let u1 = _mm512_shuffle_f32x4::<0xdd>(b[c], b[4 + c]);
        let v0 = _mm512_shuffle_f32x4::<0x88>(b[8 + c], b[12 + c]);
        let v1 = _mm512_shuffle_f32x4::<0xdd>(b[8 + c], b[12 + c]);
        out[c] = _mm512_shuffle_f32x4::<0x88>(u0, v0);
        out[c + 8] = _mm512_shuffle_f32x4::<0xdd>(u0, v0);
        out[c + 4] = _mm512_shuffle_f32x4::<0x88>(u1, v1);
        out[c + 12] = _mm512_shuffle_f32x4::<0xdd>(u1, v1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{Rng, Tensor};

    /// Shapes below, at and across the tile sizes, and degenerate ones, against the index formula.
    #[test]
    fn batched_transpose_matches_index_formula() {
        let seed = Rng::fresh_seed();
        for [b, rows, cols] in
            [[1, 1, 1], [2, 3, 5], [1, 257, 17], [3, 16, 16], [2, 600, 33], [1, 5, 1000], [4, 0, 3], [1, 1, 40]]
        {
            let x = Tensor::random(&[b * rows * cols], seed, -1.0, 1.0).data;
            let mut y = vec![f32::NAN; x.len()];
            batched_transpose(&x, &mut y, [b, rows, cols]);
            for z in 0..b {
                for i in 0..rows {
                    for j in 0..cols {
                        let (got, want) = (y[z * rows * cols + j * rows + i], x[z * rows * cols + i * cols + j]);
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "[{b}, {rows}, {cols}] at ({z}, {i}, {j}) (seed {seed})"
                        );
                    }
                }
            }
        }
    }
}
