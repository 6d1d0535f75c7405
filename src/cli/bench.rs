//! `wgpu-forge bench`: kernels at model shapes, GPU time and GFLOP/s.

use crate::bench::{cases, measure};
use crate::cli::DeviceArgs;
use crate::Result;

pub fn run(dev: &DeviceArgs, filter: Option<&str>, reps: usize) -> Result<()> {
    let gpu = dev.open()?;
    let date = std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d").output().ok();
    let date = date.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    println!(
        "device: {} ({:?}, {:?}); {date}; median of {reps} runs after one warm-up",
        gpu.info.name, gpu.info.backend, gpu.class
    );
    println!("| family | case | GPU ms | wall ms | GFLOP/s | GB/s |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for case in cases()? {
        if let Some(f) = filter {
            if !case.family.contains(f) && !case.name.contains(f) {
                continue;
            }
        }
        let m = measure(&gpu, &case, reps).map_err(|e| e.context(format!("bench case '{}'", case.name)))?;
        let ms = m.best_ms();
        let gflops = if case.flops > 0.0 { format!("{:.2}", case.flops / ms / 1e6) } else { "-".into() };
        let gpu_ms = m.gpu_ms.map(|g| format!("{g:.2}")).unwrap_or_else(|| "-".into());
        println!(
            "| {} | {} | {gpu_ms} | {:.2} | {gflops} | {:.2} |",
            case.family,
            case.name,
            m.wall_ms,
            case.bytes / ms / 1e6
        );
    }
    Ok(())
}
