//! The command-line tool: one file per command. main.rs only parses arguments.

pub mod batch;
pub mod batching;
pub mod bench;
pub mod convert;
pub mod eval;
pub mod infer;
pub mod info;
pub mod serve;

use crate::error::{Error, ErrorKind};
use crate::gpu::device::{DeviceClass, DeviceOptions, Gpu};
use crate::graph::Engine;
use crate::Result;

/// Device flags shared by every command that runs a model.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DeviceArgs {
    /// Where to run: vulkan, metal, dx12 or gl (a GPU through that API), or cpu (the native CPU
    /// backend). Default: the best hardware GPU, else the CPU backend (env FORGE_BACKEND).
    #[arg(long, global = true, value_parser = ["vulkan", "metal", "dx12", "gl", "cpu"])]
    pub backend: Option<String>,
    /// Use the first adapter whose name contains this text (env FORGE_ADAPTER).
    #[arg(long, global = true)]
    pub adapter: Option<String>,
    /// Store model weights in f16 on a hardware GPU (half their memory and traffic; arithmetic
    /// stays f32; costs ~1e-3 in the probabilities, docs/PARITY.md). The CPU backend and software
    /// GPUs keep f32 (env FORGE_HALF_WEIGHTS=1).
    #[arg(long, global = true)]
    pub half_weights: bool,
}

/// The engine a command runs models on, with why it was chosen.
pub enum Backend {
    Gpu(Gpu),
    Cpu {
        /// Why the CPU backend, in words (for `info` and logs).
        reason: String,
        /// The GPU adapters that were found and passed over (for `info`).
        passed_over: Option<Gpu>,
    },
}

impl Backend {
    pub fn engine(&self) -> Engine<'_> {
        match self {
            Backend::Gpu(g) => Engine::Gpu(g),
            Backend::Cpu { .. } => Engine::Cpu,
        }
    }
    /// The GPU, when the engine is one.
    pub fn gpu(&self) -> Option<&Gpu> {
        match self {
            Backend::Gpu(g) => Some(g),
            Backend::Cpu { .. } => None,
        }
    }
}

/// The words `--backend` takes for the CPU backend.
fn is_cpu(name: &str) -> bool {
    name.eq_ignore_ascii_case("cpu")
}

impl DeviceArgs {
    pub fn options(&self) -> DeviceOptions {
        let mut opts = DeviceOptions::from_env().merged(self.backend.clone(), self.adapter.clone());
        opts.half_weights |= self.half_weights;
        opts
    }

    /// A GPU (commands that measure the WGSL kernels themselves); `--backend cpu` is refused.
    pub fn open(&self) -> Result<Gpu> {
        let opts = self.options();
        if opts.backend.as_deref().is_some_and(is_cpu) {
            return Err(Error::invalid(
                "this command measures the GPU kernels and needs a GPU adapter; --backend cpu (or FORGE_BACKEND=cpu) \
                 has none (use `bench --model NAME --backend cpu` to time a model on the CPU backend)",
            ));
        }
        Gpu::new(&opts)
    }

    /// The engine for running models: `--backend cpu` asks for the CPU backend; any other
    /// `--backend` or `--adapter` for that GPU (an error when there is none); neither takes the
    /// best hardware GPU, else the CPU backend (no adapter at all, or only a software one such as
    /// lavapipe, which runs the same graph several times slower than the CPU backend).
    pub fn backend(&self) -> Result<Backend> {
        let opts = self.options();
        if opts.backend.as_deref().is_some_and(is_cpu) {
            if let Some(a) = &opts.adapter {
                return Err(Error::invalid(format!(
                    "--adapter '{a}' chooses a GPU adapter, but --backend cpu (or FORGE_BACKEND=cpu) asks for the CPU"
                )));
            }
            return Ok(Backend::Cpu {
                reason: "asked for (--backend cpu or FORGE_BACKEND=cpu)".into(),
                passed_over: None,
            });
        }
        if opts.backend.is_some() || opts.adapter.is_some() {
            return Gpu::new(&opts).map(Backend::Gpu);
        }
        // A scheduler's grant: none means the CPU backend, a GPU that is not there is an error.
        let granted_none = opts.visible.as_ref().filter(|(_, v)| crate::gpu::select::grants_no_gpu(v));
        let named_gpu = opts.visible.is_some() && granted_none.is_none();
        let grant = granted_none.map(|(var, value)| format!("{var}='{value}' grants no GPU"));
        match Gpu::new(&opts) {
            Ok(g) if g.class == DeviceClass::Hardware => Ok(Backend::Gpu(g)),
            Ok(g) => Ok(Backend::Cpu {
                reason: grant.unwrap_or_else(|| {
                    format!(
                        "no hardware GPU: the only adapter is the software '{}', which runs the same graph slower \
                         than the CPU backend (--backend {} runs it anyway)",
                        g.info.name,
                        format!("{:?}", g.info.backend).to_lowercase()
                    )
                }),
                passed_over: Some(g),
            }),
            Err(e) if e.kind == ErrorKind::NoDevice && !named_gpu => Ok(Backend::Cpu {
                reason: grant.unwrap_or_else(|| "no GPU adapter was found".into()),
                passed_over: None,
            }),
            Err(e) => Err(e),
        }
    }
}
