//! `convert` end to end: torch zip -> checked safetensors, through the library and the binary.

use std::path::PathBuf;
use std::process::Command;

use wgpu_forge::cli::convert::convert_with;
use wgpu_forge::weights::testkit::{shared_storage_checkpoint, shared_storage_expected, tiny_checkpoint};
use wgpu_forge::weights::{expected_keys, Arch, ArchConfig, SaveDType, TensorStore};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("forge-convert-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn small_cfg(arch: Arch) -> ArchConfig {
    ArchConfig {
        convnext_dims: [4, 8, 16, 32],
        convnext_depths: [1, 1, 2, 1],
        mit_dims: [4, 8, 12, 16],
        mit_depths: [1, 1, 2, 1],
        mit_heads: [1, 1, 1, 1],
        gate: ArchConfig::for_arch(arch).gate.map(|_| (8, 16)),
        ..ArchConfig::for_arch(arch)
    }
}

#[test]
fn converts_small_mesorch_and_round_trips() {
    let dir = tmpdir("small");
    let cfg = small_cfg(Arch::Mesorch);
    let mut keys = expected_keys(Arch::Mesorch, &cfg);
    keys.push(("convnext.head.fc.weight".into(), vec![3, 32]));
    let src = dir.join("mesorch-98.pth");
    std::fs::write(&src, shared_storage_checkpoint(&keys, "HalfStorage")).unwrap();
    let dst = dir.join("m.safetensors");
    // No config given: the converter reads it off the shapes.
    let s = convert_with(&src, &dst, None, SaveDType::F32, None).unwrap();
    assert_eq!(s.arch, Arch::Mesorch);
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
    convert_with(&dst, &again, Some(Arch::Mesorch), SaveDType::F16, None).unwrap();
    let back = TensorStore::read_safetensors(&again).unwrap();
    assert_eq!(back.tensors, out.tensors, "values are exact in f16 by construction");
    assert!(std::fs::metadata(&again).unwrap().len() < std::fs::metadata(&dst).unwrap().len());
    // Forcing the wrong architecture names a missing key (gate is extra, stage 3 is dropped).
    let p = convert_with(
        &src,
        &dir.join("p.safetensors"),
        Some(Arch::MesorchP),
        SaveDType::F32,
        Some(small_cfg(Arch::MesorchP)),
    );
    assert!(p.is_ok(), "Mesorch-P keys are a subset: {p:?}");
    let mut short = keys.clone();
    short.retain(|(k, _)| k != "segformer.norm4.bias");
    std::fs::write(&src, shared_storage_checkpoint(&short, "FloatStorage")).unwrap();
    let e = convert_with(&src, &dir.join("x.safetensors"), None, SaveDType::F32, Some(cfg)).unwrap_err();
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
    assert!(err.contains("tiny.pth") && err.contains("architecture"), "{err}");
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
    let arch = Arch::MesorchP;
    let mut keys = expected_keys(arch, &ArchConfig::for_arch(arch));
    keys.push(("convnext.stages.3.blocks.0.gamma".into(), vec![768]));
    let src = dir.join("mesorch_p-118.pth");
    std::fs::write(&src, shared_storage_checkpoint(&keys, "HalfStorage")).unwrap();
    let dst = dir.join("p.safetensors");
    let o = bin().args(["convert", "--dtype", "f16"]).arg(&src).arg(&dst).output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("arch:    mesorch-p"), "{out}");
    assert!(out.contains("tensors: 743") && out.contains("params:  62235365"), "{out}");
    assert!(err.contains("convnext.stages.3.blocks.0.gamma"), "{err}");
    let st = TensorStore::read_safetensors(&dst).unwrap();
    assert_eq!((st.len(), st.params()), (743, 62_235_365));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The config of the tiny fixtures written by tools/make_mesorch_fixtures.py (see its JSON files).
fn fixture_cfg(arch: Arch) -> ArchConfig {
    ArchConfig {
        convnext_dims: [8, 16, 24, 32],
        convnext_depths: [1, 1, 2, 1],
        mit_dims: [8, 16, 24, 32],
        mit_depths: [1, 2, 1, 1],
        mit_heads: [1, 1, 2, 2],
        gate: ArchConfig::for_arch(arch).gate.map(|_| (16, 64)),
        ..ArchConfig::for_arch(arch)
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
        ("mesorch_tiny.pth", Arch::Mesorch, "mesorch_tiny.weights.safetensors", 0.0f32),
        ("mesorch_tiny_bare.pth", Arch::Mesorch, "mesorch_tiny.weights.safetensors", 0.0),
        // Some tensors of this file are stored as float16: equal to the f32 weights rounded to f16
        // (relative 2^-11, and 2^-24 absolute where f16 is subnormal).
        ("mesorch_tiny_f16.pth", Arch::Mesorch, "mesorch_tiny.weights.safetensors", 1.0 / 1024.0),
        ("mesorch_p_tiny.pth", Arch::MesorchP, "mesorch_p_tiny.weights.safetensors", 0.0),
    ];
    for (src, arch, want, rel_tol) in cases {
        let dst = dir.join(format!("{src}.safetensors"));
        convert_with(&fx.join(src), &dst, None, SaveDType::F32, Some(fixture_cfg(arch)))
            .unwrap_or_else(|e| panic!("{src}: {e}"));
        let got = TensorStore::read_safetensors(&dst).unwrap();
        let want = TensorStore::read_safetensors(&fx.join(want)).unwrap();
        assert_eq!(got.metadata.get("arch").map(String::as_str), Some(arch.name()), "{src}: detected arch");
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
}
