use std::time::Instant;
use wgpu_forge::cpu::CpuPlan;
use wgpu_forge::graph::GraphBuilder;
use wgpu_forge::ops::conv2d::{conv2d, Conv2d};
use wgpu_forge::Tensor;
fn main() {
    let f = std::env::var("CONV_T").unwrap_or_default();
    let shapes: [(&str, usize, usize, usize, usize, Conv2d); 14] = [
        ("sr1", 64, 128, 64, 8, Conv2d::new(8, 0)),
        ("sr2", 128, 64, 128, 4, Conv2d::new(4, 0)),
        ("sr3", 320, 32, 320, 2, Conv2d::new(2, 0)),
        ("pe2", 64, 128, 128, 3, Conv2d::new(2, 1)),
        ("pe3", 128, 64, 320, 3, Conv2d::new(2, 1)),
        ("pe4", 320, 32, 512, 3, Conv2d::new(2, 1)),
        ("seg_dw", 256, 128, 256, 3, Conv2d { groups: 256, ..Conv2d::new(1, 1) }),
        ("cnx_dw", 96, 128, 96, 7, Conv2d { groups: 96, ..Conv2d::new(1, 3) }),
        ("down1", 96, 128, 192, 2, Conv2d::new(2, 0)),
        ("gate.conv2", 192, 256, 8, 7, Conv2d::new(2, 3)),
        ("gate.invert", 192, 256, 192, 3, Conv2d::new(1, 1)),
        ("gate.conv1", 9, 512, 192, 7, Conv2d::new(2, 3)),
        ("patch_embed1", 3, 512, 64, 7, Conv2d::new(4, 3)),
        ("stem", 3, 512, 96, 4, Conv2d::new(4, 0)),
    ];
    for (name, c, hw, o, k, p) in shapes {
        if !name.contains(&f) {
            continue;
        }
        let x = Tensor::random(&[1, c, hw, hw], 1, -1.0, 1.0);
        let w = Tensor::random(&[o, c / p.groups, k, k], 2, -0.1, 0.1);
        let bias = Tensor::random(&[o], 3, -0.1, 0.1);
        let mut b = GraphBuilder::new();
        let xi = b.input("x", &x.shape);
        let y = conv2d(&mut b, "conv", xi, w, Some(bias), p.clone()).unwrap();
        let s = b.shape(y).to_vec();
        let flops = 2.0 * (s[1] * s[2] * s[3] * (c / p.groups) * k * k) as f64;
        b.output("y", y);
        let plan = CpuPlan::new(&b.finish()).unwrap();
        let mut best = f64::MAX;
        for _ in 0..10 {
            let t = Instant::now();
            plan.run(&[("x", &x)]).unwrap();
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("{name}: {:.1} ms, {:.1} GFLOP/s", best * 1e3, flops / best / 1e9);
    }
}
