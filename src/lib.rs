//! wgpu-forge: a static-graph GPU compute engine with hand-written WGSL kernels for
//! image-forgery detection and localization.
//!
//! Layers, each looking only down: `gpu` (device, kernels) <- `ops` (one file per op family)
//! <- `graph` (IR, builder, planner, runner) <- models and the command-line tool.

pub mod bench;
pub mod cli;
pub mod cpu;
pub mod error;
pub mod eval;
pub mod fileio;
pub mod fuzzing;
pub mod gpu;
pub mod graph;
pub mod imageio;
pub mod models;
pub mod ops;
pub mod pipeline;
pub mod preprocess;
pub mod report;
pub mod serve;
pub mod tensor;
pub mod weights;

pub use error::{Error, Result};
pub use tensor::Tensor;
