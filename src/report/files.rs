//! File encodings of the outputs (written atomically by [`crate::fileio`]).

use crate::error::{Error, Result};

/// A NumPy `.npy` (format 1.0) file of little-endian float32 with shape `shape` (C order).
pub fn npy_f32(shape: &[usize], data: &[f32]) -> Result<Vec<u8>> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(Error::invalid(format!("npy: shape {shape:?} needs {n} values, got {}", data.len())));
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 4 * n);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// An 8-bit grayscale PNG.
pub fn png_gray8(width: usize, height: usize, pixels: Vec<u8>) -> Result<Vec<u8>> {
    encode_png(image::DynamicImage::ImageLuma8(
        image::GrayImage::from_raw(width as u32, height as u32, pixels)
            .ok_or_else(|| Error::invalid(format!("png: {width}x{height} gray needs {} bytes", width * height)))?,
    ))
}

/// An 8-bit RGB PNG from interleaved pixels.
pub fn png_rgb8(width: usize, height: usize, pixels: Vec<u8>) -> Result<Vec<u8>> {
    encode_png(image::DynamicImage::ImageRgb8(
        image::RgbImage::from_raw(width as u32, height as u32, pixels)
            .ok_or_else(|| Error::invalid(format!("png: {width}x{height} RGB needs {} bytes", width * height * 3)))?,
    ))
}

fn encode_png(img: image::DynamicImage) -> Result<Vec<u8>> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png).map_err(|e| Error::invalid(format!("png encoding failed: {e}")))?;
    Ok(buf.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_parses() {
        for shape in [vec![3usize, 5], vec![7], vec![1, 512, 512]] {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
            let b = npy_f32(&shape, &data).unwrap();
            assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
            let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
            assert_eq!((10 + hl) % 64, 0, "data starts on a 64-byte boundary");
            let h = std::str::from_utf8(&b[10..10 + hl]).unwrap();
            assert!(h.ends_with('\n') && h.contains("'descr': '<f4'"), "{h}");
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            assert!(h.contains(&dims.join(", ")), "{h}");
            assert_eq!(b.len(), 10 + hl + 4 * n);
            assert_eq!(f32::from_le_bytes(b[10 + hl + 4..10 + hl + 8].try_into().unwrap()), 0.5);
        }
        assert!(npy_f32(&[2, 2], &[0.0; 3]).is_err());
    }

    #[test]
    fn png_round_trips() {
        let px: Vec<u8> = (0..15u8).collect();
        let b = png_gray8(5, 3, px.clone()).unwrap();
        let back = image::load_from_memory(&b).unwrap().to_luma8();
        assert_eq!(back.into_raw(), px);
        assert!(png_gray8(5, 4, px).is_err());
    }
}
