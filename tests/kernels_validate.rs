//! Every kernel module parses and validates with naga before any device exists, every entry point's
//! bindings reflect as a pipeline needs them, and an error names the file and line. Generated
//! kernel files equal their generator's output.

use std::collections::HashSet;

use wgpu_forge::gpu::kernel::{Kernel, KernelFile};
use wgpu_forge::gpu::kernelgen;
use wgpu_forge::ops::all_kernels;

const DIR: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn every_kernel_file_is_registered_and_every_entry_point_valid() {
    let kernels = all_kernels();
    let mut failures = Vec::new();
    let mut entries = 0;
    for k in &kernels {
        match k.entry_points() {
            Ok(eps) if eps.is_empty() => failures.push(format!("kernel module '{}' has no entry point", k.name)),
            Ok(eps) => entries += eps.len(),
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(failures.is_empty(), "invalid kernels:\n{}", failures.join("\n"));
    assert!(entries > 40, "only {entries} entry points found");
    let names: HashSet<&str> = kernels.iter().map(|k| k.name).collect();
    assert_eq!(names.len(), kernels.len(), "two kernel modules share a name (the pipeline-cache key)");
    // Every file in kernels/ (except the shared prelude) is part of a registered module, and every
    // file a module names exists.
    let used: HashSet<&str> = kernels.iter().flat_map(|k| k.files.iter().map(|f| f.path)).collect();
    for entry in std::fs::read_dir(format!("{DIR}/kernels")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".wgsl") && name != "common.wgsl" {
            let path = format!("kernels/{name}");
            assert!(used.contains(path.as_str()), "{path} is not part of any kernel module in src/ops/");
        }
    }
    for path in used {
        assert!(std::path::Path::new(&format!("{DIR}/{path}")).is_file(), "{path} does not exist");
    }
}

#[test]
fn generated_kernels_match_their_generator() {
    let regen = std::env::var("FORGE_REGEN_KERNELS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for g in kernelgen::files() {
        let path = format!("{DIR}/{}", g.path);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != g.text {
            if regen {
                std::fs::write(&path, &g.text).unwrap();
            } else {
                stale.push(g.path);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{} differ from the output of src/gpu/kernelgen.rs; generated files are never edited by hand: change the \
         generator, then run `FORGE_REGEN_KERNELS=1 cargo test --release --test kernels_validate`",
        stale.join(", ")
    );
}

fn file(path: &'static str, text: &'static str) -> KernelFile {
    KernelFile { path, text }
}

/// A module of test files (leaked: modules hold `'static` file lists).
fn module(name: &'static str, files: Vec<KernelFile>) -> Kernel {
    Kernel { name, files: files.leak() }
}

#[test]
fn errors_point_at_the_kernel_file_and_line() {
    let bad = module("broken", vec![file("kernels/broken.wgsl", "fn f() -> f32 {\n    return 1.0\n}\n")]);
    let msg = bad.validate().unwrap_err().to_string();
    assert!(msg.starts_with("kernels/broken.wgsl:"), "{msg}");
    let line: usize = msg.split(':').nth(1).unwrap().parse().unwrap();
    assert!((2..=3).contains(&line), "line {line} in {msg}");
    let bad_type = vec![file("kernels/typed.wgsl", "fn g() -> u32 {\n    let x: f32 = 1.0;\n    return x;\n}\n")];
    let msg = module("typed", bad_type).validate().unwrap_err().to_string();
    assert!(msg.starts_with("kernels/typed.wgsl:"), "{msg}");
    // In a module of several files, the error names the file that holds the line.
    let two = vec![
        file("kernels/first.wgsl", "fn ok() -> f32 {\n    return 1.0;\n}\n"),
        file("kernels/second.wgsl", "\n\nfn g() -> u32 {\n    return 1.0;\n}\n"),
    ];
    let msg = module("two", two).validate().unwrap_err().to_string();
    assert!(msg.starts_with("kernels/second.wgsl:4:"), "{msg}");
}

#[test]
fn entry_point_binding_errors_name_the_file() {
    let decls = "struct P { n: u32 }\n@group(0) @binding(0) var<uniform> U: P;\n@group(1) @binding(0) var<storage, read> X: array<f32>;\n";
    let ep = "@compute @workgroup_size(1)\nfn main() {\n    let v = X[U.n];\n}\n";
    let files = vec![file("kernels/decls.wgsl", decls), file("kernels/entry.wgsl", ep)];
    let msg = module("groups", files).entry_points().unwrap_err().to_string();
    assert!(
        msg.starts_with("kernels/decls.wgsl:3:") && msg.contains("entry point 'main'") && msg.contains("group 0"),
        "{msg}"
    );
    // Two variables on one binding number are fine in a file, not in one entry point (naga's check).
    let twice = "@group(0) @binding(0) var<storage, read> A: array<f32>;\n@group(0) @binding(0) var<storage, read> A4: array<vec4<f32>>;\n\
                 @group(0) @binding(1) var<storage, read_write> Y: array<f32>;\n\
                 @compute @workgroup_size(1)\nfn one() {\n    Y[0] = A[0];\n}\n\
                 @compute @workgroup_size(1)\nfn both() {\n    Y[0] = A[0] + A4[0].x;\n}\n";
    let files = vec![file("kernels/twice.wgsl", twice)];
    let msg = module("twice", files).entry_points().unwrap_err().to_string();
    assert!(
        msg.starts_with("kernels/twice.wgsl:2:") && msg.contains("Entry point both") && msg.contains("conflict"),
        "{msg}"
    );
}

#[test]
fn uniform_sizes_are_reflected() {
    let src = "struct P { a: u32, b: f32, c: vec4<f32> }\n@group(0) @binding(0) var<uniform> U: P;\n\
               @group(0) @binding(1) var<storage, read_write> Y: array<f32>;\n\
               @compute @workgroup_size(1)\nfn main() {\n    Y[0] = U.b + U.c.x;\n}\n";
    let files = vec![file("kernels/sizes.wgsl", src)];
    let eps = module("sizes", files).entry_points().unwrap();
    // a, b, then c aligned to 16: 32 bytes.
    assert_eq!(eps[0].1[0].uniform_size, Some(32));
    assert_eq!(eps[0].1[1].uniform_size, None);
}
