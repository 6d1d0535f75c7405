//! Convolution throughput on Mesorch-like shapes (GFLOP/s = "Gelem/s" in criterion's output, since
//! the throughput is given in FLOPs). Timed on the GPU with timestamp queries (the conv node only:
//! no upload or read-back). Run: `cargo bench --bench conv`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wgpu_forge::graph::{GraphBuilder, Plan};
use wgpu_forge::ops::conv2d::{conv2d, Conv2d};
use wgpu_forge::ops::conv_transpose2d::{conv_transpose2d, ConvTranspose2d};
use wgpu_forge::ops::testing::device;
use wgpu_forge::Tensor;

enum Kind {
    Conv(Conv2d),
    Transpose(ConvTranspose2d),
}

struct Case {
    name: &'static str,
    c: usize,
    hw: usize,
    o: usize,
    k: usize,
    kind: Kind,
}

fn bench_case(cr: &mut Criterion, cs: &Case) {
    let gpu = device();
    let x = Tensor::random(&[1, cs.c, cs.hw, cs.hw], 1, -1.0, 1.0);
    let mut b = GraphBuilder::new();
    let xi = b.input("x", &x.shape);
    let (y, flops) = match &cs.kind {
        Kind::Conv(p) => {
            let g = p.groups;
            let w = Tensor::random(&[cs.o, cs.c / g, cs.k, cs.k], 2, -0.1, 0.1);
            let y = conv2d(&mut b, "conv", xi, w, Some(Tensor::zeros(&[cs.o])), p.clone()).unwrap();
            let s = b.shape(y).to_vec();
            (y, 2 * s[1] * s[2] * s[3] * (cs.c / g) * cs.k * cs.k)
        }
        Kind::Transpose(p) => {
            let w = Tensor::random(&[cs.c, cs.o / p.groups, cs.k, cs.k], 2, -0.1, 0.1);
            let y = conv_transpose2d(&mut b, "conv", xi, w, Some(Tensor::zeros(&[cs.o])), p.clone()).unwrap();
            (y, 2 * cs.c * (cs.o / p.groups) * cs.k * cs.k * cs.hw * cs.hw)
        }
    };
    b.output("y", y);
    let g = b.finish();
    let plan = Plan::new(gpu, &g).unwrap();
    let mut group = cr.benchmark_group("conv");
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(flops as u64));
    group.bench_function(cs.name, |bch| {
        bch.iter_custom(|iters| {
            let mut total = 0.0;
            for _ in 0..iters {
                let (_, t) = plan.run_profiled(&[("x", &x)]).unwrap();
                total += t.iter().map(|n| n.micros).sum::<f64>();
            }
            Duration::from_secs_f64(total * 1e-6)
        })
    });
    group.finish();
}

fn benches(cr: &mut Criterion) {
    let cases = [
        Case { name: "3x3 p1 128->128 64x64", c: 128, hw: 64, o: 128, k: 3, kind: Kind::Conv(Conv2d::new(1, 1)) },
        Case { name: "1x1 96->384 128x128", c: 96, hw: 128, o: 384, k: 1, kind: Kind::Conv(Conv2d::new(1, 0)) },
        Case {
            name: "dw 7x7 p3 96ch 128x128",
            c: 96,
            hw: 128,
            o: 96,
            k: 7,
            kind: Kind::Conv(Conv2d::new(1, 3).groups(96)),
        },
        Case { name: "k4 s4 6->96 512x512", c: 6, hw: 512, o: 96, k: 4, kind: Kind::Conv(Conv2d::new(4, 0)) },
        Case { name: "k7 s4 p3 6->64 512x512", c: 6, hw: 512, o: 64, k: 7, kind: Kind::Conv(Conv2d::new(4, 3)) },
        Case {
            name: "dw 3x3 p1 256ch 128x128",
            c: 256,
            hw: 128,
            o: 256,
            k: 3,
            kind: Kind::Conv(Conv2d::new(1, 1).groups(256)),
        },
        Case {
            name: "convT k4 s2 p1 768->384 16->32",
            c: 768,
            hw: 16,
            o: 384,
            k: 4,
            kind: Kind::Transpose(ConvTranspose2d::new(2, 1)),
        },
    ];
    let only = std::env::var("CONV_BENCH").ok();
    for cs in &cases {
        if only.as_deref().is_none_or(|f| cs.name.contains(f)) {
            bench_case(cr, cs);
        }
    }
}

criterion_group!(conv, benches);
criterion_main!(conv);
