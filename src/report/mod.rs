//! What a detection becomes on disk: masks, maps and raw arrays, each written whole or not at all.

pub mod files;

pub use files::{npy_f32, png_gray8, write_atomic};
