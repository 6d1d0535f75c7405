//! Host tensors: f32 data in row-major (NCHW for images) order, plus the helpers tests use.

use crate::error::{Error, Result};

pub type Shape = Vec<usize>;

pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// `shape` seen as [outer, len, inner] around `axis`.
pub fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (shape[..axis].iter().product(), shape[axis], shape[axis + 1..].iter().product())
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Shape,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(shape: &[usize], data: Vec<f32>) -> Result<Tensor> {
        if numel(shape) != data.len() {
            return Err(Error::invalid(format!(
                "tensor of shape {shape:?} needs {} values, got {}",
                numel(shape),
                data.len()
            )));
        }
        Ok(Tensor { shape: shape.to_vec(), data })
    }
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor { shape: shape.to_vec(), data: vec![0.0; numel(shape)] }
    }
    pub fn full(shape: &[usize], v: f32) -> Tensor {
        Tensor { shape: shape.to_vec(), data: vec![v; numel(shape)] }
    }
    /// Uniform values in [lo, hi) from a seeded generator (tests and benches).
    pub fn random(shape: &[usize], seed: u64, lo: f32, hi: f32) -> Tensor {
        let mut rng = Rng::new(seed);
        let data = (0..numel(shape)).map(|_| lo + (hi - lo) * rng.next_f32()).collect();
        Tensor { shape: shape.to_vec(), data }
    }
    pub fn numel(&self) -> usize {
        self.data.len()
    }
    pub fn reshape(mut self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.data.len() {
            return Err(Error::invalid(format!("cannot reshape {:?} to {shape:?}", self.shape)));
        }
        self.shape = shape.to_vec();
        Ok(self)
    }
    /// Largest absolute value (the "scale" relative tolerances refer to).
    pub fn max_abs(&self) -> f32 {
        self.data.iter().fold(0.0f32, |m, v| m.max(v.abs()))
    }
    /// Largest absolute element-wise difference; shapes must match.
    pub fn max_abs_diff(&self, other: &Tensor) -> f32 {
        assert_eq!(self.shape, other.shape, "shape mismatch in comparison");
        self.data.iter().zip(&other.data).fold(0.0f32, |m, (a, b)| {
            if a.is_nan() || b.is_nan() {
                f32::INFINITY
            } else {
                m.max((a - b).abs())
            }
        })
    }
}

/// Check `got` against `want` with a tolerance relative to the larger of `want`'s scale and 1.
/// Returns a message naming the worst element when it fails.
pub fn check_close(what: &str, got: &Tensor, want: &Tensor, rel_tol: f32) -> std::result::Result<(), String> {
    if got.shape != want.shape {
        return Err(format!("{what}: shape {:?} != expected {:?}", got.shape, want.shape));
    }
    let scale = want.max_abs().max(1.0);
    let mut worst = (0usize, 0.0f32);
    for (i, (a, b)) in got.data.iter().zip(&want.data).enumerate() {
        let d = if a.is_finite() == b.is_finite() && a.is_finite() {
            (a - b).abs()
        } else if a == b {
            0.0
        } else {
            f32::INFINITY
        };
        if !(d <= worst.1) {
            worst = (i, d);
        }
    }
    if worst.1 > rel_tol * scale {
        return Err(format!(
            "{what}: max error {:.3e} at flat index {} (got {}, want {}) exceeds {rel_tol:.1e} x scale {scale:.3e}, shape {:?}",
            worst.1, worst.0, got.data[worst.0], want.data[worst.0], want.shape
        ));
    }
    Ok(())
}

/// Small deterministic generator (SplitMix64) so tests need no extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// A seed that differs per run unless `FORGE_SEED` is set, so tests see fresh inputs yet stay reproducible.
    pub fn fresh_seed() -> u64 {
        if let Ok(s) = std::env::var("FORGE_SEED") {
            if let Ok(v) = s.parse() {
                return v;
            }
        }
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform integer in [lo, hi].
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
}
