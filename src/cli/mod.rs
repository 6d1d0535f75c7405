//! The command-line tool: one file per command. main.rs only parses arguments.

pub mod batch;
pub mod bench;
pub mod convert;
pub mod eval;
pub mod infer;
pub mod info;
pub mod serve;

use crate::gpu::device::{DeviceOptions, Gpu};
use crate::Result;

/// Device flags shared by every command that touches the GPU.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DeviceArgs {
    /// Graphics API to use: vulkan, metal, dx12 or gl (default: all; env FORGE_BACKEND).
    #[arg(long, global = true, value_parser = ["vulkan", "metal", "dx12", "gl"])]
    pub backend: Option<String>,
    /// Use the first adapter whose name contains this text (env FORGE_ADAPTER).
    #[arg(long, global = true)]
    pub adapter: Option<String>,
}

impl DeviceArgs {
    pub fn options(&self) -> DeviceOptions {
        DeviceOptions::from_env().merged(self.backend.clone(), self.adapter.clone())
    }
    pub fn open(&self) -> Result<Gpu> {
        Gpu::new(&self.options())
    }
}
