//! examples/ray/forge_ray.py on a local Ray cluster: a folder run through Ray Data, the driver
//! killed halfway (SIGKILL to its process group) and run again, ends with every image exactly
//! once in the JSON lines; then `infer --jsonl` finds nothing left to do in the same file.
//! Skipped, with a message, when Python's `ray[data]` is not installed (FORGE_PYTHON names the
//! interpreter, default python3).

mod common;

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, tmpdir, write_png};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ray/forge_ray.py");

/// The Python with ray[data]: FORGE_PYTHON (.ci/run sets up a virtual environment), else python3.
fn python() -> String {
    std::env::var("FORGE_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn count_lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map_or(0, |t| t.lines().count())
}

fn driver(dir: &Path) -> Command {
    let mut c = Command::new(python());
    c.arg(SCRIPT)
        .arg("imgs")
        .arg("out.jsonl")
        .args(["--batch-size", "2"])
        .current_dir(dir)
        .env("WGPU_FORGE", env!("CARGO_BIN_EXE_wgpu-forge"))
        .env("NODEVICE_SELECT", "1")
        .env("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0");
    c
}

#[test]
fn ray_example_killed_halfway_and_restarted_has_every_image_once() {
    let have_ray = Command::new(python()).args(["-c", "import ray.data"]).stderr(Stdio::null()).status();
    if !have_ray.is_ok_and(|s| s.success()) {
        eprintln!("skipped: Python's ray[data] is not installed (pip install 'ray[data]'); examples/ray untested");
        return;
    }
    let dir = tmpdir("ray-example");
    std::fs::create_dir_all(dir.join("imgs")).unwrap();
    let n = 24;
    let mut want = BTreeSet::new();
    for i in 0..n {
        write_png(&dir.join(format!("imgs/img{i:02}.png")), 40 + i % 7, 32 + i % 5, i);
        want.insert(format!("imgs/img{i:02}.png"));
    }
    let jsonl = dir.join("out.jsonl");
    // Its own process group, so the kill takes the local Ray cluster with it.
    let mut child = driver(&dir).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0).spawn().unwrap();
    let t = Instant::now();
    while count_lines(&jsonl) < 2 {
        assert!(t.elapsed() < Duration::from_secs(120), "no line within 2 minutes");
        assert!(child.try_wait().unwrap().is_none(), "the driver ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pgid = child.id().to_string();
    Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).status().unwrap();
    child.wait().unwrap();
    let first = count_lines(&jsonl);
    assert!(first < n as usize, "killed halfway: {first} of {n}");

    let o = driver(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&format!("{first} already in out.jsonl")), "{stderr}");
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let files: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(files.len(), n as usize, "one line per image");
    assert_eq!(files.into_iter().collect::<BTreeSet<_>>(), want, "every image, once");
    // The CLI's --jsonl reads the same file: nothing left to do.
    let o = bin()
        .current_dir(&dir)
        .args(["infer", "--model", "ela", "--jsonl", "out.jsonl", "--out", "o", "imgs"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("skipped {n} images")),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(count_lines(&jsonl), n as usize);
    std::fs::remove_dir_all(&dir).unwrap();
}
