//! The GPU layer: adapters and devices, kernels and pipelines. It knows nothing of images or models.

pub mod device;
pub mod kernel;
pub mod kernelgen;
pub mod select;

pub use device::{DeviceClass, DeviceOptions, Gpu};
pub use kernel::{Kernel, KernelCache};
