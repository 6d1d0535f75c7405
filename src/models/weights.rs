//! Named weights for the model builders: official state_dict key names -> f32 host tensors.
//!
//! Read from a safetensors file (f32; f16, bf16, f64 and integer tensors are converted to f32), or
//! synthesized on demand (random weights of whatever shape a builder asks for, for smoke tests and
//! benches). Builders walk the key tree through a scoped view, [`Weights`]: `w.pp("stages").pp(2)`
//! is `stages.2.`, and `.take("weight", shape)` reads `stages.2.weight`, which must have that
//! shape; a missing key or a shape mismatch is an error that names the key. Keys no builder asked
//! for are listed by [`WeightStore::unused_keys`] (extra keys in official checkpoints are ignored,
//! never an error), and every key taken, with its shape, by [`WeightStore::taken`].

use std::cell::RefCell;
use std::collections::BTreeMap;
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
    /// Every key taken, with the shape asked for.
    used: RefCell<BTreeMap<String, Vec<usize>>>,
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

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The root of the key tree, for builders.
    pub fn root(&self) -> Weights<'_> {
        Weights { store: self, prefix: String::new() }
    }

    /// Split into the tensors and the metadata (for `convert`, which checks and keeps them).
    pub fn into_store(self) -> TensorStore {
        TensorStore { tensors: self.tensors, metadata: self.metadata }
    }

    /// A copy of weight `name`, which must have shape `shape`.
    pub fn take(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.used.borrow_mut().insert(name.to_string(), shape.to_vec());
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
        self.tensors.keys().filter(|k| !used.contains_key(*k)).cloned().collect()
    }

    /// Every key taken so far with the shape it was asked for (sorted by key).
    pub fn taken(&self) -> Vec<(String, Vec<usize>)> {
        self.used.borrow().iter().map(|(k, s)| (k.clone(), s.clone())).collect()
    }
}

/// Test support shared by the models' key tests.
#[cfg(test)]
impl WeightStore {
    /// Panics unless the keys taken so far (a builder ran on [`WeightStore::synthetic`]) are
    /// exactly `want`, the list the model declares for `convert`, naming what differs.
    pub fn assert_took_exactly(&self, want: &[(String, Vec<usize>)], what: &str) {
        let mut want = want.to_vec();
        want.sort();
        let taken = self.taken();
        if taken != want {
            let extra: Vec<_> = taken.iter().filter(|k| !want.contains(k)).collect();
            let missing: Vec<_> = want.iter().filter(|k| !taken.contains(k)).collect();
            panic!("{what}: taken, not listed: {extra:?}; listed, not taken: {missing:?}");
        }
    }

    /// A store holding zeros under every key of `keys`, with the metadata `config` and
    /// `input_size` a converted file carries.
    pub fn zeros_with(keys: &[(String, Vec<usize>)], config: String, input_size: &str) -> WeightStore {
        let mut store = WeightStore::new();
        for (k, s) in keys {
            store.insert(k, Tensor::zeros(s));
        }
        store.metadata.insert("config".into(), config);
        store.metadata.insert("input_size".into(), input_size.into());
        store
    }
}

/// A view of a [`WeightStore`] under a key prefix. Its [`Weights::path`] is also the name builders
/// give the graph nodes that use these weights, so node names and checkpoint keys agree.
#[derive(Clone)]
pub struct Weights<'a> {
    store: &'a WeightStore,
    prefix: String,
}

impl<'a> Weights<'a> {
    /// The view one level down: `pp("blocks").pp(3)` is `<prefix>.blocks.3`.
    pub fn pp(&self, part: impl std::fmt::Display) -> Weights<'a> {
        let prefix = if self.prefix.is_empty() { part.to_string() } else { format!("{}.{part}", self.prefix) };
        Weights { store: self.store, prefix }
    }

    /// The prefix, without a trailing dot (`convnext.stages.2`).
    pub fn path(&self) -> &str {
        &self.prefix
    }

    /// The full key of `name` under this view.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// A copy of `<prefix>.<name>`, which must have shape `shape`.
    pub fn take(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.store.take(&self.key(name), shape)
    }

    /// `<prefix>.weight`.
    pub fn weight(&self, shape: &[usize]) -> Result<Tensor> {
        self.take("weight", shape)
    }

    /// `<prefix>.bias`.
    pub fn bias(&self, shape: &[usize]) -> Result<Tensor> {
        self.take("bias", shape)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.store.contains(&self.key(name))
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
