//! ELA difference -> probability-like map in [0, 1]: `[N, C, H, W]` (integer levels 0..255, e.g.
//! the output of [`crate::ops::ela::Ela`]) to `[N, 1, H, W]`.
//!
//! ```text
//! m(y, x)  = max_c ela(c, y, x)
//! b(y, x)  = sum of m over the (2r+1) x (2r+1) box around (y, x), edges replicated
//! scale    = max(P(b), floor * (2r+1)^2)       P = the k-th smallest b, k = ceil(p * H * W)
//! prob     = min(b / scale, 1)
//! ```
//! In words: the box mean of the largest channel difference, divided by its `p`-th percentile
//! over the image (default 0.99) but never by less than `floor` levels (default 3), clipped to 1.
//! Why not Krawetz's `255 / max`: that is a display stretch driven by the single largest pixel (one
//! saturated edge sets the scale for the image); a high percentile ignores the top 1% of outliers
//! and the floor keeps a near-clean image (every difference a level or two) from being stretched
//! to full scale. Deterministic: with integer inputs every box sum is an integer (exact in f32),
//! so the percentile comes from an exact per-sample histogram of the sums (atomics count, they do
//! not add floats) and does not depend on the order of the GPU's work.
//! Non-integer inputs are binned by `floor`; the scale is then that bin's lower edge, and the
//! kernels' box sums (sliding sums over runs of 16 pixels: one value in, one out) may differ
//! from the reference's direct sums by f32 rounding.
//!
//! Images over one storage binding are split into bands of rows inside [`ElaMap::plan`]; the
//! histogram gathers every band before the scale is taken, so the map does not depend on the
//! split (bit for bit with integer inputs).

use crate::error::Result;
use crate::kernel;
use crate::ops::ela::bands;
use crate::ops::{groups, Bind, Op, PlanCtx, TensorView};
use crate::tensor::{Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("ela_map")];

#[derive(Clone, Debug)]
pub struct ElaMap {
    /// Box radius: the mean is over (2r+1)^2 pixels (default 2: 5 x 5).
    pub radius: u32,
    /// Percentile in (0, 1] that maps to 1 (default 0.99).
    pub percentile: f64,
    /// Smallest scale, in levels of the box mean (default 3).
    pub floor: f32,
}

impl Default for ElaMap {
    fn default() -> Self {
        ElaMap { radius: 2, percentile: 0.99, floor: 3.0 }
    }
}

impl ElaMap {
    fn taps(&self) -> usize {
        (2 * self.radius as usize + 1).pow(2)
    }
    fn bins(&self) -> usize {
        self.taps() * 255 + 1
    }
    /// 1-based rank of the percentile among `count` values.
    fn rank(&self, count: usize) -> usize {
        ((self.percentile * count as f64).ceil() as usize).clamp(1, count)
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct MapParams {
    h: u32,
    w: u32,
    acc: u32,
    n: u32,
    r: u32,
    bins: u32,
    k: u32,
    samples: u32,
    floor_sum: f32,
    row0: u32,
    y0: u32,
    y1: u32,
    s: u32,
    xb: [u32; 3],
    ob: u32,
    _p: [u32; 3],
}

/// Pixels per invocation of `hbox` (along a row) and `vbox` (down a column): `SEG` in the kernel.
const SEG: usize = 16;

/// The rows of an `h x w` map with box radius `r` in bands whose input channel windows and box
/// sums (core rows and `r` rows of context on each side) fit `room` elements and
/// [`bands::SUMS_CAP`] (raised to two core rows for very wide images): one band when the whole
/// image fits, else bands of as many core rows as fit. `None` when not even one core row with its context fits.
pub(crate) fn row_bands(h: usize, w: usize, r: usize, room: usize) -> Option<Vec<bands::Band>> {
    let rows = room.min(bands::SUMS_CAP.max((2 * r + 2) * w)) / w;
    if rows >= h {
        return Some(bands::split(h, h, 0));
    }
    let core = rows.checked_sub(2 * r).filter(|&k| k > 0)?;
    Some(bands::split(h, core, r))
}

impl Op for ElaMap {
    fn kind(&self) -> &'static str {
        "ela_map"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        let valid = self.percentile > 0.0 && self.percentile <= 1.0 && self.floor > 0.0 && self.radius <= 16;
        if !valid {
            return Err(format!("needs 0 < percentile <= 1, floor > 0 and radius <= 16, got {self:?}"));
        }
        match inputs {
            [x] if x.len() == 4 && x.iter().all(|&d| d > 0) => Ok(vec![vec![x[0], 1, x[2], x[3]]]),
            [x] => Err(format!("needs [N, C, H, W] with non-empty dimensions, got {x:?}")),
            _ => Err(format!("takes 1 input, got {}", inputs.len())),
        }
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::kernel(self, inputs)
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let x = inputs[0];
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let r = self.radius as isize;
        let mut data = Vec::with_capacity(n * h * w);
        for sample in x.data.chunks(c * h * w) {
            let m: Vec<f32> =
                (0..h * w).map(|i| (0..c).map(|k| sample[k * h * w + i]).fold(f32::NEG_INFINITY, f32::max)).collect();
            let at =
                |y: isize, x: isize| m[y.clamp(0, h as isize - 1) as usize * w + x.clamp(0, w as isize - 1) as usize];
            let sums: Vec<f32> = (0..h * w)
                .map(|i| {
                    let (y, x) = ((i / w) as isize, (i % w) as isize);
                    (-r..=r).flat_map(|dy| (-r..=r).map(move |dx| (dy, dx))).map(|(dy, dx)| at(y + dy, x + dx)).sum()
                })
                .collect();
            let mut bins: Vec<usize> =
                sums.iter().map(|&s| s.floor().clamp(0.0, (self.bins() - 1) as f32) as usize).collect();
            bins.sort_unstable();
            let scale = (bins[self.rank(h * w) - 1] as f32).max(self.floor * self.taps() as f32);
            data.extend(sums.iter().map(|&s| (s / scale).min(1.0)));
        }
        vec![Tensor { shape: vec![n, 1, h, w], data }]
    }
    /// Per sample, in bands of rows (see `row_bands`): `hbox` sums the channel maximum along
    /// each row of the band and its context (`chmax` first folds channels beyond three into a
    /// band of maxima), `vbox` sums those down the columns for the band's core rows, writes the
    /// sums into the output and counts them into the sample's histogram. Then `pct` finds each
    /// sample's scale from the histogram of all its bands, and `norm` divides the output in
    /// place, in binding-sized runs. Sums are integers, so the map is the whole image's, bit for
    /// bit, however the rows are split.
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let (x, y) = (&inputs[0], &outputs[0]);
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let r = self.radius as usize;
        let (limit, room, align) = bands::budget(ctx);
        let Some(bands) = row_bands(h, w, r, room) else {
            let what = format!("the ELA map of a {w}-pixel-wide image ({} rows)", 2 * r + 1);
            return Err(bands::too_large(ctx, &what, (2 * r + 1) * w + align, limit));
        };
        bands::check_u32(ctx, "map elements", n * h * w)?;
        let bins = self.bins();
        let hist = ctx.fixed_scratch(n * bins)?;
        let most = bands.iter().map(|b| b.halo.len()).max().unwrap_or(0) * w;
        let sums = ctx.scratch(most)?;
        let maxima = if c > 3 { Some(ctx.scratch(most)?) } else { None };
        let scale = ctx.fixed_scratch(n)?;
        let u = MapParams {
            h: h as u32,
            w: w as u32,
            acc: 0,
            n: 0,
            r: self.radius,
            bins: bins as u32,
            k: self.rank(h * w) as u32,
            samples: n as u32,
            floor_sum: self.floor * self.taps() as f32,
            row0: 0,
            y0: 0,
            y1: 0,
            s: 0,
            xb: [0; 3],
            ob: 0,
            _p: [0; 3],
        };
        let p = ctx.pipeline(&KERNELS[0], "clear", &[])?;
        let params = MapParams { n: (n * bins) as u32, ..u };
        ctx.dispatch_linear(&p, &bands::with_uniform(&params, [Bind::Tensor(&hist)]), groups(n * bins, 64))?;
        let (chmax, hbox, vbox) = (
            ctx.pipeline(&KERNELS[0], "chmax", &[])?,
            ctx.pipeline(&KERNELS[0], "hbox", &[])?,
            ctx.pipeline(&KERNELS[0], "vbox", &[])?,
        );
        for s in 0..n {
            for band in &bands {
                let items = band.halo.len() * w;
                let at = MapParams {
                    n: items as u32,
                    row0: band.halo.start as u32,
                    y0: band.core.start as u32,
                    s: s as u32,
                    ..u
                };
                // Channels in threes (the last three repeat one when fewer are left).
                let trio = |k: usize| [3 * k, (3 * k + 1).min(c - 1), (3 * k + 2).min(c - 1)];
                let source = match &maxima {
                    None => bands::channel_rows(x, s, trio(0), &band.halo, align),
                    Some(m) => {
                        for k in 0..c.div_ceil(3) {
                            let (xs, xb) = bands::channel_rows(x, s, trio(k), &band.halo, align);
                            let p = MapParams { acc: (k > 0) as u32, xb, ..at };
                            let binds = [&xs[0], &xs[1], &xs[2], m].map(Bind::Tensor);
                            ctx.dispatch_linear(&chmax, &bands::with_uniform(&p, binds), groups(items, 64))?;
                        }
                        let m = m.window(0, items);
                        ([m.clone(), m.clone(), m], [0; 3])
                    }
                };
                let (xs, xb) = source;
                let runs = band.halo.len() * w.div_ceil(SEG);
                let p = MapParams { n: runs as u32, xb, ..at };
                let binds = [&xs[0], &xs[1], &xs[2], &sums].map(Bind::Tensor);
                ctx.dispatch_linear(&hbox, &bands::with_uniform(&p, binds), groups(runs, 64))?;
                let (ys, ob) = bands::window(y, (s * h + band.core.start) * w, band.core.len() * w, align);
                let items = band.core.len().div_ceil(SEG) * w;
                let p = MapParams { n: items as u32, y1: band.core.end as u32, ob, ..at };
                let binds = [&sums, &ys, &hist].map(Bind::Tensor);
                ctx.dispatch_linear(&vbox, &bands::with_uniform(&p, binds), groups(items, 64))?;
            }
        }
        let p = ctx.pipeline(&KERNELS[0], "pct", &[])?;
        let binds = [Bind::Tensor(&hist), Bind::Tensor(&scale)];
        ctx.dispatch(&p, &bands::with_uniform(&MapParams { n: n as u32, ..u }, binds), [groups(n, 64), 1, 1])?;
        let p = ctx.pipeline(&KERNELS[0], "norm", &[])?;
        for run in bands::runs(n * h * w, room / align * align) {
            let (ys, ob) = bands::window(y, run.start, run.len(), align);
            let params = MapParams { n: run.len() as u32, y0: run.start as u32, ob, ..u };
            let binds = [Bind::Tensor(&scale), Bind::Tensor(&ys)];
            ctx.dispatch_linear(&p, &bands::with_uniform(&params, binds), groups(run.len(), 64))?;
        }
        Ok(())
    }
}

mod cpu;
#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::ela::bands::testing::{limit_for_room, run_counted};
    use crate::ops::testing::{check_op, run_on_gpu};
    use crate::ops::window::test_limit;
    use crate::tensor::{check_close, Rng};

    /// Integer levels 0..`hi`, mostly small, as ELA differences are.
    fn levels(shape: &[usize], seed: u64, hi: f32) -> Tensor {
        let mut rng = Rng::new(seed);
        let data = (0..shape.iter().product()).map(|_| (rng.next_f32().powi(4) * hi).floor()).collect();
        Tensor::new(shape, data).unwrap()
    }

    #[test]
    fn random_inputs_match_reference() {
        let seed = Rng::fresh_seed();
        let shapes: &[&[usize]] = &[
            &[1, 3, 1, 1],
            &[1, 3, 9, 17],
            &[2, 3, 29, 37],
            &[1, 1, 5, 3],
            &[1, 3, 64, 48],
            &[1, 5, 9, 11],
            &[1, 2, 4, 6],
        ];
        for (i, s) in shapes.iter().enumerate() {
            let x = levels(s, seed + i as u64, 60.0);
            for op in [
                ElaMap::default(),
                ElaMap { radius: 0, percentile: 0.5, floor: 0.5 },
                ElaMap { radius: 3, percentile: 1.0, floor: 1.0 },
            ] {
                check_op(&format!("ela_map {op:?} {s:?} seed {seed}"), &op, std::slice::from_ref(&x), 1e-5);
            }
        }
    }

    #[test]
    fn percentile_and_floor_set_the_scale() {
        // 100 pixels, radius 0: values 0..99; the 90th percentile (rank 90) is 89.
        let x = Tensor::new(&[1, 1, 10, 10], (0..100).map(|v| v as f32).collect()).unwrap();
        let op = ElaMap { radius: 0, percentile: 0.9, floor: 1.0 };
        let y = run_on_gpu(&op, std::slice::from_ref(&x)).unwrap().remove(0);
        assert_eq!(y.data[89], 1.0);
        assert!((y.data[45] - 45.0 / 89.0).abs() < 1e-6, "{}", y.data[45]);
        assert_eq!(y.data[99], 1.0);
        // A floor above the percentile takes over: 2 levels of difference on a clean image stay low.
        let clean = Tensor::full(&[1, 3, 8, 8], 2.0);
        let y = run_on_gpu(&ElaMap::default(), &[clean]).unwrap().remove(0);
        assert!(y.data.iter().all(|&v| (v - 2.0 / 3.0).abs() < 1e-6), "{:?}", &y.data[..4]);
    }

    #[test]
    fn running_twice_gives_the_same_map() {
        // The histogram is cleared on every run.
        let x = levels(&[1, 3, 20, 30], 7, 40.0);
        let gpu = crate::ops::testing::device();
        let mut b = crate::graph::GraphBuilder::new();
        let i = b.input("x", &x.shape);
        let o = b.add("map", ElaMap::default(), &[i]).unwrap();
        b.output("y", o);
        let plan = crate::graph::Plan::new(gpu, &b.finish()).unwrap();
        let a = plan.run(&[("x", &x)]).unwrap().remove("y").unwrap();
        let c = plan.run(&[("x", &x)]).unwrap().remove("y").unwrap();
        assert_eq!(a.data, c.data);
    }

    /// Over one binding the map runs in bands of rows with `r` rows of context; the histogram
    /// gathers every band before the scale is taken, and the output is divided in runs. The
    /// result is the whole image's, bit for bit. The binding limit is shrunk so small images
    /// split: `k` core rows per band, a short last band, widths off the alignment and off the
    /// kernels' 16-pixel runs, 2 samples, 1 and 5 channels (the latter folds channels in threes
    /// first), radius 0 and 3.
    #[test]
    fn banded_map_is_the_whole_image_one() {
        let seed = Rng::fresh_seed();
        let r3 = ElaMap { radius: 3, percentile: 0.9, floor: 1.0 };
        // (shape, op, core rows per band, bands)
        let cases: &[(&[usize], ElaMap, usize, usize)] = &[
            (&[1, 3, 29, 67], ElaMap::default(), 5, 6),
            (&[2, 3, 50, 75], ElaMap::default(), 16, 4),
            (&[1, 1, 23, 70], ElaMap { radius: 0, percentile: 0.5, floor: 0.5 }, 1, 23),
            (&[1, 5, 31, 101], r3.clone(), 4, 8),
            (&[1, 3, 40, 130], r3, 10, 4),
        ];
        for (i, (shape, op, k, nb)) in cases.iter().enumerate() {
            let x = levels(shape, seed + i as u64, 60.0);
            let case = format!("ela_map {op:?} {shape:?}, {k} rows per band, seed {seed}");
            let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
            let (whole, d1) = run_counted(op, &x).unwrap();
            let per_band = 2 + if c > 3 { c.div_ceil(3) } else { 0 };
            assert_eq!(d1, 2 + n * per_band + 1, "{case}: unbanded dispatches");
            // Windows of k + 2r rows, plus the alignment (widths >= 64 elements keep the rows
            // from growing with an alignment up to 256 bytes).
            let limit = limit_for_room((k + 2 * op.radius as usize) * w);
            let room = limit - crate::ops::ela::bands::testing::align();
            let bands = row_bands(h, w, op.radius as usize, room).unwrap();
            assert_eq!((bands.len(), bands[0].core.len()), (*nb, *k), "{case}: {bands:?}");
            let _limit = test_limit(limit);
            let (banded, d) = run_counted(op, &x).unwrap();
            let runs = (n * h * w).div_ceil(room);
            assert_eq!(d, 1 + n * nb * per_band + 1 + runs, "{case}: dispatches");
            assert_eq!(banded.data, whole.data, "{case}: banded differs from the whole image");
            check_close(&case, &banded, &op.reference(&[&x]).remove(0), 1e-5).unwrap();
        }
        let _limit = test_limit(4 * 37);
        let e = run_counted(&ElaMap::default(), &levels(&[1, 3, 29, 37], seed, 9.0)).unwrap_err().to_string();
        assert!(e.contains("storage binding") && e.contains("37-pixel-wide"), "{e}");
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(ElaMap { percentile: 0.0, ..ElaMap::default() }.infer(&[&[1, 3, 4, 4]]).is_err());
        assert!(ElaMap { floor: 0.0, ..ElaMap::default() }.infer(&[&[1, 3, 4, 4]]).is_err());
        assert!(ElaMap::default().infer(&[&[3, 4, 4]]).is_err());
    }
}
