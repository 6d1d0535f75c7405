//! `wgpu-forge eval` end to end through the binary: pairing by suffix, an authentic image, a mask
//! of the wrong size, metrics.json against the library's detector and metrics, robustness outputs.

mod common;

use std::path::Path;

use common::{bin, tiny_weights, tmpdir, write_png};

use wgpu_forge::eval::metrics::image_metrics;
use wgpu_forge::graph::Engine;
use wgpu_forge::imageio::{default_max_pixels, load_rgb8};
use wgpu_forge::pipeline::Detector;

/// A mask with a tampered rectangle (x0..x1, y0..y1); an empty rectangle gives an empty mask.
fn write_mask(path: &Path, w: u32, h: u32, (x0, x1, y0, y1): (u32, u32, u32, u32)) -> Vec<bool> {
    let m = image::GrayImage::from_fn(w, h, |x, y| {
        image::Luma([if (x0..x1).contains(&x) && (y0..y1).contains(&y) { 255 } else { 0 }])
    });
    m.save(path).unwrap();
    m.as_raw().iter().map(|&v| v > 127).collect()
}

/// The report's AUC and ours: both absent, or equal to 1e-12. (serde_json's default float parser
/// read 0.49624661363636363 back as 0.4962466136363636; with its `float_roundtrip` feature, on in
/// Cargo.toml since, it reads floats exactly, checked below. The tolerance stays, as for F1.)
fn same_auc(report: Option<f64>, ours: Option<f64>) -> bool {
    match (report, ours) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() < 1e-12,
        _ => false,
    }
}

#[test]
fn eval_scores_pairs_names_the_bad_one_and_writes_reports() {
    let dir = tmpdir("eval-run");
    let weights = tiny_weights(&dir);
    let (images, masks, out) = (dir.join("images"), dir.join("masks"), dir.join("out"));
    std::fs::create_dir_all(&images).unwrap();
    std::fs::create_dir_all(&masks).unwrap();
    write_png(&images.join("spliced.png"), 96, 64, 1);
    let spliced_gt = write_mask(&masks.join("spliced_gt.png"), 96, 64, (20, 60, 10, 40));
    write_png(&images.join("authentic.png"), 80, 60, 2);
    let authentic_gt = write_mask(&masks.join("authentic.png"), 80, 60, (0, 0, 0, 0));
    write_png(&images.join("mismatch.png"), 64, 48, 3);
    write_mask(&masks.join("mismatch_mask.png"), 50, 40, (5, 20, 5, 20));
    write_mask(&masks.join("orphan_gt.png"), 10, 10, (0, 5, 0, 5));

    let o = bin()
        .env("FORGE_BACKEND", "cpu")
        .args(["eval", "--images"])
        .arg(&images)
        .arg("--masks")
        .arg(&masks)
        .arg("--weights")
        .arg(&weights)
        .arg("--out")
        .arg(&out)
        .args(["--perturb", "jpeg:90", "--perturb", "blur:3;noise:7"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "one pair is bad\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("mismatch.png") && stderr.contains("50x40") && stderr.contains("64x48"), "{stderr}");
    assert!(stderr.contains("orphan_gt.png"), "the unpaired mask is listed: {stderr}");
    assert!(stdout.contains("spliced.png") && stdout.contains("(empty mask)") && stdout.contains("mean (2 images)"));
    assert!(stdout.contains("each image's own resolution"), "{stdout}");

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(report["images"], 2);
    assert_eq!(report["empty_mask_images"], 1);
    assert_eq!(report["failed"].as_array().unwrap().len(), 1);
    assert!(report["failed"][0]["image"].as_str().unwrap().ends_with("mismatch.png"));
    assert_eq!(report["robustness"].as_array().unwrap().len(), 3);
    assert_eq!(report["robustness"][0]["kind"], "jpeg");
    assert_eq!(report["image_level"]["authentic"], 1);

    // The per-image metrics equal the library's on the library detector's maps (the same backend).
    let mut det = Detector::from_weights_file(Engine::Cpu, &weights, None).unwrap();
    let rows = report["per_image"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let mut f1_sum = 0.0;
    for (name, gt) in [("authentic.png", &authentic_gt), ("spliced.png", &spliced_gt)] {
        let row = rows.iter().find(|r| r["image"].as_str().unwrap().ends_with(name)).unwrap();
        let d = det.detect(&load_rgb8(images.join(name), default_max_pixels()).unwrap()).unwrap();
        let m = image_metrics(&d.prob, gt, d.width, d.height, 0.5);
        for (key, want) in
            [("f1", m.f1), ("f1_permuted", m.f1_permuted), ("iou", m.iou), ("best_f1", m.best_f1), ("score", m.score)]
        {
            assert!((row[key].as_f64().unwrap() - want).abs() < 1e-9, "{name} {key}: {} vs {want}", row[key]);
        }
        assert!(same_auc(row["auc"].as_f64(), m.auc), "{name}: auc {} vs {:?}", row["auc"], m.auc);
        f1_sum += m.f1;
    }
    assert!((report["mean"]["f1"].as_f64().unwrap() - f1_sum / 2.0).abs() < 1e-9);

    let csv = std::fs::read_to_string(out.join("per_image.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let plot = image::open(out.join("robustness.png")).unwrap();
    assert!(plot.width() > 200 && plot.height() > 100);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_without_pairs_or_with_a_bad_spec_fails_clearly() {
    let dir = tmpdir("eval-errors");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = bin().args(["eval", "--images"]).arg(&empty).arg("--masks").arg(&empty).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no image in"), "{stderr}");
    let o = bin()
        .args(["eval", "--perturb", "blur:4", "--images"])
        .arg(&empty)
        .arg("--masks")
        .arg(&empty)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("odd kernel size"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Floats written to a report read back bit for bit (serde_json's `float_roundtrip`).
#[test]
fn report_floats_read_back_exactly() {
    for v in [0.49624661363636363f64, 0.1 + 0.2, 1.0 / 3.0, 2.2250738585072014e-308, 123456.789e-7] {
        let text = serde_json::to_string(&serde_json::json!({ "auc": v })).unwrap();
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["auc"].as_f64().unwrap().to_bits(), v.to_bits(), "{text}");
    }
}

#[test]
fn eval_tile_scores_the_tiled_map() {
    let dir = tmpdir("eval-tile");
    let weights = tiny_weights(&dir); // a 64 x 96 model input
    let (images, out) = (dir.join("images"), dir.join("out"));
    std::fs::create_dir_all(&images).unwrap();
    write_png(&images.join("big.png"), 150, 100, 4);
    let gt = write_mask(&images.join("big_gt.png"), 150, 100, (30, 110, 20, 70));
    let o = bin()
        .env("FORGE_BACKEND", "cpu")
        .args(["eval", "--tile", "--tile-overlap", "16", "--threshold", "0.3", "--images"])
        .arg(&images)
        .arg("--masks")
        .arg(&images)
        .arg("--weights")
        .arg(&weights)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("in overlapping 96x64 tiles"), "{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(report["tile"], true);
    let mut det = Detector::from_weights_file(Engine::Cpu, &weights, None).unwrap();
    let d = det.detect_tiled(&load_rgb8(images.join("big.png"), default_max_pixels()).unwrap(), 16).unwrap();
    let m = image_metrics(&d.prob, &gt, d.width, d.height, 0.3);
    let row = &report["per_image"][0];
    assert!((row["f1"].as_f64().unwrap() - m.f1).abs() < 1e-9 && (row["iou"].as_f64().unwrap() - m.iou).abs() < 1e-9);
    assert!(same_auc(row["auc"].as_f64(), m.auc), "auc {} vs {:?}", row["auc"], m.auc);
    let o = bin()
        .args(["eval", "--tile", "--resolution", "model", "--images"])
        .arg(&images)
        .arg("--masks")
        .arg(&images)
        .arg("--weights")
        .arg(&weights)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--tile"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_compares_several_models_in_one_run() {
    let dir = tmpdir("eval-models");
    let (images, out) = (dir.join("images"), dir.join("out"));
    std::fs::create_dir_all(&images).unwrap();
    write_png(&images.join("a.png"), 48, 32, 1);
    write_mask(&images.join("a_gt.png"), 48, 32, (10, 30, 8, 20));
    write_png(&images.join("b.png"), 40, 30, 2);
    write_mask(&images.join("b_gt.png"), 40, 30, (0, 12, 0, 12));
    let o = bin()
        .args(["eval", "--model", "ela,noise", "--images"])
        .arg(&images)
        .arg("--masks")
        .arg(&images)
        .arg("--out")
        .arg(&out)
        .args(["--perturb", "jpeg:90,70"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // The comparison table: a header and one row per model, in the order given.
    let table: Vec<&str> = stdout.lines().skip_while(|l| !l.starts_with("models (")).skip(2).collect();
    assert_eq!(table.len(), 2, "{stdout}");
    assert!(table[0].starts_with("ela ") && table[1].starts_with("noise "), "{stdout}");
    assert!(stdout.contains("a.png / ela") && stdout.contains("b.png / noise"), "{stdout}");
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("models.json")).unwrap()).unwrap();
    let models = summary["models"].as_array().unwrap();
    assert_eq!(models.iter().map(|m| m["model"].as_str().unwrap()).collect::<Vec<_>>(), ["ela", "noise"]);
    for m in ["ela", "noise"] {
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(m).join("metrics.json")).unwrap()).unwrap();
        assert_eq!((r["model"].as_str(), r["images"].as_u64()), (Some(m), Some(2)));
        assert_eq!(r["robustness"].as_array().unwrap().len(), 2);
        assert_eq!(std::fs::read_to_string(out.join(m).join("per_image.csv")).unwrap().lines().count(), 3);
        let row = models.iter().find(|x| x["model"] == m).unwrap();
        assert_eq!(row["mean"], r["mean"]);
    }
    let plot = image::open(out.join("robustness.png")).unwrap().to_rgb8();
    // One panel (jpeg), the legend strip under it with both models' colours.
    use wgpu_forge::eval::plot::{COLORS, LEGEND_H, PANEL_H, PANEL_W};
    assert_eq!(plot.dimensions(), (PANEL_W, PANEL_H + LEGEND_H));
    for (r, g, b) in &COLORS[..2] {
        assert!(plot.enumerate_pixels().any(|(_, y, p)| y >= PANEL_H && p.0 == [*r, *g, *b]), "legend colour");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
