//! Unary and binary element-wise ops on the CPU backend: contiguous runs in vectorizable loops,
//! broadcast operands walked row by row with their own strides.

use crate::cpu::epilogue::{affine_act, Addend};
use super::{broadcast_shapes, broadcast_strides, Binary, BinaryKind, Unary, MAX_RANK};
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

crate::multiversion!(
    /// `y[j] = a[j * la] (op) b[j * lb]`: the operation chosen outside the loop, and contiguous or
    /// broadcast operands (stride 1 or 0) in loops of their own, so each vectorizes.
    fn binary_row(kind: BinaryKind, y: &mut [f32], a: &[f32], la: usize, b: &[f32], lb: usize) => binary_row_any
);

#[inline(always)]
fn binary_row_any(kind: BinaryKind, y: &mut [f32], a: &[f32], la: usize, b: &[f32], lb: usize) {
    match kind {
        BinaryKind::Add => row_with(y, a, la, b, lb, |p, q| p + q),
        BinaryKind::Sub => row_with(y, a, la, b, lb, |p, q| p - q),
        BinaryKind::Mul => row_with(y, a, la, b, lb, |p, q| p * q),
        BinaryKind::Div => row_with(y, a, la, b, lb, |p, q| p / q),
    }
}

#[inline(always)]
fn row_with(y: &mut [f32], a: &[f32], la: usize, b: &[f32], lb: usize, f: impl Fn(f32, f32) -> f32) {
    let n = y.len();
    match (la, lb) {
        (1, 1) => y.iter_mut().zip(&a[..n]).zip(&b[..n]).for_each(|((y, &p), &q)| *y = f(p, q)),
        (1, 0) => {
            let q = b[0];
            y.iter_mut().zip(&a[..n]).for_each(|(y, &p)| *y = f(p, q))
        }
        (0, 1) => {
            let p = a[0];
            y.iter_mut().zip(&b[..n]).for_each(|(y, &q)| *y = f(p, q))
        }
        _ => y.iter_mut().enumerate().for_each(|(j, y)| *y = f(a[j * la], b[j * lb])),
    }
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
            binary_row(kind, y, &a[oa..], la, &b[ob..], lb);
            affine_act(act, y, 1.0, Addend::None);
        });
    }
    fn name(&self) -> &'static str {
        "binary"
    }
}
