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
    #[inline]
    pub fn apply_fast(&self, x: f32) -> f32 {
        match *self {
            Act::None => x,
            Act::Relu => x.max(0.0),
            Act::Relu6 => x.clamp(0.0, 6.0),
            Act::Gelu => 0.5 * x * (1.0 + erf_fast(x * std::f32::consts::FRAC_1_SQRT_2)),
            Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
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

/// erf in f32 (Abramowitz & Stegun 7.1.26, computed in f64 for the rational part).
#[inline]
fn erf_fast(x: f32) -> f32 {
    let a = (x as f64).abs();
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let p = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let r = 1.0 - p * (-a * a).exp();
    (if x < 0.0 { -r } else { r }) as f32
}

#[cfg(test)]
mod fast_tests {
    use super::*;

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
