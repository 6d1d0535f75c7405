//! EfficientNet-Lite0 (Tan and Le 2019, the "lite" variant: no squeeze-excitation, ReLU6) as a
//! feature stream to stride 32, with the key names of lukemelas/EfficientNet-PyTorch that the
//! ImageNet-pretrained weights carry: `_conv_stem`, `_bn0`, `_blocks.{i}._expand_conv`, `._bn0`,
//! `._depthwise_conv`, `._bn1`, `._project_conv`, `._bn2`. BatchNorm eps 1e-3 (TensorFlow's),
//! folded at load; symmetric padding k / 2. Optional Coordinate Attention after chosen blocks.

use crate::error::Result;
use crate::graph::{GraphBuilder, ValueId};
use crate::models::blocks::{conv_bn_eps, coord_att};
use crate::models::weights::Weights;
use crate::ops::act::Act;
use crate::ops::conv2d::Conv2d;
use crate::ops::elementwise::Binary;

/// TensorFlow's BatchNorm epsilon, which EfficientNet's weights were trained with.
pub const EFFNET_BN_EPS: f32 = 1e-3;

/// One MBConv block: (expansion, kernel, stride, output channels).
pub type Block = (usize, usize, usize, usize);

/// The 16 MBConv blocks of EfficientNet-Lite0.
pub const EFFNET_LITE0: [Block; 16] = [
    (1, 3, 1, 16),
    (6, 3, 2, 24),
    (6, 3, 1, 24),
    (6, 5, 2, 40),
    (6, 5, 1, 40),
    (6, 3, 2, 80),
    (6, 3, 1, 80),
    (6, 3, 1, 80),
    (6, 5, 1, 112),
    (6, 5, 1, 112),
    (6, 5, 1, 112),
    (6, 5, 2, 192),
    (6, 5, 1, 192),
    (6, 5, 1, 192),
    (6, 5, 1, 192),
    (6, 3, 1, 320),
];

/// Stem width.
pub const STEM: usize = 32;

/// conv (no bias) + BatchNorm with EfficientNet's epsilon, the BN folded; activation in `params`.
fn conv_bn(
    b: &mut GraphBuilder,
    conv: &Weights,
    bn: &Weights,
    x: ValueId,
    shape: [usize; 4],
    params: Conv2d,
) -> Result<ValueId> {
    conv_bn_eps(b, conv, bn, x, shape, params, EFFNET_BN_EPS)
}

/// Run the stream (weights at `w`, blocks `blocks`, EfficientNet-Lite0's in the models) on
/// `x [N, 3, H, W]`; Coordinate Attention `(block, tag, hidden width)` after the listed blocks;
/// returns the last block's features.
pub fn stream(
    b: &mut GraphBuilder,
    w: &Weights,
    blocks: &[Block],
    attention: &[(usize, usize, usize)],
    x: ValueId,
) -> Result<ValueId> {
    let relu6 = Act::Relu6;
    let mut x = conv_bn(b, &w.pp("_conv_stem"), &w.pp("_bn0"), x, [STEM, 3, 3, 3], Conv2d::new(2, 1).act(relu6))?;
    let mut cin = STEM;
    for (i, &(e, k, s, cout)) in blocks.iter().enumerate() {
        let blk = w.pp("_blocks").pp(i);
        let mid = cin * e;
        let mut y = x;
        if e != 1 {
            y = conv_bn(
                b,
                &blk.pp("_expand_conv"),
                &blk.pp("_bn0"),
                y,
                [mid, cin, 1, 1],
                Conv2d::new(1, 0).act(relu6),
            )?;
        }
        let dw = Conv2d::new(s, k / 2).groups(mid).act(relu6);
        y = conv_bn(b, &blk.pp("_depthwise_conv"), &blk.pp("_bn1"), y, [mid, 1, k, k], dw)?;
        y = conv_bn(b, &blk.pp("_project_conv"), &blk.pp("_bn2"), y, [cout, mid, 1, 1], Conv2d::new(1, 0))?;
        x = if s == 1 && cin == cout { b.add(&blk.key("skip"), Binary::add(), &[x, y])? } else { y };
        if let Some(&(_, tag, mip)) = attention.iter().find(|a| a.0 == i) {
            x = coord_att::coord_att(b, &w.pp(format!("ca{tag}")), x, mip)?.0;
        }
        cin = cout;
    }
    Ok(x)
}

/// Every key of a stream at `p` (its blocks, its attention), with its shape.
pub fn keys(p: &str, blocks: &[Block], attention: &[(usize, usize, usize)], out: &mut Vec<(String, Vec<usize>)>) {
    let bn = |name: String, c: usize, out: &mut Vec<(String, Vec<usize>)>| {
        for s in ["weight", "bias", "running_mean", "running_var"] {
            out.push((format!("{name}.{s}"), vec![c]));
        }
    };
    out.push((format!("{p}._conv_stem.weight"), vec![STEM, 3, 3, 3]));
    bn(format!("{p}._bn0"), STEM, out);
    let mut cin = STEM;
    for (i, &(e, k, _, cout)) in blocks.iter().enumerate() {
        let q = format!("{p}._blocks.{i}");
        let mid = cin * e;
        if e != 1 {
            out.push((format!("{q}._expand_conv.weight"), vec![mid, cin, 1, 1]));
            bn(format!("{q}._bn0"), mid, out);
        }
        out.push((format!("{q}._depthwise_conv.weight"), vec![mid, 1, k, k]));
        bn(format!("{q}._bn1"), mid, out);
        out.push((format!("{q}._project_conv.weight"), vec![cout, mid, 1, 1]));
        bn(format!("{q}._bn2"), cout, out);
        cin = cout;
    }
    for &(i, tag, mip) in attention {
        let (c, q) = (blocks[i].3, format!("{p}.ca{tag}"));
        out.push((format!("{q}.conv1.weight"), vec![mip, c, 1, 1]));
        out.push((format!("{q}.conv1.bias"), vec![mip]));
        bn(format!("{q}.bn1"), mip, out);
        for d in ["conv_h", "conv_w"] {
            out.push((format!("{q}.{d}.weight"), vec![c, mip, 1, 1]));
            out.push((format!("{q}.{d}.bias"), vec![c]));
        }
    }
}
