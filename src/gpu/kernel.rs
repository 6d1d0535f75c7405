//! WGSL kernels: sources, reflection of their bindings, and a pipeline cache keyed by a small hint.
//!
//! Every kernel file is compiled with `kernels/common.wgsl` in front of it (WGSL has no include).
//! Shapes never go into shader text: they travel in a uniform; only small variant hints (tile sizes,
//! activation codes known at plan time) become pipeline-overridable constants and the cache key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::device::Gpu;

/// A kernel file under `kernels/`.
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    /// File stem: `kernels/<name>.wgsl`.
    pub name: &'static str,
    pub source: &'static str,
}

/// `kernel!("conv2d")` embeds `kernels/conv2d.wgsl`.
#[macro_export]
macro_rules! kernel {
    ($name:literal) => {
        $crate::gpu::kernel::Kernel {
            name: $name,
            source: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/kernels/", $name, ".wgsl")),
        }
    };
}

pub const COMMON: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/kernels/common.wgsl"));

impl Kernel {
    /// The text handed to the compiler: the shared prelude, then the kernel file.
    pub fn full_source(&self) -> String {
        format!("{COMMON}\n{}", self.source)
    }
    /// Map a line of `full_source` back to (file, line) for error messages.
    pub fn locate(&self, line: usize) -> (String, usize) {
        let prelude = COMMON.lines().count() + 1;
        if line > prelude {
            (format!("kernels/{}.wgsl", self.name), line - prelude)
        } else {
            ("kernels/common.wgsl".to_string(), line)
        }
    }
    /// Parse and validate with naga, without any device. Errors name the file and line.
    pub fn validate(&self) -> Result<(naga::Module, naga::valid::ModuleInfo)> {
        let src = self.full_source();
        let module = naga::front::wgsl::parse_str(&src).map_err(|e| {
            let loc = e.location(&src).map(|l| self.locate(l.line_number as usize));
            let (file, line) = loc.unwrap_or((format!("kernels/{}.wgsl", self.name), 0));
            Error::invalid(format!("{file}:{line}: WGSL parse error: {}", e.emit_to_string(&src)))
        })?;
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
        let info = v.validate(&module).map_err(|e| {
            let loc = e.location(&src).map(|l| self.locate(l.line_number as usize));
            let (file, line) = loc.unwrap_or((format!("kernels/{}.wgsl", self.name), 0));
            Error::invalid(format!("{file}:{line}: WGSL validation error: {}", e.emit_to_string(&src)))
        })?;
        Ok((module, info))
    }
}

/// What a binding in group 0 expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingKind {
    Uniform,
    StorageRead,
    StorageReadWrite,
    /// `texture_2d_array<f32>` read with `textureLoad` (unfilterable float, e.g. rgba32float).
    TextureArray,
    /// `texture_storage_2d_array<rgba32float, write>`.
    StorageTextureArray,
}

/// A compiled entry point with its bind-group layout.
pub struct Pipeline {
    pub label: String,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    /// Declared bindings of group 0, sorted by binding number.
    pub bindings: Vec<(u32, BindingKind)>,
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
/// bindings reuse the same numbers).
fn reflect_bindings(
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    ep: usize,
    kernel: &Kernel,
) -> Result<Vec<(u32, BindingKind)>> {
    let mut out = Vec::new();
    let uses = info.get_entry_point(ep);
    for (h, var) in module.global_variables.iter() {
        let Some(b) = &var.binding else { continue };
        if uses[h].is_empty() {
            continue;
        }
        if b.group != 0 {
            return Err(Error::invalid(format!("kernels/{}.wgsl: only bind group 0 is supported", kernel.name)));
        }
        let kind = match var.space {
            naga::AddressSpace::Handle => image_kind(&module.types[var.ty].inner).ok_or_else(|| {
                Error::invalid(format!(
                    "kernels/{}.wgsl: binding {} must be texture_2d_array<f32> or texture_storage_2d_array<rgba32float, write>",
                    kernel.name, b.binding
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
            other => {
                return Err(Error::invalid(format!(
                    "kernels/{}.wgsl: unsupported binding space {other:?}",
                    kernel.name
                )))
            }
        };
        out.push((b.binding, kind));
    }
    out.sort_by_key(|b| b.0);
    Ok(out)
}

/// The texture bindings the engine supports (see [`BindingKind`]).
fn image_kind(ty: &naga::TypeInner) -> Option<BindingKind> {
    use naga::{ImageClass, ImageDimension, ScalarKind, StorageFormat};
    match ty {
        naga::TypeInner::Image { dim: ImageDimension::D2, arrayed: true, class } => match class {
            ImageClass::Sampled { kind: ScalarKind::Float, multi: false } => Some(BindingKind::TextureArray),
            ImageClass::Storage { format: StorageFormat::Rgba32Float, .. } => Some(BindingKind::StorageTextureArray),
            _ => None,
        },
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
        BindingKind::TextureArray => wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable: false },
            view_dimension: wgpu::TextureViewDimension::D2Array,
            multisampled: false,
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
        let entry = gpu.scoped(&format!("compiling kernels/{}.wgsl", kernel.name), || {
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
        let ep_index = m
            .naga
            .entry_points
            .iter()
            .position(|e| e.name == entry)
            .ok_or_else(|| Error::invalid(format!("kernels/{}.wgsl has no entry point '{entry}'", kernel.name)))?;
        let workgroup_size = m.naga.entry_points[ep_index].workgroup_size;
        let bindings = reflect_bindings(&m.naga, &m.info, ep_index, kernel)?;
        let (pipeline, layout) = gpu.scoped(&format!("creating pipeline {key}"), || {
            let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
                .iter()
                .map(|&(binding, kind)| wgpu::BindGroupLayoutEntry {
                    binding,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: binding_type(kind),
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
        let p = Arc::new(Pipeline { label: key.clone(), pipeline, layout, bindings, workgroup_size });
        self.pipelines.lock().unwrap().insert(key, p.clone());
        Ok(p)
    }

    pub fn pipeline_count(&self) -> usize {
        self.pipelines.lock().unwrap().len()
    }
}
