// Texture GEMM for software devices (lavapipe): C = act(alpha * A @ B + bias) with both operands
// first copied into rgba32float 2-D array textures by the pack entry points below.
//
// Why: lavapipe (Mesa 22.3) turns every storage-buffer load inside a loop into a per-lane scalar
// loop, even at a uniform address, so the storage-buffer GEMMs (mm_sg in matmul.wgsl) are bound by
// load count. A textureLoad is a vector gather with no per-lane branch. Packing costs O(MK + KN)
// storage loads once; the GEMM then makes O(MNK / block) texture loads. The textures are read as
// read-only storage textures: lavapipe's sampled-texture load works out the mip level per lane
// (gathers of each lane's level strides), its storage-image load does not, which made the GEMM
// 1.2-1.5x faster.
//
// Texture layouts (layer = batch item):
//   TA: texel (q, m) = A[m, 4q .. 4q+3]   (width KQ = ceil(K / 4), height M)
//   TB: texel (j, k) = B[k, 4j .. 4j+3]   (width NQ = ceil(N / 4), height 4 * KQ)
// Elements past K or N are packed as zeros, so the GEMM needs no alignment at all.
// C is written as scalars: element (m, n) of batch z at c_off + z * c_zstride + m * ldc + n * ldn
// (ldn 1 but for stores that transpose C, e.g. attention's output straight into token-major).
// BIAS_MODE: 0 none, 1 BIAS[bias_off + n] (linear), 2 BIAS[bias_off + m] (conv output channels).
// RES_MODE 1 adds RES at C's own index after the activation (a residual add fused into the store;
// graph::fuse); RES is laid out like C. Both, and the activation (ACT in common.wgsl), are override
// constants: lavapipe runs both sides of every branch, so runtime modes would pay the bias and
// residual loads and every activation's math per output even where unused.
//
// Everything here needs Features::SUBGROUP with subgroups of exactly 8 (one workgroup = one
// subgroup): the host uses this module only where that holds (matmul::sg_ok). The GEMM entry points
// mm_tex_* are generated: kernels/gemm_tex_mm.wgsl (module "gemm_tex" = this file + that one).

struct TexParams {
    M: u32,
    N: u32,
    KQ: u32,
    NQ: u32,
    a_layer: u32,
    a_lstep: u32,
    b_layer: u32,
    b_lstep: u32,
    c_off: u32,
    c_zstride: u32,
    ldc: u32,
    _bias_mode: u32,
    bias_off: u32,
    _act: u32,
    act_alpha: f32,
    alpha: f32,
    _res_mode: u32,
    ldn: u32,
    _p1: u32,
    _p2: u32,
}

override BIAS_MODE: u32 = 0u;
override RES_MODE: u32 = 0u;

@group(0) @binding(0) var<uniform> T: TexParams;
@group(0) @binding(1) var TA: texture_storage_2d_array<rgba32float, read>;
@group(0) @binding(2) var TB: texture_storage_2d_array<rgba32float, read>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;
// vec4 view of the same binding, for the mm_tex_*v entry points (each entry point uses one view).
@group(0) @binding(4) var<storage, read_write> C4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> RES: array<f32>;

// Epilogue of the 4 outputs of row m, texel column nq (columns 4nq .. 4nq+3): bias (bc: the
// column biases of this texel, br: the row's bias), alpha, activation.
fn epi_tex(acc: vec4<f32>, bc: vec4<f32>, br: f32) -> vec4<f32> {
    let v = T.alpha * acc + bc + vec4<f32>(br);
    return vec4<f32>(
        apply_act(v.x, ACT, T.act_alpha),
        apply_act(v.y, ACT, T.act_alpha),
        apply_act(v.z, ACT, T.act_alpha),
        apply_act(v.w, ACT, T.act_alpha),
    );
}

// Bias of row m (BIAS_MODE 2) or 0.
fn row_bias(m: u32) -> f32 {
    if (BIAS_MODE == 2u && m < T.M) {
        return BIAS[T.bias_off + m];
    }
    return 0.0;
}

// Biases of columns 4nq .. 4nq+3 (BIAS_MODE 1; columns past N read as 0) or 0.
fn col_bias(nq: u32) -> vec4<f32> {
    var b = vec4<f32>(0.0);
    if (BIAS_MODE == 1u) {
        for (var t = 0u; t < 4u; t++) {
            if (4u * nq + t < T.N) {
                b[t] = BIAS[T.bias_off + 4u * nq + t];
            }
        }
    }
    return b;
}

// Scalar stores of the outputs of row m, texel column nq that lie inside C.
fn put_tex(zo: u32, m: u32, nq: u32, v: vec4<f32>) {
    if (m >= T.M) {
        return;
    }
    for (var t = 0u; t < 4u; t++) {
        let n = 4u * nq + t;
        if (n < T.N) {
            let i = zo + m * T.ldc + n * T.ldn;
            var r = 0.0;
            if (RES_MODE != 0u) {
                r = RES[i];
            }
            C[i] = v[t] + r;
        }
    }
}

// vec4 stores (mm_tex_*v): needs ldn 1 and N, ldc, c_off and c_zstride multiples of 4.
fn put_tex4(zo: u32, m: u32, nq: u32, v: vec4<f32>) {
    if (m < T.M && 4u * nq < T.N) {
        var r = vec4<f32>(0.0);
        if (RES_MODE != 0u) {
            let i = zo + m * T.ldc + 4u * nq;
            r = vec4<f32>(RES[i], RES[i + 1u], RES[i + 2u], RES[i + 3u]);
        }
        C4[(zo + m * T.ldc) / 4u + nq] = v + r;
    }
}

// ---------------------------------------------------------------------------------------------
// Packing into the textures above; one invocation per texel (x, y) of layer PK.layer + gid.z.
// Elements past rows / cols are zero.
//   pack        : element t of texel (x, y) = SRC[off + z * s_layer + y * s_row + (4x + t) * s_col]
//                 (A, B, conv weights, and conv inputs as one layer per channel).
//   pack_im2col : conv2d im2col from XT, an image packed by `pack` with one layer per channel
//                 (texel (x, iy) of layer c = x[c, iy, 4x .. 4x+3]): row y = (c * kh + ky) * kw + kx,
//                 column p = p0 + 4x + t is output pixel (p / wo, p % wo); zero in the padding.
//                 Reading a texture instead of the storage buffer avoids lavapipe's per-lane loads.

struct PackParams {
    rows: u32,
    cols: u32,
    width: u32,
    height: u32,
    off: u32,
    s_row: u32,
    s_col: u32,
    layer: u32,
    s_layer: u32,
    h: u32,
    w: u32,
    wo: u32,
    kh: u32,
    kw: u32,
    sy: u32,
    sx: u32,
    py: i32,
    px: i32,
    dy: u32,
    dx: u32,
    p0: u32,
    layers: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(5) var<uniform> PK: PackParams;
@group(0) @binding(6) var<storage, read> SRC: array<f32>;
@group(0) @binding(7) var DST: texture_storage_2d_array<rgba32float, write>;
@group(0) @binding(8) var XT: texture_storage_2d_array<rgba32float, read>;

// Texel (x, y) of layer z for `pack` (zero past rows / cols).
fn pack_texel(x: u32, y: u32, z: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (y < PK.rows) {
        let base = PK.off + z * PK.s_layer + y * PK.s_row;
        for (var t = 0u; t < 4u; t++) {
            let col = 4u * x + t;
            if (col < PK.cols) {
                v[t] = SRC[base + col * PK.s_col];
            }
        }
    }
    return v;
}

// Texel (x, y) for `pack_im2col` (zero past rows / cols and in the padding).
fn im2col_texel(x: u32, y: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (y < PK.rows) {
        let kx = y % PK.kw;
        let ky = (y / PK.kw) % PK.kh;
        let c = i32(y / (PK.kw * PK.kh));
        for (var t = 0u; t < 4u; t++) {
            let col = 4u * x + t;
            let p = PK.p0 + col;
            let iy = i32((p / PK.wo) * PK.sy + ky * PK.dy) - PK.py;
            let ix = i32((p % PK.wo) * PK.sx + kx * PK.dx) - PK.px;
            let inside = col < PK.cols && iy >= 0 && iy < i32(PK.h) && ix >= 0 && ix < i32(PK.w);
            let tx = textureLoad(XT, vec2<i32>(max(ix, 0) / 4, max(iy, 0)), c);
            v[t] = select(0.0, tx[u32(max(ix, 0)) % 4u], inside);
        }
    }
    return v;
}

@compute @workgroup_size(8, 8, 1)
fn pack(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x < PK.width && gid.y < PK.height) {
        textureStore(DST, gid.xy, PK.layer + gid.z, pack_texel(gid.x, gid.y, gid.z));
    }
}

// `pack` with the layer fastest: invocation (layer, x, y). For a source whose layers are its
// innermost dimension (channels-last activations) the lanes then read consecutive elements, where
// `pack`'s lanes would each touch their own cache line.
@compute @workgroup_size(8, 8, 1)
fn pack_layer_fastest(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x < PK.layers && gid.y < PK.width && gid.z < PK.height) {
        textureStore(DST, gid.yz, PK.layer + gid.x, pack_texel(gid.y, gid.z, gid.x));
    }
}

@compute @workgroup_size(8, 8, 1)
fn pack_im2col(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x < PK.width && gid.y < PK.height) {
        textureStore(DST, gid.xy, PK.layer, im2col_texel(gid.x, gid.y));
    }
}
