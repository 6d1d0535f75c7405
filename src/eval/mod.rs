//! Evaluation against ground-truth masks: pairing images with masks, the benchmark's metrics,
//! the robustness protocol's perturbations, and the robustness plot.

pub mod metrics;
pub mod pairs;
pub mod perturb;
pub mod plot;

#[cfg(test)]
mod fixtures;
