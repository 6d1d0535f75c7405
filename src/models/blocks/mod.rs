//! Blocks shared by the models, built from official (timm / SegFormer / torchvision) key names.

pub mod convnext;
pub mod coord_att;
pub mod efficientnet;
pub mod mit;
pub mod mobilenet;
pub mod ppm;

use crate::error::Result;
use crate::graph::{GraphBuilder, ValueId};
use crate::models::weights::Weights;
use crate::ops::act::Act;
use crate::ops::conv2d::{conv2d, Conv2d};
use crate::ops::layout::{Permute, Reshape};
use crate::tensor::Tensor;

/// BatchNorm's epsilon in PyTorch (`nn.BatchNorm2d` default).
pub const BN_EPS: f32 = 1e-5;

/// Fold an inference-time BatchNorm (weights at `bn`: weight, bias, running_mean, running_var)
/// into the conv before it: `W' = W s`, `b' = (b - mean) s + beta` with `s = gamma / sqrt(var +
/// eps)` per output channel, in f64; `eps` [`BN_EPS`].
pub fn fold_bn(w: Tensor, b: Option<Tensor>, bn: &Weights) -> Result<(Tensor, Tensor)> {
    fold_bn_eps(w, b, bn, BN_EPS)
}

/// [`fold_bn`] with another epsilon (TensorFlow-trained networks use 1e-3).
pub fn fold_bn_eps(w: Tensor, b: Option<Tensor>, bn: &Weights, eps: f32) -> Result<(Tensor, Tensor)> {
    let co = w.shape[0];
    let (gamma, beta) = (bn.weight(&[co])?, bn.bias(&[co])?);
    let (mean, var) = (bn.take("running_mean", &[co])?, bn.take("running_var", &[co])?);
    let per = w.data.len() / co.max(1);
    let mut wf = w;
    let mut bf = vec![0f32; co];
    for o in 0..co {
        let s = gamma.data[o] as f64 / (var.data[o] as f64 + eps as f64).sqrt();
        for v in &mut wf.data[o * per..(o + 1) * per] {
            *v = (*v as f64 * s) as f32;
        }
        let b0 = b.as_ref().map_or(0.0, |b| b.data[o] as f64);
        bf[o] = ((b0 - mean.data[o] as f64) * s + beta.data[o] as f64) as f32;
    }
    Ok((wf, Tensor { shape: vec![co], data: bf }))
}

/// conv (no bias) + BatchNorm + `act`, the BN folded: conv weights at `conv`, BN at `bn`; the node
/// is named after the conv.
pub fn conv_bn(
    b: &mut GraphBuilder,
    conv: &Weights,
    bn: &Weights,
    x: ValueId,
    shape: [usize; 4],
    params: Conv2d,
    act: Act,
) -> Result<ValueId> {
    conv_bn_eps(b, conv, bn, x, shape, params.act(act), BN_EPS)
}

/// [`conv_bn`] with another BatchNorm epsilon and the activation (if any) in `params`.
pub fn conv_bn_eps(
    b: &mut GraphBuilder,
    conv: &Weights,
    bn: &Weights,
    x: ValueId,
    shape: [usize; 4],
    params: Conv2d,
    eps: f32,
) -> Result<ValueId> {
    let (w, bias) = fold_bn_eps(conv.weight(&shape)?, None, bn, eps)?;
    conv2d(b, conv.path(), x, w, Some(bias), params)
}

/// `[N, C, H, W]` -> tokens `[N, H*W, C]` (one permute, then a free reshape).
pub fn nchw_to_tokens(b: &mut GraphBuilder, name: &str, x: ValueId) -> Result<ValueId> {
    let s = b.shape(x).to_vec();
    let p = b.add(name, Permute { perm: vec![0, 2, 3, 1] }, &[x])?;
    b.add(&format!("{name}.flat"), Reshape { shape: vec![s[0], s[2] * s[3], s[1]] }, &[p])
}

/// Tokens `[N, H*W, C]` -> `[N, C, H, W]` (one permute, then a free reshape).
pub fn tokens_to_nchw(b: &mut GraphBuilder, name: &str, t: ValueId, hw: [usize; 2]) -> Result<ValueId> {
    let s = b.shape(t).to_vec();
    let p = b.add(name, Permute { perm: vec![0, 2, 1] }, &[t])?;
    b.add(&format!("{name}.map"), Reshape { shape: vec![s[0], s[2], hw[0], hw[1]] }, &[p])
}
