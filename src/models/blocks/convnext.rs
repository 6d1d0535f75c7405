//! timm ConvNeXt encoder (key prefix e.g. `convnext.`); stage outputs are NCHW.
//!
//! Block: depthwise 7x7 (bias) -> channel LayerNorm (eps 1e-6) -> fc1 + exact GELU -> fc2 ->
//! `* gamma` -> `+ residual`. As in timm, the MLP runs channels-last: the map is permuted to tokens,
//! normalised over the last dim, and fc1/fc2 are `linear` layers on the GEMM (much faster than
//! 1x1 convolutions on software devices, and the GEMM's natural shape on GPUs), with GELU fused
//! into fc1 and `gamma` folded into fc2's weight and bias (`(W a + b) * g = (g W) a + g b`, exact up
//! to f32 rounding).

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

/// One ConvNeXt block on `x [N, C, H, W]`, weights at `w` (`convnext.stages.i.blocks.j`).
pub fn block(b: &mut GraphBuilder, w: &Weights, x: ValueId, c: usize, mlp_ratio: usize) -> Result<ValueId> {
    let hid = c * mlp_ratio;
    let dw = w.pp("conv_dw");
    let y = conv2d(b, dw.path(), x, dw.weight(&[c, 1, 7, 7])?, Some(dw.bias(&[c])?), Conv2d::new(1, 3).groups(c))?;
    let hw = [b.shape(y)[2], b.shape(y)[3]];
    let t = nchw_to_tokens(b, &w.key("tokens"), y)?;
    let norm = w.pp("norm");
    let t = layer_norm(b, norm.path(), t, norm.weight(&[c])?, norm.bias(&[c])?, NormAxis::Last, LN_EPS)?;
    let (fc1, fc2) = (w.pp("mlp").pp("fc1"), w.pp("mlp").pp("fc2"));
    let t = linear(b, fc1.path(), t, fc1.weight(&[hid, c])?, Some(fc1.bias(&[hid])?), Act::Gelu)?;
    let gamma = w.take("gamma", &[c])?;
    let (mut w2, mut b2) = (fc2.weight(&[c, hid])?, fc2.bias(&[c])?);
    for o in 0..c {
        w2.data[o * hid..(o + 1) * hid].iter_mut().for_each(|v| *v *= gamma.data[o]);
        b2.data[o] *= gamma.data[o];
    }
    let t = linear(b, fc2.path(), t, w2, Some(b2), Act::None)?;
    let y = tokens_to_nchw(b, &w.key("map"), t, hw)?;
    b.add(&w.key("residual"), Binary::add(), &[x, y])
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
        for j in 0..depth {
            x = block(b, &stage.pp("blocks").pp(j), x, c, spec.mlp_ratio)?;
        }
        outs.push(x);
    }
    Ok(outs)
}
