use super::bands::testing::{align, run_counted};
use super::*;
use crate::ops::testing::run_on_gpu;
use crate::ops::window::test_limit;
use crate::tensor::Rng;

/// A photo-like test image: gradients, a sharp block, and noise of `noise` levels (0 = none);
/// `uniform` makes it plain uniform noise in 0..255 instead (the hardest case for the DCT).
pub(crate) fn test_image(n: usize, h: usize, w: usize, seed: u64, noise: f32, uniform: bool) -> Tensor {
    let mut rng = Rng::new(seed);
    let mut t = Tensor::zeros(&[n, 3, h, w]);
    for s in 0..n {
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let v = if uniform {
                        rng.next_f32() * 255.0
                    } else {
                        let g = [x as f32 / w as f32 * 200.0 + 30.0, y as f32 / h as f32 * 180.0 + 40.0, 128.0][c];
                        let block = (h / 3..h / 2 + 1).contains(&y) && (w / 4..w / 2 + 1).contains(&x);
                        let base = if block { [240.0, 40.0, 70.0][c] } else { g };
                        (base + noise * (rng.next_f32() - 0.5) * 3.46).clamp(0.0, 255.0).round()
                    };
                    t.data[((s * 3 + c) * h + y) * w + x] = v;
                }
            }
        }
    }
    t
}

/// GPU vs CPU for integer-level outputs: the fraction of exactly equal values and the worst
/// difference. Panics below `min_exact` or above `max_diff`.
pub(crate) fn check_levels(case: &str, got: &Tensor, want: &Tensor, min_exact: f64, max_diff: f32) {
    assert_eq!(got.shape, want.shape, "{case}: shape");
    let exact = got.data.iter().zip(&want.data).filter(|(a, b)| a == b).count();
    let frac = exact as f64 / want.numel() as f64;
    let worst = got.max_abs_diff(want);
    println!("{case}: {exact} of {} values equal, worst difference {worst}", want.numel());
    assert!(
        frac >= min_exact && worst <= max_diff,
        "{case}: {:.4}% exact (need {:.2}%), worst difference {worst} (allowed {max_diff})",
        frac * 100.0,
        min_exact * 100.0
    );
}

#[test]
fn quant_tables_follow_ijg_scaling() {
    let q90 = quant_table(&LUMA_BASE, 90);
    assert_eq!(&q90[..8], &[3, 2, 2, 3, 5, 8, 10, 12]);
    assert_eq!(&quant_table(&CHROMA_BASE, 90)[..8], &[3, 4, 5, 9, 20, 20, 20, 20]);
    assert_eq!(quant_table(&LUMA_BASE, 50), LUMA_BASE);
    assert!(quant_table(&LUMA_BASE, 100).iter().all(|&q| q == 1));
    assert!(quant_table(&CHROMA_BASE, 1).iter().all(|&q| q == 255));
    // q = 25: s = 200, Q = 2 * base.
    assert_eq!(quant_table(&LUMA_BASE, 25)[0], 32);
}

#[test]
fn dct8_is_orthonormal() {
    let m = dct8();
    for a in 0..8 {
        for b in 0..8 {
            let dot: f64 = (0..8).map(|n| m[a * 8 + n] as f64 * m[b * 8 + n] as f64).sum();
            assert!((dot - if a == b { 1.0 } else { 0.0 }).abs() < 1e-6, "rows {a} {b}: {dot}");
        }
    }
}

#[test]
fn bad_quality_and_shapes_are_refused() {
    assert!(Ela { quality: 0 }.infer(&[&[1, 3, 8, 8]]).unwrap_err().contains("quality"));
    assert!(Ela { quality: 101 }.infer(&[&[1, 3, 8, 8]]).is_err());
    assert!(Ela::default().infer(&[&[1, 1, 8, 8]]).unwrap_err().contains("[N, 3, H, W]"));
    assert!(Ela::default().infer(&[&[1, 3, 0, 8]]).is_err());
}

/// GPU vs CPU reference on awkward sizes. Tolerance: >= 99.9% of values equal and every value
/// within 16 levels. Both sides do the same f32 operations; only a driver's fused multiply-add
/// can move a coefficient across a `.5` quantization boundary, and one flipped coefficient moves
/// the pixels of its block by at most Q/4 (Q <= 255 / 16 = 16 at q >= 50) per channel, times
/// the 1.772 of the colour transform for chroma.
#[test]
fn gpu_matches_reference() {
    let seed = Rng::fresh_seed();
    let cases: &[(usize, usize, usize, u32, bool)] = &[
        (1, 1, 1, 90, false),
        (1, 9, 17, 90, true),
        (1, 3, 5, 90, false),
        (1, 29, 37, 90, false),
        (2, 23, 41, 75, true),
        (1, 64, 48, 95, false),
        (1, 50, 33, 50, true),
        (1, 17, 2, 100, false),
        (1, 256, 200, 90, false),
    ];
    for (i, &(n, h, w, q, uniform)) in cases.iter().enumerate() {
        let x = test_image(n, h, w, seed + i as u64, 6.0, uniform);
        let op = Ela { quality: q };
        let want = op.reference(&[&x]).remove(0);
        let got = run_on_gpu(&op, &[x]).unwrap().remove(0);
        check_levels(&format!("ela q{q} [{n}, 3, {h}, {w}] seed {seed}"), &got, &want, 0.999, 16.0);
    }
}

fn load_planar(path: &std::path::Path) -> (Vec<u8>, usize, usize) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut p = vec![0u8; 3 * h * w];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            p[c * h * w + i] = px.0[c];
        }
    }
    (p, h, w)
}

/// (name, original, PIL round trip, height, width, quality); images planar RGB u8.
type Fixture = (String, Vec<u8>, Vec<u8>, usize, usize, u32);

fn fixtures() -> Vec<Fixture> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ela");
    let manifest = std::fs::read_to_string(dir.join("manifest.txt")).unwrap();
    let mut out = Vec::new();
    for line in manifest.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let q: u32 = f[3].parse().unwrap();
        let (orig, h, w) = load_planar(&dir.join(format!("{}.png", f[0])));
        let (pil, ph, pw) = load_planar(&dir.join(format!("{}_q{q}.png", f[0])));
        assert_eq!((h, w, ph, pw), (f[2].parse().unwrap(), f[1].parse().unwrap(), h, w), "{line}");
        out.push((format!("{}_q{q}", f[0]), orig, pil, h, w, q));
    }
    out
}

fn diff_stats(a: &[u8], b: &[u8]) -> (u8, f64) {
    let max = a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y)).max().unwrap_or(0);
    let mean = a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y) as f64).sum::<f64>() / a.len().max(1) as f64;
    (max, mean)
}

/// Our CPU round trip against PIL's (libjpeg-turbo 3.2, islow DCT, fancy upsampling) on the
/// committed fixtures, per case `(max |diff|, mean |diff|)` allowed. The float DCT vs libjpeg's
/// integer islow DCT explains the differences: +-1 on decoded Y/Cb/Cr (up to 3 levels in B after
/// the 1.772 Cb gain) on smooth content, and more where strong noise puts many coefficients near
/// a rounding boundary (one flipped coefficient moves its whole block by up to Q/4).
/// Measured (2026-11-21): odd q90 max 7 mean 0.71; odd q75 max 9 mean 0.76; smooth q90 max 3
/// mean 0.10; tiny (replicating upsampler) max 2 mean 0.18.
#[test]
fn reference_matches_libjpeg_fixture() {
    let tolerance = |name: &str| match name {
        "smooth37x29_q90" | "tiny3x5_q90" => (3, 0.25),
        _ => (10, 1.0),
    };
    for (name, orig, pil, h, w, q) in fixtures() {
        let ours = jpeg_roundtrip(&orig, h, w, q);
        let (max, mean) = diff_stats(&ours, &pil);
        let (tmax, tmean) = tolerance(&name);
        println!("{name}: max {max}, mean {mean:.3} (allowed {tmax}, {tmean})");
        assert!(max <= tmax && mean < tmean, "{name}: ours vs PIL max {max}, mean {mean:.3}");
    }
}

/// Re-saving an image that is itself a decoded JPEG at the same quality changes little (the
/// property ELA rests on): the mean change is under a third of the first save's (which strong
/// chroma noise makes large: 4:2:0 removes it). The 3 x 5 image is all edge and is left out.
#[test]
fn second_save_at_the_same_quality_changes_little() {
    for (name, orig, pil, h, w, q) in fixtures().into_iter().filter(|f| !f.0.starts_with("tiny")) {
        let first = diff_stats(&orig, &pil).1;
        let second = diff_stats(&pil, &jpeg_roundtrip(&pil, h, w, q));
        println!("{name}: first save mean {first:.3}; second save max {}, mean {:.3}", second.0, second.1);
        assert!(second.1 < first / 3.0 && second.1 < 2.0, "{name}: first {first:.3}, second {:?}", second);
    }
}

/// Over one binding the round trip runs in bands of MCU rows with one MCU row of context above
/// and below; the result is the whole image's, bit for bit. The binding limit is shrunk so that
/// small images split: `k` core MCU rows per band (the last band shorter), awkward widths (window
/// offsets off the alignment), an image height off the MCU grid, two samples.
#[test]
fn banded_round_trip_is_the_whole_image_one() {
    let seed = Rng::fresh_seed();
    // (n, h, w, quality, core MCU rows per band, bands)
    let cases: &[(usize, usize, usize, u32, usize, usize)] = &[
        (1, 150, 75, 90, 2, 5),
        (1, 83, 37, 75, 1, 6),
        (2, 100, 45, 90, 3, 3),
        (1, 77, 3, 95, 1, 5),
        (1, 66, 130, 50, 2, 3),
    ];
    for (i, &(n, h, w, q, k, nb)) in cases.iter().enumerate() {
        let x = test_image(n, h, w, seed + i as u64, 10.0, i % 2 == 1);
        let op = Ela { quality: q };
        let case = format!("ela q{q} [{n}, 3, {h}, {w}], {k} MCU rows per band, seed {seed}");
        let (whole, d1) = run_counted(&op, &x).unwrap();
        assert_eq!(d1, 3 * n, "{case}: one band per sample unbanded");
        // Planes of k + 2 MCU rows: 24 x wp elements per MCU row (a multiple of 384 elements, so
        // of any alignment up to 256 bytes).
        let limit = (k + 2) * 24 * w.next_multiple_of(16);
        let bands = mcu_bands(h, w, limit, limit - align()).unwrap();
        assert_eq!(bands.len(), nb, "{case}: {bands:?}");
        let _limit = test_limit(limit);
        let (banded, d) = run_counted(&op, &x).unwrap();
        assert_eq!(d, 3 * n * nb, "{case}: 3 dispatches per band and sample");
        assert_eq!(banded.data, whole.data, "{case}: banded differs from the whole image");
        let want = op.reference(&[&x]).remove(0);
        check_levels(&case, &banded, &want, 0.999, 16.0);
    }
}

/// When not even one MCU row with its context fits a binding: a clear error when planning.
#[test]
fn too_wide_for_one_band_is_a_clear_error() {
    let x = test_image(1, 64, 40, 1, 4.0, false);
    let _limit = test_limit(2 * 24 * 48);
    let e = run_counted(&Ela::default(), &x).unwrap_err().to_string();
    assert!(e.contains("storage binding") && e.contains("ELA of a 40-pixel-wide image"), "{e}");
}

/// How a 24 MP photo (6000 x 4000) splits on a 128 MiB binding (lavapipe): the round trip's
/// planes in 3 bands (64 MiB cap, 114 core MCU rows), the map's sums in 6 (16 MiB cap), the
/// noise sigmas in one (its input windows only need 96 MB per channel); a 512 x 512 image in one
/// band everywhere. A very wide image raises the caps rather than failing.
#[test]
fn band_sizes_on_a_128_mib_binding() {
    let (limit, room) = (32 << 20, (32 << 20) - 8);
    let ela = mcu_bands(4000, 6000, limit, room).unwrap();
    let cores: Vec<usize> = ela.iter().map(|b| b.core.len()).collect();
    assert_eq!(cores, [114, 114, 22]);
    assert_eq!((ela[1].halo.start, ela[1].halo.end), (113, 229));
    let map = crate::ops::ela_map::row_bands(4000, 6000, 2, room).unwrap();
    assert_eq!((map.len(), map[0].core.len(), map[0].halo.len()), (6, 695, 697));
    assert_eq!(crate::ops::noise::block_bands(250, 16, 6000, room).unwrap().len(), 1);
    assert_eq!(mcu_bands(512, 512, limit, room).unwrap().len(), 1);
    assert_eq!(crate::ops::ela_map::row_bands(512, 512, 2, room).unwrap().len(), 1);
    // 300 000 pixels wide: 3 MCU rows of planes are 21.6 M elements, over the cap, under a binding.
    let wide = mcu_bands(100, 300_000, limit, room).unwrap();
    assert_eq!(wide.iter().map(|b| b.core.len()).collect::<Vec<_>>(), [1; 7]);
    assert_eq!(crate::ops::ela_map::row_bands(100, 3_000_000, 2, room).unwrap()[0].core.len(), 2);
}
