//! The shared fast GEMM of the CPU backend, split over rayon's pool by rows (or columns when rows
//! are few). Where the CPU has AVX-512F the products run on our 12 x 32 register-tile kernel
//! ([`tile`]), else on `matrixmultiply`'s packed kernels (AVX2/FMA dispatched at run time);
//! `FORGE_CPU_GEMM=matrixmultiply` forces the latter (for comparisons). On the models' short-depth
//! products (k = 64-384) ours runs 1.1-1.5x matrixmultiply's rate (docs/BENCHMARKS.md).

#[cfg(target_arch = "x86_64")]
mod tile;
mod weight;

pub use weight::{PackedRhs, PackedWeight};

use super::epilogue::{affine_act, Addend};
use super::SendPtr;
use crate::ops::act::Act;
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

/// Tasks per thread when a product's rows (or output lines) are split over the pool. The cores
/// of a shared machine run at different speeds from one moment to the next (one measured 167
/// GFLOP/s while the other ran 135), and with two tasks per thread the faster core waited for the
/// slower one's last; splitting finer (whole register strips, no work repeated: each task packs
/// only its own strips of A) balances them. Mesorch-P on 2 threads, each node run with both
/// splits back to back (10 runs): 8 per thread took 0.957-0.968 of the time of 2, 4 about 0.99,
/// 16 and 32 the same as 8.
const TASKS_PER_THREAD: usize = 8;

/// Below this many multiply-adds a GEMM runs on the calling thread.
const PAR_MIN: usize = 1 << 16;

/// `c[m x n] (row stride ldc) = a[m x k] * b[k x n] + (c if accumulate)`, on the pool.
/// Panics when an operand is too short for its shape (a bug in the caller, not bad input).
pub fn sgemm(m: usize, k: usize, n: usize, a: Mat, b: Mat, c: &mut [f32], ldc: usize, accumulate: bool) {
    sgemm_then(m, k, n, a, b, c, ldc, accumulate, Then::None)
}

/// Bytes of C per row block that [`sgemm_then`] finishes before a [`Then::Rows`] epilogue:
/// small enough that the block is still in L2 when the epilogue reads it back, large enough that
/// the per-call cost of matrixmultiply (it allocates, faults in and frees a ~1 MiB packing buffer
/// per call) stays small.
const THEN_BLOCK_BYTES: usize = 512 << 10;

/// Rows of a task or block: a multiple of 24, whole register tiles of ours (12 rows) and of
/// matrixmultiply's (8).
const ROW_STEP: usize = 24;

/// What runs on a product's output as it is finished.
#[derive(Clone, Copy)]
pub enum Then<'a> {
    None,
    /// `f(line, first, stretch)` on each finished stretch of an output line (row `i` of the
    /// product, or row `j` of a transposed store) that starts at element `first` of the line,
    /// while it is in cache.
    Rows(RowEpilogue<'a>),
    /// An affine map and activation, in our kernel's registers before the store where it can
    /// ([`Tail::fusable`]), else as [`Then::Rows`].
    Tail(Tail<'a>),
}

/// `y = act(alpha * y + bias)` on each element of the product (the operations of [`affine_act`],
/// so the same bits either way).
#[derive(Clone, Copy, Debug)]
pub struct Tail<'a> {
    pub alpha: f32,
    pub bias: Bias<'a>,
    pub act: Act,
}

/// The addend of a [`Tail`].
#[derive(Clone, Copy, Debug)]
pub enum Bias<'a> {
    None,
    /// `bias[j]` for product column `j` (a linear layer's).
    Cols(&'a [f32]),
    /// `bias[i]` for product row `i` (a convolution's per output channel).
    Rows(&'a [f32]),
}

impl Tail<'_> {
    /// `y = alpha * y`: no bias, no activation.
    pub fn scale(alpha: f32) -> Self {
        Tail { alpha, bias: Bias::None, act: Act::None }
    }

    /// Whether our kernel applies it in registers (identity and GELU, the models' GEMM tails).
    fn fusable(&self) -> bool {
        matches!(self.act, Act::None | Act::Gelu)
    }

    /// Panics unless the bias has a value for each of the product's `n` columns (`m` rows).
    fn check_bias(&self, m: usize, n: usize) {
        match self.bias {
            Bias::None => {}
            Bias::Cols(v) => assert!(v.len() >= n, "gemm tail: {} biases for {n} columns", v.len()),
            Bias::Rows(v) => assert!(v.len() >= m, "gemm tail: {} biases for {m} rows", v.len()),
        }
    }

    /// Our kernel's form (the caller has checked the bias's length).
    #[cfg(target_arch = "x86_64")]
    fn for_tile(self) -> tile::Tail {
        let (bias, bias_rows) = match self.bias {
            Bias::None => (None, false),
            Bias::Cols(b) => (Some(b.as_ptr()), false),
            Bias::Rows(b) => (Some(b.as_ptr()), true),
        };
        tile::Tail { alpha: self.alpha, bias, bias_rows, gelu: self.act == Act::Gelu }
    }

    /// The tail on elements `first .. first + part.len()` of output line `line`: a row of the
    /// product, or a column of it when the product is stored transposed.
    fn on_line(&self, transposed: bool, line: usize, first: usize, part: &mut [f32]) {
        let add = match (self.bias, transposed) {
            (Bias::None, _) => Addend::None,
            (Bias::Cols(v), false) | (Bias::Rows(v), true) => Addend::Row(&v[first..first + part.len()]),
            (Bias::Rows(v), false) | (Bias::Cols(v), true) => Addend::Scalar(v[line]),
        };
        affine_act(self.act, part, self.alpha, add);
    }

    /// The tail of rows `first ..` of the product.
    fn rows_from(self, first: usize) -> Self {
        match self.bias {
            Bias::Rows(v) => Tail { bias: Bias::Rows(&v[first..]), ..self },
            _ => self,
        }
    }

    /// The tail of the transposed product.
    fn transposed(self) -> Self {
        let bias = match self.bias {
            Bias::None => Bias::None,
            Bias::Cols(b) => Bias::Rows(b),
            Bias::Rows(b) => Bias::Cols(b),
        };
        Tail { bias, ..self }
    }
}

/// Up to this many columns our kernel stores a transposed product's tiles transposed (each tile
/// 32 output rows of 12 floats); wider products are computed transposed instead
/// ([`t_swapped`]): each strip of tiles writes a line in every output row, a plane apart (the
/// same L1 sets, a TLB entry each). Measured (`t_swapped` / in place, GFLOP/s, 2 threads):
/// n = 96 133 / 145, 192 153 / 151, 256 136 / 107, 384 148 / 104.
#[cfg(target_arch = "x86_64")]
const TILE_T_MAX_N: usize = 128;

/// [`sgemm_t_then`] on our kernel as the product of the transposes, c^T = b^T a^T, stored by
/// rows (on [`t_swapped_row_tasks`] for long a^T of short depth): a's rows go by in blocks, each
/// packed once as the right operand (16 x 16 transposes in registers, on the pool when large), and
/// the tasks split b^T's rows (the output's lines), each multiplying its own by the block and then
/// running the row epilogue on what it wrote. Each task so reads its part of b once per block:
/// when the tasks split a's rows instead, every one packed all of b^T's strips for each of its
/// blocks (a 1536 x 384 weight ~12 times per product, at 113-150 GFLOP/s against 162-200 for the
/// same product stored by rows).
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn t_swapped(
    m: usize,
    k: usize,
    n: usize,
    a: Mat,
    b: Mat,
    c: &mut [f32],
    ldc: usize,
    fused: Option<Tail>,
    rows_then: Option<RowEpilogue>,
) {
    let (at, bt) = (Mat { rs: a.cs, cs: a.rs, ..a }, Mat { rs: b.cs, cs: b.rs, ..b });
    let ptr = SendPtr(c.as_mut_ptr());
    let threads = rayon::current_num_threads();
    let serial = threads == 1 || m * n * k < PAR_MIN;
    if !serial && m * k * 4 > tile::B_BLOCK_BYTES && k < SWAP_SPLIT_LINES_MIN_K {
        return t_swapped_row_tasks(m, k, n, at, bt, ptr, ldc, fused, rows_then);
    }
    // Blocks of a's rows: as few as fit the L2 budget of a block of packed B (a^T is B here),
    // split evenly in whole panels; with a row epilogue also small enough that a block's output
    // is still in cache when it runs.
    let mut most = (tile::B_BLOCK_BYTES / 4 / k.max(1)).max(tile::NR);
    if rows_then.is_some() {
        most = most.min(then_rows(true, m, n));
    }
    let block = m.div_ceil(m.div_ceil(most)).next_multiple_of(tile::NR);
    let lines = if serial { n } else { n.div_ceil(threads * TASKS_PER_THREAD).next_multiple_of(tile::MR) };
    for s0 in (0..m).step_by(block) {
        let sr = block.min(m - s0);
        let ats = Mat { data: &at.data[s0 * at.cs..], ..at };
        with_packed(k, sr, ats, |bp| {
            let task = |t: usize| {
                let (j0, nj) = (t * lines, lines.min(n - t * lines));
                let p = ptr;
                let tail = fused.map(|t| t.rows_from(s0).transposed().rows_from(j0).for_tile());
                let btj = Mat { data: &bt.data[j0 * bt.rs..], ..bt };
                // SAFETY: elements (j0 .. j0 + nj, s0 .. s0 + sr) of the output lie inside `c`
                // (checked by the caller) and belong to this task alone; a tail's bias holds n
                // values (m per row).
                let out = tile::Out { c: unsafe { p.0.add(j0 * ldc + s0) }, rs: ldc, cs: 1, accumulate: false, tail };
                unsafe { tile::gemm(nj, btj, bp, 0..bp.panels(), out) };
                if let Some(then) = rows_then {
                    // SAFETY: as above.
                    unsafe { then_on_lines(then, p.0, ldc, j0..j0 + nj, s0..s0 + sr) };
                }
            };
            if serial {
                task(0)
            } else {
                (0..n.div_ceil(lines)).into_par_iter().for_each(task)
            }
        });
    }
}

/// Depth from which [`t_swapped`] splits the output's lines over the tasks even when a^T takes
/// several blocks. Below it the tasks split a's rows, each packing its own blocks of a^T (in its
/// own L2) and reading all of b^T per block: with short depths b^T's strips are cheap to pack,
/// and sharing a^T's blocks between the cores cost more (4096 x 768 x 192 and 16384 x 64 x 256
/// ran 10-20% slower split by lines; 1024 x 1536 x 384 ran 10-40% faster).
#[cfg(target_arch = "x86_64")]
const SWAP_SPLIT_LINES_MIN_K: usize = 1024;

/// [`t_swapped`] with tasks splitting a's rows (see [`SWAP_SPLIT_LINES_MIN_K`]).
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn t_swapped_row_tasks(
    m: usize,
    k: usize,
    n: usize,
    at: Mat,
    bt: Mat,
    ptr: SendPtr,
    ldc: usize,
    fused: Option<Tail>,
    rows_then: Option<RowEpilogue>,
) {
    let block = match rows_then {
        Some(_) => then_rows(true, m, n),
        None => (ROW_TASK_BLOCK_BYTES / 4 / k).next_multiple_of(ROW_STEP),
    };
    let task = |r0: usize, mr: usize| {
        let p = ptr;
        for s0 in (r0..r0 + mr).step_by(block) {
            let sr = block.min(r0 + mr - s0);
            let tail = fused.map(|t| t.rows_from(s0).transposed().for_tile());
            let ats = Mat { data: &at.data[s0 * at.cs..], ..at };
            // SAFETY: elements (j, s0 .. s0 + sr) of the output for j < n lie inside `c` (checked
            // by the caller) and belong to this task alone; a tail's bias holds n values.
            let out = tile::Out { c: unsafe { p.0.add(s0) }, rs: ldc, cs: 1, accumulate: false, tail };
            with_packed(k, sr, ats, |bp| unsafe { tile::gemm(n, bt, bp, 0..bp.panels(), out) });
            if let Some(then) = rows_then {
                // SAFETY: as above.
                unsafe { then_on_lines(then, p.0, ldc, 0..n, s0..s0 + sr) };
            }
        }
    };
    let rows = m.div_ceil(rayon::current_num_threads() * 2).next_multiple_of(32);
    (0..m.div_ceil(rows)).into_par_iter().for_each(|t| task(t * rows, rows.min(m - t * rows)));
}

/// Packed a^T per task block of [`t_swapped_row_tasks`].
#[cfg(target_arch = "x86_64")]
const ROW_TASK_BLOCK_BYTES: usize = 512 << 10;

/// `then(line, span.start, stretch)` on elements `span` of each output line in `lines` (row
/// stride `ldc`): a row epilogue's view of a finished block, by rows or transposed.
///
/// # Safety
/// Those elements lie in the output behind `c` and belong to the caller alone meanwhile.
unsafe fn then_on_lines(
    then: RowEpilogue,
    c: *mut f32,
    ldc: usize,
    lines: std::ops::Range<usize>,
    span: std::ops::Range<usize>,
) {
    for line in lines {
        then(line, span.start, std::slice::from_raw_parts_mut(c.add(line * ldc + span.start), span.len()));
    }
}

/// Rows per product before a row epilogue runs on them (all `m` without one).
fn then_rows(has_rows_epilogue: bool, m: usize, n: usize) -> usize {
    if has_rows_epilogue {
        (THEN_BLOCK_BYTES / 4 / n).next_multiple_of(ROW_STEP).max(ROW_STEP)
    } else {
        m
    }
}

fn check_operands(m: usize, k: usize, n: usize, a: Mat, b: Mat) {
    assert!(a.fits(m, k) && b.fits(k, n), "gemm operands shorter than {m}x{k} * {k}x{n}");
}

/// `then(line, first, stretch)` of [`Then::Rows`].
pub type RowEpilogue<'a> = &'a (dyn Fn(usize, usize, &mut [f32]) + Sync);

/// [`sgemm`] followed by `then` on every output row: fused into the stores or run on each block
/// of rows right after the block's product, while it is still in cache (a bias and activation
/// would otherwise read the whole output back from memory).
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
    then: Then,
) {
    sgemm_then_on(Kernel::chosen(), m, k, n, a, b, c, ldc, Store::Rows { accumulate }, then)
}

/// [`sgemm_then`] with the product stored transposed: element (i, j) of `a * b` goes to
/// `c[j * ldc + i]` (an `n x m` output of row stride `ldc`), so that a transpose after the product
/// costs no pass of its own. A [`Then::Rows`] epilogue runs as `then(j, part)` on each finished
/// stretch `part` of output row `j` (consecutive product rows).
#[allow(clippy::too_many_arguments)]
pub fn sgemm_t_then(m: usize, k: usize, n: usize, a: Mat, b: Mat, c: &mut [f32], ldc: usize, then: Then) {
    sgemm_then_on(Kernel::chosen(), m, k, n, a, b, c, ldc, Store::Transposed, then)
}

/// How [`sgemm_then_on`] stores the product.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Store {
    /// Row `i` at `c[i * ldc ..]`, added to what is there when `accumulate`.
    Rows { accumulate: bool },
    /// Product row `i` as column `i` of an `n x m` output of row stride `ldc`.
    Transposed,
}

/// [`sgemm_then`] / [`sgemm_t_then`] on a given kernel. Tasks split the product's rows (or, when
/// rows are few, its columns in whole panels); B is packed once for all of them (ours).
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
    store: Store,
    then: Then,
) {
    check_operands(m, k, n, a, b);
    let transposed = store == Store::Transposed;
    let (rs, cs, lines, line) = if transposed { (1, ldc, n, m) } else { (ldc, 1, m, n) };
    assert!(lines == 0 || line == 0 || (lines - 1) * ldc + line <= c.len(), "gemm output shorter than {lines}x{line}");
    assert!(ldc >= line);
    if m == 0 || n == 0 {
        return;
    }
    let accumulate = store == Store::Rows { accumulate: true };
    let fused = match then {
        Then::Tail(t) if kernel == Kernel::Tile && t.fusable() => Some(t),
        _ => None,
    };
    if let Some(t) = fused {
        t.check_bias(m, n);
    }
    // A tail our kernel cannot fuse runs as a row epilogue.
    let tail_rows = |i: usize, first: usize, part: &mut [f32]| {
        if let Then::Tail(t) = then {
            t.on_line(transposed, i, first, part);
        }
    };
    let rows_then: Option<RowEpilogue> = match then {
        Then::Rows(f) => Some(f),
        Then::Tail(_) if fused.is_none() => Some(&tail_rows),
        _ => None,
    };
    #[cfg(target_arch = "x86_64")]
    if transposed && kernel == Kernel::Tile && n > TILE_T_MAX_N && k > 0 {
        return t_swapped(m, k, n, a, b, c, ldc, fused, rows_then);
    }
    let ptr = SendPtr(c.as_mut_ptr());
    with_b(kernel, k, n, b, |packed| {
        let threads = rayon::current_num_threads();
        let block = then_rows(rows_then.is_some(), m, n);
        // Rows r0 .. r0 + mr times columns `cols`, then the row epilogue (when `then` is given)
        // on each block of rows.
        let run = |r0: usize, mr: usize, cols: std::ops::Range<usize>, then: Option<RowEpilogue>| {
            let p = ptr;
            for s0 in (r0..r0 + mr).step_by(block) {
                let sr = block.min(r0 + mr - s0);
                let ab = Mat { data: &a.data[s0 * a.rs..], ..a };
                // SAFETY: rows s0 .. s0 + sr, columns `cols` of the product lie inside `c`
                // (checked above) and belong to this task alone.
                let tail = fused.map(|t| t.rows_from(s0));
                unsafe { product(packed, sr, k, ab, b, cols.clone(), p.0.add(s0 * rs), rs, cs, accumulate, tail) };
                let Some(then) = then else { continue };
                // SAFETY: as above.
                unsafe {
                    if transposed {
                        then_on_lines(then, p.0, ldc, cols.clone(), s0..s0 + sr)
                    } else {
                        then_on_lines(then, p.0, ldc, s0..s0 + sr, cols.clone())
                    }
                }
            }
        };
        if threads == 1 || m * n * k < PAR_MIN {
            return run(0, m, 0..n, rows_then);
        }
        if m >= 16 * threads || m >= n {
            // Row blocks, a few tasks per thread.
            let rows = m.div_ceil(threads * TASKS_PER_THREAD).next_multiple_of(ROW_STEP);
            (0..m.div_ceil(rows)).into_par_iter().for_each(|t| run(t * rows, rows.min(m - t * rows), 0..n, rows_then));
            return;
        }
        // Column blocks (whole register tiles): each task writes its own columns of every row (and
        // packs all of A's strips, so two per thread, not TASKS_PER_THREAD).
        let cols = n.div_ceil(threads * 2).next_multiple_of(32).max(32);
        (0..n.div_ceil(cols)).into_par_iter().for_each(|t| run(0, m, t * cols..n.min((t + 1) * cols), None));
        // Few rows: the row epilogue afterwards, on whole lines.
        if let Some(then) = rows_then {
            c[..(lines - 1) * ldc + line].par_chunks_mut(ldc).enumerate().for_each(|(i, l)| then(i, 0, &mut l[..line]));
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
/// last) into `c`, element (i, j) at `c[i * rs + j * cs]` (`rs` or `cs` is 1), then the fused
/// tail (ours only).
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
    rs: usize,
    cs: usize,
    accumulate: bool,
    tail: Option<Tail>,
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(bp) = packed {
        let panels = cols.start / tile::NR..cols.end.div_ceil(tile::NR);
        return tile::gemm(m, a, bp, panels, tile::Out { c, rs, cs, accumulate, tail: tail.map(Tail::for_tile) });
    }
    let _ = (packed, tail);
    let bb = Mat { data: &b.data[cols.start * b.cs..], ..b };
    raw(Kernel::MatrixMultiply, m, k, cols.len(), a, bb, c.add(cols.start * cs), rs, cs, accumulate)
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
        assert!(rsc == 1 || csc == 1, "gemm output with neither unit stride");
        let out = tile::Out { c, rs: rsc, cs: csc, accumulate, tail: None };
        return with_packed(k, n, b, |bp| tile::gemm(m, a, bp, 0..bp.panels(), out));
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
        let mut shapes = vec![
            (1, 1, 1),
            (0, 3, 4),
            (3, 0, 5),
            (1, 300, 7),
            (300, 13, 1),
            (7, 64, 257),
            (129, 33, 65),
            (37, 600, 250),
        ];
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
                    sgemm_then_on(kernel, m, k, n, a, b, &mut c, n, Store::Rows { accumulate: false }, Then::None);
                    let err = c.iter().zip(&want).fold(0.0f32, |e, (x, y)| e.max((x - y).abs()));
                    assert!(err <= 1e-5 * scale, "{kernel:?} {m}x{k}x{n} ta {ta} tb {tb}: error {err} (seed {seed})");
                    sgemm_then_on(kernel, m, k, n, a, b, &mut c, n, Store::Rows { accumulate: true }, Then::None);
                    let err = c.iter().zip(&want).fold(0.0f32, |e, (x, y)| e.max((x - 2.0 * y).abs()));
                    assert!(err <= 2e-5 * scale, "{kernel:?} {m}x{k}x{n} accumulate: error {err} (seed {seed})");
                }
            }
        }
    }

    /// The serial product on each kernel around the register tile's edges (rows around 12,
    /// columns around 32, depths around the blocks' limits (768 for narrow B, 128 for wide) and
    /// split unevenly), with A row-major,
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
            (13, 769, 33),
            (14, 1537, 40),
            (5, 129, 2600),
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
    /// epilogue once on every element with its output row's index: serial, one block per task,
    /// several blocks per task and column tasks, on every kernel.
    #[test]
    fn sgemm_t_then_writes_the_transposed_product() {
        let seed = Rng::fresh_seed();
        for (m, k, n) in [
            (3, 4, 5),
            (700, 30, 300),
            (5, 40, 2000),
            (1000, 7, 3),
            (1000, 7, 3000),
            (50, 300, 70),
            (4700, 70, 140),
            (400, 1100, 150),
        ] {
            let at = Tensor::random(&[m * k], seed ^ 8, -1.0, 1.0).data;
            let bt = Tensor::random(&[k * n], seed ^ 9, -1.0, 1.0).data;
            let (a, b) = (Mat::rows(&at, k), Mat::t(&bt, k));
            let want = naive(m, k, n, a, b);
            let ldc = m + 3;
            for kernel in Kernel::all_available() {
                for with_then in [false, true] {
                    let mut c = vec![-3.0f32; n * ldc];
                    let then = |j: usize, first: usize, part: &mut [f32]| {
                        part.iter_mut().enumerate().for_each(|(i, v)| *v = *v * 2.0 + j as f32 - (first + i) as f32)
                    };
                    let then = if with_then { Then::Rows(&then) } else { Then::None };
                    sgemm_then_on(kernel, m, k, n, a, b, &mut c, ldc, Store::Transposed, then);
                    for j in 0..n {
                        for i in 0..ldc {
                            let got = c[j * ldc + i];
                            if i >= m {
                                assert_eq!(got, -3.0, "{m}x{k}x{n}: wrote the gap at ({j}, {i})");
                                continue;
                            }
                            let w =
                                if with_then { want[i * n + j] * 2.0 + j as f32 - i as f32 } else { want[i * n + j] };
                            assert!(
                                (got - w).abs() <= 1e-4 * w.abs().max(1.0),
                                "{kernel:?} {m}x{k}x{n} then {with_then} ({j}, {i}): {got} vs {w} (seed {seed})"
                            );
                        }
                    }
                }
            }
        }
    }

    /// A [`Then::Tail`] gives the bits of the plain product followed by [`affine_act`], fused
    /// (identity, GELU) or not (ReLU), with and without alpha and bias, stored by rows or
    /// transposed, on row tasks, column tasks, the serial path and two depth blocks.
    #[test]
    fn tails_match_the_product_then_affine_act_bit_for_bit() {
        let seed = Rng::fresh_seed();
        for (m, k, n) in [(1, 1, 1), (700, 30, 300), (5, 40, 2000), (37, 300, 45), (4700, 70, 140), (700, 1030, 140)] {
            let at = Tensor::random(&[m * k], seed ^ 13, -1.0, 1.0).data;
            let bt = Tensor::random(&[k * n], seed ^ 14, -1.0, 1.0).data;
            let bias_n = Tensor::random(&[n], seed ^ 15, -1.0, 1.0).data;
            let bias_m = Tensor::random(&[m], seed ^ 16, -1.0, 1.0).data;
            let (a, b) = (Mat::rows(&at, k), Mat::t(&bt, k));
            for kernel in Kernel::all_available() {
                for store in [Store::Rows { accumulate: false }, Store::Transposed] {
                    let ldc = if store == Store::Transposed { m } else { n };
                    let mut plain = vec![0.0f32; m * n];
                    sgemm_then_on(kernel, m, k, n, a, b, &mut plain, ldc, store, Then::None);
                    for act in [Act::None, Act::Gelu, Act::Relu] {
                        let forms = [
                            (1.0, Bias::None),
                            (0.3, Bias::Cols(&bias_n)),
                            (1.0, Bias::Cols(&bias_n)),
                            (0.7, Bias::None),
                            (0.3, Bias::Rows(&bias_m)),
                        ];
                        for (alpha, bias) in forms {
                            let mut want = plain.clone();
                            for (line, l) in want.chunks_mut(ldc).enumerate() {
                                let add = match (bias, store) {
                                    (Bias::None, _) => Addend::None,
                                    (Bias::Cols(v), Store::Transposed) | (Bias::Rows(v), Store::Rows { .. }) => {
                                        Addend::Scalar(v[line])
                                    }
                                    (Bias::Cols(v) | Bias::Rows(v), _) => Addend::Row(v),
                                };
                                affine_act(act, l, alpha, add);
                            }
                            let mut got = vec![f32::NAN; m * n];
                            let tail = Then::Tail(Tail { alpha, bias, act });
                            sgemm_then_on(kernel, m, k, n, a, b, &mut got, ldc, store, tail);
                            let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
                            let form = match bias {
                                Bias::None => "none",
                                Bias::Cols(_) => "per column",
                                Bias::Rows(_) => "per row",
                            };
                            assert!(same, "{kernel:?} {m}x{k}x{n} {store:?} {act:?} {alpha} bias {form} (seed {seed})");
                        }
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
                let then = |i: usize, first: usize, row: &mut [f32]| {
                    assert_eq!((first, row.len()), (0, n));
                    row.iter_mut().for_each(|v| *v = *v * 2.0 + i as f32);
                };
                sgemm_then_on(kernel, m, k, n, a, b, &mut c, ldc, Store::Rows { accumulate: false }, Then::Rows(&then));
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
