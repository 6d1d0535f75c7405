//! Our register-tile GEMM for CPUs with AVX-512F: each call of the micro-kernel keeps a 12 x 32
//! tile of C in 24 zmm accumulators while the depth streams by, one broadcast of A and two loads
//! of B per 24 fused multiply-adds.
//!
//! B is packed once per product into panels of 32 columns (zero past `n`), depth-blocked so that
//! one block of all its panels stays in L2 while the strips of A go by, each strip (12 rows of one
//! block) in L1 while the panels stream past it, their lines asked for a few depths ahead. A
//! row-major A with few panels is read in place; otherwise A is packed 12 rows at a time
//! (zero-padded at the bottom edge), and the next 12 rows are prefetched while the panels go by.
//! Transposes (a transposed B, a row-major A's strips) go through 16 x 16 blocks transposed in
//! registers. Partial tiles are stored with masks, so nothing outside the product is written. A
//! tile can be stored transposed (16 x 16 register transposes, 32 stretches of up to 12 floats)
//! and can end in a tail (alpha, bias, GELU) applied in registers before the store.

use super::Mat;
use crate::cpu::epilogue::gelu_zmm;
use crate::cpu::transpose::{transpose16, transpose_block16};
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::ops::Range;

/// Rows and columns of C per register tile.
pub const MR: usize = 12;
pub const NR: usize = 32;
/// How many depths ahead a tile asks for its panel's lines of B. The panels stream from L2 at
/// 128 bytes per 24 FMAs, too fast for the hardware prefetcher alone: without, `perf` put the
/// tile's stalls on the loads of B, and products ran 5-15% slower at 2 threads (distances 8-16
/// measured alike; docs/BENCHMARKS.md).
const PF_B: usize = 12;
/// Longest depth block: A's 12-row strip (KC x 12 floats, 36 KiB) stays in L1 while B's panels
/// stream by from L2.
const KC: usize = 768;
/// Shortest depth block, unless `k` is shorter.
const KC_MIN: usize = 128;
/// Bytes of one depth block of packed B (all its panels): it should stay in L2 while every strip
/// of A goes by. Measured on a 2 MiB L2 (GFLOP/s, 2 threads, the same process alternating): a
/// 384 x 1536 weight ran at 176-188 as one block of 2.4 MiB and 193-203 as two of 1.2 MiB, while
/// the models' narrower products gained 2-8% from blocks longer than the former fixed 256 (fewer
/// passes over C, which is read back and rewritten after every block but the first).
pub const B_BLOCK_BYTES: usize = 5 << 18;
/// B of at least this many bytes is packed on the pool.
const PAR_PACK_BYTES: usize = 256 << 10;
/// Pack a row-major A's 12-row strips when at least this many column panels reuse each.
const PACK_A_PANELS: usize = 8;

/// Whether this CPU runs the kernel.
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// Depth per block for B of `k x n`: `k` split into equal blocks of at most the depth whose
/// panels take [`B_BLOCK_BYTES`] (within [`KC_MIN`] ..= [`KC`]), so no block is short (384 is
/// two of 192, not 256 and 128).
fn depth_block(k: usize, n: usize) -> usize {
    let most = (B_BLOCK_BYTES / (4 * NR * n.div_ceil(NR)).max(1)).clamp(KC_MIN, KC);
    k.div_ceil(k.div_ceil(most).max(1)).max(1)
}

/// B (`k x n`) in panels of [`NR`] columns: depth block `pc` (of `kc` rows), panel `j` starts at
/// `pc * panels * NR + j * kc * NR`, row `p` of it at `+ p * NR`.
pub struct PackedB {
    data: Vec<f32>,
    k: usize,
    n: usize,
}

impl PackedB {
    /// Packs `b` into `buf`'s storage (reused: its capacity is kept). Only where [`available`].
    pub fn new(mut buf: Vec<f32>, k: usize, n: usize, b: Mat) -> PackedB {
        assert!(available());
        let panels = n.div_ceil(NR);
        // Every element is written below (the last panel's columns past n with zeros), so a
        // reused buffer is not cleared first.
        buf.resize(k * panels * NR, 0.0);
        buf.truncate(k * panels * NR);
        let kb = depth_block(k, n);
        // Large operands (weights of 1-2 MiB) are packed on the pool: on one thread the packing
        // took 5-8% of the product's time, with the other threads idle.
        let parallel = k * panels * NR * 4 >= PAR_PACK_BYTES && rayon::current_num_threads() > 1;
        for pc in (0..k).step_by(kb) {
            let kc = kb.min(k - pc);
            let block = &mut buf[pc * panels * NR..][..panels * kc * NR];
            let pack = |j: usize, dst: &mut [f32]| {
                let (c0, w) = (j * NR, NR.min(n - j * NR));
                if w < NR {
                    dst.chunks_exact_mut(NR).for_each(|row| row[w..].fill(0.0));
                }
                if b.cs == 1 {
                    for (p, row) in dst.chunks_exact_mut(NR).enumerate() {
                        row[..w].copy_from_slice(&b.data[(pc + p) * b.rs + c0..][..w]);
                    }
                } else if b.rs == 1 {
                    // b is a transpose: column q of the panel is contiguous.
                    // SAFETY: the CPU has AVX-512F (asserted above).
                    unsafe { pack_transposed(b, pc, kc, c0, w, dst) };
                } else {
                    for q in 0..w {
                        for p in 0..kc {
                            dst[p * NR + q] = b.data[(c0 + q) * b.cs + (pc + p) * b.rs];
                        }
                    }
                }
            };
            if parallel {
                block.par_chunks_mut(kc * NR).enumerate().for_each(|(j, dst)| pack(j, dst));
            } else {
                block.chunks_mut(kc * NR).enumerate().for_each(|(j, dst)| pack(j, dst));
            }
        }
        PackedB { data: buf, k, n }
    }

    pub fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }

    /// The storage, for reuse by the next [`PackedB::new`].
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

/// Panel rows `p < kc`, columns `q < w` of `dst` (row length NR) from b's contiguous columns
/// `c0 + q` (`b.rs == 1`), depths from `pc`: 16 x 16 blocks transposed in registers, the edges
/// element by element. A model's activations are packed this way for every transposed store.
#[target_feature(enable = "avx512f")]
unsafe fn pack_transposed(b: Mat, pc: usize, kc: usize, c0: usize, w: usize, dst: &mut [f32]) {
    let col = |q: usize, p: usize| (c0 + q) * b.cs + pc + p;
    let (wq, wp) = (w / 16 * 16, kc / 16 * 16);
    for q0 in (0..wq).step_by(16) {
        for p0 in (0..wp).step_by(16) {
            transpose_block16(&b.data[col(q0, p0)..], b.cs, 16, &mut dst[p0 * NR + q0..], NR);
        }
    }
    for q in 0..w {
        let ps = if q < wq { wp..kc } else { 0..kc };
        for p in ps {
            dst[p * NR + q] = b.data[col(q, p)];
        }
    }
}

/// Where a product's tiles go: element (i, j) at `c[i * rs + j * cs]`, with `cs == 1` (rows) or
/// `rs == 1` (the product stored transposed: each tile is transposed in registers and stored as
/// 32 stretches of up to 12 floats, so a following transpose costs no pass of its own).
#[derive(Clone, Copy)]
pub struct Out {
    pub c: *mut f32,
    pub rs: usize,
    pub cs: usize,
    /// Add the product to what `c` holds.
    pub accumulate: bool,
    /// Applied in registers to each element after the last depth block.
    pub tail: Option<Tail>,
}

/// `y = act(alpha * y + bias)`, with the operations of [`crate::cpu::epilogue::affine_act`] in
/// the same order (the same bits).
#[derive(Clone, Copy)]
pub struct Tail {
    pub alpha: f32,
    /// Product column `j`'s addend at `bias[j]` (or row `i`'s at `bias[i]`), for every column
    /// (row) of the product.
    pub bias: Option<*const f32>,
    /// The bias is per row, not per column.
    pub bias_rows: bool,
    /// GELU after the affine part (else none).
    pub gelu: bool,
}

/// `out(i, j) = (out(i, j) if accumulate +) sum_p a(i, p) * b(p, j)`, then the tail, for rows
/// `i < m` and the columns of `panels` (panel `j` is columns `j * NR .. min(n, (j + 1) * NR)`);
/// nothing else of `out` is read or written.
///
/// # Safety
/// The CPU has AVX-512F; `a` holds `m x bp.k` (checked by the caller); `out` is valid for reads
/// and writes of those elements, which no other thread touches meanwhile; a tail's bias holds
/// `bp.n` values (`m` per row).
pub unsafe fn gemm(m: usize, a: Mat, bp: &PackedB, panels: Range<usize>, out: Out) {
    let (k, n, np) = (bp.k, bp.n, bp.panels());
    let kb = depth_block(k, n);
    let mut strip = [0.0f32; MR * KC];
    for pc in (0..k).step_by(kb) {
        let kc = kb.min(k - pc);
        let accumulate = out.accumulate || pc > 0;
        let tail = out.tail.filter(|_| pc + kc == k);
        let block = bp.data.as_ptr().add(pc * np * NR);
        for ir in (0..m).step_by(MR) {
            let mr = MR.min(m - ir);
            // A row-major A with few panels is read in place; else this strip is packed
            // (column-major, lda = MR, zero rows past m). Either way the next strip is prefetched
            // while the panels go by: without, the first panel stalled on A's cache misses (the
            // models' activations arrive from memory, often as transposes with a plane's stride).
            let in_place = mr == MR && a.cs == 1 && panels.len() < PACK_A_PANELS;
            if !in_place {
                pack_strip(a, ir, mr, pc, kc, &mut strip);
            }
            if ir + MR < m {
                prefetch_strip(a, ir + MR, MR.min(m - ir - MR), pc, kc);
            }
            let (ap, lda) = if in_place { (a.data.as_ptr().add(ir * a.rs + pc), a.rs) } else { (strip.as_ptr(), MR) };
            for j in panels.clone() {
                let t = Tile {
                    kc,
                    a: ap,
                    lda,
                    b: block.add(j * kc * NR),
                    c: out.c.add(ir * out.rs + j * NR * out.cs),
                    rs: out.rs,
                    cs: out.cs,
                    mr,
                    nr: NR.min(n - j * NR),
                    accumulate,
                    tail: tail
                        .map(|t| Tail { bias: t.bias.map(|b| b.add(if t.bias_rows { ir } else { j * NR })), ..t }),
                };
                if in_place {
                    t.run::<true>()
                } else {
                    t.run::<false>()
                }
            }
        }
    }
}

/// Rows `ir .. ir + mr` of `a`, depths `pc .. pc + kc`, into `strip` column-major (12 floats per
/// depth), rows past `mr` zero.
fn pack_strip(a: Mat, ir: usize, mr: usize, pc: usize, kc: usize, strip: &mut [f32; MR * KC]) {
    let strip = &mut strip[..kc * MR];
    if a.rs == 1 && mr == MR {
        for (p, dst) in strip.chunks_exact_mut(MR).enumerate() {
            dst.copy_from_slice(&a.data[ir + (pc + p) * a.cs..][..MR]);
        }
        return;
    }
    if mr < MR {
        strip.fill(0.0);
    }
    let mut done = 0;
    if a.cs == 1 && mr == MR {
        // SAFETY: this module runs only where the CPU has AVX-512F.
        done = unsafe { pack_rows(a, ir, pc, kc, strip) };
    }
    for r in 0..mr {
        let row = (ir + r) * a.rs + pc * a.cs;
        for p in done..kc {
            strip[p * MR + r] = a.data[row + p * a.cs];
        }
    }
}

/// The depths `0 .. 16 * (kc / 16)` of [`pack_strip`] for 12 whole rows of a row-major `a`: 16
/// depths of the 12 rows transposed in registers at a time. Returns how many
/// depths it packed.
#[target_feature(enable = "avx512f")]
unsafe fn pack_rows(a: Mat, ir: usize, pc: usize, kc: usize, strip: &mut [f32]) -> usize {
    let whole = kc / 16 * 16;
    for p0 in (0..whole).step_by(16) {
        transpose_block16(&a.data[ir * a.rs + pc + p0..], a.rs, MR, &mut strip[p0 * MR..], MR);
    }
    whole
}

/// Asks for the cache lines of the strip [`pack_strip`] (or the in-place kernel) reads next.
fn prefetch_strip(a: Mat, ir: usize, mr: usize, pc: usize, kc: usize) {
    let line = |i: usize| {
        // SAFETY: a prefetch never faults; `i` is inside `a` (rows < m, depths < k).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(a.data.as_ptr().add(i) as *const i8) }
    };
    if a.cs == 1 {
        for r in 0..mr {
            for p in (0..kc).step_by(16) {
                line((ir + r) * a.rs + pc + p);
            }
            line((ir + r) * a.rs + pc + kc - 1);
        }
    } else if a.rs == 1 {
        for p in 0..kc {
            let first = ir + (pc + p) * a.cs;
            line(first);
            // The strip's row may cross into the next line of 16 floats.
            if first % 16 + mr > 16 {
                line(first + mr - 1);
            }
        }
    }
}

/// One tile's work: `c(r, l) (+)= sum_p a(r, p) * b[p * NR + l]` for `r < mr`, `l < nr`, then
/// the tail.
#[derive(Clone, Copy)]
struct Tile {
    kc: usize,
    /// `a(r, p)` at `a[r * lda + p]` (row-major) or `a[p * lda + r]`; all 12 rows are computed
    /// (`a` must hold them), only `mr` are stored.
    a: *const f32,
    lda: usize,
    b: *const f32,
    /// `c(r, l)` at `c[r * rs + l * cs]`, `cs == 1` or `rs == 1`.
    c: *mut f32,
    rs: usize,
    cs: usize,
    mr: usize,
    nr: usize,
    accumulate: bool,
    /// With the bias at the tile's first column (row).
    tail: Option<Tail>,
}

/// The lowest `w` of 16 lanes.
fn lanes(w: usize) -> __mmask16 {
    ((1u32 << w.min(16)) - 1) as __mmask16
}

impl Tile {
    #[target_feature(enable = "avx512f")]
    unsafe fn run<const ROW_MAJOR: bool>(self) {
        let Tile { kc, a, lda, b, c, rs, cs, mr, nr, .. } = self;
        let rows = cs == 1;
        // The tile's C is written at the end: ask for it now, so its misses overlap the
        // arithmetic (at 16384 rows C is far larger than the caches).
        if rows {
            for r in 0..mr {
                _mm_prefetch::<_MM_HINT_T0>(c.add(r * rs) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(c.add(r * rs).wrapping_add(16) as *const i8);
            }
        } else {
            for l in 0..nr {
                _mm_prefetch::<_MM_HINT_T0>(c.add(l * cs) as *const i8);
            }
        }
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        for p in 0..kc {
            // Past the panel's end these lines are the next panel's (or none: a prefetch never
            // faults).
            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add((p + PF_B) * NR) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add((p + PF_B) * NR + 16) as *const i8);
            let b0 = _mm512_loadu_ps(b.add(p * NR));
            let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = if ROW_MAJOR { *a.add(r * lda + p) } else { *a.add(p * lda + r) };
                let av = _mm512_set1_ps(x);
                acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
            }
        }
        // Each half with constant indices (a loop over the halves left the accumulators in
        // memory, at half the rate).
        self.finish::<0>(std::array::from_fn(|r| acc[r][0]));
        self.finish::<1>(std::array::from_fn(|r| acc[r][1]));
    }

    /// Columns `16 H .. 16 H + 16` of the tile, held as one vector per row: C added when
    /// accumulating, then the tail, then stored (masked: lanes and rows past the tile's are
    /// neither read nor written, nor fault, so their addresses may lie past the output).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn finish<const H: usize>(&self, mut v: [__m512; MR]) {
        let Tile { c, rs, cs, mr, nr, accumulate, tail, .. } = *self;
        let live = nr.saturating_sub(16 * H).min(16);
        if live == 0 {
            return;
        }
        let (cols, rows) = (lanes(live), lanes(mr));
        let ch = c.add(16 * H * cs);
        let zero = _mm512_setzero_ps();
        if accumulate {
            if cs == 1 {
                for (r, v) in v.iter_mut().enumerate().take(mr) {
                    *v = _mm512_add_ps(*v, _mm512_maskz_loadu_ps(cols, ch.add(r * rs)));
                }
            } else {
                let old: [__m512; 16] = std::array::from_fn(|l| {
                    _mm512_maskz_loadu_ps(if l < live { rows } else { 0 }, ch.wrapping_add(l * cs))
                });
                for (v, o) in v.iter_mut().zip(transpose16(old)) {
                    *v = _mm512_add_ps(*v, o);
                }
            }
        }
        if let Some(t) = tail {
            let alpha = _mm512_set1_ps(t.alpha);
            let bias = |r: usize| match t.bias {
                None => zero,
                Some(b) if t.bias_rows => _mm512_set1_ps(if r < mr { *b.add(r) } else { 0.0 }),
                Some(b) => _mm512_maskz_loadu_ps(cols, b.add(16 * H)),
            };
            let col_bias = bias(0);
            for (r, v) in v.iter_mut().enumerate() {
                let bias = if t.bias_rows { bias(r) } else { col_bias };
                *v = if t.gelu {
                    gelu_zmm(_mm512_fmadd_ps(alpha, *v, bias))
                } else if t.bias.is_some() {
                    _mm512_add_ps(_mm512_mul_ps(alpha, *v), bias)
                } else {
                    _mm512_mul_ps(alpha, *v)
                };
            }
        }
        if cs == 1 {
            for (r, v) in v.iter().enumerate().take(mr) {
                _mm512_mask_storeu_ps(ch.add(r * rs), cols, *v);
            }
        } else {
            let t = transpose16(std::array::from_fn(|r| if r < MR { v[r] } else { zero }));
            for (l, t) in t.iter().enumerate().take(live) {
                _mm512_mask_storeu_ps(ch.add(l * cs), rows, *t);
            }
        }
    }
}
