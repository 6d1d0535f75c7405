//! Bilinear resize of NCHW f32 with `F.interpolate(x, size=out, mode='bilinear', align_corners=..)`
//! semantics (no antialias): up- and downsampling, any ratio. Dispatch and windows of whole planes:
//! `ops::planes`, shared with `pool`.

use crate::error::Result;
use crate::kernel;
use crate::ops::planes::{dispatch_planes, plane_kernel, reference_planes, sized_output};
use crate::ops::{as_bytes, Op, PlanCtx, TensorView};
use crate::tensor::{Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("resize")];

/// Bilinear resize to `out = [oh, ow]`.
///
/// `align_corners = false`: source coordinate `(dst + 0.5) * in/out - 0.5`, clamped at 0 below;
/// `true`: `dst * (in-1)/(out-1)` (0 for a 1-pixel output). Neighbours past the edge repeat it.
#[derive(Clone, Debug)]
pub struct Resize {
    pub out: [usize; 2],
    pub align_corners: bool,
}

/// Resize fields after the plane header (`ops::planes`).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ResizeParams {
    scale_h: f32,
    scale_w: f32,
    align_corners: u32,
    _pad: u32,
}

impl Resize {
    /// Output element (i, j) of an `h x w` input plane, in f64 from per-axis tables of the two
    /// source indices and the second one's weight.
    fn element(&self, h: usize, w: usize) -> impl Fn(&[f32], usize, usize) -> f32 + Send + Sync + 'static {
        let align_corners = self.align_corners;
        let axis = move |o: usize, len: usize, out: usize| -> (usize, usize, f64) {
            let src = if align_corners {
                if out > 1 {
                    (o * (len - 1)) as f64 / (out - 1) as f64
                } else {
                    0.0
                }
            } else {
                ((o as f64 + 0.5) * len as f64 / out as f64 - 0.5).max(0.0)
            };
            let i0 = (src.floor() as usize).min(len - 1);
            let i1 = (i0 + 1).min(len - 1);
            (i0, i1, (src - i0 as f64).clamp(0.0, 1.0))
        };
        let [oh, ow] = self.out;
        let rows: Vec<_> = (0..oh).map(|i| axis(i, h, oh)).collect();
        let cols: Vec<_> = (0..ow).map(|j| axis(j, w, ow)).collect();
        move |plane: &[f32], i: usize, j: usize| {
            let ((r0, r1, a), (q0, q1, b)) = (rows[i], cols[j]);
            let at = |r: usize, q: usize| plane[r * w + q] as f64;
            let v = (1.0 - a) * ((1.0 - b) * at(r0, q0) + b * at(r0, q1)) + a * ((1.0 - b) * at(r1, q0) + b * at(r1, q1));
            v as f32
        }
    }

    /// PyTorch's `area_pixel_compute_scale` for a given output size, in f32 as PyTorch does.
    fn scale(&self, input: usize, output: usize) -> f32 {
        if !self.align_corners {
            input as f32 / output as f32
        } else if output > 1 {
            (input - 1) as f32 / (output - 1) as f32
        } else {
            0.0
        }
    }
}

impl Op for Resize {
    fn kind(&self) -> &'static str {
        "resize"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        sized_output(inputs, self.out)
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        let x = inputs[0].shape;
        plane_kernel(x, self.out, self.element(*x.get(2)?, *x.get(3)?), "bilinear planes")
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let x = inputs[0];
        let [oh, ow] = self.out;
        vec![reference_planes(x, oh, ow, self.element(x.shape[2], x.shape[3]))]
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let (x, y) = (&inputs[0], &outputs[0]);
        let params = ResizeParams {
            scale_h: self.scale(x.shape[2], y.shape[2]),
            scale_w: self.scale(x.shape[3], y.shape[3]),
            align_corners: self.align_corners as u32,
            _pad: 0,
        };
        dispatch_planes(ctx, &KERNELS[0], "bilinear", x, y, as_bytes(&params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{check_op, check_op_windowed, run_on_gpu};
    use crate::tensor::Rng;

    const TOL: f32 = 1e-5;

    fn resize(out: [usize; 2], align_corners: bool) -> Resize {
        Resize { out, align_corners }
    }

    /// Reference and GPU against values derived by hand.
    fn check_hand(case: &str, op: &Resize, x: &Tensor, want: &[f32]) {
        let shape = [x.shape[0], x.shape[1], op.out[0], op.out[1]];
        for (who, got) in
            [("reference", op.reference(&[x]).remove(0)), ("gpu", run_on_gpu(op, &[x.clone()]).unwrap().remove(0))]
        {
            assert_eq!(got.shape, shape, "{case} {who}: shape");
            for (k, (g, w)) in got.data.iter().zip(want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "{case} {who}: element {k}: got {g}, want {w} (all: {:?})",
                    got.data
                );
            }
        }
    }

    #[test]
    fn hand_checked_small_cases() {
        let x = Tensor::new(&[1, 1, 2, 2], vec![0.0, 1.0, 2.0, 3.0]).unwrap();
        // align_corners: sources 0, 0.5, 1 per axis; value = 2*row + col.
        check_hand("2x2->3x3 corners", &resize([3, 3], true), &x, &[0.0, 0.5, 1.0, 1.0, 1.5, 2.0, 2.0, 2.5, 3.0]);
        // Half-pixel: sources max(-0.25, 0), 0.25, 0.75, 1.25 (clamped to the edge) -> 0, .25, .75, 1.
        let r = [0.0f32, 0.25, 0.75, 1.0];
        let want: Vec<f32> = r.iter().flat_map(|a| r.iter().map(move |b| 2.0 * a + b)).collect();
        check_hand("2x2->4x4 half-pixel", &resize([4, 4], false), &x, &want);
        // Downsampling 1x4 -> 1x2: sources 0.5 and 2.5.
        let x = Tensor::new(&[1, 1, 1, 4], vec![0.0, 1.0, 2.0, 3.0]).unwrap();
        check_hand("1x4->1x2 half-pixel", &resize([1, 2], false), &x, &[0.5, 2.5]);
        // align_corners to one pixel takes the first; half-pixel 1x4 -> 1x1 takes source 1.5.
        check_hand("1x4->1x1 corners", &resize([1, 1], true), &x, &[0.0]);
        check_hand("1x4->1x1 half-pixel", &resize([1, 1], false), &x, &[1.5]);
        // 1x3 -> 1x5 align_corners: sources 0, .5, 1, 1.5, 2.
        let x = Tensor::new(&[1, 1, 1, 3], vec![1.0, -1.0, 4.0]).unwrap();
        check_hand("1x3->1x5 corners", &resize([1, 5], true), &x, &[1.0, 0.0, -1.0, 1.5, 4.0]);
    }

    #[test]
    fn matches_reference() {
        let seed = Rng::fresh_seed();
        let cases: &[(&[usize], [usize; 2])] = &[
            (&[1, 3, 16, 16], [64, 64]),
            (&[2, 3, 13, 17], [32, 9]),
            (&[2, 3, 5, 5], [1, 1]),
            (&[2, 3, 1, 1], [4, 4]),
            (&[1, 3, 7, 1], [3, 5]),
            (&[2, 3, 13, 17], [13, 17]),
            (&[1, 2, 23, 29], [10, 41]),
        ];
        for (k, (shape, out)) in cases.iter().enumerate() {
            let x = Tensor::random(shape, seed + k as u64, -4.0, 4.0);
            for align_corners in [false, true] {
                let case = format!("resize {shape:?} -> {out:?} align_corners {align_corners} seed {seed}");
                check_op(&case, &resize(*out, align_corners), &[x.clone()], TOL);
            }
        }
    }

    #[test]
    fn split_into_plane_windows() {
        let seed = Rng::fresh_seed();
        let x = Tensor::random(&[2, 3, 9, 7], seed, -4.0, 4.0);
        // Two 13x11 output planes per window, at unaligned offsets: 6 planes in 3 dispatches.
        let n = check_op_windowed(
            &format!("resize split seed {seed}"),
            &resize([13, 11], false),
            &[x],
            TOL,
            2 * 13 * 11 + 70,
        );
        assert_eq!(n, 3, "dispatches");
    }

    #[test]
    fn shape_rule() {
        assert_eq!(resize([4, 6], true).infer(&[&[2, 3, 5, 7]]).unwrap()[0], vec![2, 3, 4, 6]);
        assert!(resize([0, 6], true).infer(&[&[2, 3, 5, 7]]).is_err());
        assert!(resize([4, 6], true).infer(&[&[3, 5, 7]]).unwrap_err().contains("4-D"));
    }
}
