//! `wgpu-forge info`: adapters found, the one chosen and why, and what it can do.

use std::fmt::Write;

use crate::cli::{Backend, DeviceArgs};
use crate::gpu::device::{Gpu, WANTED_FEATURES};
use crate::Result;

pub fn run(dev: &DeviceArgs) -> Result<()> {
    let backend = dev.backend()?;
    print!("{}", describe_backend(&backend));
    print!("{}", models());
    Ok(())
}

/// Which engine runs the models and why, then the GPU adapters (chosen or passed over).
pub fn describe_backend(backend: &Backend) -> String {
    match backend {
        Backend::Gpu(gpu) => format!(
            "Engine: GPU ({}, {:?})

{}",
            gpu.info.name,
            gpu.info.backend,
            describe(gpu)
        ),
        Backend::Cpu { reason, passed_over } => {
            let mut s = format!(
                "Engine: CPU backend, {} threads (RAYON_NUM_THREADS sets them)
  why: {reason}
",
                crate::cpu::threads()
            );
            match passed_over {
                Some(gpu) => {
                    let _ = writeln!(
                        s,
                        "
Adapters found (not used for models):"
                    );
                    for a in &gpu.adapters {
                        let _ = writeln!(s, "   {} ({:?}, {:?})", a.info.name, a.info.device_type, a.info.backend);
                    }
                }
                None => {
                    let _ = writeln!(
                        s,
                        "
No GPU adapter in use."
                    );
                }
            }
            s
        }
    }
}

/// The models the registry holds (`--model`, `convert --arch`), the default marked.
pub fn models() -> String {
    let mut s = String::from("\nModels (--model NAME, convert --arch NAME):\n");
    use crate::cli::infer::{SHIPPED_WEIGHTS, SHIPPED_WEIGHTS_BYTES};
    let store = crate::weights::TensorStore::from_safetensors_bytes(SHIPPED_WEIGHTS_BYTES).ok();
    let default = store.and_then(|s| s.metadata.get("arch").cloned()).unwrap_or_default();
    for f in crate::models::REGISTRY {
        let mark = if f.name() == default { "*" } else { " " };
        let weights = if f.needs_weights() { "needs weights" } else { "no weights" };
        let aliases =
            if f.aliases().is_empty() { String::new() } else { format!(" (also {})", f.aliases().join(", ")) };
        let _ = writeln!(s, " {mark} {}{aliases}: {}; {weights}", f.name(), f.about());
        for (key, meaning) in f.settings() {
            let _ = writeln!(s, "       --set {key}=...  {meaning}");
        }
    }
    let _ = writeln!(s, "   * = the default when neither --weights nor --model is given: {SHIPPED_WEIGHTS}, built in");
    s
}

fn mib(b: u64) -> String {
    format!("{} MiB", b / (1 << 20))
}

pub fn describe(gpu: &Gpu) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Adapters found:");
    for a in &gpu.adapters {
        let mark = if a.chosen { "*" } else { " " };
        let _ = writeln!(
            s,
            " {mark} {} ({:?}, {:?}, driver: {} {})",
            a.info.name, a.info.device_type, a.info.backend, a.info.driver, a.info.driver_info
        );
    }
    let i = &gpu.info;
    let _ = writeln!(s, "\nChosen: {}\n  why: {}", i.name, gpu.reason);
    let _ = writeln!(s, "  backend: {:?}   type: {:?}   class: {:?}", i.backend, i.device_type, gpu.class);
    let _ =
        writeln!(s, "  driver: {} ({})   vendor 0x{:04x} device 0x{:04x}", i.driver, i.driver_info, i.vendor, i.device);
    let _ = writeln!(s, "\nFeatures we use:");
    for (f, name, what) in [
        (wgpu::Features::SHADER_F16, "SHADER_F16", "f16 storage and arithmetic"),
        (wgpu::Features::SUBGROUP, "SUBGROUP", "subgroup operations"),
        (wgpu::Features::TIMESTAMP_QUERY, "TIMESTAMP_QUERY", "GPU timestamps (profiling)"),
        (
            wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS,
            "TIMESTAMP_QUERY_INSIDE_ENCODERS",
            "timestamps between passes",
        ),
        (wgpu::Features::PIPELINE_CACHE, "PIPELINE_CACHE", "pipeline cache"),
    ] {
        debug_assert!(WANTED_FEATURES.contains(f));
        let _ = writeln!(s, "  [{}] {name}: {what}", if gpu.has(f) { "x" } else { " " });
    }
    let l = &gpu.limits;
    let _ = writeln!(s, "\nLimits that matter:");
    let _ = writeln!(s, "  max storage binding:        {}", mib(l.max_storage_buffer_binding_size as u64));
    let _ = writeln!(s, "  max buffer:                 {}", mib(l.max_buffer_size));
    let _ = writeln!(s, "  storage buffers per stage:  {}", l.max_storage_buffers_per_shader_stage);
    let _ = writeln!(s, "  workgroup memory:           {} KiB", l.max_compute_workgroup_storage_size / 1024);
    let _ = writeln!(s, "  invocations per workgroup:  {}", l.max_compute_invocations_per_workgroup);
    let _ = writeln!(
        s,
        "  workgroup size (x, y, z):   {} x {} x {}",
        l.max_compute_workgroup_size_x, l.max_compute_workgroup_size_y, l.max_compute_workgroup_size_z
    );
    let _ = writeln!(s, "  workgroups per dimension:   {}", l.max_compute_workgroups_per_dimension);
    let _ = writeln!(s, "  immediates (push consts):   {} B", l.max_immediate_size);
    let _ = writeln!(s, "  storage offset alignment:   {} B", l.min_storage_buffer_offset_alignment);
    if gpu.has(wgpu::Features::SUBGROUP) {
        let _ = writeln!(s, "  subgroup size:              {}..{}", i.subgroup_min_size, i.subgroup_max_size);
    }
    s
}
