//! Error Level Analysis (ELA): re-save the image as a baseline JPEG at `quality`, decode it, and
//! take `|orig - decoded|` per RGB channel. Input `[N, 3, H, W]` RGB in 0..255 (rounded half up
//! and clamped to u8 first), any H and W; output the same shape, integer levels 0..255.
//!
//! The round trip follows libjpeg / libjpeg-turbo's default baseline path as PIL and OpenCV use it:
//! - RGB -> YCbCr: `jccolor.c` fixed point (16 fraction bits), JFIF full range, rounded to u8.
//! - Edges: the image is padded to the 16 x 16 MCU grid of 4:2:0 by repeating the last column and
//!   row (`expand_right_edge` / `expand_bottom_edge`); chroma rows past the last downsampled row
//!   repeat that row. Padding only feeds blocks that hold real pixels; it is cropped on decode.
//! - 4:2:0: `h2v2_downsample`, the 2 x 2 mean with the alternating bias 1, 2 (`(sum + bias) >> 2`).
//! - Per 8 x 8 block: level shift -128, **float** DCT with exact cosines (f32, separable, rows then
//!   columns), quantization by the Annex K tables scaled by IJG quality, `floor(F / Q + 0.5)` (as
//!   libjpeg's float path), dequantize, float IDCT, `floor(x + 128.5)` clamped to 0..255.
//!   libjpeg's default DCT is the integer `islow` one: its decoded levels can differ from ours by
//!   +-1, and a coefficient that lands on the other side of a rounding boundary moves a block more.
//! - Decode: `h2v2_fancy_upsample` (the triangle filter: 3/4 and 1/4 weights in each direction,
//!   edges replicated; plain replication when the downsampled width is <= 2, as libjpeg-turbo),
//!   then `jdcolor.c`'s fixed-point YCbCr -> RGB clamped to 0..255.
//!
//! The kernels (`kernels/ela.wgsl`) do the same f32 operations in the same order as
//! [`jpeg_roundtrip`]; a driver that fuses multiply-adds can still move a value across a `.5`
//! rounding boundary, so GPU and CPU agree on almost every pixel, not all (see the tests).
//!
//! Images over one storage binding (or whose planes would be over 64 MiB) run in bands of MCU
//! rows with one MCU row of context above and below (`mcu_bands`, `bands`); the result is the
//! whole image's, bit for bit, since every block, chroma sample and upsampled pixel of a band's
//! core rows sees the same values as in one pass. `docs/detectors.md` has the details.

use crate::error::Result;
use crate::kernel;
use crate::ops::{as_bytes, groups, Bind, Op, PlanCtx, TensorView};
use crate::tensor::{Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("ela")];

/// ELA difference `|x - jpeg(x, quality)|` per channel.
#[derive(Clone, Debug)]
pub struct Ela {
    /// IJG quality 1..=100 (the PMSP paper uses 90, Krawetz 95).
    pub quality: u32,
}

impl Default for Ela {
    fn default() -> Self {
        Ela { quality: 90 }
    }
}

/// JPEG Annex K luminance table, natural order (row = vertical frequency).
pub const LUMA_BASE: [u32; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51,
    87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
];

/// JPEG Annex K chrominance table, natural order.
pub const CHROMA_BASE: [u32; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99,
];

/// IJG quality scaling (`jpeg_quality_scaling` + `jpeg_add_quant_table` with force_baseline):
/// `s = q < 50 ? 5000 / q : 200 - 2q`, `Q = clamp((base * s + 50) / 100, 1, 255)`, integer math.
pub fn quant_table(base: &[u32; 64], quality: u32) -> [u32; 64] {
    let q = quality.clamp(1, 100);
    let s = if q < 50 { 5000 / q } else { 200 - 2 * q };
    base.map(|b| ((b * s + 50) / 100).clamp(1, 255))
}

/// The 8-point orthonormal DCT matrix `m[k * 8 + n] = c(k)/2 cos((2n+1) k pi / 16)`, `c(0) = 1/sqrt 2`,
/// `c(k) = 1`, evaluated in f64 and rounded to f32.
pub fn dct8() -> [f32; 64] {
    std::array::from_fn(|i| {
        let (k, n) = (i / 8, i % 8);
        let c = if k == 0 { std::f64::consts::FRAC_1_SQRT_2 } else { 1.0 };
        (c / 2.0 * ((2 * n + 1) as f64 * k as f64 * std::f64::consts::PI / 16.0).cos()) as f32
    })
}

/// libjpeg's RGB -> YCbCr (jccolor.c), exact integer arithmetic.
fn rgb_to_ycc([r, g, b]: [i32; 3]) -> [i32; 3] {
    [
        (19595 * r + 38470 * g + 7471 * b + 32768) >> 16,
        (-11059 * r - 21709 * g + 32768 * b + (128 << 16) + 32767) >> 16,
        (32768 * r - 27439 * g - 5329 * b + (128 << 16) + 32767) >> 16,
    ]
}

/// libjpeg's YCbCr -> RGB (jdcolor.c tables; `>>` on i32 is the arithmetic shift libjpeg uses).
fn ycc_to_rgb(y: i32, cb: i32, cr: i32) -> [u8; 3] {
    let (cb, cr) = (cb - 128, cr - 128);
    let r = y + ((91881 * cr + 32768) >> 16);
    let g = y + ((-22554 * cb + 32768 - 46802 * cr) >> 16);
    let b = y + ((116130 * cb + 32768) >> 16);
    [r, g, b].map(|v| v.clamp(0, 255) as u8)
}

/// One separable 8-point pass over every row of `src`, stored transposed (the kernel's `pass8`):
/// `out[k * 8 + r] = sum_i t(k, i) src[r * 8 + i]` with `t(k, i) = m[k][i]` forward, `m[i][k]`
/// inverse, summed in f32 from i = 0. Two passes do rows then columns, back in natural order.
fn pass8(m: &[f32; 64], src: &[f32; 64], inverse: bool) -> [f32; 64] {
    std::array::from_fn(|o| {
        let (k, r) = (o / 8, o % 8);
        (0..8).fold(0f32, |acc, i| acc + m[if inverse { i * 8 + k } else { k * 8 + i }] * src[r * 8 + i])
    })
}

/// Round trip one 8 x 8 block of u8 levels in place (f32, the kernel's order of operations).
fn roundtrip_block(blk: &mut [f32; 64], m: &[f32; 64], q: &[u32; 64]) {
    let coef = pass8(m, &pass8(m, &blk.map(|v| v - 128.0), false), false);
    let dequant: [f32; 64] = std::array::from_fn(|k| {
        let recip = (1.0 / q[k] as f64) as f32;
        (coef[k] * recip + 0.5).floor() * q[k] as f32
    });
    let out = pass8(m, &pass8(m, &dequant, true), true);
    for (o, v) in blk.iter_mut().zip(out) {
        *o = (v + 128.5).floor().clamp(0.0, 255.0);
    }
}

/// Round trip every 8 x 8 block of a `rows x cols` plane (both multiples of 8).
fn roundtrip_plane(p: &mut [f32], cols: usize, m: &[f32; 64], q: &[u32; 64]) {
    for by in 0..p.len() / cols / 8 {
        for bx in 0..cols / 8 {
            let at = |i: usize| (by * 8 + i / 8) * cols + bx * 8 + i % 8;
            let mut blk: [f32; 64] = std::array::from_fn(|i| p[at(i)]);
            roundtrip_block(&mut blk, m, q);
            for (i, v) in blk.iter().enumerate() {
                p[at(i)] = *v;
            }
        }
    }
}

/// The decoder's chroma sample at full-resolution (y, x): `h2v2_fancy_upsample` of the decoded
/// `c` plane (row stride `stride`) whose real part is `dh x dw`, or replication when `dw <= 2`.
fn upsample(c: &[f32], stride: usize, (dh, dw): (usize, usize), y: usize, x: usize) -> i32 {
    let at = |i: usize, j: usize| c[i * stride + j] as i32;
    let (i, j) = (y / 2, x / 2);
    if dw <= 2 {
        return at(i, j);
    }
    // The nearer row weighs 3, the other (above for even y, below for odd y) 1; same across.
    let other = if y.is_multiple_of(2) { i.saturating_sub(1) } else { (i + 1).min(dh - 1) };
    let colsum = |j: usize| 3 * at(i, j) + at(other, j);
    if x.is_multiple_of(2) {
        (3 * colsum(j) + colsum(j.saturating_sub(1)) + 8) >> 4
    } else {
        (3 * colsum(j) + colsum((j + 1).min(dw - 1)) + 7) >> 4
    }
}

/// CPU reference of the whole round trip: planar RGB u8 `[3][h][w]` in, planar RGB u8 out.
pub fn jpeg_roundtrip(rgb: &[u8], h: usize, w: usize, quality: u32) -> Vec<u8> {
    assert_eq!(rgb.len(), 3 * h * w, "planar RGB of {h} x {w}");
    if h == 0 || w == 0 {
        return Vec::new();
    }
    let (hp, wp) = (h.next_multiple_of(16), w.next_multiple_of(16));
    let (hc, wc) = (hp / 2, wp / 2);
    let (dh, dw) = (h.div_ceil(2), w.div_ceil(2));
    let pixel = |y: usize, x: usize| {
        let i = y.min(h - 1) * w + x.min(w - 1);
        rgb_to_ycc([rgb[i] as i32, rgb[h * w + i] as i32, rgb[2 * h * w + i] as i32])
    };
    let mut lum: Vec<f32> = (0..hp * wp).map(|i| pixel(i / wp, i % wp)[0] as f32).collect();
    let mut chroma = [vec![0f32; hc * wc], vec![0f32; hc * wc]];
    for i in 0..hc {
        let ri = i.min(dh - 1);
        for j in 0..wc {
            let cells = [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(dy, dx)| pixel(2 * ri + dy, 2 * j + dx));
            let bias = 1 + (j % 2) as i32;
            for (c, plane) in chroma.iter_mut().enumerate() {
                plane[i * wc + j] = ((cells.iter().map(|p| p[c + 1]).sum::<i32>() + bias) >> 2) as f32;
            }
        }
    }
    let m = dct8();
    let (ql, qc) = (quant_table(&LUMA_BASE, quality), quant_table(&CHROMA_BASE, quality));
    roundtrip_plane(&mut lum, wp, &m, &ql);
    for plane in chroma.iter_mut() {
        roundtrip_plane(plane, wc, &m, &qc);
    }
    let mut out = vec![0u8; 3 * h * w];
    for y in 0..h {
        for x in 0..w {
            let cb = upsample(&chroma[0], wc, (dh, dw), y, x);
            let cr = upsample(&chroma[1], wc, (dh, dw), y, x);
            let px = ycc_to_rgb(lum[y * wp + x] as i32, cb, cr);
            for (c, v) in px.iter().enumerate() {
                out[c * h * w + y * w + x] = *v;
            }
        }
    }
    out
}

/// An f32 sample as the u8 the encoder sees: round half up, clamp to 0..255.
pub fn to_u8(v: f32) -> u8 {
    (v + 0.5).floor().clamp(0.0, 255.0) as u8
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ElaParams {
    h: u32,
    w: u32,
    bh: u32,
    wp: u32,
    n: u32,
    row0: u32,
    y0: u32,
    xb: [u32; 3],
    ob: [u32; 3],
    _p: [u32; 3],
}

/// The MCU rows (16 image rows each) of an `h x w` image in bands whose planes (luma and both
/// chroma planes: 24 x `wp` elements per MCU row) fit `limit` elements and
/// [`bands::PLANES_CAP`] (raised to 3 MCU rows for very wide images), and whose channel
/// windows fit `room` (a binding less the alignment):
/// one band when the whole image fits, else bands with one MCU row of context above and below.
/// `None` when not even one core MCU row with its context fits.
pub(crate) fn mcu_bands(h: usize, w: usize, limit: usize, room: usize) -> Option<Vec<bands::Band>> {
    let (mcus, wp) = (h.div_ceil(16), w.next_multiple_of(16));
    let per_mcu = 24 * wp;
    let limit = limit.min(bands::PLANES_CAP.max(3 * per_mcu));
    if mcus * per_mcu <= limit && h * w <= room {
        return Some(bands::split(mcus, mcus, 0));
    }
    let with_halo = (limit / per_mcu).min(room / (16 * w));
    let core = with_halo.checked_sub(2).filter(|&k| k > 0)?;
    Some(bands::split(mcus, core, 1))
}

impl Op for Ela {
    fn kind(&self) -> &'static str {
        "ela"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        if !(1..=100).contains(&self.quality) {
            return Err(format!("JPEG quality {} is outside 1..=100", self.quality));
        }
        match inputs {
            [x] if x.len() == 4 && x[1] == 3 && x.iter().all(|&d| d > 0) => Ok(vec![x.to_vec()]),
            [x] => Err(format!("needs an RGB image [N, 3, H, W] with non-empty dimensions, got {x:?}")),
            _ => Err(format!("takes 1 input, got {}", inputs.len())),
        }
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        cpu::kernel(self, inputs)
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let x = inputs[0];
        let (h, w) = (x.shape[2], x.shape[3]);
        let mut data = Vec::with_capacity(x.numel());
        for sample in x.data.chunks(3 * h * w) {
            let orig: Vec<u8> = sample.iter().map(|&v| to_u8(v)).collect();
            let rt = jpeg_roundtrip(&orig, h, w, self.quality);
            data.extend(orig.iter().zip(&rt).map(|(&a, &b)| (a as f32 - b as f32).abs()));
        }
        vec![Tensor { shape: x.shape.clone(), data }]
    }
    /// The round trip in bands of MCU rows (see `mcu_bands`), one sample at a time: per band,
    /// `to_ycc` fills the band's planes (core and context MCU rows), `blocks` round trips every
    /// 8 x 8 block of them, `to_rgb` decodes the core rows. Blocks, 4:2:0 subsampling and fancy
    /// upsampling of the core rows then see exactly what they see in the whole image (a core row
    /// reads chroma at most one chroma row into the MCU rows above and below), so the result is
    /// the whole-image one, bit for bit. Each channel's rows are bound as their own window.
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        let (x, y) = (&inputs[0], &outputs[0]);
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3]);
        let wp = w.next_multiple_of(16);
        let (limit, room, align) = bands::budget(ctx);
        let Some(bands) = mcu_bands(h, w, limit, room) else {
            return Err(bands::too_large(
                ctx,
                &format!("ELA of a {w}-pixel-wide image (3 MCU rows)"),
                3 * 24 * wp,
                limit,
            ));
        };
        bands::check_u32(ctx, "image rows x padded width", h.next_multiple_of(16) * wp)?;
        let mut tab: Vec<f32> = dct8().to_vec();
        let (ql, qc) = (quant_table(&LUMA_BASE, self.quality), quant_table(&CHROMA_BASE, self.quality));
        tab.extend(ql.iter().chain(&qc).map(|&q| q as f32));
        tab.extend(ql.iter().chain(&qc).map(|&q| (1.0 / q as f64) as f32));
        let tab = ctx.constant(&tab)?;
        let most = bands.iter().map(|b| b.halo.len()).max().unwrap_or(0);
        let planes = ctx.scratch(most * 24 * wp)?;
        let (ycc, blk, rgb) = (
            ctx.pipeline(&KERNELS[0], "to_ycc", &[])?,
            ctx.pipeline(&KERNELS[0], "blocks", &[])?,
            ctx.pipeline(&KERNELS[0], "to_rgb", &[])?,
        );
        for s in 0..n {
            for band in &bands {
                let bh = 16 * band.halo.len();
                let row0 = 16 * band.halo.start;
                let core = 16 * band.core.start..(16 * band.core.end).min(h);
                let plane = bh * wp * 3 / 2;
                let u = ElaParams {
                    h: h as u32,
                    w: w as u32,
                    bh: bh as u32,
                    wp: wp as u32,
                    n: 0,
                    row0: row0 as u32,
                    y0: core.start as u32,
                    xb: [0; 3],
                    ob: [0; 3],
                    _p: [0; 3],
                };
                // The band's planes: its image rows (the last padded by repetition).
                let (xs, xb) = bands::channel_rows(x, s, [0, 1, 2], &(row0..(row0 + bh).min(h)), align);
                let items = bh * wp / 4;
                let p = ElaParams { n: items as u32, xb, ..u };
                let binds = [&xs[0], &xs[1], &xs[2], &planes].map(Bind::Tensor);
                ctx.dispatch_linear(&ycc, &bands::with_uniform(&p, binds), groups(items, 64))?;
                let p = ElaParams { n: (plane / 64) as u32, ..u };
                let binds = [Bind::Uniform(as_bytes(&p)), Bind::Tensor(&tab), Bind::Tensor(&planes)];
                ctx.dispatch_linear(&blk, &binds, groups(plane / 64, 64))?;
                let (xs, xb) = bands::channel_rows(x, s, [0, 1, 2], &core, align);
                let (ys, ob) = bands::channel_rows(y, s, [0, 1, 2], &core, align);
                let items = core.len() * w;
                let p = ElaParams { n: items as u32, xb, ob, ..u };
                let binds = [&xs[0], &xs[1], &xs[2], &planes, &ys[0], &ys[1], &ys[2]].map(Bind::Tensor);
                ctx.dispatch_linear(&rgb, &bands::with_uniform(&p, binds), groups(items, 64))?;
            }
        }
        Ok(())
    }
}

/// Bands of rows for the detectors' ops (shared with `ela_map` and `noise`).
pub(crate) mod bands;
mod cpu;

#[cfg(test)]
pub(crate) mod tests;
