//! A right operand (`k x n`) prepared once for many products on the calling thread: a layer's
//! constant weight (prepared at plan time, owned) or attention's keys and values (shared by every
//! block of queries, borrowed). It is packed into our kernel's panels, or kept for
//! matrixmultiply (which packs per call). Products store by rows or transposed, with a tail.

use super::{raw, Bias, Kernel, Mat, Tail};
use crate::ops::act::Act;
use std::borrow::Cow;

pub struct PackedRhs<'a> {
    k: usize,
    n: usize,
    #[cfg(target_arch = "x86_64")]
    packed: Option<super::tile::PackedB>,
    /// Where not packed: the operand's data with its row and column strides (borrowed as given,
    /// or an owned row-major copy).
    plain: (Cow<'a, [f32]>, usize, usize),
}

/// A prepared operand that owns its data: a layer's weight, prepared at plan time.
pub type PackedWeight = PackedRhs<'static>;

impl PackedWeight {
    /// Prepares a copy of `b` (packed, or row-major for the fallback kernel).
    pub fn owned(k: usize, n: usize, b: Mat) -> PackedWeight {
        PackedRhs::on(Kernel::chosen(), k, n, b, |b| {
            (Cow::Owned((0..k * n).map(|i| b.data[(i / n) * b.rs + (i % n) * b.cs]).collect()), n, 1)
        })
    }
}

impl<'a> PackedRhs<'a> {
    /// Prepares `b`, borrowed by the fallback kernel where it is not packed.
    pub fn new(k: usize, n: usize, b: Mat<'a>) -> PackedRhs<'a> {
        Self::on(Kernel::chosen(), k, n, b, |b| (Cow::Borrowed(b.data), b.rs, b.cs))
    }

    fn on<'b>(
        kernel: Kernel,
        k: usize,
        n: usize,
        b: Mat<'b>,
        plain: impl FnOnce(Mat<'b>) -> (Cow<'a, [f32]>, usize, usize),
    ) -> PackedRhs<'a> {
        assert!(b.fits(k, n), "gemm operand shorter than {k}x{n}");
        #[cfg(target_arch = "x86_64")]
        if kernel == Kernel::Tile && k > 0 {
            let packed = Some(super::tile::PackedB::new(Vec::new(), k, n, b));
            return PackedRhs { k, n, packed, plain: (Cow::Borrowed(&[]), 0, 0) };
        }
        let _ = kernel;
        PackedRhs {
            k,
            n,
            #[cfg(target_arch = "x86_64")]
            packed: None,
            plain: plain(b),
        }
    }

    /// `c[i * ldc + j] = tail((a * self)(i, j))` for rows `i < m` of `a` (`m x k`) and columns
    /// `j < n`, on the calling thread. The tail runs in our kernel's registers where it can, else
    /// on each output row after the product.
    ///
    /// # Safety
    /// `c` is valid for writes of those elements and no other thread touches them meanwhile.
    /// The operands' bounds and the bias's length are checked.
    pub unsafe fn product_into(&self, m: usize, a: Mat, c: *mut f32, ldc: usize, tail: Tail) {
        self.product(m, a, c, ldc, false, tail)
    }

    /// [`PackedRhs::product_into`] stored transposed: `c[j * ldc + i]` (a convolution's output
    /// planes from a block of pixels as rows).
    ///
    /// # Safety
    /// As there.
    pub unsafe fn product_t_into(&self, m: usize, a: Mat, c: *mut f32, ldc: usize, tail: Tail) {
        self.product(m, a, c, ldc, true, tail)
    }

    /// The product's lines (rows, or columns when `transposed`) `ldc` apart, then the tail.
    unsafe fn product(&self, m: usize, a: Mat, c: *mut f32, ldc: usize, transposed: bool, tail: Tail) {
        let (k, n) = (self.k, self.n);
        assert!(a.fits(m, k), "gemm operand shorter than {m}x{k}");
        let line = if transposed { m } else { n };
        assert!(m == 0 || n == 0 || ldc >= line, "gemm output lines shorter than {line}");
        tail.check_bias(m, n);
        if m == 0 || n == 0 {
            return;
        }
        let identity = tail.alpha == 1.0 && matches!(tail.bias, Bias::None) && tail.act == Act::None;
        let (rs, cs) = if transposed { (1, ldc) } else { (ldc, 1) };
        #[cfg(target_arch = "x86_64")]
        if let Some(bp) = &self.packed {
            let fused = tail.fusable();
            let tile_tail = (fused && !identity).then(|| tail.for_tile());
            let out = super::tile::Out { c, rs, cs, accumulate: false, tail: tile_tail };
            super::tile::gemm(m, a, bp, 0..bp.panels(), out);
            if fused {
                return;
            }
            return lines_tail(m, n, c, ldc, transposed, tail);
        }
        let (data, brs, bcs) = &self.plain;
        raw(Kernel::MatrixMultiply, m, k, n, a, Mat { data, rs: *brs, cs: *bcs }, c, rs, cs, false);
        if !identity {
            lines_tail(m, n, c, ldc, transposed, tail)
        }
    }
}

/// `tail` on each output line of [`PackedRhs::product`]: the `n` columns of `m` (stored as
/// lines when `transposed`), else the `m` rows of `n`.
///
/// # Safety
/// As there.
unsafe fn lines_tail(m: usize, n: usize, c: *mut f32, ldc: usize, transposed: bool, tail: Tail) {
    let (lines, len) = if transposed { (n, m) } else { (m, n) };
    for j in 0..lines {
        tail.on_line(transposed, j, 0, std::slice::from_raw_parts_mut(c.add(j * ldc), len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::epilogue::{affine_act, Addend};
    use crate::tensor::{Rng, Tensor};

    /// On each kernel, the product stored transposed and by rows with every tail form (fused in
    /// registers: identity, a scale and GELU; after the product: ReLU) matches the naive product
    /// then the tail, with the lines' gaps untouched; `a` row-major and transposed (a block of
    /// pixels as rows); the operand owned, and borrowed as a transposed view.
    #[test]
    fn products_with_tails_match_naive() {
        let seed = Rng::fresh_seed();
        for (m, k, n) in [(1, 1, 1), (13, 300, 40), (64, 37, 129), (25, 0, 3)] {
            let at = Tensor::random(&[m * k], seed ^ 21, -1.0, 1.0).data;
            let bt = Tensor::random(&[k * n], seed ^ 22, -1.0, 1.0).data;
            let bias = Tensor::random(&[n], seed ^ 23, -1.0, 1.0).data;
            let want: Vec<f64> = (0..m * n)
                .map(|e| (0..k).map(|p| at[(e / n) * k + p] as f64 * bt[p * n + e % n] as f64).sum())
                .collect();
            let a_t: Vec<f32> = (0..m * k).map(|e| at[(e % m) * k + e / m]).collect();
            for kernel in Kernel::all_available() {
                // Owned row-major, and borrowed as a transposed view (b^T stored row-major).
                let b_t: Vec<f32> = (0..k * n).map(|e| bt[(e % k) * n + e / k]).collect();
                let owned =
                    PackedRhs::on(kernel, k, n, Mat::rows(&bt, n), |b| (Cow::Owned(b.data.to_vec()), b.rs, b.cs));
                let borrowed = PackedRhs::on(kernel, k, n, Mat::t(&b_t, k), |b| (Cow::Borrowed(b.data), b.rs, b.cs));
                for (w, a, form) in [
                    (&owned, Mat::rows(&at, k), "rows"),
                    (&owned, Mat::t(&a_t, m), "a transposed"),
                    (&borrowed, Mat::rows(&at, k), "b borrowed transposed"),
                ] {
                    for (act, alpha) in [(Act::None, 1.0), (Act::None, 0.37), (Act::Gelu, 1.0), (Act::Relu, 1.0)] {
                        for (with_bias, transposed) in [(false, true), (true, true), (false, false), (true, false)] {
                            // Output lines and their length: n of m stored transposed, else m of n.
                            let (lines, len) = if transposed { (n, m) } else { (m, n) };
                            let ldc = len + 2;
                            let mut c = vec![-7.0f32; lines * ldc];
                            let tail =
                                Tail { alpha, bias: if with_bias { Bias::Cols(&bias) } else { Bias::None }, act };
                            // SAFETY: c holds `lines` lines of ldc >= len floats.
                            unsafe {
                                if transposed {
                                    w.product_t_into(m, a, c.as_mut_ptr(), ldc, tail)
                                } else {
                                    w.product_into(m, a, c.as_mut_ptr(), ldc, tail)
                                }
                            };
                            for line in 0..lines {
                                for e in 0..ldc {
                                    let got = c[line * ldc + e];
                                    let case = format!("{kernel:?} {m}x{k}x{n} {form} {act:?} alpha {alpha} bias {with_bias} transposed {transposed} ({line}, {e}) seed {seed}");
                                    if e >= len {
                                        assert_eq!(got, -7.0, "{case}: wrote the gap");
                                        continue;
                                    }
                                    let (i, j) = if transposed { (e, line) } else { (line, e) };
                                    let mut v = [want[i * n + j] as f32];
                                    let add = if with_bias { Addend::Scalar(bias[j]) } else { Addend::None };
                                    affine_act(act, &mut v, alpha, add);
                                    let tol = 1e-4 * v[0].abs().max(1.0);
                                    assert!((got - v[0]).abs() <= tol, "{case}: {got} vs {}", v[0]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
