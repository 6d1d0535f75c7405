//! Op families. Each file here pairs with `kernels/<name>.wgsl` and holds the op's parameter
//! struct, shape rule, kernel choice and dispatch, CPU reference, and tests.
//!
//! Adding an op family: write the pair, then add its name to `op_families!` below.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::device::{DeviceClass, Gpu};
use crate::gpu::kernel::{Binding, BindingKind, Kernel, KernelCache, Pipeline};
use crate::tensor::{numel, Shape, Tensor};

pub mod act;
pub mod axis;
pub mod planes;
pub mod testing;
pub mod texcopy;
pub mod variant;
pub mod window;

macro_rules! op_families {
    ($($m:ident),* $(,)?) => {
        $(pub mod $m;)*
        /// Every kernel file the engine compiles (the naga test validates each one).
        pub fn all_kernels() -> Vec<Kernel> {
            let mut v = Vec::new();
            $(v.extend_from_slice($m::KERNELS);)*
            v
        }
    };
}

op_families!(
    attention,
    conv2d,
    conv_transpose2d,
    dct,
    ela,
    ela_map,
    elementwise,
    gemm_tex,
    layer_norm,
    layout,
    matmul,
    minmax,
    msattn,
    noise,
    offset_fit,
    patchmatch,
    pool,
    resize,
    softmax,
    zernike
);

/// An operation in a graph: a shape rule, a CPU reference and a GPU plan.
pub trait Op: std::fmt::Debug + Send + Sync {
    /// Short family name for messages and profiles, e.g. "conv2d".
    fn kind(&self) -> &'static str;
    /// Output shapes from input shapes; the message says what does not fit.
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String>;
    /// Plain CPU reference (the definition the GPU kernels are tested against).
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor>;
    /// Choose kernels and record dispatches. Runs once, when a graph is planned.
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()>;
    /// `Some(i)`: output 0 is input `i` reinterpreted (same bytes, new shape); no dispatch is made.
    fn view_of(&self) -> Option<usize> {
        None
    }
    /// The node's arithmetic and its least memory traffic, for profiles and rooflines (`wgpu-forge
    /// bench --model`). By default one FLOP per output element and one read of every input and
    /// one write of every output (exact for element-wise and layout ops); ops whose arithmetic
    /// grows faster than their outputs (convolutions, products, attention) count it themselves.
    fn cost(&self, inputs: &[&[usize]], outputs: &[&[usize]]) -> Cost {
        Cost::streaming(inputs, outputs, 1.0)
    }
    /// Plan `outputs[0] = op(inputs) + residual` (residual of the output's shape) with the addition
    /// in this op's own store, for the planner's fused residual adds (`graph::fuse`). `Ok(false)`,
    /// the default, records nothing: this op, or the kernel it would choose here, cannot.
    fn plan_residual(
        &self,
        _ctx: &mut PlanCtx,
        _inputs: &[TensorView],
        _residual: &TensorView,
        _outputs: &[TensorView],
    ) -> Result<bool> {
        Ok(false)
    }
    /// Whether [`Op::plan_residual`] may add the residual itself (with some kernel), so that
    /// folding an add into this op can pay.
    fn fuses_residual(&self) -> bool {
        false
    }
    /// `Some(i)`: planned here now, this op would read input `i` (its weight) as f16 when the
    /// planner stores it so ([`crate::graph::PlanOptions::half_weights`]): the planner then stores
    /// a constant in f16 when every node that reads it says so, and tells each node through
    /// [`PlanCtx::half_input`]. `None` (the default): f32 only.
    fn half_weight_input(&self, _ctx: &PlanCtx, _inputs: &[&[usize]]) -> Option<usize> {
        None
    }
    /// Record this op reading input 0, an NCHW `[N, C, H, W]` view, from memory laid out as
    /// `[N, H, W, C]` (tokens), and writing its single output likewise, for the planner's fold of
    /// the permutes around a convolution on tokens (`graph::fuse`). `Ok(false)`, the default,
    /// records nothing: this op, or the kernel it would choose here, cannot.
    fn plan_channels_last(&self, _ctx: &mut PlanCtx, _inputs: &[TensorView], _outputs: &[TensorView]) -> Result<bool> {
        Ok(false)
    }
    /// Whether [`Op::plan_channels_last`] may take these input shapes (NCHW) with some kernel, so
    /// that folding the permutes around this node can pay.
    fn takes_channels_last(&self, _inputs: &[&[usize]]) -> bool {
        false
    }
    /// Whether this node computes `a + b` of two same-shaped tensors and nothing else (what
    /// `graph::fuse` folds into the producer of one of them).
    fn is_plain_add(&self) -> bool {
        false
    }
    /// The op's fast kernel for the CPU backend ([`crate::cpu::CpuPlan`]), made once at plan time
    /// for these input shapes (constant inputs given, to prepack). `None` (the default): the CPU
    /// backend runs [`Op::reference`], so every op works there; the heavy families override it.
    fn cpu_kernel(&self, _inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        None
    }
    /// `Some([B, X, Y])` when this node only moves its input, seen as `[B, X, Y]` (row-major), to
    /// `[B, Y, X]`: a transpose the CPU planner may fold into the node that produces the input
    /// ([`Op::cpu_kernel_transposed`]).
    fn as_transpose(&self, _input: &[usize]) -> Option<[usize; 3]> {
        None
    }
    /// The kernel of [`Op::cpu_kernel`] with its single output, seen as `[B, X, Y]`, stored as
    /// `[B, Y, X]`, for the CPU planner to fold a following transpose ([`Op::as_transpose`]) into
    /// this node. `None` (the default): this op, or these shapes, cannot.
    fn cpu_kernel_transposed(
        &self,
        _inputs: &[crate::cpu::CpuInput],
        _bxy: [usize; 3],
    ) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        None
    }
    /// The kernel of [`Op::cpu_kernel`] given input `index` as the input of a transpose: stored
    /// as `[B, X, Y]` (row-major) where the op's input is the `[B, Y, X]` transpose of it, for the
    /// CPU planner to fold that transpose into this node. `None` (the default): cannot.
    fn cpu_kernel_transposed_input(
        &self,
        _inputs: &[crate::cpu::CpuInput],
        _index: usize,
        _bxy: [usize; 3],
    ) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        None
    }
    /// Both of the above at once: input `index` stored as the `[B, X, Y]` (`bxy_in`) input of a
    /// transpose, and the single output, seen as `bxy_out`, stored transposed; for a node between
    /// two transposes (a convolution on tokens: `[N, HW, C]` in and out, no permute either side).
    /// `None` (the default): cannot.
    fn cpu_kernel_transposed_both(
        &self,
        _inputs: &[crate::cpu::CpuInput],
        _index: usize,
        _bxy_in: [usize; 3],
        _bxy_out: [usize; 3],
    ) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        None
    }
}

/// FLOPs (a multiply-add counts 2) and bytes moved (f32 elements, 4 bytes each) of one node.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    pub flops: f64,
    pub bytes: f64,
}

impl Cost {
    /// Every input read once and every output written once, `flops_per_output` per output element.
    pub fn streaming(inputs: &[&[usize]], outputs: &[&[usize]], flops_per_output: f64) -> Cost {
        let elems = |ts: &[&[usize]]| ts.iter().map(|s| numel(s) as f64).sum::<f64>();
        Cost { flops: flops_per_output * elems(outputs), bytes: 4.0 * (elems(inputs) + elems(outputs)) }
    }
    /// The same traffic with `flops` of arithmetic.
    pub fn with_flops(self, flops: f64) -> Cost {
        Cost { flops, ..self }
    }
}

/// A tensor placed in a GPU buffer: `offset` in bytes, f32 elements in row-major order.
#[derive(Clone, Debug)]
pub struct TensorView {
    pub buffer: Arc<wgpu::Buffer>,
    pub offset: u64,
    pub shape: Shape,
}

impl TensorView {
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }
    pub fn bytes(&self) -> u64 {
        (self.numel() * 4) as u64
    }
    /// The binding of an input the planner stored in f16 ([`PlanCtx::half_input`]): its 32-bit
    /// words, two elements each, as a flat view.
    pub fn half_words(&self) -> TensorView {
        TensorView { shape: vec![self.numel().div_ceil(2)], ..self.clone() }
    }
    /// A flat view of `len` elements starting at element `start` (see `ops::window` for binding
    /// windows of tensors larger than one storage binding).
    pub fn window(&self, start: usize, len: usize) -> TensorView {
        TensorView { buffer: self.buffer.clone(), offset: self.offset + (start * 4) as u64, shape: vec![len] }
    }
}

/// One binding of a dispatch, in the order of the kernel's binding numbers.
pub enum Bind<'a> {
    Tensor(&'a TensorView),
    /// Plain-old-data parameters (shapes, strides, flags): scalar u32/i32/f32 fields only.
    Uniform(&'a [u8]),
    /// A texture read with `textureLoad` (`texture_storage_2d_array<rgba32float, read>`).
    Texture(&'a Texture),
    /// A texture written by the kernel (`texture_storage_2d_array<rgba32float, write>`).
    StorageTexture(&'a Texture),
}

/// An rgba32float 2-D array texture private to a node (see [`PlanCtx::texture`]). On lavapipe a
/// `textureLoad` is a vector gather, while a storage-buffer load in a loop is a per-lane scalar loop.
#[derive(Clone, Debug)]
pub struct Texture {
    pub texture: Arc<wgpu::Texture>,
    pub view: Arc<wgpu::TextureView>,
    /// Width and height in texels, and array layers, that the node uses (its kernels' region); the
    /// pooled texture underneath may be larger (see [`PlanCtx::texture`]).
    pub size: [u32; 3],
}

/// A recorded step of a node: a compute dispatch, or a copy between passes.
pub struct Dispatch {
    pub work: Work,
    pub node: usize,
}

/// What a [`Dispatch`] does.
pub enum Work {
    Compute {
        pipeline: Arc<Pipeline>,
        bind_group: wgpu::BindGroup,
        workgroups: [u32; 3],
    },
    /// Rows of a buffer into a texture region (`PlanCtx::copy_to_texture`).
    CopyToTexture(texcopy::TexCopy),
}

impl Dispatch {
    /// The pipeline's label (`<module>::<entry>` and constants), or `copy_to_texture`.
    pub fn label(&self) -> &str {
        match &self.work {
            Work::Compute { pipeline, .. } => &pipeline.label,
            Work::CopyToTexture(_) => "copy_to_texture",
        }
    }
}

/// What an op's `plan` sees: the device, the pipeline cache, and a place to record dispatches.
pub struct PlanCtx<'a> {
    pub gpu: &'a Gpu,
    pub cache: &'a KernelCache,
    pub node_name: String,
    pub node_index: usize,
    pub(crate) dispatches: Vec<Dispatch>,
    pub(crate) scratch_bytes: u64,
    pub(crate) uniform_bytes: u64,
    /// Textures shared by nodes (each with its full size): each node rewrites every texel of the
    /// region it takes before reading it and nodes run in order, so a texture is free again after
    /// its node.
    texture_pool: Vec<Texture>,
    /// (node index, which pooled textures that node has taken).
    texture_taken: (usize, Vec<usize>),
    /// Scratch buffers sized by an op's parameters rather than its input (see [`PlanCtx::fixed_scratch`]).
    fixed: Vec<Arc<wgpu::Buffer>>,
    /// Scratch buffers by element count, shared by nodes like the textures (see [`PlanCtx::pooled_scratch`]).
    buffer_pool: Vec<TensorView>,
    buffer_taken: (usize, Vec<usize>),
    /// Plan as if the device were of this class (tests run the hardware kernels on lavapipe).
    pub(crate) class_override: Option<DeviceClass>,
    /// Which inputs of the current node the planner stored as f16 pairs (see [`PlanCtx::half_input`]).
    pub(crate) half_inputs: Vec<bool>,
}

impl<'a> PlanCtx<'a> {
    pub fn new(gpu: &'a Gpu, cache: &'a KernelCache) -> Self {
        PlanCtx {
            gpu,
            cache,
            node_name: String::new(),
            node_index: 0,
            dispatches: Vec::new(),
            scratch_bytes: 0,
            uniform_bytes: 0,
            texture_pool: Vec::new(),
            fixed: Vec::new(),
            texture_taken: (usize::MAX, Vec::new()),
            buffer_pool: Vec::new(),
            buffer_taken: (usize::MAX, Vec::new()),
            class_override: None,
            half_inputs: Vec::new(),
        }
    }

    /// The device class kernels are chosen for: the device's, unless the plan overrides it.
    pub fn class(&self) -> DeviceClass {
        self.class_override.unwrap_or(self.gpu.class)
    }

    /// Whether input `i` of the current node is stored as f16 (two per 32-bit word, element `e` in
    /// the low half of word `e / 2` when `e` is even): only inputs the op named in
    /// [`Op::half_weight_input`], and only when the plan asked for half weights.
    pub fn half_input(&self, i: usize) -> bool {
        self.half_inputs.get(i).copied().unwrap_or(false)
    }

    /// Pipeline for `entry` of `kernel`, specialized by override constants (the variant key).
    pub fn pipeline(&self, kernel: &Kernel, entry: &str, constants: &[(&str, f64)]) -> Result<Arc<Pipeline>> {
        self.cache
            .pipeline(self.gpu, kernel, entry, constants)
            .map_err(|e| e.context(format!("node '{}'", self.node_name)))
    }

    /// A buffer private to this node (partial sums, packed weights): not shared with other values.
    pub fn scratch(&mut self, elems: usize) -> Result<TensorView> {
        let bytes = ((elems.max(1) * 4) as u64).next_multiple_of(16);
        self.scratch_bytes += bytes;
        let buffer = self.gpu.scoped(&format!("node '{}': scratch buffer", self.node_name), || {
            Ok(self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&self.node_name),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }))
        })?;
        Ok(TensorView { buffer: Arc::new(buffer), offset: 0, shape: vec![elems] })
    }

    /// A scratch buffer of `elems` f32 for this node that other nodes may share, as with
    /// [`PlanCtx::texture`]: the node's dispatches must write every element they read before reading
    /// it (intermediate products such as a transposed convolution's columns). Nodes run in order, so
    /// the buffer is free again after its node; unlike [`PlanCtx::scratch`] the memory is paid once.
    /// The view lies at the start of the smallest pooled buffer that holds it and this node has not
    /// taken, or of a new one.
    pub fn pooled_scratch(&mut self, elems: usize) -> Result<TensorView> {
        if self.buffer_taken.0 != self.node_index {
            self.buffer_taken = (self.node_index, Vec::new());
        }
        // The smallest pooled buffer this node has not taken that holds `elems`, if any.
        let fit = (self.buffer_pool.iter().enumerate())
            .filter(|(i, t)| !self.buffer_taken.1.contains(i) && t.numel() >= elems)
            .min_by_key(|(_, t)| t.numel())
            .map(|(i, _)| i);
        if let Some(i) = fit {
            self.buffer_taken.1.push(i);
            return Ok(TensorView { shape: vec![elems], ..self.buffer_pool[i].clone() });
        }
        let t = self.scratch(elems)?;
        self.buffer_taken.1.push(self.buffer_pool.len());
        self.buffer_pool.push(t.clone());
        Ok(t)
    }

    /// A scratch buffer whose size is set by the op's parameters, not by its input's size (a
    /// histogram, per-sample scalars). The shrunken binding limit of unit tests exists to push
    /// input-sized tensors through the windowed paths, so it does not apply to these; the device's
    /// own limit still does.
    pub fn fixed_scratch(&mut self, elems: usize) -> Result<TensorView> {
        let t = self.scratch(elems)?;
        self.fixed.push(t.buffer.clone());
        Ok(t)
    }

    /// An rgba32float 2-D array texture of `width x height` texels and `layers` layers for this
    /// node: its dispatches must write every texel of that region before reading any. The region
    /// lies in the smallest pooled texture that holds it and this node has not taken (shared with
    /// other nodes; its `size` is the region's), or in a new one, counted as scratch when made.
    pub fn texture(&mut self, width: usize, height: usize, layers: usize) -> Result<Texture> {
        let l = &self.gpu.limits;
        let (maxd, maxl) = (l.max_texture_dimension_2d as usize, l.max_texture_array_layers as usize);
        if width == 0 || height == 0 || layers == 0 || width > maxd || height > maxd || layers > maxl {
            return Err(Error::graph(format!(
                "node '{}': texture {width} x {height} x {layers} is outside the device's limits ({maxd} texels, {maxl} layers)",
                self.node_name
            )));
        }
        let size = [width as u32, height as u32, layers as u32];
        if self.texture_taken.0 != self.node_index {
            self.texture_taken = (self.node_index, Vec::new());
        }
        // The smallest pooled texture this node has not taken that holds the region, if any.
        let volume = |t: &Texture| t.size.iter().map(|&d| d as u64).product::<u64>();
        let fit = (self.texture_pool.iter().enumerate())
            .filter(|(i, t)| !self.texture_taken.1.contains(i) && t.size.iter().zip(&size).all(|(a, b)| a >= b))
            .min_by_key(|(_, t)| volume(t))
            .map(|(i, _)| i);
        if let Some(i) = fit {
            self.texture_taken.1.push(i);
            return Ok(Texture { size, ..self.texture_pool[i].clone() });
        }
        self.scratch_bytes += (width * height * layers * 16) as u64;
        let texture = self.gpu.scoped(&format!("node '{}': texture", self.node_name), || {
            Ok(self.gpu.device.create_texture(&wgpu::TextureDescriptor {
                label: Some(&self.node_name),
                size: wgpu::Extent3d { width: size[0], height: size[1], depth_or_array_layers: size[2] },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::Rgba32Float,
                usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            }))
        })?;
        let view = texture.create_view(&wgpu::TextureViewDescriptor {
            dimension: Some(wgpu::TextureViewDimension::D2Array),
            ..Default::default()
        });
        let t = Texture { texture: Arc::new(texture), view: Arc::new(view), size };
        self.texture_taken.1.push(self.texture_pool.len());
        self.texture_pool.push(t.clone());
        Ok(t)
    }

    /// Whether a `width x height x layers` texture fits the device's limits.
    pub fn texture_fits(&self, width: usize, height: usize, layers: usize) -> bool {
        let l = &self.gpu.limits;
        let (maxd, maxl) = (l.max_texture_dimension_2d as usize, l.max_texture_array_layers as usize);
        width > 0 && height > 0 && layers > 0 && width <= maxd && height <= maxd && layers <= maxl
    }

    /// A constant buffer private to this node, filled now (e.g. a DCT matrix or repacked weights).
    pub fn constant(&mut self, data: &[f32]) -> Result<TensorView> {
        let t = self.scratch(data.len())?;
        self.gpu.queue.write_buffer(&t.buffer, 0, bytemuck::cast_slice(data));
        Ok(t)
    }

    /// Record one dispatch of `pipeline` with `binds` in binding order.
    pub fn dispatch(&mut self, pipeline: &Arc<Pipeline>, binds: &[Bind], workgroups: [u32; 3]) -> Result<()> {
        let node = self.node_name.clone();
        let ctx_err = |m: String| Error::graph(format!("node '{node}' ({}): {m}", pipeline.label));
        if binds.len() != pipeline.bindings.len() {
            return Err(ctx_err(format!(
                "{} bindings given, kernel declares {}",
                binds.len(),
                pipeline.bindings.len()
            )));
        }
        let max_wg = self.gpu.limits.max_compute_workgroups_per_dimension;
        if workgroups.iter().any(|&w| w > max_wg) {
            return Err(ctx_err(format!("dispatch {workgroups:?} exceeds {max_wg} workgroups per dimension")));
        }
        let max_bind = window::binding_limit_bytes(self.gpu);
        let align = 4 * self.windows().align() as u64;
        let mut uniforms = Vec::new();
        for (b, &Binding { number: num, kind, uniform_size }) in binds.iter().zip(&pipeline.bindings) {
            if let Bind::Uniform(bytes) = b {
                if kind != BindingKind::Uniform {
                    return Err(ctx_err(format!("binding {num} is {kind:?}, got uniform data")));
                }
                // The Rust struct must mirror the WGSL struct field for field: equal sizes at least.
                if Some(bytes.len() as u64) != uniform_size {
                    return Err(ctx_err(format!(
                        "binding {num}: {} bytes of uniform data bound, but kernel '{}' entry point '{}' declares {} bytes \
                         (the Rust params struct does not mirror the WGSL struct)",
                        bytes.len(),
                        pipeline.kernel,
                        pipeline.entry,
                        uniform_size.unwrap_or(0)
                    )));
                }
                let size = (bytes.len() as u64).next_multiple_of(16).max(16);
                let mut padded = bytes.to_vec();
                padded.resize(size as usize, 0);
                let buf = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("params"),
                    size,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                self.gpu.queue.write_buffer(&buf, 0, &padded);
                self.uniform_bytes += size;
                uniforms.push(buf);
            }
        }
        let mut entries = Vec::new();
        let mut u = uniforms.iter();
        for (b, &Binding { number: num, kind, .. }) in binds.iter().zip(&pipeline.bindings) {
            let resource = match b {
                Bind::Uniform(_) => u.next().unwrap().as_entire_binding(),
                Bind::Texture(t) | Bind::StorageTexture(t) => {
                    let want = if matches!(b, Bind::Texture(_)) {
                        BindingKind::TextureArray
                    } else {
                        BindingKind::StorageTextureArray
                    };
                    if kind != want {
                        return Err(ctx_err(format!("binding {num} is {kind:?}, got a texture for {want:?}")));
                    }
                    wgpu::BindingResource::TextureView(&t.view)
                }
                Bind::Tensor(t) => {
                    if !matches!(kind, BindingKind::StorageRead | BindingKind::StorageReadWrite) {
                        return Err(ctx_err(format!("binding {num} is {kind:?}, got a tensor")));
                    }
                    let size = t.bytes().max(4);
                    let max_bind = if self.fixed.iter().any(|f| Arc::ptr_eq(f, &t.buffer)) {
                        self.gpu.max_binding_bytes()
                    } else {
                        max_bind
                    };
                    if size > max_bind {
                        return Err(ctx_err(format!(
                            "binding {num}: tensor of {size} bytes (shape {:?}) exceeds the device's storage-binding limit of {max_bind} bytes; this op must split it",
                            t.shape
                        )));
                    }
                    if t.offset % align != 0 {
                        return Err(ctx_err(format!(
                            "binding {num}: offset {} is not a multiple of {align}",
                            t.offset
                        )));
                    }
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &t.buffer,
                        offset: t.offset,
                        size: std::num::NonZeroU64::new(size),
                    })
                }
            };
            entries.push(wgpu::BindGroupEntry { binding: num, resource });
        }
        let bind_group =
            self.gpu.scoped(&format!("node '{}': bind group for {}", self.node_name, pipeline.label), || {
                Ok(self.gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(&pipeline.label),
                    layout: &pipeline.layout,
                    entries: &entries,
                }))
            })?;
        let work = Work::Compute { pipeline: pipeline.clone(), bind_group, workgroups };
        self.dispatches.push(Dispatch { work, node: self.node_index });
        Ok(())
    }

    /// Workgroups a dispatch may have along one dimension: the device's limit, at most 65535
    /// (WebGPU's default limit, which every backend honours).
    pub fn max_groups(&self) -> usize {
        (self.gpu.limits.max_compute_workgroups_per_dimension as usize).min(65535)
    }

    /// Dispatch `count` workgroups along one logical axis, folded into x and y when over the
    /// per-dimension limit. Kernels recover the index with `linear_workgroup(wid, nwg)`.
    pub fn dispatch_linear(&mut self, pipeline: &Arc<Pipeline>, binds: &[Bind], count: u32) -> Result<()> {
        let max = self.max_groups() as u32;
        let (x, y) = if count <= max { (count.max(1), 1) } else { (max, count.div_ceil(max)) };
        self.dispatch(pipeline, binds, [x, y, 1])
    }
}

/// Plain parameter structs passed as uniforms.
pub fn as_bytes<T: bytemuck::Pod>(p: &T) -> &[u8] {
    bytemuck::bytes_of(p)
}

/// Workgroup count for `n` items at `per` items per workgroup.
pub fn groups(n: usize, per: usize) -> u32 {
    n.div_ceil(per) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::run_on_gpu;

    /// Binds `bytes` of uniform data to elementwise.wgsl's `unary` (whose `UnaryParams` is 16 bytes).
    #[derive(Clone, Debug)]
    struct UnaryWithUniformOf(usize);

    impl Op for UnaryWithUniformOf {
        fn kind(&self) -> &'static str {
            "test"
        }
        fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
            Ok(vec![inputs[0].to_vec()])
        }
        fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
            vec![inputs[0].clone()]
        }
        fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
            let p = ctx.pipeline(&crate::ops::elementwise::KERNELS[0], "unary", &[])?;
            // n = 4, act = none: a correct 16-byte uniform copies the input.
            let mut params = vec![0u8; self.0];
            params[..4].copy_from_slice(&4u32.to_le_bytes());
            ctx.dispatch(&p, &[Bind::Uniform(&params), Bind::Tensor(&inputs[0]), Bind::Tensor(&outputs[0])], [1, 1, 1])
        }
    }

    /// A uniform whose size differs from the WGSL struct is refused with the node, kernel and entry
    /// point named, also when the 16-byte padding would hide it (12 bytes for a 16-byte struct).
    #[test]
    fn uniform_size_mismatch_is_reported() {
        let x = Tensor::new(&[4], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(run_on_gpu(&UnaryWithUniformOf(16), &[x.clone()]).unwrap()[0].data, x.data);
        for bytes in [12, 20, 32] {
            let err = run_on_gpu(&UnaryWithUniformOf(bytes), &[x.clone()]).unwrap_err().to_string();
            for want in [
                "node 'op'",
                "kernel 'elementwise' entry point 'unary'",
                &format!("{bytes} bytes"),
                "declares 16 bytes",
            ] {
                assert!(err.contains(want), "{bytes} bytes: '{want}' missing from: {err}");
            }
        }
    }
}
