//! Every kernel parses and validates with naga before any device exists; an error names the file and line.

use wgpu_forge::gpu::kernel::Kernel;
use wgpu_forge::ops::all_kernels;

#[test]
fn every_kernel_file_is_registered_and_valid() {
    let kernels = all_kernels();
    let mut failures = Vec::new();
    for k in &kernels {
        if let Err(e) = k.validate() {
            failures.push(e.to_string());
        }
    }
    assert!(failures.is_empty(), "invalid kernels:\n{}", failures.join("\n"));
    // Every file in kernels/ (except the shared prelude) belongs to a registered op family.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/kernels");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".wgsl") else { continue };
        if stem != "common" {
            assert!(kernels.iter().any(|k| k.name == stem), "kernels/{name} is not registered in src/ops/mod.rs");
        }
    }
}

#[test]
fn errors_point_at_the_kernel_file_and_line() {
    let bad = Kernel { name: "broken", source: "fn f() -> f32 {\n    return 1.0\n}\n" };
    let msg = bad.validate().unwrap_err().to_string();
    assert!(msg.starts_with("kernels/broken.wgsl:"), "{msg}");
    let line: usize = msg.split(':').nth(1).unwrap().parse().unwrap();
    assert!((2..=3).contains(&line), "line {line} in {msg}");
    let bad_type = Kernel { name: "typed", source: "fn g() -> u32 {\n    let x: f32 = 1.0;\n    return x;\n}\n" };
    let msg = bad_type.validate().unwrap_err().to_string();
    assert!(msg.starts_with("kernels/typed.wgsl:"), "{msg}");
}
