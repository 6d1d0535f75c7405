//! Row bands of NCHW images for the training-free detectors' ops ([`super::Ela`],
//! [`crate::ops::ela_map::ElaMap`], [`crate::ops::noise::NoiseMap`]).
//!
//! A channel plane of an image is contiguous, but the three planes of a band of rows are not: a
//! window over "rows a..b of R, G and B" would span two whole planes. So these ops bind each
//! channel's rows as its own window (three bindings, one per channel), starting at the aligned
//! element at or below the band's first element, and pass the band's offset inside each window in
//! the uniform. A band is `core` rows (the rows a dispatch writes) read with `halo` rows of
//! context (what the core rows depend on: a JPEG MCU row, a box filter's radius).

use std::ops::Range;

use crate::error::{Error, Result};
use crate::ops::{as_bytes, Bind, PlanCtx, TensorView};

/// The planes a band of the JPEG round trip keeps are held under this many elements (64 MiB)
/// even when a binding allows more: the cost is two recomputed MCU rows of context per band on
/// images over about 11 MP (under 2% of the round trip at 24 MP), the gain memory on large ones.
pub(crate) const PLANES_CAP: usize = 1 << 24;

/// The box sums a band of the ELA map keeps are held under this many elements (16 MiB): each
/// band recomputes only the box radius's rows of context along rows (0.6% at 24 MP).
pub(crate) const SUMS_CAP: usize = 1 << 22;

/// Rows `core` are written; rows `halo` (a superset, clipped to the image) are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Band {
    pub core: Range<usize>,
    pub halo: Range<usize>,
}

/// `0..rows` in bands of `per` core rows (the last may be shorter), each with `halo` rows of
/// context above and below where the image has them.
pub(crate) fn split(rows: usize, per: usize, halo: usize) -> Vec<Band> {
    assert!(per > 0, "bands need at least one row");
    (0..rows)
        .step_by(per)
        .map(|a| {
            let b = (a + per).min(rows);
            Band { core: a..b, halo: a.saturating_sub(halo)..(b + halo).min(rows) }
        })
        .collect()
}

/// What one binding may hold, in elements: `(limit, room)` where `limit` is the binding size
/// ([`PlanCtx::windows`], a multiple of the offset alignment) and `room` what a window
/// that starts up to one alignment unit early may still hold, and the alignment in elements.
pub(crate) fn budget(ctx: &PlanCtx) -> (usize, usize, usize) {
    let w = ctx.windows();
    (w.limit(), w.limit().saturating_sub(w.align()), w.align())
}

/// `len` elements of `t` from element `start`, bound from the aligned element at or below
/// `start`: the view and the offset of `start` inside it.
pub(crate) fn window(t: &TensorView, start: usize, len: usize, align: usize) -> (TensorView, u32) {
    let from = start / align * align;
    (t.window(from, start - from + len), (start - from) as u32)
}

/// Rows `rows` of channels `ch` of sample `s` of the NCHW tensor `t`: one window per channel
/// (the same channel may be named more than once) and the offset of the first row inside each.
pub(crate) fn channel_rows(
    t: &TensorView,
    s: usize,
    ch: [usize; 3],
    rows: &Range<usize>,
    align: usize,
) -> ([TensorView; 3], [u32; 3]) {
    let (c, h, w) = (t.shape[1], t.shape[2], t.shape[3]);
    let one = |k: usize| window(t, ((s * c + ch[k]) * h + rows.start) * w, rows.len() * w, align);
    let [(v0, b0), (v1, b1), (v2, b2)] = [one(0), one(1), one(2)];
    ([v0, v1, v2], [b0, b1, b2])
}

/// `0..total` in flat runs of at most `per` elements (`per` a multiple of the alignment, so every
/// run after the first starts aligned).
pub(crate) fn runs(total: usize, per: usize) -> Vec<Range<usize>> {
    assert!(per > 0, "runs need at least one element");
    (0..total).step_by(per).map(|a| a..(a + per).min(total)).collect()
}

/// `params` as the uniform binding, then `tensors` in binding order.
pub(crate) fn with_uniform<'a, P: bytemuck::Pod, const K: usize>(
    params: &'a P,
    tensors: [Bind<'a>; K],
) -> Vec<Bind<'a>> {
    std::iter::once(Bind::Uniform(as_bytes(params))).chain(tensors).collect()
}

/// The error for a band that cannot fit one binding even at its smallest.
pub(crate) fn too_large(ctx: &PlanCtx, what: &str, need: usize, limit: usize) -> Error {
    Error::graph(format!(
        "node '{}': {what} needs {need} elements in one storage binding, the device binds {limit}",
        ctx.node_name
    ))
}

/// Every index a kernel computes inside a binding or over a sample is a u32.
pub(crate) fn check_u32(ctx: &PlanCtx, what: &str, v: usize) -> Result<()> {
    if v > u32::MAX as usize {
        return Err(Error::graph(format!("node '{}': {what} ({v}) exceeds u32 indexing", ctx.node_name)));
    }
    Ok(())
}

/// Tests: shrink the binding limit to `elems` elements on this thread while the guard lives, so
/// these ops split small images into bands; and run one op as a planned graph.
#[cfg(test)]
pub(crate) mod testing {
    use crate::graph::{GraphBuilder, Plan};
    use crate::ops::Op;
    use crate::tensor::Tensor;

    /// The test device's storage offset alignment in elements (8 on lavapipe, often 64 on GPUs).
    pub(crate) fn align() -> usize {
        crate::ops::window::Windows::of(crate::ops::testing::device()).align()
    }

    /// A binding limit whose windows hold `room` elements after the alignment slack: what
    /// [`super::budget`] gives back as `room` (at least `room`, less than `room + align`).
    pub(crate) fn limit_for_room(room: usize) -> usize {
        (room + align()).next_multiple_of(align())
    }

    /// `op` on `x` alone, planned now (under the current limit): its output and the plan's
    /// dispatch count.
    pub(crate) fn run_counted<O: Op + Clone + 'static>(op: &O, x: &Tensor) -> crate::error::Result<(Tensor, usize)> {
        let mut b = GraphBuilder::new();
        let i = b.input("x", &x.shape);
        let o = b.add("op", op.clone(), &[i])?;
        b.output("y", o);
        let plan = Plan::new(crate::ops::testing::device(), &b.finish())?;
        let y = plan.run(&[("x", x)])?.remove("y").expect("output y");
        Ok((y, plan.stats.dispatches))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_cover_the_rows_once_with_clipped_halos() {
        let b = split(10, 4, 1);
        assert_eq!(
            b,
            vec![Band { core: 0..4, halo: 0..5 }, Band { core: 4..8, halo: 3..9 }, Band { core: 8..10, halo: 7..10 }]
        );
        assert_eq!(split(3, 5, 2), vec![Band { core: 0..3, halo: 0..3 }]);
        assert_eq!(runs(10, 4), vec![0..4, 4..8, 8..10]);
        assert!(runs(0, 4).is_empty());
    }
}
