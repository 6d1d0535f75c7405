//! CI's fuzz smoke: build the libFuzzer targets of `fuzz/` with the stable toolchain (no cargo-fuzz
//! binary needed; `fuzz/fuzz.sh` passes rustc the coverage flags itself), in a target dir of their
//! own, and run each target for a few seconds on its committed seeds under an RSS limit and a
//! per-input timeout. Any crash, panic, leak of memory past the limit or slow input fails the test.
//!
//! Cost on a clean clone with 2 cores: see docs/RELIABILITY.md, "Fuzzing" (mostly the build; the
//! runs are `FORGE_FUZZ_SMOKE_SECS` seconds per target, default 15). Linux only (libFuzzer as
//! cargo-fuzz builds it). `FORGE_FUZZ_SMOKE=0` skips it, e.g. for quick local runs.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

#[test]
#[cfg(target_os = "linux")]
fn fuzz_smoke_all_targets() {
    if std::env::var("FORGE_FUZZ_SMOKE").is_ok_and(|v| v == "0") {
        println!("FORGE_FUZZ_SMOKE=0: fuzz smoke skipped");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let secs: u32 = std::env::var("FORGE_FUZZ_SMOKE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    assert!(
        Command::new(&cxx).arg("--version").output().is_ok_and(|o| o.status.success()),
        "the fuzz smoke builds libFuzzer, which needs a C++ compiler ('{cxx}' not found): \
         apt-get install g++ (.ci/run does), or FORGE_FUZZ_SMOKE=0 to skip"
    );
    let t0 = Instant::now();
    let out = Command::new("bash")
        .arg(root.join("fuzz/fuzz.sh"))
        .arg("smoke")
        .arg(secs.to_string())
        .env("CARGO_TARGET_DIR", root.join("target/fuzz-smoke"))
        .env("FUZZ_RSS_MB", "2048")
        // The outer cargo's encoded flags would replace the coverage flags fuzz.sh sets.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .current_dir(&root)
        .output()
        .expect("cannot run bash fuzz/fuzz.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // What CI's log should show even on success: the build time and each target's executions.
    // Written to the process's stderr directly, past the test harness's capture.
    let summary: Vec<&str> =
        stdout.lines().filter(|l| l.starts_with("fuzz smoke") || l.starts_with("stat::")).collect();
    let _ =
        writeln!(std::io::stderr(), "{}\nfuzz smoke: {:.0} s in all", summary.join("\n"), t0.elapsed().as_secs_f64());
    let tail: Vec<&str> = stderr.lines().rev().take(80).collect::<Vec<_>>().into_iter().rev().collect();
    assert!(
        out.status.success(),
        "fuzz smoke failed ({}):\n{stdout}\n--- stderr (tail) ---\n{}",
        out.status,
        tail.join("\n")
    );
}
