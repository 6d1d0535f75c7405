//! Images and their ground-truth masks, paired by file stem.
//!
//! A mask belongs to the image whose stem equals the mask's stem, or the mask's stem without one
//! of the common suffixes [`MASK_SUFFIXES`] (compared without regard to case): CASIA's
//! `Tp_..._gt.png`, `x_mask.png`, `x-mask.png`, `x.mask.png` (what `infer` writes). Images and
//! masks may share one folder; then files whose stem carries a mask suffix are the masks.
//!
//! Masks are read as 8-bit grayscale (colour masks by the ITU-R 601 luma that PIL's `convert("L")`
//! uses; 16-bit masks by their high byte) and binarized at `> 127`. A mask with values other than
//! 0 and 255 (anti-aliased edges, JPEG-saved masks) is still used, with a warning that counts
//! those pixels. A mask whose size differs from its image's is an error for that pair naming
//! both sizes: silently resizing would hide a mismatched data set. At the model's resolution
//! (`eval --resolution model`) the mask is resized to the model's input size exactly as
//! `cv2.resize(mask, (W, H), interpolation=cv2.INTER_NEAREST)` ([`BinaryMask::resized_nearest`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::imageio::{load_rgb8_with, LoadOptions, IMAGE_EXTENSIONS};

/// Stem suffixes that mark a mask file (lower case; matched case-insensitively).
pub const MASK_SUFFIXES: [&str; 6] = ["_gt", "-gt", "_mask", "-mask", ".mask", "_groundtruth"];

/// File extensions read as images or masks.

/// One image to evaluate; `mask` is None for an authentic image without a mask file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub image: PathBuf,
    pub mask: Option<PathBuf>,
}

/// The outcome of pairing two folders.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pairing {
    pub pairs: Vec<Pair>,
    /// Images without a mask (evaluated as authentic only with `authentic_without_mask`).
    pub unpaired_images: Vec<PathBuf>,
    /// Masks that no image claims.
    pub unpaired_masks: Vec<PathBuf>,
    /// Masks that were not used because another mask of the same stem was (the path used first).
    pub duplicate_masks: Vec<(PathBuf, PathBuf)>,
}

/// Pair the images in `images` with the masks in `masks` (files directly in each folder, sorted
/// by name). With `authentic_without_mask`, images without a mask become pairs with `mask: None`.
pub fn pair_folders(images: &Path, masks: &Path, authentic_without_mask: bool) -> Result<Pairing> {
    let same_folder = same_dir(images, masks);
    let image_files: Vec<PathBuf> =
        list_images(images)?.into_iter().filter(|p| !(same_folder && mask_key(p).is_some())).collect();
    let mask_files: Vec<PathBuf> =
        list_images(masks)?.into_iter().filter(|p| !same_folder || mask_key(p).is_some()).collect();
    Ok(pair_files(image_files, mask_files, authentic_without_mask))
}

/// [`pair_folders`] on lists of files.
pub fn pair_files(images: Vec<PathBuf>, masks: Vec<PathBuf>, authentic_without_mask: bool) -> Pairing {
    let mut out = Pairing::default();
    // Key -> mask; a mask named exactly like an image stem wins over a suffixed one.
    let mut by_key: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut ordered = masks;
    ordered.sort_by_key(|m| (mask_key(m).is_some(), m.clone()));
    for m in ordered {
        let key = mask_key(&m).unwrap_or_else(|| stem(&m));
        match by_key.get(&key) {
            Some(used) => out.duplicate_masks.push((m, used.clone())),
            None => {
                by_key.insert(key, m);
            }
        }
    }
    let mut claimed: Vec<PathBuf> = Vec::new();
    for image in images {
        match by_key.get(&stem(&image)) {
            Some(m) => {
                claimed.push(m.clone());
                out.pairs.push(Pair { image, mask: Some(m.clone()) });
            }
            None if authentic_without_mask => out.pairs.push(Pair { image, mask: None }),
            None => out.unpaired_images.push(image),
        }
    }
    out.unpaired_masks = by_key.into_values().filter(|m| !claimed.contains(m)).collect();
    out
}

/// The image stem a mask file names, when its stem ends with a mask suffix.
pub fn mask_key(path: &Path) -> Option<String> {
    let s = stem(path);
    let lower = s.to_ascii_lowercase();
    MASK_SUFFIXES
        .iter()
        .find(|suffix| lower.len() > suffix.len() && lower.ends_with(*suffix))
        .map(|suffix| s[..s.len() - suffix.len()].to_string())
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Files with an image extension directly in `dir`, sorted.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot list the folder {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            p.extension().is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// A binarized ground truth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryMask {
    pub width: usize,
    pub height: usize,
    /// Tampered pixels, row-major.
    pub tampered: Vec<bool>,
    /// Pixels whose gray value was neither 0 nor 255.
    pub non_binary: usize,
}

impl BinaryMask {
    /// Binarize 8-bit gray values at `> 127`, counting the values other than 0 and 255.
    pub fn from_gray(width: usize, height: usize, gray: &[u8]) -> BinaryMask {
        BinaryMask {
            width,
            height,
            tampered: gray.iter().map(|&v| v > 127).collect(),
            non_binary: gray.iter().filter(|&&v| v != 0 && v != 255).count(),
        }
    }

    /// An authentic image's ground truth: nothing tampered.
    pub fn empty(width: usize, height: usize) -> BinaryMask {
        BinaryMask { width, height, tampered: vec![false; width * height], non_binary: 0 }
    }

    pub fn is_empty(&self) -> bool {
        !self.tampered.iter().any(|&t| t)
    }

    /// Resized to `width x height` as `cv2.resize(mask, (width, height), interpolation=INTER_NEAREST)`,
    /// what the benchmark's mask resize does: each output pixel takes the source pixel that
    /// [`opencv_nearest_index`] gives on each axis.
    pub fn resized_nearest(&self, width: usize, height: usize) -> BinaryMask {
        let xs = opencv_nearest_index(self.width, width);
        let ys = opencv_nearest_index(self.height, height);
        let mut tampered = Vec::with_capacity(width * height);
        for &sy in &ys {
            for &sx in &xs {
                tampered.push(self.tampered.get(sy * self.width + sx).copied().unwrap_or(false));
            }
        }
        BinaryMask { width, height, tampered, non_binary: self.non_binary }
    }
}

/// OpenCV's INTER_NEAREST source index for each of `dst` output indices along an axis of `src`
/// pixels (`resizeNN` in `imgproc/src/resize.cpp`): `min(floor(i * (1 / (dst / src))), src - 1)`
/// in f64. The scale is a rounded reciprocal, so where `i * src / dst` is a whole number the
/// product can land just below it and the floor one lower: for 6 -> 34 output 17 reads source 2,
/// where the exact `floor(17 * 6 / 34)` = 3. The fixtures (`tests/fixtures/eval/nearest`, from
/// cv2.resize) hold 101 such (src, dst) pairs among 124, e.g. 186, 372, 744 or 1488 -> 512.
pub fn opencv_nearest_index(src: usize, dst: usize) -> Vec<usize> {
    let inv_scale = 1.0 / (dst as f64 / src as f64);
    (0..dst).map(|i| ((i as f64 * inv_scale).floor() as usize).min(src.saturating_sub(1))).collect()
}

/// Read a mask file as grayscale and binarize it (see the module documentation).
pub fn load_mask(path: &Path, opts: &LoadOptions) -> Result<BinaryMask> {
    let rgb = load_rgb8_with(path, opts).map_err(|e| e.context("ground-truth mask"))?;
    // PIL's L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16; gray replicated to RGB comes back exact.
    let gray: Vec<u8> = rgb
        .data
        .chunks_exact(3)
        .map(|p| ((19595 * p[0] as u32 + 38470 * p[1] as u32 + 7471 * p[2] as u32 + 0x8000) >> 16) as u8)
        .collect();
    Ok(BinaryMask::from_gray(rgb.width, rgb.height, &gray))
}

/// The error for a mask whose size is not its image's.
pub fn check_same_size(image: (usize, usize), mask: &BinaryMask, mask_path: &Path) -> Result<()> {
    if (mask.width, mask.height) != image {
        return Err(Error::invalid(format!(
            "the mask {} is {}x{} but its image is {}x{} (masks are not resized; fix the data set)",
            mask_path.display(),
            mask.width,
            mask.height,
            image.0,
            image.1
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn mask_suffixes_are_recognized() {
        assert_eq!(
            mask_key(Path::new("m/Tp_D_CND_M_N_ani00018_sec00096_00138_gt.png")).as_deref(),
            Some("Tp_D_CND_M_N_ani00018_sec00096_00138")
        );
        for name in ["a_gt.png", "a_GT.png", "a_mask.png", "a-mask.png", "a.mask.png", "a-gt.tif"] {
            assert_eq!(mask_key(Path::new(name)).as_deref(), Some("a"), "{name}");
        }
        assert_eq!(mask_key(Path::new("plain.png")), None);
        assert_eq!(mask_key(Path::new("_gt.png")), None, "a bare suffix is not a mask of nothing");
    }

    #[test]
    fn pairs_by_stem_and_lists_the_rest() {
        let images = paths(&["i/a.jpg", "i/b.png", "i/c.tif", "i/lonely.png"]);
        let masks = paths(&["m/a_gt.png", "m/b.png", "m/b_mask.png", "m/c-mask.png", "m/orphan_gt.png"]);
        let p = pair_files(images.clone(), masks.clone(), false);
        let got: Vec<(&str, &str)> =
            p.pairs.iter().map(|p| (p.image.to_str().unwrap(), p.mask.as_ref().unwrap().to_str().unwrap())).collect();
        assert_eq!(got, vec![("i/a.jpg", "m/a_gt.png"), ("i/b.png", "m/b.png"), ("i/c.tif", "m/c-mask.png")]);
        assert_eq!(p.unpaired_images, paths(&["i/lonely.png"]));
        assert_eq!(p.unpaired_masks, paths(&["m/orphan_gt.png"]));
        assert_eq!(p.duplicate_masks, vec![(PathBuf::from("m/b_mask.png"), PathBuf::from("m/b.png"))]);
        // Authentic without a mask.
        let p = pair_files(images, masks, true);
        assert_eq!(p.pairs.len(), 4);
        assert_eq!(p.pairs[3], Pair { image: PathBuf::from("i/lonely.png"), mask: None });
        assert!(p.unpaired_images.is_empty());
    }

    #[test]
    fn masks_binarize_above_127_and_count_non_binary_values() {
        let m = BinaryMask::from_gray(3, 2, &[0, 127, 128, 255, 255, 0]);
        assert_eq!(m.tampered, vec![false, false, true, true, true, false]);
        assert_eq!(m.non_binary, 2);
        assert!(!m.is_empty());
        assert!(BinaryMask::empty(2, 2).is_empty());
    }

    #[test]
    fn nearest_resize_follows_opencv() {
        // 4 wide -> 2 wide takes source columns 0 and 2; 2 -> 4 repeats each column twice.
        let m = BinaryMask::from_gray(4, 1, &[255, 0, 0, 255]);
        assert_eq!(m.resized_nearest(2, 1).tampered, vec![true, false]);
        let m = BinaryMask::from_gray(2, 1, &[255, 0]);
        assert_eq!(m.resized_nearest(4, 2).tampered, vec![true, true, false, false, true, true, false, false]);
        // Where OpenCV's f64 reciprocal scale is not the exact ratio: 6 -> 34, output 17 reads 2.
        assert_eq!(opencv_nearest_index(6, 34)[17], 2);
        assert_eq!(opencv_nearest_index(0, 3), vec![0, 0, 0]);
        assert!(opencv_nearest_index(5, 0).is_empty());
    }

    /// cv2.resize(..., INTER_NEAREST) read off OpenCV itself: its source index per output index
    /// for 124 (src, dst) lengths, and whole 0/255 masks resized up and down at non-integer
    /// ratios. Tolerance 0: every index and every pixel.
    #[test]
    fn nearest_resize_matches_opencv_fixtures() {
        use crate::eval::fixtures;
        let m = fixtures::manifest();
        println!("{}", fixtures::made_with(&m));
        let index = String::from_utf8(fixtures::read(m["nearest"]["index"]["file"].as_str().unwrap())).unwrap();
        let mut failures = Vec::new();
        let mut pairs = 0;
        for line in index.lines().filter(|l| !l.trim().is_empty()) {
            let v: Vec<usize> = line.split_whitespace().map(|t| t.parse().unwrap()).collect();
            let (src, dst, want) = (v[0], v[1], &v[2..]);
            assert_eq!(want.len(), dst, "bad index line for {src} -> {dst}");
            let got = opencv_nearest_index(src, dst);
            if let Some(i) = (0..dst).find(|&i| got[i] != want[i]) {
                let n = (0..dst).filter(|&i| got[i] != want[i]).count();
                failures.push(format!(
                    "{src} -> {dst}: {n} indices differ, first output {i}: ours {}, cv2 {}",
                    got[i], want[i]
                ));
            }
            pairs += 1;
        }
        let masks = m["nearest"]["masks"].as_array().unwrap();
        for c in masks {
            let n = |key: &str, i: usize| c[key][i].as_u64().unwrap() as usize;
            let ((sw, sh), (dw, dh), seed) =
                ((n("src", 0), n("src", 1)), (n("dst", 0), n("dst", 1)), c["seed"].as_u64().unwrap());
            let gray: Vec<u8> =
                fixtures::gen_bytes(seed, sw * sh).iter().map(|&b| if b > 127 { 255 } else { 0 }).collect();
            let r = BinaryMask::from_gray(sw, sh, &gray).resized_nearest(dw, dh);
            assert_eq!((r.width, r.height), (dw, dh));
            let got: Vec<u8> = r.tampered.iter().map(|&t| if t { 255 } else { 0 }).collect();
            let want = fixtures::read(c["file"].as_str().unwrap());
            if let Some(why) = fixtures::compare(c["kind"].as_str().unwrap(), &got, &want, dw) {
                failures.push(format!(
                    "mask {} ({sw}x{sh} -> {dw}x{dh}, input gen_bytes(seed {seed}) > 127): {why}",
                    c["name"]
                ));
            }
        }
        println!("nearest fixtures: {pairs} index pairs, {} masks, {} mismatching", masks.len(), failures.len());
        assert!(pairs >= 100 && masks.len() >= 9, "{pairs} index pairs, {} masks", masks.len());
        assert!(failures.is_empty(), "not cv2's INTER_NEAREST:\n{}", failures.join("\n"));
    }

    #[test]
    fn a_mask_of_another_size_is_an_error_naming_both_sizes() {
        let m = BinaryMask::empty(5, 4);
        let e = check_same_size((6, 4), &m, Path::new("x_gt.png")).unwrap_err();
        assert!(e.message.contains("5x4") && e.message.contains("6x4") && e.message.contains("x_gt.png"), "{e}");
        assert!(check_same_size((5, 4), &m, Path::new("x_gt.png")).is_ok());
    }

    #[test]
    fn folders_are_listed_and_shared_folders_split_by_suffix() {
        let dir = std::env::temp_dir().join(format!("forge-pairs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["x.png", "x_gt.png", "notes.txt"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let p = pair_folders(&dir, &dir, false).unwrap();
        assert_eq!(p.pairs, vec![Pair { image: dir.join("x.png"), mask: Some(dir.join("x_gt.png")) }]);
        assert!(pair_folders(&dir.join("missing"), &dir, false).unwrap_err().message.contains("missing"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
