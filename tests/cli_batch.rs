//! `infer --batch N` and `eval --batch N` through the binary: the files and reports they write
//! are those of an unbatched run (reports up to their timings) on the CPU backend and on
//! lavapipe, a bad file in a group fails alone with the usual exit code, and `--jsonl` /
//! `--shard` work with groups.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{bin, tmpdir, write_png};

/// `n` small images of three sizes and a file that is not an image, in `dir/imgs`.
fn inputs(dir: &Path, n: u32) -> PathBuf {
    let imgs = dir.join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    for i in 0..n {
        write_png(&imgs.join(format!("img{i:02}.png")), 40 + 8 * (i % 3), 32 + 4 * (i % 3), i);
    }
    std::fs::write(imgs.join("img03b.jpg"), b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    imgs
}

/// Every file of `out` by name: its bytes, reports without their timings.
fn outputs(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut all = BTreeMap::new();
    for e in std::fs::read_dir(out).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let mut bytes = std::fs::read(&p).unwrap();
        if name.ends_with(".json") {
            let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            v.as_object_mut().unwrap().remove("timings_s").expect("reports have timings");
            bytes = v.to_string().into_bytes();
        }
        all.insert(name, bytes);
    }
    all
}

#[test]
fn batched_infer_writes_what_unbatched_infer_writes() {
    let dir = tmpdir("infer-batched");
    let imgs = inputs(&dir, 7);
    for backend in ["cpu", "vulkan"] {
        for model in [None, Some("ela")] {
            let run = |batch: &str| {
                let out = dir.join(format!("out-{backend}-{}-{batch}", model.unwrap_or("default")));
                let mut c = bin();
                c.args(["infer", "--backend", backend, "--save-raw", "--scales", "--batch", batch, "--out"]).arg(&out);
                if let Some(m) = model {
                    c.args(["--model", m]);
                }
                let o = c.arg(&imgs).output().unwrap();
                let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
                assert_eq!(o.status.code(), Some(1), "{backend} {model:?} --batch {batch}: one input is bad: {stderr}");
                assert!(stderr.contains("img03b.jpg") && stderr.contains("1 of 8 inputs failed"), "{stderr}");
                let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
                let order: Vec<String> = stdout.lines().map(|l| l.split(':').next().unwrap().to_string()).collect();
                (outputs(&out), order, stderr)
            };
            let (single, order1, _) = run("1");
            let (batched, order4, stderr) = run("4");
            let what = format!("{backend}, {}", model.unwrap_or("the shipped default"));
            assert!(stderr.contains("per engine submission"), "{what}: the grouping is announced: {stderr}");
            assert!(single.len() >= 7 * 5, "{what}: {:?}", single.keys());
            assert_eq!(single.keys().collect::<Vec<_>>(), batched.keys().collect::<Vec<_>>(), "{what}");
            for (name, bytes) in &single {
                assert!(bytes == &batched[name], "{what}: {name} differs between --batch 1 and --batch 4");
            }
            assert_eq!(order1, order4, "{what}: lines in the listing's order");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn batched_infer_resumes_from_jsonl_and_shares_shards() {
    let dir = tmpdir("infer-batched-jsonl");
    let imgs = inputs(&dir, 9);
    let jsonl = dir.join("all.jsonl");
    let shard = |i: usize| {
        bin()
            .args(["infer", "--model", "ela", "--batch", "3", "--shard", &format!("{i}/2"), "--jsonl"])
            .arg(&jsonl)
            .arg("--out")
            .arg(dir.join("out"))
            .arg(&imgs)
            .output()
            .unwrap()
    };
    // The broken file is in shard 0 (the sorted listing's 5th of 10) and fails alone there.
    let (o0, o1) = (shard(0), shard(1));
    assert_eq!((o0.status.code(), o1.status.code()), (Some(1), Some(0)), "{}", String::from_utf8_lossy(&o0.stderr));
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let mut files: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["file"].as_str().unwrap().to_string())
        .collect();
    files.sort();
    let want: Vec<String> = (0..9).map(|i| imgs.join(format!("img{i:02}.png")).display().to_string()).collect();
    assert_eq!(files, want, "every image once");
    // Run again: everything logged is skipped; only the broken file is tried (and fails) again.
    let again = shard(0);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("skipped 4 images already in the --jsonl file"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap(), text, "nothing appended");
    let zero = bin().args(["infer", "--model", "ela", "--batch", "0"]).arg(&imgs).output().unwrap();
    assert_eq!(zero.status.code(), Some(1), "refused: {}", String::from_utf8_lossy(&zero.stderr));
    assert!(String::from_utf8_lossy(&zero.stderr).contains("--batch 0"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn batched_eval_gives_the_unbatched_metrics_and_a_bad_pair_fails_alone() {
    let dir = tmpdir("eval-batched");
    let (images, masks) = (dir.join("images"), dir.join("masks"));
    std::fs::create_dir_all(&images).unwrap();
    std::fs::create_dir_all(&masks).unwrap();
    for i in 0..5u32 {
        let (w, h) = (40 + 8 * (i % 2), 32 + 4 * (i % 2));
        write_png(&images.join(format!("im{i}.png")), w, h, i);
        let gt = image::GrayImage::from_fn(w, h, |x, y| image::Luma([if x < w / 2 && y > h / 3 { 255 } else { 0 }]));
        gt.save(masks.join(format!("im{i}_gt.png"))).unwrap();
    }
    // A mask of another size: this pair fails, the others of its group do not.
    image::GrayImage::new(10, 10).save(masks.join("im2_gt.png")).unwrap();
    for backend in ["cpu", "vulkan"] {
        let run = |batch: &str| {
            let out = dir.join(format!("out-{backend}-{batch}"));
            let o = bin()
                .args([
                    "eval",
                    "--backend",
                    backend,
                    "--model",
                    "ela,noise",
                    "--weights",
                    "weights/pmsp-mobilenet.safetensors",
                ])
                .arg("--images")
                .arg(&images)
                .arg("--masks")
                .arg(&masks)
                .args(["--perturb", "jpeg:80", "--batch", batch, "--out"])
                .arg(&out)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
            assert_eq!(o.status.code(), Some(1), "{backend} --batch {batch}: one pair is bad: {stderr}");
            assert!(stderr.contains("im2.png"), "{stderr}");
            let mut all = BTreeMap::new();
            for model in ["ela", "noise", "pmsp"] {
                let report: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(out.join(model).join("metrics.json")).unwrap()).unwrap();
                assert_eq!(report["images"], 4, "{backend} {model}");
                all.insert(model, (report["per_image"].clone(), report["robustness"].clone()));
            }
            all
        };
        assert_eq!(run("1"), run("3"), "{backend}: --batch 3 gives the metrics of --batch 1");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
