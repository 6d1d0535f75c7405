//! matmul's texture path (software devices with subgroups of 8): the operands packed into
//! textures, then the texture GEMM (`ops::gemm_tex`).

use super::{batch_strides, MatMul, MAX_BATCH_RANK};
use crate::error::Result;
use crate::ops::{PlanCtx, TensorView};
use crate::tensor::numel;

/// (rows of A per layer, layers of A, layers of B) for the texture path: shared weights with an
/// unbroadcast `a` fold the batch into M.
fn layout(a: &TensorView, b: &TensorView, batch: &[usize], m: usize) -> (usize, usize, usize) {
    let nb = numel(batch);
    let (a_b, b_b) = (numel(&a.shape[..a.shape.len() - 2]), numel(&b.shape[..b.shape.len() - 2]));
    if b_b == 1 && a_b == nb {
        return (m * nb, 1, 1);
    }
    (m, if a_b == 1 { 1 } else { nb }, if b_b == 1 { 1 } else { nb })
}

/// Whether the texture path can take this problem: textures within limits, every operand in one
/// storage binding, offsets in u32.
#[allow(clippy::too_many_arguments)]
pub(super) fn fits(
    ctx: &PlanCtx,
    a: &TensorView,
    b: &TensorView,
    c: &TensorView,
    batch: &[usize],
    m: usize,
    k: usize,
    n: usize,
) -> bool {
    let (rows, la, lb) = layout(a, b, batch, m);
    let win = ctx.windows();
    ctx.texture_fits(k.div_ceil(4), rows, la)
        && ctx.texture_fits(n.div_ceil(4), 4 * k.div_ceil(4), lb)
        && numel(batch) <= 65535
        && win.fits(a.numel())
        && win.fits(b.numel())
        && win.fits(c.numel())
}

impl MatMul {
    /// The texture path: pack A and B (one layer per distinct batch item), then one GEMM dispatch
    /// (adding `residual`, laid out like C, in its store when given).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn plan_tex(
        &self,
        ctx: &mut PlanCtx,
        a: &TensorView,
        b: &TensorView,
        bias: Option<&TensorView>,
        c: &TensorView,
        batch: &[usize],
        m: usize,
        k: usize,
        n: usize,
        residual: Option<&TensorView>,
    ) -> Result<()> {
        use crate::ops::gemm_tex;
        let (rows, la, lb) = layout(a, b, batch, m);
        let nb = if rows == m { numel(batch) } else { 1 };
        let sa = batch_strides(&a.shape[..a.shape.len() - 2], batch, m * k);
        let sb = batch_strides(&b.shape[..b.shape.len() - 2], batch, k * n);
        let mut e = [1usize; MAX_BATCH_RANK];
        e[MAX_BATCH_RANK - batch.len()..].copy_from_slice(batch);
        let offset = |z: usize, s: &[usize; MAX_BATCH_RANK]| {
            let (mut r, mut o) = (z, 0);
            for d in (0..MAX_BATCH_RANK).rev() {
                o += (r % e[d]) * s[d];
                r /= e[d];
            }
            o
        };
        let (aw, ah) = gemm_tex::operand_size(rows, k);
        let ta = ctx.texture(aw, ah, la)?;
        let (bw, _) = gemm_tex::operand_size(k, n);
        let tb = ctx.texture(bw, 4 * k.div_ceil(4), lb)?;
        for z in 0..la {
            gemm_tex::pack(ctx, a, &ta, z, rows, k, offset(z, &sa), k, 1)?;
        }
        let (sbk, sbn) = if self.trans_b { (1, k) } else { (n, 1) };
        for z in 0..lb {
            gemm_tex::pack(ctx, b, &tb, z, k, n, offset(z, &sb), sbk, sbn)?;
        }
        let mut p = gemm_tex::TexParams::new(rows, k, n, self.alpha, self.act);
        p.a_lstep = (la > 1) as u32;
        p.b_lstep = (lb > 1) as u32;
        p.bias_mode = bias.is_some() as u32;
        let bias_v = bias.unwrap_or(a);
        gemm_tex::gemm(ctx, &p, &ta, &tb, bias_v, c, nb, residual)
    }
}
