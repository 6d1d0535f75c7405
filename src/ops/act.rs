//! Activation functions: the codes shared with `kernels/common.wgsl` and their CPU references.

/// An activation, fused into the kernel that produces a value or run by the `unary` op.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Act {
    #[default]
    None,
    Relu,
    Relu6,
    /// Exact GELU with erf (PyTorch's default).
    Gelu,
    Sigmoid,
    HSwish,
    LeakyRelu(f32),
}

impl Act {
    /// (code, alpha) as the WGSL `apply_act` takes them.
    pub fn code(&self) -> (u32, f32) {
        match *self {
            Act::None => (0, 0.0),
            Act::Relu => (1, 0.0),
            Act::Relu6 => (2, 0.0),
            Act::Gelu => (3, 0.0),
            Act::Sigmoid => (4, 0.0),
            Act::HSwish => (5, 0.0),
            Act::LeakyRelu(a) => (6, a),
        }
    }

    /// The override constant that specializes a kernel's pipeline on this activation (`ACT` in
    /// `kernels/common.wgsl`): lavapipe runs both sides of every branch, so the runtime switch over
    /// the code costs every activation's math per output. Pass it wherever the kernel applies one.
    pub fn constant(&self) -> (&'static str, f64) {
        ("ACT", self.code().0 as f64)
    }

    /// Plain CPU reference, computed in f64.
    pub fn apply(&self, x: f32) -> f32 {
        let v = x as f64;
        (match *self {
            Act::None => v,
            Act::Relu => v.max(0.0),
            Act::Relu6 => v.clamp(0.0, 6.0),
            Act::Gelu => 0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2)),
            Act::Sigmoid => 1.0 / (1.0 + (-v).exp()),
            Act::HSwish => v * (v + 3.0).clamp(0.0, 6.0) / 6.0,
            Act::LeakyRelu(a) => {
                if v >= 0.0 {
                    v
                } else {
                    v * a as f64
                }
            }
        }) as f32
    }
}

/// erf in f64 to near machine precision: Taylor series near 0, continued fraction for erfc beyond.
pub fn erf(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 2.5 {
        let mut term = a;
        let mut sum = a;
        let x2 = a * a;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else if a > 27.0 {
        1.0
    } else {
        // erfc(a) = exp(-a^2)/sqrt(pi) * 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + ...)))), evaluated backwards.
        let mut f = a;
        for k in (1..80).rev() {
            f = a + (k as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / f
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn erf_matches_known_values() {
        // Values from standard tables.
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (2.0, 0.9953222650189527),
            (2.5, 0.9995930479825550),
            (3.0, 0.9999779095030014),
            (-1.0, -0.8427007929497149),
        ] {
            assert!((erf(x) - want).abs() < 1e-14, "erf({x}) = {} want {want}", erf(x));
        }
    }
}

impl Act {
    /// The activation in f32 for the CPU backend's kernels: GELU through an erf with absolute
    /// error under 2e-7 (Abramowitz & Stegun 7.1.26), the rest as [`Act::apply`] in f32. Tested
    /// against [`Act::apply`] below.
    #[inline(always)]
    pub fn apply_fast(&self, x: f32) -> f32 {
        match *self {
            Act::None => x,
            Act::Relu => x.max(0.0),
            Act::Relu6 => x.clamp(0.0, 6.0),
            Act::Gelu => 0.5 * x * (1.0 + erf_fast(x * std::f32::consts::FRAC_1_SQRT_2)),
            Act::Sigmoid => 1.0 / (1.0 + exp_fast(-x)),
            Act::HSwish => x * ((x + 3.0).clamp(0.0, 6.0) / 6.0),
            Act::LeakyRelu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    x * a
                }
            }
        }
    }

    /// [`Act::apply_fast`] over a slice, in place (nothing to do for `None`).
    pub fn apply_slice(&self, xs: &mut [f32]) {
        if *self != Act::None {
            for v in xs {
                *v = self.apply_fast(*v);
            }
        }
    }
}

/// Abramowitz & Stegun 7.1.26: `erf(a) = 1 - t (A[0] + t (A[1] + ... + t A[4])) e^(-a^2)` for
/// `a >= 0`, `t = 1 / (1 + ERF_P a)` (the constants rounded to f32).
pub(crate) const ERF_P: f32 = 0.327_591_1;
pub(crate) const ERF_A: [f32; 5] = [0.254_829_6, -0.284_496_72, 1.421_413_8, -1.453_152_1, 1.061_405_4];

/// erf in f32 (Abramowitz & Stegun 7.1.26: absolute error under 1.5e-7, plus f32 rounding).
#[inline(always)]
fn erf_fast(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + ERF_P * a);
    let p = t * (ERF_A[0] + t * (ERF_A[1] + t * (ERF_A[2] + t * (ERF_A[3] + t * ERF_A[4]))));
    let r = 1.0 - p * exp_fast(-a * a);
    r.copysign(x)
}

/// [`exp_fast`]'s polynomial for `(e^r - 1 - r) / r^2`, highest power first (Cephes' expf).
pub(crate) const EXP_POLY: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_66, 0.5];
/// ln 2 in two parts, `EXP_LN2[0] - EXP_LN2[1]`: the first exact in f32 times any `n` in range.
pub(crate) const EXP_LN2: [f32; 2] = [0.693_359_4, 2.121_944_4e-4];
/// 1.5 * 2^23: added and taken away, rounds an f32 below 2^22 to an integer.
pub(crate) const EXP_ROUNDER: f32 = 12_582_912.0;

/// `e^x` in f32 without a libm call, branch-free so loops over it vectorize: `2^n * e^r` with
/// `r = x - n ln 2` in [-ln2/2, ln2/2] (ln 2 split in two for exactness) and a degree-6
/// polynomial for `e^r` (Cephes' expf coefficients); relative error about 2e-7. Inputs beyond
/// +-87.3 saturate to the f32 range's ends (0 below, about 1.2e38 above; `x = inf` gives inf);
/// NaN stays NaN.
#[inline(always)]
pub fn exp_fast(x: f32) -> f32 {
    let xc = x.clamp(-87.3, 88.0);
    // Round to nearest by adding and taking away 1.5 * 2^23 (|x log2 e| < 2^22): `f32::round` is a
    // libm call on baseline x86-64 (no SSE4.1), which keeps loops over exp_fast scalar.
    let shifted = xc * std::f32::consts::LOG2_E + EXP_ROUNDER;
    let n = shifted - EXP_ROUNDER;
    let r = xc - n * EXP_LN2[0] + n * EXP_LN2[1];
    let mut p = EXP_POLY[0];
    for k in &EXP_POLY[1..] {
        p = p * r + k;
    }
    let e = p * r * r + r + 1.0;
    // n as an integer from the low bits of `shifted` (whose unit in the last place is 1): the same
    // value as `n as i32`, whose saturating conversion LLVM turns into scalar code per lane.
    let ni = shifted.to_bits().wrapping_sub(EXP_ROUNDER.to_bits()) as i32;
    let scale = f32::from_bits((ni.wrapping_add(127) as u32) << 23);
    let y = e * scale;
    if x < -87.3 {
        0.0
    } else if x == f32::INFINITY {
        x
    } else {
        y
    }
}

#[cfg(test)]
mod fast_tests {
    use super::*;

    /// exp_fast within 5e-7 relative of f64 exp over its range, saturating beyond it.
    #[test]
    fn exp_fast_matches_exp() {
        for i in -873_000..=880_000 {
            let x = i as f32 * 1e-4;
            let (got, want) = (exp_fast(x) as f64, (x as f64).exp());
            assert!((got - want).abs() <= 5e-7 * want, "exp({x}): {got} vs {want}");
        }
        assert_eq!(exp_fast(-100.0), 0.0);
        assert_eq!(exp_fast(f32::INFINITY), f32::INFINITY);
        assert!(exp_fast(100.0) > 1e38 && exp_fast(100.0).is_finite());
        assert!(exp_fast(f32::NAN).is_nan());
    }

    /// Every activation's fast form against the f64 reference over [-12, 12] and its extremes,
    /// within 1e-6 of max(|y|, 1).
    #[test]
    fn fast_activations_match_the_reference() {
        let acts = [Act::None, Act::Relu, Act::Relu6, Act::Gelu, Act::Sigmoid, Act::HSwish, Act::LeakyRelu(0.1)];
        let mut xs: Vec<f32> = (0..=24_000).map(|i| -12.0 + i as f32 * 1e-3).collect();
        xs.extend([f32::MAX, -f32::MAX, 1e-30, -1e-30, 0.0, -0.0, 88.0, -88.0, 104.0]);
        for a in acts {
            for &x in &xs {
                let (want, got) = (a.apply(x), a.apply_fast(x));
                let tol = 1e-6 * want.abs().max(1.0);
                assert!((want - got).abs() <= tol || want == got, "{a:?}({x}): fast {got}, reference {want}");
            }
        }
    }
}
