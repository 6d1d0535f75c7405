//! The element-wise tail of the GEMM-based kernels (matmul, conv2d, conv_transpose2d):
//! `y = act(alpha * y + addend)` in place, compiled for the widest vector ISA this CPU has
//! (AVX-512F, else AVX2 + FMA, else baseline SSE2) and chosen at run time. Every path runs the
//! same f32 operations in the same order (Rust never contracts `a * b + c` into an FMA), so the
//! result is bit-identical to [`Act::apply_fast`] element by element; except GELU on AVX-512,
//! written with fused multiply-adds and a refined reciprocal ([`gelu_avx512`]): it ran at
//! 0.84-1.16 ns per element through `apply_fast` (about 65 vector operations and a division per
//! 16 elements), a third of fc1's time in ConvNeXt's first stage.

use crate::ops::act::Act;
#[cfg(target_arch = "x86_64")]
use crate::ops::act::{ERF_A, ERF_P, EXP_LN2, EXP_POLY, EXP_ROUNDER};

/// What is added before the activation.
#[derive(Clone, Copy, Debug)]
pub enum Addend<'a> {
    None,
    /// One value for every element (a conv's per-channel bias over one plane).
    Scalar(f32),
    /// `row[j]` for element `j` (a matmul's bias over one output row); as long as `ys`.
    Row(&'a [f32]),
}

/// `ys[j] = act(alpha * ys[j] + addend_j)`.
pub fn affine_act(act: Act, ys: &mut [f32], alpha: f32, add: Addend) {
    if let Addend::Row(r) = add {
        assert_eq!(r.len(), ys.len(), "epilogue row addend");
    }
    if act == Act::None && alpha == 1.0 && matches!(add, Addend::None) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if act == Act::Gelu && is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; a Row addend is as long as `ys` (asserted above).
        return unsafe { gelu_avx512(ys, alpha, add) };
    }
    affine_act_isa(act, ys, alpha, add)
}

/// `ys[j] = gelu(alpha * ys[j] + addend_j)` 16 lanes at a time (the tail masked): GELU's erf as
/// in [`Act::apply_fast`] (Abramowitz & Stegun 7.1.26 with the same `exp` polynomial), but with
/// fused multiply-adds and `1 / (1 + p|z|)` from `rcp14` and one Newton step (relative error
/// about 2^-28). Within 1e-6 of `apply_fast` (tested); `exp`'s argument is clamped at -80, where
/// the erf is 1 in f32 anyway, so no subnormal is ever made.
///
/// # Safety
/// The CPU has AVX-512F; an [`Addend::Row`] is at least as long as `ys`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gelu_avx512(ys: &mut [f32], alpha: f32, add: Addend) {
    use std::arch::x86_64::*;
    let c = _mm512_set1_ps;
    let alpha_v = c(alpha);
    for j0 in (0..ys.len()).step_by(16) {
        let live = 16.min(ys.len() - j0);
        let mask: __mmask16 = if live == 16 { !0 } else { (1u16 << live) - 1 };
        let y = ys.as_mut_ptr().add(j0);
        let addend = match add {
            Addend::None => _mm512_setzero_ps(),
            Addend::Scalar(b) => c(b),
            Addend::Row(r) => _mm512_maskz_loadu_ps(mask, r.as_ptr().add(j0)),
        };
        let x = _mm512_fmadd_ps(alpha_v, _mm512_maskz_loadu_ps(mask, y), addend);
        _mm512_mask_storeu_ps(y, mask, gelu_zmm(x));
    }
}

/// GELU of 16 lanes as [`gelu_avx512`] computes it (shared with the GEMM's fused tail, so both
/// give the same bits).
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) unsafe fn gelu_zmm(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let c = _mm512_set1_ps;
    let z = _mm512_mul_ps(x, c(std::f32::consts::FRAC_1_SQRT_2));
    let a = _mm512_abs_ps(z);
    let d = _mm512_fmadd_ps(a, c(ERF_P), c(1.0));
    let t0 = _mm512_rcp14_ps(d);
    let t = _mm512_fmadd_ps(_mm512_fnmadd_ps(d, t0, c(1.0)), t0, t0);
    let mut p = c(ERF_A[4]);
    for k in ERF_A[..4].iter().rev() {
        p = _mm512_fmadd_ps(p, t, c(*k));
    }
    p = _mm512_mul_ps(p, t);
    // e^(-a^2), its argument clamped at -80, where the erf is 1 in f32 anyway.
    let xe = _mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(a, a)), c(-80.0));
    let erf_abs = _mm512_fnmadd_ps(p, exp_in_range_zmm(xe), c(1.0));
    let sign = _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32(i32::MIN));
    let erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(erf_abs), sign));
    let half = _mm512_mul_ps(x, c(0.5));
    _mm512_fmadd_ps(half, erf, half)
}

/// `e^x` of 16 lanes for `x <= 0` (softmax's shifted scores): [`crate::ops::act::exp_fast`]'s
/// reduction and polynomial with fused multiply-adds (within 2 ulp of it), 0 below -87.3 as
/// there, NaN kept.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) unsafe fn exp_nonpositive_zmm(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let c = _mm512_set1_ps;
    // max(-87.3, x) keeps a NaN x (vmaxps returns its second operand when either is NaN).
    let e = exp_in_range_zmm(_mm512_max_ps(c(-87.3), x));
    let under = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, c(-87.3));
    _mm512_mask_mov_ps(e, under, _mm512_setzero_ps())
}

/// `e^x` of 16 lanes in [-87.3, 88] as [`crate::ops::act::exp_fast`] computes it (2^n e^r,
/// r = x - n ln 2 with ln 2 in two parts, a degree-6 polynomial), with fused multiply-adds.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn exp_in_range_zmm(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let c = _mm512_set1_ps;
    let shifted = _mm512_fmadd_ps(x, c(std::f32::consts::LOG2_E), c(EXP_ROUNDER));
    let n = _mm512_sub_ps(shifted, c(EXP_ROUNDER));
    let r = _mm512_fmadd_ps(n, c(EXP_LN2[1]), _mm512_fnmadd_ps(n, c(EXP_LN2[0]), x));
    let mut q = c(EXP_POLY[0]);
    for k in &EXP_POLY[1..] {
        q = _mm512_fmadd_ps(q, r, c(*k));
    }
    let e = _mm512_fmadd_ps(_mm512_mul_ps(q, r), r, _mm512_add_ps(r, c(1.0)));
    let ni = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_set1_epi32(EXP_ROUNDER.to_bits() as i32));
    let scale = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(ni, _mm512_set1_epi32(127))));
    _mm512_mul_ps(e, scale)
}

crate::multiversion!(fn affine_act_isa(act: Act, ys: &mut [f32], alpha: f32, add: Addend) => affine_act_any);

/// The activation chosen outside the loop, so that each loop body is straight-line code.
#[inline(always)]
fn affine_act_any(act: Act, ys: &mut [f32], alpha: f32, add: Addend) {
    match act {
        Act::None => each(ys, alpha, add, |x| x),
        Act::Relu => each(ys, alpha, add, |x| Act::Relu.apply_fast(x)),
        Act::Relu6 => each(ys, alpha, add, |x| Act::Relu6.apply_fast(x)),
        Act::Gelu => each(ys, alpha, add, |x| Act::Gelu.apply_fast(x)),
        Act::Sigmoid => each(ys, alpha, add, |x| Act::Sigmoid.apply_fast(x)),
        Act::HSwish => each(ys, alpha, add, |x| Act::HSwish.apply_fast(x)),
        Act::LeakyRelu(a) => each(ys, alpha, add, |x| Act::LeakyRelu(a).apply_fast(x)),
    }
}

#[inline(always)]
fn each(ys: &mut [f32], alpha: f32, add: Addend, f: impl Fn(f32) -> f32) {
    match add {
        Addend::None => ys.iter_mut().for_each(|y| *y = f(alpha * *y)),
        Addend::Scalar(b) => ys.iter_mut().for_each(|y| *y = f(alpha * *y + b)),
        Addend::Row(r) => ys.iter_mut().zip(r).for_each(|(y, b)| *y = f(alpha * *y + b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{Rng, Tensor};

    /// Every activation and addend, odd lengths (vector tails), on whichever ISA this CPU picks and
    /// on the baseline path: bit-identical to `apply_fast` element by element (GELU on AVX-512:
    /// within 1e-6 of it, scaled by the input's size past 1).
    #[test]
    fn affine_act_equals_apply_fast_elementwise() {
        let seed = Rng::fresh_seed();
        let acts = [Act::None, Act::Relu, Act::Relu6, Act::Gelu, Act::Sigmoid, Act::HSwish, Act::LeakyRelu(0.1)];
        for len in [1, 7, 16, 33, 1000] {
            let x = Tensor::random(&[len], seed ^ len as u64, -12.0, 12.0).data;
            let row = Tensor::random(&[len], seed ^ 7, -2.0, 2.0).data;
            for act in acts {
                for alpha in [1.0f32, 0.37] {
                    for add in [Addend::None, Addend::Scalar(0.25), Addend::Row(&row)] {
                        let want: Vec<f32> = (0..len)
                            .map(|j| {
                                let b = match add {
                                    Addend::None => None,
                                    Addend::Scalar(b) => Some(b),
                                    Addend::Row(r) => Some(r[j]),
                                };
                                act.apply_fast(b.map_or(alpha * x[j], |b| alpha * x[j] + b))
                            })
                            .collect();
                        let mut got = x.clone();
                        affine_act(act, &mut got, alpha, add);
                        let mut base = x.clone();
                        affine_act_any(act, &mut base, alpha, add);
                        for j in 0..len {
                            let fused = act == Act::Gelu && is_x86_feature_detected!("avx512f");
                            if fused {
                                let tol = 1e-6 * x[j].abs().max(1.0);
                                assert!(
                                    (got[j] - want[j]).abs() <= tol,
                                    "{act:?} {add:?} [{j}] of {len}: {} vs {} (seed {seed})",
                                    got[j],
                                    want[j]
                                );
                            } else {
                                assert_eq!(
                                    got[j].to_bits(),
                                    want[j].to_bits(),
                                    "{act:?} {add:?} [{j}] of {len} (seed {seed})"
                                );
                            }
                            assert_eq!(
                                base[j].to_bits(),
                                want[j].to_bits(),
                                "baseline {act:?} {add:?} [{j}] (seed {seed})"
                            );
                        }
                    }
                }
            }
        }
    }
}
