//! SegFormer Mix Transformer encoder (key prefix e.g. `segformer.`), token-major `[N, L, C]`.
//!
//! Patch embed: conv (stage 1 k7 s4 p3, others k3 s2 p1) -> tokens -> LayerNorm eps 1e-5.
//! Block: `x += proj(Attn(q(LN1 x), kv(SR(LN1 x))))`, `x += fc2(GELU(dwconv3x3(fc1(LN2 x))))`,
//! LN eps 1e-6. SR (ratio > 1): conv k = s = ratio on the NCHW map, back to tokens, LayerNorm
//! eps 1e-5. `kv` is one linear `C -> 2C` whose output is sliced into K (0..C) and V (C..2C).
//! Scores scale `head_dim^-0.5`. Stage norm (eps 1e-6), then back to NCHW.

use crate::error::Result;
use crate::graph::{GraphBuilder, ValueId};
use crate::models::blocks::{nchw_to_tokens, tokens_to_nchw};
use crate::models::weights::Weights;
use crate::ops::act::Act;
use crate::ops::attention::Attention;
use crate::ops::conv2d::{conv2d, Conv2d};
use crate::ops::elementwise::Binary;
use crate::ops::layer_norm::{layer_norm, NormAxis};
use crate::ops::layout::Slice;
use crate::ops::matmul::linear;

pub const BLOCK_LN_EPS: f32 = 1e-6;
pub const EMBED_LN_EPS: f32 = 1e-5;

#[derive(Clone, Debug)]
pub struct MitSpec {
    pub in_chans: usize,
    pub dims: Vec<usize>,
    pub heads: Vec<usize>,
    pub depths: Vec<usize>,
    pub sr: Vec<usize>,
    pub mlp_ratio: usize,
}

/// LayerNorm over the last (channel) dim of tokens, weights at `w`.
fn token_ln(b: &mut GraphBuilder, w: &Weights, x: ValueId, c: usize, eps: f32) -> Result<ValueId> {
    layer_norm(b, w.path(), x, w.weight(&[c])?, w.bias(&[c])?, NormAxis::Last, eps)
}

/// A Linear `k -> n` with bias, weights at `w`.
fn lin(b: &mut GraphBuilder, w: &Weights, x: ValueId, n: usize, k: usize, act: Act) -> Result<ValueId> {
    linear(b, w.path(), x, w.weight(&[n, k])?, Some(w.bias(&[n])?), act)
}

#[allow(clippy::too_many_arguments)]
/// Efficient self-attention on tokens `x [N, H*W, C]` (already normalised by LN1), weights at `w`.
fn attention(
    b: &mut GraphBuilder,
    w: &Weights,
    x: ValueId,
    c: usize,
    heads: usize,
    sr: usize,
    hw: [usize; 2],
) -> Result<ValueId> {
    let q = lin(b, &w.pp("q"), x, c, c, Act::None)?;
    let src = if sr > 1 {
        let r = w.pp("sr");
        let m = tokens_to_nchw(b, &r.key("in"), x, hw)?;
        let m = conv2d(b, r.path(), m, r.weight(&[c, c, sr, sr])?, Some(r.bias(&[c])?), Conv2d::new(sr, 0))?;
        let m = nchw_to_tokens(b, &r.key("out"), m)?;
        token_ln(b, &w.pp("norm"), m, c, EMBED_LN_EPS)?
    } else {
        x
    };
    let kv = lin(b, &w.pp("kv"), src, 2 * c, c, Act::None)?;
    let k = b.add(&w.key("k"), Slice { axis: 2, start: 0, end: c }, &[kv])?;
    let v = b.add(&w.key("v"), Slice { axis: 2, start: c, end: 2 * c }, &[kv])?;
    let a = b.add(&w.key("sdpa"), Attention::new(heads, c / heads), &[q, k, v])?;
    lin(b, &w.pp("proj"), a, c, c, Act::None)
}

/// Mix-FFN on tokens `x [N, H*W, C]` (already normalised by LN2), weights at `w`.
fn mlp(b: &mut GraphBuilder, w: &Weights, x: ValueId, c: usize, hid: usize, hw: [usize; 2]) -> Result<ValueId> {
    let h = lin(b, &w.pp("fc1"), x, hid, c, Act::None)?;
    let dw = w.pp("dwconv");
    let m = tokens_to_nchw(b, &dw.key("in"), h, hw)?;
    let conv = dw.pp("dwconv");
    let (cw, cb) = (conv.weight(&[hid, 1, 3, 3])?, conv.bias(&[hid])?);
    let m = conv2d(b, conv.path(), m, cw, Some(cb), Conv2d::new(1, 1).groups(hid).act(Act::Gelu))?;
    let h = nchw_to_tokens(b, &dw.key("out"), m)?;
    lin(b, &w.pp("fc2"), h, c, hid, Act::None)
}

/// Run the encoder (weights at `w`, e.g. `segformer`) on `x [N, in_chans, H, W]`; returns every
/// stage's output as NCHW (strides 4, 8, 16, 32).
pub fn encoder(b: &mut GraphBuilder, w: &Weights, spec: &MitSpec, x: ValueId) -> Result<Vec<ValueId>> {
    let mut x = x;
    let mut outs = Vec::new();
    for (i, &c) in spec.dims.iter().enumerate() {
        let s = i + 1;
        let pe = w.pp(format!("patch_embed{s}"));
        let proj = pe.pp("proj");
        let cin = if i == 0 { spec.in_chans } else { spec.dims[i - 1] };
        let (k, stride, pad, bias) = if i == 0 { (7, 4, 3, false) } else { (3, 2, 1, true) };
        let pb = if bias { Some(proj.bias(&[c])?) } else { None };
        let m = conv2d(b, proj.path(), x, proj.weight(&[c, cin, k, k])?, pb, Conv2d::new(stride, pad))?;
        let hw = [b.shape(m)[2], b.shape(m)[3]];
        let t = nchw_to_tokens(b, &pe.key("tokens"), m)?;
        let mut t = token_ln(b, &pe.pp("norm"), t, c, EMBED_LN_EPS)?;
        for j in 0..spec.depths[i] {
            let blk = w.pp(format!("block{s}")).pp(j);
            let n1 = token_ln(b, &blk.pp("norm1"), t, c, BLOCK_LN_EPS)?;
            let a = attention(b, &blk.pp("attn"), n1, c, spec.heads[i], spec.sr[i], hw)?;
            t = b.add(&blk.key("attn.residual"), Binary::add(), &[t, a])?;
            let n2 = token_ln(b, &blk.pp("norm2"), t, c, BLOCK_LN_EPS)?;
            let f = mlp(b, &blk.pp("mlp"), n2, c, c * spec.mlp_ratio, hw)?;
            t = b.add(&blk.key("mlp.residual"), Binary::add(), &[t, f])?;
        }
        let t = token_ln(b, &w.pp(format!("norm{s}")), t, c, BLOCK_LN_EPS)?;
        x = tokens_to_nchw(b, &w.key(&format!("stage{s}.out")), t, hw)?;
        outs.push(x);
    }
    Ok(outs)
}
