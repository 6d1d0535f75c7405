//! The shared fast GEMM of the CPU backend, split over rayon's pool by rows (or columns when rows
//! are few). Where the CPU has AVX-512F the products run on our 12 x 32 register-tile kernel
//! ([`tile`]), else on `matrixmultiply`'s packed kernels (AVX2/FMA dispatched at run time);
//! `FORGE_CPU_GEMM=matrixmultiply` forces the latter (for comparisons). On the models' short-depth
//! products (k = 64-384) ours runs 1.1-1.5x matrixmultiply's rate (docs/BENCHMARKS.md).

#[cfg(target_arch = "x86_64")]
mod tile;

use super::SendPtr;
use rayon::prelude::*;
#[cfg(target_arch = "x86_64")]
use std::cell::Cell;
use std::sync::OnceLock;

/// The code that runs a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Our AVX-512 register tiles ([`tile`]).
    Tile,
    MatrixMultiply,
}

impl Kernel {
    /// The kernel of this process: [`Kernel::Tile`] where the CPU has AVX-512F, unless
    /// `FORGE_CPU_GEMM=matrixmultiply`.
    pub fn chosen() -> Kernel {
        static CHOICE: OnceLock<Kernel> = OnceLock::new();
        *CHOICE.get_or_init(|| {
            let forced = std::env::var("FORGE_CPU_GEMM").is_ok_and(|v| v == "matrixmultiply");
            #[cfg(target_arch = "x86_64")]
            if !forced && tile::available() {
                return Kernel::Tile;
            }
            let _ = forced;
            Kernel::MatrixMultiply
        })
    }

    /// The kernels this CPU can run (the tests check each).
    pub fn all_available() -> Vec<Kernel> {
        let mut all = vec![Kernel::MatrixMultiply];
        #[cfg(target_arch = "x86_64")]
        if tile::available() {
            all.push(Kernel::Tile);
        }
        all
    }
}

#[cfg(target_arch = "x86_64")]
thread_local! {
    /// Storage for packed B, kept per thread between products. Taken (not borrowed) while in use,
    /// so a product started on this thread while another waits on the pool packs into its own.
    static PACK_BUF: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Packed B larger than this is freed after the product rather than kept for the next.
#[cfg(target_arch = "x86_64")]
const PACK_KEEP_BYTES: usize = 8 << 20;

/// `f` on B packed for [`tile::gemm`], in this thread's reusable storage.
#[cfg(target_arch = "x86_64")]
fn with_packed<R>(k: usize, n: usize, b: Mat, f: impl FnOnce(&tile::PackedB) -> R) -> R {
    let packed = tile::PackedB::new(PACK_BUF.take(), k, n, b);
    let r = f(&packed);
    let buf = packed.into_vec();
    if buf.capacity() * 4 <= PACK_KEEP_BYTES {
        PACK_BUF.set(buf);
    }
    r
}

/// A strided matrix operand: element (i, j) is at `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// Row-major, `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Mat<'a> {
        Mat { data, rs: cols, cs: 1 }
    }
    /// The transpose of a row-major matrix of `cols` columns.
    pub fn t(data: &'a [f32], cols: usize) -> Mat<'a> {
        Mat { data, rs: 1, cs: cols }
    }
    fn fits(&self, r: usize, c: usize) -> bool {
        r == 0 || c == 0 || (r - 1) * self.rs + (c - 1) * self.cs < self.data.len()
    }
}

/// Below this many multiply-adds a GEMM runs on the calling thread.
const PAR_MIN: usize = 1 << 16;

/// `c[m x n] (row stride ldc) = a[m x k] * b[k x n] + (c if accumulate)`, on the pool.
/// Panics when an operand is too short for its shape (a bug in the caller, not bad input).
pub fn sgemm(m: usize, k: usize, n: usize, a: Mat, b: Mat, c: &mut [f32], ldc: usize, accumulate: bool) {
    sgemm_then(m, k, n, a, b, c, ldc, accumulate, None)
}

/// Bytes of C per row block that [`sgemm_then`] finishes before its epilogue: small enough that
/// the block is still in L2 when the epilogue reads it back, large enough that the per-call cost
/// of matrixmultiply (it allocates, faults in and frees a ~1 MiB packing buffer per call) stays
/// small.
const THEN_BLOCK_BYTES: usize = 512 << 10;

/// Rows per product before the epilogue runs on them (all `m` without one).
fn then_rows(then: Option<RowEpilogue>, m: usize, n: usize) -> usize {
    match then {
        Some(_) => (THEN_BLOCK_BYTES / 4 / n).next_multiple_of(8).max(8),
        None => m,
    }
}

fn check_operands(m: usize, k: usize, n: usize, a: Mat, b: Mat) {
    assert!(a.fits(m, k) && b.fits(k, n), "gemm operands shorter than {m}x{k} * {k}x{n}");
}

/// `then(i, row)` of [`sgemm_then`].
pub type RowEpilogue<'a> = &'a (dyn Fn(usize, &mut [f32]) + Sync);

/// [`sgemm`] followed by `then(i, row)` on every output row `i` (its `n` elements), run on each
/// block of rows right after the block's product, while it is still in cache (a bias and
/// activation would otherwise read the whole output back from memory). Without an epilogue each
/// task is one product.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_then(
    m: usize,
    k: usize,
    n: usize,
    a: Mat,
    b: Mat,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    then: Option<RowEpilogue>,
) {
    sgemm_then_on(Kernel::chosen(), m, k, n, a, b, c, ldc, accumulate, then)
}

/// [`sgemm_then`] on a given kernel.
#[allow(clippy::too_many_arguments)]
fn sgemm_then_on(
    kernel: Kernel,
    m: usize,
    k: usize,
    n: usize,
    a: Mat,
    b: Mat,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    then: Option<RowEpilogue>,
) {
    check_operands(m, k, n, a, b);
    assert!(m == 0 || n == 0 || (m - 1) * ldc + n <= c.len(), "gemm output shorter than {m}x{n}");
    assert!(ldc >= n);
    if m == 0 || n == 0 {
        return;
    }
    with_b(kernel, k, n, b, |packed| {
        let threads = rayon::current_num_threads();
        let block = then_rows(then, m, n);
        // SAFETY (of every call below): `c` points at rows of the output (bounds checked above) that
        // only this call writes, in the columns `cols` (whole register tiles for ours).
        let product = |mr: usize, a: Mat, c: *mut f32, cols: std::ops::Range<usize>| unsafe {
            product(packed, mr, k, a, b, cols, c, ldc, accumulate)
        };
        let blocked = |r0: usize, mr: usize, a: Mat, cb: &mut [f32]| {
            for s0 in (0..mr).step_by(block) {
                let sr = block.min(mr - s0);
                let ab = Mat { data: &a.data[s0 * a.rs..], ..a };
                let cs = &mut cb[s0 * ldc..(s0 + sr - 1) * ldc + n];
                product(sr, ab, cs.as_mut_ptr(), 0..n);
                if let Some(then) = then {
                    for i in 0..sr {
                        then(r0 + s0 + i, &mut cs[i * ldc..i * ldc + n]);
                    }
                }
            }
        };
        if threads == 1 || m * n * k < PAR_MIN {
            return blocked(0, m, a, c);
        }
        if m >= 16 * threads || m >= n {
            // Row blocks: a multiple of 8 rows per task, a few tasks per thread.
            let rows = m.div_ceil(threads * 2).next_multiple_of(8).max(8);
            c[..(m - 1) * ldc + n].par_chunks_mut(rows * ldc).enumerate().for_each(|(t, cb)| {
                let r0 = t * rows;
                let mr = rows.min(m - r0);
                let ab = Mat { data: &a.data[r0 * a.rs..], ..a };
                blocked(r0, mr, ab, cb);
            });
        } else {
            // Column blocks (whole register tiles): each task writes its own columns of every row.
            let cols = n.div_ceil(threads * 2).next_multiple_of(32).max(32);
            let ptr = SendPtr(c.as_mut_ptr());
            (0..n.div_ceil(cols)).into_par_iter().for_each(|t| {
                let c0 = t * cols;
                let nc = cols.min(n - c0);
                let p = ptr;
                // Tasks write disjoint column ranges [c0, c0 + nc) of rows < m.
                product(m, a, p.0, c0..c0 + nc);
            });
            // Few rows: the epilogue afterwards, a row per task.
            if let Some(then) = then {
                c[..(m - 1) * ldc + n].par_chunks_mut(ldc).enumerate().for_each(|(i, row)| then(i, &mut row[..n]));
            }
        }
    })
}

#[cfg(target_arch = "x86_64")]
type Packed = tile::PackedB;
#[cfg(not(target_arch = "x86_64"))]
type Packed = ();

/// `f` with B packed once for all tasks when `kernel` is ours (`None` for matrixmultiply, which
/// packs per call).
fn with_b<R>(kernel: Kernel, k: usize, n: usize, b: Mat, f: impl FnOnce(Option<&Packed>) -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::Tile && k > 0 {
        return with_packed(k, n, b, |bp| f(Some(bp)));
    }
    let _ = (kernel, k, n, b);
    f(None)
}

/// Rows `0 .. m` of `a` times the columns `cols` of `b` (on ours, whole panels of 32 but the
/// last) into `c`, element (i, j) at `c[i * ldc + j]`.
///
/// # Safety
/// `c` is valid for those elements, which no other thread touches meanwhile; the operands hold
/// `m x k` and `k x n` (checked by the caller).
#[allow(clippy::too_many_arguments)]
unsafe fn product(
    packed: Option<&Packed>,
    m: usize,
    k: usize,
    a: Mat,
    b: Mat,
    cols: std::ops::Range<usize>,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(bp) = packed {
        let panels = cols.start / tile::NR..cols.end.div_ceil(tile::NR);
        return tile::gemm(m, a, bp, panels, c, ldc, accumulate);
    }
    let _ = packed;
    let bb = Mat { data: &b.data[cols.start * b.cs..], ..b };
    raw(Kernel::MatrixMultiply, m, k, cols.len(), a, bb, c.add(cols.start), ldc, 1, accumulate)
}

/// [`sgemm_then`] with the product stored transposed: element (i, j) of `a * b` goes to
/// `c[j * ldc + i]` (an `n x m` output of row stride `ldc`), so that a transpose after the product
/// costs no pass of its own. `then(j, part)` runs on each finished stretch `part` of output row
/// `j` (consecutive product rows), while it is in cache. Tasks split the product's rows.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_t_then(
    m: usize,
    k: usize,
    n: usize,
    a: Mat,
    b: Mat,
    c: &mut [f32],
    ldc: usize,
    then: Option<RowEpilogue>,
) {
    check_operands(m, k, n, a, b);
    assert!(m == 0 || n == 0 || (n - 1) * ldc + m <= c.len(), "transposed gemm output shorter than {n}x{m}");
    assert!(ldc >= m);
    if m == 0 || n == 0 {
        return;
    }
    let block = then_rows(then, m, n);
    let ptr = SendPtr(c.as_mut_ptr());
    // Product rows r0 .. r0 + mr: output columns that no other task writes.
    let task = |r0: usize, mr: usize| {
        let p = ptr;
        for s0 in (r0..r0 + mr).step_by(block) {
            let sr = block.min(r0 + mr - s0);
            let ab = Mat { data: &a.data[s0 * a.rs..], ..a };
            // SAFETY: elements (j, s0 .. s0 + sr) of the output for j < n lie inside `c` (checked
            // above) and belong to this task alone.
            unsafe { raw(Kernel::chosen(), sr, k, n, ab, b, p.0.add(s0), 1, ldc, false) };
            if let Some(then) = then {
                for j in 0..n {
                    // SAFETY: as above; this stretch is not aliased while `then` holds it.
                    then(j, unsafe { std::slice::from_raw_parts_mut(p.0.add(j * ldc + s0), sr) });
                }
            }
        }
    };
    let threads = rayon::current_num_threads();
    if threads == 1 || m * n * k < PAR_MIN {
        return task(0, m);
    }
    let rows = m.div_ceil(threads * 2).next_multiple_of(16).max(16);
    (0..m.div_ceil(rows)).into_par_iter().for_each(|t| task(t * rows, rows.min(m - t * rows)));
}

/// [`sgemm`] on the calling thread.
pub fn sgemm_serial(m: usize, k: usize, n: usize, a: Mat, b: Mat, c: &mut [f32], ldc: usize, accumulate: bool) {
    check_operands(m, k, n, a, b);
    assert!(m == 0 || n == 0 || (m - 1) * ldc + n <= c.len(), "gemm output shorter than {m}x{n}");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: bounds checked above for every element the product reads or writes.
    unsafe { raw(Kernel::chosen(), m, k, n, a, b, c.as_mut_ptr(), ldc, 1, accumulate) }
}

/// [`sgemm_serial`] into a raw output: `c` must be valid for writes of rows `0 .. m` (row stride
/// `ldc`), columns `0 .. n`, and no other thread may touch those elements meanwhile (other
/// elements between them may be written by others: only the block's own elements are written).
///
/// # Safety
/// As above; the operands' bounds are checked.
pub unsafe fn sgemm_into(m: usize, k: usize, n: usize, a: Mat, b: Mat, c: *mut f32, ldc: usize) {
    check_operands(m, k, n, a, b);
    if m > 0 && n > 0 {
        raw(Kernel::chosen(), m, k, n, a, b, c, ldc, 1, false)
    }
}

/// Rows of `a` per pass of [`sgemm_few_rows`] and columns per strip: 8 x 16 accumulators stay
/// in registers (AVX-512: eight zmm) while `k` streams by.
const FEW_MR: usize = 8;
const FEW_NR: usize = 16;

/// Below this many rows [`sgemm_few_rows`] beats matrixmultiply, which packs all of `b` for
/// every call: with few rows each packed element is used only a few times (Mesorch's gate conv
/// to 8 scales ran at 5 GFLOP/s through it).
pub const FEW_ROWS: usize = 32;

/// `c[m x n] (row stride ldc) = a[m x k] * b[k x n]` on the calling thread, for few rows of `a`:
/// `b` is read in place (it must have unit column stride); see [`sgemm_few_rows_at`].
///
/// # Safety
/// As [`sgemm_into`]: `c` valid for writes of rows `0 .. m` (stride `ldc`), columns `0 .. n`,
/// and no other thread touching them. The operands' bounds are checked.
pub unsafe fn sgemm_few_rows(m: usize, k: usize, n: usize, a: Mat, b: Mat, c: *mut f32, ldc: usize) {
    assert!(a.fits(m, k) && b.fits(k, n) && b.cs == 1, "few-row gemm operands: {m}x{k} * {k}x{n}, b unit columns");
    let rows: Vec<(usize, usize)> = (0..k).map(|kk| (kk * b.rs, kk)).collect();
    sgemm_few_rows_at(m, n, a, b.data, &rows, c, ldc)
}

/// `c[i][j] = sum over (off, kk) in rows of a(i, kk) * b[off + j]` for `i < m`, `j < n`: a
/// product whose right operand's rows lie anywhere in `b` (a convolution's input rows, read in
/// place with no im2col copy). Per strip of 16 columns the accumulators of 8 rows of `a` stay in
/// registers while the rows stream by; each element is one sum in the order of `rows`.
///
/// # Safety
/// As [`sgemm_few_rows`]; every row `b[off .. off + n]` and every `a(i, kk)` is bounds-checked.
pub unsafe fn sgemm_few_rows_at(
    m: usize,
    n: usize,
    a: Mat,
    b: &[f32],
    rows: &[(usize, usize)],
    c: *mut f32,
    ldc: usize,
) {
    assert!(rows.iter().all(|&(off, kk)| off + n <= b.len() && a.fits(m, kk + 1)), "few-row gemm rows out of bounds");
    let k = rows.len();
    // Up to 8 rows of `a`, in the order of `rows` and zero-padded, so a pass always computes 8.
    let mut ap = vec![0.0f32; k * FEW_MR];
    let offs: Vec<usize> = rows.iter().map(|r| r.0).collect();
    let strips = n / FEW_NR;
    for r0 in (0..m).step_by(FEW_MR) {
        let live = FEW_MR.min(m - r0);
        for (dst, &(_, kk)) in ap.chunks_exact_mut(FEW_MR).zip(rows) {
            for (r, v) in dst.iter_mut().enumerate() {
                *v = if r < live { a.data[(r0 + r) * a.rs + kk * a.cs] } else { 0.0 };
            }
        }
        for s in 0..strips {
            let mut acc = [[0.0f32; FEW_NR]; FEW_MR];
            few_rows_strip(&ap, &b[s * FEW_NR..], &offs, &mut acc);
            for (r, row) in acc.iter().enumerate().take(live) {
                std::ptr::copy_nonoverlapping(row.as_ptr(), c.add((r0 + r) * ldc + s * FEW_NR), FEW_NR);
            }
        }
        for j in strips * FEW_NR..n {
            for r in 0..live {
                let mut sum = 0.0f32;
                for (t, &off) in offs.iter().enumerate() {
                    sum += ap[t * FEW_MR + r] * b[off + j];
                }
                *c.add((r0 + r) * ldc + j) = sum;
            }
        }
    }
}

/// `acc[r][l] += sum_t ap[t * 8 + r] * b[offs[t] + l]` for one strip of 16 columns: AVX-512
/// (eight zmm accumulators, fused multiply-adds) where the CPU has it, else plain loops row by
/// row (LLVM vectorizes those along the columns; written as one loop nest it gathered instead).
fn few_rows_strip(ap: &[f32], b: &[f32], offs: &[usize], acc: &mut [[f32; FEW_NR]; FEW_MR]) {
    assert!(ap.len() >= offs.len() * FEW_MR && offs.iter().all(|&o| o + FEW_NR <= b.len()));
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; every load is inside `ap` / `b` (asserted above).
        return unsafe { few_rows_strip_avx512(ap.as_ptr(), b.as_ptr(), offs, acc) };
    }
    for (r, row) in acc.iter_mut().enumerate() {
        for (t, &off) in offs.iter().enumerate() {
            let x = ap[t * FEW_MR + r];
            for (v, &y) in row.iter_mut().zip(&b[off..off + FEW_NR]) {
                *v += x * y;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn few_rows_strip_avx512(ap: *const f32, b: *const f32, offs: &[usize], acc: &mut [[f32; FEW_NR]; FEW_MR]) {
    use std::arch::x86_64::*;
    let mut t = [_mm512_setzero_ps(); FEW_MR];
    for (v, row) in t.iter_mut().zip(acc.iter()) {
        *v = _mm512_loadu_ps(row.as_ptr());
    }
    for (kk, &off) in offs.iter().enumerate() {
        let bv = _mm512_loadu_ps(b.add(off));
        let a = ap.add(kk * FEW_MR);
        for (r, v) in t.iter_mut().enumerate() {
            *v = _mm512_fmadd_ps(_mm512_set1_ps(*a.add(r)), bv, *v);
        }
    }
    for (v, row) in t.iter().zip(acc.iter_mut()) {
        _mm512_storeu_ps(row.as_mut_ptr(), *v);
    }
}

/// The product into `c` with element (i, j) at `c[i * rsc + j * csc]`, on `kernel`.
#[allow(clippy::too_many_arguments)]
unsafe fn raw(
    kernel: Kernel,
    m: usize,
    k: usize,
    n: usize,
    a: Mat,
    b: Mat,
    c: *mut f32,
    rsc: usize,
    csc: usize,
    accumulate: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::Tile && k > 0 {
        if csc == 1 {
            return with_packed(k, n, b, |bp| tile::gemm(m, a, bp, 0..bp.panels(), c, rsc, accumulate));
        }
        if rsc == 1 {
            // A transposed output is the transposed product stored by rows: c^T = b^T a^T (then
            // a^T is packed as the right operand, by 16 x 16 transposes in registers; storing
            // the tiles transposed instead ran at half the rate at n = 384).
            let (at, bt) = (Mat { rs: a.cs, cs: a.rs, ..a }, Mat { rs: b.cs, cs: b.rs, ..b });
            return raw(kernel, n, k, m, bt, at, c, csc, 1, accumulate);
        }
    }
    let _ = kernel;
    let beta = if accumulate { 1.0 } else { 0.0 };
    if k == 0 {
        // matrixmultiply leaves C scaled by beta when k == 0.
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    *c.add(i * rsc + j * csc) = 0.0;
                }
            }
        }
        return;
    }
    matrixmultiply::sgemm(
        m,
        k,
        n,
        1.0,
        a.data.as_ptr(),
        a.rs as isize,
        a.cs as isize,
        b.data.as_ptr(),
        b.rs as isize,
        b.cs as isize,
        beta,
        c,
        rsc as isize,
        csc as isize,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{Rng, Tensor};

    fn naive(m: usize, k: usize, n: usize, a: Mat, b: Mat) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    s += a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    /// Random shapes (1, primes, both split directions), both layouts of each operand, with and
    /// without accumulation, against an f64 triple loop, on every kernel this CPU has; relative
    /// tolerance 1e-5 of the scale.
    #[test]
    fn sgemm_matches_naive_product() {
        let seed = Rng::fresh_seed();
        let mut rng = Rng::new(seed);
        let mut shapes = vec![(1, 1, 1), (0, 3, 4), (3, 0, 5), (1, 300, 7), (300, 13, 1), (7, 64, 257), (129, 33, 65)];
        for _ in 0..6 {
            shapes.push((rng.range(1, 200), rng.range(1, 150), rng.range(1, 200)));
        }
        for kernel in Kernel::all_available() {
            for &(m, k, n) in &shapes {
                let at = Tensor::random(&[m * k], seed ^ 1, -1.0, 1.0).data;
                let bt = Tensor::random(&[k * n], seed ^ 2, -1.0, 1.0).data;
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    let a = if ta { Mat::t(&at, m) } else { Mat::rows(&at, k) };
                    let b = if tb { Mat::t(&bt, k) } else { Mat::rows(&bt, n) };
                    let want = naive(m, k, n, a, b);
                    let scale = want.iter().fold(1.0f32, |s, v| s.max(v.abs()));
                    let mut c = vec![0.5f32; m * n];
                    sgemm_then_on(kernel, m, k, n, a, b, &mut c, n, false, None);
                    let err = c.iter().zip(&want).fold(0.0f32, |e, (x, y)| e.max((x - y).abs()));
                    assert!(err <= 1e-5 * scale, "{kernel:?} {m}x{k}x{n} ta {ta} tb {tb}: error {err} (seed {seed})");
                    sgemm_then_on(kernel, m, k, n, a, b, &mut c, n, true, None);
                    let err = c.iter().zip(&want).fold(0.0f32, |e, (x, y)| e.max((x - 2.0 * y).abs()));
                    assert!(err <= 2e-5 * scale, "{kernel:?} {m}x{k}x{n} accumulate: error {err} (seed {seed})");
                }
            }
        }
    }

    /// The serial product on each kernel around the register tile's edges (rows around 12,
    /// columns around 32, depths around the 256 block and split unevenly), with A row-major,
    /// transposed or strided both ways (packed), B either way, wide enough that a row-major A is
    /// packed too, into an output with gaps (row stride > n) or stored transposed: matches the f64
    /// product, accumulates, and leaves the gaps alone.
    #[test]
    fn raw_product_matches_naive_at_tile_edges() {
        let seed = Rng::fresh_seed();
        let shapes = [
            (12, 256, 32),
            (13, 255, 31),
            (11, 257, 33),
            (25, 384, 65),
            (1, 600, 300),
            (40, 7, 260),
            (30, 100, 257),
            (24, 1, 1),
        ];
        for kernel in Kernel::all_available() {
            for (m, k, n) in shapes {
                // A stored with row stride 2k + 1 and column stride 2 in the strided case.
                let at = Tensor::random(&[m * (2 * k + 1)], seed ^ 11, -1.0, 1.0).data;
                let bt = Tensor::random(&[k * n], seed ^ 12, -1.0, 1.0).data;
                let a_forms = [Mat::rows(&at, k), Mat::t(&at, m), Mat { data: &at, rs: 2 * k + 1, cs: 2 }];
                for (fa, a) in a_forms.into_iter().enumerate() {
                    for b in [Mat::rows(&bt, n), Mat::t(&bt, k)] {
                        let want = naive(m, k, n, a, b);
                        let tol = 1e-5 * (k as f32).sqrt().max(1.0) * 4.0;
                        for transposed in [false, true] {
                            // Element (i, j) at i * rsc + j * csc, with a gap of 3 after each line.
                            let (rsc, csc, lines, line) =
                                if transposed { (1, m + 3, n, m + 3) } else { (n + 3, 1, m, n + 3) };
                            let mut c = vec![-9.0f32; lines * line];
                            for pass in 0..2 {
                                // SAFETY: `c` holds every (i, j) of the product at that layout.
                                unsafe { raw(kernel, m, k, n, a, b, c.as_mut_ptr(), rsc, csc, pass == 1) };
                                for i in 0..m {
                                    for j in 0..n {
                                        let (got, w) = (c[i * rsc + j * csc], want[i * n + j] * (pass + 1) as f32);
                                        assert!(
                                            (got - w).abs() <= tol,
                                            "{kernel:?} {m}x{k}x{n} a{fa} b.cs {} t {transposed} pass {pass} ({i}, {j}): {got} vs {w} (seed {seed})",
                                            b.cs
                                        );
                                    }
                                }
                            }
                            let gaps = c.chunks(line).flat_map(|l| &l[line - 3..]);
                            assert!(gaps.into_iter().all(|&v| v == -9.0), "{kernel:?} {m}x{k}x{n}: wrote a gap");
                        }
                    }
                }
            }
        }
    }

    /// The few-row GEMM on every row count up to two passes, column counts around the strip of
    /// 16, both layouts of `a` and a `b` wider than the product (its row stride is not `n`),
    /// against the f64 product; nothing outside the product is written.
    #[test]
    fn few_rows_matches_naive_product() {
        let seed = Rng::fresh_seed();
        for (m, k, n) in [(1, 1, 1), (3, 0, 5), (8, 37, 16), (5, 100, 33), (13, 64, 15), (16, 9, 48), (2, 300, 17)] {
            let ldb = n + 3;
            let at = Tensor::random(&[m * k], seed ^ 3, -1.0, 1.0).data;
            let bt = Tensor::random(&[k * ldb], seed ^ 4, -1.0, 1.0).data;
            let b = Mat::rows(&bt, ldb);
            for a in [Mat::rows(&at, k), Mat::t(&at, m)] {
                let want = naive(m, k, n, a, b);
                let ldc = n + 1;
                let mut c = vec![7.0f32; m * ldc];
                // SAFETY: `c` holds m rows of stride ldc >= n.
                unsafe { sgemm_few_rows(m, k, n, a, b, c.as_mut_ptr(), ldc) };
                for i in 0..m {
                    assert_eq!(c[i * ldc + n], 7.0, "{m}x{k}x{n}: wrote past row {i}");
                    for j in 0..n {
                        let (got, w) = (c[i * ldc + j], want[i * n + j]);
                        assert!(
                            (got - w).abs() <= 1e-5 * (k as f32).max(1.0),
                            "{m}x{k}x{n} ({i}, {j}): {got} vs {w} (seed {seed})"
                        );
                    }
                }
            }
        }
    }

    /// [`sgemm_t_then`] stores the product transposed, leaves the row gaps alone, and runs the
    /// epilogue once on every element with its output row's index: serial, one block per task and
    /// several blocks per task.
    #[test]
    fn sgemm_t_then_writes_the_transposed_product() {
        let seed = Rng::fresh_seed();
        for (m, k, n) in [(3, 4, 5), (700, 30, 300), (5, 40, 2000), (1000, 7, 3), (1000, 7, 3000)] {
            let at = Tensor::random(&[m * k], seed ^ 8, -1.0, 1.0).data;
            let bt = Tensor::random(&[k * n], seed ^ 9, -1.0, 1.0).data;
            let (a, b) = (Mat::rows(&at, k), Mat::t(&bt, k));
            let want = naive(m, k, n, a, b);
            let ldc = m + 3;
            for with_then in [false, true] {
                let mut c = vec![-3.0f32; n * ldc];
                let then = |j: usize, part: &mut [f32]| part.iter_mut().for_each(|v| *v = *v * 2.0 + j as f32);
                sgemm_t_then(m, k, n, a, b, &mut c, ldc, with_then.then_some(&then as RowEpilogue));
                for j in 0..n {
                    for i in 0..ldc {
                        let got = c[j * ldc + i];
                        if i >= m {
                            assert_eq!(got, -3.0, "{m}x{k}x{n}: wrote the gap at ({j}, {i})");
                            continue;
                        }
                        let w = if with_then { want[i * n + j] * 2.0 + j as f32 } else { want[i * n + j] };
                        assert!(
                            (got - w).abs() <= 1e-4 * w.abs().max(1.0),
                            "{m}x{k}x{n} then {with_then} ({j}, {i}): {got} vs {w} (seed {seed})"
                        );
                    }
                }
            }
        }
    }

    /// The epilogue of [`sgemm_then`] sees every row exactly once, with its own index, after its
    /// product: on the serial path, on row tasks split into several blocks, and on column tasks.
    #[test]
    fn sgemm_then_runs_the_epilogue_once_per_finished_row() {
        let seed = Rng::fresh_seed();
        for (m, k, n) in [(3, 4, 5), (700, 30, 300), (5, 40, 2000)] {
            let at = Tensor::random(&[m * k], seed ^ 5, -1.0, 1.0).data;
            let bt = Tensor::random(&[k * n], seed ^ 6, -1.0, 1.0).data;
            let (a, b) = (Mat::rows(&at, k), Mat::rows(&bt, n));
            let want = naive(m, k, n, a, b);
            let ldc = n + 2;
            for kernel in Kernel::all_available() {
                let mut c = vec![-3.0f32; m * ldc];
                let then = |i: usize, row: &mut [f32]| {
                    assert_eq!(row.len(), n);
                    row.iter_mut().for_each(|v| *v = *v * 2.0 + i as f32);
                };
                sgemm_then_on(kernel, m, k, n, a, b, &mut c, ldc, false, Some(&then));
                for i in 0..m {
                    for j in 0..ldc {
                        let got = c[i * ldc + j];
                        if j >= n {
                            assert_eq!(got, -3.0, "{m}x{k}x{n}: wrote the gap at ({i}, {j})");
                        } else {
                            let w = want[i * n + j] * 2.0 + i as f32;
                            assert!(
                                (got - w).abs() <= 1e-4 * w.abs().max(1.0),
                                "{kernel:?} {m}x{k}x{n} ({i}, {j}): {got} vs {w} (seed {seed})"
                            );
                        }
                    }
                }
            }
        }
    }
}
