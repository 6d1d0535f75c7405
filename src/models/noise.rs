//! Noise-inconsistency detector (Mahdian & Saic style) as a model: no weights.
//!
//! ```text
//! image [1,3,H,W] (RGB 0..255) ─ NoiseMap (luma, Haar HH, block MAD sigma, |sigma - median| / (|..| + median)) ─ prob [1,1,H,W]
//! ```
//! Native resolution, any H and W. See `docs/detectors.md`.

use crate::error::{Error, Result};
use crate::graph::{Graph, GraphBuilder};
use crate::models::model::{Family, InputMode, Model};
use crate::models::weights::WeightStore;
use crate::ops::noise::NoiseMap;
use crate::report::verdict::{Calibration, ScoreRule, CALIBRATION_SOURCE};

/// Block side in pixels (64 HH coefficients per block).
pub const DEFAULT_BLOCK: usize = 16;

/// The registry entry.
pub struct NoiseFamily;
pub static NOISE: NoiseFamily = NoiseFamily;

impl Family for NoiseFamily {
    fn name(&self) -> &'static str {
        "noise"
    }
    fn about(&self) -> &'static str {
        "noise inconsistency (training-free): local noise level of 16-pixel blocks against the image's median"
    }
    fn needs_weights(&self) -> bool {
        false
    }
    fn configure(&self, _weights: &WeightStore) -> Result<Box<dyn Model>> {
        Ok(Box::new(NoiseModel { block: DEFAULT_BLOCK }))
    }
    /// Of the candidates tried none separates pristine from forged synthetic images (AUC 0.43 to
    /// 0.55, docs/report.md); the largest region of p > 0.5 is the best of them.
    fn calibration(&self) -> Calibration {
        let rule = ScoreRule::LargestRegion { level: 0.5, open_frac: 0.01 };
        Calibration::measured(rule, 0.457, 0.012, 0.047, 128, CALIBRATION_SOURCE)
    }
}

/// The noise map with one block size.
pub struct NoiseModel {
    pub block: usize,
}

impl Model for NoiseModel {
    fn name(&self) -> &str {
        NOISE.name()
    }
    fn input(&self) -> InputMode {
        InputMode::Native
    }
    fn build(&self, [h, w]: [usize; 2], _weights: &WeightStore) -> Result<Graph> {
        build_noise(h, w, self.block)
    }
}

/// The noise detector for an `h x w` image with `block`-pixel blocks: input "image", output "prob".
pub fn build_noise(h: usize, w: usize, block: usize) -> Result<Graph> {
    if h == 0 || w == 0 {
        return Err(Error::invalid(format!("the noise map needs a non-empty image, got {h} x {w}")));
    }
    let mut b = GraphBuilder::new();
    let x = b.input("image", &[1, 3, h, w]);
    let prob = b.add("noise_map", NoiseMap { block }, &[x])?;
    b.output("prob", prob);
    Ok(b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Plan;
    use crate::ops::testing::{device, region_means};
    use crate::tensor::{check_close, Rng, Tensor};

    fn run(x: &Tensor, block: usize) -> Tensor {
        let (h, w) = (x.shape[2], x.shape[3]);
        let plan = Plan::new(device(), &build_noise(h, w, block).unwrap()).unwrap();
        plan.run(&[("image", x)]).unwrap().remove("prob").unwrap()
    }

    /// A smooth colour image with mild noise (sigma 2) and a 48 x 64 region with strong noise
    /// (sigma 8) added, not on the block grid.
    fn spliced(h: usize, w: usize, seed: u64) -> Tensor {
        let mut rng = Rng::new(seed);
        let mut gauss = move || {
            let (u1, u2) = (rng.next_f32().max(1e-7), rng.next_f32());
            (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        };
        let mut t = Tensor::zeros(&[1, 3, h, w]);
        for y in 0..h {
            for x in 0..w {
                let sigma = if (37..85).contains(&y) && (41..105).contains(&x) { 8.0 } else { 2.0 };
                for c in 0..3 {
                    let base = [40.0 + x as f32, 60.0 + y as f32, 200.0 - (x + y) as f32 * 0.5][c];
                    t.data[(c * h + y) * w + x] = (base + sigma * gauss()).clamp(0.0, 255.0);
                }
            }
        }
        t
    }

    #[test]
    fn gpu_graph_matches_cpu_composition() {
        let seed = Rng::fresh_seed();
        for (h, w, block) in [(61, 45, 16), (1, 1, 16), (9, 17, 4), (128, 100, 32)] {
            let x = spliced(h, w, seed);
            let want = build_noise(h, w, block).unwrap().run_reference(&[("image", &x)]).unwrap();
            check_close(
                &format!("noise model {h} x {w} block {block} seed {seed}"),
                &run(&x, block),
                &want["prob"],
                1e-4,
            )
            .unwrap();
        }
    }

    #[test]
    fn noisier_region_scores_higher() {
        let seed = Rng::fresh_seed();
        let (h, w) = (128, 160);
        let prob = run(&spliced(h, w, seed), DEFAULT_BLOCK);
        // Blocks wholly inside the region / wholly outside it (16-pixel grid).
        let (fg, bg) = region_means(&prob, [48..80, 48..96], [32..96, 32..112]);
        println!("seed {seed}: region {fg:.3}, background {bg:.3}");
        // Expected: sigma 8 vs a median of ~2 gives r = 3, p = 0.75; homogeneous blocks ~0.1.
        assert!(fg > 0.5 && fg > bg + 0.4, "seed {seed}: region {fg:.3} vs background {bg:.3}");
    }

    /// The graph on an image over the (shrunk) binding limit: the sigmas in 3 bands of 3 block
    /// rows (a short last one), the output in 3 runs; the map equals the whole-image run's.
    #[test]
    fn banded_graph_matches_the_whole_image() {
        use crate::ops::window::test_limit;
        let seed = Rng::fresh_seed();
        let (h, w) = (130, 90);
        let x = spliced(h, w, seed);
        let g = build_noise(h, w, DEFAULT_BLOCK).unwrap();
        let whole = Plan::new(device(), &g).unwrap().run(&[("image", &x)]).unwrap().remove("prob").unwrap();
        // 3 block rows of 16 x 90 pixels per window (plus the alignment): 9 block rows in 3 bands.
        let limit = crate::ops::ela::bands::testing::limit_for_room(3 * 16 * 90);
        let _limit = test_limit(limit);
        let p = Plan::new(device(), &g).unwrap();
        let room = limit - crate::ops::ela::bands::testing::align();
        assert_eq!(p.stats.dispatches, 3 + 1 + (h * w).div_ceil(room), "dispatches");
        let banded = p.run(&[("image", &x)]).unwrap().remove("prob").unwrap();
        assert_eq!(banded.data, whole.data, "seed {seed}");
        assert!(whole.data.iter().any(|&p| p > 0.5), "seed {seed}: the noisier region shows");
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(build_noise(0, 5, 16).is_err());
        assert!(build_noise(5, 5, 7).is_err());
    }
}
