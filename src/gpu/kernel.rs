//! WGSL kernels: sources, reflection of their bindings, and a pipeline cache keyed by a small hint.
//!
//! A kernel module is `kernels/common.wgsl` followed by one or more files of `kernels/` (WGSL has no
//! include); errors name the file and line they come from.
//! Shapes never go into shader text: they travel in a uniform; only small variant hints (tile sizes,
//! activation codes known at plan time) become pipeline-overridable constants and the cache key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::device::Gpu;

/// One WGSL file under `kernels/`.
#[derive(Clone, Copy, Debug)]
pub struct KernelFile {
    /// Path from the repository root, e.g. `kernels/matmul.wgsl` (what error messages name).
    pub path: &'static str,
    pub text: &'static str,
}

/// A shader module: `kernels/common.wgsl`, then `files` in order. WGSL declarations may come in any
/// order, so a module can join a file of shared declarations with files of entry points (e.g.
/// `matmul_sg` = `matmul.wgsl` + the generated `matmul_sg.wgsl`).
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    /// The module's name: its pipeline-cache key and the first word of its pipelines' labels.
    pub name: &'static str,
    pub files: &'static [KernelFile],
}

/// `kernel!("conv2d")` embeds `kernels/conv2d.wgsl` as module "conv2d";
/// `kernel!("matmul_sg" = "matmul", "matmul_sg")` joins `kernels/matmul.wgsl` and
/// `kernels/matmul_sg.wgsl` into module "matmul_sg".
#[macro_export]
macro_rules! kernel {
    ($name:literal) => {
        $crate::kernel!($name = $name)
    };
    ($name:literal = $($file:literal),+ $(,)?) => {
        $crate::gpu::kernel::Kernel {
            name: $name,
            files: &[$($crate::gpu::kernel::KernelFile {
                path: concat!("kernels/", $file, ".wgsl"),
                text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/kernels/", $file, ".wgsl")),
            }),+],
        }
    };
}

/// The shared prelude compiled in front of every module.
pub const COMMON: KernelFile = KernelFile {
    path: "kernels/common.wgsl",
    text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/kernels/common.wgsl")),
};

impl Kernel {
    /// Every file of the module, the prelude first.
    fn parts(&self) -> impl Iterator<Item = &KernelFile> {
        std::iter::once(&COMMON).chain(self.files.iter())
    }
    /// The text handed to the compiler: the prelude, then each file, separated by a newline.
    pub fn full_source(&self) -> String {
        self.parts().map(|f| f.text).collect::<Vec<_>>().join("\n")
    }
    /// Map a line of `full_source` (1-based) back to (file, line) for error messages.
    pub fn locate(&self, line: usize) -> (String, usize) {
        let mut first = 1;
        let mut at = (COMMON.path, 1);
        for f in self.parts() {
            if line < first {
                break;
            }
            at = (f.path, first);
            first += f.text.matches('\n').count() + 1;
        }
        (at.0.to_string(), line - at.1 + 1)
    }
    /// "file:line" of the first defined span of `full_source` among `spans` (the module's first
    /// file when there is none: naga labels some errors with an undefined span).
    fn place(&self, src: &str, spans: impl IntoIterator<Item = naga::Span>) -> String {
        let (file, line) = match spans.into_iter().find(|s| s.is_defined()) {
            Some(span) => self.locate(span.location(src).line_number as usize),
            None => (self.files.first().map_or(COMMON.path, |f| f.path).to_string(), 0),
        };
        format!("{file}:{line}")
    }
    /// Parse and validate with naga, without any device. Errors name the file and line.
    pub fn validate(&self) -> Result<(naga::Module, naga::valid::ModuleInfo)> {
        let src = self.full_source();
        let module = naga::front::wgsl::parse_str(&src).map_err(|e| {
            let at = self.place(&src, e.labels().map(|l| l.0));
            Error::invalid(format!("{at}: WGSL parse error: {}", e.emit_to_string(&src)))
        })?;
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
        let info = v.validate(&module).map_err(|e| {
            let at = self.place(&src, e.spans().map(|s| s.0));
            Error::invalid(format!("{at}: WGSL validation error: {}", e.emit_to_string(&src)))
        })?;
        Ok((module, info))
    }
    /// Validate the module, then reflect every entry point's bindings as a pipeline would (group 0
    /// only, supported kinds, no binding number used twice): (entry name, its bindings).
    pub fn entry_points(&self) -> Result<Vec<(String, Vec<Binding>)>> {
        let (module, info) = self.validate()?;
        (0..module.entry_points.len())
            .map(|ep| Ok((module.entry_points[ep].name.clone(), reflect_bindings(&module, &info, ep, self)?)))
            .collect()
    }
}

/// What a binding in group 0 expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingKind {
    Uniform,
    StorageRead,
    StorageReadWrite,
    /// `texture_storage_2d_array<rgba32float, read>` read with `textureLoad`. Not a sampled
    /// texture: lavapipe's sampled `textureLoad` handles the mip level per lane (a call with per-lane
    /// gathers of the level's strides), its storage-image load does not; the texture GEMM runs
    /// 1.2-1.5x faster on the latter (docs/BENCHMARKS.md).
    TextureArray,
    /// `texture_storage_2d_array<rgba32float, write>`.
    StorageTextureArray,
}

/// One binding of group 0 that an entry point uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub number: u32,
    pub kind: BindingKind,
    /// Bytes of a uniform's declared type (its WGSL struct), which the bound data must match;
    /// `None` for other kinds.
    pub uniform_size: Option<u64>,
}

/// A compiled entry point with its bind-group layout.
pub struct Pipeline {
    /// `<module>::<entry>` and the override constants, e.g. `attention::flash:NQ=4:NV=4`.
    pub label: String,
    /// The module ([`Kernel::name`]) and entry point it was made from.
    pub kernel: &'static str,
    pub entry: String,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    /// Declared bindings of group 0 that the entry point uses, sorted by binding number.
    pub bindings: Vec<Binding>,
    pub workgroup_size: [u32; 3],
}

struct ModuleEntry {
    module: wgpu::ShaderModule,
    naga: naga::Module,
    info: naga::valid::ModuleInfo,
}

/// Shader modules and pipelines, created once and shared by all plans on a device.
#[derive(Default)]
pub struct KernelCache {
    modules: Mutex<HashMap<&'static str, Arc<ModuleEntry>>>,
    pipelines: Mutex<HashMap<String, Arc<Pipeline>>>,
}

/// Bindings of group 0 that entry point `ep` uses (files may hold several entry points whose
/// bindings reuse the same numbers, but one entry point may use each number once).
fn reflect_bindings(
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    ep: usize,
    kernel: &Kernel,
) -> Result<Vec<Binding>> {
    let src = kernel.full_source();
    let entry = &module.entry_points[ep].name;
    let mut out: Vec<Binding> = Vec::new();
    let uses = info.get_entry_point(ep);
    for (h, var) in module.global_variables.iter() {
        let Some(b) = &var.binding else { continue };
        if uses[h].is_empty() {
            continue;
        }
        let at = || format!("{}: entry point '{entry}'", kernel.place(&src, [module.global_variables.get_span(h)]));
        if b.group != 0 {
            return Err(Error::invalid(format!("{}: only bind group 0 is supported", at())));
        }
        let kind = match var.space {
            naga::AddressSpace::Handle => image_kind(&module.types[var.ty].inner).ok_or_else(|| {
                Error::invalid(format!(
                    "{}: binding {} must be texture_storage_2d_array<rgba32float, read> or <rgba32float, write>",
                    at(),
                    b.binding
                ))
            })?,
            naga::AddressSpace::Uniform => BindingKind::Uniform,
            naga::AddressSpace::Storage { access } => {
                if access.contains(naga::StorageAccess::STORE) {
                    BindingKind::StorageReadWrite
                } else {
                    BindingKind::StorageRead
                }
            }
            other => return Err(Error::invalid(format!("{}: unsupported binding space {other:?}", at()))),
        };
        if out.iter().any(|o| o.number == b.binding) {
            return Err(Error::invalid(format!("{}: uses binding {} through two variables", at(), b.binding)));
        }
        let uniform_size =
            (kind == BindingKind::Uniform).then(|| module.types[var.ty].inner.size(module.to_ctx()) as u64);
        out.push(Binding { number: b.binding, kind, uniform_size });
    }
    out.sort_by_key(|b| b.number);
    Ok(out)
}

/// The texture bindings the engine supports (see [`BindingKind`]).
fn image_kind(ty: &naga::TypeInner) -> Option<BindingKind> {
    use naga::{ImageClass, ImageDimension, StorageFormat};
    match ty {
        naga::TypeInner::Image {
            dim: ImageDimension::D2,
            arrayed: true,
            class: ImageClass::Storage { format: StorageFormat::Rgba32Float, access },
        } => Some(if access.contains(naga::StorageAccess::STORE) {
            BindingKind::StorageTextureArray
        } else {
            BindingKind::TextureArray
        }),
        _ => None,
    }
}

/// Layout entry type of a binding kind.
fn binding_type(kind: BindingKind) -> wgpu::BindingType {
    let buffer = |ty| wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None };
    match kind {
        BindingKind::Uniform => buffer(wgpu::BufferBindingType::Uniform),
        BindingKind::StorageRead => buffer(wgpu::BufferBindingType::Storage { read_only: true }),
        BindingKind::StorageReadWrite => buffer(wgpu::BufferBindingType::Storage { read_only: false }),
        BindingKind::TextureArray => wgpu::BindingType::StorageTexture {
            access: wgpu::StorageTextureAccess::ReadOnly,
            format: wgpu::TextureFormat::Rgba32Float,
            view_dimension: wgpu::TextureViewDimension::D2Array,
        },
        BindingKind::StorageTextureArray => wgpu::BindingType::StorageTexture {
            access: wgpu::StorageTextureAccess::WriteOnly,
            format: wgpu::TextureFormat::Rgba32Float,
            view_dimension: wgpu::TextureViewDimension::D2Array,
        },
    }
}

impl KernelCache {
    fn module(&self, gpu: &Gpu, kernel: &Kernel) -> Result<Arc<ModuleEntry>> {
        if let Some(m) = self.modules.lock().unwrap().get(kernel.name) {
            return Ok(m.clone());
        }
        let (naga_module, info) = kernel.validate()?;
        let files: Vec<&str> = kernel.files.iter().map(|f| f.path).collect();
        let entry =
            gpu.scoped(&format!("compiling kernel module '{}' ({})", kernel.name, files.join(" + ")), || {
                let module = gpu.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(kernel.name),
                    source: wgpu::ShaderSource::Wgsl(kernel.full_source().into()),
                });
                Ok(ModuleEntry { module, naga: naga_module, info })
            })?;
        let entry = Arc::new(entry);
        self.modules.lock().unwrap().insert(kernel.name, entry.clone());
        Ok(entry)
    }

    /// The pipeline for `kernel`'s `entry` with the given override constants (the variant key).
    pub fn pipeline(
        &self,
        gpu: &Gpu,
        kernel: &Kernel,
        entry: &str,
        constants: &[(&str, f64)],
    ) -> Result<Arc<Pipeline>> {
        let mut key = format!("{}::{entry}", kernel.name);
        for (k, v) in constants {
            key.push_str(&format!(":{k}={v}"));
        }
        if let Some(p) = self.pipelines.lock().unwrap().get(&key) {
            return Ok(p.clone());
        }
        let m = self.module(gpu, kernel)?;
        let ep_index =
            m.naga.entry_points.iter().position(|e| e.name == entry).ok_or_else(|| {
                Error::invalid(format!("kernel module '{}' has no entry point '{entry}'", kernel.name))
            })?;
        let workgroup_size = m.naga.entry_points[ep_index].workgroup_size;
        let bindings = reflect_bindings(&m.naga, &m.info, ep_index, kernel)?;
        let (pipeline, layout) = gpu.scoped(&format!("creating pipeline {key}"), || {
            let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
                .iter()
                .map(|b| wgpu::BindGroupLayoutEntry {
                    binding: b.number,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: binding_type(b.kind),
                    count: None,
                })
                .collect();
            let layout = gpu
                .device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(&key), entries: &entries });
            let pipeline_layout = gpu.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&key),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = gpu.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&key),
                layout: Some(&pipeline_layout),
                module: &m.module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
            Ok((pipeline, layout))
        })?;
        let p = Arc::new(Pipeline {
            label: key.clone(),
            kernel: kernel.name,
            entry: entry.to_string(),
            pipeline,
            layout,
            bindings,
            workgroup_size,
        });
        self.pipelines.lock().unwrap().insert(key, p.clone());
        Ok(p)
    }

    pub fn pipeline_count(&self) -> usize {
        self.pipelines.lock().unwrap().len()
    }
}
