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
//! Non-integer inputs are binned by `floor`; the scale is then that bin's lower edge.

use crate::error::Result;
use crate::kernel;
use crate::ops::{as_bytes, groups, Bind, Op, PlanCtx, TensorView};
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
    c: u32,
    n: u32,
    r: u32,
    bins: u32,
    k: u32,
    samples: u32,
    floor_sum: f32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
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
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let x = inputs[0];
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let r = self.radius as isize;
        let mut data = Vec::with_capacity(n * h * w);
        for sample in x.data.chunks(c * h * w) {
            let m: Vec<f32> =
                (0..h * w).map(|i| (0..c).map(|k| sample[k * h * w + i]).fold(f32::NEG_INFINITY, f32::max)).collect();
            let at = |y: isize, x: isize| m[y.clamp(0, h as isize - 1) as usize * w + x.clamp(0, w as isize - 1) as usize];
            let sums: Vec<f32> = (0..h * w)
                .map(|i| {
                    let (y, x) = ((i / w) as isize, (i % w) as isize);
                    (-r..=r).flat_map(|dy| (-r..=r).map(move |dx| (dy, dx))).map(|(dy, dx)| at(y + dy, x + dx)).sum()
                })
                .collect();
            let mut bins: Vec<usize> = sums.iter().map(|&s| s.floor().clamp(0.0, (self.bins() - 1) as f32) as usize).collect();
            bins.sort_unstable();
            let scale = (bins[self.rank(h * w) - 1] as f32).max(self.floor * self.taps() as f32);
            data.extend(sums.iter().map(|&s| (s / scale).min(1.0)));
        }
        vec![Tensor { shape: vec![n, 1, h, w], data }]
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let (x, y) = (&inputs[0], &outputs[0]);
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let bins = self.bins();
        let hist = ctx.scratch(n * bins)?;
        let sums = ctx.scratch(n * h * w)?;
        let tmp = ctx.scratch(n * h * w)?;
        let scale = ctx.scratch(n)?;
        let params = |items: usize| MapParams {
            h: h as u32,
            w: w as u32,
            c: c as u32,
            n: items as u32,
            r: self.radius,
            bins: bins as u32,
            k: self.rank(h * w) as u32,
            samples: n as u32,
            floor_sum: self.floor * self.taps() as f32,
            _p0: 0,
            _p1: 0,
            _p2: 0,
        };
        let p = ctx.pipeline(&KERNELS[0], "clear", &[])?;
        let u = params(n * bins);
        ctx.dispatch_linear(&p, &[Bind::Uniform(as_bytes(&u)), Bind::Tensor(&hist)], groups(n * bins, 64))?;
        let u = params(n * h * w);
        for (entry, from, to) in [("chmax", x, &sums), ("hbox", &sums, &tmp)] {
            let p = ctx.pipeline(&KERNELS[0], entry, &[])?;
            ctx.dispatch_linear(&p, &[Bind::Uniform(as_bytes(&u)), Bind::Tensor(from), Bind::Tensor(to)], groups(n * h * w, 64))?;
        }
        let p = ctx.pipeline(&KERNELS[0], "vbox", &[])?;
        let binds = [Bind::Uniform(as_bytes(&u)), Bind::Tensor(&tmp), Bind::Tensor(&sums), Bind::Tensor(&hist)];
        ctx.dispatch_linear(&p, &binds, groups(n * h * w, 64))?;
        let p = ctx.pipeline(&KERNELS[0], "pct", &[])?;
        let u = params(n);
        ctx.dispatch(&p, &[Bind::Uniform(as_bytes(&u)), Bind::Tensor(&hist), Bind::Tensor(&scale)], [groups(n, 64), 1, 1])?;
        let p = ctx.pipeline(&KERNELS[0], "norm", &[])?;
        let u = params(n * h * w);
        let binds = [Bind::Uniform(as_bytes(&u)), Bind::Tensor(&sums), Bind::Tensor(&scale), Bind::Tensor(y)];
        ctx.dispatch_linear(&p, &binds, groups(n * h * w, 64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{check_op, run_on_gpu};
    use crate::tensor::Rng;

    /// Integer levels 0..`hi`, mostly small, as ELA differences are.
    fn levels(shape: &[usize], seed: u64, hi: f32) -> Tensor {
        let mut rng = Rng::new(seed);
        let data = (0..shape.iter().product()).map(|_| (rng.next_f32().powi(4) * hi).floor()).collect();
        Tensor::new(shape, data).unwrap()
    }

    #[test]
    fn random_inputs_match_reference() {
        let seed = Rng::fresh_seed();
        let shapes: &[&[usize]] = &[&[1, 3, 1, 1], &[1, 3, 9, 17], &[2, 3, 29, 37], &[1, 1, 5, 3], &[1, 3, 64, 48]];
        for (i, s) in shapes.iter().enumerate() {
            let x = levels(s, seed + i as u64, 60.0);
            for op in [ElaMap::default(), ElaMap { radius: 0, percentile: 0.5, floor: 0.5 }, ElaMap { radius: 3, percentile: 1.0, floor: 1.0 }] {
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

    #[test]
    fn bad_settings_are_refused() {
        assert!(ElaMap { percentile: 0.0, ..ElaMap::default() }.infer(&[&[1, 3, 4, 4]]).is_err());
        assert!(ElaMap { floor: 0.0, ..ElaMap::default() }.infer(&[&[1, 3, 4, 4]]).is_err());
        assert!(ElaMap::default().infer(&[&[3, 4, 4]]).is_err());
    }
}
