//! `convert` end to end: torch zip -> checked safetensors, through the library and the binary.

use std::path::PathBuf;
use std::process::Command;

use wgpu_forge::cli::convert::{convert_with, Options};
use wgpu_forge::models::mesorch::{expected_keys, MesorchConfig, MesorchModel, Variant, MESORCH, MESORCH_P};
use wgpu_forge::weights::testkit::{
    hostile_pickles, shared_storage_checkpoint, shared_storage_checkpoint_with, shared_storage_expected, storage_value,
    tiny_checkpoint, torch_zip,
};
use wgpu_forge::weights::{SaveDType, TensorStore};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("forge-convert-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn small_cfg(v: Variant) -> MesorchConfig {
    MesorchConfig {
        cnx_dims: [4, 8, 16, 32],
        cnx_depths: [1, 1, 2, 1],
        mit_dims: [4, 8, 12, 16],
        mit_depths: [1, 1, 2, 1],
        mit_heads: [1, 1, 1, 1],
        gate_dim: 8,
        gate_hidden: 16,
        ..MesorchConfig::full(v)
    }
}

/// Options converting with this configuration (instead of the one read off the shapes).
fn with_cfg(cfg: &MesorchConfig) -> Options {
    Options { model: Some(Box::new(MesorchModel { cfg: cfg.clone(), opts: Default::default() })), ..Options::default() }
}

#[test]
fn converts_small_mesorch_and_round_trips() {
    let dir = tmpdir("small");
    let cfg = small_cfg(Variant::Mesorch);
    let mut keys = expected_keys(&cfg);
    keys.push(("convnext.head.fc.weight".into(), vec![3, 32]));
    let src = dir.join("mesorch-98.pth");
    std::fs::write(&src, shared_storage_checkpoint(&keys, "HalfStorage")).unwrap();
    let dst = dir.join("m.safetensors");
    // No config given: the converter reads it off the shapes.
    let s = convert_with(&src, &dst, Options::default()).unwrap();
    assert_eq!(s.model, "mesorch");
    assert_eq!(s.tensors, keys.len() - 1);
    assert_eq!(s.dropped, vec!["convnext.head.fc.weight".to_string()]);
    assert_eq!(s.sha256.len(), 64);
    let out = TensorStore::read_safetensors(&dst).unwrap();
    assert_eq!(out.metadata.get("arch").map(String::as_str), Some("mesorch"));
    assert_eq!(out.metadata.get("source_sha256"), Some(&s.sha256));
    assert_eq!(out.metadata.get("config"), Some(&cfg.to_json()), "config inferred from the shapes");
    assert!(out.metadata.get("converter").unwrap().starts_with("wgpu-forge "));
    for (i, (name, shape)) in keys.iter().enumerate().take(keys.len() - 1) {
        let t = out.get(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(&t.shape, shape, "{name}");
        for (f, v) in t.data.iter().enumerate() {
            assert_eq!(*v, shared_storage_expected(i, shape, f), "{name}[{f}]");
        }
    }
    // The safetensors output is itself a valid input; f16 output halves the size.
    let again = dir.join("again.safetensors");
    convert_with(&dst, &again, Options { family: Some(&MESORCH), dtype: SaveDType::F16, ..Options::default() })
        .unwrap();
    let back = TensorStore::read_safetensors(&again).unwrap();
    assert_eq!(back.tensors, out.tensors, "values are exact in f16 by construction");
    assert!(std::fs::metadata(&again).unwrap().len() < std::fs::metadata(&dst).unwrap().len());
    // Forcing Mesorch-P on a Mesorch checkpoint works (its keys are a subset): the gate and
    // stage 3 are dropped and every kept tensor is the source's.
    let p_cfg = small_cfg(Variant::MesorchP);
    let p_dst = dir.join("p.safetensors");
    let opts = Options { family: Some(&MESORCH_P), ..with_cfg(&p_cfg) };
    let s = convert_with(&src, &p_dst, opts).unwrap();
    let p_keys = expected_keys(&p_cfg);
    assert_eq!((s.model, s.tensors), ("mesorch_p", p_keys.len()));
    let p_out = TensorStore::read_safetensors(&p_dst).unwrap();
    assert_eq!(p_out.metadata.get("arch").map(String::as_str), Some("mesorch_p"));
    assert_eq!(p_out.len(), p_keys.len());
    for (name, shape) in &p_keys {
        let t = p_out.get(name).unwrap_or_else(|| panic!("{name} missing from the Mesorch-P output"));
        assert_eq!(&t.shape, shape, "{name}");
        assert_eq!(t.data, out.get(name).unwrap().data, "{name}");
    }
    assert!(s.dropped.iter().any(|k| k.starts_with("convnext.stages.3.")), "{:?}", s.dropped);
    let mut short = keys.clone();
    short.retain(|(k, _)| k != "segformer.norm4.bias");
    std::fs::write(&src, shared_storage_checkpoint(&short, "FloatStorage")).unwrap();
    let e = convert_with(&src, &dir.join("x.safetensors"), with_cfg(&cfg)).unwrap_err();
    assert!(e.message.contains("segformer.norm4.bias") && e.message.contains("mesorch-98.pth"), "{}", e.message);
    assert!(!dir.join("x.safetensors").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wgpu-forge"))
}

#[test]
fn cli_errors_name_the_file_and_exit_1() {
    let dir = tmpdir("cli-err");
    let src = dir.join("tiny.pth");
    std::fs::write(&src, tiny_checkpoint(false)).unwrap();
    let o = bin().arg("convert").arg(&src).arg(dir.join("o.safetensors")).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("tiny.pth") && err.contains("which model") && err.contains("--arch"), "{err}");
    let o = bin().arg("convert").arg(dir.join("nope.pth")).arg(dir.join("o.safetensors")).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope.pth"));
    std::fs::write(&src, b"garbage that is not a checkpoint").unwrap();
    let o = bin().arg("convert").arg(&src).arg(dir.join("o.safetensors")).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(!dir.join("o.safetensors").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cli_converts_full_size_mesorch_p() {
    // Every Mesorch-P key at full size, all viewing one shared f16 storage (2 MB on disk).
    let dir = tmpdir("cli-p");
    let mut keys = expected_keys(&MesorchConfig::full(Variant::MesorchP));
    keys.push(("convnext.stages.3.blocks.0.gamma".into(), vec![768]));
    let src = dir.join("mesorch_p-118.pth");
    std::fs::write(&src, shared_storage_checkpoint(&keys, "HalfStorage")).unwrap();
    let dst = dir.join("p.safetensors");
    let o = bin().args(["convert", "--dtype", "f16"]).arg(&src).arg(&dst).output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("arch:    mesorch_p"), "{out}");
    assert!(out.contains("tensors: 743") && out.contains("params:  62235365"), "{out}");
    assert!(err.contains("convnext.stages.3.blocks.0.gamma"), "{err}");
    let st = TensorStore::read_safetensors(&dst).unwrap();
    assert_eq!((st.len(), st.params()), (743, 62_235_365));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The config of the tiny fixtures written by tools/make_mesorch_fixtures.py (see its JSON files).
fn fixture_cfg(v: Variant) -> MesorchConfig {
    MesorchConfig {
        cnx_dims: [8, 16, 24, 32],
        cnx_depths: [1, 1, 2, 1],
        mit_dims: [8, 16, 24, 32],
        mit_depths: [1, 2, 1, 1],
        mit_heads: [1, 1, 2, 2],
        gate_dim: 16,
        gate_hidden: 64,
        ..MesorchConfig::full(v)
    }
}

/// Files written by real `torch.save` (official dict with optimizer, scaler and a pickled Namespace,
/// `cuda:0` storages, float16 storages, a bare state_dict) convert to exactly the tensors PyTorch
/// itself exported (tools/export_fixture_weights.py).
#[test]
fn real_torch_files_convert_to_the_tensors_pytorch_exported() {
    let fx = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mesorch"));
    let dir = tmpdir("real");
    let cases = [
        ("mesorch_tiny.pth", Variant::Mesorch, "mesorch_tiny.weights.safetensors", 0.0f32),
        ("mesorch_tiny_bare.pth", Variant::Mesorch, "mesorch_tiny.weights.safetensors", 0.0),
        // Some tensors of this file are stored as float16: equal to the f32 weights rounded to f16
        // (relative 2^-11, and 2^-24 absolute where f16 is subnormal).
        ("mesorch_tiny_f16.pth", Variant::Mesorch, "mesorch_tiny.weights.safetensors", 1.0 / 1024.0),
        ("mesorch_p_tiny.pth", Variant::MesorchP, "mesorch_p_tiny.weights.safetensors", 0.0),
    ];
    for (src, variant, want, rel_tol) in cases {
        let dst = dir.join(format!("{src}.safetensors"));
        convert_with(&fx.join(src), &dst, with_cfg(&fixture_cfg(variant))).unwrap_or_else(|e| panic!("{src}: {e}"));
        let got = TensorStore::read_safetensors(&dst).unwrap();
        let want = TensorStore::read_safetensors(&fx.join(want)).unwrap();
        assert_eq!(got.metadata.get("arch").map(String::as_str), Some(variant.name()), "{src}: detected model");
        let used: Vec<&String> = want.tensors.keys().filter(|k| !k.starts_with("convnext.head.")).collect();
        assert_eq!(got.len(), used.len(), "{src}: tensor count");
        for k in used {
            let (g, w) = (got.get(k).unwrap_or_else(|| panic!("{src}: missing {k}")), &want.tensors[k]);
            assert_eq!(g.shape, w.shape, "{src}: {k} shape");
            for (a, b) in g.data.iter().zip(&w.data) {
                let subnormal = if rel_tol > 0.0 { 2f32.powi(-24) } else { 0.0 };
                assert!((a - b).abs() <= rel_tol * b.abs() + subnormal, "{src}: {k}: {a} vs {b}");
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// NaN, infinite and (for f16) out-of-range weights are refused by key unless asked for; through
/// the library and the binary (exit code 1, nothing written).
#[test]
fn nonfinite_weights_are_refused_by_key() {
    let dir = tmpdir("nonfinite");
    let cfg = small_cfg(Variant::Mesorch);
    let keys = expected_keys(&cfg);
    let src = dir.join("nan.pth");
    let dst = dir.join("o.safetensors");
    // Storage element 3 is NaN, element 5 infinite: every key viewing them holds both.
    let bad = |k: usize| match k {
        3 => f32::NAN,
        5 => f32::NEG_INFINITY,
        _ => storage_value(k),
    };
    std::fs::write(&src, shared_storage_checkpoint_with(&keys, "FloatStorage", bad)).unwrap();
    let e = convert_with(&src, &dst, with_cfg(&cfg)).unwrap_err().message;
    assert!(e.contains("nan.pth") && e.contains("NaN") && e.contains("infinite"), "{e}");
    let first = keys.iter().map(|k| &k.0).min().unwrap();
    assert!(e.contains(&format!("'{first}': 1 NaN")) && e.contains("--allow-nonfinite"), "{e}");
    assert!(!dst.exists());
    let o = bin().arg("convert").arg(&src).arg(&dst).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--allow-nonfinite"));
    assert!(!dst.exists());
    // Asked for: written, with a note.
    let s = convert_with(&src, &dst, Options { allow_nonfinite: true, ..with_cfg(&cfg) }).unwrap();
    assert!(s.notes.iter().any(|n| n.contains("--allow-nonfinite")), "{:?}", s.notes);
    assert!(TensorStore::read_safetensors(&dst).unwrap().get(first).unwrap().data[3].is_nan());
    std::fs::remove_file(&dst).unwrap();
    // 1e5 is finite in f32 but infinite in f16: fine as f32, refused as f16.
    let big = |k: usize| if k == 2 { 1e5 } else { storage_value(k) };
    std::fs::write(&src, shared_storage_checkpoint_with(&keys, "FloatStorage", big)).unwrap();
    convert_with(&src, &dst, with_cfg(&cfg)).unwrap();
    let e = convert_with(&src, &dir.join("h.safetensors"), Options { dtype: SaveDType::F16, ..with_cfg(&cfg) })
        .unwrap_err();
    assert!(e.message.contains("float16's range") && e.message.contains("--dtype f32"), "{}", e.message);
    assert!(!dir.join("h.safetensors").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The report's hostile checkpoints through the binary: a clear error and exit code 1, a CRC
/// failure named, nothing written. (tests/memory_bounds.rs measures their memory.)
#[test]
fn cli_refuses_hostile_and_corrupt_checkpoints() {
    let dir = tmpdir("hostile");
    let dst = dir.join("o.safetensors");
    let (name, pkl) = hostile_pickles().into_iter().find(|(n, _)| *n == "dup-global").unwrap();
    let src = dir.join(format!("{name}.pth"));
    std::fs::write(&src, torch_zip("archive", &pkl, &[], false)).unwrap();
    let o = bin().arg("convert").arg(&src).arg(&dst).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("dup-global.pth") && err.contains("MiB of memory"), "{err}");
    // One flipped byte in a storage: Python's zipfile says "Bad CRC-32", so do we.
    let mut z = tiny_checkpoint(false);
    let entry = b"mesorch-98/data/0";
    let at = z.windows(entry.len()).position(|w| w == entry).unwrap() + entry.len() + 7 + 2;
    z[at] ^= 1;
    let src = dir.join("flipped.pth");
    std::fs::write(&src, &z).unwrap();
    let o = bin().arg("convert").arg(&src).arg(&dst).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("flipped.pth") && err.contains("CRC-32") && err.contains("data/0"), "{err}");
    // The destination is a folder: refused after every check passed, the folder intact, no
    // temporary file left beside it.
    let good = dir.join("good.pth");
    let folder = dir.join("taken.safetensors");
    std::fs::create_dir(&folder).unwrap();
    let small = shared_storage_checkpoint(&expected_keys(&small_cfg(Variant::Mesorch)), "FloatStorage");
    std::fs::write(&good, small).unwrap();
    let e = convert_with(&good, &folder, Options::default()).unwrap_err().message;
    assert!(e.contains("taken.safetensors"), "{e}");
    assert!(folder.is_dir());
    let temps: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
    // Not regular files: a folder, and a device that never ends.
    for src in [dir.clone(), PathBuf::from("/dev/urandom")] {
        let o = bin().arg("convert").arg(&src).arg(&dst).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("not a regular file"), "{err}");
    }
    assert!(!dst.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
