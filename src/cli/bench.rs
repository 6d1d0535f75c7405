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

/// `wgpu-forge bench --model NAME | --weights W`: a whole model's profile.
pub struct ModelBench<'a> {
    pub model: Option<&'a str>,
    pub weights: Option<&'a std::path::Path>,
    pub size: Option<&'a str>,
    /// "GFLOPS,GBPS" of the device, for the roofline shares (default: measured here).
    pub peak: Option<&'a str>,
    pub reps: usize,
    pub top: usize,
}

fn parse_size(s: &str) -> Result<[usize; 2]> {
    let bad = || crate::Error::invalid(format!("--size {s}: expected HxW, e.g. 512x512"));
    let (h, w) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (h, w) = (h.trim().parse::<usize>().map_err(|_| bad())?, w.trim().parse::<usize>().map_err(|_| bad())?);
    if h == 0 || w == 0 || h > 16384 || w > 16384 {
        return Err(bad());
    }
    Ok([h, w])
}

fn parse_peak(s: &str) -> Result<(f64, f64)> {
    let bad = || crate::Error::invalid(format!("--peak {s}: expected GFLOPS,GBPS, e.g. 25,60"));
    let (f, b) = s.split_once(',').ok_or_else(bad)?;
    let (f, b) = (f.trim().parse::<f64>().map_err(|_| bad())?, b.trim().parse::<f64>().map_err(|_| bad())?);
    if !(f > 0.0 && b > 0.0 && f.is_finite() && b.is_finite()) {
        return Err(bad());
    }
    Ok((f, b))
}

/// The device's best measured rates, GFLOP/s of the GEMM cases and GB/s of the element-wise ones,
/// timed as the model's nodes are (each case's steps submitted alone and waited for, no uploads),
/// so the shares of peak compare like with like. Not from timestamps: on lavapipe some read far
/// below the wall time, which put this bandwidth anywhere from 4 to 257 GB/s.
fn measured_peaks(gpu: &crate::gpu::device::Gpu) -> Result<(f64, f64)> {
    let (mut gflops, mut gbps) = (0.0f64, 0.0f64);
    for case in cases()?.into_iter().filter(|c| c.family == "matmul" || c.family == "elementwise") {
        let plan = crate::graph::Plan::new(gpu, &case.graph)?;
        let inputs = case.make_inputs();
        let feed: Vec<(&str, &crate::tensor::Tensor)> = inputs.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let ms = plan.profile(&feed, 3)?.wall_sum_ms();
        if case.family == "matmul" {
            gflops = gflops.max(case.flops / ms / 1e6);
        } else {
            gbps = gbps.max(case.bytes / ms / 1e6);
        }
    }
    Ok((gflops, gbps))
}

fn rate(amount: f64, us: f64) -> f64 {
    if us > 0.0 {
        amount / us / 1e3
    } else {
        0.0
    }
}

pub fn run_model(dev: &DeviceArgs, o: &ModelBench) -> Result<()> {
    let backend = dev.backend()?;
    let engine = backend.engine();
    let mut det = crate::cli::infer::open_detector(engine, o.weights, o.model, &[])?;
    let size = o.size.map(parse_size).transpose()?;
    let size = match (det.mode(), size) {
        (crate::pipeline::InputMode::Native, None) => Some([512, 512]),
        (_, s) => s,
    };
    let (peak_f, peak_b, peak_src) = match o.peak {
        Some(p) => {
            let (f, b) = parse_peak(p)?;
            (f, b, "given by --peak")
        }
        None => match backend.gpu() {
            Some(gpu) => {
                let (f, b) = measured_peaks(gpu)?;
                (f, b, "measured by bench's GEMM and element-wise cases")
            }
            None => {
                let (f, b) = crate::cpu::measured_peaks();
                (f, b, "measured by the CPU backend's GEMM and a copy")
            }
        },
    };
    let name = det.name().to_string();
    let plan = det.plan_at(size)?;
    let inputs = plan.synthetic_inputs();
    let feed: Vec<(&str, &crate::tensor::Tensor)> = inputs.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let shapes: Vec<String> = inputs.iter().map(|(n, t)| format!("{n} {:?}", t.shape)).collect();
    let p = plan.profile(&feed, o.reps)?;
    let date = std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d %H:%M UTC").output().ok();
    let date = date.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    println!(
        "model {name}, inputs {}; device {} ({}); {date}",
        shapes.join(", "),
        engine.device_name(),
        engine.backend_name()
    );
    println!(
        "whole graph, one submission: {:.1} ms (median of {}); {} dispatching nodes; {:.2} GFLOP, {:.1} MB moved at least",
        p.whole_ms,
        p.reps,
        p.nodes.len(),
        p.flops() / 1e9,
        p.bytes() / 1e6
    );
    println!(
        "peaks {peak_f:.1} GFLOP/s, {peak_b:.1} GB/s ({peak_src}): floors {:.1} ms of arithmetic, {:.1} ms of traffic",
        p.flops() / peak_f / 1e6,
        p.bytes() / peak_b / 1e6
    );
    println!(
        "times below: wall clock of each node submitted alone and waited for (sum {:.1} ms; includes a submission \
         and a wait per node){}",
        p.wall_sum_ms(),
        match p.nodes.iter().map(|n| n.gpu_us).sum::<Option<f64>>() {
            Some(t) => format!(
                "; GPU = timestamps around its pass in a one-submission run (sum {:.1} ms; unreliable on lavapipe: \
                 docs/BENCHMARKS.md)",
                t / 1e3
            ),
            None => "; no timestamps on this device".to_string(),
        }
    );
    let wall_sum: f64 = p.nodes.iter().map(|n| n.wall_us).sum::<f64>().max(1e-9);
    println!("\n| op family | nodes | wall ms | share | GFLOP | MB | GFLOP/s | GB/s | of peak FLOP/s | of peak B/s |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (kind, n, us, c) in p.by_family() {
        let (gf, gb) = (rate(c.flops, us), rate(c.bytes, us));
        println!(
            "| {kind} | {n} | {:.2} | {:.1}% | {:.3} | {:.2} | {gf:.2} | {gb:.2} | {:.1}% | {:.1}% |",
            us / 1e3,
            100.0 * us / wall_sum,
            c.flops / 1e9,
            c.bytes / 1e6,
            100.0 * gf / peak_f,
            100.0 * gb / peak_b
        );
    }
    let mut top: Vec<&crate::graph::NodeProfile> = p.nodes.iter().collect();
    top.sort_by(|a, b| b.wall_us.total_cmp(&a.wall_us));
    let kernels = p.nodes.iter().any(|n| n.kernel.is_some());
    println!(
        "\n| node | op | wall ms | GPU ms | GFLOP | MB | GFLOP/s | GB/s |{}",
        if kernels { " kernel |" } else { "" }
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |{}", if kernels { " --- |" } else { "" });
    for n in top.into_iter().take(o.top) {
        let gpu_ms = n.gpu_us.map(|g| format!("{:.2}", g / 1e3)).unwrap_or_else(|| "-".into());
        println!(
            "| {} | {} | {:.2} | {gpu_ms} | {:.3} | {:.2} | {:.2} | {:.2} |{}",
            n.node,
            n.kind,
            n.wall_us / 1e3,
            n.cost.flops / 1e9,
            n.cost.bytes / 1e6,
            rate(n.cost.flops, n.wall_us),
            rate(n.cost.bytes, n.wall_us),
            n.kernel.map(|k| format!(" {k} |")).unwrap_or_default()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_peak_flags_parse_or_say_what_is_wrong() {
        assert_eq!(parse_size("512x384").unwrap(), [512, 384]);
        assert_eq!(parse_size("64X64").unwrap(), [64, 64]);
        for bad in ["512", "0x4", "ax4", "4x", "99999x4"] {
            assert!(parse_size(bad).unwrap_err().message.contains("HxW"), "{bad}");
        }
        assert_eq!(parse_peak("25,60.5").unwrap(), (25.0, 60.5));
        for bad in ["25", "0,1", "x,1", "1,-2", "inf,1"] {
            assert!(parse_peak(bad).unwrap_err().message.contains("GFLOPS,GBPS"), "{bad}");
        }
    }
}
