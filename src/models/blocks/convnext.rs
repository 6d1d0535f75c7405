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
use crate::models::weights::WeightStore;
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

fn channel_ln(b: &mut GraphBuilder, w: &WeightStore, key: &str, x: ValueId, c: usize) -> Result<ValueId> {
    let g = w.take(&format!("{key}.weight"), &[c])?;
    let be = w.take(&format!("{key}.bias"), &[c])?;
    layer_norm(b, key, x, g, be, NormAxis::Channels, LN_EPS)
}

/// One ConvNeXt block on `x [N, C, H, W]`; `p` is its key prefix (`convnext.stages.i.blocks.j`).
pub fn block(
    b: &mut GraphBuilder,
    w: &WeightStore,
    p: &str,
    x: ValueId,
    c: usize,
    mlp_ratio: usize,
) -> Result<ValueId> {
    let hid = c * mlp_ratio;
    let dw = w.take(&format!("{p}.conv_dw.weight"), &[c, 1, 7, 7])?;
    let dwb = w.take(&format!("{p}.conv_dw.bias"), &[c])?;
    let y = conv2d(b, &format!("{p}.conv_dw"), x, dw, Some(dwb), Conv2d::new(1, 3).groups(c))?;
    let hw = [b.shape(y)[2], b.shape(y)[3]];
    let t = nchw_to_tokens(b, &format!("{p}.tokens"), y)?;
    let (g, be) = (w.take(&format!("{p}.norm.weight"), &[c])?, w.take(&format!("{p}.norm.bias"), &[c])?);
    let t = layer_norm(b, &format!("{p}.norm"), t, g, be, NormAxis::Last, LN_EPS)?;
    let w1 = w.take(&format!("{p}.mlp.fc1.weight"), &[hid, c])?;
    let b1 = w.take(&format!("{p}.mlp.fc1.bias"), &[hid])?;
    let t = linear(b, &format!("{p}.mlp.fc1"), t, w1, Some(b1), Act::Gelu)?;
    let gamma = w.take(&format!("{p}.gamma"), &[c])?;
    let mut w2 = w.take(&format!("{p}.mlp.fc2.weight"), &[c, hid])?;
    let mut b2 = w.take(&format!("{p}.mlp.fc2.bias"), &[c])?;
    for o in 0..c {
        w2.data[o * hid..(o + 1) * hid].iter_mut().for_each(|v| *v *= gamma.data[o]);
        b2.data[o] *= gamma.data[o];
    }
    let t = linear(b, &format!("{p}.mlp.fc2"), t, w2, Some(b2), Act::None)?;
    let y = tokens_to_nchw(b, &format!("{p}.map"), t, hw)?;
    b.add(&format!("{p}.residual"), Binary::add(), &[x, y])
}

/// Run the encoder on `x [N, in_chans, H, W]`; returns the raw output of every stage
/// (strides 4, 8, 16, 32).
pub fn encoder(
    b: &mut GraphBuilder,
    w: &WeightStore,
    prefix: &str,
    spec: &ConvNextSpec,
    x: ValueId,
) -> Result<Vec<ValueId>> {
    let d = &spec.dims;
    let stem_w = w.take(&format!("{prefix}.stem.0.weight"), &[d[0], spec.in_chans, 4, 4])?;
    let mut x = conv2d(b, &format!("{prefix}.stem.0"), x, stem_w, None, Conv2d::new(4, 0))?;
    x = channel_ln(b, w, &format!("{prefix}.stem.1"), x, d[0])?;
    let mut outs = Vec::new();
    for (i, (&c, &depth)) in d.iter().zip(&spec.depths).enumerate() {
        let sp = format!("{prefix}.stages.{i}");
        if i > 0 {
            x = channel_ln(b, w, &format!("{sp}.downsample.0"), x, d[i - 1])?;
            let dw = w.take(&format!("{sp}.downsample.1.weight"), &[c, d[i - 1], 2, 2])?;
            let db = w.take(&format!("{sp}.downsample.1.bias"), &[c])?;
            x = conv2d(b, &format!("{sp}.downsample.1"), x, dw, Some(db), Conv2d::new(2, 0))?;
        }
        for j in 0..depth {
            x = block(b, w, &format!("{sp}.blocks.{j}"), x, c, spec.mlp_ratio)?;
        }
        outs.push(x);
    }
    Ok(outs)
}
