//! Unary and binary element-wise ops on the CPU backend: contiguous runs in vectorizable loops,
//! broadcast operands walked row by row with their own strides.

use crate::cpu::epilogue::{affine_act, Addend};
use super::{broadcast_shapes, broadcast_strides, Binary, Unary, MAX_RANK};
use crate::cpu::{par_chunks, strided_rows, CpuInput, CpuKernel};

pub(super) struct UnaryCpu(Unary);

impl CpuKernel for UnaryCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (x, act) = (inputs[0], self.0.act);
        par_chunks(outputs[0], 1 << 14, 1 << 14, |i, y| {
            y.copy_from_slice(&x[i << 14..(i << 14) + y.len()]);
            affine_act(act, y, 1.0, Addend::None);
        });
    }
    fn name(&self) -> &'static str {
        "unary"
    }
}

pub(super) fn unary(u: &Unary) -> Option<Box<dyn CpuKernel>> {
    Some(Box::new(UnaryCpu(u.clone())))
}

pub(super) struct BinaryCpu {
    op: Binary,
    dims: Vec<usize>,
    sa: Vec<usize>,
    sb: Vec<usize>,
}

pub(super) fn binary(op: &Binary, inputs: &[CpuInput]) -> Option<Box<dyn CpuKernel>> {
    let out = broadcast_shapes(inputs[0].shape, inputs[1].shape).ok()?;
    let r = out.len();
    let strides = |s: &[usize]| broadcast_strides(s, &out)[MAX_RANK - r..].iter().map(|&v| v as usize).collect();
    let (sa, sb) = (strides(inputs[0].shape), strides(inputs[1].shape));
    Some(Box::new(BinaryCpu { op: op.clone(), dims: out, sa, sb }))
}

impl CpuKernel for BinaryCpu {
    fn run(&self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) {
        let (a, b) = (inputs[0], inputs[1]);
        let (kind, act) = (self.op.kind, self.op.act);
        let last = |s: &[usize]| s.last().copied().unwrap_or(0);
        let (la, lb) = (last(&self.sa), last(&self.sb));
        strided_rows(outputs[0], &self.dims, [&self.sa, &self.sb], |y, [oa, ob]| {
            let n = y.len();
            match (la, lb) {
                (1, 1) => {
                    y.iter_mut().zip(&a[oa..oa + n]).zip(&b[ob..ob + n]).for_each(|((y, &p), &q)| {
                        *y = act.apply_fast(kind.apply(p, q));
                    })
                }
                (1, 0) => {
                    let q = b[ob];
                    y.iter_mut().zip(&a[oa..oa + n]).for_each(|(y, &p)| *y = act.apply_fast(kind.apply(p, q)))
                }
                (0, 1) => {
                    let p = a[oa];
                    y.iter_mut().zip(&b[ob..ob + n]).for_each(|(y, &q)| *y = act.apply_fast(kind.apply(p, q)))
                }
                _ => y.iter_mut().enumerate().for_each(|(j, y)| {
                    *y = act.apply_fast(kind.apply(a[oa + j * la], b[ob + j * lb]));
                }),
            }
        });
    }
    fn name(&self) -> &'static str {
        "binary"
    }
}
