//! Resumable, sharded batches through the binary: `infer --jsonl` killed halfway and run again
//! ends with every image exactly once; `--shard I/N` processes share one file without a
//! duplicate or a torn line; the scheduler's CUDA_VISIBLE_DEVICES picks the device.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{bin, tmpdir, write_png};
use sha2::{Digest, Sha256};

/// `n` distinct small images in `dir/imgs`, and their sha256 by path as `infer` names them.
fn folder(dir: &Path, n: u32) -> (PathBuf, BTreeMap<String, String>) {
    let imgs = dir.join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    let mut want = BTreeMap::new();
    for i in 0..n {
        let p = imgs.join(format!("img{i:02}.png"));
        write_png(&p, 48 + i % 5, 40 + i % 3, i);
        let sha: String = Sha256::digest(std::fs::read(&p).unwrap()).iter().map(|b| format!("{b:02x}")).collect();
        want.insert(p.display().to_string(), sha);
    }
    (imgs, want)
}

/// The (file, sha256) of every whole line, and the lines that are not whole reports.
fn read_lines(jsonl: &Path) -> (Vec<(String, String)>, Vec<String>) {
    let text = std::fs::read_to_string(jsonl).unwrap_or_default();
    let (mut reports, mut other) = (Vec::new(), Vec::new());
    for l in text.lines() {
        match serde_json::from_str::<serde_json::Value>(l) {
            Ok(v) => {
                assert!(v["score"].is_number() && v["verdict"].is_string(), "a report: {l}");
                reports.push((v["file"].as_str().unwrap().to_string(), v["sha256"].as_str().unwrap().to_string()));
            }
            Err(_) => other.push(l.to_string()),
        }
    }
    (reports, other)
}

/// The (file, sha256) of every line; panics on a line that is not a whole report.
fn lines(jsonl: &Path) -> Vec<(String, String)> {
    let (reports, other) = read_lines(jsonl);
    assert!(other.is_empty(), "torn lines: {other:?}");
    reports
}

/// Lines finished so far (ended by a newline), while a process may be writing.
fn finished(jsonl: &Path) -> usize {
    std::fs::read(jsonl).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}

fn assert_each_once(got: &[(String, String)], want: &BTreeMap<String, String>) {
    let mut seen = BTreeMap::new();
    for (f, s) in got {
        assert!(seen.insert(f.clone(), s.clone()).is_none(), "{f} twice");
    }
    assert_eq!(&seen, want, "every image once, with its content's sha256");
}

#[test]
fn jsonl_batch_killed_halfway_resumes_with_every_image_once() {
    let dir = tmpdir("jsonl-resume");
    let (imgs, want) = folder(&dir, 24);
    let jsonl = dir.join("out.jsonl");
    let run = || {
        let mut c = bin();
        c.args(["infer", "--model", "ela", "--jsonl"]).arg(&jsonl).arg("--out").arg(dir.join("out")).arg(&imgs);
        c
    };
    let mut child = run().stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t = Instant::now();
    while finished(&jsonl) < 2 && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no chance to finish a line or clean up
    child.wait().unwrap();
    let first = read_lines(&jsonl).0.len();
    assert!((2..24).contains(&first), "killed halfway: {first} of 24 done");
    // As if the kill had landed in the middle of writing a line.
    let mut f = std::fs::OpenOptions::new().append(true).open(&jsonl).unwrap();
    std::io::Write::write_all(&mut f, b"{\"file\": \"imgs/img0").unwrap();
    drop(f);

    let o = run().output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&format!("resuming: {first} images already in")), "{stderr}");
    assert!(stderr.contains("(1 unfinished lines skipped)"), "{stderr}");
    assert!(stderr.contains(&format!("skipped {first} images")), "{stderr}");
    // The torn line stays (the file is never rewritten) and the line after it starts afresh.
    let (reports, torn) = read_lines(&jsonl);
    assert_eq!(torn, ["{\"file\": \"imgs/img0"]);
    assert_each_once(&reports, &want);
    // A third run has nothing left to do.
    let o = run().output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("skipped 24 images"));
    assert_eq!(read_lines(&jsonl).0.len(), 24);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shards_share_one_jsonl_without_duplicates_and_bad_input_is_named() {
    let dir = tmpdir("jsonl-shards");
    let (imgs, want) = folder(&dir, 9);
    let jsonl = dir.join("all.jsonl");
    // Three processes at once, appending to the same file.
    let children: Vec<_> = (0..3)
        .map(|i| {
            bin()
                .args(["infer", "--model", "ela", "--shard", &format!("{i}/3"), "--jsonl"])
                .arg(&jsonl)
                .arg("--out")
                .arg(dir.join("out"))
                .arg(&imgs)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_each_once(&lines(&jsonl), &want);
    // Shard 1 of 3 holds the sorted listing's images 1, 4, 7.
    let o = bin()
        .args(["infer", "--model", "ela", "--json", "--shard", "1/3", "--out"])
        .arg(dir.join("out1"))
        .arg(&imgs)
        .output()
        .unwrap();
    let files: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["file"].as_str().unwrap().to_string())
        .collect();
    let names: Vec<&str> = files.iter().map(|f| f.rsplit('/').next().unwrap()).collect();
    assert_eq!(names, ["img01.png", "img04.png", "img07.png"]);
    // A --jsonl file that is not ours is refused, named, and left as it was.
    let other = dir.join("notes.jsonl");
    std::fs::write(&other, "my notes\n").unwrap();
    let o = bin()
        .args(["infer", "--model", "ela", "--jsonl"])
        .arg(&other)
        .arg("--out")
        .arg(dir.join("o2"))
        .arg(&imgs)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("notes.jsonl") && stderr.contains("line 1"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "my notes\n");
    let o = bin().args(["infer", "--model", "ela", "--shard", "3/3"]).arg(&imgs).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--shard 3/3"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scheduler_visible_devices_pick_the_adapter() {
    // No GPU granted (as Ray sets for an actor without GPUs): models run on the CPU backend, and
    // `info` says the grant is why.
    let o = bin().arg("info").env("CUDA_VISIBLE_DEVICES", "").env_remove("FORGE_ADAPTER").output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success() && out.contains("CPU backend") && out.contains("grants no GPU"), "{out}{err}");
    // A GPU index on a machine that shows fewer GPUs: a clear error, not some other device.
    let o = bin().arg("info").env("CUDA_VISIBLE_DEVICES", "7").env_remove("FORGE_ADAPTER").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("CUDA_VISIBLE_DEVICES='7' asks for GPU 7"), "{err}");
    // --adapter wins over the scheduler's variable.
    let o = bin().args(["info", "--adapter", "llvmpipe"]).env("ROCR_VISIBLE_DEVICES", "7").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
