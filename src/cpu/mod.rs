//! The CPU backend: the same [`Graph`](crate::graph::Graph) planned for the host's cores.
//!
//! [`CpuPlan`] mirrors the GPU [`Plan`](crate::graph::Plan): shapes are checked once, intermediate
//! values share f32 arenas by liveness (the same best-fit rule as on the GPU), each node's kernel is
//! chosen and its constant inputs prepacked at plan time, and a run is node by node on a thread pool
//! (rayon). An op brings its own fast CPU kernel through [`Op::cpu_kernel`](crate::ops::Op::cpu_kernel);
//! one that has none runs its plain reference, so every op works here.

/// Define `$vis fn $name(args)` that runs `$body(args)` (an `#[inline(always)]` fn of plain Rust)
/// compiled for the widest vector ISA this CPU has: AVX-512F, else AVX2 + FMA, else the build's
/// baseline; chosen at run time. Only element-wise loops that LLVM vectorizes gain from it, and
/// since Rust never contracts `a * b + c`, every path computes bit-identical results.
#[macro_export]
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:path) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

pub mod epilogue;
pub mod gemm;
pub mod plan;
pub mod transpose;

pub use plan::{CpuPlan, CpuStats};

use crate::tensor::Tensor;

/// What a node's kernel knows of one input at plan time: its shape, and its value when it is a
/// constant (weights), so the kernel can prepack it once.
#[derive(Clone, Copy, Debug)]
pub struct CpuInput<'a> {
    pub shape: &'a [usize],
    pub constant: Option<&'a Tensor>,
}

/// A node's CPU kernel, made once at plan time. `run` reads the inputs (row-major f32, the
/// shapes given at plan time) and overwrites every element of every output.
pub trait CpuKernel: Send + Sync {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]);
    /// A short name for profiles: "reference" for the fallback, else the kernel's own.
    fn name(&self) -> &'static str {
        "fast"
    }
}

/// An output pointer shared by tasks that write disjoint parts of it (each use says why they
/// are disjoint).
#[derive(Clone, Copy)]
pub struct SendPtr(pub *mut f32);
// SAFETY: only a pointer; its users write disjoint elements from each task.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Which of a thread's two scratch buffers: one for a whole node's run (on the calling thread:
/// a phase-split input, a column buffer) and one for a task's (an im2col block, a block of
/// scores), so a task run by the calling thread while it holds the first still reuses the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scratch {
    Call,
    Task,
}

thread_local! {
    static SCRATCH: [std::cell::Cell<Vec<f32>>; 2] = const { [std::cell::Cell::new(Vec::new()), std::cell::Cell::new(Vec::new())] };
}

/// Scratch larger than this is freed after use rather than kept for the next.
const SCRATCH_KEEP_BYTES: usize = 16 << 20;

/// `f` on `len` floats of this thread's reusable scratch `which` (contents unspecified: `f`
/// writes what it reads), instead of a fresh zeroed buffer per call or task (their clearing was
/// 2.0% of Mesorch-P's CPU samples, 1.3% after). The buffer is taken while in use, so a nested
/// call on the same thread and slot gets fresh storage instead of a borrow error.
pub fn with_scratch<R>(which: Scratch, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let slot = which as usize;
    let mut buf = SCRATCH.with(|s| s[slot].take());
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let r = f(&mut buf[..len]);
    if buf.capacity() * 4 <= SCRATCH_KEEP_BYTES {
        SCRATCH.with(|s| s[slot].set(buf));
    }
    r
}

/// The run `lo .. hi` of positions `i < n` whose source `i * stride + off - pad` lies in
/// `[0, len)`: a tap's valid output columns in a convolution (or input columns in a transposed
/// one). Empty runs come back as `lo == hi`.
pub fn valid_run(n: usize, stride: usize, off: usize, pad: usize, len: usize) -> (usize, usize) {
    let lo = if off >= pad { 0 } else { (pad - off).div_ceil(stride) }.min(n);
    let hi = if len + pad > off { ((len + pad - off - 1) / stride + 1).min(n) } else { 0 }.max(lo);
    (lo, hi)
}

/// The number of threads the CPU backend runs on (rayon's global pool: `RAYON_NUM_THREADS`, else
/// one per core).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Split `out` into consecutive chunks of `chunk` elements and run `f(index, chunk)` on the pool.
/// Chunks are grouped so that each task has at least `min_work` elements.
pub fn par_chunks(out: &mut [f32], chunk: usize, min_work: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    use rayon::prelude::*;
    let chunk = chunk.max(1);
    let per_task = (min_work / chunk).max(1);
    if out.len() <= chunk * per_task || threads() == 1 {
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
        return;
    }
    out.par_chunks_mut(chunk * per_task).enumerate().for_each(|(t, group)| {
        for (j, c) in group.chunks_mut(chunk).enumerate() {
            f(t * per_task + j, c);
        }
    });
}

/// The CPU backend's own peaks for rooflines: GFLOP/s of a 512 x 512 x 512 GEMM and GB/s of a
/// 64 MiB copy (read + write), best of three each.
pub fn measured_peaks() -> (f64, f64) {
    let n = 512;
    let a = vec![0.5f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        gemm::sgemm(n, n, n, gemm::Mat::rows(&a, n), gemm::Mat::rows(&a, n), &mut c, n, false);
        best = best.min(t.elapsed().as_secs_f64());
    }
    let flops = 2.0 * (n * n * n) as f64 / best / 1e9;
    let len = 16 << 20;
    let src = vec![1.0f32; len];
    let mut dst = vec![0.0f32; len];
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        par_chunks(&mut dst, 1 << 16, 1 << 16, |i, d| d.copy_from_slice(&src[i << 16..(i << 16) + d.len()]));
        best = best.min(t.elapsed().as_secs_f64());
    }
    (flops, 8.0 * len as f64 / best / 1e9)
}

/// Visit an output of `dims` (row-major, any rank up to 8) row by row (rows of the last
/// dimension), on the pool: `f(out_row, offsets)` gets the row to write and, for each strided
/// operand (`strides[j]`, one stride per dimension, 0 where broadcast), the element offset of the
/// row's first element. The caller walks the row with the last stride of each operand.
pub fn strided_rows<const K: usize>(
    out: &mut [f32],
    dims: &[usize],
    strides: [&[usize]; K],
    f: impl Fn(&mut [f32], [usize; K]) + Sync + Send,
) {
    let len = dims.last().copied().unwrap_or(1).max(1);
    par_chunks(out, len, 1 << 14, |row, o| {
        let mut offs = [0usize; K];
        let mut r = row;
        for d in (0..dims.len().saturating_sub(1)).rev() {
            let i = r % dims[d];
            r /= dims[d];
            for (off, s) in offs.iter_mut().zip(&strides) {
                *off += i * s[d];
            }
        }
        f(o, offs)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scratch has the asked length, is reused by the next call on the same slot, and a nested
    /// call on the same slot gets other storage (the outer one's contents stay), as does the
    /// other slot.
    #[test]
    fn scratch_is_reused_and_never_shared_while_held() {
        let first = with_scratch(Scratch::Task, 100, |b| {
            b.fill(1.0);
            b.as_ptr() as usize
        });
        let again = with_scratch(Scratch::Task, 50, |b| {
            assert_eq!(b.len(), 50);
            b.as_ptr() as usize
        });
        assert_eq!(first, again, "the buffer was not kept");
        with_scratch(Scratch::Task, 10, |outer| {
            outer.fill(7.0);
            let nested = with_scratch(Scratch::Task, 10, |inner| {
                inner.fill(-1.0);
                inner.as_ptr() as usize
            });
            let other = with_scratch(Scratch::Call, 10, |b| b.as_ptr() as usize);
            assert!(nested != outer.as_ptr() as usize && other != outer.as_ptr() as usize);
            assert!(outer.iter().all(|&v| v == 7.0));
        });
    }
}
