//! `Detector::detect_tiled` stitches the maps of overlapping tiles: checked with a synthetic model
//! whose map is a known function of the pixel and of the position inside the tile, so every
//! stitched value can be stated exactly.
//!
//! What detect_tiled does (src/pipeline.rs), for a tile of `th x tw` and an overlap `o`:
//! - an image smaller than a tile along an axis is padded to the tile by repeating its last pixel;
//! - tile starts along an axis of `n` pixels: `0, t - o, 2 (t - o), ...` while `start + t < n`,
//!   then `n - t` (the last tile ends on the edge);
//! - each tile's map is weighted by `ramp(ty) * ramp(tx)`, `ramp(i) = min((min(i, t - 1 - i) + 1) / o, 1)`,
//!   and the stitched map is the weighted mean over the tiles that cover a pixel, cropped to the image.
//!
//! The model: `prob = R + tx + 20 ty`, where R is the pixel's red value (0..255, recovered from the
//! ImageNet-normalized input) and (ty, tx) the position inside the tile. The R term is the same in
//! every tile that covers a pixel, so the stitched map is `R + sum(w (tx + 20 ty)) / sum(w)`.

use wgpu_forge::graph::{Graph, GraphBuilder};
use wgpu_forge::imageio::RgbImage;
use wgpu_forge::ops::elementwise::Binary;
use wgpu_forge::ops::layout::Slice;
use wgpu_forge::ops::testing::device;
use wgpu_forge::pipeline::{Detector, InputMode, WeightsInfo};
use wgpu_forge::preprocess::{IMAGENET_MEAN, IMAGENET_STD};
use wgpu_forge::{Result, Tensor};

const TH: usize = 12;
const TW: usize = 16;

/// `[1, 3, th, tw]` normalized image -> `prob [1, 1, th, tw] = R + tx + 20 ty`.
fn model(hw: [usize; 2]) -> Result<Graph> {
    let [th, tw] = hw;
    let mut b = GraphBuilder::new();
    let x = b.input("image", &[1, 3, th, tw]);
    let r = b.add("red", Slice { axis: 1, start: 0, end: 1 }, &[x])?;
    let scale = b.constant("scale", Tensor::full(&[1], IMAGENET_STD[0] * 255.0));
    let r = b.add("unscale", Binary::mul(), &[r, scale])?;
    let pos: Vec<f32> =
        (0..th * tw).map(|i| IMAGENET_MEAN[0] * 255.0 + (i % tw) as f32 + 20.0 * (i / tw) as f32).collect();
    let pos = b.constant("position", Tensor::new(&[1, 1, th, tw], pos)?);
    let prob = b.add("prob", Binary::add(), &[r, pos])?;
    b.output("prob", prob);
    Ok(b.finish())
}

fn red(x: usize, y: usize) -> u8 {
    ((7 * x + 13 * y) % 251) as u8
}

fn image(w: usize, h: usize) -> RgbImage {
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            data.extend([red(x, y), (x * 3 % 256) as u8, (y * 5 % 256) as u8]);
        }
    }
    RgbImage { width: w, height: h, data }
}

/// The stitched value at (x, y) by the rules in the header, in f64.
fn expected(w: usize, h: usize, overlap: usize, x: usize, y: usize) -> f64 {
    let starts = |n: usize, t: usize| -> Vec<usize> {
        let n = n.max(t);
        let mut v: Vec<usize> = (0..).map(|i| i * (t - overlap)).take_while(|&s| s + t < n).collect();
        v.push(n - t);
        v
    };
    let ramp = |i: usize, t: usize| ((i.min(t - 1 - i) + 1) as f64 / overlap.max(1) as f64).min(1.0);
    let (mut num, mut den) = (0.0, 0.0);
    for &y0 in starts(h, TH).iter().filter(|&&s| (s..s + TH).contains(&y)) {
        for &x0 in starts(w, TW).iter().filter(|&&s| (s..s + TW).contains(&x)) {
            let (ty, tx) = (y - y0, x - x0);
            let wgt = ramp(ty, TH) * ramp(tx, TW);
            num += wgt * (tx as f64 + 20.0 * ty as f64);
            den += wgt;
        }
    }
    red(x, y) as f64 + num / den
}

fn stitched(w: usize, h: usize, overlap: usize) -> Vec<f32> {
    let mut det =
        Detector::new(device(), "position", WeightsInfo::default(), InputMode::Resized([TH, TW]), Box::new(model));
    let d = det.detect_tiled(&image(w, h), overlap).unwrap();
    assert_eq!((d.width, d.height, d.prob.len()), (w, h, w * h));
    d.prob
}

fn check_all(w: usize, h: usize, overlap: usize, prob: &[f32]) {
    for y in 0..h {
        for x in 0..w {
            let (got, want) = (prob[y * w + x] as f64, expected(w, h, overlap, x, y));
            // f32 through normalization and back: about 3e-5 of 255.
            assert!((got - want).abs() <= 1e-3, "{w}x{h} overlap {overlap}: ({x}, {y}) is {got}, want {want}");
        }
    }
}

/// Smaller than a tile (padded, one tile) and exactly one tile: the map is R + tx + 20 ty with the
/// tile at the origin, whatever the overlap.
#[test]
fn one_tile() {
    for (w, h) in [(9, 7), (TW, TH), (5, TH), (TW, 3)] {
        for overlap in [1, 5] {
            let prob = stitched(w, h, overlap);
            for y in 0..h {
                for x in 0..w {
                    let want = red(x, y) as f32 + x as f32 + 20.0 * y as f32;
                    let got = prob[y * w + x];
                    assert!((got - want).abs() <= 1e-3, "{w}x{h} overlap {overlap}: ({x}, {y}) is {got}, want {want}");
                }
            }
        }
    }
}

/// 37 x 29 in tiles of 16 x 12: with overlap 5, columns start at 0, 11, 21 and rows at 0, 7, 14, 17.
#[test]
fn overlapping_tiles_blend_by_their_ramps() {
    let (w, h) = (37, 29);
    let prob = stitched(w, h, 5);
    let at = |x: usize, y: usize| prob[y * w + x] as f64 - red(x, y) as f64;
    let close = |got: f64, want: f64, what: &str| assert!((got - want).abs() <= 1e-3, "{what}: {got}, want {want}");
    // (13, 3): row tile 0 only (ty 3); column tiles 0 (tx 13, ramp 3/5) and 11 (tx 2, ramp 3/5).
    close(at(13, 3), (0.6 * 13.0 + 0.6 * 2.0) / 1.2 + 60.0, "(13, 3)");
    // (22, 3): column tiles 11 (tx 11, ramp 1) and 21 (tx 1, ramp 2/5).
    close(at(22, 3), (11.0 + 0.4 * 1.0) / 1.4 + 60.0, "(22, 3)");
    // (5, 15): column tile 0 (tx 5, ramp 1); row tiles 7 (ty 8, ramp 4/5) and 14 (ty 1, ramp 2/5).
    close(at(5, 15), (0.8 * (5.0 + 160.0) + 0.4 * (5.0 + 20.0)) / 1.2, "(5, 15)");
    // (36, 28): only the last tile (21, 17) covers the corner: tx 15, ty 11.
    close(at(36, 28), 15.0 + 220.0, "(36, 28)");
    // (20, 16): column tile 11 only (tx 9); row tiles 7 (ty 9, ramp 3/5) and 14 (ty 2, ramp 3/5).
    close(at(20, 16), 9.0 + (0.6 * 180.0 + 0.6 * 40.0) / 1.2, "(20, 16)");
    check_all(w, h, 5, &prob);
}

/// Odd overlaps and sizes, and an image narrower than a tile but taller than several.
#[test]
fn odd_overlaps_and_sizes() {
    for (w, h, overlap) in [(37, 29, 3), (33, 25, 7), (10, 40, 5), (50, 12, 9)] {
        check_all(w, h, overlap, &stitched(w, h, overlap));
    }
}
