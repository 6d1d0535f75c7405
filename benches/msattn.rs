//! Windowed multi-scale attention at U2-Net-MST's bottleneck (256x256 input: 16x16x512, 4 heads of
//! 128 channels with patches 16/8/4/2) and on a larger fine-patch map, with the device's default
//! per-head variant choice and (bottleneck) with the fused kernel forced. Prints GPU time from timestamps, then
//! lets criterion time whole runs.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use wgpu_forge::gpu::device::shared;
use wgpu_forge::graph::{GraphBuilder, Plan};
use wgpu_forge::ops::msattn::{MsAttn, MsAttnVariant};
use wgpu_forge::tensor::Tensor;

fn bench(c: &mut Criterion) {
    let gpu = shared().expect("a device (lavapipe or a GPU)");
    println!("device: {}", gpu.info.name);
    let mut group = c.benchmark_group("msattn");
    // The fused kernel on the 64x64 map takes seconds per run on lavapipe: default choice only there.
    type Case<'a> = ([usize; 4], &'a [usize], &'a [Option<MsAttnVariant>]);
    let cases: [Case; 2] =
        [([1, 512, 16, 16], &[16, 8, 4, 2], &[None, Some(MsAttnVariant::Fused)]), ([1, 64, 64, 64], &[2, 4], &[None])];
    for (shape, patches, variants) in cases {
        for &variant in variants {
            let mut b = GraphBuilder::new();
            let q = b.input("q", &shape);
            let k = b.input("k", &shape);
            let v = b.input("v", &shape);
            let o = b.add("msattn", MsAttn { patches: patches.to_vec(), variant }, &[q, k, v]).unwrap();
            b.output("out", o);
            let plan = Plan::new(gpu, &b.finish()).unwrap();
            let (tq, tk, tv) = (
                Tensor::random(&shape, 1, -1.0, 1.0),
                Tensor::random(&shape, 2, -1.0, 1.0),
                Tensor::random(&shape, 3, -1.0, 1.0),
            );
            let feed = [("q", &tq), ("k", &tk), ("v", &tv)];
            plan.run(&feed).unwrap();
            let which = variant.map_or("default".to_string(), |v| format!("{v:?}"));
            let p: Vec<String> = patches.iter().map(|p| p.to_string()).collect();
            let name = format!("{}x{}x{}x{}_p{}_{which}", shape[0], shape[1], shape[2], shape[3], p.join("-"));
            if let Ok((_, t)) = plan.run_profiled(&feed) {
                let us: f64 = t.iter().map(|n| n.micros).sum();
                println!("msattn {name}: {:.2} ms GPU", us / 1e3);
            }
            group.bench_function(&name, |bch| bch.iter(|| plan.run(&feed).unwrap()));
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
