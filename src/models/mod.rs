//! Graph builders for the forgery models, and a registry by name.
//!
//! Builders take official checkpoint key names through a [`WeightStore`] and return a static
//! [`Graph`]; ops and the planner know nothing about models.
//!
//! Learned: "mesorch", "mesorch_p". Training-free detectors (no weights; any weight store is
//! ignored; native resolution): "ela" (Error Level Analysis, JPEG re-save at quality 90) and
//! "noise" (noise-inconsistency map, 16-pixel blocks); see `docs/detectors.md`. All take input
//! "image" [1, 3, H, W] and give "prob" [1, 1, H, W] in [0, 1]; "ela" also gives "ela" [1, 3, H, W].

pub mod blocks;
pub mod ela;
pub mod mesorch;
pub mod noise;
pub mod weights;

pub use ela::build_ela;
pub use mesorch::{build_mesorch, MesorchConfig, MesorchOutputs, Variant};
pub use noise::build_noise;
pub use weights::WeightStore;

use crate::error::{Error, Result};
use crate::graph::Graph;

/// Names `build` accepts.
pub const MODELS: &[&str] = &["mesorch", "mesorch_p", "ela", "noise"];

/// A model's architecture, by family.
#[derive(Clone, Debug, PartialEq)]
// Configs are built once per model; the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ModelConfig {
    Mesorch(MesorchConfig),
    /// Error Level Analysis: input `[H, W]` and the JPEG re-save quality.
    Ela {
        input: [usize; 2],
        quality: u32,
    },
    /// Noise inconsistency: input `[H, W]` and the block side in pixels.
    Noise {
        input: [usize; 2],
        block: usize,
    },
}

impl ModelConfig {
    /// The official architecture of model `name` at its default input size.
    pub fn official(name: &str) -> Result<Self> {
        match name {
            "mesorch" => Ok(ModelConfig::Mesorch(MesorchConfig::full(Variant::Mesorch))),
            "mesorch_p" => Ok(ModelConfig::Mesorch(MesorchConfig::full(Variant::MesorchP))),
            "ela" => Ok(ModelConfig::Ela { input: [512, 512], quality: ela::DEFAULT_QUALITY }),
            "noise" => Ok(ModelConfig::Noise { input: [512, 512], block: noise::DEFAULT_BLOCK }),
            _ => Err(unknown(name)),
        }
    }

    /// The architecture of model `name` as the weights show it, for an input of `input` = [H, W].
    pub fn from_weights(name: &str, weights: &WeightStore, input: [usize; 2]) -> Result<Self> {
        match name {
            "mesorch" | "mesorch_p" => {
                let cfg = MesorchConfig::from_weights(weights, input)?;
                let want = if name == "mesorch" { Variant::Mesorch } else { Variant::MesorchP };
                if cfg.variant != want {
                    return Err(Error::invalid(format!("the weights are {:?}, not '{name}'", cfg.variant)));
                }
                Ok(ModelConfig::Mesorch(cfg))
            }
            "ela" => Ok(ModelConfig::Ela { input, quality: ela::DEFAULT_QUALITY }),
            "noise" => Ok(ModelConfig::Noise { input, block: noise::DEFAULT_BLOCK }),
            _ => Err(unknown(name)),
        }
    }
}

fn unknown(name: &str) -> Error {
    Error::invalid(format!("unknown model '{name}'; known: {}", MODELS.join(", ")))
}

/// Build model `name` with `cfg` and `weights`. The graph takes input "image" and gives "prob"
/// (plus the model's named intermediates).
pub fn build(name: &str, cfg: &ModelConfig, weights: &WeightStore) -> Result<Graph> {
    match (name, cfg) {
        ("mesorch" | "mesorch_p", ModelConfig::Mesorch(c)) => Ok(build_mesorch(c, weights)?.0),
        ("ela", &ModelConfig::Ela { input: [h, w], quality }) => build_ela(h, w, quality),
        ("noise", &ModelConfig::Noise { input: [h, w], block }) => build_noise(h, w, block),
        _ if !MODELS.contains(&name) => Err(unknown(name)),
        _ => Err(Error::invalid(format!("config {cfg:?} does not fit model '{name}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detectors_build_by_name_without_weights() {
        let none = WeightStore::new();
        for name in ["ela", "noise"] {
            let cfg = ModelConfig::from_weights(name, &none, [37, 29]).unwrap();
            let g = build(name, &cfg, &none).unwrap();
            assert!(g.outputs.iter().any(|(n, _)| n == "prob"), "{name}");
            assert!(build(name, &ModelConfig::official(name).unwrap(), &none).is_ok());
        }
        let mismatch = ModelConfig::official("noise").unwrap();
        assert!(build("ela", &mismatch, &none).is_err());
    }

    /// Wall time of the detectors at 512 x 512 and 1024 x 768 (median of 5 runs after a warm-up):
    /// `cargo test --release --lib models::tests::time_detectors -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn time_detectors() {
        use crate::graph::Plan;
        let gpu = crate::ops::testing::device();
        for (h, w) in [(512, 512), (768, 1024)] {
            let x = crate::tensor::Tensor::random(&[1, 3, h, w], 3, 0.0, 255.0);
            for (name, g) in [("ela", build_ela(h, w, 90).unwrap()), ("noise", build_noise(h, w, 16).unwrap())] {
                let plan = Plan::new(gpu, &g).unwrap();
                plan.run(&[("image", &x)]).unwrap();
                let mut times: Vec<f64> = (0..5)
                    .map(|_| {
                        let t = std::time::Instant::now();
                        plan.run(&[("image", &x)]).unwrap();
                        t.elapsed().as_secs_f64() * 1e3
                    })
                    .collect();
                times.sort_by(f64::total_cmp);
                let (_, prof) = plan.run_profiled(&[("image", &x)]).unwrap();
                let nodes: Vec<String> = prof.iter().map(|t| format!("{t:?}")).collect();
                println!("{name} {w}x{h}: median {:.1} ms (min {:.1}); {}", times[2], times[0], nodes.join("; "));
            }
        }
    }
}
