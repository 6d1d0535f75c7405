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
