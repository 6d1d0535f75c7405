//! Attention at the four MiT (SegFormer) stage shapes of Mesorch at 512x512: queries 16384/4096/
//! 1024/256, keys 256 after spatial reduction, heads 1/2/5/8, head dim 64. Prints GFLOP/s
//! (4 * Lq * Lk * D * H flops) from GPU timestamps, then lets criterion time whole runs.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use wgpu_forge::gpu::device::shared;
use wgpu_forge::graph::{GraphBuilder, Plan};
use wgpu_forge::ops::attention::Attention;
use wgpu_forge::tensor::Tensor;

const STAGES: [(usize, usize, usize, usize); 4] =
    [(16384, 256, 1, 64), (4096, 256, 2, 64), (1024, 256, 5, 64), (256, 256, 8, 64)];

fn bench(c: &mut Criterion) {
    let gpu = shared().expect("a device (lavapipe or a GPU)");
    println!("device: {}", gpu.info.name);
    let mut group = c.benchmark_group("attention");
    for (lq, lk, h, d) in STAGES {
        let mut b = GraphBuilder::new();
        let q = b.input("q", &[1, lq, h * d]);
        let k = b.input("k", &[1, lk, h * d]);
        let v = b.input("v", &[1, lk, h * d]);
        let o = b.add("attn", Attention::new(h, d), &[q, k, v]).unwrap();
        b.output("out", o);
        let plan = Plan::new(gpu, &b.finish()).unwrap();
        let tq = Tensor::random(&[1, lq, h * d], 1, -1.0, 1.0);
        let tk = Tensor::random(&[1, lk, h * d], 2, -1.0, 1.0);
        let tv = Tensor::random(&[1, lk, h * d], 3, -1.0, 1.0);
        let feed = [("q", &tq), ("k", &tk), ("v", &tv)];
        plan.run(&feed).unwrap();
        let flops = 4.0 * (lq * lk * d * h) as f64;
        let name = format!("lq{lq}_lk{lk}_h{h}_d{d}");
        if let Ok((_, t)) = plan.run_profiled(&feed) {
            let us: f64 = t.iter().map(|n| n.micros).sum();
            println!("attention {name}: {:.2} ms GPU, {:.2} GFLOP/s", us / 1e3, flops / us / 1e3);
        }
        group.bench_function(&name, |bch| bch.iter(|| plan.run(&feed).unwrap()));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
