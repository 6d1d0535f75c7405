//! The element-wise tail of the GEMM-based kernels (matmul, conv2d, conv_transpose2d):
//! `y = act(alpha * y + addend)` in place, compiled for the widest vector ISA this CPU has
//! (AVX-512F, else AVX2 + FMA, else baseline SSE2) and chosen at run time. Every path runs the
//! same f32 operations in the same order (Rust never contracts `a * b + c` into an FMA), so the
//! result is bit-identical to [`Act::apply_fast`] element by element.

use crate::ops::act::Act;

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
    affine_act_isa(act, ys, alpha, add)
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
    /// on the baseline path: bit-identical to `apply_fast` element by element.
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
                            assert_eq!(
                                got[j].to_bits(),
                                want[j].to_bits(),
                                "{act:?} {add:?} [{j}] of {len} (seed {seed})"
                            );
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
