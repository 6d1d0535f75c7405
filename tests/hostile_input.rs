//! Hostile and careless input to `wgpu-forge infer`, through the binary: every case ends in a
//! clear error naming the file and the problem (exit code 1) or in a correct set of files, and
//! nothing the user had is lost. docs/RELIABILITY.md lists each case with its test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bin, tiny_weights, tmpdir, write_png};
use wgpu_forge::weights::{SaveDType, TensorStore};

/// Run with a deadline: a hang is a failure, not a stuck test run.
fn run_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("still running after {limit:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn report(out: &Path, stem: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join(format!("{stem}.json")))
        .unwrap_or_else(|e| panic!("{stem}.json in {}: {e}", out.display()));
    serde_json::from_str(&text).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn write_jpeg(path: &Path, w: u32, h: u32) {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 3 + y) as u8, (x * y % 253) as u8, ((x / 8 + y / 8) % 2 * 200) as u8])
    })
    .save(path)
    .unwrap();
}

fn ela(out: &Path) -> Command {
    let mut c = bin();
    c.args(["infer", "--model", "ela", "--out"]).arg(out);
    c
}

/// Same stems from different folders and a file already named like a suffixed stem: every image
/// gets its own set (the report says which input it belongs to), none overwrites another; a stale
/// temporary file of a killed run is cleaned up; no temporary file is left.
#[test]
fn stems_never_collide_and_stale_temporaries_are_removed() {
    let dir = tmpdir("hostile-stems");
    for sub in ["a", "b"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let inputs = [dir.join("a/x.png"), dir.join("b/x.jpg"), dir.join("x-2.png")];
    write_png(&inputs[0], 30, 20, 1);
    write_jpeg(&inputs[1], 28, 22);
    write_png(&inputs[2], 26, 18, 2);
    let out = dir.join("o");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join(".x.mask.png.tmp-4000000000"), b"left by a killed run").unwrap();
    let o = ela(&out).args(&inputs).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("removed 1 temporary file"), "{}", stderr(&o));
    for (input, stem) in inputs.iter().zip(["x", "x-3", "x-2"]) {
        let r = report(&out, stem);
        assert_eq!(r["file"], input.display().to_string(), "{stem}.json belongs to {}", input.display());
        let (w, h) = image::image_dimensions(input).unwrap();
        assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(w as u64), Some(h as u64)));
        let mask = image::image_dimensions(out.join(format!("{stem}.mask.png"))).unwrap();
        assert_eq!(mask, (w, h), "{stem}.mask.png is this image's");
    }
    let left = names(&out);
    assert_eq!(left.len(), 12, "three sets of four files: {left:?}");
    assert!(!left.iter().any(|n| n.contains(".tmp-")), "{left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--out` naming the folder of an input is refused before anything is written: a ground-truth
/// `x.mask.png` there stays as it was, and nothing new appears to be read back by the next run.
#[test]
fn out_folder_equal_to_an_input_folder_is_refused() {
    let dir = tmpdir("hostile-out");
    write_png(&dir.join("x.png"), 20, 16, 3);
    write_png(&dir.join("x.mask.png"), 20, 16, 4);
    let truth = std::fs::read(dir.join("x.mask.png")).unwrap();
    let before = names(&dir);
    for input in [dir.clone(), dir.join("x.png"), dir.join("./x.png")] {
        let o = ela(&dir).arg(&input).output().unwrap();
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        assert!(e.contains("--out") && e.contains("is the folder of the input") && e.contains("forge-out"), "{e}");
        assert_eq!(names(&dir), before, "nothing written for {}", input.display());
        assert_eq!(std::fs::read(dir.join("x.mask.png")).unwrap(), truth);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A truncated JPEG is an error naming the file; `--allow-truncated` analyses it with a note in
/// the report. The batch goes on past it.
#[test]
fn truncated_jpeg_is_an_error_unless_allowed() {
    let dir = tmpdir("hostile-trunc");
    let full = dir.join("full.jpg");
    write_jpeg(&full, 120, 80);
    let bytes = std::fs::read(&full).unwrap();
    let cut = dir.join("cut.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 5]).unwrap();
    let out = dir.join("o");
    let o = ela(&out).args([&cut, &full]).output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("cut.jpg") && e.contains("truncated JPEG"), "{e}");
    assert!(!out.join("cut.json").exists() && out.join("full.json").is_file());
    let o = ela(&out).arg("--allow-truncated").arg(&cut).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let notes = report(&out, "cut")["notes"].to_string();
    assert!(notes.contains("truncated JPEG") && notes.contains("of 80 rows"), "{notes}");
    assert_eq!(report(&out, "full")["notes"], serde_json::json!([]));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Files that are not regular files are refused at once (a FIFO would block the read forever,
/// /dev/zero grow without end), folders and patterns without images are one failed input each,
/// and the good image in the same batch is analysed.
#[test]
fn non_regular_files_and_empty_folders_fail_alone_and_fast() {
    let dir = tmpdir("hostile-special");
    let good = dir.join("good.png");
    write_png(&good, 24, 16, 5);
    let fifo = dir.join("x.png");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = dir.join("o");
    let mut cmd = ela(&out);
    cmd.arg(&fifo).arg("/dev/zero").arg(&empty).arg(format!("{}/*.gif", dir.display())).arg(&good);
    let o = run_within(cmd, Duration::from_secs(120));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("x.png") && e.contains("FIFO"), "{e}");
    assert!(e.contains("/dev/zero") && e.contains("character device"), "{e}");
    assert!(e.contains("empty") && e.contains("no image files"), "{e}");
    assert!(e.contains("*.gif") && e.contains("matches no file"), "{e}");
    assert!(e.contains("4 of 5 inputs failed"), "{e}");
    assert!(out.join("good.json").is_file());
    // Weights that are not regular files either.
    let mut cmd = bin();
    cmd.args(["infer", "--weights", "/dev/urandom", "--out"]).arg(&out).arg(&good);
    let o = run_within(cmd, Duration::from_secs(60));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("/dev/urandom") && e.contains("not a regular file"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A decompression bomb (a small PNG whose header claims 16000 x 16000 pixels) is refused from its
/// header under the default limit, and the error names the option that raises it.
#[test]
fn decompression_bomb_is_refused_by_the_default_limit() {
    let dir = tmpdir("hostile-bomb");
    let p = dir.join("bomb.png");
    write_png(&p, 1, 1, 0);
    let mut png = std::fs::read(&p).unwrap();
    png[16..20].copy_from_slice(&16_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&16_000u32.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(&p, &png).unwrap();
    let mut cmd = ela(&dir.join("o"));
    cmd.arg(&p);
    let o = run_within(cmd, Duration::from_secs(60));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("bomb.png") && e.contains("256000000 pixels") && e.contains("--max-pixels"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Options that cannot work are refused before any image is analysed; a PyTorch checkpoint given
/// as weights says to convert it first.
#[test]
fn bad_options_and_unconverted_weights_are_refused_up_front() {
    let dir = tmpdir("hostile-options");
    let weights = tiny_weights(&dir);
    let img = dir.join("a.png");
    write_png(&img, 40, 30, 6);
    let out = dir.join("o");
    let o = bin()
        .args(["infer", "--tile", "--tile-overlap", "500", "--weights"])
        .arg(&weights)
        .arg("--out")
        .arg(&out)
        .args([&img, &img])
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("--tile-overlap 500") && e.contains("96x64"), "{e}");
    assert!(!out.join("a.json").exists(), "refused before the first image");
    let pth = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mesorch/mesorch_tiny.pth");
    let o = bin().args(["infer", "--weights"]).arg(&pth).arg("--out").arg(&out).arg(&img).output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("mesorch_tiny.pth") && e.contains("convert it first") && e.contains("wgpu-forge convert"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A converted file whose safetensors header length starts with the byte 0x80 (as a pickle's
/// PROTO opcode does) loads as the weights it is, not as an unconverted checkpoint.
#[test]
fn safetensors_whose_header_length_starts_with_0x80_load() {
    let dir = tmpdir("hostile-0x80");
    let mut s = TensorStore::read_safetensors(&tiny_weights(&dir)).unwrap();
    let p = dir.join("w.safetensors");
    for pad in 0..600 {
        s.metadata.insert("padding".into(), "x".repeat(pad));
        s.write_safetensors(&p, SaveDType::F32).unwrap();
        if std::fs::read(&p).unwrap()[0] == 0x80 {
            break;
        }
    }
    assert_eq!(std::fs::read(&p).unwrap()[0], 0x80, "no padding gave a header length ending in 0x80");
    let img = dir.join("a.png");
    write_png(&img, 20, 16, 8);
    let o = bin().args(["infer", "--weights"]).arg(&p).arg("--out").arg(dir.join("o")).arg(&img).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn scaled_weights(dir: &Path, name: &str, f: impl Fn(&str, f32) -> f32) -> PathBuf {
    let mut s = TensorStore::read_safetensors(&tiny_weights(dir)).unwrap();
    for (k, t) in s.tensors.iter_mut() {
        for v in t.data.iter_mut() {
            *v = f(k, *v);
        }
    }
    let p = dir.join(name);
    s.write_safetensors(&p, SaveDType::F32).unwrap();
    p
}

/// NaN weights are refused when loaded, naming the tensor; weights that overflow float32 during
/// the run (65504, the largest f16, everywhere) give an error for the image naming the model and
/// the first node that made a non-finite value, never a map of NaN reported as "clean".
#[test]
fn nonfinite_weights_and_maps_are_errors() {
    let dir = tmpdir("hostile-nan");
    let img = dir.join("a.png");
    write_png(&img, 40, 30, 7);
    let out = dir.join("o");
    let nan = scaled_weights(&dir, "nan.safetensors", |k, v| if k == "gate.invert.0.weight" { f32::NAN } else { v });
    let o = bin().args(["infer", "--weights"]).arg(&nan).arg("--out").arg(&out).arg(&img).output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("nan.safetensors") && e.contains("'gate.invert.0.weight'") && e.contains("NaN"), "{e}");
    let huge = scaled_weights(&dir, "huge.safetensors", |_, v| if v == 0.0 { 0.0 } else { 65504.0f32.copysign(v) });
    let o = bin().args(["infer", "--weights"]).arg(&huge).arg("--out").arg(&out).arg(&img).output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("a.png") && e.contains("model 'mesorch'") && e.contains("NaN or infinite"), "{e}");
    assert!(e.contains("the first is made by node '"), "{e}");
    assert!(!out.join("a.json").exists() && !out.join("a.mask.png").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Photos are analysed the way viewers show them: EXIF orientation is applied by default
/// (orientation 6 turns a 16x8 stored picture into 8x16), and `--no-exif-orientation` analyses
/// the stored pixels.
#[test]
fn infer_applies_exif_orientation_by_default() {
    let dir = tmpdir("hostile-exif");
    let stored = dir.join("s.jpg");
    write_jpeg(&stored, 16, 8);
    let jpg = std::fs::read(&stored).unwrap();
    // An APP1 EXIF segment with orientation 6, right after the start-of-image marker.
    let mut tiff = vec![b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0];
    let mut app1 = b"Exif\0\0".to_vec();
    app1.append(&mut tiff);
    let mut out_jpg = jpg[..2].to_vec();
    out_jpg.extend_from_slice(&[0xFF, 0xE1]);
    out_jpg.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out_jpg.extend_from_slice(&app1);
    out_jpg.extend_from_slice(&jpg[2..]);
    std::fs::write(&stored, out_jpg).unwrap();
    let out = dir.join("o");
    let o = ela(&out).arg(&stored).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&out, "s");
    assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(8), Some(16)));
    let o = ela(&out).arg("--no-exif-orientation").arg(&stored).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&out, "s");
    assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(16), Some(8)));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// On a machine without a login session, Mesa's device-select layer would print two
/// `XDG_RUNTIME_DIR is invalid` lines that read as our failure; we turn it off before the first
/// instance unless the user set NODEVICE_SELECT.
#[test]
fn no_xdg_runtime_dir_noise_on_a_fresh_machine() {
    let o = Command::new(env!("CARGO_BIN_EXE_wgpu-forge"))
        .arg("info")
        .env_remove("NODEVICE_SELECT")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(!e.contains("XDG_RUNTIME_DIR"), "{e}");
}

/// A reader that stops early (`wgpu-forge info | head -1`) closes our stdout: the process ends
/// quietly (killed by SIGPIPE, as other Unix tools are), never with a panic and a backtrace.
#[cfg(unix)]
#[test]
fn closed_stdout_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = bin().arg("info").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Close the read end before the child's first line (it opens a Vulkan instance first).
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert!(!e.contains("panicked"), "{e}");
    const SIGPIPE: i32 = 13; // on Linux and macOS
    assert!(o.status.success() || o.status.signal() == Some(SIGPIPE), "{:?} {e}", o.status);
}
