//! Element-wise ops: activations on one tensor, and add/sub/mul/div with NumPy broadcasting.
//! Both split tensors larger than one storage binding into windows.

use crate::error::{Error, Result};
use crate::kernel;
use crate::ops::act::Act;
use crate::ops::{as_bytes, groups, Bind, Op, PlanCtx, TensorView};
use crate::tensor::{numel, Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("elementwise")];

/// `y = act(x)`.
#[derive(Clone, Debug)]
pub struct Unary {
    pub act: Act,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct UnaryParams {
    n: u32,
    act: u32,
    alpha: f32,
    _pad: u32,
}

impl Op for Unary {
    fn kind(&self) -> &'static str {
        "unary"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        match inputs {
            [x] => Ok(vec![x.to_vec()]),
            _ => Err(format!("takes 1 input, got {}", inputs.len())),
        }
    }
    fn cpu_kernel(&self, _: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::unary(self)
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let x = inputs[0];
        vec![Tensor { shape: x.shape.clone(), data: x.data.iter().map(|&v| self.act.apply(v)).collect() }]
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let p = ctx.pipeline(&KERNELS[0], "unary", &[self.act.constant()])?;
        let (act, alpha) = self.act.code();
        for r in ctx.windows().chunks(inputs[0].numel()) {
            let params = UnaryParams { n: r.len() as u32, act, alpha, _pad: 0 };
            let (x, y) = (inputs[0].window(r.start, r.len()), outputs[0].window(r.start, r.len()));
            let binds = [Bind::Uniform(as_bytes(&params)), Bind::Tensor(&x), Bind::Tensor(&y)];
            ctx.dispatch_linear(&p, &binds, groups(r.len(), 256))?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinaryKind {
    Add,
    Sub,
    Mul,
    Div,
}

/// `y = act(a (op) b)` with NumPy broadcasting (up to 6 dimensions).
#[derive(Clone, Debug)]
pub struct Binary {
    pub kind: BinaryKind,
    pub act: Act,
}

impl Binary {
    pub fn add() -> Self {
        Binary { kind: BinaryKind::Add, act: Act::None }
    }
    pub fn mul() -> Self {
        Binary { kind: BinaryKind::Mul, act: Act::None }
    }
}

pub const MAX_RANK: usize = 6;

/// NumPy broadcast of two shapes.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> std::result::Result<Shape, String> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
        let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(format!("shapes {a:?} and {b:?} do not broadcast (dimension {i}: {da} vs {db})")),
        };
    }
    Ok(out)
}

/// Strides of `shape` viewed inside `out` (right-aligned), 0 where broadcast, padded to MAX_RANK.
fn broadcast_strides(shape: &[usize], out: &[usize]) -> [u32; MAX_RANK] {
    let mut s = [0u32; MAX_RANK];
    let off = MAX_RANK - out.len();
    let mut stride = 1usize;
    for i in (0..shape.len()).rev() {
        let oi = i + out.len() - shape.len();
        if shape[i] != 1 {
            s[off + oi] = stride as u32;
        }
        stride *= shape[i];
    }
    s
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct BinaryParams {
    n: u32,
    base: u32,
    op: u32,
    act: u32,
    alpha: f32,
    a_base: u32,
    b_base: u32,
    _pad: u32,
    d: [u32; 8],
    sa: [u32; 8],
    sb: [u32; 8],
}

impl BinaryKind {
    fn apply(&self, a: f32, b: f32) -> f32 {
        match self {
            BinaryKind::Add => a + b,
            BinaryKind::Sub => a - b,
            BinaryKind::Mul => a * b,
            BinaryKind::Div => a / b,
        }
    }
}

impl Op for Binary {
    fn kind(&self) -> &'static str {
        "binary"
    }
    fn is_plain_add(&self) -> bool {
        self.kind == BinaryKind::Add && self.act == Act::None
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        match inputs {
            [a, b] => {
                let out = broadcast_shapes(a, b)?;
                if out.len() > MAX_RANK {
                    return Err(format!("rank {} exceeds {MAX_RANK}", out.len()));
                }
                Ok(vec![out])
            }
            _ => Err(format!("takes 2 inputs, got {}", inputs.len())),
        }
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::binary(self, inputs)
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let (a, b) = (inputs[0], inputs[1]);
        let out = broadcast_shapes(&a.shape, &b.shape).unwrap();
        let (sa, sb) = (broadcast_strides(&a.shape, &out), broadcast_strides(&b.shape, &out));
        let mut dims = [1usize; MAX_RANK];
        dims[MAX_RANK - out.len()..].copy_from_slice(&out);
        let n = numel(&out);
        let mut data = Vec::with_capacity(n);
        for flat in 0..n {
            let (mut r, mut ia, mut ib) = (flat, 0usize, 0usize);
            for d in (0..MAX_RANK).rev() {
                let i = r % dims[d];
                r /= dims[d];
                ia += i * sa[d] as usize;
                ib += i * sb[d] as usize;
            }
            data.push(self.act.apply(self.kind.apply(a.data[ia], b.data[ib])));
        }
        vec![Tensor { shape: out, data }]
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let out = &outputs[0];
        let flat = inputs.iter().all(|t| t.shape == out.shape);
        let p = ctx.pipeline(&KERNELS[0], if flat { "binary_flat" } else { "binary" }, &[self.act.constant()])?;
        let n = out.numel();
        let (sa, sb) =
            (broadcast_strides(&inputs[0].shape, &out.shape), broadcast_strides(&inputs[1].shape, &out.shape));
        let mut d = [1u32; 8];
        for (i, &v) in out.shape.iter().enumerate() {
            d[MAX_RANK - out.shape.len() + i] = v as u32;
        }
        let pad8 = |s: [u32; MAX_RANK]| {
            let mut o = [0u32; 8];
            o[..MAX_RANK].copy_from_slice(&s);
            o
        };
        let (act, alpha) = self.act.code();
        let win = ctx.windows();
        for r in win.chunks(n) {
            // An input is windowed alongside the output when it has the output's shape; otherwise it
            // must fit one binding whole (a broadcast operand is small in practice).
            let pick = |t: &TensorView| -> Result<(TensorView, u32)> {
                if t.numel() == n {
                    Ok((t.window(r.start, r.len()), r.start as u32))
                } else if win.fits(t.numel()) {
                    Ok((t.clone(), 0))
                } else {
                    Err(Error::graph(format!(
                        "broadcast operand of shape {:?} is larger than one storage binding",
                        t.shape
                    )))
                }
            };
            let (a, a_base) = pick(&inputs[0])?;
            let (b, b_base) = pick(&inputs[1])?;
            let params = BinaryParams {
                n: r.len() as u32,
                base: r.start as u32,
                op: self.kind as u32,
                act,
                alpha,
                a_base,
                b_base,
                _pad: 0,
                d,
                sa: pad8(sa),
                sb: pad8(sb),
            };
            let y = out.window(r.start, r.len());
            let binds = [Bind::Uniform(as_bytes(&params)), Bind::Tensor(&a), Bind::Tensor(&b), Bind::Tensor(&y)];
            ctx.dispatch_linear(&p, &binds, groups(r.len(), 256))?;
        }
        Ok(())
    }
}

mod cpu;
#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::check_op;
    use crate::tensor::Rng;

    const TOL: f32 = 1e-5;

    #[test]
    fn activations_match_reference() {
        let seed = Rng::fresh_seed();
        for (i, act) in [Act::None, Act::Relu, Act::Relu6, Act::Gelu, Act::Sigmoid, Act::HSwish, Act::LeakyRelu(0.01)]
            .into_iter()
            .enumerate()
        {
            let x = Tensor::random(&[2, 3, 17, 29], seed + i as u64, -8.0, 8.0);
            check_op(&format!("unary {act:?} seed {seed}"), &Unary { act }, &[x], TOL);
        }
    }

    #[test]
    fn binary_broadcasting_matches_reference() {
        let seed = Rng::fresh_seed();
        let cases: &[(&[usize], &[usize])] = &[
            (&[2, 3, 7, 5], &[2, 3, 7, 5]),
            (&[2, 3, 7, 5], &[3, 1, 1]),
            (&[1, 3, 1, 5], &[2, 1, 7, 1]),
            (&[5], &[4, 3, 5]),
            (&[4, 1], &[1, 9]),
        ];
        for (k, (a, b)) in cases.iter().enumerate() {
            for kind in [BinaryKind::Add, BinaryKind::Sub, BinaryKind::Mul, BinaryKind::Div] {
                let ta = Tensor::random(a, seed + k as u64, -2.0, 2.0);
                let tb = Tensor::random(b, seed + 100 + k as u64, 0.5, 2.0);
                check_op(
                    &format!("{kind:?} {a:?} {b:?} seed {seed}"),
                    &Binary { kind, act: Act::Relu },
                    &[ta, tb],
                    TOL,
                );
            }
        }
    }

    /// Outputs over the binding limit: flat windows of at most the limit, one dispatch each; inputs
    /// of the output's shape are windowed alongside, broadcast ones bound whole.
    #[test]
    fn windows_with_broadcasting() {
        use crate::ops::testing::{check_op_windowed, run_on_gpu};
        let seed = Rng::fresh_seed();
        let x = Tensor::random(&[3, 5, 7], seed, -8.0, 8.0);
        assert_eq!(
            check_op_windowed(&format!("unary windows seed {seed}"), &Unary { act: Act::Gelu }, &[x], TOL, 40),
            3
        );
        let cases: &[(&[usize], &[usize])] = &[
            (&[2, 3, 7, 5], &[2, 3, 7, 5]),
            (&[2, 3, 7, 5], &[3, 1, 5]),
            (&[1, 3, 1, 5], &[2, 1, 7, 1]),
            (&[5], &[2, 3, 7, 5]),
        ];
        for (k, (a, b)) in cases.iter().enumerate() {
            let ta = Tensor::random(a, seed + k as u64, -2.0, 2.0);
            let tb = Tensor::random(b, seed + 100 + k as u64, 0.5, 2.0);
            let op = Binary { kind: BinaryKind::Div, act: Act::None };
            // 210 outputs in windows of 48.
            assert_eq!(check_op_windowed(&format!("div {a:?} {b:?} seed {seed}"), &op, &[ta, tb], TOL, 48), 5);
        }
        // A broadcast operand larger than a binding is refused.
        let _limit = crate::ops::window::test_limit(16);
        let err = run_on_gpu(&Binary::add(), &[Tensor::zeros(&[2, 24]), Tensor::zeros(&[24])]).unwrap_err();
        assert!(err.to_string().contains("larger than one storage binding"), "{err}");
    }

    #[test]
    fn shape_mismatch_is_reported() {
        assert!(Binary::add().infer(&[&[2, 3], &[4, 3]]).unwrap_err().contains("do not broadcast"));
    }
}
