//! What a detection becomes: a cleaned mask and its regions, an image score, pictures for people
//! (probability image, heat-map overlay) and the JSON report; every file written whole or not at all.

pub mod clean;
pub mod files;
pub mod json;
pub mod mask;
pub mod overlay;
pub mod panel;
pub mod score;
pub mod text;
pub mod verdict;

pub use crate::fileio::write_atomic;
pub use files::{npy_f32, png_gray8, png_rgb8};
pub use mask::{regions, Mask, Region};
pub use score::image_score;
pub use verdict::{Calibration, ScoreRule, Verdict};
