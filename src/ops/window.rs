//! Windows: how ops split tensors larger than one storage binding (128 MiB on lavapipe).
//!
//! A binding may cover at most the device's storage-binding limit and must start at a multiple of
//! its offset alignment. [`Windows`] holds both, in f32 elements, and is the only place that
//! reads them; ops ask it for bindings ([`Windows::bind`], [`Windows::span`], [`Windows::exact`])
//! and for splits ([`Windows::chunks`], [`Windows::runs`], [`Windows::aligned_run`],
//! [`Windows::axis`]). A window whose data starts past an aligned offset is bound from the aligned
//! element at or below its start, and the kernel is told the difference (`base`).
//!
//! Unit tests shrink the limit with [`test_limit`]; the bind check in `PlanCtx::dispatch` honours
//! it too, so a window larger than the test limit fails the test instead of passing unnoticed.

use std::ops::Range;

use crate::ops::{PlanCtx, TensorView};

/// Largest byte range one storage binding may cover on this device (in unit tests, at most the
/// [`test_limit`]).
pub fn binding_limit_bytes(gpu: &crate::gpu::Gpu) -> u64 {
    #[allow(unused_mut)]
    let mut bytes = gpu.max_binding_bytes();
    #[cfg(test)]
    if let Some(elems) = TEST_LIMIT.with(|c| c.get()) {
        bytes = bytes.min(4 * elems as u64);
    }
    bytes
}

/// The alignment rule: a binding starts at a multiple of this many elements.
fn align_elems(limits: &wgpu::Limits) -> usize {
    (limits.min_storage_buffer_offset_alignment as usize / 4).max(1)
}

/// The binding limit and offset alignment of a device, in f32 elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    /// Elements one binding may cover, a multiple of `align`.
    limit: usize,
    /// Bindings start at multiples of this many elements.
    align: usize,
}

/// A binding of part of a tensor: the view to bind, and the element offset inside it at which the
/// requested range starts (what the kernel adds to its indices).
#[derive(Clone, Debug)]
pub struct Bound {
    pub view: TensorView,
    pub base: usize,
}

/// One dispatch's share of an [outer, len, inner] tensor: `outer` slices starting at slice `outer0`,
/// inner positions `inner0 .. inner0 + inner` of each. The binding covers elements `start .. start + len`
/// (`start` a multiple of the offset alignment); the window's first element is `base` into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisWindow {
    pub start: usize,
    pub len: usize,
    pub base: usize,
    pub outer0: usize,
    pub outer: usize,
    pub inner0: usize,
    pub inner: usize,
}

impl PlanCtx<'_> {
    /// This device's binding limit and alignment.
    pub fn windows(&self) -> Windows {
        Windows::of(self.gpu)
    }
    /// Elements one binding may cover, a multiple of the offset alignment: `windows().limit()`, for
    /// code written before [`Windows`].
    pub fn max_binding_elems(&self) -> usize {
        self.windows().limit()
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Windows {
    /// The binding limit and alignment of `gpu`.
    pub fn of(gpu: &crate::gpu::Gpu) -> Windows {
        Windows::new(binding_limit_bytes(gpu) as usize / 4, align_elems(&gpu.limits))
    }
    /// `limit` elements per binding (rounded down to the alignment), starts at multiples of `align`.
    pub fn new(limit: usize, align: usize) -> Windows {
        let align = align.max(1);
        Windows { limit: limit / align * align, align }
    }
    /// The same limit with starts also at multiples of `n` elements (e.g. 4, for kernels that read
    /// a window's data from its `base` as vec4s).
    pub fn aligned_to(self, n: usize) -> Windows {
        let n = n.max(1);
        Windows::new(self.limit, self.align / gcd(self.align, n) * n)
    }
    /// Elements one binding may cover.
    pub fn limit(&self) -> usize {
        self.limit
    }
    pub fn align(&self) -> usize {
        self.align
    }
    /// Whether `elems` elements fit one binding.
    pub fn fits(&self, elems: usize) -> bool {
        elems <= self.limit
    }
    /// Elements a window can carry wherever its data starts (its binding may start up to
    /// `align - 1` elements earlier).
    pub fn room(&self) -> usize {
        (self.limit + 1).saturating_sub(self.align)
    }
    /// Bind elements `start .. start + len` of `t` from the aligned element at or below `start`.
    pub fn bind(&self, t: &TensorView, start: usize, len: usize) -> Bound {
        let s0 = start / self.align * self.align;
        Bound { view: t.window(s0, start - s0 + len), base: start - s0 }
    }
    /// `t` whole when it fits one binding (`base` = `start`), else [`Windows::bind`].
    pub fn span(&self, t: &TensorView, start: usize, len: usize) -> Bound {
        if self.fits(t.numel()) {
            Bound { view: t.clone(), base: start }
        } else {
            self.bind(t, start, len)
        }
    }
    /// Bind exactly `start .. start + len` of `t`, for kernels that take no base offset: `start` must
    /// be aligned.
    pub fn exact(&self, t: &TensorView, start: usize, len: usize) -> Result<TensorView, String> {
        if start % self.align != 0 {
            return Err(format!(
                "a window at element {start} is not a multiple of the device's {}-element offset alignment \
                 (this kernel takes no base offset)",
                self.align
            ));
        }
        Ok(t.window(start, len))
    }
    /// `0..n` in consecutive ranges of at most `limit` elements (each starts aligned).
    pub fn chunks(&self, n: usize) -> Vec<Range<usize>> {
        runs(n, self.limit.max(1))
    }
    /// Items `0..count` in runs of at most `per` items.
    pub fn runs(&self, count: usize, per: usize) -> Vec<Range<usize>> {
        runs(count, per.max(1))
    }
    /// Items per window when every window of items starts at an aligned element (item `i` starts at
    /// `i * item_elems`) and binds `item_bind` elements per item, at most `max_per` items. `count`
    /// when everything fits one window.
    pub fn aligned_run(
        &self,
        count: usize,
        item_elems: usize,
        item_bind: usize,
        max_per: usize,
    ) -> Result<usize, String> {
        let fit = (self.limit / item_bind.max(1)).min(max_per);
        if fit >= count {
            return Ok(count);
        }
        let step = self.align / gcd(item_elems.max(1), self.align);
        let per = fit / step * step;
        if per == 0 {
            return Err(format!(
                "items of {item_elems} elements cannot be split into aligned windows within one storage binding \
                 ({} elements, {}-element alignment)",
                self.limit, self.align
            ));
        }
        Ok(per)
    }
    /// Split an [outer, len, inner] tensor into windows of at most `limit` elements whose bound start
    /// is aligned: whole outer slices when one fits, otherwise runs of inner positions (each window
    /// then spans `(len - 1) * inner + count` elements). Errors when not even one inner position's
    /// axis fits.
    pub fn axis(&self, outer: usize, len: usize, inner: usize) -> Result<Vec<AxisWindow>, String> {
        let (align, limit) = (self.align, self.limit);
        let slice = len * inner;
        if outer * slice == 0 {
            return Ok(Vec::new());
        }
        if outer * slice <= limit {
            return Ok(vec![AxisWindow { start: 0, len: outer * slice, base: 0, outer0: 0, outer, inner0: 0, inner }]);
        }
        let cap = self.room();
        let place = |first: usize, span: usize, outer0, outer, inner0, inner| {
            let start = first / align * align;
            AxisWindow { start, len: first - start + span, base: first - start, outer0, outer, inner0, inner }
        };
        let mut out = Vec::new();
        if slice <= cap {
            for r in runs(outer, cap / slice) {
                out.push(place(r.start * slice, r.len() * slice, r.start, r.len(), 0, inner));
            }
        } else {
            let fixed = (len - 1) * inner;
            if fixed >= cap {
                return Err(format!(
                    "an axis of {len} elements at stride {inner} spans more than one storage binding ({limit} elements)"
                ));
            }
            for o in 0..outer {
                for r in runs(inner, cap - fixed) {
                    out.push(place(o * slice + r.start, fixed + r.len(), o, 1, r.start, r.len()));
                }
            }
        }
        Ok(out)
    }
}

/// `0..count` in consecutive ranges of at most `per`.
fn runs(count: usize, per: usize) -> Vec<Range<usize>> {
    (0..count).step_by(per).map(|s| s..(s + per).min(count)).collect()
}

#[cfg(test)]
thread_local! {
    static TEST_LIMIT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Shrinks the binding limit to `elems` elements on this thread (planning and the bind check)
/// until the guard is dropped, so small tensors take the windowed paths.
#[cfg(test)]
pub(crate) fn test_limit(elems: usize) -> TestLimit {
    TestLimit(TEST_LIMIT.with(|c| c.replace(Some(elems))))
}

#[cfg(test)]
pub(crate) struct TestLimit(Option<usize>);

#[cfg(test)]
impl Drop for TestLimit {
    fn drop(&mut self) {
        TEST_LIMIT.with(|c| c.set(self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_alignment() {
        let w = Windows::new(100, 8);
        assert_eq!((w.limit(), w.align(), w.room()), (96, 8, 89));
        assert_eq!(w.aligned_to(4), w);
        let w6 = Windows::new(100, 6).aligned_to(4);
        assert_eq!((w6.limit(), w6.align()), (96, 12));
        assert_eq!(w.chunks(200), vec![0..96, 96..192, 192..200]);
        assert_eq!(w.runs(7, 3), vec![0..3, 3..6, 6..7]);
        assert!(w.exact(&dummy(), 12, 4).unwrap_err().contains("8-element offset alignment"));
        // 7 items of 13 bound elements fit; windows of items of 12 start aligned every 2 items.
        assert_eq!(w.aligned_run(10, 12, 13, 1000), Ok(6));
        assert_eq!(w.aligned_run(10, 12, 12, 1000), Ok(8));
        assert_eq!(w.aligned_run(10, 12, 12, 4), Ok(4));
        assert_eq!(w.aligned_run(3, 12, 12, 1000), Ok(3));
        assert!(w.aligned_run(10, 1, 97, 1000).is_err());
    }

    fn dummy() -> TensorView {
        let gpu = crate::ops::testing::device();
        let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 64,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        TensorView { buffer: std::sync::Arc::new(buffer), offset: 0, shape: vec![16] }
    }

    /// Every (outer, inner) position is covered exactly once, every element it touches lies inside its
    /// window's binding, bindings start aligned and fit the limit.
    #[test]
    fn axis_windows_cover_exactly() {
        let cases = [(1, 7, 1), (3, 5, 77), (10, 13, 1), (4, 3, 50), (2, 40, 3), (6, 1, 9)];
        for (outer, len, inner) in cases {
            for limit in [64, 100, 150, 1000, 100_000] {
                for align in [1, 4, 16] {
                    let Ok(ws) = Windows::new(limit, align).axis(outer, len, inner) else {
                        assert!(
                            (len - 1) * inner + align > limit,
                            "{outer} {len} {inner} limit {limit}: refused needlessly"
                        );
                        continue;
                    };
                    let mut seen = vec![0u8; outer * inner];
                    for w in &ws {
                        assert_eq!(w.start % align, 0);
                        assert!(w.len <= limit, "{w:?} over {limit}");
                        for o in w.outer0..w.outer0 + w.outer {
                            for i in w.inner0..w.inner0 + w.inner {
                                seen[o * inner + i] += 1;
                                for c in [0, len - 1] {
                                    let flat = o * len * inner + c * inner + i;
                                    // The kernel's index inside the binding:
                                    let local = w.base + (o - w.outer0) * len * inner + c * inner + (i - w.inner0);
                                    assert_eq!(w.start + local, flat, "{w:?}");
                                    assert!(local < w.len, "{w:?}");
                                }
                            }
                        }
                    }
                    assert!(
                        seen.iter().all(|&s| s == 1),
                        "({outer}, {len}, {inner}) limit {limit} align {align}: {ws:?}"
                    );
                }
            }
        }
        assert!(Windows::new(500, 4).axis(2, 100, 10).unwrap_err().contains("spans more than one storage binding"));
    }
}
