//! Windowed multi-scale attention on the CPU backend: one task per (item, head) on the pool
//! tokenizes the head's q, k and v into dense `tokens x d` matrices, takes the scores with our
//! GEMM (the scale in its registers), the softmax of each row (attention's), the product with
//! V, and writes it back into the head's channels. f32 throughout (the reference sums in f64).

use super::MsAttn;
use crate::cpu::gemm::{sgemm_serial, Mat, PackedRhs, Tail};
use crate::cpu::{CpuInput, CpuKernel, SendPtr};
use crate::ops::attention::cpu::softmax;
use rayon::prelude::*;

pub(super) struct MsAttnCpu {
    patches: Vec<usize>,
    shape: [usize; 4],
}

pub(super) fn kernel(op: &MsAttn, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    let shape = <[usize; 4]>::try_from(inputs[0].shape).ok()?;
    Some(Box::new(MsAttnCpu { patches: op.patches.clone(), shape }))
}

impl CpuKernel for MsAttnCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let [n, c, h, w] = self.shape;
        let groups = self.patches.len();
        let cg = c / groups;
        let out = &mut *outputs[0];
        assert_eq!(out.len(), n * c * h * w, "msattn output length");
        let ptr = SendPtr(out.as_mut_ptr());
        (0..n * groups).into_par_iter().for_each(|task| {
            let (b, g) = (task / groups, task % groups);
            let p = self.patches[g];
            let (ty, tx) = (h / p, w / p);
            let (t, d) = (ty * tx, cg * p * p);
            // Token i, element e = (c * p + dy) * p + dx, of the head's channels.
            let place = |i: usize, e: usize| {
                let (ch, dy, dx) = (e / (p * p), (e / p) % p, e % p);
                ((b * c + g * cg + ch) * h + (i / tx) * p + dy) * w + (i % tx) * p + dx
            };
            let tokens = |x: &[f32]| -> Vec<f32> { (0..t * d).map(|j| x[place(j / d, j % d)]).collect() };
            let (q, k, v) = (tokens(inputs[0]), tokens(inputs[1]), tokens(inputs[2]));
            let scale = 1.0 / ((d as f64).sqrt() as f32);
            let mut scores = vec![0.0f32; t * t];
            let kt = PackedRhs::new(d, t, Mat::t(&k, d));
            // SAFETY: `scores` holds t x t floats, written by this task alone.
            unsafe { kt.product_into(t, Mat::rows(&q, d), scores.as_mut_ptr(), t, Tail::scale(scale)) };
            scores.chunks_exact_mut(t).for_each(softmax);
            let mut o = vec![0.0f32; t * d];
            sgemm_serial(t, t, d, Mat::rows(&scores, t), Mat::rows(&v, d), &mut o, d, false);
            let y = ptr;
            for (j, &val) in o.iter().enumerate() {
                // SAFETY: each task writes its own (item, head) channels of `out` (length checked
                // above), every element of them once.
                unsafe { *y.0.add(place(j / d, j % d)) = val };
            }
        });
    }
    fn name(&self) -> &'static str {
        "msattn tokens + gemm + softmax"
    }
}
