//! PatchMatch over dense per-pixel features (Barnes et al. 2009, as used for copy-move detection by
//! Cozzolino, Poggi & Verdoliva, IEEE TIFS 2015).
//!
//! - [`PatchMatchInit`]: features `[1, K, H, W]` to a field `[1, 3, H, W]`: per pixel the offset
//!   `(dx, dy)` (integers stored as f32) to its nearest neighbour found so far and the cost, the
//!   squared L2 distance `sum_k (F_k(p) - F_k(p + o))²`. Four hash-random targets, the best kept.
//! - [`PatchMatchStep`]: one iteration, features and the previous field to a new field (one
//!   dispatch, so a graph node per iteration ping-pongs the field through the planner's buffers):
//!   1. propagation: the offsets of the 4 neighbours at distance `jump`, then of the 4 unit
//!      neighbours (left, right, up, down), each tried at the pixel; jump-flood style, the model
//!      halves `jump` from iteration to iteration so an offset crosses a region in log steps;
//!   2. random search: `samples` offsets drawn uniformly in squares of radius
//!      `max(H, W) >> (s + 1)` (at least 1) around the best offset so far.
//!
//!   A candidate replaces the best only if strictly cheaper, in the order listed, so ties keep
//!   the earlier one.
//!
//! An offset is valid when the target `p + o` is inside the image and `|o|² >= min_offset²`
//! (a patch never matches itself or its overlapping neighbours); invalid ones cost [`BIG`].
//! A candidate's sum stops once it reaches the best cost so far (it would lose anyway): most
//! candidates lose after a few channels, which made the steps several times faster.
//! Random choices are `hash(p ^ hash(iter · 64 + sample))` with PCG's output function, so the CPU
//! reference makes the same choices as the GPU. Costs accumulate in f32 over channels in order;
//! a driver that fuses the multiply-add can round differently and, at a near-tie, choose the
//! other offset (integer-valued features make every cost exact: the tests use both).
//!
//! Each tensor must fit one storage binding (a 1-megapixel analysis with 12 features is 48 MB);
//! larger ones are refused when planning.

use crate::error::{Error, Result};
use crate::kernel;
use crate::ops::{as_bytes, groups, Bind, Op, PlanCtx, TensorView};
use crate::tensor::{Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("patchmatch")];

/// Cost of an invalid offset (target outside the image, or shorter than the minimum).
pub const BIG: f32 = 3.0e38;

/// Hash-random initial field.
#[derive(Clone, Debug)]
pub struct PatchMatchInit {
    pub min_offset: usize,
}

/// One PatchMatch iteration.
#[derive(Clone, Debug)]
pub struct PatchMatchStep {
    pub min_offset: usize,
    /// Propagation distance (the unit neighbours are always tried as well).
    pub jump: usize,
    /// Iteration number: salts the random search.
    pub iter: usize,
    /// Random-search samples per pixel (at most 24).
    pub samples: usize,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PmParams {
    h: u32,
    w: u32,
    k: u32,
    min_off2: u32,
    jump: u32,
    iter: u32,
    samples: u32,
    n: u32,
}

/// PCG-RXS-M-XS on a 32-bit state (as `kernels/patchmatch.wgsl`).
fn hash(x: u32) -> u32 {
    let v = x.wrapping_mul(747796405).wrapping_add(2891336453);
    let word = ((v >> ((v >> 28) + 4)) ^ v).wrapping_mul(277803737);
    (word >> 22) ^ word
}

fn rnd(p: u32, iter: u32, s: u32) -> u32 {
    hash(p ^ hash(iter.wrapping_mul(64).wrapping_add(s)))
}

/// The features of one `[1, K, H, W]` tensor with the matching rule.
struct Matcher<'a> {
    f: &'a [f32],
    h: usize,
    w: usize,
    k: usize,
    min_off2: i64,
}

impl<'a> Matcher<'a> {
    /// Features `f` of shape `[1, K, H, W]` (`shape`) with the rule's shortest offset.
    fn new(f: &'a [f32], shape: &[usize], min_offset: usize) -> Matcher<'a> {
        Matcher { f, h: shape[2], w: shape[3], k: shape[1], min_off2: (min_offset * min_offset) as i64 }
    }

    /// The pixels' best offsets `best(p)` as a field: planes dx, dy, cost. One pixel's search
    /// reads nothing another writes, so the CPU backend runs them on the pool.
    fn field(&self, out: &mut [f32], best: impl IntoIterator<Item = (i64, i64, f32)>) {
        let n = self.h * self.w;
        for (p, (dx, dy, c)) in best.into_iter().enumerate() {
            (out[p], out[n + p], out[2 * n + p]) = (dx as f32, dy as f32, c);
        }
    }

    /// The cost, or a partial sum >= `bound` once it reaches it (as the kernel: the candidate
    /// loses either way).
    fn cost(&self, x: i64, y: i64, dx: i64, dy: i64, bound: f32) -> f32 {
        let (tx, ty) = (x + dx, y + dy);
        if tx < 0 || ty < 0 || tx >= self.w as i64 || ty >= self.h as i64 || dx * dx + dy * dy < self.min_off2 {
            return BIG;
        }
        let plane = self.h * self.w;
        let (a, b) = (y as usize * self.w + x as usize, ty as usize * self.w + tx as usize);
        let mut acc = 0.0f32;
        for c in 0..self.k {
            let d = self.f[c * plane + a] - self.f[c * plane + b];
            acc += d * d;
            if acc >= bound {
                break;
            }
        }
        acc
    }
}

/// Checks shared by the two ops: one sample, non-empty, every tensor within u32 indexing.
fn check_image(x: &[usize], what: &str) -> std::result::Result<(), String> {
    if x.len() != 4 || x[0] != 1 || x[1] == 0 || x[2] == 0 || x[3] == 0 {
        return Err(format!("needs {what} [1, C, H, W] with non-empty dimensions, got {x:?}"));
    }
    if x.iter().product::<usize>() > u32::MAX as usize / 4 || x[2].max(x[3]) > 30_000 {
        return Err(format!("{what} {x:?} is too large (at most 30000 pixels a side)"));
    }
    Ok(())
}

fn field_shape(inputs: &[&[usize]], with_prev: bool) -> std::result::Result<Vec<Shape>, String> {
    let want = 1 + with_prev as usize;
    if inputs.len() != want {
        return Err(format!("takes {want} inputs, got {}", inputs.len()));
    }
    let f = inputs[0];
    check_image(f, "features")?;
    let field = vec![1, 3, f[2], f[3]];
    if with_prev && inputs[1] != field.as_slice() {
        return Err(format!("the previous field must be {field:?}, got {:?}", inputs[1]));
    }
    Ok(vec![field])
}

/// Refuse tensors over one storage binding (the kernels index whole tensors).
fn check_bindings(ctx: &PlanCtx, views: &[&TensorView]) -> Result<()> {
    let limit = ctx.windows().limit();
    match views.iter().find(|v| v.numel() > limit) {
        Some(v) => Err(Error::invalid(format!(
            "node '{}': patchmatch needs each tensor in one storage binding; {:?} holds {} elements, the \
             limit is {limit}: analyse the image at a smaller size",
            ctx.node_name,
            v.shape,
            v.numel()
        ))),
        None => Ok(()),
    }
}

fn params(f: &[usize], min_offset: usize) -> PmParams {
    PmParams {
        h: f[2] as u32,
        w: f[3] as u32,
        k: f[1] as u32,
        min_off2: (min_offset * min_offset) as u32,
        jump: 1,
        iter: 0,
        samples: 0,
        n: (f[2] * f[3]) as u32,
    }
}

impl Op for PatchMatchInit {
    fn kind(&self) -> &'static str {
        "patchmatch_init"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        field_shape(inputs, false)
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let f = inputs[0];
        let m = Matcher::new(&f.data, &f.shape, self.min_offset);
        let n = m.h * m.w;
        let mut out = vec![0.0f32; 3 * n];
        m.field(&mut out, (0..n).map(|p| self.best(&m, p)));
        vec![Tensor { shape: vec![1, 3, m.h, m.w], data: out }]
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::init_kernel(self, inputs)
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        check_bindings(ctx, &[&inputs[0], &outputs[0]])?;
        let p = ctx.pipeline(&KERNELS[0], "pm_init", &[])?;
        let u = params(&inputs[0].shape, self.min_offset);
        // `pm_init` reads no previous field: bindings 0, 1 and 3.
        let binds = [Bind::Uniform(as_bytes(&u)), Bind::Tensor(&inputs[0]), Bind::Tensor(&outputs[0])];
        ctx.dispatch_linear(&p, &binds, groups(u.n as usize, 64))
    }
}

impl PatchMatchInit {
    /// Pixel `p`'s best of its four hash-random targets.
    fn best(&self, m: &Matcher, p: usize) -> (i64, i64, f32) {
        let (x, y) = ((p % m.w) as i64, (p / m.w) as i64);
        let mut best = (0i64, 0i64, BIG);
        for s in 0..4u32 {
            let dx = (rnd(p as u32, 0xffff, 2 * s) % m.w as u32) as i64 - x;
            let dy = (rnd(p as u32, 0xffff, 2 * s + 1) % m.h as u32) as i64 - y;
            let c = m.cost(x, y, dx, dy, best.2);
            if c < best.2 {
                best = (dx, dy, c);
            }
        }
        best
    }
}

impl PatchMatchStep {
    /// Pixel `p`'s best offset after propagation from the field `prev` and the random search.
    fn best(&self, m: &Matcher, prev: &[f32], p: usize) -> (i64, i64, f32) {
        let (w, h, n) = (m.w, m.h, m.w * m.h);
        let big = h.max(w) as i64;
        let (x, y) = ((p % w) as i64, (p / w) as i64);
        let mut best = (prev[p] as i64, prev[n + p] as i64, prev[2 * n + p]);
        for j in [self.jump as i64, 1] {
            for (nx, ny) in [(x - j, y), (x + j, y), (x, y - j), (x, y + j)] {
                if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                    continue;
                }
                let q = ny as usize * w + nx as usize;
                let (dx, dy) = (prev[q] as i64, prev[n + q] as i64);
                let c = m.cost(x, y, dx, dy, best.2);
                if c < best.2 {
                    best = (dx, dy, c);
                }
            }
        }
        for s in 0..self.samples as u32 {
            let rad = (big >> (s + 1)).max(1);
            let span = (2 * rad + 1) as u32;
            let dx = best.0 + (rnd(p as u32, self.iter as u32, 2 * s) % span) as i64 - rad;
            let dy = best.1 + (rnd(p as u32, self.iter as u32, 2 * s + 1) % span) as i64 - rad;
            let c = m.cost(x, y, dx, dy, best.2);
            if c < best.2 {
                best = (dx, dy, c);
            }
        }
        best
    }
}

impl Op for PatchMatchStep {
    fn kind(&self) -> &'static str {
        "patchmatch_step"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        if self.jump == 0 || self.samples > 24 {
            return Err(format!("needs jump >= 1 and at most 24 samples, got {} and {}", self.jump, self.samples));
        }
        field_shape(inputs, true)
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let (f, prev) = (inputs[0], &inputs[1].data);
        let m = Matcher::new(&f.data, &f.shape, self.min_offset);
        let n = m.h * m.w;
        let mut out = vec![0.0f32; 3 * n];
        m.field(&mut out, (0..n).map(|p| self.best(&m, prev, p)));
        vec![Tensor { shape: vec![1, 3, m.h, m.w], data: out }]
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::step_kernel(self, inputs)
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        check_bindings(ctx, &[&inputs[0], &inputs[1], &outputs[0]])?;
        let p = ctx.pipeline(&KERNELS[0], "pm_step", &[])?;
        let u = PmParams {
            jump: self.jump as u32,
            iter: self.iter as u32,
            samples: self.samples as u32,
            ..params(&inputs[0].shape, self.min_offset)
        };
        let binds = [
            Bind::Uniform(as_bytes(&u)),
            Bind::Tensor(&inputs[0]),
            Bind::Tensor(&inputs[1]),
            Bind::Tensor(&outputs[0]),
        ];
        ctx.dispatch_linear(&p, &binds, groups(u.n as usize, 64))
    }
}

/// Jump of iteration `iter` for an `h x w` field: `max(H, W) / 2^(iter + 1)`, at least 1.
pub fn jump(h: usize, w: usize, iter: usize) -> usize {
    (h.max(w) >> (iter + 1).min(63)).max(1)
}

mod cpu;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{GraphBuilder, Plan};
    use crate::ops::testing::{check_op, device};
    use crate::tensor::Rng;

    /// Init then `iters` steps as one graph (the model's chain), on the GPU and by the references.
    fn chain(f: &Tensor, iters: usize, min_offset: usize) -> (Tensor, Tensor) {
        let (h, w) = (f.shape[2], f.shape[3]);
        let mut b = GraphBuilder::new();
        let x = b.input("f", &f.shape);
        let mut field = b.add("init", PatchMatchInit { min_offset }, &[x]).unwrap();
        for i in 0..iters {
            let step = PatchMatchStep { min_offset, jump: jump(h, w, i), iter: i, samples: 6 };
            field = b.add(&format!("step{i}"), step, &[x, field]).unwrap();
        }
        b.output("field", field);
        let g = b.finish();
        let want = g.run_reference(&[("f", f)]).unwrap().remove("field").unwrap();
        let got = Plan::new(device(), &g).unwrap().run(&[("f", f)]).unwrap().remove("field").unwrap();
        (got, want)
    }

    /// Small integers: every cost is exact in f32 whatever the order or fusion of the adds, so the
    /// GPU must make exactly the reference's choices, ties included.
    fn integer_features(shape: &[usize], seed: u64) -> Tensor {
        let mut t = Tensor::random(shape, seed, 0.0, 8.0);
        t.data.iter_mut().for_each(|v| *v = v.floor());
        t
    }

    #[test]
    fn init_and_steps_match_reference_exactly_on_integer_features() {
        let seed = Rng::fresh_seed();
        for (i, s) in [[1, 1, 1, 1], [1, 3, 7, 13], [1, 12, 61, 45], [1, 5, 2, 40]].iter().enumerate() {
            let f = integer_features(s, seed + i as u64);
            let (got, want) = chain(&f, 4, 2);
            assert_eq!(got.data, want.data, "{s:?} seed {seed}");
        }
    }

    /// The CPU backend's kernels (the per-pixel searches on the pool) give exactly the reference's
    /// field, on integer and on real-valued features alike: every pixel lands in its own place.
    #[test]
    fn cpu_backend_matches_reference_exactly() {
        let seed = Rng::fresh_seed();
        for (i, s) in [[1, 1, 1, 1], [1, 3, 7, 13], [1, 12, 61, 45], [1, 5, 2, 40]].iter().enumerate() {
            for real in [false, true] {
                let f = if real { Tensor::random(s, seed + i as u64, -1.0, 1.0) } else { integer_features(s, seed + i as u64) };
                let (h, w) = (s[2], s[3]);
                let mut b = GraphBuilder::new();
                let x = b.input("f", s);
                let mut field = b.add("init", PatchMatchInit { min_offset: 2 }, &[x]).unwrap();
                for it in 0..4 {
                    let step = PatchMatchStep { min_offset: 2, jump: jump(h, w, it), iter: it, samples: 6 };
                    field = b.add(&format!("step{it}"), step, &[x, field]).unwrap();
                }
                b.output("field", field);
                let g = b.finish();
                let plan = crate::cpu::CpuPlan::new(&g).unwrap();
                assert_eq!(plan.stats.reference_nodes, 0, "{s:?}: every node has its own kernel");
                let got = plan.run(&[("f", &f)]).unwrap().remove("field").unwrap();
                let want = g.run_reference(&[("f", &f)]).unwrap().remove("field").unwrap();
                assert_eq!(got.data, want.data, "{s:?} real {real} seed {seed}");
            }
        }
    }

    /// Real-valued features: costs agree to f32 rounding; an offset may differ only where a fused
    /// multiply-add changed which of two almost equal costs is lower, and the difference then
    /// spreads a little by propagation, so up to 1% of the offsets may differ (0 seen on lavapipe).
    #[test]
    fn steps_match_reference_on_real_features() {
        let seed = Rng::fresh_seed();
        let f = Tensor::random(&[1, 12, 61, 45], seed, -20.0, 20.0);
        let (got, want) = chain(&f, 3, 3);
        let n = 61 * 45;
        let differ = (0..n).filter(|&p| got.data[p] != want.data[p] || got.data[n + p] != want.data[n + p]).count();
        assert!(differ * 100 <= n, "seed {seed}: {differ} of {n} offsets differ");
        for p in 0..n {
            if got.data[p] == want.data[p] && got.data[n + p] == want.data[n + p] {
                let (g, wv) = (got.data[2 * n + p], want.data[2 * n + p]);
                assert!((g - wv).abs() <= 1e-4 * wv.abs().max(1.0), "seed {seed}: cost {g} vs {wv} at {p}");
            }
        }
    }

    #[test]
    fn single_steps_match_reference() {
        let seed = Rng::fresh_seed();
        let f = integer_features(&[1, 4, 19, 23], seed);
        let prev = PatchMatchInit { min_offset: 4 }.reference(&[&f]).remove(0);
        check_op(&format!("pm_init seed {seed}"), &PatchMatchInit { min_offset: 4 }, std::slice::from_ref(&f), 0.0);
        let step = PatchMatchStep { min_offset: 4, jump: 8, iter: 3, samples: 5 };
        check_op(&format!("pm_step seed {seed}"), &step, &[f, prev], 0.0);
    }

    /// The offsets respect the rules, and on a feature map with a copied block the field finds
    /// the copy.
    #[test]
    fn offsets_stay_valid_and_find_a_copy() {
        let seed = Rng::fresh_seed();
        let (h, w) = (48, 64);
        // Smooth features (5 x 5 box means of noise), so a near miss costs little and the
        // random search at small radii homes in, as with real patch features.
        let noise = Tensor::random(&[1, 6, h, w], seed, 0.0, 10.0);
        let mut f = noise.clone();
        for c in 0..6 {
            for y in 0..h {
                for x in 0..w {
                    let (y0, y1, x0, x1) = (y.saturating_sub(2), (y + 3).min(h), x.saturating_sub(2), (x + 3).min(w));
                    let s: f32 = (y0..y1)
                        .flat_map(|yy| (x0..x1).map(move |xx| (yy, xx)))
                        .map(|(yy, xx)| noise.data[(c * h + yy) * w + xx])
                        .sum();
                    f.data[(c * h + y) * w + x] = s / ((y1 - y0) * (x1 - x0)) as f32;
                }
            }
        }
        // Copy rows 4..20, cols 4..20 to rows 26..42, cols 40..56: offset (36, 22).
        for c in 0..6 {
            for y in 4..20 {
                for x in 4..20 {
                    f.data[(c * h + y + 22) * w + x + 36] = f.data[(c * h + y) * w + x];
                }
            }
        }
        let (got, _) = chain(&f, 8, 5);
        let n = h * w;
        let mut found = 0;
        for p in 0..n {
            let (x, y) = ((p % w) as i64, (p / w) as i64);
            let (dx, dy) = (got.data[p] as i64, got.data[n + p] as i64);
            if got.data[2 * n + p] < BIG {
                assert!(dx * dx + dy * dy >= 25, "seed {seed}: short offset at {p}");
                assert!((0..w as i64).contains(&(x + dx)) && (0..h as i64).contains(&(y + dy)), "seed {seed}");
            }
            if (4..20).contains(&y) && (4..20).contains(&x) && (dx, dy) == (36, 22) {
                found += 1;
            }
        }
        assert!(found >= 16 * 16 * 9 / 10, "seed {seed}: the copy found at {found} of 256 pixels");
    }

    #[test]
    fn bad_shapes_are_refused() {
        let init = PatchMatchInit { min_offset: 2 };
        assert!(init.infer(&[&[1, 3, 0, 4]]).is_err());
        assert!(init.infer(&[&[2, 3, 4, 4]]).is_err());
        let step = PatchMatchStep { min_offset: 2, jump: 1, iter: 0, samples: 4 };
        assert!(step.infer(&[&[1, 3, 4, 4], &[1, 3, 4, 5]]).is_err());
        assert!(PatchMatchStep { jump: 0, ..step.clone() }.infer(&[&[1, 3, 4, 4], &[1, 3, 4, 4]]).is_err());
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use crate::graph::GraphBuilder;

    /// CPU kernel against the reference, interleaved (ignored; `cargo test --release --lib
    /// patchmatch::timing -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn cpu_kernel_against_reference() {
        let f = Tensor::random(&[1, 12, 400, 600], 3, 0.0, 40.0);
        let mut b = GraphBuilder::new();
        let x = b.input("f", &f.shape);
        let field = b.add("init", PatchMatchInit { min_offset: 32 }, &[x]).unwrap();
        let step = PatchMatchStep { min_offset: 32, jump: jump(400, 600, 0), iter: 0, samples: 6 };
        let field = b.add("step", step, &[x, field]).unwrap();
        b.output("field", field);
        let g = b.finish();
        let plan = crate::cpu::CpuPlan::new(&g).unwrap();
        for _ in 0..3 {
            let t = std::time::Instant::now();
            plan.run(&[("f", &f)]).unwrap();
            let k = t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            g.run_reference(&[("f", &f)]).unwrap();
            println!("init + step: CPU kernels {:.0} ms, reference {:.0} ms", k * 1e3, t.elapsed().as_secs_f64() * 1e3);
        }
    }
}
