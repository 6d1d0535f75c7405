//! GEMM throughput: square 1024^3 and token x Linear shapes from the models.
//!
//! For each shape a plan `y = a @ w` (a an input, w a constant weight) is built once; criterion times
//! `Plan::run` (upload of a, the GEMM, readback of y). Before that, a summary line prints GFLOP/s
//! from the median wall time of `Plan::run` and from the GPU timestamps of `Plan::run_profiled`.
//! `GEMM_VARIANT=scalar|vec|vec_sg|vec_tb|tiled|tex` forces a kernel variant; `GEMM_SHAPES=MxKxN,...` picks shapes.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use wgpu_forge::gpu::device::shared;
use wgpu_forge::graph::{GraphBuilder, Plan};
use wgpu_forge::ops::matmul::{MatMul, MatMulVariant};
use wgpu_forge::Tensor;

const DEFAULT_SHAPES: &[(usize, usize, usize)] =
    &[(1024, 1024, 1024), (16384, 64, 256), (4096, 128, 512), (1024, 320, 1280), (256, 512, 2048)];

fn shapes() -> Vec<(usize, usize, usize)> {
    match std::env::var("GEMM_SHAPES") {
        Ok(s) => s
            .split(',')
            .map(|t| {
                let v: Vec<usize> = t.split('x').map(|d| d.trim().parse().expect("GEMM_SHAPES: MxKxN,...")).collect();
                (v[0], v[1], v[2])
            })
            .collect(),
        Err(_) => DEFAULT_SHAPES.to_vec(),
    }
}

fn variant() -> Option<MatMulVariant> {
    std::env::var("GEMM_VARIANT").ok().map(|v| match v.as_str() {
        "scalar" => MatMulVariant::Scalar,
        "vec" => MatMulVariant::Vec,
        "vec_tb" => MatMulVariant::VecTransB,
        "tiled" => MatMulVariant::Tiled,
        "vec_sg" => MatMulVariant::VecSg,
        "tex" => MatMulVariant::Tex,
        other => panic!("GEMM_VARIANT: unknown variant '{other}'"),
    })
}

/// User + system CPU time of this process (Linux), for the lavapipe diagnostic above.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn bench_gemm(c: &mut Criterion) {
    let gpu = shared().expect("a GPU device (lavapipe works)");
    eprintln!("device: {} ({:?})", gpu.info.name, gpu.class);
    let forced = variant();
    let trans_b = forced == Some(MatMulVariant::VecTransB);
    let mut group = c.benchmark_group("gemm");
    for (m, k, n) in shapes() {
        let mut b = GraphBuilder::new();
        let a = b.input("a", &[m, k]);
        let wshape = if trans_b { [n, k] } else { [k, n] };
        let w = b.constant("w", Tensor::random(&wshape, 2, -1.0, 1.0));
        let y =
            b.add("gemm", MatMul { trans_b, alpha: 1.0, act: Default::default(), variant: forced }, &[a, w]).unwrap();
        b.output("y", y);
        let g = b.finish();
        let plan = Plan::new(gpu, &g).unwrap();
        let x = Tensor::random(&[m, k], 1, -1.0, 1.0);
        let feed = [("a", &x)];
        let flop = 2.0 * (m * k * n) as f64;

        plan.run(&feed).unwrap(); // warm-up (first dispatch)
        let cpu0 = process_cpu_seconds();
        let mut walls: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                plan.run(&feed).unwrap();
                t.elapsed().as_secs_f64()
            })
            .collect();
        let cpu = process_cpu_seconds().zip(cpu0).map(|(b, a)| (b - a) / 5.0);
        walls.sort_by(f64::total_cmp);
        let wall = walls[walls.len() / 2];
        let gpu_s = plan.run_profiled(&feed).ok().map(|_| {
            let mut ts: Vec<f64> = (0..3)
                .map(|_| plan.run_profiled(&feed).unwrap().1.iter().map(|t| t.micros).sum::<f64>() * 1e-6)
                .collect();
            ts.sort_by(f64::total_cmp);
            ts[ts.len() / 2]
        });
        let gpu_txt =
            gpu_s.map_or("n/a".to_string(), |s| format!("{:.2} ms = {:.2} GFLOP/s", s * 1e3, flop / s * 1e-9));
        // On lavapipe the "GPU" is this process: CPU seconds per run show the speed the kernel would
        // have on an idle machine with all cores (useful when other jobs share the cores).
        let cpu_txt = cpu.map_or("n/a".to_string(), |s| format!("{:.2} GFLOP/cpu-s", flop / s * 1e-9));
        eprintln!(
            "gemm [{m} x {k}] @ [{k} x {n}] variant {:?}: Plan::run {:.2} ms = {:.2} GFLOP/s; GPU only {gpu_txt}; {cpu_txt}",
            forced.map_or("auto".to_string(), |v| format!("{v:?}")),
            wall * 1e3,
            flop / wall * 1e-9
        );
        group.bench_function(format!("{m}x{k}x{n}"), |bch| bch.iter(|| plan.run(&feed).unwrap()));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench_gemm
}
criterion_main!(benches);
