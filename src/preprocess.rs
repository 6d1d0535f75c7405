//! CPU preprocessing exactly as the benchmark's test path: OpenCV-style uint8 bilinear resize to
//! the model size, ImageNet normalization to NCHW f32, and the bilinear (align_corners=False)
//! resize of the output map back to the image size.
//!
//! `resize_bilinear_u8_cv` reproduces `cv2.resize(src, (dw, dh), interpolation=INTER_LINEAR)` on
//! uint8 images bit for bit (checked against opencv-python 4.10 and 5.0 by the fixtures in
//! `tests/fixtures/resize`, made by `tools/make_resize_fixtures.py`). The arithmetic, per
//! shared/specs/mesorch.md ("Input and preprocessing", "Traps"):
//! - per axis, source coordinate `f = f32((i + 0.5) * scale - 0.5)` with `scale = 1 / (dst / src)`
//!   in f64, `i0 = floor(f)`, `a = f - i0`;
//! - x: taps outside the image are clamped to the edge pixel with `a = 0`; y: the fraction is
//!   kept and each of the two row indices is clamped on its own;
//! - weights `rint((1 - a) * 2048)`, `rint(a * 2048)` (ties to even), horizontal pass in i32;
//! - vertical pass in the SIMD form `((T0 >> 4) * v0 >> 16) + ((T1 >> 4) * v1 >> 16) + 2 >> 2`,
//!   saturated to u8. The fixtures show this form for every output byte, row tails included;
//! - an exact 2x downscale on both axes averages 2x2 blocks: `(sum + 2) >> 2`;
//! - equal sizes copy.

use crate::imageio::RgbImage;
use crate::tensor::Tensor;

pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Side of the square input the Mesorch models take.
pub const MODEL_SIZE: usize = 512;

const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// One output coordinate's two source taps and fixed-point weights.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Tap {
    i0: usize,
    i1: usize,
    w0: i32,
    w1: i32,
}

/// `(floor, fraction)` of OpenCV's f32 source coordinate for output index `i`.
fn src_coord(i: usize, scale: f64) -> (i64, f32) {
    let f = ((i as f64 + 0.5) * scale - 0.5) as f32;
    let fl = f.floor();
    (fl as i64, f - fl)
}

fn weights(a: f32) -> (i32, i32) {
    (((1.0 - a) * COEF_SCALE).round_ties_even() as i32, (a * COEF_SCALE).round_ties_even() as i32)
}

/// Horizontal taps: out-of-range taps snap to the edge pixel with fraction 0.
fn x_taps(src: usize, dst: usize) -> Vec<Tap> {
    let scale = 1.0 / (dst as f64 / src as f64);
    (0..dst)
        .map(|i| {
            let (mut i0, mut a) = src_coord(i, scale);
            if i0 < 0 {
                i0 = 0;
                a = 0.0;
            }
            if i0 >= src as i64 - 1 {
                i0 = src as i64 - 1;
                a = 0.0;
            }
            let (w0, w1) = weights(a);
            let i0 = i0 as usize;
            Tap { i0, i1: (i0 + 1).min(src - 1), w0, w1 }
        })
        .collect()
}

/// Vertical taps: the fraction is kept; each row index is clamped to the image on its own.
fn y_taps(src: usize, dst: usize) -> Vec<Tap> {
    let scale = 1.0 / (dst as f64 / src as f64);
    let last = src as i64 - 1;
    (0..dst)
        .map(|i| {
            let (i0, a) = src_coord(i, scale);
            let (w0, w1) = weights(a);
            Tap { i0: i0.clamp(0, last) as usize, i1: (i0 + 1).clamp(0, last) as usize, w0, w1 }
        })
        .collect()
}

/// `cv2.resize(src, (dw, dh), interpolation=cv2.INTER_LINEAR)` on an interleaved (HWC) uint8
/// image with `channels` channels, bit for bit.
///
/// Panics if a size is zero or `src.len() != sw * sh * channels`.
pub fn resize_bilinear_u8_cv(src: &[u8], sw: usize, sh: usize, channels: usize, dw: usize, dh: usize) -> Vec<u8> {
    assert!(
        sw > 0 && sh > 0 && dw > 0 && dh > 0 && channels > 0,
        "resize: zero size ({sw}x{sh}x{channels} -> {dw}x{dh})"
    );
    assert_eq!(src.len(), sw * sh * channels, "resize: {sw}x{sh}x{channels} image needs {} bytes", sw * sh * channels);
    if (sw, sh) == (dw, dh) {
        return src.to_vec();
    }
    if sw == 2 * dw && sh == 2 * dh {
        return halve(src, sw, channels, dw, dh);
    }
    let xt = x_taps(sw, dw);
    let yt = y_taps(sh, dh);
    let row_len = dw * channels;
    // Horizontal pass of one source row into i32 values scaled by 2048.
    let hpass = |y: usize, out: &mut Vec<i32>| {
        let row = &src[y * sw * channels..(y + 1) * sw * channels];
        out.clear();
        for t in &xt {
            let (p0, p1) = (&row[t.i0 * channels..], &row[t.i1 * channels..]);
            for c in 0..channels {
                out.push(p0[c] as i32 * t.w0 + p1[c] as i32 * t.w1);
            }
        }
    };
    let mut out = vec![0u8; dh * row_len];
    // Cache the two most recent horizontal rows: consecutive outputs mostly share them.
    let (mut r0, mut r1) = (Vec::with_capacity(row_len), Vec::with_capacity(row_len));
    let (mut k0, mut k1) = (usize::MAX, usize::MAX);
    for (dy, t) in yt.iter().enumerate() {
        if k0 != t.i0 {
            if k1 == t.i0 {
                std::mem::swap(&mut r0, &mut r1);
                std::mem::swap(&mut k0, &mut k1);
            } else {
                hpass(t.i0, &mut r0);
                k0 = t.i0;
            }
        }
        if k1 != t.i1 {
            hpass(t.i1, &mut r1);
            k1 = t.i1;
        }
        let dst = &mut out[dy * row_len..(dy + 1) * row_len];
        for ((d, &a), &b) in dst.iter_mut().zip(&r0).zip(&r1) {
            let v = (((a >> 4) * t.w0) >> 16) + (((b >> 4) * t.w1) >> 16);
            *d = ((v + 2) >> 2).clamp(0, 255) as u8;
        }
    }
    out
}

/// Exact 2x downscale: mean of each 2x2 block, rounded half up.
fn halve(src: &[u8], sw: usize, channels: usize, dw: usize, dh: usize) -> Vec<u8> {
    let stride = sw * channels;
    let mut out = Vec::with_capacity(dw * dh * channels);
    for y in 0..dh {
        let (top, bottom) = (&src[2 * y * stride..], &src[(2 * y + 1) * stride..]);
        for x in 0..dw {
            for c in 0..channels {
                let (i, j) = (2 * x * channels + c, (2 * x + 1) * channels + c);
                let s = top[i] as u32 + top[j] as u32 + bottom[i] as u32 + bottom[j] as u32;
                out.push(((s + 2) >> 2) as u8);
            }
        }
    }
    out
}

/// Resize (unless already `size` x `size`) and normalize to a `[1, 3, size, size]` tensor:
/// `(x - mean * 255) / (std * 255)` per channel, in f32.
pub fn to_model_input(img: &RgbImage, size: usize) -> Tensor {
    to_model_input_hw(img, size, size)
}

/// [`to_model_input`] for an `h` x `w` model input.
pub fn to_model_input_hw(img: &RgbImage, h: usize, w: usize) -> Tensor {
    let resized;
    let px: &[u8] = if img.width == w && img.height == h {
        &img.data
    } else {
        resized = resize_bilinear_u8_cv(&img.data, img.width, img.height, 3, w, h);
        &resized
    };
    let plane = h * w;
    let mut data = vec![0.0f32; 3 * plane];
    for c in 0..3 {
        let (m, s) = (IMAGENET_MEAN[c] * 255.0, IMAGENET_STD[c] * 255.0);
        for (d, p) in data[c * plane..(c + 1) * plane].iter_mut().zip(px.chunks_exact(3)) {
            *d = (p[c] as f32 - m) / s;
        }
    }
    Tensor { shape: vec![1, 3, h, w], data }
}

/// PyTorch's source index for `align_corners=False` linear interpolation: `(i + 0.5) * scale - 0.5`
/// clamped at 0, split into the two taps and the weight of the second.
fn torch_taps(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f32 / dst as f32;
    (0..dst)
        .map(|i| {
            let f = (scale * (i as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (f as usize).min(src - 1);
            let i1 = if i0 < src - 1 { i0 + 1 } else { i0 };
            (i0, i1, f - i0 as f32)
        })
        .collect()
}

/// `F.interpolate(prob[None, None], size=(dh, dw), mode='bilinear', align_corners=False)` for a
/// single-channel `sw` x `sh` map (row-major), as used to map the 512x512 output back to the image.
///
/// Panics if a size is zero or `prob.len() != sw * sh`.
pub fn resize_prob_back(prob: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    assert!(sw > 0 && sh > 0 && dw > 0 && dh > 0, "resize_prob_back: zero size ({sw}x{sh} -> {dw}x{dh})");
    assert_eq!(prob.len(), sw * sh, "resize_prob_back: {sw}x{sh} map needs {} values", sw * sh);
    let xt = torch_taps(sw, dw);
    let yt = torch_taps(sh, dh);
    let mut out = Vec::with_capacity(dw * dh);
    for &(y0, y1, ly) in &yt {
        let (r0, r1) = (&prob[y0 * sw..(y0 + 1) * sw], &prob[y1 * sw..(y1 + 1) * sw]);
        for &(x0, x1, lx) in &xt {
            let top = (1.0 - lx) * r0[x0] + lx * r0[x1];
            let bottom = (1.0 - lx) * r1[x0] + lx * r1[x1];
            out.push((1.0 - ly) * top + ly * bottom);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The fixtures' counter-based byte generator (same as tools/make_resize_fixtures.py).
    fn gen_bytes(seed: u64, n: usize) -> Vec<u8> {
        (0..n as u64)
            .map(|i| {
                let mut x = (seed << 40) ^ i;
                x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                x ^= x >> 29;
                x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
                x ^= x >> 32;
                (x >> 24) as u8
            })
            .collect()
    }

    fn fnv1a64(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01B3))
    }

    #[test]
    fn preprocess_resize_matches_opencv_fixtures() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/resize");
        let manifest = std::fs::read_to_string(dir.join("manifest.txt")).expect("tests/fixtures/resize/manifest.txt");
        let header: Vec<&str> = manifest.lines().filter(|l| l.starts_with('#')).collect();
        println!("{}", header.first().copied().unwrap_or("# (no header)"));
        let (mut cases, mut failures) = (0, Vec::new());
        for line in manifest.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 9, "bad manifest line: {line}");
            let n = |i: usize| f[i].parse::<usize>().unwrap();
            let (sw, sh, cn, dw, dh, seed) = (n(1), n(2), n(3), n(4), n(5), n(6) as u64);
            let want = std::fs::read(dir.join(f[8])).unwrap();
            let got = resize_bilinear_u8_cv(&gen_bytes(seed, sw * sh * cn), sw, sh, cn, dw, dh);
            assert_eq!(got.len(), dw * dh * cn);
            let row = dw * cn;
            let bad = match f[7] {
                "full" => {
                    assert_eq!(want.len(), got.len(), "{}", f[0]);
                    let bytes = got.iter().zip(&want).filter(|(a, b)| a != b).count();
                    (bytes > 0).then(|| format!("{}: {bytes} of {} bytes differ", f[0], got.len()))
                }
                "rowhash" => {
                    assert_eq!(want.len(), dh * 8, "{}", f[0]);
                    let rows = got
                        .chunks_exact(row)
                        .zip(want.chunks_exact(8))
                        .filter(|(r, h)| fnv1a64(r) != u64::from_le_bytes((*h).try_into().unwrap()))
                        .count();
                    (rows > 0).then(|| format!("{}: {rows} of {dh} rows differ", f[0]))
                }
                k => panic!("unknown fixture kind {k}"),
            };
            cases += 1;
            failures.extend(bad);
        }
        println!("resize fixtures: {cases} cases, {} mismatching", failures.len());
        assert!(cases >= 40, "only {cases} fixture cases found");
        assert!(failures.is_empty(), "not bit-exact with cv2:\n{}", failures.join("\n"));
    }

    #[test]
    fn preprocess_resize_taps_at_edges() {
        // 2x upscale of 2 pixels: coordinates -0.25, 0.25, 0.75, 1.25.
        let t = x_taps(2, 4);
        assert_eq!(t[0], Tap { i0: 0, i1: 1, w0: 2048, w1: 0 });
        assert_eq!(t[1], Tap { i0: 0, i1: 1, w0: 1536, w1: 512 });
        assert_eq!(t[2], Tap { i0: 0, i1: 1, w0: 512, w1: 1536 });
        assert_eq!(t[3], Tap { i0: 1, i1: 1, w0: 2048, w1: 0 });
        // Rows keep the fraction and clamp each index.
        let t = y_taps(2, 4);
        assert_eq!(t[0], Tap { i0: 0, i1: 0, w0: 512, w1: 1536 });
        assert_eq!(t[3], Tap { i0: 1, i1: 1, w0: 1536, w1: 512 });
    }

    #[test]
    fn preprocess_resize_special_paths() {
        let src = gen_bytes(5, 6 * 4 * 3);
        assert_eq!(resize_bilinear_u8_cv(&src, 6, 4, 3, 6, 4), src);
        let half = resize_bilinear_u8_cv(&src, 6, 4, 3, 3, 2);
        let s = |x: usize, y: usize, c: usize| src[(y * 6 + x) * 3 + c] as u32;
        let want = ((s(2, 2, 1) + s(3, 2, 1) + s(2, 3, 1) + s(3, 3, 1) + 2) >> 2) as u8;
        assert_eq!(half[(3 + 1) * 3 + 1], want);
        // A constant image stays constant through any resize.
        let flat = vec![173u8; 7 * 5 * 3];
        assert!(resize_bilinear_u8_cv(&flat, 7, 5, 3, 512, 512).iter().all(|&v| v == 173));
        assert!(resize_bilinear_u8_cv(&flat, 7, 5, 3, 3, 2).iter().all(|&v| v == 173));
    }

    #[test]
    fn preprocess_model_input_normalizes() {
        // 512x512 input passes through unresized; check values and NCHW placement.
        let mut data = vec![0u8; MODEL_SIZE * MODEL_SIZE * 3];
        data[..3].copy_from_slice(&[255, 128, 0]);
        let last = data.len() - 3;
        data[last..].copy_from_slice(&[10, 20, 30]);
        let t = to_model_input(&RgbImage::new(MODEL_SIZE, MODEL_SIZE, data).unwrap(), MODEL_SIZE);
        assert_eq!(t.shape, vec![1, 3, 512, 512]);
        let plane = 512 * 512;
        let norm = |v: f32, c: usize| (v - IMAGENET_MEAN[c] * 255.0) / (IMAGENET_STD[c] * 255.0);
        assert_eq!(t.data[0], norm(255.0, 0));
        assert_eq!(t.data[plane], norm(128.0, 1));
        assert_eq!(t.data[2 * plane], norm(0.0, 2));
        assert_eq!(t.data[plane - 1], norm(10.0, 0));
        assert_eq!(t.data[3 * plane - 1], norm(30.0, 2));
        // Hand values: (255 - 123.675) / 58.395 and (0 - 103.53) / 57.375.
        assert!((t.data[0] - 2.248_908_3).abs() < 1e-5, "{}", t.data[0]);
        assert!((t.data[2 * plane] + 1.804_444_4).abs() < 1e-5, "{}", t.data[2 * plane]);
    }

    #[test]
    fn preprocess_model_input_resizes() {
        let img = RgbImage::new(7, 5, gen_bytes(9, 7 * 5 * 3)).unwrap();
        let t = to_model_input(&img, 16);
        assert_eq!(t.shape, vec![1, 3, 16, 16]);
        let r = resize_bilinear_u8_cv(&img.data, 7, 5, 3, 16, 16);
        let (x, y, c) = (11, 3, 2);
        let want = (r[(y * 16 + x) * 3 + c] as f32 - IMAGENET_MEAN[c] * 255.0) / (IMAGENET_STD[c] * 255.0);
        assert_eq!(t.data[c * 256 + y * 16 + x], want);
    }

    #[test]
    fn preprocess_prob_back_2x2_to_4x4() {
        // align_corners=False, scale 0.5: source coords -0.25 (clamped to 0), 0.25, 0.75, 1.25.
        // Per axis the weights of [a, b] are [1,0], [.75,.25], [.25,.75], [0,1] (last clamps to b).
        let p = [0.0, 1.0, 2.0, 3.0];
        let got = resize_prob_back(&p, 2, 2, 4, 4);
        let axis = [0.0, 0.25, 0.75, 1.0];
        for y in 0..4 {
            for x in 0..4 {
                let want = axis[x] + 2.0 * axis[y];
                assert!((got[y * 4 + x] - want).abs() < 1e-6, "({x},{y}): {} vs {want}", got[y * 4 + x]);
            }
        }
    }

    #[test]
    fn preprocess_prob_back_downscale_and_identity() {
        let p: Vec<f32> = (0..16).map(|v| v as f32).collect();
        assert_eq!(resize_prob_back(&p, 4, 4, 4, 4), p);
        // 4 -> 2: coords 0.5 and 2.5, so each output averages a 2x2 block.
        assert_eq!(resize_prob_back(&p, 4, 4, 2, 2), vec![2.5, 4.5, 10.5, 12.5]);
        // 4x1 -> 3x1: scale 4/3, coords 1/6, 3/2, 17/6.
        let got = resize_prob_back(&[0.0, 1.0, 2.0, 3.0], 4, 1, 3, 1);
        for (g, w) in got.iter().zip([1.0 / 6.0, 1.5, 17.0 / 6.0]) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
    }
}
