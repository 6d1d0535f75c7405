//! Coordinate Attention (Hou, Zhou and Feng, CVPR 2021), with the names of its official code
//! (`conv1`, `bn1`, `conv_h`, `conv_w`):
//!
//! ```text
//! x [N,C,H,W] ─┬─ mean over W ─ [N,C,H,1] ─┐
//!              └─ mean over H ─ [N,C,1,W] ─ as [N,C,W,1] ─ concat (H+W) ─ conv1 + BN + h-swish ─ split
//!   a_h = sigmoid(conv_h(first H)) [N,C,H,1];  a_w = sigmoid(conv_w(last W)) as [N,C,1,W]
//!   out = x * a_h * a_w
//! ```

use crate::error::Result;
use crate::graph::{GraphBuilder, ValueId};
use crate::models::blocks::fold_bn;
use crate::models::weights::Weights;
use crate::ops::act::Act;
use crate::ops::conv2d::{conv2d, Conv2d};
use crate::ops::elementwise::Binary;
use crate::ops::layout::{Concat, Reshape, Slice};
use crate::ops::pool::AdaptiveAvgPool2d;

/// The hidden width: `max(min, C / reduction)` (the paper's `mip`, reduction 32, min 8).
pub fn mip(c: usize, reduction: usize, min: usize) -> usize {
    (c / reduction).max(min)
}

/// Coordinate attention on `x [N, C, H, W]` with hidden width `mip`, weights at `w`. Returns the
/// output and the two attention maps `(a_h [N,C,H,1], a_w [N,C,1,W])`.
pub fn coord_att(b: &mut GraphBuilder, w: &Weights, x: ValueId, mip: usize) -> Result<(ValueId, ValueId, ValueId)> {
    let s = b.shape(x).to_vec();
    let (n, c, h, wd) = (s[0], s[1], s[2], s[3]);
    let x_h = b.add(&w.key("pool_h"), AdaptiveAvgPool2d { out: [h, 1] }, &[x])?;
    let x_w = b.add(&w.key("pool_w"), AdaptiveAvgPool2d { out: [1, wd] }, &[x])?;
    // [N, C, 1, W] and [N, C, W, 1] share their layout: the transpose is a free reshape.
    let x_w = b.add(&w.key("pool_w.t"), Reshape { shape: vec![n, c, wd, 1] }, &[x_w])?;
    let y = b.add(&w.key("cat"), Concat { axis: 2 }, &[x_h, x_w])?;
    let c1 = w.pp("conv1");
    let (cw, cb) = fold_bn(c1.weight(&[mip, c, 1, 1])?, Some(c1.bias(&[mip])?), &w.pp("bn1"))?;
    let y = conv2d(b, c1.path(), y, cw, Some(cb), Conv2d::new(1, 0).act(Act::HSwish))?;
    let y_h = b.add(&w.key("split_h"), Slice { axis: 2, start: 0, end: h }, &[y])?;
    let y_w = b.add(&w.key("split_w"), Slice { axis: 2, start: h, end: h + wd }, &[y])?;
    let (ch, cw) = (w.pp("conv_h"), w.pp("conv_w"));
    let sig = Conv2d::new(1, 0).act(Act::Sigmoid);
    let a_h = conv2d(b, ch.path(), y_h, ch.weight(&[c, mip, 1, 1])?, Some(ch.bias(&[c])?), sig.clone())?;
    let a_w = conv2d(b, cw.path(), y_w, cw.weight(&[c, mip, 1, 1])?, Some(cw.bias(&[c])?), sig)?;
    let a_w = b.add(&w.key("a_w"), Reshape { shape: vec![n, c, 1, wd] }, &[a_w])?;
    let out = b.add(&w.key("mul_h"), Binary::mul(), &[x, a_h])?;
    let out = b.add(&w.key("mul_w"), Binary::mul(), &[out, a_w])?;
    Ok((out, a_h, a_w))
}
