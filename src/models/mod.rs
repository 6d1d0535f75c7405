//! Graph builders for the forgery models, and a registry by name.
//!
//! Builders take official checkpoint key names through a [`WeightStore`] and return a static
//! [`Graph`]; ops and the planner know nothing about models.

pub mod blocks;
pub mod mesorch;
pub mod weights;

pub use mesorch::{build_mesorch, MesorchConfig, MesorchOutputs, Variant};
pub use weights::WeightStore;

use crate::error::{Error, Result};
use crate::graph::Graph;

/// Names `build` accepts.
pub const MODELS: &[&str] = &["mesorch", "mesorch_p"];

/// A model's architecture, by family.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelConfig {
    Mesorch(MesorchConfig),
}

impl ModelConfig {
    /// The official architecture of model `name` at its default input size.
    pub fn official(name: &str) -> Result<Self> {
        match name {
            "mesorch" => Ok(ModelConfig::Mesorch(MesorchConfig::full(Variant::Mesorch))),
            "mesorch_p" => Ok(ModelConfig::Mesorch(MesorchConfig::full(Variant::MesorchP))),
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
        _ if !MODELS.contains(&name) => Err(unknown(name)),
        _ => Err(Error::invalid(format!("config {cfg:?} does not fit model '{name}'"))),
    }
}
