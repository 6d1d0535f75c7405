//! `wgpu-forge infer` end to end through the binary: outputs, their agreement with the library
//! pipeline, a bad input in a batch, exit codes.

mod common;

use std::path::Path;

use common::{bin, tiny_weights, tmpdir, write_png};

use wgpu_forge::graph::Engine;
use wgpu_forge::imageio::{default_max_pixels, load_rgb8};
use wgpu_forge::pipeline::Detector;

fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00", "{}", path.display());
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    let shape_txt = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<usize> = shape_txt.split(',').filter_map(|t| t.trim().parse().ok()).collect();
    let data = b[10 + hl..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    (shape, data)
}

#[test]
fn infer_writes_masks_and_raw_maps_and_survives_a_bad_file() {
    let dir = tmpdir("infer-batch");
    let weights = tiny_weights(&dir);
    let (a, b) = (dir.join("wide.png"), dir.join("tall.png"));
    write_png(&a, 75, 41, 1);
    write_png(&b, 33, 50, 2);
    let bad = dir.join("broken.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let out = dir.join("out");
    let o = bin()
        .args(["infer", "--backend", "cpu", "--weights"])
        .arg(&weights)
        .arg("--out")
        .arg(&out)
        .args(["--save-raw", "--min-area", "1"])
        .args([&a, &bad, &b])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "one input is bad: {stderr}");
    assert!(stderr.contains("broken.jpg"), "the bad file is named: {stderr}");
    assert!(!out.join("broken.mask.png").exists());

    // The library pipeline on the same image and backend gives the same maps, and the GPU path
    // the same within the parity tolerance.
    let mut det = Detector::from_weights_file(Engine::Cpu, &weights, None).unwrap();
    let mut on_gpu = Detector::from_weights_file(wgpu_forge::ops::testing::device(), &weights, None).unwrap();
    let mut regions_seen = 0;
    for (img_path, stem, (w, h)) in [(&a, "wide", (75, 41)), (&b, "tall", (33, 50))] {
        let mask = image::open(out.join(format!("{stem}.mask.png"))).unwrap().to_luma8();
        assert_eq!(mask.dimensions(), (w, h));
        let (pshape, prob) = read_npy(&out.join(format!("{stem}.prob.npy")));
        assert_eq!(pshape, vec![h as usize, w as usize]);
        let (mshape, model) = read_npy(&out.join(format!("{stem}.model.npy")));
        assert_eq!(mshape, vec![64, 96], "the input size recorded in the weights");
        // With no opening (the default) and --min-area 1 the mask is exactly p > 0.5.
        for (m, p) in mask.as_raw().iter().zip(&prob) {
            assert_eq!(*m, if *p > 0.5 { 255 } else { 0 });
        }
        let img = load_rgb8(img_path, default_max_pixels()).unwrap();
        let d = det.detect(&img).unwrap();
        assert!(d.model_prob == model, "{stem}: model map differs from the library's on the CPU backend");
        let g = on_gpu.detect(&img).unwrap();
        let worst = g.model_prob.iter().zip(&model).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst <= 1e-4, "{stem}: the GPU's model map differs from the CPU backend's by {worst}");
        assert!(d.prob == prob, "{stem}: map at the image's size differs");
        assert!(prob.iter().all(|p| (0.0..=1.0).contains(p)));
        regions_seen += check_report(&out, stem, w as usize, h as usize, &prob);
    }
    assert!(regions_seen > 0, "the pictures give the model something to mark, so the region checks ran");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The report's documented fields, their types, and agreement with the maps written beside it;
/// returns how many regions it lists (their checks mean something only when there are some).
fn check_report(out: &Path, stem: &str, w: usize, h: usize, prob: &[f32]) -> usize {
    let text = std::fs::read_to_string(out.join(format!("{stem}.json"))).unwrap();
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["schema"], "wgpu-forge.report/3");
    assert_eq!(r["width"], w);
    assert_eq!(r["height"], h);
    assert_eq!(r["model"]["name"], "mesorch");
    assert_eq!(r["model"]["mode"], "resize");
    assert_eq!(r["model"]["input"], serde_json::json!([64, 96]));
    assert_eq!(r["model"]["weights_sha256"].as_str().unwrap().len(), 64);
    let score = r["score"].as_f64().unwrap() as f32;
    let want = wgpu_forge::report::image_score(prob, w, h);
    assert!((score - want).abs() < 1e-4, "score {score} vs {want}");
    // Test weights are not the ones the family was calibrated with: the uncalibrated rule.
    assert_eq!(r["verdict"], if want > 0.5 { "tampered" } else { "clean" });
    assert_eq!(r["calibration"]["tampered_above"], 0.5);
    assert!(r["calibration"]["target_false_alarm_rate"].is_null(), "{}", r["calibration"]);
    let evidence: Vec<f64> = r["regions"].as_array().unwrap().iter().map(|g| g["evidence"].as_f64().unwrap()).collect();
    assert!(evidence.windows(2).all(|p| p[0] >= p[1]), "regions ranked by evidence: {evidence:?}");
    let marked = prob.iter().filter(|&&p| p > 0.5).count() as f64 / (w * h) as f64;
    assert!((r["tampered_fraction"].as_f64().unwrap() - marked).abs() < 1e-5);
    let area: u64 = r["regions"].as_array().unwrap().iter().map(|g| g["area"].as_u64().unwrap()).sum();
    assert_eq!(area as usize, prob.iter().filter(|&&p| p > 0.5).count(), "regions cover the mask");
    for g in r["regions"].as_array().unwrap() {
        let b: Vec<u64> = g["bbox"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert!(b[0] < b[2] && b[1] < b[3] && b[2] as usize <= w && b[3] as usize <= h, "{b:?}");
        assert!(g["max_prob"].as_f64().unwrap() >= g["mean_prob"].as_f64().unwrap());
    }
    assert_eq!(r["scales"].as_array().unwrap().len(), 8, "Mesorch has 8 scales");
    assert!(r["scales"][0]["mean_weight"].is_number());
    for k in ["decode", "preprocess", "gpu", "postprocess", "total"] {
        assert!(r["timings_s"][k].as_f64().unwrap() >= 0.0, "{k}");
    }
    assert!(r["adapter"]["name"].is_string());
    for k in ["mask", "prob", "overlay", "prob_npy", "model_npy", "report"] {
        let f = r["outputs"][k].as_str().unwrap_or_else(|| panic!("outputs.{k}"));
        assert!(out.join(f).is_file(), "{f}");
    }
    let p8 = image::open(out.join(format!("{stem}.prob.png"))).unwrap().to_luma8();
    assert_eq!(p8.dimensions(), (w as u32, h as u32));
    let ov = image::open(out.join(format!("{stem}.overlay.png"))).unwrap().to_rgb8();
    assert!(ov.width() > w as u32 && ov.height() == h as u32, "overlay has a colour bar");
    // Each listed region is a connected part of the written mask: its pixels inside its box.
    let mask = image::open(out.join(format!("{stem}.mask.png"))).unwrap().to_luma8();
    for g in r["regions"].as_array().unwrap() {
        let b: Vec<u32> = g["bbox"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let inside = (b[1]..b[3])
            .flat_map(|y| (b[0]..b[2]).map(move |x| (x, y)))
            .filter(|&(x, y)| mask.get_pixel(x, y)[0] == 255)
            .count();
        assert!(inside as u64 >= g["area"].as_u64().unwrap(), "{stem}: region {b:?} holds {inside} marked pixels");
    }
    r["regions"].as_array().unwrap().len()
}

#[test]
fn infer_folders_globs_json_lines_cleaning_tiles_and_scales() {
    let dir = tmpdir("infer-options");
    let weights = tiny_weights(&dir);
    let imgs = dir.join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    write_png(&imgs.join("a.png"), 150, 70, 4);
    write_png(&imgs.join("b.png"), 40, 30, 5);
    std::fs::write(imgs.join("notes.txt"), "not an image").unwrap();
    let out = dir.join("out");
    // A folder: its two images (the .txt is skipped), one JSON report per line on stdout.
    let o = bin()
        .args(["infer", "--json", "--tile", "--tile-overlap", "16", "--open", "1", "--close", "2"])
        .args(["--min-area", "5", "--weights"])
        .arg(&weights)
        .arg("--out")
        .arg(&out)
        .arg(&imgs)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["model"]["mode"], "tile");
    assert_eq!(lines[0]["cleaning"], serde_json::json!({"open": 1, "close": 2, "min_area": 5}));
    for g in lines.iter().flat_map(|l| l["regions"].as_array().unwrap()) {
        assert!(g["area"].as_u64().unwrap() >= 5);
    }
    // Tiling a 150x70 image with 96x64 tiles covers it at native resolution.
    let mask = image::open(out.join("a.mask.png")).unwrap().to_luma8();
    assert_eq!(mask.dimensions(), (150, 70));
    // A glob, with the per-scale maps; a pattern matching nothing is a clear error.
    let pat = format!("{}/*.png", imgs.display());
    let o =
        bin().args(["infer", "--scales", "--weights"]).arg(&weights).arg("--out").arg(&out).arg(&pat).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("a.json")).unwrap()).unwrap();
    for s in ["c1", "c4", "s1", "s4"] {
        let scale = image::open(out.join(format!("a.scale-{s}.png"))).unwrap();
        assert_eq!((scale.width(), scale.height()), (24, 16), "H/4 x W/4 of the model input");
        assert!(out.join(format!("a.weight-{s}.png")).is_file());
        // The report names every file written, each scale under its own key.
        assert_eq!(report["outputs"][format!("scale-{s}")], format!("a.scale-{s}.png"), "{}", report["outputs"]);
        assert_eq!(report["outputs"][format!("weight-{s}")], format!("a.weight-{s}.png"), "{}", report["outputs"]);
    }
    let none = format!("{}/*.gif", imgs.display());
    let o = bin().args(["infer", "--weights"]).arg(&weights).arg(&none).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("matches no file"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn training_free_detectors_run_by_name_at_native_resolution() {
    let dir = tmpdir("infer-ela");
    let img = dir.join("p.png");
    write_png(&img, 45, 31, 6);
    for model in ["ela", "noise"] {
        let out = dir.join(model);
        let o = bin()
            .args(["infer", "--json", "--save-raw", "--model", model, "--out"])
            .arg(&out)
            .arg(&img)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{model}: {}", String::from_utf8_lossy(&o.stderr));
        let r: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
        assert_eq!(r["model"]["name"], model);
        assert_eq!(r["model"]["mode"], "native");
        assert!(r["model"]["weights"].is_null());
        assert!(r.get("pairs").is_none(), "{model}: no pairs field for models that do not look for pairs");
        let (shape, prob) = read_npy(&out.join("p.model.npy"));
        assert_eq!(shape, vec![31, 45], "{model} runs at the image's size");
        assert!(prob.iter().all(|p| (0.0..=1.0).contains(p)));
    }
    let o = bin().args(["infer", "--model", "ela", "--weights", "x.safetensors"]).arg(&img).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("takes no --weights"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `infer --model copymove` on a photo with a block copied elsewhere: the report links the two
/// blocks as a pair, marks both, and notes the analysis size; the overlay is written.
#[test]
fn copymove_reports_a_linked_pair() {
    let dir = tmpdir("infer-copymove");
    let photo = image::load_from_memory(include_bytes!("../examples/spliced.jpg")).unwrap().to_rgb8();
    let mut forged = photo.clone();
    // A 100 x 100 block of the saucer and table at (120, 200) copied to (390, 60).
    for y in 0..100 {
        for x in 0..100 {
            forged.put_pixel(390 + x, 60 + y, *photo.get_pixel(120 + x, 200 + y));
        }
    }
    let img = dir.join("cloned.png");
    forged.save(&img).unwrap();
    let out = dir.join("out");
    let o = bin().args(["infer", "--json", "--model", "copymove", "--out"]).arg(&out).arg(&img).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    assert_eq!(r["model"]["name"], "copymove");
    let pairs = r["pairs"].as_array().expect("a pairs array");
    let bbox = |v: &serde_json::Value| -> Vec<i64> {
        v["bbox"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
    };
    let covers = |b: &[i64], x: i64, y: i64| b[0] <= x + 30 && b[1] <= y + 30 && b[2] >= x + 70 && b[3] >= y + 70;
    let linked = pairs.iter().any(|p| {
        let (s, d) = (bbox(&p["source"]), bbox(&p["destination"]));
        (covers(&s, 120, 200) && covers(&d, 390, 60)) || (covers(&s, 390, 60) && covers(&d, 120, 200))
    });
    assert!(linked, "no pair links the blocks: {pairs:?}");
    let p = &pairs[0];
    assert_eq!(p["id"], 1);
    assert!(p["strength"].as_f64().unwrap() > 0.5 && p["area"].as_u64().unwrap() > 2000, "{p}");
    assert!((p["offset"][0].as_f64().unwrap().abs() - 270.0).abs() < 2.0, "{p}");
    assert!(r["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("copy-move analysed at 600x400")));
    assert!(r["regions"].as_array().unwrap().len() >= 2, "both copies are marked: {}", r["regions"]);
    assert!(out.join("cloned.overlay.png").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The shipped copy-move example (a disk rotated by 15 degrees and recompressed, examples/README.md):
/// one pair links the source and the copy, the rotation is measured, and the verdict is `tampered`
/// (the summary line names the pair).
#[test]
fn copymove_finds_the_rotated_recompressed_clone_of_the_example() {
    let dir = tmpdir("infer-cloned-example");
    let out = dir.join("out");
    let o = bin()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["infer", "--model", "copymove", "--out"])
        .arg(&out)
        .arg("examples/cloned.jpg")
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("cloned.json")).unwrap()).unwrap();
    assert_eq!(r["verdict"], "tampered", "{line}");
    let pairs = r["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 1, "{line}");
    let centre = |v: &serde_json::Value| {
        let b: Vec<f64> = v["bbox"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0)
    };
    let near = |c: (f64, f64), x: f64, y: f64| (c.0 - x).hypot(c.1 - y) < 30.0;
    let (s, d) = (centre(&pairs[0]["source"]), centre(&pairs[0]["destination"]));
    // Source and copy: disks of radius 48 centred at (300, 270) and (95, 330).
    assert!(
        (near(s, 300.0, 270.0) && near(d, 95.0, 330.0)) || (near(s, 95.0, 330.0) && near(d, 300.0, 270.0)),
        "{line}"
    );
    let rot = pairs[0]["rotation_deg"].as_f64().unwrap();
    assert!((rot.abs() - 15.0).abs() < 3.0, "rotation {rot}: {line}");
    assert!(line.contains(", 1 pair (#1 ["), "{line}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--set` changes a detector's settings (the report notes them; a learned model's too: hifi's
/// fusion) and is refused with a message for unknown names and for models that take none.
#[test]
fn set_changes_a_detectors_settings_and_bad_ones_are_named() {
    let dir = tmpdir("infer-set");
    let img = dir.join("s.png");
    write_png(&img, 70, 50, 3);
    let out = dir.join("out");
    let run =
        |extra: &[&str]| bin().args(["infer", "--json", "--out"]).arg(&out).args(extra).arg(&img).output().unwrap();
    let o = run(&["--model", "copymove", "--set", "min_area=100", "--set", "iters=2"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    let notes = r["notes"].to_string();
    assert!(notes.contains("not the defaults") && notes.contains(r#"\"min_area\":100"#), "{notes}");
    // A learned model's setting: hifi's fusion, named in the notes.
    let o = run(&["--weights", "weights/hifi-compact.safetensors", "--set", "fusion=product"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    let notes = r["notes"].to_string();
    assert!(notes.contains("hifi fusion: product") && notes.contains("chosen by --set fusion"), "{notes}");
    // The product fusion's verdict rests on its own thresholds, not the learned fusion's.
    assert_eq!(r["calibration"]["tampered_above"].as_f64(), Some(0.136), "{}", r["calibration"]);
    for (extra, says) in [
        (&["--model", "copymove", "--set", "nope=1"][..], "copymove has no such setting"),
        (&["--model", "copymove", "--set", "iters"][..], "expected KEY=VALUE"),
        (&["--model", "noise", "--set", "block=8"][..], "takes no settings"),
        (&["--set", "min_area=1"][..], "'pmsp' takes no settings"),
        (&["--weights", "weights/hifi-compact.safetensors", "--set", "fusion=sum"][..], "'learned' or 'product'"),
        (
            &["--weights", "weights/pmsp-mobilenet.safetensors", "--set", "fusion=product"][..],
            "'pmsp' takes no settings",
        ),
    ] {
        let o = run(extra);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {stderr}");
        assert!(stderr.contains(says), "{extra:?}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_weights_the_default_model_runs() {
    let dir = tmpdir("infer-default");
    let img = dir.join("d.png");
    write_png(&img, 20, 12, 7);
    let o = bin().env_remove("FORGE_WEIGHTS").current_dir(&dir).args(["infer", "--json", "d.png"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let r: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    // The shipped weights are the default (weights/pmsp.md) and come from the binary: this
    // folder has no weights/.
    use wgpu_forge::cli::infer::SHIPPED_WEIGHTS;
    assert!(!dir.join(SHIPPED_WEIGHTS).exists());
    assert_eq!(r["model"]["name"], "pmsp", "{r}");
    assert_eq!(r["model"]["weights"], SHIPPED_WEIGHTS, "{r}");
    let shipped = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(SHIPPED_WEIGHTS)).unwrap();
    assert_eq!(r["model"]["weights_sha256"], wgpu_forge::weights::sha256_hex(&shipped), "the file in weights/");
    assert!(dir.join("forge-out/d.mask.png").is_file(), "default output folder");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn infer_usage_and_weight_errors_have_clear_messages() {
    let dir = tmpdir("infer-errors");
    // No inputs: a usage error (exit 2).
    let o = bin().args(["infer"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    // Weights that are not a weight file: exit 1, naming the file.
    let fake = dir.join("fake.safetensors");
    std::fs::write(&fake, b"definitely not safetensors").unwrap();
    let img = dir.join("x.png");
    write_png(&img, 8, 8, 3);
    let o = bin().args(["infer", "--weights"]).arg(&fake).arg(&img).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("fake.safetensors"), "{stderr}");
    // An output folder that cannot be made (a file is in the way): exit 1, naming it.
    let blocker = dir.join("blocker");
    std::fs::write(&blocker, b"a file").unwrap();
    let weights = tiny_weights(&dir);
    let o = bin()
        .args(["infer", "--weights"])
        .arg(&weights)
        .arg("--out")
        .arg(blocker.join("out"))
        .arg(&img)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("blocker") && stderr.contains("output folder"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn panel_shows_every_detector_beside_the_photo_in_one_set() {
    use wgpu_forge::cli::infer::SHIPPED_WEIGHTS;
    use wgpu_forge::models::REGISTRY;
    use wgpu_forge::report::panel::panel_size;
    let dir = tmpdir("infer-panel");
    let img = dir.join("p.png");
    write_png(&img, 45, 31, 6);
    let training_free: Vec<&str> = REGISTRY.iter().filter(|f| !f.needs_weights()).map(|f| f.name()).collect();
    // From the repository and from elsewhere: the shipped default is built into the binary; with
    // --model ela the learned model is the default's, beside it.
    for (cwd, model) in [(Path::new(env!("CARGO_MANIFEST_DIR")), None), (dir.as_path(), Some("ela"))] {
        let out = dir.join(format!("out-{}", model.unwrap_or("default")));
        let o = bin()
            .env_remove("FORGE_WEIGHTS")
            .current_dir(cwd)
            .args(["infer", "--panel", "--out"])
            .arg(&out)
            .args(model.map(|m| ["--model", m]).iter().flatten())
            .arg(&img)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{stderr}");

        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("p.json")).unwrap()).unwrap();
        let panel = r["panel"].as_array().unwrap();
        assert_eq!(panel.len(), training_free.len() + 1, "{r}");
        let names: Vec<&str> = panel.iter().map(|e| e["model"].as_str().unwrap()).collect();
        assert_eq!(names[..training_free.len()], training_free[..]);
        for e in panel {
            assert!(["tampered", "inconclusive", "clean"].contains(&e["verdict"].as_str().unwrap()), "{e}");
            assert!(e["regions"].is_array() && e["numbered"].as_u64().unwrap() <= 5, "{e}");
        }
        assert_eq!(panel.last().unwrap()["weights"], SHIPPED_WEIGHTS);
        // The command's own model is one of the panel's, with the same score.
        let own = panel.iter().find(|e| e["model"] == r["model"]["name"]).expect("the own model is in the panel");
        assert_eq!((&own["score"], &own["verdict"]), (&r["score"], &r["verdict"]));
        assert_eq!(r["outputs"]["panel"], "p.panel.png");
        for f in ["p.mask.png", "p.prob.png", "p.overlay.png"] {
            assert!(out.join(f).is_file(), "{f}: the usual files come with the panel");
        }
        let png = image::open(out.join("p.panel.png")).unwrap().to_rgb8();
        let (w, h) = panel_size(45, 31, panel.len() + 1);
        assert_eq!(png.dimensions(), (w as u32, h as u32), "one tile per detector plus the photo");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A smooth, pristine-like picture (soft gradients and shading with a little sensor-like noise),
/// saved as a JPEG at quality 85: no region of it has another compression history.
fn write_pristine_jpeg(path: &Path, w: u32, h: u32) {
    let mut rng = 12345u32;
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        rng = rng.wrapping_mul(1664525).wrapping_add(1013904223);
        let n = ((rng >> 24) as f32 / 255.0 - 0.5) * 6.0;
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let shade = 40.0 * (fx * 5.0).sin() * (fy * 3.0).cos();
        let c = |base: f32, k: f32| (base + k * fx * 60.0 + shade + n).clamp(0.0, 255.0) as u8;
        image::Rgb([c(120.0, 1.0), c(140.0, -0.5), c(90.0 + 50.0 * fy, 0.3)])
    });
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut f, 85).encode_image(&img).unwrap();
}

/// ELA on a pristine-like JPEG: not `tampered`; the summary line carries the verdict and the
/// calibration and names at most three regions; the report has the verdict fields.
#[test]
fn ela_does_not_call_a_pristine_like_jpeg_tampered() {
    let dir = tmpdir("infer-verdict");
    let img = dir.join("calm.jpg");
    write_pristine_jpeg(&img, 320, 240);
    let out = dir.join("out");
    let o = bin().args(["infer", "--model", "ela", "--out"]).arg(&out).arg(&img).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let line = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("calm.json")).unwrap()).unwrap();
    assert_eq!(r["model"]["name"], "ela");
    println!("{line}");
    let verdict = r["verdict"].as_str().unwrap();
    assert!(verdict == "clean" || verdict == "inconclusive", "{verdict}: {line}");
    assert!(line.contains(&format!(": 320x240, {verdict} (score ")), "{line}");
    assert!(line.contains("set for 5% false alarms (") && line.contains("on 128 pristine"), "{line}");
    assert!(line.matches('[').count() <= 3, "{line}");
    let c = &r["calibration"];
    assert_eq!(c["target_false_alarm_rate"].as_f64(), Some(0.05), "{c}");
    assert!(c["measured_false_alarm_rate"].as_f64().unwrap() <= 0.05, "{c}");
    assert_eq!(c["pristine_images"], 128);
    assert_eq!(c["score"]["rule"], "largest_region");
    assert!(c["score_definition"].as_str().unwrap().contains("largest region"));
    let (t, cl) = (c["tampered_above"].as_f64().unwrap(), c["clean_at_or_below"].as_f64().unwrap());
    assert!(cl <= t);
    let score = r["score"].as_f64().unwrap();
    assert_eq!(
        verdict,
        if score > t {
            "tampered"
        } else if score <= cl {
            "clean"
        } else {
            "inconclusive"
        }
    );
    // Default cleaning: no opening, regions of at least 0.1% of the image (77 of 76800 pixels).
    assert_eq!(r["cleaning"], serde_json::json!({"open": 0, "close": 0, "min_area": 77}));
    for g in r["regions"].as_array().unwrap() {
        assert!(g["area"].as_u64().unwrap() >= 77 && g["evidence"].is_number(), "{g}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
