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
//! the bytes of 4:2:0 files differ, by up to 4 levels. PNG, BMP and TIFF are lossless and exact;
//! WebP is decoded by the image crate's image-webp.
//!
//! Bad files give errors, never a silent wrong picture:
//! - only regular files are read, up to a size no image within `max_pixels` needs
//!   ([`crate::fileio::read_regular`]);
//! - images over `max_pixels` are refused from their header, before anything is decoded; the
//!   default ([`default_max_pixels`]) is what this machine's memory allows, at most
//!   [`MAX_PIXELS_CAP`];
//! - a truncated JPEG (zune-jpeg fills the missing rows with grey and says nothing) is found by
//!   walking its markers to the end-of-image marker and refused, unless
//!   [`LoadOptions::allow_truncated`], which decodes it with a note giving the rows that decoded;
//!   truncated PNG, TIFF, BMP and WebP files fail in their decoders;
//! - a multi-page TIFF is analysed on its first page, with a note saying how many there are.

use std::path::Path;
use std::sync::OnceLock;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::error::{Error, Result};

/// Extensions of the image files taken from folders (`infer`, `eval`).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp"];

/// The largest image analysed by default on any machine: 100 megapixels (a medium-format camera).
pub const MAX_PIXELS_CAP: u64 = 100_000_000;

/// Memory one pixel costs on `infer`'s trip at most: the decoded layout, the RGB copy, the model's
/// f32 planes and intermediates (on a software GPU they live in host memory), the map, the mask,
/// the overlay and their PNG encodings. Measured in docs/RELIABILITY.md.
pub const TRIP_BYTES_PER_PIXEL: u64 = 64;

/// The default decompression-bomb guard: images whose trip needs at most half of the memory
/// available now (MemAvailable, and a cgroup's limit where one is set), capped at
/// [`MAX_PIXELS_CAP`]; [`MAX_PIXELS_CAP`] where the system does not say. Computed once.
pub fn default_max_pixels() -> u64 {
    static DEFAULT: OnceLock<u64> = OnceLock::new();
    *DEFAULT.get_or_init(|| match available_memory() {
        Some(bytes) => (bytes / 2 / TRIP_BYTES_PER_PIXEL).clamp(1 << 20, MAX_PIXELS_CAP),
        None => MAX_PIXELS_CAP,
    })
}

/// Bytes of memory available to this process, where the system says.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    let mut avail = kib * 1024;
    // cgroup v2: a container's limit minus what it uses.
    let read = |f: &str| std::fs::read_to_string(format!("/sys/fs/cgroup/{f}")).ok()?.trim().parse::<u64>().ok();
    if let (Some(max), Some(used)) = (read("memory.max"), read("memory.current")) {
        avail = avail.min(max.saturating_sub(used));
    }
    Some(avail)
}

/// Largest file read for an image of at most `max_pixels` pixels: an uncompressed RGBA float
/// TIFF of that size (16 bytes a pixel) plus 64 MiB of headers and metadata.
fn max_file_bytes(max_pixels: u64) -> u64 {
    max_pixels.saturating_mul(16).saturating_add(64 << 20)
}

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
    /// Decode a truncated JPEG (its missing rows grey) with a note, instead of refusing it.
    pub allow_truncated: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { max_pixels: default_max_pixels(), apply_exif_orientation: false, allow_truncated: false }
    }
}

/// A decoded image and what the user should know about how it was read (a truncated file
/// analysed on request, the first page of several).
#[derive(Clone, Debug)]
pub struct Decoded {
    pub image: RgbImage,
    pub notes: Vec<String>,
}

/// Decode the file at `path` to RGB uint8; images over `max_pixels` pixels are refused.
pub fn load_rgb8(path: impl AsRef<Path>, max_pixels: u64) -> Result<RgbImage> {
    load_rgb8_with(path, &LoadOptions { max_pixels, ..LoadOptions::default() })
}

pub fn load_rgb8_with(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<RgbImage> {
    load_image(path, opts).map(|d| d.image)
}

/// Read and decode the image file at `path`; errors name the file.
pub fn load_image(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Decoded> {
    let path = path.as_ref();
    let bytes = crate::fileio::read_regular(
        path,
        max_file_bytes(opts.max_pixels),
        "image",
        "larger files need a larger --max-pixels",
    )?;
    decode_image(&bytes, opts).map_err(|e| e.context(format!("image {}", path.display())))
}

/// Decode an encoded image held in memory (format guessed from its first bytes).
pub fn decode_rgb8(bytes: &[u8], opts: &LoadOptions) -> Result<RgbImage> {
    decode_image(bytes, opts).map(|d| d.image)
}

/// [`decode_rgb8`] with the notes of [`Decoded`].
pub fn decode_image(bytes: &[u8], opts: &LoadOptions) -> Result<Decoded> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::invalid(format!("cannot guess the format: {e}")))?;
    let Some(format) = reader.format() else {
        return Err(Error::invalid(
            "unsupported or unrecognised image format (PNG, JPEG, TIFF, BMP and WebP are supported)",
        ));
    };
    let mut notes = Vec::new();
    let truncated = format == ImageFormat::Jpeg && !jpeg_is_complete(bytes);
    if truncated && !opts.allow_truncated {
        return Err(Error::invalid(
            "truncated JPEG: the file ends inside the image data, before its end-of-image marker \
             (--allow-truncated analyses the part that decoded)",
        ));
    }
    if format == ImageFormat::Tiff {
        if let Some(pages) = tiff_pages(bytes).filter(|&n| n > 1) {
            notes.push(format!("multi-page TIFF: only the first of its {pages} pages was analysed"));
        }
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
            "{w}x{h} = {pixels} pixels exceeds the limit of {} pixels (--max-pixels raises it; the \
             default, {}, is what this machine's memory allows, at most {MAX_PIXELS_CAP})",
            opts.max_pixels,
            default_max_pixels()
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
    let image = to_rgb8(&img);
    if truncated {
        // The decoder fills what is missing with mid grey; the rows after the last one that
        // holds anything else are (about) what the file lacked.
        let row = image.width * 3;
        let rows = image.data.chunks(row).rposition(|r| r.iter().any(|&v| v != 128)).map_or(0, |y| y + 1);
        notes.push(format!(
            "truncated JPEG analysed on request: about {rows} of {} rows ({:.0}%) decoded, the rest is grey \
             fill (a progressive JPEG may also lack detail everywhere)",
            image.height,
            100.0 * rows as f64 / image.height as f64
        ));
    }
    Ok(Decoded { image, notes })
}

/// Whether a JPEG stream reaches its end-of-image marker: its segments are walked by their
/// lengths (so an EXIF thumbnail's own markers are skipped) and each scan's entropy-coded data up
/// to the next marker.
pub fn jpeg_is_complete(b: &[u8]) -> bool {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut p = 2;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while p < b.len() && b[p] == 0xFF {
            p += 1;
        }
        let Some(&m) = b.get(p) else { return false };
        if p < 3 || b[p - 1] != 0xFF {
            return false; // garbage where a marker should be
        }
        p += 1;
        match m {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = b.get(p..p + 2).map(|l| u16::from_be_bytes([l[0], l[1]]) as usize) else { return false };
        if len < 2 || p + len > b.len() {
            return false;
        }
        p += len;
        if m == 0xDA {
            // Entropy-coded data: runs until 0xFF followed by something other than a stuffed zero
            // or a restart marker.
            loop {
                let Some(off) = b[p..].iter().position(|&x| x == 0xFF) else { return false };
                p += off;
                match b.get(p + 1) {
                    None => return false,
                    Some(0x00) | Some(0xD0..=0xD7) => p += 2,
                    Some(0xFF) => p += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

/// Pages (IFDs) of a TIFF, counted up to 10000; `None` if the decoder cannot read its header.
fn tiff_pages(bytes: &[u8]) -> Option<usize> {
    let mut d = tiff::decoder::Decoder::new(std::io::Cursor::new(bytes)).ok()?;
    let mut pages = 1;
    while d.more_images() && pages < 10_000 {
        if d.next_image().is_err() {
            break;
        }
        pages += 1;
    }
    Some(pages)
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

/// Test inputs that other test suites build too (tests/fuzz_replay.rs writes fuzz seeds with it).
pub mod testkit {
    /// `jpg` with an EXIF APP1 segment after its SOI carrying `orientation` (1..8): a little-endian
    /// TIFF header and one IFD entry, tag 0x0112 SHORT count 1, no next IFD.
    pub fn with_exif_orientation(jpg: &[u8], orientation: u8) -> Vec<u8> {
        let mut tiff = vec![b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0];
        tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, orientation, 0, 0, 0]);
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        with_exif_app1(jpg, &tiff)
    }

    /// `jpg` with an APP1 segment `Exif\0\0` + `body` right after its SOI marker.
    pub fn with_exif_app1(jpg: &[u8], body: &[u8]) -> Vec<u8> {
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(body);
        let len = (app1.len() + 2) as u16;
        let mut out = jpg[..2].to_vec(); // SOI
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpg[2..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use image::{ImageBuffer, Luma, LumaA, Rgb, Rgba};

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
            let got = load_rgb8(dir.join(format!("{}.jpg", f[0])), default_max_pixels()).unwrap();
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

    /// A JPEG of `data` with an EXIF APP1 segment carrying `orientation`.
    fn jpeg_with_orientation(w: u32, h: u32, data: Vec<u8>, orientation: u8) -> Vec<u8> {
        let buf = ImageBuffer::<Rgb<u8>, _>::from_raw(w, h, data).unwrap();
        super::testkit::with_exif_orientation(&encode(&DynamicImage::ImageRgb8(buf), ImageFormat::Jpeg), orientation)
    }

    /// Every EXIF orientation, 1 to 8, gives the picture a viewer shows: quadrants of four grey
    /// levels land where the orientation's transform puts them.
    #[test]
    fn imageio_exif_orientations_1_to_8() {
        let (w, h) = (32usize, 16usize);
        let level = |x: usize, y: usize| [20u8, 100, 160, 230][(x >= w / 2) as usize + 2 * (y >= h / 2) as usize];
        let data: Vec<u8> = (0..w * h).flat_map(|i| [level(i % w, i / w); 3]).collect();
        for o in 1..=8u8 {
            let jpg = jpeg_with_orientation(w as u32, h as u32, data.clone(), o);
            let got = decode_rgb8(&jpg, &LoadOptions { apply_exif_orientation: true, ..opts() }).unwrap();
            // Where the stored pixel (x, y) is shown, and the shown size.
            let (dw, dh) = if o >= 5 { (h, w) } else { (w, h) };
            let shown = |x: usize, y: usize| match o {
                1 => (x, y),
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (h - 1 - y, x),
                7 => (h - 1 - y, w - 1 - x),
                _ => (y, w - 1 - x),
            };
            assert_eq!((got.width, got.height), (dw, dh), "orientation {o}");
            for (qx, qy) in [(w / 4, h / 4), (3 * w / 4, h / 4), (w / 4, 3 * h / 4), (3 * w / 4, 3 * h / 4)] {
                let (sx, sy) = shown(qx, qy);
                let v = got.data[(sy * dw + sx) * 3];
                assert!(
                    v.abs_diff(level(qx, qy)) <= 12,
                    "orientation {o}: stored ({qx},{qy}) shown at ({sx},{sy}) is {v}"
                );
            }
            // Not asked for: the stored pixels.
            let plain = decode_rgb8(&jpg, &opts()).unwrap();
            assert_eq!((plain.width, plain.height), (w, h), "orientation {o}");
        }
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
        let e = load_rgb8(&missing, default_max_pixels()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Io);
        assert!(e.message.contains("nope.png"), "{e}");

        let junk = dir.join("junk.png");
        std::fs::write(&junk, b"this is not an image at all").unwrap();
        let e = load_rgb8(&junk, default_max_pixels()).unwrap_err();
        assert!(e.message.contains("junk.png") && e.message.contains("unsupported"), "{e}");

        let buf = ImageBuffer::<Rgb<u8>, _>::from_raw(8, 8, vec![9u8; 8 * 8 * 3]).unwrap();
        let png = encode(&DynamicImage::ImageRgb8(buf), ImageFormat::Png);
        let cut = dir.join("cut.png");
        std::fs::write(&cut, &png[..png.len() / 2]).unwrap();
        let e = load_rgb8(&cut, default_max_pixels()).unwrap_err();
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
        assert_eq!(load_rgb8(&f, default_max_pixels()).unwrap().data, vec![7u8; 18]);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A picture with detail in every row, so a truncation shows as grey rows.
    fn busy(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
            Rgb([(x * 5 + y * 3) as u8, (x * y % 251) as u8, if (x / 4 + y / 4) % 2 == 0 { 30 } else { 220 }])
        }))
    }

    /// A JPEG cut anywhere is an error naming the truncation (the decoder alone would fill the
    /// rest with grey and say nothing); asked for, it decodes with a note of the rows decoded.
    #[test]
    fn imageio_truncated_jpeg_is_an_error_unless_allowed() {
        let jpg = encode(&busy(64, 48), ImageFormat::Jpeg);
        assert!(jpeg_is_complete(&jpg));
        assert!(decode_image(&jpg, &opts()).unwrap().notes.is_empty());
        assert!(decode_rgb8(&jpg[..2], &opts()).is_err(), "the marker alone");
        for cut in [20, jpg.len() / 3, jpg.len() / 2, jpg.len() - 2, jpg.len() - 1] {
            assert!(!jpeg_is_complete(&jpg[..cut]), "cut at {cut}");
            let e = decode_rgb8(&jpg[..cut], &opts()).unwrap_err().message;
            assert!(e.contains("truncated JPEG") && e.contains("--allow-truncated"), "cut at {cut}: {e}");
        }
        let allow = LoadOptions { allow_truncated: true, ..opts() };
        let d = decode_image(&jpg[..jpg.len() / 2], &allow).unwrap();
        assert_eq!((d.image.width, d.image.height), (64, 48));
        let note = d.notes.join(" ");
        assert!(note.contains("truncated JPEG") && note.contains("of 48 rows"), "{note}");
        let rows: usize = note.split("about ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!((8..48).contains(&rows), "{note}");
        // Bytes after the end-of-image marker are allowed (cameras append data there).
        let mut tail = jpg.clone();
        tail.extend_from_slice(b"trailing data");
        assert!(jpeg_is_complete(&tail));
        assert!(decode_image(&tail, &opts()).is_ok());
        // An EXIF thumbnail (a whole JPEG with its own end marker inside APP1) does not make a cut
        // main image look complete.
        let thumb = encode(&busy(8, 8), ImageFormat::Jpeg);
        let with_thumb = super::testkit::with_exif_app1(&jpg, &thumb);
        assert!(jpeg_is_complete(&with_thumb));
        assert!(!jpeg_is_complete(&with_thumb[..with_thumb.len() - 300]));
    }

    /// PNG, TIFF, BMP and WebP cut inside their pixel data fail in their decoders (checked here so
    /// that a decoder update that starts filling in silently is caught). A PNG missing only its
    /// 12-byte IEND trailer still decodes: every pixel is there.
    #[test]
    fn imageio_other_formats_cut_short_are_errors() {
        for fmt in [ImageFormat::Png, ImageFormat::Tiff, ImageFormat::Bmp, ImageFormat::WebP] {
            let full = encode(&busy(40, 30), fmt);
            assert_eq!(decode_rgb8(&full, &opts()).unwrap().data.len(), 40 * 30 * 3, "{fmt:?}");
            for cut in [full.len() / 3, full.len() / 2, full.len() * 9 / 10] {
                assert!(decode_rgb8(&full[..cut], &opts()).is_err(), "{fmt:?} cut at {cut} of {}", full.len());
            }
        }
    }

    /// A multi-page TIFF is analysed on its first page, and the notes say so.
    #[test]
    fn imageio_multi_page_tiff_is_noted() {
        use tiff::encoder::{colortype, TiffEncoder};
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut enc = TiffEncoder::new(&mut buf).unwrap();
        enc.write_image::<colortype::RGB8>(4, 2, &[10u8; 24]).unwrap();
        enc.write_image::<colortype::RGB8>(3, 3, &[200u8; 27]).unwrap();
        enc.write_image::<colortype::RGB8>(2, 2, &[90u8; 12]).unwrap();
        let d = decode_image(buf.get_ref(), &opts()).unwrap();
        assert_eq!((d.image.width, d.image.height, d.image.data[0]), (4, 2, 10), "the first page");
        assert_eq!(d.notes, ["multi-page TIFF: only the first of its 3 pages was analysed"]);
        let one = encode(&busy(5, 5), ImageFormat::Tiff);
        assert!(decode_image(&one, &opts()).unwrap().notes.is_empty());
    }

    /// WebP (listed among the folder extensions) decodes.
    #[test]
    fn imageio_webp_decodes() {
        let img = busy(21, 13);
        let got = decode_rgb8(&encode(&img, ImageFormat::WebP), &opts()).unwrap();
        assert_eq!(got.data, img.to_rgb8().into_raw(), "lossless WebP is exact");
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
