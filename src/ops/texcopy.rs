//! Packs that are plain copies. A texture GEMM operand whose texel `(x, y)` of layer `z` is the
//! four consecutive elements `src[off + z * s_layer + y * s_row + 4x ..]` is the source's rows as
//! they lie in memory, so a buffer-to-texture copy can fill it instead of a pack shader. On
//! lavapipe the copy runs at memcpy speed while a shader's texel stores run at ~2 GB/s
//! (docs/BENCHMARKS.md, seventeenth session); on other devices a copy is no slower than a shader.
//! The graph records copies between compute passes ([`crate::graph`]'s `record`).

use super::{Dispatch, PlanCtx, TensorView, Texture, Work};
use std::sync::Arc;

/// A copy of rows of a buffer into layers of a texture from the origin of its region.
pub struct TexCopy {
    pub buffer: Arc<wgpu::Buffer>,
    /// Byte offset of the first row.
    pub offset: u64,
    pub bytes_per_row: u32,
    /// Rows per layer in the buffer (the layer stride is `bytes_per_row * rows_per_layer`).
    pub rows_per_layer: u32,
    pub texture: Arc<wgpu::Texture>,
    pub first_layer: u32,
    /// Texels wide, rows high, layers.
    pub extent: [u32; 3],
}

impl TexCopy {
    /// Record the copy into `enc` (outside any pass).
    pub fn record(&self, enc: &mut wgpu::CommandEncoder) {
        enc.copy_buffer_to_texture(
            wgpu::TexelCopyBufferInfo {
                buffer: &self.buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: self.offset,
                    bytes_per_row: Some(self.bytes_per_row),
                    rows_per_image: Some(self.rows_per_layer),
                },
            },
            wgpu::TexelCopyTextureInfo {
                texture: &self.texture,
                mip_level: 0,
                origin: wgpu::Origin3d { x: 0, y: 0, z: self.first_layer },
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::Extent3d { width: self.extent[0], height: self.extent[1], depth_or_array_layers: self.extent[2] },
        );
    }
}

/// Bytes of one rgba32float texel (the copy's block size: offsets must be multiples of it).
const TEXEL_BYTES: u64 = 16;

/// The copy that does the pack of `rows x cols` elements `src[off + z * s_layer + r * s_row + c *
/// s_col]` into layers `layer ..` of `tex` (see `gemm_tex::pack_layers`), where one exists: unit
/// column stride, the region exactly `cols / 4` texels by `rows` (no zero padding to write), rows
/// aligned as copies need them (256 bytes apart, the first on a texel), the layers one after
/// another in memory (or one layer), a source buffer that allows copies and the copy within it.
pub fn plan_copy(
    src: &TensorView,
    tex: &Texture,
    layer: usize,
    layers: usize,
    rows: usize,
    cols: usize,
    strides: [usize; 4],
) -> Option<TexCopy> {
    let [off, s_layer, s_row, s_col] = strides;
    let bytes_per_row = (s_row * 4) as u64;
    let offset = src.offset + (off * 4) as u64;
    let last = offset + bytes_per_row * (rows * layers - 1) as u64 + (cols * 4) as u64;
    let fits = s_col == 1
        && rows > 0
        && layers > 0
        && cols == 4 * tex.size[0] as usize
        && rows == tex.size[1] as usize
        && layer + layers <= tex.size[2] as usize
        && s_row >= cols
        && bytes_per_row.is_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT as u64)
        && offset.is_multiple_of(TEXEL_BYTES)
        && (layers == 1 || s_layer == s_row * rows)
        && last <= src.buffer.size()
        && src.buffer.usage().contains(wgpu::BufferUsages::COPY_SRC)
        && tex.texture.usage().contains(wgpu::TextureUsages::COPY_DST);
    fits.then(|| TexCopy {
        buffer: src.buffer.clone(),
        offset,
        bytes_per_row: bytes_per_row as u32,
        rows_per_layer: rows as u32,
        texture: tex.texture.clone(),
        first_layer: layer as u32,
        extent: [tex.size[0], rows as u32, layers as u32],
    })
}

impl PlanCtx<'_> {
    /// Record `copy` as a step of the current node.
    pub fn copy_to_texture(&mut self, copy: TexCopy) {
        self.dispatches.push(Dispatch { work: Work::CopyToTexture(copy), node: self.node_index });
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::{GraphBuilder, Plan};
    use crate::ops::attention::Attention;
    use crate::ops::matmul::{sg_ok, MatMul, MatMulVariant};
    use crate::ops::testing::{check_op_steps, device};
    use crate::tensor::{check_close, Rng, Tensor};

    fn copies(labels: &[String]) -> usize {
        labels.iter().filter(|l| *l == "copy_to_texture").count()
    }

    /// The texture GEMM with its operands copied where their rows lie as the texels do (rows of
    /// 64 floats = 256 bytes, unpadded regions), packed by the shader elsewhere, against the
    /// reference; the counts prove which path ran.
    #[test]
    fn copied_operands_match_the_reference() {
        if !sg_ok(device()) {
            return; // no texture GEMM on this device
        }
        let seed = Rng::fresh_seed();
        let tex = MatMul { variant: Some(MatMulVariant::Tex), ..Default::default() };
        // (a, b, copies): batch folded into M, A and B copied; batched A and B, one copy per
        // layer; rows of 60 floats (240 bytes): packed; B's rows of 68 floats: A copied only;
        // K = 62 (not whole texels): packed.
        let cases: [(&[usize], &[usize], usize); 5] = [
            (&[3, 20, 64], &[64, 128], 2),
            (&[2, 5, 64], &[2, 64, 64], 4),
            (&[7, 60], &[60, 64], 1),
            (&[9, 64], &[64, 68], 1),
            (&[9, 62], &[62, 64], 0),
        ];
        for (i, (a, b, want)) in cases.into_iter().enumerate() {
            let s = seed + 2 * i as u64;
            let ins = [Tensor::random(a, s, -1.0, 1.0), Tensor::random(b, s + 1, -1.0, 1.0)];
            let labels = check_op_steps(&format!("a {a:?} b {b:?} seed {seed}"), &tex, &ins, 1e-4);
            assert_eq!(copies(&labels), want, "a {a:?} b {b:?}: {labels:?}");
        }
        // Attention's composed path, queries along texture rows: the softmax's output (64 keys =
        // 256-byte rows) is copied, and with one head also q and v (rows of 128 channels).
        for (heads, want) in [(2, 1), (1, 3)] {
            let att = Attention { heads, scale: 0.125, variant: None };
            let ins = [[1, 40, 128], [1, 64, 128], [1, 64, 128]].map(|s| Tensor::random(&s, seed + 20, -1.0, 1.0));
            let labels = check_op_steps(&format!("attention heads {heads} seed {seed}"), &att, &ins, 1e-4);
            assert_eq!(copies(&labels), want, "{labels:?}");
        }
        // More queries than a texture is high: the transposed form (queries along columns).
        let lq = device().limits.max_texture_dimension_2d as usize + 16;
        let att = Attention { heads: 1, scale: 0.5, variant: None };
        let ins = [[1, lq, 4], [1, 8, 4], [1, 8, 4]].map(|s| Tensor::random(&s, seed + 30, -1.0, 1.0));
        check_op_steps(&format!("attention lq {lq} seed {seed}"), &att, &ins, 1e-4);
    }

    /// A plan with copies runs the same timed (each node's copies inside its timestamps), node by
    /// node (profile) and whole.
    #[test]
    fn copies_run_in_every_way_of_running_a_plan() {
        if !sg_ok(device()) {
            return;
        }
        let mut b = GraphBuilder::new();
        let a = b.input("a", &[96, 64]);
        let w = b.input("w", &[64, 64]);
        let tex = MatMul { variant: Some(MatMulVariant::Tex), ..Default::default() };
        let y = b.add("mm", tex, &[a, w]).unwrap();
        b.output("y", y);
        let g = b.finish();
        let plan = Plan::new(device(), &g).unwrap();
        assert_eq!(copies(&plan.dispatches.iter().map(|d| d.label().to_string()).collect::<Vec<_>>()), 2);
        let seed = Rng::fresh_seed();
        let (ta, tw) = (Tensor::random(&[96, 64], seed, -1.0, 1.0), Tensor::random(&[64, 64], seed + 1, -1.0, 1.0));
        let feed = [("a", &ta), ("w", &tw)];
        let want = g.run_reference(&feed).unwrap();
        let whole = plan.run(&feed).unwrap();
        let (timed, times) = plan.run_profiled(&feed).unwrap();
        for got in [&whole, &timed] {
            check_close(&format!("seed {seed}"), &got["y"], &want["y"], 1e-4).unwrap();
        }
        assert_eq!(times.len(), 1);
        let profile = plan.profile(&feed, 1).unwrap();
        assert_eq!(profile.nodes.len(), 1);
        assert!(profile.nodes[0].wall_us > 0.0);
        assert!(plan.first_nonfinite(&feed).unwrap().is_none());
    }
}
