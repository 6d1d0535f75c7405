//! The models: one file each, each implementing [`Family`] and [`Model`] ([`model`]), and the
//! registry that is the only list of them.
//!
//! Builders take official checkpoint key names through a scoped view of a [`WeightStore`] and
//! return a static [`Graph`](crate::graph::Graph); ops and the planner know nothing about models,
//! and the pipeline and the command-line tool know models only through this registry.
//! docs/models-guide.md shows how to add one.

pub mod blocks;
pub mod copymove;
pub mod ela;
pub mod hifi;
pub mod mesorch;
pub mod model;
pub mod noise;
pub mod pmsp;
pub mod u2net_mst;
pub mod weights;

pub use ela::build_ela;
pub use mesorch::{build_mesorch, MesorchConfig, MesorchOutputs, Variant};
pub use model::{ClonePair, Family, Findings, GraphModel, InputMode, MapKind, MapRef, Model, Scale};
pub use noise::build_noise;
pub use weights::{WeightStore, Weights};

use crate::error::{Error, Result};

/// Every model, by name. The default (no --weights, no --model) is not a family but the shipped
/// weights, `cli::infer::SHIPPED_WEIGHTS`.
pub static REGISTRY: &[&dyn Family] = &[
    &mesorch::MESORCH,
    &mesorch::MESORCH_P,
    &pmsp::PMSP,
    &u2net_mst::U2NET_MST,
    &hifi::HIFI,
    &ela::ELA,
    &noise::NOISE,
    &copymove::COPYMOVE,
];

/// The family called `name` (or one of its aliases).
pub fn family(name: &str) -> Result<&'static dyn Family> {
    REGISTRY.iter().copied().find(|f| f.name() == name || f.aliases().contains(&name)).ok_or_else(|| {
        let known: Vec<&str> = REGISTRY.iter().map(|f| f.name()).collect();
        Error::invalid(format!("unknown model '{name}'; known: {}", known.join(", ")))
    })
}

/// The family whose checkpoints have these keys (for `convert` without `--arch`).
pub fn recognise<'k>(keys: impl Iterator<Item = &'k str> + Clone) -> Result<&'static dyn Family> {
    let has_prefix = |p: &str| keys.clone().any(|k| k.starts_with(p));
    let found: Vec<&'static dyn Family> = REGISTRY.iter().copied().filter(|f| f.recognises(&has_prefix)).collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => {
            let sample: Vec<&str> = keys.take(5).collect();
            Err(Error::invalid(format!(
                "cannot tell which model these weights are for (first keys: {}); name the model with --arch",
                sample.join(", ")
            )))
        }
        many => Err(Error::invalid(format!(
            "the keys fit several models ({}); name the model with --arch",
            many.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_finds_models_by_name_and_alias_only() {
        for f in REGISTRY {
            assert_eq!(family(f.name()).unwrap().name(), f.name());
            for a in f.aliases() {
                assert_eq!(family(a).unwrap().name(), f.name());
            }
        }
        let names: std::collections::HashSet<&str> =
            REGISTRY.iter().flat_map(|f| std::iter::once(f.name()).chain(f.aliases().iter().copied())).collect();
        assert_eq!(names.len(), REGISTRY.iter().map(|f| 1 + f.aliases().len()).sum::<usize>(), "names are unique");
        let e = family("nope").unwrap_err().message;
        assert!(e.contains("'nope'") && e.contains("mesorch") && e.contains("noise"), "{e}");
    }

    /// Every family's verdict is calibrated (docs/report.md, "Scores and verdicts"): the
    /// training-free ones outright, a learned one for each weight file shipped in weights/ with
    /// its `arch` (and for those weights, by sha256); thresholds are ordered and set for <= 5%
    /// false alarms on a named number of pristine photos. A new family gets its entry from
    /// `tools/calibrate.py` (one `Family::calibration`, or the metadata `calibration` of its weights).
    #[test]
    fn every_family_is_calibrated_for_what_it_ships() {
        let mut shipped = std::collections::HashMap::new();
        for e in std::fs::read_dir("weights").unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == "safetensors") {
                let bytes = std::fs::read(&path).unwrap();
                let store = crate::weights::TensorStore::from_safetensors_bytes(&bytes).unwrap();
                let arch = store.metadata.get("arch").cloned().unwrap();
                shipped.insert(arch, (path, crate::weights::sha256_hex(&bytes)));
            }
        }
        assert!(shipped.contains_key("pmsp"), "{shipped:?}");
        for f in REGISTRY {
            let c = f.calibration();
            assert!(c.clean <= c.tampered, "{}: {c:?}", f.name());
            let must = !f.needs_weights() || shipped.contains_key(f.name());
            if !must {
                assert!(!c.is_calibrated() && c.weights_sha256.is_none(), "{}: nothing to calibrate it with", f.name());
                continue;
            }
            assert!(c.is_calibrated(), "{}: no calibration (run tools/calibrate.py)", f.name());
            assert!(c.measured_false_alarm.unwrap() <= c.target_false_alarm.unwrap(), "{}: {c:?}", f.name());
            assert!(c.pristine_images >= 100, "{}: {c:?}", f.name());
            if let Some((path, sha)) = shipped.get(f.name()) {
                assert_eq!(c.weights_sha256.as_ref(), Some(sha), "{}: measured with {}", f.name(), path.display());
            }
        }
    }

    /// Training-free detectors build at any size without weights; their graphs give "prob".
    #[test]
    fn detectors_build_by_name_without_weights() {
        let none = WeightStore::new();
        for f in REGISTRY.iter().filter(|f| !f.needs_weights()) {
            let m = f.configure(&none).unwrap();
            assert_eq!(m.input(), InputMode::Native, "{}", f.name());
            for hw in [[37, 29], [1, 1]] {
                let g = m.build(hw, &none).unwrap();
                assert!(g.outputs.iter().any(|(n, _)| n == "prob"), "{}", f.name());
            }
            assert!(m.build([0, 5], &none).is_err(), "{}", f.name());
        }
    }

    /// Wall time of the detectors at 512 x 512, 1024 x 768 and 4032 x 3024 (median of 5 runs after
    /// a warm-up; set FORGE_TIME_ONLY=copymove to time one detector):
    /// `cargo test --release --lib models::tests::time_detectors -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn time_detectors() {
        use crate::graph::Plan;
        let gpu = crate::ops::testing::device();
        for (h, w) in [(512, 512), (768, 1024), (3024, 4032)] {
            let x = crate::tensor::Tensor::random(&[1, 3, h, w], 3, 0.0, 255.0);
            let cm = copymove::CopyMoveConfig::default();
            let graphs = [
                ("ela", build_ela(h, w, 90).unwrap()),
                ("noise", build_noise(h, w, 16).unwrap()),
                ("copymove", copymove::build_copymove(h, w, &cm).unwrap()),
            ];
            for (name, g) in graphs {
                if std::env::var("FORGE_TIME_ONLY").is_ok_and(|o| o != name) {
                    continue;
                }
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
