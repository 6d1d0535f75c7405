use super::*;
use crate::ops::gemm_tex::ConvGeom;
use crate::ops::testing::{check_op, device};
use crate::tensor::{check_close, Rng};

const TOL: f32 = 1e-4;

struct Case {
    n: usize,
    c: usize,
    hw: [usize; 2],
    o: usize,
    k: [usize; 2],
    p: Conv2d,
    bias: bool,
}

const ALL: [ConvVariant; 8] = [
    ConvVariant::Winograd,
    ConvVariant::Depthwise,
    ConvVariant::DepthwiseTex,
    ConvVariant::Pointwise,
    ConvVariant::General,
    ConvVariant::Tiled,
    ConvVariant::Tex,
    ConvVariant::Few,
];

/// Every variant that can take the case (the texture path where the device has subgroups of 8).
fn run(label: &str, cs: &Case, seed: u64) {
    let x = [cs.n, cs.c, cs.hw[0], cs.hw[1]];
    let wp = [cs.c / cs.p.groups, cs.k[0], cs.k[1], cs.o];
    let y = cs.p.infer(&[&x, &wp]).unwrap().remove(0);
    let sg = crate::ops::matmul::sg_ok(device());
    let geo = ConvGeom::new(&cs.p, &x, &wp, &y);
    let paths = TexPaths {
        tex: sg,
        few: sg && few::shape_fits(&geo),
        dw_tex: sg && dw_tex::shape_fits(&geo),
        winograd: sg && winograd_tex::shape_fits(&geo),
    };
    let problem = cs.p.problem(&x, &wp, &y, paths, 65535);
    let all = ALL;
    for v in all.into_iter().filter(|v| v.unfit(&problem).is_none()) {
        let p = Conv2d { variant: Some(v), ..cs.p.clone() };
        run_one(&format!("{label} {v:?}"), &Case { p, ..*cs }, seed);
    }
}

fn run_one(label: &str, cs: &Case, seed: u64) {
    let x = Tensor::random(&[cs.n, cs.c, cs.hw[0], cs.hw[1]], seed, -1.0, 1.0);
    let w = Tensor::random(&[cs.o, cs.c / cs.p.groups, cs.k[0], cs.k[1]], seed + 1, -0.5, 0.5);
    let mut ins = vec![x, pack_conv2d_weight(&w).unwrap()];
    if cs.bias {
        ins.push(Tensor::random(&[cs.o], seed + 2, -1.0, 1.0));
    }
    check_op(&format!("{label} seed {seed}"), &cs.p, &ins, TOL);
}

fn case(n: usize, c: usize, hw: [usize; 2], o: usize, k: [usize; 2], p: Conv2d, bias: bool) -> Case {
    Case { n, c, hw, o, k, p, bias }
}

#[test]
fn general_convs_match_reference() {
    let seed = Rng::fresh_seed();
    let cases = [
        ("3x3 p1 odd 13x17 batch 2 C5 O7", case(2, 5, [13, 17], 7, [3, 3], Conv2d::new(1, 1), true)),
        ("3x3 s2 p1 relu", case(1, 6, [13, 17], 9, [3, 3], Conv2d::new(2, 1).act(Act::Relu), true)),
        (
            "3x3 dilation 2 p2 gelu",
            case(2, 4, [15, 11], 8, [3, 3], Conv2d::new(1, 2).dilation(2).act(Act::Gelu), false),
        ),
        ("groups 2", case(1, 6, [9, 13], 10, [3, 3], Conv2d::new(1, 1).groups(2), true)),
        ("groups 3 s2 no pad", case(2, 9, [12, 11], 6, [3, 3], Conv2d::new(2, 0).groups(3), true)),
        ("k4 s4 patchify", case(1, 6, [32, 36], 16, [4, 4], Conv2d::new(4, 0), false)),
        ("k2 s2", case(2, 5, [14, 18], 12, [2, 2], Conv2d::new(2, 0), true)),
        ("k7 s4 p3", case(1, 6, [29, 33], 8, [7, 7], Conv2d::new(4, 3), false)),
        ("k7 s2 p3 sigmoid", case(1, 9, [21, 19], 5, [7, 7], Conv2d::new(2, 3).act(Act::Sigmoid), true)),
        (
            "rect k3x5 s(1,2) p(1,2)",
            case(1, 3, [10, 21], 5, [3, 5], Conv2d { stride: [1, 2], padding: [1, 2], ..Default::default() }, true),
        ),
        ("1x1 s2 (general)", case(1, 7, [9, 9], 5, [1, 1], Conv2d::new(2, 0), true)),
        ("1x1 hw odd (general)", case(2, 5, [7, 9], 7, [1, 1], Conv2d::new(1, 0), false)),
        ("1x1 groups 2 (general)", case(1, 8, [8, 8], 6, [1, 1], Conv2d::new(1, 0).groups(2), true)),
        ("kernel == input", case(1, 3, [5, 5], 4, [5, 5], Conv2d::new(1, 0), true)),
    ];
    for (i, (label, cs)) in cases.iter().enumerate() {
        run(label, cs, seed + 10 * i as u64);
    }
}

#[test]
fn pointwise_convs_match_reference() {
    let seed = Rng::fresh_seed();
    let cases = [
        ("1x1 C5 O7 12x12 batch 2", case(2, 5, [12, 12], 7, [1, 1], Conv2d::default(), true)),
        ("1x1 hw%8==4 hswish", case(1, 16, [6, 6], 9, [1, 1], Conv2d::default().act(Act::HSwish), true)),
        ("1x1 96->1", case(1, 96, [16, 16], 1, [1, 1], Conv2d::default(), true)),
        ("1x1 O16 leaky", case(2, 12, [4, 10], 16, [1, 1], Conv2d::default().act(Act::LeakyRelu(0.1)), false)),
    ];
    for (i, (label, cs)) in cases.iter().enumerate() {
        run(label, cs, seed + 10 * i as u64);
    }
}

#[test]
fn depthwise_convs_match_reference() {
    let seed = Rng::fresh_seed();
    let dw = |s: usize, p: usize| Conv2d::new(s, p).groups(5);
    let cases = [
        ("dw 7x7 p3 13x17 batch 2", case(2, 5, [13, 17], 5, [7, 7], dw(1, 3), true)),
        ("dw 7x7 p3 wide", case(1, 5, [11, 40], 5, [7, 7], dw(1, 3).act(Act::Gelu), false)),
        ("dw 3x3 p1", case(1, 5, [9, 23], 5, [3, 3], dw(1, 1), true)),
        ("dw 3x3 s2 p1", case(2, 5, [13, 17], 5, [3, 3], dw(2, 1).act(Act::Relu6), true)),
        ("dw 3x3 dilation 2", case(1, 5, [13, 30], 5, [3, 3], dw(1, 2).dilation(2), true)),
        // conv_dw_tex's window offsets E = (-px) mod 4 of 0, 1, 2 and 3, rows narrower than its 8
        // pixels, a kernel 8 wide (two weight texels) and no padding.
        ("dw 5x5 p2 width 6", case(1, 5, [7, 6], 5, [5, 5], dw(1, 2), true)),
        ("dw 3x8 p(1,5) batch 2", case(2, 5, [6, 21], 5, [3, 8], Conv2d { padding: [1, 5], ..dw(1, 0) }, true)),
        ("dw 7x7 p0", case(1, 5, [12, 19], 5, [7, 7], dw(1, 0), false)),
        ("dw 1x1 p0 width 3", case(1, 5, [4, 3], 5, [1, 1], dw(1, 0).act(Act::Gelu), true)),
    ];
    for (i, (label, cs)) in cases.iter().enumerate() {
        run(label, cs, seed + 10 * i as u64);
    }
    // Software devices take the texture kernel where it fits, conv_dw elsewhere.
    let on_software = |p: &Conv2d, k: usize| {
        let (x, wp) = ([1, 5, 16, 16], [1, k, k, 5]);
        let y = p.infer(&[&x, &wp]).unwrap().remove(0);
        let fits = dw_tex::shape_fits(&ConvGeom::new(p, &x, &wp, &y));
        choose::<ConvVariant>(DeviceClass::Software, None, &p.problem(&x, &wp, &y, TexPaths { tex: true, dw_tex: fits, ..Default::default() }, 65535)).unwrap()
    };
    assert_eq!(on_software(&dw(1, 3), 7), ConvVariant::DepthwiseTex);
    assert_eq!(on_software(&dw(2, 1), 3), ConvVariant::Depthwise, "stride 2");
    assert_eq!(on_software(&dw(1, 2).dilation(2), 3), ConvVariant::Depthwise, "dilation 2");
    assert_eq!(on_software(&dw(1, 4), 9), ConvVariant::Depthwise, "9 wide");
}

#[test]
fn builder_and_batch_norm_folding() {
    let seed = Rng::fresh_seed();
    let (n, c, o, h, w) = (2, 6, 7, 11, 13);
    let x = Tensor::random(&[n, c, h, w], seed, -1.0, 1.0);
    let wt = Tensor::random(&[o, c, 3, 3], seed + 1, -0.5, 0.5);
    let bias = Tensor::random(&[o], seed + 2, -1.0, 1.0);
    let gamma = Tensor::random(&[o], seed + 3, 0.5, 1.5);
    let beta = Tensor::random(&[o], seed + 4, -0.5, 0.5);
    let mean = Tensor::random(&[o], seed + 5, -0.5, 0.5);
    let var = Tensor::random(&[o], seed + 6, 0.2, 2.0);
    let eps = 1e-5;
    let params = Conv2d::new(1, 1);
    // Reference: conv, then BatchNorm in f64, then ReLU.
    let y = conv2d_reference(&x, &wt, Some(&bias), &params);
    let mut want = y.clone();
    let plane = h * w;
    for (i, v) in want.data.iter_mut().enumerate() {
        let oc = (i / plane) % o;
        let bn = (*v as f64 - mean.data[oc] as f64) / (var.data[oc] as f64 + eps as f64).sqrt() * gamma.data[oc] as f64
            + beta.data[oc] as f64;
        *v = (bn as f32).max(0.0);
    }
    let (wf, bf) = fold_batch_norm(&wt, Some(&bias), &gamma, &beta, &mean, &var, eps);
    let mut b = GraphBuilder::new();
    let xi = b.input("x", &x.shape);
    let yi = conv2d(&mut b, "conv", xi, wf, Some(bf), params.act(Act::Relu)).unwrap();
    b.output("y", yi);
    let g = b.finish();
    let plan = crate::graph::Plan::new(device(), &g).unwrap();
    let got = plan.run(&[("x", &x)]).unwrap().remove("y").unwrap();
    check_close(&format!("conv+BN folded seed {seed}"), &got, &want, TOL).unwrap();
}

#[test]
fn shape_errors_are_clear() {
    let p = Conv2d::new(1, 0).groups(2);
    assert!(p.infer(&[&[1, 5, 8, 8], &[2, 3, 3, 4]]).unwrap_err().contains("not divisible by groups"));
    assert!(Conv2d::new(1, 0).infer(&[&[1, 4, 8, 8], &[3, 3, 3, 4]]).unwrap_err().contains("input channels per group"));
    assert!(Conv2d::new(1, 1)
        .infer(&[&[1, 4, 3, 3], &[4, 7, 7, 4]])
        .unwrap_err()
        .contains("bigger than the padded input"));
    assert!(Conv2d::new(1, 0).infer(&[&[1, 4, 8, 8], &[4, 3, 3, 4], &[5]]).unwrap_err().contains("bias"));
    assert_eq!(Conv2d::new(2, 3).infer(&[&[1, 6, 13, 17], &[6, 7, 7, 8]]).unwrap(), vec![vec![1, 8, 7, 9]]);
}

#[test]
fn variant_entry_points_exist() {
    for kernel in KERNELS {
        let entries: Vec<&str> =
            ALL.iter().filter_map(|v| v.entry()).filter(|(k, _)| k.name == kernel.name).map(|(_, e)| e).collect();
        crate::ops::testing::assert_entry_points(kernel, &entries);
    }
}

/// `conv_few` on awkward shapes: every padding mod 4 (where its window starts), strides and
/// dilations, the widest kernel (8), rows shorter than its 8 pixels, 1 to 8 output channels, a
/// batch of 2; and its refusals.
#[test]
fn few_channel_convs_match_reference() {
    if !crate::ops::matmul::sg_ok(device()) {
        return;
    }
    let seed = Rng::fresh_seed();
    let rect = |s: [usize; 2], p: [usize; 2], d: [usize; 2]| Conv2d { stride: s, padding: p, dilation: d, ..Default::default() };
    let cases = [
        ("7x7 s2 p3 C19 O8 (gate.conv2)", case(1, 19, [37, 45], 8, [7, 7], Conv2d::new(2, 3), true)),
        ("7x7 s2 p3 batch 2 O3 relu", case(2, 5, [20, 23], 3, [7, 7], Conv2d::new(2, 3).act(Act::Relu), true)),
        ("3x3 p1 O1 no bias", case(1, 6, [9, 30], 1, [3, 3], Conv2d::new(1, 1), false)),
        ("3x3 p0 O6 width 5", case(1, 4, [7, 5], 6, [3, 3], Conv2d::new(1, 0), true)),
        ("k8x2 p(2,2) s(1,3) O8", case(1, 3, [13, 40], 8, [2, 8], rect([1, 3], [2, 2], [1, 1]), true)),
        ("3x3 d(2,3) p(1,5) O7", case(1, 5, [16, 27], 7, [3, 3], rect([2, 1], [1, 5], [2, 3]), false)),
        ("1x1 O2 p(0,0)", case(2, 9, [6, 11], 2, [1, 1], Conv2d::default().act(Act::Gelu), true)),
    ];
    for (i, (label, cs)) in cases.iter().enumerate() {
        let p = Conv2d { variant: Some(ConvVariant::Few), ..cs.p.clone() };
        run_one(&format!("{label} Few"), &Case { p, ..*cs }, seed + 10 * i as u64);
    }
    let few = |o: usize, g: usize, k: usize, s: usize| {
        let p = Conv2d::new(s, 0).groups(g);
        let (x, wp) = ([1, 4, 64, 64], [4 / g, k, k, o]);
        let y = p.infer(&[&x, &wp]).unwrap().remove(0);
        ConvVariant::Few.unfit(&p.problem(&x, &wp, &y, TexPaths { tex: true, few: few::shape_fits(&ConvGeom::new(&p, &x, &wp, &y)), ..Default::default() }, 65535))
    };
    assert_eq!(few(8, 1, 7, 2), None);
    assert!(few(9, 1, 3, 1).is_some(), "9 output channels");
    assert!(few(8, 2, 3, 1).is_some(), "2 groups");
    assert!(few(8, 1, 9, 1).is_some(), "kernel 9 wide");
    assert!(few(8, 1, 7, 4).is_some(), "stride 4 x 7 taps outgrow the window");
}

/// Winograd F(2x2, 3x3) on the texture GEMM: odd output sizes (half tiles at the right and bottom
/// edges, tile rows not a multiple of 4 tiles), window offsets E = (-px) mod 4 of 0, 3, 2 and 1,
/// channel counts not a multiple of 4, a batch of 2, bias or none, activations, and several chunks
/// of tile rows.
#[test]
fn winograd_convs_match_reference() {
    if !crate::ops::matmul::sg_ok(device()) {
        return;
    }
    let seed = Rng::fresh_seed();
    let cases = [
        ("p1 C33 O35 9x13 batch 2", case(2, 33, [9, 13], 35, [3, 3], Conv2d::new(1, 1), true)),
        ("p0 C32 O32 10x10 gelu", case(1, 32, [10, 10], 32, [3, 3], Conv2d::new(1, 0).act(Act::Gelu), false)),
        ("p2 C40 O36 7x21 relu", case(1, 40, [7, 21], 36, [3, 3], Conv2d::new(1, 2).act(Act::Relu), true)),
        ("p3 C34 O33 5x6", case(1, 34, [5, 6], 33, [3, 3], Conv2d::new(1, 3), true)),
    ];
    for (i, (label, cs)) in cases.iter().enumerate() {
        let p = Conv2d { variant: Some(ConvVariant::Winograd), ..cs.p.clone() };
        run_one(&format!("{label} Winograd"), &Case { p, ..*cs }, seed + 10 * i as u64);
    }
    // One or two tile rows per chunk.
    for budget in [1, 16 * 36 * 12 * 4 * 2] {
        winograd_tex::CHUNK_BUDGET.with(|c| c.set(Some(budget)));
        let cs = case(1, 33, [11, 17], 35, [3, 3], Conv2d::new(1, 1), true);
        let p = Conv2d { variant: Some(ConvVariant::Winograd), ..cs.p.clone() };
        run_one(&format!("chunks of budget {budget} Winograd"), &Case { p, ..cs }, seed + 100);
    }
    winograd_tex::CHUNK_BUDGET.with(|c| c.set(None));
}

/// `conv_tiled` across its block edges: more than 64 channels and pixels, K not a multiple of 16,
/// groups whose channel count is not a multiple of 64, a batch of 2.
#[test]
fn tiled_convs_cross_block_edges() {
    let seed = Rng::fresh_seed();
    let cases = [
        ("3x3 C7 O70 11x13 batch 2", case(2, 7, [11, 13], 70, [3, 3], Conv2d::new(1, 1), true)),
        ("1x1 C33 O130 9x10", case(1, 33, [9, 10], 130, [1, 1], Conv2d::default().act(Act::Gelu), true)),
        ("groups 2 O 2x67 s2", case(1, 6, [17, 15], 134, [3, 3], Conv2d::new(2, 1).groups(2), false)),
        ("k4 s4 patchify", case(1, 3, [36, 40], 96, [4, 4], Conv2d::new(4, 0), true)),
    ];
    for (i, (label, cs)) in cases.iter().enumerate() {
        let p = Conv2d { variant: Some(ConvVariant::Tiled), ..cs.p.clone() };
        run_one(&format!("{label} Tiled"), &Case { p, ..*cs }, seed + 10 * i as u64);
    }
}

#[test]
fn tiled_refuses_depthwise_and_oversized_grids() {
    let p = Conv2d::new(1, 1).groups(4);
    let dw = p.problem(&[1, 4, 8, 8], &[1, 3, 3, 4], &[1, 4, 8, 8], TexPaths::default(), 65535);
    assert!(ConvVariant::Tiled.unfit(&dw).unwrap().contains("depthwise"));
    let big = Conv2d::new(1, 1).problem(&[1, 3, 100, 100], &[3, 3, 3, 8], &[1, 8, 100, 100], TexPaths::default(), 100);
    assert!(ConvVariant::Tiled.unfit(&big).unwrap().contains("workgroups"));
    assert_eq!(choose(DeviceClass::Hardware, None, &big), Ok(ConvVariant::General));
    let fits = Conv2d::new(1, 1).problem(&[1, 3, 100, 100], &[3, 3, 3, 8], &[1, 8, 100, 100], TexPaths::default(), 65535);
    assert_eq!(choose(DeviceClass::Hardware, None, &fits), Ok(ConvVariant::Tiled));
}

/// Outputs over the binding limit: one dispatch per batch item and run of whole groups of output
/// channels (the direct kernels; the texture path needs whole tensors, depthwise convs bind whole).
#[test]
fn windows_of_batch_items_and_groups() {
    use crate::ops::testing::check_op_windowed;
    let seed = Rng::fresh_seed();
    // (case, limit, dispatches): x [2, 4, 8, 8] (items of 256), y [2, 6, 8, 8], groups of 3 x 64 outputs:
    // one group per window; 1x1 [2, 8, 4, 4] -> [2, 8, 4, 4]: one item per window.
    let cases = [
        (case(2, 4, [8, 8], 6, [3, 3], Conv2d::new(1, 1).groups(2), true), ConvVariant::General, 256, 4),
        (case(2, 8, [4, 4], 8, [1, 1], Conv2d::default().act(Act::Relu), true), ConvVariant::Pointwise, 128, 2),
        (case(2, 8, [4, 4], 8, [1, 1], Conv2d::default(), false), ConvVariant::General, 128, 2),
        (case(2, 4, [8, 8], 6, [3, 3], Conv2d::new(1, 1).groups(2), true), ConvVariant::Tiled, 256, 4),
    ];
    for (i, (cs, v, limit, want)) in cases.into_iter().enumerate() {
        let s = seed + i as u64;
        let x = Tensor::random(&[cs.n, cs.c, cs.hw[0], cs.hw[1]], s, -1.0, 1.0);
        let w = Tensor::random(&[cs.o, cs.c / cs.p.groups, cs.k[0], cs.k[1]], s + 1, -0.5, 0.5);
        let mut ins = vec![x, pack_conv2d_weight(&w).unwrap()];
        if cs.bias {
            ins.push(Tensor::random(&[cs.o], s + 2, -1.0, 1.0));
        }
        let op = Conv2d { variant: Some(v), ..cs.p };
        assert_eq!(check_op_windowed(&format!("windowed conv {v:?} seed {s}"), &op, &ins, TOL, limit), want);
    }
    // Items of 3 x 5 x 5 = 75 elements cannot start aligned, and these kernels take no base offset.
    if crate::ops::window::Windows::of(device()).align() == 1 {
        return;
    }
    let _limit = crate::ops::window::test_limit(80);
    let ins = [Tensor::random(&[2, 3, 5, 5], seed, -1.0, 1.0), Tensor::random(&[3, 3, 3, 2], seed + 1, -1.0, 1.0)];
    let err =
        crate::ops::testing::run_on_gpu(&Conv2d { variant: Some(ConvVariant::General), ..Conv2d::new(1, 1) }, &ins)
            .unwrap_err();
    assert!(err.to_string().contains("offset alignment"), "{err}");
}

/// conv_tiled reading its weight stored in f16 (f32 arithmetic), against the reference on the
/// f16-rounded weight.
#[test]
fn tiled_reads_half_weights() {
    use crate::ops::testing::check_op_half_weight;
    let seed = Rng::fresh_seed();
    let cases = [
        ("3x3 C7 O70 11x13 batch 2", case(2, 7, [11, 13], 70, [3, 3], Conv2d::new(1, 1), true)),
        ("groups 3 s2 odd count", case(1, 9, [12, 11], 3, [3, 3], Conv2d::new(2, 0).groups(3), false)),
    ];
    for (i, (label, cs)) in cases.into_iter().enumerate() {
        let s = seed + 10 * i as u64;
        let x = Tensor::random(&[cs.n, cs.c, cs.hw[0], cs.hw[1]], s, -1.0, 1.0);
        let w = Tensor::random(&[cs.o, cs.c / cs.p.groups, cs.k[0], cs.k[1]], s + 1, -0.5, 0.5);
        let mut ins = vec![x, pack_conv2d_weight(&w).unwrap()];
        if cs.bias {
            ins.push(Tensor::random(&[cs.o], s + 2, -1.0, 1.0));
        }
        check_op_half_weight(&format!("{label} seed {s}"), &cs.p, &ins, 1, TOL);
    }
}
