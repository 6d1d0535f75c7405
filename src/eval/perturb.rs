//! The robustness protocol of Mesorch's Table 2 (IMDL-BenCo's test-time perturbations), applied
//! to the full-resolution uint8 RGB image before the model sees it.
//!
//! - `noise:3,7,...`: Gaussian noise; each number is a **variance** on the 0..255 scale
//!   (sigma = sqrt(v)), drawn per channel per pixel from a seeded deterministic generator, added,
//!   rounded and clipped to 0..255.
//! - `blur:3,5,...`: Gaussian blur with an odd kernel size k and OpenCV's sigma for it,
//!   `0.3((k-1)/2 - 1) + 0.8`, separable, border reflect-101 (`gfedcb|abcdefgh|gfedcba`) as
//!   OpenCV's default. Computed in f32 and rounded: within one level of OpenCV's fixed-point path.
//! - `jpeg:100,90,...`: encoded with the image crate's JPEG encoder at quality q (IJG-scaled Annex K
//!   tables, no chroma subsampling) and decoded again. The benchmark encodes with OpenCV
//!   (libjpeg, 4:2:0), so the pixels differ slightly; the strength of the compression is the same.

use crate::error::{Error, Result};
use crate::imageio::{decode_rgb8, LoadOptions, RgbImage};

/// One perturbation at one strength.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Perturbation {
    /// Additive Gaussian noise of this variance.
    Noise { variance: f64 },
    /// Gaussian blur with this odd kernel size.
    Blur { kernel: usize },
    /// JPEG round trip at this quality (1..=100).
    Jpeg { quality: u8 },
}

impl Perturbation {
    /// `noise`, `blur` or `jpeg`.
    pub fn kind(&self) -> &'static str {
        match self {
            Perturbation::Noise { .. } => "noise",
            Perturbation::Blur { .. } => "blur",
            Perturbation::Jpeg { .. } => "jpeg",
        }
    }

    /// The number given on the command line.
    pub fn strength(&self) -> f64 {
        match *self {
            Perturbation::Noise { variance } => variance,
            Perturbation::Blur { kernel } => kernel as f64,
            Perturbation::Jpeg { quality } => quality as f64,
        }
    }

    /// The perturbed image; `seed` makes the noise of each image its own and reproducible.
    pub fn apply(&self, img: &RgbImage, seed: u64) -> Result<RgbImage> {
        match *self {
            Perturbation::Noise { variance } => Ok(gaussian_noise(img, variance, seed)),
            Perturbation::Blur { kernel } => Ok(gaussian_blur(img, kernel)),
            Perturbation::Jpeg { quality } => jpeg_round_trip(img, quality),
        }
    }
}

impl std::fmt::Display for Perturbation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind(), self.strength())
    }
}

/// Parse `kind:s1,s2,...`; several specs may be joined with `;`.
pub fn parse_spec(spec: &str) -> Result<Vec<Perturbation>> {
    let mut out = Vec::new();
    for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, values) = part.split_once(':').ok_or_else(|| {
            Error::invalid(format!("--perturb '{part}': expected KIND:V1,V2,... with KIND noise, blur or jpeg"))
        })?;
        for v in values.split(',').map(str::trim).filter(|v| !v.is_empty()) {
            let bad = |why: &str| Error::invalid(format!("--perturb '{part}': '{v}' {why}"));
            let p = match kind.trim() {
                "noise" => match v.parse::<f64>() {
                    Ok(x) if x.is_finite() && x >= 0.0 => Perturbation::Noise { variance: x },
                    _ => return Err(bad("is not a variance >= 0")),
                },
                "blur" => match v.parse::<usize>() {
                    Ok(k) if k % 2 == 1 && k <= 255 => Perturbation::Blur { kernel: k },
                    _ => return Err(bad("is not an odd kernel size from 1 to 255")),
                },
                "jpeg" => match v.parse::<u8>() {
                    Ok(q) if (1..=100).contains(&q) => Perturbation::Jpeg { quality: q },
                    _ => return Err(bad("is not a JPEG quality from 1 to 100")),
                },
                other => {
                    return Err(Error::invalid(format!(
                        "--perturb '{part}': unknown kind '{other}' (noise, blur or jpeg)"
                    )))
                }
            };
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err(Error::invalid(format!("--perturb '{spec}' names no strength")));
    }
    Ok(out)
}

/// SplitMix64: a small, fast, well-mixed deterministic generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

/// Add N(0, variance) to every channel of every pixel (Box-Muller), round, clip.
pub fn gaussian_noise(img: &RgbImage, variance: f64, seed: u64) -> RgbImage {
    let sigma = variance.max(0.0).sqrt();
    let mut rng = SplitMix64(seed);
    let mut spare: Option<f64> = None;
    let data = img
        .data
        .iter()
        .map(|&v| {
            let n = spare.take().unwrap_or_else(|| {
                let (r, theta) = ((-2.0 * rng.unit().ln()).sqrt(), std::f64::consts::TAU * rng.unit());
                spare = Some(r * theta.sin());
                r * theta.cos()
            });
            (v as f64 + sigma * n).round().clamp(0.0, 255.0) as u8
        })
        .collect();
    RgbImage { width: img.width, height: img.height, data }
}

/// OpenCV's sigma for a Gaussian kernel of size `k` when none is given.
pub fn opencv_sigma(kernel: usize) -> f64 {
    0.3 * ((kernel as f64 - 1.0) / 2.0 - 1.0) + 0.8
}

/// Normalized 1-D Gaussian weights of size `kernel` (odd) and OpenCV's sigma.
pub fn gaussian_kernel(kernel: usize) -> Vec<f32> {
    let sigma = opencv_sigma(kernel);
    let c = (kernel as f64 - 1.0) / 2.0;
    let w: Vec<f64> = (0..kernel).map(|i| (-(i as f64 - c).powi(2) / (2.0 * sigma * sigma)).exp()).collect();
    let sum: f64 = w.iter().sum();
    w.iter().map(|v| (v / sum) as f32).collect()
}

/// Index `i` (which may lie outside `0..n`) reflected into it without repeating the edge.
pub fn reflect101(i: isize, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

/// Separable Gaussian blur of each channel with border reflect-101.
pub fn gaussian_blur(img: &RgbImage, kernel: usize) -> RgbImage {
    let (w, h) = (img.width, img.height);
    let weights = gaussian_kernel(kernel.max(1) | 1);
    let values: Vec<f32> = img.data.iter().map(|&v| v as f32).collect();
    let rows = blur_pass(&values, w, h, &weights, true);
    let both = blur_pass(&rows, w, h, &weights, false);
    RgbImage { width: w, height: h, data: both.iter().map(|v| v.round().clamp(0.0, 255.0) as u8).collect() }
}

/// One 1-D pass of `weights` over interleaved RGB values, along rows (`horizontal`) or columns.
fn blur_pass(src: &[f32], w: usize, h: usize, weights: &[f32], horizontal: bool) -> Vec<f32> {
    let r = (weights.len() / 2) as isize;
    let mut out = vec![0.0f32; src.len()];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let mut acc = 0.0f32;
                for (k, wt) in weights.iter().enumerate() {
                    let offset = k as isize - r;
                    let (sx, sy) = if horizontal {
                        (reflect101(x as isize + offset, w), y)
                    } else {
                        (x, reflect101(y as isize + offset, h))
                    };
                    acc += wt * src[(sy * w + sx) * 3 + c];
                }
                out[(y * w + x) * 3 + c] = acc;
            }
        }
    }
    out
}

/// Encode as JPEG at `quality` and decode again.
pub fn jpeg_round_trip(img: &RgbImage, quality: u8) -> Result<RgbImage> {
    let checked = RgbImage::new(img.width, img.height, img.data.clone())?;
    let (w, h) = (u32::try_from(checked.width), u32::try_from(checked.height));
    let (Ok(w), Ok(h)) = (w, h) else {
        return Err(Error::invalid("the image is too large for JPEG"));
    };
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality.clamp(1, 100))
        .encode(&checked.data, w, h, image::ExtendedColorType::Rgb8)
        .map_err(|e| Error::invalid(format!("JPEG encoding at quality {quality} failed: {e}")))?;
    decode_rgb8(&bytes, &LoadOptions::default()).map_err(|e| e.context(format!("JPEG at quality {quality}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn textured(w: usize, h: usize) -> RgbImage {
        let data = (0..w * h * 3).map(|i| ((i * 37 + (i / (3 * w)) * 11) % 200 + 20) as u8).collect();
        RgbImage::new(w, h, data).unwrap()
    }

    #[test]
    fn specs_parse_and_bad_ones_are_explained() {
        let p = parse_spec("noise:3,7; blur:3 ;jpeg:100,50").unwrap();
        assert_eq!(
            p,
            vec![
                Perturbation::Noise { variance: 3.0 },
                Perturbation::Noise { variance: 7.0 },
                Perturbation::Blur { kernel: 3 },
                Perturbation::Jpeg { quality: 100 },
                Perturbation::Jpeg { quality: 50 },
            ]
        );
        assert_eq!(p[2].to_string(), "blur:3");
        for bad in ["blur:4", "jpeg:0", "jpeg:101", "noise:-1", "rotate:90", "noise", "noise:"] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kernel_sigma_and_reflection_match_opencv() {
        assert!((opencv_sigma(3) - 0.8).abs() < 1e-12);
        assert!((opencv_sigma(7) - 1.4).abs() < 1e-12);
        let k = gaussian_kernel(5);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(k[0], k[4]);
        // gfedcb|abcdefgh|gfedcba on n = 8.
        let idx: Vec<usize> = (-3..11).map(|i| reflect101(i, 8)).collect();
        assert_eq!(idx, vec![3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 6, 5, 4]);
        assert_eq!(reflect101(-20, 3), 0);
        assert_eq!(reflect101(5, 1), 0);
    }

    #[test]
    fn blur_keeps_a_constant_image_and_smooths_an_edge() {
        let flat = RgbImage::new(9, 5, vec![93; 9 * 5 * 3]).unwrap();
        assert_eq!(gaussian_blur(&flat, 7), flat);
        // A kernel wider than the image still reflects inside it.
        assert_eq!(gaussian_blur(&RgbImage::new(2, 2, vec![40; 12]).unwrap(), 23).data, vec![40; 12]);
        // A vertical step 0 | 255 becomes a ramp, symmetric about the edge.
        let data = (0..8 * 3 * 3).map(|i| if (i / 3) % 8 < 4 { 0 } else { 255 }).collect();
        let b = gaussian_blur(&RgbImage::new(8, 3, data).unwrap(), 3);
        let row: Vec<u8> = (0..8).map(|x| b.data[x * 3]).collect();
        assert_eq!((row[0], row[7]), (0, 255));
        assert!(row[3] > 0 && row[4] < 255 && row[3] as u32 + row[4] as u32 == 255, "{row:?}");
    }

    #[test]
    fn noise_has_the_requested_variance_and_is_deterministic() {
        let img = RgbImage::new(128, 128, vec![128; 128 * 128 * 3]).unwrap();
        for variance in [3.0, 23.0] {
            let a = gaussian_noise(&img, variance, 7);
            assert_eq!(a, gaussian_noise(&img, variance, 7), "same seed, same noise");
            assert_ne!(a, gaussian_noise(&img, variance, 8));
            let n = a.data.len() as f64;
            let mean = a.data.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = a.data.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            // Rounding adds 1/12 of a level squared.
            assert!((mean - 128.0).abs() < 0.1, "{mean}");
            assert!((var - variance - 1.0 / 12.0).abs() < 0.05 * variance, "variance {variance}: measured {var}");
        }
        // Clipping at the ends of the range.
        let dark = gaussian_noise(&RgbImage::new(4, 4, vec![0; 48]).unwrap(), 100.0, 1);
        assert!(dark.data.contains(&0));
    }

    #[test]
    fn jpeg_quality_100_is_close_to_identity_and_50_is_not() {
        let img = textured(32, 24);
        let mean_abs = |q| {
            let j = jpeg_round_trip(&img, q).unwrap();
            assert_eq!((j.width, j.height), (32, 24));
            j.data.iter().zip(&img.data).map(|(a, b)| (*a as f64 - *b as f64).abs()).sum::<f64>()
                / img.data.len() as f64
        };
        let (q100, q50) = (mean_abs(100), mean_abs(50));
        assert!(q100 < 2.0, "q100 mean error {q100}");
        assert!(q50 > q100, "q50 {q50} vs q100 {q100}");
    }
}
