//! Reading the golden fixtures of `tests/fixtures/eval/` (made by `tools/make_eval_fixtures.py`
//! with OpenCV, scikit-learn and brute force) in the unit tests of `metrics`, `perturb`, `pairs`.

use std::path::{Path, PathBuf};

/// `tests/fixtures/eval`.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval")
}

/// `manifest.json`, parsed.
pub fn manifest() -> serde_json::Value {
    let path = dir().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One line naming the tools and versions that made the fixtures, for test output.
pub fn made_with(m: &serde_json::Value) -> String {
    format!("tests/fixtures/eval made by {} with {}", m["made_by"], m["versions"])
}

/// A fixture file by its path relative to `tests/fixtures/eval`.
pub fn read(rel: &str) -> Vec<u8> {
    let path = dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixtures' counter-based byte generator (`gen_bytes` of tools/make_resize_fixtures.py).
pub fn gen_bytes(seed: u64, n: usize) -> Vec<u8> {
    (0..n as u64)
        .map(|i| {
            let mut x = (seed << 40) ^ i;
            x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            x ^= x >> 29;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x ^= x >> 32;
            (x >> 24) as u8
        })
        .collect()
}

/// 64-bit FNV-1a.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01B3))
}

/// How `got` (rows of `row_len` bytes) compares with a `full` or `rowhash` fixture file; None when
/// equal, else a description: differing bytes and the largest difference, or differing rows.
pub fn compare(kind: &str, got: &[u8], want: &[u8], row_len: usize) -> Option<String> {
    match kind {
        "full" => {
            if want.len() != got.len() {
                return Some(format!("{} bytes, the fixture has {}", got.len(), want.len()));
            }
            let differ = got.iter().zip(want).filter(|(a, b)| a != b).count();
            let max = got.iter().zip(want).map(|(&a, &b)| (a as i32 - b as i32).abs()).max().unwrap_or(0);
            let first = got.iter().zip(want).position(|(a, b)| a != b);
            (differ > 0).then(|| {
                let at = first.unwrap();
                format!(
                    "{differ} of {} bytes differ ({:.4}%), max |diff| {max}; first at byte {at} (row {}): ours {}, fixture {}",
                    got.len(),
                    100.0 * differ as f64 / got.len() as f64,
                    at / row_len.max(1),
                    got[at],
                    want[at]
                )
            })
        }
        "rowhash" => {
            let rows = got.len() / row_len.max(1);
            if want.len() != rows * 8 {
                return Some(format!("{rows} rows, the fixture has {} row hashes", want.len() / 8));
            }
            let bad: Vec<usize> = got
                .chunks_exact(row_len)
                .zip(want.chunks_exact(8))
                .enumerate()
                .filter(|(_, (r, h))| fnv1a64(r) != u64::from_le_bytes((*h).try_into().unwrap()))
                .map(|(i, _)| i)
                .collect();
            (!bad.is_empty()).then(|| format!("{} of {rows} rows differ (first: row {})", bad.len(), bad[0]))
        }
        k => panic!("unknown fixture kind {k}"),
    }
}
