//! Named weights for the model builders: official state_dict key names -> f32 host tensors.
//!
//! Read from a safetensors file (f32; f16, bf16, f64 and integer tensors are converted to f32), or
//! synthesized on demand (random weights of whatever shape a builder asks for, for smoke tests and
//! benches). Builders call [`WeightStore::take`] with the shape they expect; a missing key or a
//! shape mismatch is an error that names the key. Keys no builder asked for are listed by
//! [`WeightStore::unused_keys`] (extra keys in official checkpoints are ignored, never an error).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::{Error, Result};
use crate::tensor::{numel, Rng, Tensor};
use crate::weights::store::TensorStore;

#[derive(Debug, Default)]
pub struct WeightStore {
    tensors: BTreeMap<String, Tensor>,
    /// The file's string metadata (`convert` writes arch, config, input size, source hash).
    pub metadata: BTreeMap<String, String>,
    /// Some(seed): fabricate any tensor that is asked for and absent.
    synthetic: Option<u64>,
    used: RefCell<BTreeSet<String>>,
}

impl WeightStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse safetensors bytes; every tensor becomes f32 (decoding shared with `weights::store`).
    pub fn from_safetensors_bytes(bytes: &[u8]) -> Result<Self> {
        Ok(Self::from_store(TensorStore::from_safetensors_bytes(bytes)?))
    }

    pub fn from_safetensors(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::from_store(TensorStore::read_safetensors(path.as_ref())?))
    }

    /// Weights from a converted store (e.g. the output of `wgpu-forge convert`).
    pub fn from_store(store: TensorStore) -> Self {
        WeightStore { tensors: store.tensors, metadata: store.metadata, ..Self::default() }
    }

    /// A store that fabricates a seeded random tensor for every key it is asked for: weights
    /// ~ U(-1, 1) / sqrt(fan in), biases ~ 0.1 U(-1, 1), norm scales ~ 1 + 0.1 U(-1, 1), `gamma` ~ 0.5.
    pub fn synthetic(seed: u64) -> Self {
        WeightStore { synthetic: Some(seed), ..Self::default() }
    }

    pub fn insert(&mut self, name: &str, t: Tensor) {
        self.tensors.insert(name.to_string(), t);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// Name -> shape of every tensor held.
    pub fn shapes(&self) -> BTreeMap<&str, &[usize]> {
        self.tensors.iter().map(|(k, t)| (k.as_str(), t.shape.as_slice())).collect()
    }

    /// What the shapes cannot tell (MiT heads, training input size), from the metadata.
    pub fn hints(&self) -> crate::weights::ConfigHints {
        crate::weights::ConfigHints::from_metadata(&self.metadata)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// A copy of weight `name`, which must have shape `shape`.
    pub fn take(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.used.borrow_mut().insert(name.to_string());
        match self.tensors.get(name) {
            Some(t) if t.shape == shape => Ok(t.clone()),
            Some(t) => Err(Error::invalid(format!("weight '{name}' has shape {:?}, expected {shape:?}", t.shape))),
            None => match self.synthetic {
                Some(seed) => Ok(fabricate(name, shape, seed)),
                None => Err(Error::invalid(format!("missing weight '{name}' (expected shape {shape:?})"))),
            },
        }
    }

    /// Keys present in the store that no `take` asked for (sorted).
    pub fn unused_keys(&self) -> Vec<String> {
        let used = self.used.borrow();
        self.tensors.keys().filter(|k| !used.contains(*k)).cloned().collect()
    }
}

fn fabricate(name: &str, shape: &[usize], seed: u64) -> Tensor {
    // FNV-1a of the name, so every key gets its own stream whatever the order of requests.
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, c| (h ^ c as u64).wrapping_mul(0x100_0000_01b3));
    let mut rng = Rng::new(seed ^ h);
    let mut u = move || 2.0 * rng.next_f32() - 1.0;
    let n = numel(shape);
    let data: Vec<f32> = if name.ends_with("gamma") {
        (0..n).map(|_| 0.5 + 0.1 * u()).collect()
    } else if shape.len() == 1 && name.ends_with(".weight") {
        (0..n).map(|_| 1.0 + 0.1 * u()).collect()
    } else if shape.len() == 1 {
        (0..n).map(|_| 0.1 * u()).collect()
    } else {
        let fan_in: usize = shape[1..].iter().product::<usize>().max(1);
        let s = (3.0 / fan_in as f32).sqrt();
        (0..n).map(|_| s * u()).collect()
    };
    Tensor { shape: shape.to_vec(), data }
}
