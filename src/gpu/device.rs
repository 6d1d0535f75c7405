//! Adapter choice, device creation with the adapter's real limits, and error capture.
//!
//! Every GPU error (validation, out-of-memory, device loss) is caught here and turned into an
//! [`Error`] with context; nothing in the engine panics or hangs on a GPU fault.

use std::sync::{Arc, Mutex};

use crate::error::{Error, ErrorKind, Result};

/// Broad device classes; kernels pick variants by class (lavapipe hates workgroup barriers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceClass {
    /// A CPU implementation of the API (lavapipe, WARP, SwiftShader, llvmpipe GL).
    Software,
    /// A real GPU, discrete or integrated.
    Hardware,
}

/// How the user asked us to choose an adapter ([`crate::gpu::select::choose`]).
#[derive(Clone, Debug, Default)]
pub struct DeviceOptions {
    /// `vulkan`, `metal`, `dx12` or `gl`; `None` means every backend compiled in.
    pub backend: Option<String>,
    /// Pick the first adapter whose name contains this (case-insensitive).
    pub adapter: Option<String>,
    /// The GPU a scheduler granted: (`CUDA_VISIBLE_DEVICES` or `ROCR_VISIBLE_DEVICES`, its value);
    /// `adapter` wins over it.
    pub visible: Option<(String, String)>,
    /// Plans store weights in f16 where the kernels can read them so (`--half-weights`,
    /// `FORGE_HALF_WEIGHTS=1`): hardware GPUs only; see `graph::PlanOptions::half_weights`.
    pub half_weights: bool,
}

impl DeviceOptions {
    /// Options from `FORGE_BACKEND` / `FORGE_ADAPTER` (also `WGPU_BACKEND` / `WGPU_ADAPTER_NAME`)
    /// and the scheduler's `CUDA_VISIBLE_DEVICES` / `ROCR_VISIBLE_DEVICES`.
    pub fn from_env() -> DeviceOptions {
        let get = |a: &str, b: &str| std::env::var(a).or_else(|_| std::env::var(b)).ok().filter(|s| !s.is_empty());
        DeviceOptions {
            backend: get("FORGE_BACKEND", "WGPU_BACKEND"),
            adapter: get("FORGE_ADAPTER", "WGPU_ADAPTER_NAME"),
            visible: crate::gpu::select::visible_from_env(),
            half_weights: std::env::var("FORGE_HALF_WEIGHTS").is_ok_and(|v| v == "1"),
        }
    }
    /// Command-line values win over the environment.
    pub fn merged(self, backend: Option<String>, adapter: Option<String>) -> DeviceOptions {
        DeviceOptions { backend: backend.or(self.backend), adapter: adapter.or(self.adapter), ..self }
    }
}

pub fn parse_backends(name: Option<&str>) -> Result<wgpu::Backends> {
    Ok(match name.map(|s| s.to_ascii_lowercase()) {
        None => wgpu::Backends::all(),
        Some(s) => match s.as_str() {
            "vulkan" | "vk" => wgpu::Backends::VULKAN,
            "metal" | "mtl" => wgpu::Backends::METAL,
            "dx12" | "d3d12" => wgpu::Backends::DX12,
            "gl" | "gles" | "opengl" => wgpu::Backends::GL,
            "all" => wgpu::Backends::all(),
            other => {
                return Err(Error::invalid(format!("unknown backend '{other}': use one of vulkan, metal, dx12, gl")))
            }
        },
    })
}

/// An adapter as seen during selection, with the reason it ranks where it does.
#[derive(Clone, Debug)]
pub struct AdapterReport {
    pub info: wgpu::AdapterInfo,
    pub rank: u32,
    pub chosen: bool,
}

/// Features we use when the adapter has them.
pub const WANTED_FEATURES: wgpu::Features = wgpu::Features::SHADER_F16
    .union(wgpu::Features::SUBGROUP)
    .union(wgpu::Features::TIMESTAMP_QUERY)
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS)
    .union(wgpu::Features::PIPELINE_CACHE);

/// The device everything runs on, with what it can do.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub features: wgpu::Features,
    pub limits: wgpu::Limits,
    pub class: DeviceClass,
    /// All adapters seen during selection (for `info`).
    pub adapters: Vec<AdapterReport>,
    /// Why this adapter was chosen, in words.
    pub reason: String,
    /// Shader modules and pipelines made on this device.
    pub kernels: crate::gpu::kernel::KernelCache,
    /// Plans made on this device store weights in f16 where they can ([`DeviceOptions::half_weights`]).
    pub half_weights: bool,
    errors: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
}

pub const NO_ADAPTER_HELP: &str = "no GPU adapter was found. wgpu-forge runs on any Vulkan, Metal or DX12 device; \
without --backend (or with --backend cpu) it runs models on its CPU backend when there is none. On Linux install Mesa's Vulkan drivers \
(Debian/Ubuntu: `apt-get install mesa-vulkan-drivers libvulkan1`), which include lavapipe, or your GPU \
vendor's Vulkan driver; on macOS Metal is built in; on Windows update the GPU driver. If an adapter \
exists but was filtered out, check --backend / --adapter (or FORGE_BACKEND / FORGE_ADAPTER), and run \
`wgpu-forge info` to list what was found.";

/// Mesa's device-select Vulkan layer prints `error: XDG_RUNTIME_DIR is invalid or not set` on
/// machines without a login session (servers, containers, CI), which reads as our failure. It
/// only reorders devices, and we choose the adapter ourselves, so where that variable is missing
/// or not a folder we set `NODEVICE_SELECT=1` (which turns the layer off) before the first
/// instance, unless the user set it.
fn quiet_device_select_layer() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let runtime_dir_ok = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
        if !runtime_dir_ok && std::env::var_os("NODEVICE_SELECT").is_none() {
            std::env::set_var("NODEVICE_SELECT", "1");
        }
    });
}

impl Gpu {
    pub fn new(opts: &DeviceOptions) -> Result<Gpu> {
        pollster::block_on(Self::new_async(opts))
    }

    async fn new_async(opts: &DeviceOptions) -> Result<Gpu> {
        quiet_device_select_layer();
        let backends = parse_backends(opts.backend.as_deref())?;
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let adapters = instance.enumerate_adapters(backends).await;
        let mut reports: Vec<(AdapterReport, wgpu::Adapter)> = adapters
            .into_iter()
            .map(|a| {
                let info = a.get_info();
                (AdapterReport { rank: crate::gpu::select::rank(&info), info, chosen: false }, a)
            })
            .collect();
        if reports.is_empty() {
            return Err(Error::new(ErrorKind::NoDevice, NO_ADAPTER_HELP));
        }
        let infos: Vec<wgpu::AdapterInfo> = reports.iter().map(|(r, _)| r.info.clone()).collect();
        let (best, reason) = crate::gpu::select::choose(&infos, opts.adapter.as_deref(), opts.visible.as_ref())?;
        reports[best].0.chosen = true;
        let adapter = &reports[best].1;
        let info = adapter.get_info();
        let features = adapter.features() & WANTED_FEATURES;
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgpu-forge"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::new(ErrorKind::NoDevice, format!("adapter '{}' refused a device: {e}", info.name)))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let lost = Arc::new(Mutex::new(None));
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut l) = lost_sink.lock() {
                *l = Some(format!("{reason:?}: {msg}"));
            }
        });
        let class = if crate::gpu::select::is_software(&info) { DeviceClass::Software } else { DeviceClass::Hardware };
        let adapters = reports.into_iter().map(|(r, _)| r).collect();
        Ok(Gpu {
            device,
            queue,
            info,
            features,
            limits,
            class,
            adapters,
            reason,
            kernels: Default::default(),
            half_weights: opts.half_weights,
            errors,
            lost,
        })
    }

    /// Largest byte range one storage binding may cover.
    pub fn max_binding_bytes(&self) -> u64 {
        (self.limits.max_storage_buffer_binding_size as u64).min(self.limits.max_buffer_size)
    }

    /// Errors reported outside any scope since the last check, and device loss, as one error.
    pub fn check(&self, what: &str) -> Result<()> {
        if let Some(l) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(Error::gpu(format!("{what}: the GPU device was lost ({l})")));
        }
        let errs: Vec<String> = self.errors.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
        if !errs.is_empty() {
            return Err(Error::gpu(format!("{what}: {}", errs.join("; "))));
        }
        Ok(())
    }

    /// Run `f` inside validation and out-of-memory error scopes; GPU errors become `Err`.
    pub fn scoped<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(val.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = o {
            return Err(Error::gpu(format!("{what}: out of GPU memory: {e}")));
        }
        if let Some(e) = v {
            return Err(Error::gpu(format!("{what}: {e}")));
        }
        let out = out?;
        self.check(what)?;
        Ok(out)
    }

    /// Wait for submitted work, with a bound so a stuck driver becomes an error, not a hang.
    pub fn wait(&self, what: &str) -> Result<()> {
        let timeout = std::env::var("FORGE_GPU_TIMEOUT_S").ok().and_then(|s| s.parse().ok()).unwrap_or(600u64);
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: Some(std::time::Duration::from_secs(timeout)),
            })
            .map_err(|e| Error::gpu(format!("{what}: waiting for the GPU failed: {e}")))?;
        self.check(what)
    }

    /// Whether the device was lost (nothing can run on it again).
    pub fn is_lost(&self) -> bool {
        self.lost.lock().map_or(true, |l| l.is_some())
    }

    pub fn has(&self, f: wgpu::Features) -> bool {
        self.features.contains(f)
    }
}

/// Shared device for tests and benches: created once per process, with a clear error when absent.
pub fn shared() -> Result<&'static Gpu> {
    static GPU: std::sync::OnceLock<std::result::Result<Gpu, Error>> = std::sync::OnceLock::new();
    GPU.get_or_init(|| Gpu::new(&DeviceOptions::from_env())).as_ref().map_err(|e| e.clone())
}
