use super::*;
use crate::ops::testing::{assert_entry_points, check_op};
use crate::tensor::Rng;

/// Relative to max(|expected|, 1): outputs are convex combinations of v in [-1, 1), so this is
/// about 1e-4 of |v|; f32 accumulation against the f64 reference.
const TOL: f32 = 1e-4;

/// Every variant against the CPU reference; q, k, v uniform in [lo, hi).
fn run_case(seed: u64, shape: [usize; 4], patches: &[usize], (lo, hi): (f32, f32)) {
    let q = Tensor::random(&shape, seed, lo, hi);
    let k = Tensor::random(&shape, seed + 1, lo, hi);
    let v = Tensor::random(&shape, seed + 2, -1.0, 1.0);
    let inputs = [q, k, v];
    for variant in [Some(MsAttnVariant::Fused), Some(MsAttnVariant::Composed), None] {
        if variant.is_some_and(|v| !fits_every_group(v, shape, patches)) {
            continue;
        }
        let op = MsAttn { patches: patches.to_vec(), variant };
        check_op(&format!("msattn {shape:?} patches {patches:?} seed {seed} ({variant:?})"), &op, &inputs, TOL);
    }
}

/// Whether `v` can be forced on every group (the composed path needs enough tokens per head).
fn fits_every_group(v: MsAttnVariant, [_, _, h, w]: [usize; 4], patches: &[usize]) -> bool {
    patches.iter().all(|&p| v.unfit(&MsAttnProblem { tokens: (h / p) * (w / p), dim: p * p, limit: 1 << 24 }).is_none())
}

/// Odd channel counts per group, patch sizes 1..16 (7 and 13 included), G = 1..8, batch 2,
/// non-square maps, token dims from 1 to 4096.
#[test]
fn every_variant_matches_reference() {
    let seed = Rng::fresh_seed();
    let cases: &[([usize; 4], &[usize])] = &[
        ([1, 8, 16, 16], &[16, 8, 4, 2]),
        ([2, 3, 6, 10], &[1, 2, 1]),
        ([1, 5, 12, 9], &[3]),
        ([1, 16, 16, 16], &[1, 2, 4, 8, 16, 1, 2, 4]),
        ([2, 6, 15, 10], &[5, 5]),
        ([1, 2, 14, 7], &[7, 1]),
        ([1, 1, 13, 26], &[13]),
        ([1, 4, 16, 32], &[16, 4]),
        ([1, 7, 4, 12], &[2, 4, 1, 2, 4, 1, 2]),
        ([1, 1, 1, 1], &[1]),
    ];
    for (i, &(shape, patches)) in cases.iter().enumerate() {
        run_case(seed + 10 * i as u64, shape, patches, (-1.0, 1.0));
    }
}

/// Every patch size 1..=16 alone (a 3 x 3 grid of patches, 3 channels), and every group count
/// 1..=8 (2 channels per group, patches cycling 1, 2, 4, 8 on an 8 x 8 map).
#[test]
fn every_patch_size_and_group_count() {
    let seed = Rng::fresh_seed();
    for p in 1..=16 {
        run_case(seed + p as u64, [1, 3, 3 * p, 3 * p], &[p], (-1.0, 1.0));
    }
    for g in 1..=8 {
        let patches: Vec<usize> = (0..g).map(|i| [1, 2, 4, 8][i % 4]).collect();
        run_case(seed + 100 + g as u64, [1, 2 * g, 8, 8], &patches, (-1.0, 1.0));
    }
}

/// Logits beyond exp's f32 range (about 160 for group 0): the running max must be subtracted in
/// both variants.
#[test]
fn large_logits_are_stable() {
    let seed = Rng::fresh_seed();
    let (shape, patches) = ([1, 8, 16, 16], [4, 2]);
    let q = Tensor::random(&shape, seed, 3.0, 6.0);
    let k = Tensor::random(&shape, seed + 1, 3.0, 6.0);
    // Group 0 (channels 0..4, 4 x 4 patches, d = 64): query token 0 against key token 0.
    let at = |t: &Tensor, c: usize, y: usize, x: usize| t.data[(c * 16 + y) * 16 + x];
    let logit: f32 = (0..4)
        .flat_map(|c| (0..4).flat_map(move |y| (0..4).map(move |x| (c, y, x))))
        .map(|(c, y, x)| at(&q, c, y, x) * at(&k, c, y, x))
        .sum::<f32>()
        / 8.0;
    assert!(logit > 100.0, "case does not reach large logits ({logit})");
    let v = Tensor::random(&shape, seed + 2, -1.0, 1.0);
    let op = MsAttn::new(&patches);
    assert!(op.reference(&[&q, &k, &v])[0].data.iter().all(|x| x.is_finite()));
    for variant in [MsAttnVariant::Fused, MsAttnVariant::Composed] {
        let op = MsAttn { variant: Some(variant), ..op.clone() };
        check_op(&format!("msattn large logits seed {seed} ({variant:?})"), &op, &[q.clone(), k.clone(), v.clone()], TOL);
    }
}

/// With one token per head (patch = map), attention returns v unchanged.
#[test]
fn one_token_per_head_is_v() {
    let v = Tensor::random(&[1, 2, 4, 4], 7, -1.0, 1.0);
    let q = Tensor::random(&[1, 2, 4, 4], 8, -1.0, 1.0);
    let out = MsAttn::new(&[4, 4]).reference(&[&q, &q, &v]);
    assert_eq!(out[0].data, v.data);
}

#[test]
fn shape_errors_are_reported() {
    let a = MsAttn::new(&[4, 2]);
    let m = [1, 4, 8, 8];
    assert_eq!(a.infer(&[&m, &m, &m]).unwrap(), vec![m.to_vec()]);
    let e = a.infer(&[&[1, 4, 8, 6], &[1, 4, 8, 6], &[1, 4, 8, 6]]).unwrap_err();
    assert!(e.contains("8 x 6 is not a multiple of group 0's patch size 4"), "{e}");
    let e = a.infer(&[&[1, 5, 8, 8], &[1, 5, 8, 8], &[1, 5, 8, 8]]).unwrap_err();
    assert!(e.contains("5 channels do not split into 2 equal groups"), "{e}");
    assert!(a.infer(&[&m, &m]).unwrap_err().contains("takes 3 inputs"));
    assert!(a.infer(&[&m, &[1, 4, 8, 16], &m]).unwrap_err().contains("same shape"));
    assert!(a.infer(&[&[4, 8, 8], &[4, 8, 8], &[4, 8, 8]]).unwrap_err().contains("[N, C, H, W]"));
    assert!(MsAttn::new(&[]).infer(&[&m, &m, &m]).unwrap_err().contains("at least one group"));
    assert!(MsAttn::new(&[2, 0]).infer(&[&m, &m, &m]).unwrap_err().contains("patch size 0"));
    let z = [1, 4, 0, 8];
    assert!(a.infer(&[&z, &z, &z]).unwrap_err().contains("empty map"));
    // Through the graph builder: an error naming the node, no panic.
    let mut b = GraphBuilder::new();
    let x = b.input("x", &[1, 4, 12, 12]);
    let e = b.add("att", MsAttn::new(&[8, 4]), &[x, x, x]).unwrap_err().to_string();
    assert!(e.contains("node 'att'") && e.contains("patch size 8"), "{e}");
}

#[test]
fn entry_points_exist() {
    assert_entry_points(&KERNELS[0], &["fused", "gather", "scatter"]);
}

/// The block builder: x + pos, 1x1-conv q/k/v with biases, then the op; against the CPU
/// composition of the same pieces (conv and attention references), on the device's default
/// variants.
#[test]
fn block_with_projections_and_pos_embedding() {
    use crate::graph::Plan;
    use crate::ops::conv2d::conv2d_reference;
    use crate::ops::testing::device;
    use crate::tensor::check_close;
    let seed = Rng::fresh_seed();
    let (n, c, h, w, patches) = (2, 6, 8, 12, [4, 2, 1]);
    let x = Tensor::random(&[n, c, h, w], seed, -1.0, 1.0);
    let wt = |s: u64| Tensor::random(&[c, c, 1, 1], seed + s, -0.5, 0.5);
    let bias = |s: u64| Tensor::random(&[c], seed + s, -0.5, 0.5);
    let pos = Tensor::random(&[1, c, h, w], seed + 7, -0.5, 0.5);
    let wts = MsAttnWeights {
        wq: wt(1),
        bq: Some(bias(2)),
        wk: wt(3),
        bk: Some(bias(4)),
        wv: wt(5),
        bv: None,
        pos: Some(pos.clone()),
    };
    let mut b = GraphBuilder::new();
    let xi = b.input("x", &[n, c, h, w]);
    let o = msattn(&mut b, "mst", xi, &patches, wts.clone()).unwrap();
    b.output("out", o);
    let plan = Plan::new(device(), &b.finish()).unwrap();
    let got = plan.run(&[("x", &x)]).unwrap().remove("out").unwrap();

    let mut xp = x.clone();
    for (i, v) in xp.data.iter_mut().enumerate() {
        *v += pos.data[i % (c * h * w)];
    }
    let conv = Conv2d::new(1, 0);
    let q = conv2d_reference(&xp, &wts.wq, wts.bq.as_ref(), &conv);
    let k = conv2d_reference(&xp, &wts.wk, wts.bk.as_ref(), &conv);
    let v = conv2d_reference(&xp, &wts.wv, None, &conv);
    let want = MsAttn::new(&patches).reference(&[&q, &k, &v]).remove(0);
    check_close(&format!("msattn block seed {seed}"), &got, &want, TOL).unwrap();
}

/// The fused kernel is one dispatch per group; the composed path 11 per (item, group) (the
/// dispatch overhead that dominates small maps on lavapipe); by default, heads with few tokens run
/// fused on every device.
#[test]
fn dispatch_counts_and_per_group_choice() {
    use crate::gpu::device::DeviceClass;
    use crate::ops::testing::{device, run_with_stats};
    let shape = [2, 8, 8, 8];
    let x = Tensor::random(&shape, 3, -1.0, 1.0);
    let inputs = [x.clone(), x.clone(), x];
    let count = |patches: &[usize], variant| {
        run_with_stats(&MsAttn { patches: patches.to_vec(), variant }, &inputs).unwrap().1.dispatches
    };
    assert_eq!(count(&[8, 4, 2, 1], Some(MsAttnVariant::Fused)), 4);
    assert_eq!(count(&[2, 1, 2, 1], Some(MsAttnVariant::Composed)), 2 * 4 * 11);
    // Patches 8 and 4 give 1 and 4 tokens: fused; 2 and 1 give 16 and 64: composed on software.
    let want = if device().class == DeviceClass::Software { 2 + 2 * 2 * 11 } else { 4 };
    assert_eq!(count(&[8, 4, 2, 1], None), want);
    // Forcing the composed path on a head with too few tokens names the group.
    let e = run_with_stats(&MsAttn { patches: vec![2, 8], variant: Some(MsAttnVariant::Composed) }, &inputs)
        .unwrap_err()
        .to_string();
    assert!(e.contains("group 1 (patch 8)") && e.contains("at least 8 tokens"), "{e}");
}

/// No windowing yet: a map over one storage binding is refused with a message, not split or
/// truncated (binding limit shrunk to 1024 elements for the test).
#[test]
fn maps_over_one_binding_are_refused() {
    use crate::ops::testing::run_on_gpu;
    let x = Tensor::random(&[1, 4, 32, 32], 5, -1.0, 1.0);
    let _limit = crate::ops::window::test_limit(1024);
    let e = run_on_gpu(&MsAttn::new(&[4, 8]), &[x.clone(), x.clone(), x]).unwrap_err().to_string();
    assert!(e.contains("msattn binds whole maps") && e.contains("4096 elements"), "{e}");
}
