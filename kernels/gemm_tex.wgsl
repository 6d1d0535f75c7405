// Texture GEMM for software devices (lavapipe): C = act(alpha * A @ B + bias) with both operands
// first copied into rgba32float 2-D array textures by the pack entry points below.
//
// Why: lavapipe (Mesa 22.3) turns every storage-buffer load inside a loop into a per-lane scalar
// loop, even at a uniform address, so the storage-buffer GEMMs (mm_sg in matmul.wgsl) are bound by
// load count. A textureLoad is a vector gather with no per-lane branch. Packing costs O(MK + KN)
// storage loads once; the GEMM then makes O(MNK / block) texture loads.
//
// Texture layouts (layer = batch item):
//   TA: texel (q, m) = A[m, 4q .. 4q+3]   (width KQ = ceil(K / 4), height M)
//   TB: texel (j, k) = B[k, 4j .. 4j+3]   (width NQ = ceil(N / 4), height 4 * KQ)
// Elements past K or N are packed as zeros, so the GEMM needs no alignment at all.
// C is written as scalars: element (m, n) of batch z at c_off + z * c_zstride + m * ldc + n.
// bias_mode: 0 none, 1 BIAS[bias_off + n] (linear), 2 BIAS[bias_off + m] (conv output channels).
//
// Everything here needs Features::SUBGROUP with subgroups of exactly 8 (one workgroup = one
// subgroup): the host uses this file only where that holds (matmul::sg_ok).

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
    bias_mode: u32,
    bias_off: u32,
    act: u32,
    act_alpha: f32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> T: TexParams;
@group(0) @binding(1) var TA: texture_2d_array<f32>;
@group(0) @binding(2) var TB: texture_2d_array<f32>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;
// vec4 view of the same binding, for the mm_tex_*v entry points (each entry point uses one view).
@group(0) @binding(4) var<storage, read_write> C4: array<vec4<f32>>;

// Epilogue of the 4 outputs of row m, texel column nq (columns 4nq .. 4nq+3): bias (bc: the
// column biases of this texel, br: the row's bias), alpha, activation.
fn epi_tex(acc: vec4<f32>, bc: vec4<f32>, br: f32) -> vec4<f32> {
    let v = T.alpha * acc + bc + vec4<f32>(br);
    return vec4<f32>(
        apply_act(v.x, T.act, T.act_alpha),
        apply_act(v.y, T.act, T.act_alpha),
        apply_act(v.z, T.act, T.act_alpha),
        apply_act(v.w, T.act, T.act_alpha),
    );
}

// Bias of row m (bias_mode 2) or 0.
fn row_bias(m: u32) -> f32 {
    if (T.bias_mode == 2u && m < T.M) {
        return BIAS[T.bias_off + m];
    }
    return 0.0;
}

// Biases of columns 4nq .. 4nq+3 (bias_mode 1; columns past N read as 0) or 0.
fn col_bias(nq: u32) -> vec4<f32> {
    var b = vec4<f32>(0.0);
    if (T.bias_mode == 1u) {
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
            C[zo + m * T.ldc + n] = v[t];
        }
    }
}

// vec4 stores (mm_tex_*v): needs N, ldc, c_off and c_zstride to be multiples of 4.
fn put_tex4(zo: u32, m: u32, nq: u32, v: vec4<f32>) {
    if (m < T.M && 4u * nq < T.N) {
        C4[(zo + m * T.ldc) / 4u + nq] = v;
    }
}

// mm_tex_16x32: one workgroup = one subgroup of 8 lanes covers 16 rows x 32 columns; lane l owns all
// 16 rows x its own 4 columns (1 vec4 accumulators per row). Per K step of 4, lane l fetches
// rows l, l+8, .. of A (broadcast to the others with subgroupBroadcast) and its own 1 x 4 texels
// of B: 6 texture loads for 256 multiply-adds (8 lanes wide).
@compute @workgroup_size(8, 1, 1)
fn mm_tex_16x32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lane = lid.x % 8u;
    let la = i32(T.a_layer + wid.z * T.a_lstep);
    let lb = i32(T.b_layer + wid.z * T.b_lstep);
    let m0 = wid.y * 16u;
    let nq0 = (wid.x * 8u + lane) * 1u;
    let ra0 = i32(min(m0 + lane + 0u, T.M - 1u));
    let ra1 = i32(min(m0 + lane + 8u, T.M - 1u));
    let cq0 = i32(min(nq0 + 0u, T.NQ - 1u));
    var x0_0 = vec4<f32>(0.0);
    var x1_0 = vec4<f32>(0.0);
    var x2_0 = vec4<f32>(0.0);
    var x3_0 = vec4<f32>(0.0);
    var x4_0 = vec4<f32>(0.0);
    var x5_0 = vec4<f32>(0.0);
    var x6_0 = vec4<f32>(0.0);
    var x7_0 = vec4<f32>(0.0);
    var x8_0 = vec4<f32>(0.0);
    var x9_0 = vec4<f32>(0.0);
    var x10_0 = vec4<f32>(0.0);
    var x11_0 = vec4<f32>(0.0);
    var x12_0 = vec4<f32>(0.0);
    var x13_0 = vec4<f32>(0.0);
    var x14_0 = vec4<f32>(0.0);
    var x15_0 = vec4<f32>(0.0);
    for (var q = 0u; q < T.KQ; q++) {
        let k = i32(4u * q);
        let b0_0 = textureLoad(TB, vec2<i32>(cq0, k + 0), lb, 0);
        let b0_1 = textureLoad(TB, vec2<i32>(cq0, k + 1), lb, 0);
        let b0_2 = textureLoad(TB, vec2<i32>(cq0, k + 2), lb, 0);
        let b0_3 = textureLoad(TB, vec2<i32>(cq0, k + 3), lb, 0);
        let al0 = textureLoad(TA, vec2<i32>(i32(q), ra0), la, 0);
        let al1 = textureLoad(TA, vec2<i32>(i32(q), ra1), la, 0);
        let a0 = subgroupBroadcast(al0, 0u);
        x0_0 += a0.x * b0_0; x0_0 += a0.y * b0_1; x0_0 += a0.z * b0_2; x0_0 += a0.w * b0_3;
        let a1 = subgroupBroadcast(al0, 1u);
        x1_0 += a1.x * b0_0; x1_0 += a1.y * b0_1; x1_0 += a1.z * b0_2; x1_0 += a1.w * b0_3;
        let a2 = subgroupBroadcast(al0, 2u);
        x2_0 += a2.x * b0_0; x2_0 += a2.y * b0_1; x2_0 += a2.z * b0_2; x2_0 += a2.w * b0_3;
        let a3 = subgroupBroadcast(al0, 3u);
        x3_0 += a3.x * b0_0; x3_0 += a3.y * b0_1; x3_0 += a3.z * b0_2; x3_0 += a3.w * b0_3;
        let a4 = subgroupBroadcast(al0, 4u);
        x4_0 += a4.x * b0_0; x4_0 += a4.y * b0_1; x4_0 += a4.z * b0_2; x4_0 += a4.w * b0_3;
        let a5 = subgroupBroadcast(al0, 5u);
        x5_0 += a5.x * b0_0; x5_0 += a5.y * b0_1; x5_0 += a5.z * b0_2; x5_0 += a5.w * b0_3;
        let a6 = subgroupBroadcast(al0, 6u);
        x6_0 += a6.x * b0_0; x6_0 += a6.y * b0_1; x6_0 += a6.z * b0_2; x6_0 += a6.w * b0_3;
        let a7 = subgroupBroadcast(al0, 7u);
        x7_0 += a7.x * b0_0; x7_0 += a7.y * b0_1; x7_0 += a7.z * b0_2; x7_0 += a7.w * b0_3;
        let a8 = subgroupBroadcast(al1, 0u);
        x8_0 += a8.x * b0_0; x8_0 += a8.y * b0_1; x8_0 += a8.z * b0_2; x8_0 += a8.w * b0_3;
        let a9 = subgroupBroadcast(al1, 1u);
        x9_0 += a9.x * b0_0; x9_0 += a9.y * b0_1; x9_0 += a9.z * b0_2; x9_0 += a9.w * b0_3;
        let a10 = subgroupBroadcast(al1, 2u);
        x10_0 += a10.x * b0_0; x10_0 += a10.y * b0_1; x10_0 += a10.z * b0_2; x10_0 += a10.w * b0_3;
        let a11 = subgroupBroadcast(al1, 3u);
        x11_0 += a11.x * b0_0; x11_0 += a11.y * b0_1; x11_0 += a11.z * b0_2; x11_0 += a11.w * b0_3;
        let a12 = subgroupBroadcast(al1, 4u);
        x12_0 += a12.x * b0_0; x12_0 += a12.y * b0_1; x12_0 += a12.z * b0_2; x12_0 += a12.w * b0_3;
        let a13 = subgroupBroadcast(al1, 5u);
        x13_0 += a13.x * b0_0; x13_0 += a13.y * b0_1; x13_0 += a13.z * b0_2; x13_0 += a13.w * b0_3;
        let a14 = subgroupBroadcast(al1, 6u);
        x14_0 += a14.x * b0_0; x14_0 += a14.y * b0_1; x14_0 += a14.z * b0_2; x14_0 += a14.w * b0_3;
        let a15 = subgroupBroadcast(al1, 7u);
        x15_0 += a15.x * b0_0; x15_0 += a15.y * b0_1; x15_0 += a15.z * b0_2; x15_0 += a15.w * b0_3;
    }
    let zo = T.c_off + wid.z * T.c_zstride;
    let bc0 = col_bias(nq0 + 0u);
    let br0 = row_bias(m0 + 0u);
    put_tex(zo, m0 + 0u, nq0 + 0u, epi_tex(x0_0, bc0, br0));
    let br1 = row_bias(m0 + 1u);
    put_tex(zo, m0 + 1u, nq0 + 0u, epi_tex(x1_0, bc0, br1));
    let br2 = row_bias(m0 + 2u);
    put_tex(zo, m0 + 2u, nq0 + 0u, epi_tex(x2_0, bc0, br2));
    let br3 = row_bias(m0 + 3u);
    put_tex(zo, m0 + 3u, nq0 + 0u, epi_tex(x3_0, bc0, br3));
    let br4 = row_bias(m0 + 4u);
    put_tex(zo, m0 + 4u, nq0 + 0u, epi_tex(x4_0, bc0, br4));
    let br5 = row_bias(m0 + 5u);
    put_tex(zo, m0 + 5u, nq0 + 0u, epi_tex(x5_0, bc0, br5));
    let br6 = row_bias(m0 + 6u);
    put_tex(zo, m0 + 6u, nq0 + 0u, epi_tex(x6_0, bc0, br6));
    let br7 = row_bias(m0 + 7u);
    put_tex(zo, m0 + 7u, nq0 + 0u, epi_tex(x7_0, bc0, br7));
    let br8 = row_bias(m0 + 8u);
    put_tex(zo, m0 + 8u, nq0 + 0u, epi_tex(x8_0, bc0, br8));
    let br9 = row_bias(m0 + 9u);
    put_tex(zo, m0 + 9u, nq0 + 0u, epi_tex(x9_0, bc0, br9));
    let br10 = row_bias(m0 + 10u);
    put_tex(zo, m0 + 10u, nq0 + 0u, epi_tex(x10_0, bc0, br10));
    let br11 = row_bias(m0 + 11u);
    put_tex(zo, m0 + 11u, nq0 + 0u, epi_tex(x11_0, bc0, br11));
    let br12 = row_bias(m0 + 12u);
    put_tex(zo, m0 + 12u, nq0 + 0u, epi_tex(x12_0, bc0, br12));
    let br13 = row_bias(m0 + 13u);
    put_tex(zo, m0 + 13u, nq0 + 0u, epi_tex(x13_0, bc0, br13));
    let br14 = row_bias(m0 + 14u);
    put_tex(zo, m0 + 14u, nq0 + 0u, epi_tex(x14_0, bc0, br14));
    let br15 = row_bias(m0 + 15u);
    put_tex(zo, m0 + 15u, nq0 + 0u, epi_tex(x15_0, bc0, br15));
}
// mm_tex_16x32v (vec4 stores): one workgroup = one subgroup of 8 lanes covers 16 rows x 32 columns; lane l owns all
// 16 rows x its own 4 columns (1 vec4 accumulators per row). Per K step of 4, lane l fetches
// rows l, l+8, .. of A (broadcast to the others with subgroupBroadcast) and its own 1 x 4 texels
// of B: 6 texture loads for 256 multiply-adds (8 lanes wide).
@compute @workgroup_size(8, 1, 1)
fn mm_tex_16x32v(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lane = lid.x % 8u;
    let la = i32(T.a_layer + wid.z * T.a_lstep);
    let lb = i32(T.b_layer + wid.z * T.b_lstep);
    let m0 = wid.y * 16u;
    let nq0 = (wid.x * 8u + lane) * 1u;
    let ra0 = i32(min(m0 + lane + 0u, T.M - 1u));
    let ra1 = i32(min(m0 + lane + 8u, T.M - 1u));
    let cq0 = i32(min(nq0 + 0u, T.NQ - 1u));
    var x0_0 = vec4<f32>(0.0);
    var x1_0 = vec4<f32>(0.0);
    var x2_0 = vec4<f32>(0.0);
    var x3_0 = vec4<f32>(0.0);
    var x4_0 = vec4<f32>(0.0);
    var x5_0 = vec4<f32>(0.0);
    var x6_0 = vec4<f32>(0.0);
    var x7_0 = vec4<f32>(0.0);
    var x8_0 = vec4<f32>(0.0);
    var x9_0 = vec4<f32>(0.0);
    var x10_0 = vec4<f32>(0.0);
    var x11_0 = vec4<f32>(0.0);
    var x12_0 = vec4<f32>(0.0);
    var x13_0 = vec4<f32>(0.0);
    var x14_0 = vec4<f32>(0.0);
    var x15_0 = vec4<f32>(0.0);
    for (var q = 0u; q < T.KQ; q++) {
        let k = i32(4u * q);
        let b0_0 = textureLoad(TB, vec2<i32>(cq0, k + 0), lb, 0);
        let b0_1 = textureLoad(TB, vec2<i32>(cq0, k + 1), lb, 0);
        let b0_2 = textureLoad(TB, vec2<i32>(cq0, k + 2), lb, 0);
        let b0_3 = textureLoad(TB, vec2<i32>(cq0, k + 3), lb, 0);
        let al0 = textureLoad(TA, vec2<i32>(i32(q), ra0), la, 0);
        let al1 = textureLoad(TA, vec2<i32>(i32(q), ra1), la, 0);
        let a0 = subgroupBroadcast(al0, 0u);
        x0_0 += a0.x * b0_0; x0_0 += a0.y * b0_1; x0_0 += a0.z * b0_2; x0_0 += a0.w * b0_3;
        let a1 = subgroupBroadcast(al0, 1u);
        x1_0 += a1.x * b0_0; x1_0 += a1.y * b0_1; x1_0 += a1.z * b0_2; x1_0 += a1.w * b0_3;
        let a2 = subgroupBroadcast(al0, 2u);
        x2_0 += a2.x * b0_0; x2_0 += a2.y * b0_1; x2_0 += a2.z * b0_2; x2_0 += a2.w * b0_3;
        let a3 = subgroupBroadcast(al0, 3u);
        x3_0 += a3.x * b0_0; x3_0 += a3.y * b0_1; x3_0 += a3.z * b0_2; x3_0 += a3.w * b0_3;
        let a4 = subgroupBroadcast(al0, 4u);
        x4_0 += a4.x * b0_0; x4_0 += a4.y * b0_1; x4_0 += a4.z * b0_2; x4_0 += a4.w * b0_3;
        let a5 = subgroupBroadcast(al0, 5u);
        x5_0 += a5.x * b0_0; x5_0 += a5.y * b0_1; x5_0 += a5.z * b0_2; x5_0 += a5.w * b0_3;
        let a6 = subgroupBroadcast(al0, 6u);
        x6_0 += a6.x * b0_0; x6_0 += a6.y * b0_1; x6_0 += a6.z * b0_2; x6_0 += a6.w * b0_3;
        let a7 = subgroupBroadcast(al0, 7u);
        x7_0 += a7.x * b0_0; x7_0 += a7.y * b0_1; x7_0 += a7.z * b0_2; x7_0 += a7.w * b0_3;
        let a8 = subgroupBroadcast(al1, 0u);
        x8_0 += a8.x * b0_0; x8_0 += a8.y * b0_1; x8_0 += a8.z * b0_2; x8_0 += a8.w * b0_3;
        let a9 = subgroupBroadcast(al1, 1u);
        x9_0 += a9.x * b0_0; x9_0 += a9.y * b0_1; x9_0 += a9.z * b0_2; x9_0 += a9.w * b0_3;
        let a10 = subgroupBroadcast(al1, 2u);
        x10_0 += a10.x * b0_0; x10_0 += a10.y * b0_1; x10_0 += a10.z * b0_2; x10_0 += a10.w * b0_3;
        let a11 = subgroupBroadcast(al1, 3u);
        x11_0 += a11.x * b0_0; x11_0 += a11.y * b0_1; x11_0 += a11.z * b0_2; x11_0 += a11.w * b0_3;
        let a12 = subgroupBroadcast(al1, 4u);
        x12_0 += a12.x * b0_0; x12_0 += a12.y * b0_1; x12_0 += a12.z * b0_2; x12_0 += a12.w * b0_3;
        let a13 = subgroupBroadcast(al1, 5u);
        x13_0 += a13.x * b0_0; x13_0 += a13.y * b0_1; x13_0 += a13.z * b0_2; x13_0 += a13.w * b0_3;
        let a14 = subgroupBroadcast(al1, 6u);
        x14_0 += a14.x * b0_0; x14_0 += a14.y * b0_1; x14_0 += a14.z * b0_2; x14_0 += a14.w * b0_3;
        let a15 = subgroupBroadcast(al1, 7u);
        x15_0 += a15.x * b0_0; x15_0 += a15.y * b0_1; x15_0 += a15.z * b0_2; x15_0 += a15.w * b0_3;
    }
    let zo = T.c_off + wid.z * T.c_zstride;
    let bc0 = col_bias(nq0 + 0u);
    let br0 = row_bias(m0 + 0u);
    put_tex4(zo, m0 + 0u, nq0 + 0u, epi_tex(x0_0, bc0, br0));
    let br1 = row_bias(m0 + 1u);
    put_tex4(zo, m0 + 1u, nq0 + 0u, epi_tex(x1_0, bc0, br1));
    let br2 = row_bias(m0 + 2u);
    put_tex4(zo, m0 + 2u, nq0 + 0u, epi_tex(x2_0, bc0, br2));
    let br3 = row_bias(m0 + 3u);
    put_tex4(zo, m0 + 3u, nq0 + 0u, epi_tex(x3_0, bc0, br3));
    let br4 = row_bias(m0 + 4u);
    put_tex4(zo, m0 + 4u, nq0 + 0u, epi_tex(x4_0, bc0, br4));
    let br5 = row_bias(m0 + 5u);
    put_tex4(zo, m0 + 5u, nq0 + 0u, epi_tex(x5_0, bc0, br5));
    let br6 = row_bias(m0 + 6u);
    put_tex4(zo, m0 + 6u, nq0 + 0u, epi_tex(x6_0, bc0, br6));
    let br7 = row_bias(m0 + 7u);
    put_tex4(zo, m0 + 7u, nq0 + 0u, epi_tex(x7_0, bc0, br7));
    let br8 = row_bias(m0 + 8u);
    put_tex4(zo, m0 + 8u, nq0 + 0u, epi_tex(x8_0, bc0, br8));
    let br9 = row_bias(m0 + 9u);
    put_tex4(zo, m0 + 9u, nq0 + 0u, epi_tex(x9_0, bc0, br9));
    let br10 = row_bias(m0 + 10u);
    put_tex4(zo, m0 + 10u, nq0 + 0u, epi_tex(x10_0, bc0, br10));
    let br11 = row_bias(m0 + 11u);
    put_tex4(zo, m0 + 11u, nq0 + 0u, epi_tex(x11_0, bc0, br11));
    let br12 = row_bias(m0 + 12u);
    put_tex4(zo, m0 + 12u, nq0 + 0u, epi_tex(x12_0, bc0, br12));
    let br13 = row_bias(m0 + 13u);
    put_tex4(zo, m0 + 13u, nq0 + 0u, epi_tex(x13_0, bc0, br13));
    let br14 = row_bias(m0 + 14u);
    put_tex4(zo, m0 + 14u, nq0 + 0u, epi_tex(x14_0, bc0, br14));
    let br15 = row_bias(m0 + 15u);
    put_tex4(zo, m0 + 15u, nq0 + 0u, epi_tex(x15_0, bc0, br15));
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
}

@group(0) @binding(5) var<uniform> PK: PackParams;
@group(0) @binding(6) var<storage, read> SRC: array<f32>;
@group(0) @binding(7) var DST: texture_storage_2d_array<rgba32float, write>;
@group(0) @binding(8) var XT: texture_2d_array<f32>;

@compute @workgroup_size(8, 8, 1)
fn pack(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    if (x >= PK.width || y >= PK.height) {
        return;
    }
    var v = vec4<f32>(0.0);
    if (y < PK.rows) {
        let base = PK.off + gid.z * PK.s_layer + y * PK.s_row;
        for (var t = 0u; t < 4u; t++) {
            let col = 4u * x + t;
            if (col < PK.cols) {
                v[t] = SRC[base + col * PK.s_col];
            }
        }
    }
    textureStore(DST, vec2<u32>(x, y), PK.layer + gid.z, v);
}

@compute @workgroup_size(8, 8, 1)
fn pack_im2col(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    if (x >= PK.width || y >= PK.height) {
        return;
    }
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
            let tx = textureLoad(XT, vec2<i32>(max(ix, 0) / 4, max(iy, 0)), c, 0);
            v[t] = select(0.0, tx[u32(max(ix, 0)) % 4u], inside);
        }
    }
    textureStore(DST, vec2<u32>(x, y), PK.layer, v);
}

