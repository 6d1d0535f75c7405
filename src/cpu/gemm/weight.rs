//! A constant right operand (a layer's weight, `k x n`) prepared once at plan time for many
//! products on the calling thread, stored transposed: packed into our kernel's panels, or kept
//! row-major for matrixmultiply (which packs per call).

use super::{raw, Kernel, Mat, Tail};

pub struct PackedWeight {
    k: usize,
    n: usize,
    #[cfg(target_arch = "x86_64")]
    packed: Option<super::tile::PackedB>,
    /// Row-major `k x n` where not packed.
    plain: Vec<f32>,
}

impl PackedWeight {
    pub fn new(k: usize, n: usize, b: Mat) -> PackedWeight {
        Self::on(Kernel::chosen(), k, n, b)
    }

    fn on(kernel: Kernel, k: usize, n: usize, b: Mat) -> PackedWeight {
        assert!(b.fits(k, n), "gemm operand shorter than {k}x{n}");
        #[cfg(target_arch = "x86_64")]
        if kernel == Kernel::Tile && k > 0 {
            let packed = Some(super::tile::PackedB::new(Vec::new(), k, n, b));
            return PackedWeight { k, n, packed, plain: Vec::new() };
        }
        let _ = kernel;
        let plain = (0..k * n).map(|i| b.data[(i / n) * b.rs + (i % n) * b.cs]).collect();
        PackedWeight {
            k,
            n,
            #[cfg(target_arch = "x86_64")]
            packed: None,
            plain,
        }
    }

    /// `c[j * ldc + i] = tail((a * w)(i, j))` for rows `i < m` of `a` (`m x k`) and the
    /// weight's columns `j < n`: the product stored transposed (a convolution's output planes
    /// from a block of pixels as rows), on the calling thread. The tail runs in our kernel's
    /// registers where it can, else on each output line after the product.
    ///
    /// # Safety
    /// `c` is valid for writes of those elements and no other thread touches them meanwhile.
    /// The operands' bounds and the bias's length are checked.
    pub unsafe fn product_t_into(&self, m: usize, a: Mat, c: *mut f32, ldc: usize, tail: Tail) {
        self.product(m, a, c, ldc, true, tail)
    }

    /// [`PackedWeight::product_t_into`] stored by rows: `c[i * ldc + j] = tail((a * w)(i, j))`
    /// (a convolution's output tokens from a block of pixels).
    ///
    /// # Safety
    /// As there.
    pub unsafe fn product_into(&self, m: usize, a: Mat, c: *mut f32, ldc: usize, tail: Tail) {
        self.product(m, a, c, ldc, false, tail)
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
        let (rs, cs) = if transposed { (1, ldc) } else { (ldc, 1) };
        #[cfg(target_arch = "x86_64")]
        if let Some(bp) = &self.packed {
            let fused = tail.fusable();
            let out = super::tile::Out { c, rs, cs, accumulate: false, tail: fused.then(|| tail.for_tile()) };
            super::tile::gemm(m, a, bp, 0..bp.panels(), out);
            if fused {
                return;
            }
            return lines_tail(m, n, c, ldc, transposed, tail);
        }
        raw(Kernel::MatrixMultiply, m, k, n, a, Mat::rows(&self.plain, n), c, rs, cs, false);
        lines_tail(m, n, c, ldc, transposed, tail)
    }
}

/// `tail` on each output line of [`PackedWeight::product`]: the `n` columns of `m` (stored as
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
    use crate::cpu::gemm::Bias;
    use crate::ops::act::Act;
    use crate::tensor::{Rng, Tensor};

    /// On each kernel, the product stored transposed and by rows with every tail form (fused in
    /// registers: none and GELU; after the product: ReLU) matches the naive product then the
    /// tail, with the lines' gaps untouched; `a` row-major and transposed (a block of pixels as
    /// rows).
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
                let w = PackedWeight::on(kernel, k, n, Mat::rows(&bt, n));
                for (a, form) in [(Mat::rows(&at, k), "rows"), (Mat::t(&a_t, m), "transposed")] {
                    for act in [Act::None, Act::Gelu, Act::Relu] {
                        for (with_bias, transposed) in [(false, true), (true, true), (false, false), (true, false)] {
                            // Output lines and their length: n of m stored transposed, else m of n.
                            let (lines, len) = if transposed { (n, m) } else { (m, n) };
                            let ldc = len + 2;
                            let mut c = vec![-7.0f32; lines * ldc];
                            let tail =
                                Tail { alpha: 1.0, bias: if with_bias { Bias::Cols(&bias) } else { Bias::None }, act };
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
                                    let case = format!("{kernel:?} {m}x{k}x{n} a {form} {act:?} bias {with_bias} transposed {transposed} ({line}, {e}) seed {seed}");
                                    if e >= len {
                                        assert_eq!(got, -7.0, "{case}: wrote the gap");
                                        continue;
                                    }
                                    let (i, j) = if transposed { (e, line) } else { (line, e) };
                                    let mut v = [want[i * n + j] as f32];
                                    let add = if with_bias { Addend::Scalar(bias[j]) } else { Addend::None };
                                    affine_act(act, &mut v, 1.0, add);
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
