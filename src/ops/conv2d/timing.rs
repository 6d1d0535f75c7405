use super::*;
use crate::graph::Plan;
use crate::ops::testing::device;

/// User + system CPU time of this process (lavapipe's threads included), in seconds.
fn cpu_secs() -> f64 {
    let st = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = st.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// GPU time of one conv (ignored; `cargo test --lib conv2d::timing -- --ignored --nocapture`).
#[test]
#[ignore]
fn time_shapes() {
    let shapes: [(&str, usize, usize, usize, usize, Conv2d); 6] = [
        ("1x1 96->384 128", 96, 128, 384, 1, Conv2d::new(1, 0)),
        ("3x3 128 64", 128, 64, 128, 3, Conv2d::new(1, 1)),
        ("dw7 96 128", 96, 128, 96, 7, Conv2d::new(1, 3).groups(96)),
        ("k4s4 6->96 512", 6, 512, 96, 4, Conv2d::new(4, 0)),
        ("gate.conv2 7x7 s2 192->8 256", 192, 256, 8, 7, Conv2d::new(2, 3)),
        ("gate.conv1 7x7 s2 9->192 512", 9, 512, 192, 7, Conv2d::new(2, 3)),
    ];
    let filter = std::env::var("CONV_T").unwrap_or_default();
    // CONV_V=General (or another variant's name) forces that variant.
    let forced = std::env::var("CONV_V").ok().map(|v| {
        use ConvVariant::*;
        *[Depthwise, Pointwise, General, Tiled, Tex].iter().find(|c| format!("{c:?}") == v).expect("variant name")
    });
    for (name, c, hw, o, k, p) in shapes {
        if !name.contains(&filter) {
            continue;
        }
        let x = Tensor::random(&[1, c, hw, hw], 1, -1.0, 1.0);
        let w = Tensor::random(&[o, c / p.groups, k, k], 2, -0.1, 0.1);
        let mut b = GraphBuilder::new();
        let xi = b.input("x", &x.shape);
        let p = Conv2d { variant: forced, ..p };
        let y = conv2d(&mut b, "conv", xi, w, None, p.clone()).unwrap();
        let s = b.shape(y).to_vec();
        let flops = 2.0 * (s[1] * s[2] * s[3] * (c / p.groups) * k * k) as f64;
        b.output("y", y);
        let plan = Plan::new(device(), &b.finish()).unwrap();
        for _ in 0..2 {
            let cpu0 = cpu_secs();
            let (_, t) = plan.run_profiled(&[("x", &x)]).unwrap();
            let cpu = cpu_secs() - cpu0;
            let us: f64 = t.iter().map(|n| n.micros).sum();
            println!(
                "{name}: {:.1} ms, {:.2} GFLOP/s; {cpu:.2} CPU-s, {:.2} GFLOP per CPU-s",
                us / 1e3,
                flops / us / 1e3,
                flops / cpu / 1e9
            );
        }
    }
}
