//! Replays the committed fuzz inputs through the fuzz targets' bodies (`wgpu_forge::fuzzing`, the
//! same functions `fuzz/fuzz_targets/*.rs` call), so `cargo test` checks them without a fuzzer:
//! - `fuzz/seeds/<target>/*` and the test fixtures the seeds come from must be accepted (`Ok`);
//! - every file of `fuzz/regressions/<target>/` (minimized findings, fixed) must give the outcome
//!   `fuzz/regressions/manifest.txt` documents for it, and never panic.
//!
//! `fuzz/open/<target>/` holds findings not fixed yet; they are not replayed here (see
//! docs/RELIABILITY.md, "Fuzzing"). `cargo test --release --test fuzz_replay -- --ignored
//! write_fuzz_seeds` rewrites the generated seeds.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use wgpu_forge::fuzzing::{self, TARGETS};
use wgpu_forge::weights::testkit::{
    f32_bytes, official_pickle, shared_storage_checkpoint, tiny_checkpoint, torch_zip, write_zip, PickleBuf, TensorSpec,
};
use wgpu_forge::weights::torchzip::TorchArchive;
use wgpu_forge::weights::TensorStore;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir`, sorted; documentation and generator scripts are not inputs.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !matches!(p.extension().and_then(|e| e.to_str()), Some("md" | "py" | "txt")))
        .collect();
    v.sort();
    v
}

fn target(name: &str) -> fn(&[u8]) -> wgpu_forge::Result<()> {
    TARGETS.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no fuzz target '{name}'")).1
}

/// Run a target, turning a panic into an `Err` of its message so one bad input does not hide others.
fn run(name: &str, data: &[u8]) -> Result<wgpu_forge::Result<()>, String> {
    let f = target(name);
    catch_unwind(AssertUnwindSafe(|| f(data))).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn ext_files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(ext))
        .collect();
    v.sort();
    v
}

/// The `data.pkl` inside a torch.save zip.
fn pickle_of(pth: &Path) -> Vec<u8> {
    let mut ar = TorchArchive::new(std::fs::File::open(pth).unwrap()).unwrap();
    ar.pickle().unwrap()
}

#[test]
fn fuzz_seeds_and_fixtures_are_accepted() {
    let mut cases: Vec<(&str, String, Vec<u8>)> = Vec::new();
    for (name, _) in TARGETS {
        let files = inputs(&root().join("fuzz/seeds").join(name));
        assert!(!files.is_empty(), "fuzz/seeds/{name} has no seeds");
        for p in files {
            cases.push((name, p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    // The fixtures the seeds were drawn from, in place (too big to copy into fuzz/seeds).
    for p in ext_files("tests/fixtures/mesorch", "pth") {
        cases.push(("pickle", format!("{} data.pkl", p.display()), pickle_of(&p)));
        cases.push(("torch_zip", p.display().to_string(), std::fs::read(&p).unwrap()));
    }
    let mut sts = ext_files("tests/fixtures/mesorch", "safetensors");
    sts.push(root().join("tests/fixtures/shipped/mesorch-compact.safetensors"));
    for p in sts {
        cases.push(("safetensors", p.display().to_string(), std::fs::read(&p).unwrap()));
    }
    for p in ext_files("tests/fixtures/decode", "jpg").into_iter().chain(ext_files("tests/fixtures/ela", "png")) {
        cases.push(("image", p.display().to_string(), std::fs::read(&p).unwrap()));
    }
    let mut bad = Vec::new();
    for (name, what, data) in &cases {
        match run(name, data) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bad.push(format!("{name} {what}: Err({e})")),
            Err(p) => bad.push(format!("{name} {what}: PANIC {p}")),
        }
    }
    println!("{} seeds and fixtures replayed", cases.len());
    assert!(bad.is_empty(), "seeds the targets refuse:\n{}", bad.join("\n"));

    // Images over the target's pixel limit are refused cleanly, before decoding.
    for p in ["tests/fixtures/shipped/input.png", "examples/spliced.jpg"] {
        let data = std::fs::read(root().join(p)).unwrap();
        let e = run("image", &data).unwrap_or_else(|m| panic!("{p}: PANIC {m}")).unwrap_err();
        assert!(e.message.contains("exceeds"), "{p}: {e}");
    }
}

/// One line of `fuzz/regressions/manifest.txt`: `<target>/<file> ok` or `<target>/<file> err <text>`.
struct Expect {
    target: String,
    file: String,
    err: Option<String>,
}

fn manifest() -> Vec<Expect> {
    let text = std::fs::read_to_string(root().join("fuzz/regressions/manifest.txt")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut f = l.splitn(3, ' ');
            let path = f.next().unwrap();
            let (target, file) = path.split_once('/').unwrap_or_else(|| panic!("bad manifest line: {l}"));
            let err = match (f.next(), f.next()) {
                (Some("ok"), None) => None,
                (Some("err"), Some(text)) => Some(text.to_string()),
                _ => panic!("bad manifest line (want '<target>/<file> ok' or '... err <text>'): {l}"),
            };
            Expect { target: target.into(), file: file.into(), err }
        })
        .collect()
}

#[test]
fn fuzz_regressions_replay() {
    let expects = manifest();
    let mut bad = Vec::new();
    // Every committed reproducer is documented, and every documented one exists.
    for (name, _) in TARGETS {
        for p in inputs(&root().join("fuzz/regressions").join(name)) {
            let file = p.file_name().unwrap().to_str().unwrap();
            if !expects.iter().any(|e| e.target == name && e.file == file) {
                bad.push(format!("{name}/{file}: not in fuzz/regressions/manifest.txt"));
            }
        }
    }
    for e in &expects {
        let p = root().join("fuzz/regressions").join(&e.target).join(&e.file);
        let data = std::fs::read(&p).unwrap_or_else(|err| panic!("{}: {err}", p.display()));
        let what = format!("{}/{}", e.target, e.file);
        match (run(&e.target, &data), &e.err) {
            (Err(m), _) => bad.push(format!("{what}: PANIC {m}")),
            (Ok(Ok(())), None) => {}
            (Ok(Err(got)), Some(want)) if got.message.contains(want.as_str()) => {}
            (Ok(got), want) => bad.push(format!("{what}: got {got:?}, documented {want:?}")),
        }
    }
    println!("{} regressions replayed", expects.len());
    assert!(bad.is_empty(), "fuzz regressions:\n{}", bad.join("\n"));
}

// ---- Seed generation (run by hand; the output is committed). ----

fn encode(img: &image::DynamicImage, fmt: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, fmt).unwrap();
    out.into_inner()
}

/// A bare state_dict (`OrderedDict` of tensors at the root), keys optionally prefixed.
fn bare_pickle(tensors: &[TensorSpec], numel: u64, prefix: &str) -> Vec<u8> {
    let mut p = PickleBuf::new();
    p.global("collections", "OrderedDict").put().op(b')').op(b'R').put().mark();
    for (name, class, key, off, size, stride) in tensors {
        p.str(&format!("{prefix}{name}")).put().tensor(class, key, "cpu", numel, *off, size, stride);
    }
    p.op(b'u');
    p.stop()
}

/// `{'state_dict': {...}, 'forge': {'input_size': [64, 96], 'config': {'mit_heads': [1, 2, 5, 8]}}}`.
fn state_dict_pickle(tensors: &[TensorSpec], numel: u64) -> Vec<u8> {
    let mut p = PickleBuf::new();
    p.op(b'}').put().mark();
    p.str("state_dict").put().op(b'}').put().mark();
    for (name, class, key, off, size, stride) in tensors {
        p.str(name).put().tensor(class, key, "cpu", numel, *off, size, stride);
    }
    p.op(b'u');
    p.str("forge").put().op(b'}').put().mark();
    p.str("input_size").put().op(b']').put().int(64).op(b'a').int(96).op(b'a');
    p.str("config").put().op(b'}').put().str("mit_heads").put().op(b']').put().mark();
    for h in [1, 2, 5, 8] {
        p.int(h);
    }
    p.op(b'e').op(b's');
    p.op(b'u');
    p.op(b'u');
    p.stop()
}

#[test]
#[ignore = "writes fuzz/seeds; run by hand when the seed set changes"]
fn write_fuzz_seeds() {
    let seeds = root().join("fuzz/seeds");
    let put = |target: &str, name: &str, data: &[u8]| {
        let d = seeds.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), data).unwrap();
    };

    // torch_zip (and their pickles for the pickle target).
    let small: [TensorSpec; 4] = [
        ("conv.weight", "FloatStorage", "0", 0, &[2, 1, 2, 2], &[4, 4, 2, 1]),
        ("conv.bias", "FloatStorage", "0", 8, &[2], &[1]),
        ("fc.weight", "FloatStorage", "0", 0, &[3, 2], &[1, 3]),
        ("empty", "FloatStorage", "0", 0, &[0, 4], &[4, 1]),
    ];
    let vals: Vec<f32> = (0..10).map(|i| i as f32 * 0.5 - 2.0).collect();
    let storage = [("0", f32_bytes(&vals))];
    let official = official_pickle(&small, &[("0", 10)]);
    let bare = bare_pickle(&small, 10, "module.");
    let sd = state_dict_pickle(&small, 10);
    put("torch_zip", "tiny_checkpoint.pth", &tiny_checkpoint(false));
    put("torch_zip", "tiny_checkpoint_zip64.pth", &tiny_checkpoint(true));
    put("torch_zip", "official_small.pth", &torch_zip("mesorch-98", &official, &storage, false));
    put("torch_zip", "bare_module_prefix.pth", &torch_zip("archive", &bare, &storage, false));
    put("torch_zip", "state_dict_forge_hints.pth", &torch_zip("ckpt", &sd, &storage, false));
    put("torch_zip", "no_folder.pth", &write_zip(&[("data.pkl", &bare), ("data/0", &storage[0].1)], false));
    let keys: Vec<(String, Vec<usize>)> =
        vec![("a.weight".into(), vec![3, 4]), ("a.bias".into(), vec![4]), ("b.weight".into(), vec![2, 6])];
    put("torch_zip", "shared_half.pth", &shared_storage_checkpoint(&keys, "HalfStorage"));
    put("pickle", "official_small.pkl", &official);
    put("pickle", "bare_module_prefix.pkl", &bare);
    put("pickle", "state_dict_forge_hints.pkl", &sd);
    for f in ["mesorch_tiny.pth", "mesorch_tiny_bare.pth"] {
        let pkl = pickle_of(&root().join("tests/fixtures/mesorch").join(f));
        put("pickle", &f.replace(".pth", ".data.pkl"), &pkl);
    }

    // safetensors: ours (f32, f16), every dtype we read, and a slice of the real fixture.
    let mut s = TensorStore::new();
    s.insert("a.weight", wgpu_forge::Tensor::new(&[2, 3], vec![1.0, -2.5, 3.25, 0.0, 1e-3, 7.0]).unwrap());
    s.insert("b", wgpu_forge::Tensor::new(&[1], vec![0.5]).unwrap());
    s.insert("scalar", wgpu_forge::Tensor::new(&[], vec![4.0]).unwrap());
    s.insert("empty", wgpu_forge::Tensor::new(&[0, 3], vec![]).unwrap());
    s.metadata.insert("arch".into(), "mesorch".into());
    s.metadata.insert("input_size".into(), "[64,96]".into());
    put("safetensors", "small_f32.safetensors", &s.to_safetensors_bytes(wgpu_forge::weights::SaveDType::F32).unwrap());
    put("safetensors", "small_f16.safetensors", &s.to_safetensors_bytes(wgpu_forge::weights::SaveDType::F16).unwrap());
    {
        use safetensors::tensor::TensorView;
        use safetensors::Dtype;
        let raw: Vec<u8> = (0..16u8).map(|i| i.wrapping_mul(37)).collect();
        let dts = [
            (Dtype::F64, 8),
            (Dtype::BF16, 2),
            (Dtype::I64, 8),
            (Dtype::I32, 4),
            (Dtype::I16, 2),
            (Dtype::I8, 1),
            (Dtype::U8, 1),
            (Dtype::BOOL, 1),
        ];
        let bool_raw = [0u8, 1, 1, 0];
        let views: Vec<(String, TensorView)> = dts
            .iter()
            .map(|&(dt, size)| {
                let data: &[u8] = if dt == Dtype::BOOL { &bool_raw } else { &raw[..2 * size] };
                let n = data.len() / size;
                (format!("{dt:?}").to_lowercase(), TensorView::new(dt, vec![n], data).unwrap())
            })
            .collect();
        put("safetensors", "all_dtypes.safetensors", &safetensors::serialize(views, None).unwrap());
    }
    let real =
        TensorStore::read_safetensors(&root().join("tests/fixtures/mesorch/mesorch_tiny.weights.safetensors")).unwrap();
    let mut slice = TensorStore::new();
    for (k, t) in real.tensors.iter().filter(|(_, t)| t.numel() <= 16).take(12) {
        slice.insert(k.clone(), t.clone());
    }
    slice.metadata.insert("arch".into(), "mesorch".into());
    put(
        "safetensors",
        "mesorch_tiny_slice.safetensors",
        &slice.to_safetensors_bytes(wgpu_forge::weights::SaveDType::F32).unwrap(),
    );

    // image: the decode and ELA fixtures, a crop of the shipped input in every format and layout.
    use image::{DynamicImage, ImageFormat};
    for p in ext_files("tests/fixtures/decode", "jpg") {
        put("image", p.file_name().unwrap().to_str().unwrap(), &std::fs::read(&p).unwrap());
    }
    for f in ["tiny3x5.png", "odd37x29.png"] {
        put("image", f, &std::fs::read(root().join("tests/fixtures/ela").join(f)).unwrap());
    }
    let full = image::open(root().join("tests/fixtures/shipped/input.png")).unwrap();
    let crop = full.crop_imm(130, 90, 48, 32);
    put("image", "input_crop48x32.png", &encode(&crop, ImageFormat::Png));
    let small = crop.resize_exact(12, 8, image::imageops::FilterType::Triangle);
    put("image", "input_12x8.bmp", &encode(&small, ImageFormat::Bmp));
    put("image", "input_12x8.tiff", &encode(&small, ImageFormat::Tiff));
    put("image", "input_12x8.jpg", &encode(&small, ImageFormat::Jpeg));
    put(
        "image",
        "input_12x8_exif6.jpg",
        &wgpu_forge::imageio::testkit::with_exif_orientation(&encode(&small, ImageFormat::Jpeg), 6),
    );
    put("image", "input_12x8_gray.png", &encode(&DynamicImage::ImageLuma8(small.to_luma8()), ImageFormat::Png));
    put("image", "input_12x8_rgba.png", &encode(&DynamicImage::ImageRgba8(small.to_rgba8()), ImageFormat::Png));
    put("image", "input_12x8_rgb16.png", &encode(&DynamicImage::ImageRgb16(small.to_rgb16()), ImageFormat::Png));
    put("image", "input_12x8_gray16.tiff", &encode(&DynamicImage::ImageLuma16(small.to_luma16()), ImageFormat::Tiff));
    put("image", "input_12x8_rgba.bmp", &encode(&DynamicImage::ImageRgba8(small.to_rgba8()), ImageFormat::Bmp));
    put("image", "input_12x8_rgb32f.tiff", &encode(&DynamicImage::ImageRgb32F(small.to_rgb32f()), ImageFormat::Tiff));
    put("image", "input_12x8.webp", &encode(&small, ImageFormat::WebP));
    // A JPEG cut inside its scan (decoded with grey fill and a note: the target allows truncation).
    let jpg = encode(&crop, ImageFormat::Jpeg);
    put("image", "input_crop48x32_truncated.jpg", &jpg[..jpg.len() * 2 / 3]);
    // A TIFF of two pages (the first is decoded, the second noted).
    {
        use tiff::encoder::{colortype, TiffEncoder};
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut enc = TiffEncoder::new(&mut buf).unwrap();
        enc.write_image::<colortype::RGB8>(12, 8, small.to_rgb8().as_raw()).unwrap();
        enc.write_image::<colortype::Gray8>(4, 2, &[7u8; 8]).unwrap();
        put("image", "two_pages.tiff", buf.get_ref());
    }
}

/// The torch_zip target's CRC repair: a checkpoint whose CRCs were zeroed is refused as corrupt;
/// repaired, it loads; a correct one is left alone, and garbage never panics.
#[test]
fn fuzz_zip_crc_repair() {
    use wgpu_forge::weights::load_torch_zip;
    for zip64 in [false, true] {
        let good = tiny_checkpoint(zip64);
        let mut z = good.clone();
        assert!(!fuzzing::fix_zip_crcs(&mut z), "a correct zip is left alone");
        // Zero every CRC field: central records (offset 16) and local headers (offset 14).
        for i in 0..z.len() - 4 {
            match &z[i..i + 4] {
                b"PK\x01\x02" => z[i + 16..i + 20].fill(0),
                b"PK\x03\x04" => z[i + 14..i + 18].fill(0),
                _ => {}
            }
        }
        let e = load_torch_zip(std::io::Cursor::new(&z)).unwrap_err();
        assert!(e.message.contains("CRC"), "{e}");
        assert!(fuzzing::fix_zip_crcs(&mut z));
        assert_eq!(z, good, "repaired byte for byte (zip64: {zip64})");
        for cut in (0..good.len()).step_by(7) {
            let mut t = good[..cut].to_vec();
            fuzzing::fix_zip_crcs(&mut t);
        }
    }
}

#[test]
fn fuzz_targets_are_listed_in_the_fuzz_crate() {
    let manifest = std::fs::read_to_string(root().join("fuzz/Cargo.toml")).unwrap();
    let script = std::fs::read_to_string(root().join("fuzz/fuzz.sh")).unwrap();
    for (name, _) in TARGETS {
        assert!(manifest.contains(&format!("path = \"fuzz_targets/{name}.rs\"")), "fuzz/Cargo.toml lacks {name}");
        let body = std::fs::read_to_string(root().join(format!("fuzz/fuzz_targets/{name}.rs"))).unwrap();
        assert!(body.contains(&format!("wgpu_forge::fuzzing::{name}(data)")), "fuzz_targets/{name}.rs");
        assert!(script.contains(name), "fuzz/fuzz.sh does not list {name}");
    }
    let _ = fuzzing::IMAGE_MAX_PIXELS;
}
