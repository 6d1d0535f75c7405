//! Pyramid pooling (PSPNet, Zhao et al. 2017): for each bin size, adaptive average pooling with
//! PyTorch's bins, 1x1 conv + BN + ReLU (BN folded), bilinear upsampling back (align_corners
//! false); the input and every branch concatenated on the channels. Weights `{k}.conv`, `{k}.bn`.

use crate::error::Result;
use crate::graph::{GraphBuilder, ValueId};
use crate::models::blocks::conv_bn;
use crate::models::weights::Weights;
use crate::ops::act::Act;
use crate::ops::conv2d::Conv2d;
use crate::ops::layout::Concat;
use crate::ops::pool::AdaptiveAvgPool2d;
use crate::ops::resize::Resize;

/// `[x, up(branch_k(pool_k(x)))...]` on `x [N, C, H, W]`, each branch `dim` channels wide.
pub fn pyramid_pool(b: &mut GraphBuilder, w: &Weights, x: ValueId, bins: &[usize], dim: usize) -> Result<ValueId> {
    let s = b.shape(x).to_vec();
    let (c, hw) = (s[1], [s[2], s[3]]);
    let mut parts = vec![x];
    for (k, &bin) in bins.iter().enumerate() {
        let br = w.pp(k);
        let p = b.add(&br.key("pool"), AdaptiveAvgPool2d { out: [bin, bin] }, &[x])?;
        let p = conv_bn(b, &br.pp("conv"), &br.pp("bn"), p, [dim, c, 1, 1], Conv2d::new(1, 0), Act::Relu)?;
        parts.push(b.add(&br.key("up"), Resize { out: hw, align_corners: false }, &[p])?);
    }
    b.add(&w.key("cat"), Concat { axis: 1 }, &parts)
}
