//! timm ConvNeXt encoder (key prefix e.g. `convnext.`); stage outputs are NCHW.
//!
//! Block: depthwise 7x7 (bias) -> channel LayerNorm (eps 1e-6) -> fc1 + exact GELU -> fc2 ->
//! `* gamma` -> `+ residual`. As in timm, the MLP runs channels-last, and here the whole stage does:
//! the stage's input is permuted to tokens `[N, HW, C]` once, each block reads and writes tokens, and
//! the stage's output is permuted back to NCHW once. Inside a block the depthwise conv is written as
//! `tokens -> NCHW -> conv -> tokens`, the pattern `graph::fuse::channels_last` folds into one conv
//! on tokens, and the residual add of the tokens is the one `graph::fuse::residual_adds` folds into
//! fc2's store; an NCHW residual behind a permute would block that fold and cost a permute and an
//! add per block. fc1/fc2 are `linear` layers on the GEMM (much faster than 1x1 convolutions on
//! software devices, and the GEMM's natural shape on GPUs), with GELU fused into fc1 and `gamma`
//! folded into fc2's weight and bias (`(W a + b) * g = (g W) a + g b`, exact up to f32 rounding).

use crate::error::Result;
use crate::graph::{GraphBuilder, ValueId};
use crate::models::blocks::{nchw_to_tokens, tokens_to_nchw};
use crate::models::weights::Weights;
use crate::ops::act::Act;
use crate::ops::conv2d::{conv2d, Conv2d};
use crate::ops::elementwise::Binary;
use crate::ops::layer_norm::{layer_norm, NormAxis};
use crate::ops::matmul::linear;

pub const LN_EPS: f32 = 1e-6;

/// Widths and depths of the stages to run (the first `dims.len()` stages of the checkpoint).
#[derive(Clone, Debug)]
pub struct ConvNextSpec {
    pub in_chans: usize,
    pub dims: Vec<usize>,
    pub depths: Vec<usize>,
    pub mlp_ratio: usize,
}

/// LayerNorm over the channels of an NCHW map, weights at `w`.
fn channel_ln(b: &mut GraphBuilder, w: &Weights, x: ValueId, c: usize) -> Result<ValueId> {
    layer_norm(b, w.path(), x, w.weight(&[c])?, w.bias(&[c])?, NormAxis::Channels, LN_EPS)
}

/// One ConvNeXt block on tokens `t [N, H*W, C]` of an `hw` map, weights at `w`
/// (`convnext.stages.i.blocks.j`); returns tokens.
pub fn block(
    b: &mut GraphBuilder,
    w: &Weights,
    t: ValueId,
    hw: [usize; 2],
    c: usize,
    mlp_ratio: usize,
) -> Result<ValueId> {
    let hid = c * mlp_ratio;
    let dw = w.pp("conv_dw");
    let x = tokens_to_nchw(b, &w.key("map"), t, hw)?;
    let y = conv2d(b, dw.path(), x, dw.weight(&[c, 1, 7, 7])?, Some(dw.bias(&[c])?), Conv2d::new(1, 3).groups(c))?;
    let u = nchw_to_tokens(b, &w.key("tokens"), y)?;
    let norm = w.pp("norm");
    let u = layer_norm(b, norm.path(), u, norm.weight(&[c])?, norm.bias(&[c])?, NormAxis::Last, LN_EPS)?;
    let (fc1, fc2) = (w.pp("mlp").pp("fc1"), w.pp("mlp").pp("fc2"));
    let u = linear(b, fc1.path(), u, fc1.weight(&[hid, c])?, Some(fc1.bias(&[hid])?), Act::Gelu)?;
    let gamma = w.take("gamma", &[c])?;
    let (mut w2, mut b2) = (fc2.weight(&[c, hid])?, fc2.bias(&[c])?);
    for o in 0..c {
        w2.data[o * hid..(o + 1) * hid].iter_mut().for_each(|v| *v *= gamma.data[o]);
        b2.data[o] *= gamma.data[o];
    }
    let u = linear(b, fc2.path(), u, w2, Some(b2), Act::None)?;
    b.add(&w.key("residual"), Binary::add(), &[t, u])
}

/// Run the encoder (weights at `w`, e.g. `convnext`) on `x [N, in_chans, H, W]`; returns the raw
/// output of every stage (strides 4, 8, 16, 32).
pub fn encoder(b: &mut GraphBuilder, w: &Weights, spec: &ConvNextSpec, x: ValueId) -> Result<Vec<ValueId>> {
    let d = &spec.dims;
    let stem = w.pp("stem");
    let s0 = stem.pp(0);
    let mut x = conv2d(b, s0.path(), x, s0.weight(&[d[0], spec.in_chans, 4, 4])?, None, Conv2d::new(4, 0))?;
    x = channel_ln(b, &stem.pp(1), x, d[0])?;
    let mut outs = Vec::new();
    for (i, (&c, &depth)) in d.iter().zip(&spec.depths).enumerate() {
        let stage = w.pp("stages").pp(i);
        if i > 0 {
            let down = stage.pp("downsample");
            x = channel_ln(b, &down.pp(0), x, d[i - 1])?;
            let conv = down.pp(1);
            let (dw, db) = (conv.weight(&[c, d[i - 1], 2, 2])?, conv.bias(&[c])?);
            x = conv2d(b, conv.path(), x, dw, Some(db), Conv2d::new(2, 0))?;
        }
        if depth > 0 {
            let hw = [b.shape(x)[2], b.shape(x)[3]];
            let mut t = nchw_to_tokens(b, &stage.key("tokens"), x)?;
            for j in 0..depth {
                t = block(b, &stage.pp("blocks").pp(j), t, hw, c, spec.mlp_ratio)?;
            }
            x = tokens_to_nchw(b, &stage.key("map"), t, hw)?;
        }
        outs.push(x);
    }
    Ok(outs)
}
