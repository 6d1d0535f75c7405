//! Error Level Analysis as a model: no weights, same interface as the learned models.
//!
//! ```text
//! image [1,3,H,W] (RGB 0..255) ─ Ela (JPEG round trip at `quality`, |orig - rt|) ─ ela [1,3,H,W]
//!                                  └─ ElaMap (max over RGB, 5x5 box mean, / max(P99, 3 levels), clip) ─ prob [1,1,H,W]
//! ```
//! Native resolution, any H and W. See `docs/detectors.md` for the formulas and choices.

use crate::error::{Error, Result};
use crate::graph::{Graph, GraphBuilder};
use crate::models::model::{Family, InputMode, Model};
use crate::models::weights::WeightStore;
use crate::ops::ela::Ela;
use crate::ops::ela_map::ElaMap;
use crate::report::verdict::{Calibration, ScoreRule, CALIBRATION_SOURCE};

/// The PMSP paper's re-save quality (Krawetz uses 95).
pub const DEFAULT_QUALITY: u32 = 90;

/// The registry entry.
pub struct ElaFamily;
pub static ELA: ElaFamily = ElaFamily;

impl Family for ElaFamily {
    fn name(&self) -> &'static str {
        "ela"
    }
    fn about(&self) -> &'static str {
        "error level analysis (training-free): JPEG re-save at quality 90, normalized difference"
    }
    fn needs_weights(&self) -> bool {
        false
    }
    fn configure(&self, _weights: &WeightStore) -> Result<Box<dyn Model>> {
        Ok(Box::new(ElaModel { quality: DEFAULT_QUALITY }))
    }
    /// The map is scaled by its own 99th percentile, so its blurred maximum is about 1 on any photo
    /// (AUC 0.56 between pristine and forged synthetic images); the area of the largest coherent
    /// blob of p > 0.7 separates them best of the candidates tried (AUC 0.69, docs/report.md).
    fn calibration(&self) -> Calibration {
        let rule = ScoreRule::LargestRegion { level: 0.7, open_frac: 0.005 };
        Calibration::measured(rule, 0.015, 0.0, 0.047, 128, CALIBRATION_SOURCE)
    }
}

/// ELA at one re-save quality.
pub struct ElaModel {
    pub quality: u32,
}

impl Model for ElaModel {
    fn name(&self) -> &str {
        ELA.name()
    }
    fn input(&self) -> InputMode {
        InputMode::Native
    }
    /// The graph without its "ela" output: nothing downstream reads the error image, and on a
    /// 24 MP photo reading it back costs 288 MB of staging and host memory.
    fn build(&self, [h, w]: [usize; 2], _weights: &WeightStore) -> Result<Graph> {
        let mut g = build_ela(h, w, self.quality)?;
        g.outputs.retain(|(name, _)| name == "prob");
        Ok(g)
    }
}

/// The ELA detector for an `h x w` image: input "image", outputs "prob" and "ela".
pub fn build_ela(h: usize, w: usize, quality: u32) -> Result<Graph> {
    if h == 0 || w == 0 {
        return Err(Error::invalid(format!("ELA needs a non-empty image, got {h} x {w}")));
    }
    let mut b = GraphBuilder::new();
    let x = b.input("image", &[1, 3, h, w]);
    let ela = b.add("ela", Ela { quality }, &[x])?;
    let prob = b.add("ela_map", ElaMap::default(), &[ela])?;
    b.output("prob", prob);
    b.output("ela", ela);
    Ok(b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Plan;
    use crate::ops::ela::jpeg_roundtrip;
    use crate::ops::ela::tests::{check_levels, test_image};
    use crate::ops::testing::{device, region_means};
    use crate::ops::Op;
    use crate::tensor::{check_close, Rng, Tensor};

    fn run(h: usize, w: usize, q: u32, x: &Tensor) -> (Tensor, Tensor) {
        let plan = Plan::new(device(), &build_ela(h, w, q).unwrap()).unwrap();
        let mut out = plan.run(&[("image", x)]).unwrap();
        (out.remove("prob").unwrap(), out.remove("ela").unwrap())
    }

    /// Round trip a planar [1, 3, h, w] tensor through our CPU JPEG at `q`.
    fn jpeg(x: &Tensor, q: u32) -> Tensor {
        let (h, w) = (x.shape[2], x.shape[3]);
        let u8s: Vec<u8> = x.data.iter().map(|&v| crate::ops::ela::to_u8(v)).collect();
        Tensor::new(&x.shape, jpeg_roundtrip(&u8s, h, w, q).iter().map(|&v| v as f32).collect()).unwrap()
    }

    /// The GPU graph against the CPU references: "ela" as the op test (>= 99.9% equal, all within
    /// 16 levels), "prob" against the map's reference applied to the GPU's "ela" (1e-5), and the
    /// whole CPU composition within 1e-5 on >= 99% of pixels.
    #[test]
    fn gpu_graph_matches_cpu_composition() {
        let seed = Rng::fresh_seed();
        for (h, w, q) in [(29, 37, 90), (1, 1, 90), (40, 17, 75)] {
            let x = test_image(1, h, w, seed, 8.0, false);
            let (prob, ela) = run(h, w, q, &x);
            let want = build_ela(h, w, q).unwrap().run_reference(&[("image", &x)]).unwrap();
            let case = format!("ela model {h} x {w} q{q} seed {seed}");
            check_levels(&case, &ela, &want["ela"], 0.999, 16.0);
            let map = ElaMap::default().reference(&[&ela]).remove(0);
            check_close(&case, &prob, &map, 1e-5).unwrap();
            let close = prob.data.iter().zip(&want["prob"].data).filter(|(a, b)| (*a - *b).abs() <= 1e-5).count();
            assert!(
                close as f64 >= 0.99 * prob.numel() as f64,
                "{case}: {close} of {} prob values match",
                prob.numel()
            );
            assert!(prob.data.iter().all(|v| (0.0..=1.0).contains(v)), "{case}: prob outside [0, 1]");
        }
    }

    /// A q90 JPEG (our round trip) with a 32 x 48 region pasted from a q60 JPEG of a different
    /// image, on the 16-pixel grid: re-saving at 90 barely changes the background and changes
    /// the region, so the region's mean prob must clearly exceed the background's.
    #[test]
    fn pasted_region_of_other_quality_scores_higher() {
        let seed = Rng::fresh_seed();
        let (h, w) = (96, 128);
        let mut img = jpeg(&test_image(1, h, w, seed, 8.0, false), 90);
        let donor = jpeg(&test_image(1, h, w, seed + 1, 20.0, false), 60);
        let inside = |y: usize, x: usize| (32..64).contains(&y) && (48..96).contains(&x);
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    if inside(y, x) {
                        img.data[(c * h + y) * w + x] = donor.data[(c * h + y) * w + x];
                    }
                }
            }
        }
        let (prob, _) = run(h, w, 90, &img);
        // Leave out a 4-pixel band around the edge of the region (the box mean blurs it).
        let (fg, bg) = region_means(&prob, [36..60, 52..92], [28..68, 44..100]);
        println!("seed {seed}: region {fg:.3}, background {bg:.3}");
        // Measured over 7 seeds: region 0.26..0.28, background 0.042..0.047.
        assert!(fg > 3.0 * bg && fg > bg + 0.15, "seed {seed}: region {fg:.3} vs background {bg:.3}");
    }

    /// Wall time of `build_ela` and `build_noise` graphs at 512 x 512 and 6000 x 4000 (24 MP, over
    /// one storage binding on lavapipe), random 0..255 images: `Plan::run` with upload and readback,
    /// median of 5 (512) or 3 (24 MP) runs after a warm-up, the CPU time of all the process's
    /// threads per run (on lavapipe the GPU work is CPU work, and CPU time is less sensitive than
    /// wall time to other load on a shared machine), and the per-node GPU times:
    /// `cargo test --release --lib models::ela::tests::time_large_detectors -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn time_large_detectors() {
        // CPU time of every thread of the process (lavapipe's workers included), from schedstat (ns).
        let cpu_ms = || -> f64 {
            let tasks = std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten();
            let ns = |t: std::fs::DirEntry| -> Option<f64> {
                std::fs::read_to_string(t.path().join("schedstat")).ok()?.split_whitespace().next()?.parse().ok()
            };
            tasks.filter_map(ns).sum::<f64>() / 1e6
        };
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let gpu = device();
        for (h, w, reps) in [(512, 512, 5), (4000, 6000, 3)] {
            let x = Tensor::random(&[1, 3, h, w], 3, 0.0, 255.0);
            let graphs = [
                ("ela", build_ela(h, w, 90).unwrap()),
                ("noise", crate::models::noise::build_noise(h, w, 16).unwrap()),
            ];
            for (name, g) in graphs {
                let t = std::time::Instant::now();
                let plan = match Plan::new(gpu, &g) {
                    Ok(p) => p,
                    Err(e) => {
                        println!("{name} {w}x{h}: cannot plan: {e}");
                        continue;
                    }
                };
                let plan_ms = t.elapsed().as_secs_f64() * 1e3;
                plan.run(&[("image", &x)]).unwrap();
                let (wall, cpu): (Vec<f64>, Vec<f64>) = (0..reps)
                    .map(|_| {
                        let (t, c) = (std::time::Instant::now(), cpu_ms());
                        plan.run(&[("image", &x)]).unwrap();
                        (t.elapsed().as_secs_f64() * 1e3, cpu_ms() - c)
                    })
                    .unzip();
                let (_, prof) = plan.run_profiled(&[("image", &x)]).unwrap();
                let nodes: Vec<String> = prof.iter().map(|t| format!("{} {:.1} ms", t.node, t.micros / 1e3)).collect();
                println!(
                    "{name} {w}x{h}: median {:.1} ms wall, {:.0} ms CPU (planned in {plan_ms:.0} ms, {} dispatches, \
                     scratch {} MiB); {}",
                    median(wall),
                    median(cpu),
                    plan.stats.dispatches,
                    plan.stats.scratch_bytes >> 20,
                    nodes.join("; ")
                );
            }
        }
    }

    /// The graph on an image over the (shrunk) binding limit: `Ela` runs in 5 bands of 2 MCU
    /// rows (a short last one) and `ElaMap` in 2 bands, and both outputs equal the whole-image
    /// run's exactly. Replaces the pipeline's own banding (`Detector::detect_ela_banded`).
    #[test]
    fn banded_graph_matches_the_whole_image() {
        use crate::ops::window::test_limit;
        let (h, w) = (150, 75);
        let seed = Rng::fresh_seed();
        let x = test_image(1, h, w, seed, 12.0, false);
        let plan = |g: &Graph| Plan::new(device(), g);
        let g = build_ela(h, w, 90).unwrap();
        let whole = plan(&g).unwrap().run(&[("image", &x)]).unwrap();
        // Planes of 4 MCU rows (24 x 80 elements each): 2 core MCU rows per band, 5 bands.
        let limit = 4 * 24 * 80;
        let _limit = test_limit(limit);
        let p = plan(&g).unwrap();
        // Ela: 3 per band. ElaMap: clear, hbox + vbox per band (rows of 7672 / 75 = 102 with
        // context: cores of 98 and 52), pct, norm in 2 runs of at most 7672 of 11250 elements.
        assert_eq!(p.stats.dispatches, 5 * 3 + 1 + 2 * 2 + 1 + 2, "dispatches");
        let banded = p.run(&[("image", &x)]).unwrap();
        for out in ["ela", "prob"] {
            assert_eq!(banded[out].shape, whole[out].shape);
            assert_eq!(banded[out].data, whole[out].data, "{out} differs (seed {seed})");
        }
        assert!(whole["prob"].data.iter().any(|&p| p > 0.5), "the test picture gives ELA something to show");
        // One band of context alone does not fit: a clear error, not a panic.
        let _limit = test_limit(2 * 24 * 80);
        let e = plan(&g).err().expect("planning fails").to_string();
        assert!(e.contains("ELA of a 75-pixel-wide image") && e.contains("storage binding"), "{e}");
    }

    #[test]
    fn empty_image_is_refused() {
        assert!(build_ela(0, 5, 90).is_err());
        assert!(build_ela(5, 5, 0).is_err());
    }
}
