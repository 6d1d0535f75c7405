//! Encoder blocks shared by the models, built from official (timm / SegFormer) key names.

pub mod convnext;
pub mod mit;

use crate::error::Result;
use crate::graph::{GraphBuilder, ValueId};
use crate::ops::layout::{Permute, Reshape};

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
