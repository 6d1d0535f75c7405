//! MobileNetV1 (Howard et al. 2017) as a feature stream, timm's key names: `conv_stem`, `bn1`,
//! `blocks.{i}.conv_dw`, `.bn1`, `.conv_pw`, `.bn2`; no conv biases, every BatchNorm folded into
//! its conv at load, ReLU6 fused into the conv. Optional Coordinate Attention after chosen blocks
//! (`ca{tag}`).

use crate::error::Result;
use crate::graph::{GraphBuilder, ValueId};
use crate::models::blocks::{conv_bn, coord_att};
use crate::models::weights::Weights;
use crate::ops::act::Act;
use crate::ops::conv2d::Conv2d;

/// (output channels at width 1.0, stride) of the 13 depthwise-separable blocks.
pub const MOBILENET_V1: [(usize, usize); 13] = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
];

/// torchvision's channel rounding for width multipliers: the nearest multiple of 8 (at least 8,
/// never below 90% of `v`).
pub fn make_divisible(v: f64) -> usize {
    let new = (8usize).max(((v + 4.0) as usize) / 8 * 8);
    if (new as f64) < 0.9 * v {
        new + 8
    } else {
        new
    }
}

/// A stream: stem width, each block's output channels (strides from [`MOBILENET_V1`]), and the
/// Coordinate Attention after blocks: `(block index, tag, hidden width)`.
#[derive(Clone, Debug, PartialEq)]
pub struct MobileNetSpec {
    pub stem: usize,
    pub channels: Vec<usize>,
    pub attention: Vec<(usize, usize, usize)>,
}

/// Run the stream (weights at `w`) on `x [N, 3, H, W]`; returns its last features (stride 32)
/// and each attention's maps `(tag, a_h, a_w)`.
pub fn stream(
    b: &mut GraphBuilder,
    w: &Weights,
    spec: &MobileNetSpec,
    x: ValueId,
) -> Result<(ValueId, Vec<(usize, ValueId, ValueId)>)> {
    let relu6 = Act::Relu6;
    let mut x = conv_bn(b, &w.pp("conv_stem"), &w.pp("bn1"), x, [spec.stem, 3, 3, 3], Conv2d::new(2, 1), relu6)?;
    let mut cin = spec.stem;
    let mut maps = Vec::new();
    for (i, (&c, &(_, stride))) in spec.channels.iter().zip(MOBILENET_V1.iter()).enumerate() {
        let blk = w.pp("blocks").pp(i);
        let dw = Conv2d::new(stride, 1).groups(cin);
        x = conv_bn(b, &blk.pp("conv_dw"), &blk.pp("bn1"), x, [cin, 1, 3, 3], dw, relu6)?;
        x = conv_bn(b, &blk.pp("conv_pw"), &blk.pp("bn2"), x, [c, cin, 1, 1], Conv2d::new(1, 0), relu6)?;
        if let Some(&(_, tag, mip)) = spec.attention.iter().find(|a| a.0 == i) {
            let (y, a_h, a_w) = coord_att::coord_att(b, &w.pp(format!("ca{tag}")), x, mip)?;
            maps.push((tag, a_h, a_w));
            x = y;
        }
        cin = c;
    }
    Ok((x, maps))
}
