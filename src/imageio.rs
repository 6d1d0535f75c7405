//! Image decoding to RGB uint8, as the benchmark's loader sees images.
//!
//! The reference test path opens files with PIL and calls `.convert('RGB')`. We follow that:
//! - grayscale is replicated to three channels, alpha is dropped (no compositing);
//! - 16-bit samples keep their high byte (`v >> 8`). That is what PIL's unpacker does for 16-bit
//!   RGB PNGs and what OpenCV's `imread` gets from libpng, so it, not `round(v / 257)`, is what
//!   the reference models were fed. (PIL clips 16-bit *grayscale* to 255 instead; we do not copy
//!   that quirk.) Float samples (TIFF) are clamped to [0, 1] and rounded from `v * 255`;
//! - EXIF orientation is *not* applied by default, because PIL's `open` + `convert` does not
//!   apply it either; [`LoadOptions::apply_exif_orientation`] turns it on.
//!
//! JPEG pixels are not bit-exact with libjpeg-turbo (what PIL and OpenCV decode with): the image
//! crate decodes JPEG with zune-jpeg, and on the fixtures in `tests/fixtures/decode` a quarter of
//! the bytes of 4:2:0 files differ, by up to 4 levels. PNG, BMP and TIFF are lossless and exact.

use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::error::{Error, ErrorKind, Result};

/// Default decompression-bomb guard: 16384 x 16384 pixels.
pub const DEFAULT_MAX_PIXELS: u64 = 1 << 28;

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl RgbImage {
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<RgbImage> {
        if data.len() != width * height * 3 {
            return Err(Error::invalid(format!(
                "RGB image {width}x{height} needs {} bytes, got {}",
                width * height * 3,
                data.len()
            )));
        }
        Ok(RgbImage { width, height, data })
    }
}

#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Refuse images with more pixels than this before decoding them.
    pub max_pixels: u64,
    /// Rotate/flip according to the EXIF orientation tag (JPEG, TIFF, PNG eXIf). Off by default
    /// to match the reference loader.
    pub apply_exif_orientation: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { max_pixels: DEFAULT_MAX_PIXELS, apply_exif_orientation: false }
    }
}

/// Decode the file at `path` to RGB uint8; images over `max_pixels` pixels are refused.
pub fn load_rgb8(path: impl AsRef<Path>, max_pixels: u64) -> Result<RgbImage> {
    load_rgb8_with(path, &LoadOptions { max_pixels, ..LoadOptions::default() })
}

pub fn load_rgb8_with(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<RgbImage> {
    let path = path.as_ref();
    let bytes = std::fs::read(path)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read image {}: {e}", path.display())))?;
    decode_rgb8(&bytes, opts).map_err(|e| e.context(format!("image {}", path.display())))
}

/// Decode an encoded image held in memory (format guessed from its first bytes).
pub fn decode_rgb8(bytes: &[u8], opts: &LoadOptions) -> Result<RgbImage> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::invalid(format!("cannot guess the format: {e}")))?;
    if reader.format().is_none() {
        return Err(Error::invalid("unsupported or unrecognised image format (PNG, JPEG, TIFF and BMP are supported)"));
    }
    let mut limits = Limits::default();
    // Room for the widest decoded layout (RGBA f32 = 16 bytes a pixel) plus decoder scratch.
    limits.max_alloc = Some(opts.max_pixels.saturating_mul(16).saturating_add(64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (w, h) = decoder.dimensions();
    let pixels = w as u64 * h as u64;
    if pixels > opts.max_pixels {
        return Err(Error::invalid(format!(
            "{w}x{h} = {pixels} pixels exceeds the limit of {} pixels",
            opts.max_pixels
        )));
    }
    if pixels == 0 {
        return Err(Error::invalid(format!("empty image ({w}x{h})")));
    }
    let orientation =
        if opts.apply_exif_orientation { Some(decoder.orientation().map_err(decode_error)?) } else { None };
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(to_rgb8(&img))
}

fn decode_error(e: image::ImageError) -> Error {
    match e {
        image::ImageError::Unsupported(u) => Error::invalid(format!("unsupported image: {u}")),
        image::ImageError::Limits(l) => Error::invalid(format!("image exceeds decoder limits: {l}")),
        image::ImageError::IoError(io) => Error::invalid(format!("corrupt or truncated image: {io}")),
        other => Error::invalid(format!("corrupt image: {other}")),
    }
}

/// Convert any decoded layout to RGB uint8 by the rules in the module documentation.
pub fn to_rgb8(img: &DynamicImage) -> RgbImage {
    let (width, height) = (img.width() as usize, img.height() as usize);
    let data: Vec<u8> = match img {
        DynamicImage::ImageRgb8(b) => b.as_raw().clone(),
        DynamicImage::ImageRgba8(b) => expand::<u8, 4>(b.as_raw(), |v| v, false),
        DynamicImage::ImageLuma8(b) => expand::<u8, 1>(b.as_raw(), |v| v, true),
        DynamicImage::ImageLumaA8(b) => expand::<u8, 2>(b.as_raw(), |v| v, true),
        DynamicImage::ImageRgb16(b) => expand::<u16, 3>(b.as_raw(), high_byte, false),
        DynamicImage::ImageRgba16(b) => expand::<u16, 4>(b.as_raw(), high_byte, false),
        DynamicImage::ImageLuma16(b) => expand::<u16, 1>(b.as_raw(), high_byte, true),
        DynamicImage::ImageLumaA16(b) => expand::<u16, 2>(b.as_raw(), high_byte, true),
        DynamicImage::ImageRgb32F(b) => expand::<f32, 3>(b.as_raw(), unit_to_u8, false),
        DynamicImage::ImageRgba32F(b) => expand::<f32, 4>(b.as_raw(), unit_to_u8, false),
        // Layouts added to the image crate later: fall back to its own conversion.
        other => other.to_rgb8().into_raw(),
    };
    RgbImage { width, height, data }
}

fn high_byte(v: u16) -> u8 {
    (v >> 8) as u8
}

/// A value in [0, 1] (clamped; NaN -> 0) as a byte, `round(255 v)`.
pub fn unit_to_u8(v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

/// Take `C`-channel pixels to RGB: gray (C = 1, 2) is replicated, channels past the colour ones dropped.
fn expand<T: Copy, const C: usize>(src: &[T], conv: impl Fn(T) -> u8, gray: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() / C * 3);
    for px in src.chunks_exact(C) {
        if gray {
            let g = conv(px[0]);
            out.extend_from_slice(&[g, g, g]);
        } else {
            out.extend_from_slice(&[conv(px[0]), conv(px[1]), conv(px[2])]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};

    fn tmp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("wgpu-forge-imageio-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn encode(img: &DynamicImage, fmt: ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, fmt).unwrap();
        out.into_inner()
    }

    /// The image crate's JPEG decoder (zune-jpeg) is not bit-exact with libjpeg-turbo: on the
    /// fixtures about a quarter of the bytes of 4:2:0 files differ, by at most 4 levels (2 for
    /// 4:4:4). This bound only guards against that getting worse.
    const JPEG_TOLERANCE: u8 = 4;

    fn opts() -> LoadOptions {
        LoadOptions::default()
    }

    #[test]
    fn imageio_rgb_png_roundtrip() {
        let data: Vec<u8> = (0..5 * 3 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let buf = ImageBuffer::<Rgb<u8>, _>::from_raw(5, 3, data.clone()).unwrap();
        for fmt in [ImageFormat::Png, ImageFormat::Bmp, ImageFormat::Tiff] {
            let got = decode_rgb8(&encode(&DynamicImage::ImageRgb8(buf.clone()), fmt), &opts()).unwrap();
            assert_eq!((got.width, got.height), (5, 3), "{fmt:?}");
            assert_eq!(got.data, data, "{fmt:?}");
        }
    }

    #[test]
    fn imageio_gray_and_alpha() {
        let gray = ImageBuffer::<Luma<u8>, _>::from_raw(2, 1, vec![10, 200]).unwrap();
        let got = decode_rgb8(&encode(&DynamicImage::ImageLuma8(gray), ImageFormat::Png), &opts()).unwrap();
        assert_eq!(got.data, vec![10, 10, 10, 200, 200, 200]);

        let ga = ImageBuffer::<LumaA<u8>, _>::from_raw(1, 1, vec![77, 0]).unwrap();
        let got = decode_rgb8(&encode(&DynamicImage::ImageLumaA8(ga), ImageFormat::Png), &opts()).unwrap();
        assert_eq!(got.data, vec![77, 77, 77]);

        // Alpha is dropped, not composited: a fully transparent pixel keeps its colour.
        let rgba = ImageBuffer::<Rgba<u8>, _>::from_raw(2, 1, vec![1, 2, 3, 0, 250, 251, 252, 128]).unwrap();
        let got = decode_rgb8(&encode(&DynamicImage::ImageRgba8(rgba), ImageFormat::Png), &opts()).unwrap();
        assert_eq!(got.data, vec![1, 2, 3, 250, 251, 252]);
    }

    #[test]
    fn imageio_16bit_keeps_high_byte() {
        let rgb =
            ImageBuffer::<Rgb<u16>, _>::from_raw(2, 1, vec![0x12ff, 0xff00, 0x0080, 0xffff, 0x0000, 0x7f80]).unwrap();
        let got = decode_rgb8(&encode(&DynamicImage::ImageRgb16(rgb), ImageFormat::Png), &opts()).unwrap();
        assert_eq!(got.data, vec![0x12, 0xff, 0x00, 0xff, 0x00, 0x7f]);
        let g = ImageBuffer::<Luma<u16>, _>::from_raw(1, 1, vec![0xabcd]).unwrap();
        let got = decode_rgb8(&encode(&DynamicImage::ImageLuma16(g), ImageFormat::Png), &opts()).unwrap();
        assert_eq!(got.data, vec![0xab; 3]);
    }

    #[test]
    fn imageio_jpeg_decodes_close() {
        let data: Vec<u8> = (0..16 * 16 * 3).map(|i| if (i / 3) % 16 < 8 { 40 } else { 200 }).collect();
        let buf = ImageBuffer::<Rgb<u8>, _>::from_raw(16, 16, data.clone()).unwrap();
        let got = decode_rgb8(&encode(&DynamicImage::ImageRgb8(buf), ImageFormat::Jpeg), &opts()).unwrap();
        assert_eq!((got.width, got.height), (16, 16));
        let worst = got.data.iter().zip(&data).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        assert!(worst < 40, "JPEG roundtrip off by {worst}");
    }

    /// Our JPEG decoder against libjpeg-turbo (what PIL and OpenCV use), on OpenCV-written files.
    #[test]
    fn imageio_jpeg_vs_libjpeg_turbo_fixtures() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/decode");
        let manifest = std::fs::read_to_string(dir.join("manifest.txt")).unwrap();
        let mut report = Vec::new();
        let mut worst_all = 0u8;
        for line in manifest.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (w, h): (usize, usize) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            let got = load_rgb8(dir.join(format!("{}.jpg", f[0])), DEFAULT_MAX_PIXELS).unwrap();
            let want = std::fs::read(dir.join(format!("{}.rgb", f[0]))).unwrap();
            assert_eq!((got.width, got.height, want.len()), (w, h, w * h * 3), "{}", f[0]);
            let diff = got.data.iter().zip(&want).filter(|(a, b)| a != b).count();
            let worst = got.data.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
            worst_all = worst_all.max(worst);
            report.push(format!("{}: {diff} of {} bytes differ, max {worst}", f[0], want.len()));
        }
        println!("JPEG vs libjpeg-turbo:\n{}", report.join("\n"));
        assert!(worst_all <= JPEG_TOLERANCE, "JPEG decode drifts from libjpeg-turbo:\n{}", report.join("\n"));
    }

    /// A JPEG with an EXIF APP1 segment carrying orientation 6 (rotate 90 degrees clockwise).
    fn jpeg_with_orientation(w: u32, h: u32, data: Vec<u8>, orientation: u8) -> Vec<u8> {
        let buf = ImageBuffer::<Rgb<u8>, _>::from_raw(w, h, data).unwrap();
        let jpg = encode(&DynamicImage::ImageRgb8(buf), ImageFormat::Jpeg);
        // TIFF header (little endian), one IFD entry: tag 0x0112 SHORT count 1 value, no next IFD.
        let mut tiff = vec![b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0];
        tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, orientation, 0, 0, 0]);
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let len = (app1.len() + 2) as u16;
        let mut out = jpg[..2].to_vec(); // SOI
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpg[2..]);
        out
    }

    #[test]
    fn imageio_exif_orientation_only_when_asked() {
        // 16 wide x 8 high, left half dark, right half bright.
        let data: Vec<u8> = (0..16 * 8 * 3).map(|i| if (i / 3) % 16 < 8 { 20 } else { 230 }).collect();
        let jpg = jpeg_with_orientation(16, 8, data, 6);
        let plain = decode_rgb8(&jpg, &opts()).unwrap();
        assert_eq!((plain.width, plain.height), (16, 8));
        let turned = decode_rgb8(&jpg, &LoadOptions { apply_exif_orientation: true, ..opts() }).unwrap();
        assert_eq!((turned.width, turned.height), (8, 16));
        // Rotated 90 degrees clockwise: the former left half (dark) is now the top.
        let px = |img: &RgbImage, x: usize, y: usize| img.data[(y * img.width + x) * 3];
        assert!(px(&turned, 4, 2) < 100 && px(&turned, 4, 13) > 150);
    }

    #[test]
    fn imageio_errors_name_the_file() {
        let dir = tmp_dir("errors");
        let missing = dir.join("nope.png");
        let e = load_rgb8(&missing, DEFAULT_MAX_PIXELS).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Io);
        assert!(e.message.contains("nope.png"), "{e}");

        let junk = dir.join("junk.png");
        std::fs::write(&junk, b"this is not an image at all").unwrap();
        let e = load_rgb8(&junk, DEFAULT_MAX_PIXELS).unwrap_err();
        assert!(e.message.contains("junk.png") && e.message.contains("unsupported"), "{e}");

        let buf = ImageBuffer::<Rgb<u8>, _>::from_raw(8, 8, vec![9u8; 8 * 8 * 3]).unwrap();
        let png = encode(&DynamicImage::ImageRgb8(buf), ImageFormat::Png);
        let cut = dir.join("cut.png");
        std::fs::write(&cut, &png[..png.len() / 2]).unwrap();
        let e = load_rgb8(&cut, DEFAULT_MAX_PIXELS).unwrap_err();
        assert!(e.message.contains("cut.png"), "{e}");

        let ok = dir.join("ok.png");
        std::fs::write(&ok, &png).unwrap();
        assert_eq!(load_rgb8(&ok, 64).unwrap().data.len(), 8 * 8 * 3);
        let e = load_rgb8(&ok, 63).unwrap_err();
        assert!(e.message.contains("ok.png") && e.message.contains("exceeds"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn imageio_cmyk_empty_and_misnamed_files() {
        // A CMYK JPEG (PIL, Adobe inverted CMYK) of pure red decodes to red.
        let cmyk =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/decode/cmyk_red_16x8.jpg")).unwrap();
        let img = decode_rgb8(&cmyk, &opts()).unwrap();
        assert_eq!((img.width, img.height), (16, 8));
        let p = &img.data[(3 * 16 + 3) * 3..][..3];
        assert!(p[0] > 220 && p[1] < 40 && p[2] < 40, "CMYK red decoded as {p:?}");
        // An empty file, and a zero-size header.
        let e = decode_rgb8(b"", &opts()).unwrap_err();
        assert!(e.message.contains("unsupported") || e.message.contains("format"), "{e}");
        // The format comes from the content, not the name: a PNG called .jpg decodes.
        let dir = tmp_dir("misnamed");
        let buf = ImageBuffer::<Rgb<u8>, _>::from_raw(3, 2, vec![7u8; 18]).unwrap();
        let png = encode(&DynamicImage::ImageRgb8(buf), ImageFormat::Png);
        let f = dir.join("really_a_png.jpg");
        std::fs::write(&f, &png).unwrap();
        assert_eq!(load_rgb8(&f, DEFAULT_MAX_PIXELS).unwrap().data, vec![7u8; 18]);
        // A truncated JPEG is an error, not a panic.
        let jpg =
            encode(&DynamicImage::ImageRgb8(ImageBuffer::from_pixel(32, 32, Rgb([200u8, 10, 10]))), ImageFormat::Jpeg);
        for cut in [2, 20, jpg.len() / 2, jpg.len() - 2] {
            let _ = decode_rgb8(&jpg[..cut], &opts()); // Ok (a partial image) or a clear error, never a panic
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn imageio_bomb_header_refused_before_decoding() {
        // A PNG header claiming 100000 x 100000 pixels with no data behind it.
        let buf = ImageBuffer::<Luma<u8>, _>::from_raw(1, 1, vec![0u8]).unwrap();
        let mut png = encode(&DynamicImage::ImageLuma8(buf), ImageFormat::Png);
        // IHDR data starts at byte 16: width, height (big endian); fix the chunk CRC after.
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let e = decode_rgb8(&png, &opts()).unwrap_err();
        assert!(e.message.contains("exceeds"), "{e}");
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
}
