//! A cache-blocked batched transpose for the CPU backend: `[B, X, Y]` to `[B, Y, X]` (NCHW to
//! tokens and back). Gathering each output row with the input's row stride touches a new cache
//! line per element; a tile of output rows instead reuses each input line for all its columns.

use rayon::prelude::*;

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
                for (jj, yr) in yt.chunks_mut(rows).enumerate() {
                    let col = &xp[j0 + jj..];
                    for (i, v) in (i0..i1).zip(&mut yr[i0..i1]) {
                        *v = col[i * cols];
                    }
                }
            }
        });
    });
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
