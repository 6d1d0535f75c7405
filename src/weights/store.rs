//! A name -> tensor store (f32 in memory) with safetensors reading and writing and the dtype
//! conversions the checkpoints need.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, ErrorKind, Result};
use crate::tensor::Tensor;
use crate::weights::pickle::StorageDType;

/// Largest safetensors file read (it is read whole): 8 GiB, 20 times the largest model we run.
pub const MAX_SAFETENSORS_BYTES: u64 = 8 << 30;
/// Why there is no option to raise [`MAX_SAFETENSORS_BYTES`], for its error.
pub const MAX_SAFETENSORS_NOTE: &str = "no model this engine runs needs more";

/// Element type written to a safetensors file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveDType {
    F32,
    F16,
}

impl SaveDType {
    pub fn parse(s: &str) -> Result<SaveDType> {
        match s {
            "f32" | "float32" => Ok(SaveDType::F32),
            "f16" | "float16" => Ok(SaveDType::F16),
            _ => Err(Error::invalid(format!("unknown dtype '{s}' (expected f32 or f16)"))),
        }
    }
}

/// Tensors by name (sorted), plus the string metadata of a safetensors file.
#[derive(Debug, Clone, Default)]
pub struct TensorStore {
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: BTreeMap<String, String>,
}

impl TensorStore {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn insert(&mut self, name: impl Into<String>, t: Tensor) {
        self.tensors.insert(name.into(), t);
    }
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }
    /// Tensors holding NaN or infinite values, one line each (name, counts, first bad index); with
    /// `dtype` F16 also finite values beyond float16's range (+-65504), which would be written as
    /// infinities. Empty when every value is fine.
    pub fn nonfinite(&self, dtype: SaveDType) -> Vec<String> {
        let f16_max = half::f16::MAX.to_f32();
        let mut out = Vec::new();
        let limit = if dtype == SaveDType::F16 { f16_max } else { f32::MAX };
        for (name, t) in &self.tensors {
            // A branch-free pass first (NaN fails the comparison): only a bad tensor is counted.
            if t.data.iter().fold(true, |ok, v| ok & (v.abs() <= limit)) {
                continue;
            }
            let (mut nan, mut inf, mut over, mut first, mut largest) = (0usize, 0usize, 0usize, None, 0.0f32);
            for (i, &v) in t.data.iter().enumerate() {
                let bad = if v.is_nan() {
                    nan += 1;
                    true
                } else if v.is_infinite() {
                    inf += 1;
                    true
                } else if dtype == SaveDType::F16 && v.abs() > f16_max {
                    over += 1;
                    largest = largest.max(v.abs());
                    true
                } else {
                    false
                };
                if bad && first.is_none() {
                    first = Some(i);
                }
            }
            if let Some(first) = first {
                let mut what = Vec::new();
                if nan > 0 {
                    what.push(format!("{nan} NaN"));
                }
                if inf > 0 {
                    what.push(format!("{inf} infinite"));
                }
                if over > 0 {
                    what.push(format!("{over} beyond float16's range (largest {largest:e})"));
                }
                out.push(format!("'{name}': {} of {} values (first at index {first})", what.join(", "), t.numel()));
            }
        }
        out
    }

    /// Total number of values over all tensors.
    pub fn params(&self) -> usize {
        self.tensors.values().map(|t| t.numel()).sum()
    }
    pub fn len(&self) -> usize {
        self.tensors.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Parse a safetensors file held in memory; F32/F16/BF16/F64 (and integer) tensors become f32.
    pub fn from_safetensors_bytes(bytes: &[u8]) -> Result<TensorStore> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| Error::invalid(format!("safetensors: {e}")))?;
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| Error::invalid(format!("safetensors: {e}")))?;
        let mut store = TensorStore::new();
        if let Some(m) = meta.metadata() {
            store.metadata = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
        for (name, view) in st.iter() {
            let dt = match view.dtype() {
                Dtype::F64 => StorageDType::F64,
                Dtype::F32 => StorageDType::F32,
                Dtype::F16 => StorageDType::F16,
                Dtype::BF16 => StorageDType::BF16,
                Dtype::I64 => StorageDType::I64,
                Dtype::I32 => StorageDType::I32,
                Dtype::I16 => StorageDType::I16,
                Dtype::I8 => StorageDType::I8,
                Dtype::U8 => StorageDType::U8,
                Dtype::BOOL => StorageDType::Bool,
                other => {
                    return Err(Error::invalid(format!("safetensors: tensor '{name}' has unsupported dtype {other:?}")))
                }
            };
            let data = decode(view.data(), dt);
            store.insert(name, Tensor::new(view.shape(), data)?);
        }
        Ok(store)
    }

    pub fn read_safetensors(path: &Path) -> Result<TensorStore> {
        let bytes = crate::fileio::read_regular(path, MAX_SAFETENSORS_BYTES, "weights", MAX_SAFETENSORS_NOTE)?;
        Self::from_safetensors_bytes(&bytes).map_err(|e| e.context(path.display()))
    }

    /// Serialize to safetensors bytes (tests and small files).
    pub fn to_safetensors_bytes(&self, dtype: SaveDType) -> Result<Vec<u8>> {
        let bufs = self.encoded(dtype);
        let views = self.views(&bufs, dtype)?;
        safetensors::serialize(views, Some(self.meta_map())).map_err(|e| Error::invalid(format!("safetensors: {e}")))
    }

    /// Write atomically ([`crate::fileio::write_atomic_with`]): a temporary file next to `path`,
    /// flushed, then renamed over it; stale temporary files of dead processes there are removed.
    pub fn write_safetensors(&self, path: &Path, dtype: SaveDType) -> Result<()> {
        let bufs = self.encoded(dtype);
        let views = self.views(&bufs, dtype)?;
        crate::fileio::remove_stale_temps(
            path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")),
        );
        crate::fileio::write_atomic_with(path, |tmp| {
            safetensors::serialize_to_file(views, Some(self.meta_map()), tmp)
                .map_err(|e| Error::new(ErrorKind::Io, format!("{}: writing safetensors: {e}", path.display())))?;
            // The crate creates its file owner-only (0600); a converted checkpoint is an ordinary
            // file that others on the machine may read, as `cp` or a download would leave it.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o644))
                    .map_err(|e| Error::new(ErrorKind::Io, format!("{}: setting permissions: {e}", path.display())))?;
            }
            Ok(())
        })
    }

    fn meta_map(&self) -> HashMap<String, String> {
        self.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
    /// Bytes per tensor for the f16 case (f32 is borrowed straight from the tensors).
    fn encoded(&self, dtype: SaveDType) -> Vec<Vec<u8>> {
        match dtype {
            SaveDType::F32 => Vec::new(),
            SaveDType::F16 => self
                .tensors
                .values()
                .map(|t| t.data.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect())
                .collect(),
        }
    }
    fn views<'a>(
        &'a self,
        bufs: &'a [Vec<u8>],
        dtype: SaveDType,
    ) -> Result<Vec<(&'a str, safetensors::tensor::TensorView<'a>)>> {
        self.tensors
            .iter()
            .enumerate()
            .map(|(i, (name, t))| {
                let (dt, data): (Dtype, &[u8]) = match dtype {
                    SaveDType::F32 => (Dtype::F32, bytemuck::cast_slice(&t.data)),
                    SaveDType::F16 => (Dtype::F16, &bufs[i]),
                };
                let v = safetensors::tensor::TensorView::new(dt, t.shape.clone(), data)
                    .map_err(|e| Error::invalid(format!("safetensors: tensor '{name}': {e}")))?;
                Ok((name.as_str(), v))
            })
            .collect()
    }
}

pub(crate) fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("{}: {e}", path.display()))
}

/// Little-endian element `i` of `bytes` as f32.
#[inline]
pub fn element(bytes: &[u8], dt: StorageDType, i: usize) -> f32 {
    let s = dt.size();
    let b = &bytes[i * s..i * s + s];
    match dt {
        StorageDType::F64 => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32,
        StorageDType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        StorageDType::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
        StorageDType::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        StorageDType::I64 => i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32,
        StorageDType::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
        StorageDType::I16 => i16::from_le_bytes([b[0], b[1]]) as f32,
        StorageDType::I8 => b[0] as i8 as f32,
        StorageDType::U8 => b[0] as f32,
        StorageDType::Bool => (b[0] != 0) as u8 as f32,
    }
}

/// A whole little-endian buffer as f32. The float types go through fixed-size chunks (no
/// per-element dispatch or bounds check: a model's 250 MB of f32 weights decode at copy speed).
pub fn decode(bytes: &[u8], dt: StorageDType) -> Vec<f32> {
    match dt {
        StorageDType::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        StorageDType::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        StorageDType::BF16 => bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        _ => (0..bytes.len() / dt.size()).map(|i| element(bytes, dt, i)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_round_trip_f32_and_f16() {
        let mut s = TensorStore::new();
        s.insert("a.weight", Tensor::new(&[2, 3], vec![1.0, -2.5, 3.25, 0.0, 1e-3, 7.0]).unwrap());
        s.insert("b", Tensor::new(&[1], vec![0.5]).unwrap());
        s.metadata.insert("arch".into(), "mesorch".into());
        let back = TensorStore::from_safetensors_bytes(&s.to_safetensors_bytes(SaveDType::F32).unwrap()).unwrap();
        assert_eq!(back.tensors, s.tensors);
        assert_eq!(back.metadata.get("arch").map(String::as_str), Some("mesorch"));
        let h = TensorStore::from_safetensors_bytes(&s.to_safetensors_bytes(SaveDType::F16).unwrap()).unwrap();
        let t = h.get("a.weight").unwrap();
        assert_eq!(t.shape, vec![2, 3]);
        for (a, b) in t.data.iter().zip(&s.get("a.weight").unwrap().data) {
            assert!((a - b).abs() <= 1e-3 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn decodes_half_types() {
        let f = half::f16::from_f32(1.5).to_le_bytes();
        let b = half::bf16::from_f32(-2.0).to_le_bytes();
        assert_eq!(decode(&f, StorageDType::F16), vec![1.5]);
        assert_eq!(decode(&b, StorageDType::BF16), vec![-2.0]);
    }

    /// Bad tensors are named with their counts and first index; fine ones (including f16's
    /// largest finite value for an f16 target) are not.
    #[test]
    fn nonfinite_names_bad_tensors() {
        let mut s = TensorStore::new();
        s.insert("ok", Tensor::new(&[3], vec![1.0, -65504.0, 0.0]).unwrap());
        s.insert("nan", Tensor::new(&[3], vec![1.0, f32::NAN, f32::NAN]).unwrap());
        s.insert("inf", Tensor::new(&[2], vec![f32::NEG_INFINITY, 2.0]).unwrap());
        s.insert("big", Tensor::new(&[2], vec![3.0, 1e5]).unwrap());
        let f32_bad = s.nonfinite(SaveDType::F32);
        assert_eq!(f32_bad.len(), 2, "{f32_bad:?}");
        assert!(f32_bad.iter().any(|l| l.starts_with("'nan': 2 NaN of 3 values (first at index 1)")), "{f32_bad:?}");
        assert!(
            f32_bad.iter().any(|l| l.starts_with("'inf': 1 infinite of 2 values (first at index 0)")),
            "{f32_bad:?}"
        );
        let f16_bad = s.nonfinite(SaveDType::F16);
        assert_eq!(f16_bad.len(), 3, "{f16_bad:?}");
        assert!(f16_bad.iter().any(|l| l.starts_with("'big': 1 beyond float16's range")), "{f16_bad:?}");
    }

    /// The chunked paths give what the per-element decoder gives, bit for bit (NaN payloads
    /// included), on random bytes of every type, with a trailing partial element ignored.
    #[test]
    fn decode_matches_element_by_element() {
        use StorageDType::*;
        let mut state = crate::tensor::Rng::fresh_seed() | 1;
        let bytes: Vec<u8> = (0..8 * 37 + 3)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        for dt in [F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool] {
            let want: Vec<u32> = (0..bytes.len() / dt.size()).map(|i| element(&bytes, dt, i).to_bits()).collect();
            let got: Vec<u32> = decode(&bytes, dt).iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want, "{dt:?}");
        }
    }

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("forge-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.safetensors");
        let mut s = TensorStore::new();
        s.insert("x", Tensor::new(&[2], vec![1.0, 2.0]).unwrap());
        s.write_safetensors(&path, SaveDType::F32).unwrap();
        let back = TensorStore::read_safetensors(&path).unwrap();
        assert_eq!(back.get("x").unwrap().data, vec![1.0, 2.0]);
        let names = || -> Vec<_> { std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect() };
        assert_eq!(names().len(), 1, "{:?}", names());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644, "a converted file is readable by others, as any ordinary file: {mode:o}");
        }
        // The target is a folder: an error naming it, the folder intact, no temporary file left;
        // and a second write over the good file that fails keeps the old one.
        let folder = dir.join("f.safetensors");
        std::fs::create_dir(&folder).unwrap();
        let e = s.write_safetensors(&folder, SaveDType::F16).unwrap_err();
        assert!(e.message.contains("f.safetensors"), "{e}");
        assert!(folder.is_dir());
        assert_eq!(names().len(), 2, "{:?}", names());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
