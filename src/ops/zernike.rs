//! Zernike moment magnitudes of the patch around every pixel: luma `[1, 1, H, W]` to
//! `[1, 12, H, W]`, `|Z_nm|` for the 12 orders n <= 5, 0 <= m <= n, n - m even, (0, 0) first
//! ([`zernike_orders`]). The rotation-invariant dense features of copy-move detection
//! (Cozzolino, Poggi & Verdoliva, IEEE TIFS 2015).
//!
//! ```text
//! Z_nm(p) = (n+1)/N Σ_{q in disk} Y(p + q) R_nm(ρ) e^{-i m θ},   ρ = |q| / (r + 0.5), θ = atan2(q_y, q_x)
//! R_nm(ρ) = Σ_{s=0}^{(n-m)/2} (-1)^s (n-s)! / (s! ((n+m)/2 - s)! ((n-m)/2 - s)!) ρ^{n-2s}
//! ```
//! over the disk `|q| <= r + 0.5` of `N` pixels (radius `r` <= 8: diameter 17 at most), pixels
//! past the edge counting as 0. The normalization makes `Z_00` the patch mean, so all magnitudes
//! are in luma levels. Rotating the patch turns each moment's phase by `m` times the angle, so the
//! magnitudes do not change (up to the pixel grid).
//!
//! The reference is the conv2d of the luma with the basis ([`zernike_basis`], 24 kernels: real,
//! then imaginary parts) and the magnitude in f64. The kernel walks each pixel's taps once and
//! accumulates all 24 responses (a conv2d with 24 outputs from one channel ran 5-20x slower on
//! lavapipe, through im2col with a GEMM too narrow for its tiles or 24 depthwise passes).

use crate::error::Result;
use crate::kernel;
use crate::ops::{groups, Bind, Op, PlanCtx, TensorView};
use crate::tensor::{Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("zernike")];

/// Largest patch radius the kernel's uniform holds (17 x 17 taps).
pub const MAX_RADIUS: usize = 8;

/// `[1, 1, H, W]` luma to `[1, 12, H, W]` moment magnitudes over disks of radius `radius + 0.5`.
#[derive(Clone, Debug)]
pub struct ZernikeMagnitudes {
    pub radius: usize,
}

/// The 12 Zernike orders (n, m) with n <= 5, 0 <= m <= n, n - m even; (0, 0) first.
pub fn zernike_orders() -> Vec<(i32, i32)> {
    (0..=5).flat_map(|n| (0..=n).filter(move |m| (n - m) % 2 == 0).map(move |m| (n, m))).collect()
}

/// Zernike radial polynomial R_nm(ρ).
fn radial(n: i32, m: i32, rho: f64) -> f64 {
    let f = |k: i32| (1..=k).map(f64::from).product::<f64>();
    (0..=(n - m) / 2)
        .map(|s| {
            let sign = if s % 2 == 0 { 1.0 } else { -1.0 };
            sign * f(n - s) / (f(s) * f((n + m) / 2 - s) * f((n - m) / 2 - s)) * rho.powi(n - 2 * s)
        })
        .sum()
}

/// The conv2d weight `[24, 1, P, P]` (P = 2 r + 1): channels 0..12 the real parts of the 12
/// moments' kernels, 12..24 the imaginary parts (all zero for m = 0), normalized by (n+1)/N so a
/// constant patch of value v gives Z_00 = v. Convolution is a correlation here: tap (i, j) is the
/// pixel at q = (j - r, i - r).
pub fn zernike_basis(r: usize) -> Tensor {
    let p = 2 * r + 1;
    let orders = zernike_orders();
    let k = orders.len();
    let rad = r as f64 + 0.5;
    let inside = |i: usize, j: usize| {
        let (dx, dy) = (j as f64 - r as f64, i as f64 - r as f64);
        ((dx * dx + dy * dy).sqrt() / rad <= 1.0).then_some((dx, dy))
    };
    let disk = (0..p * p).filter(|&t| inside(t / p, t % p).is_some()).count() as f64;
    let mut t = Tensor::zeros(&[2 * k, 1, p, p]);
    for (c, &(n, m)) in orders.iter().enumerate() {
        for i in 0..p {
            for j in 0..p {
                let Some((dx, dy)) = inside(i, j) else { continue };
                let rho = (dx * dx + dy * dy).sqrt() / rad;
                let theta = dy.atan2(dx);
                let v = (n + 1) as f64 / disk * radial(n, m, rho);
                t.data[(c * p + i) * p + j] = (v * (m as f64 * theta).cos()) as f32;
                t.data[((k + c) * p + i) * p + j] = (-v * (m as f64 * theta).sin()) as f32;
            }
        }
    }
    t
}

impl Op for ZernikeMagnitudes {
    fn kind(&self) -> &'static str {
        "zernike"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        if !(1..=MAX_RADIUS).contains(&self.radius) {
            return Err(format!("radius must be 1..={MAX_RADIUS}, got {}", self.radius));
        }
        match inputs {
            [x] if x.len() == 4 && x[0] == 1 && x[1] == 1 && x[2] > 0 && x[3] > 0 => {
                if x[2] * x[3] * 12 > u32::MAX as usize / 4 {
                    return Err(format!("image {x:?} is too large"));
                }
                Ok(vec![vec![1, 12, x[2], x[3]]])
            }
            [x] => Err(format!("needs a luma plane [1, 1, H, W] with non-empty H and W, got {x:?}")),
            _ => Err(format!("takes 1 input, got {}", inputs.len())),
        }
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let x = inputs[0];
        let (h, w) = (x.shape[2], x.shape[3]);
        let r = self.radius as i64;
        let p = 2 * r + 1;
        let basis = zernike_basis(self.radius);
        let n = h * w;
        let mut out = vec![0.0f32; 12 * n];
        for y in 0..h as i64 {
            for xx in 0..w as i64 {
                let mut acc = [0.0f64; 24];
                for i in 0..p {
                    for j in 0..p {
                        let (sy, sx) = (y + i - r, xx + j - r);
                        if sy < 0 || sx < 0 || sy >= h as i64 || sx >= w as i64 {
                            continue;
                        }
                        let v = x.data[sy as usize * w + sx as usize] as f64;
                        for (c, a) in acc.iter_mut().enumerate() {
                            *a += v * basis.data[((c as i64 * p + i) * p + j) as usize] as f64;
                        }
                    }
                }
                let at = y as usize * w + xx as usize;
                for k in 0..12 {
                    out[k * n + at] = acc[k].hypot(acc[12 + k]) as f32;
                }
            }
        }
        vec![Tensor { shape: vec![1, 12, h, w], data: out }]
    }
    fn cost(&self, inputs: &[&[usize]], outputs: &[&[usize]]) -> crate::ops::Cost {
        // 24 dot products over the disk's p x p taps per pixel, and 12 magnitudes.
        let taps = (2 * self.radius + 1).pow(2) as f64;
        let pixels = crate::tensor::numel(inputs[0]) as f64;
        crate::ops::Cost::streaming(inputs, outputs, 0.0).with_flops(pixels * (48.0 * taps + 36.0))
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::kernel(self, inputs)
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let limit = ctx.windows().limit();
        if outputs[0].numel() > limit {
            return Err(crate::error::Error::invalid(format!(
                "node '{}': the 12 feature planes of {:?} are over one storage binding ({limit} elements): analyse \
                 the image at a smaller size",
                ctx.node_name, inputs[0].shape
            )));
        }
        let (h, w) = (inputs[0].shape[2], inputs[0].shape[3]);
        // The uniform: h, w, r, n, then the basis tap-major (24 values per tap) in a 17 x 17 grid's
        // worth of room, zero past this radius's taps.
        let (p, basis) = (2 * self.radius + 1, zernike_basis(self.radius));
        let side = 2 * MAX_RADIUS + 1;
        let mut taps = vec![0.0f32; side * side * 24];
        for t in 0..p * p {
            for c in 0..24 {
                taps[t * 24 + c] = basis.data[c * p * p + t];
            }
        }
        let head = [h as u32, w as u32, self.radius as u32, (h * w) as u32];
        let mut bytes = bytemuck::cast_slice::<u32, u8>(&head).to_vec();
        bytes.extend_from_slice(bytemuck::cast_slice(&taps));
        let pipe = ctx.pipeline(&KERNELS[0], "zernike", &[])?;
        let binds = [Bind::Uniform(&bytes), Bind::Tensor(&inputs[0]), Bind::Tensor(&outputs[0])];
        ctx.dispatch_linear(&pipe, &binds, groups(h * w, 64))
    }
}

mod cpu;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::check_op;
    use crate::tensor::Rng;

    #[test]
    fn random_inputs_match_reference() {
        let seed = Rng::fresh_seed();
        for (i, (h, w, r)) in [(1, 1, 8), (7, 13, 3), (61, 45, 8), (2, 30, 1), (20, 9, 5)].into_iter().enumerate() {
            let x = Tensor::random(&[1, 1, h, w], seed + i as u64, 0.0, 255.0);
            check_op(&format!("zernike r{r} {h}x{w} seed {seed}"), &ZernikeMagnitudes { radius: r }, &[x], 1e-4);
        }
    }

    #[test]
    fn basis_is_normalized_and_magnitudes_turn_with_the_patch() {
        let b = zernike_basis(8);
        assert_eq!(b.shape, [24, 1, 17, 17]);
        let sum = |c: usize| b.data[c * 289..(c + 1) * 289].iter().map(|&v| v as f64).sum::<f64>();
        assert!((sum(0) - 1.0).abs() < 1e-5, "Z_00 of a constant patch is its value: {}", sum(0));
        assert_eq!(zernike_orders().len(), 12);
        // A patch and the same patch turned by 90 degrees (exact on the grid): same magnitudes.
        let op = ZernikeMagnitudes { radius: 8 };
        let x = Tensor::random(&[1, 1, 17, 17], 5, 0.0, 255.0);
        let mut t = x.clone();
        for i in 0..17 {
            for j in 0..17 {
                t.data[i * 17 + j] = x.data[(16 - j) * 17 + i];
            }
        }
        let (a, b) = (op.reference(&[&x]).remove(0), op.reference(&[&t]).remove(0));
        for k in 0..12 {
            let (u, v) = (a.data[k * 289 + 144], b.data[k * 289 + 144]);
            assert!((u - v).abs() < 1e-3 * u.max(1.0), "moment {k}: {u} vs {v}");
        }
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert!(ZernikeMagnitudes { radius: 9 }.infer(&[&[1, 1, 5, 5]]).is_err());
        assert!(ZernikeMagnitudes { radius: 0 }.infer(&[&[1, 1, 5, 5]]).is_err());
        assert!(ZernikeMagnitudes { radius: 2 }.infer(&[&[1, 3, 5, 5]]).is_err());
        assert!(ZernikeMagnitudes { radius: 2 }.infer(&[&[1, 1, 0, 5]]).is_err());
    }
}
