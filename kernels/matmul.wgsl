// GEMM: C[z] = act(alpha * A[z] @ B[z] + bias), per batch z, f32 accumulation.
//
// Element (m, k) of A lies at a_off + batch_a(z) + m * sam + k * sak; element (k, n) of B at
// b_off + batch_b(z) + k * sbk + n * sbn (trans_b and shared weights are just strides); C is dense
// row-major [M, N] per batch at c_off + z * M * N. Batch index z = z_base + workgroup z is split into
// up to four batch dimensions e0..e3 whose A/B strides are 0 where broadcast.
//
// Entry points (variants, chosen on the host):
//   mm_scalar : any strides and sizes; 4x4 outputs per invocation, scalar loads (the fallback).
//   mm_vec    : software devices; row-major A and B with K % 4 == 0 and N % 4 == 0; 32x32 outputs
//               per invocation, A read as vec4 along K, B as vec4 along N, no workgroup memory.
//   mm_vec_tb : software devices; A row-major and B given as [N, K] (trans_b), K % 4 == 0; 4x4
//               outputs per invocation as vec4 dot products along K.
//   mm_sg     : software devices with subgroups of exactly 8 (lavapipe); like mm_vec, 64x128 block per
//               subgroup, A shared through subgroupBroadcast. Lives after the subgroup marker below.
//   mm_tiled  : hardware GPUs; 64x64 block per 16x16 workgroup staged through workgroup memory,
//               any strides and sizes.
// Software devices with subgroups of 8 normally take the texture GEMM instead (kernels/gemm_tex.wgsl,
// MatMulVariant::Tex); the kernels here remain for other software devices and when it does not fit.
// Rows/columns past the edge are clamped for loads (always in bounds) and skipped on stores.

struct Params {
    M: u32,
    N: u32,
    K: u32,
    z_base: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,
    has_bias: u32,
    sam: u32,
    sak: u32,
    sbk: u32,
    sbn: u32,
    act: u32,
    act_alpha: f32,
    alpha: f32,
    _pad0: u32,
    e0: u32,
    e1: u32,
    e2: u32,
    e3: u32,
    sa0: u32,
    sa1: u32,
    sa2: u32,
    sa3: u32,
    sb0: u32,
    sb1: u32,
    sb2: u32,
    sb3: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
// Scalar views (mm_scalar, mm_tiled).
@group(0) @binding(1) var<storage, read> As: array<f32>;
@group(0) @binding(2) var<storage, read> Bs: array<f32>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read_write> Cs: array<f32>;
// vec4 views of the same bindings (mm_vec, mm_vec_tb); only one view is used per entry point.
@group(0) @binding(1) var<storage, read> A4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> B4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> C4: array<vec4<f32>>;

// (A batch offset, B batch offset, C batch offset) in elements, window offsets included.
fn batch_offsets(zl: u32) -> vec3<u32> {
    var r = P.z_base + zl;
    let i3 = r % P.e3;
    r = r / P.e3;
    let i2 = r % P.e2;
    r = r / P.e2;
    let i1 = r % P.e1;
    let i0 = r / P.e1;
    let oa = P.a_off + i0 * P.sa0 + i1 * P.sa1 + i2 * P.sa2 + i3 * P.sa3;
    let ob = P.b_off + i0 * P.sb0 + i1 * P.sb1 + i2 * P.sb2 + i3 * P.sb3;
    let oc = P.c_off + zl * P.M * P.N;
    return vec3<u32>(oa, ob, oc);
}

fn epilogue(acc: f32, n: u32) -> f32 {
    var v = P.alpha * acc;
    if (P.has_bias != 0u) {
        v = v + BIAS[n];
    }
    return apply_act(v, P.act, P.act_alpha);
}

fn epilogue4(acc: vec4<f32>, n: u32) -> vec4<f32> {
    var v = P.alpha * acc;
    if (P.has_bias != 0u) {
        v = v + vec4<f32>(BIAS[n], BIAS[n + 1u], BIAS[n + 2u], BIAS[n + 3u]);
    }
    return vec4<f32>(
        apply_act(v.x, P.act, P.act_alpha),
        apply_act(v.y, P.act, P.act_alpha),
        apply_act(v.z, P.act, P.act_alpha),
        apply_act(v.w, P.act, P.act_alpha),
    );
}

// ---------------------------------------------------------------------------------------------
// mm_scalar: 4x4 outputs per invocation, 8x8 invocations per workgroup (32x32 block).

@compute @workgroup_size(8, 8, 1)
fn mm_scalar(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let o = batch_offsets(wid.z);
    let m0 = (wid.y * 8u + lid.y) * 4u;
    let n0 = (wid.x * 8u + lid.x) * 4u;
    if (m0 >= P.M || n0 >= P.N) {
        return;
    }
    var ra: array<u32, 4>;
    var cb: array<u32, 4>;
    for (var i = 0u; i < 4u; i++) {
        ra[i] = o.x + min(m0 + i, P.M - 1u) * P.sam;
        cb[i] = o.y + min(n0 + i, P.N - 1u) * P.sbn;
    }
    var acc: array<vec4<f32>, 4>;
    for (var k = 0u; k < P.K; k++) {
        let ka = k * P.sak;
        let kb = k * P.sbk;
        let b = vec4<f32>(Bs[cb[0] + kb], Bs[cb[1] + kb], Bs[cb[2] + kb], Bs[cb[3] + kb]);
        acc[0] += As[ra[0] + ka] * b;
        acc[1] += As[ra[1] + ka] * b;
        acc[2] += As[ra[2] + ka] * b;
        acc[3] += As[ra[3] + ka] * b;
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + i;
        if (m < P.M) {
            for (var j = 0u; j < 4u; j++) {
                let n = n0 + j;
                if (n < P.N) {
                    Cs[o.z + m * P.N + n] = epilogue(acc[i][j], n);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// mm_vec: one workgroup of 8 invocations (one SIMD group on lavapipe) covers 32 rows x 256 columns;
// each invocation owns 32 rows x 32 columns (8 vec4 accumulators per row, 256 in all), written out
// without arrays because lavapipe spills indexed private arrays to memory. Rows depend on the
// workgroup only, so A loads have the same address in every lane (lavapipe's cheap uniform path);
// B is read as vec4 along N. Each K step of 4 is a mat4x4 (4 rows of B) times a vec4 (A along K).
// Rows x columns per invocation, GFLOP per CPU-second on lavapipe (512^3 or 1024^3, loaded machine):
// 16x16 1.5, 16x32 2.3, 32x16 1.9-2.4, 16x64 2.5, 32x32 3.2; 64x32 gave no result within 200 s.
// Needs sak == 1, sbn == 1, and K, N and every offset and stride multiples of 4 (checked on the host).

// Store one vec4 of outputs (column group j of the invocation) unless it lies past the last column.
fn put4(w: u32, n0: u32, j: u32, v: vec4<f32>) {
    let n = n0 + 4u * j;
    if (n < P.N) {
        C4[w + j] = epilogue4(v, n);
    }
}

@compute @workgroup_size(8, 1, 1)
fn mm_vec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let o = batch_offsets(wid.z);
    let m0 = wid.y * 32u;
    let n0 = (wid.x * 8u + lid.x) * 32u;
    if (n0 >= P.N) {
        return;
    }
    // vec4 index of each A row (clamped at the bottom edge) and of each B column group.
    let lastm = vec4<u32>(P.M - 1u);
    let rows = vec4<u32>(m0) + vec4<u32>(0u, 1u, 2u, 3u);
    let sa4 = P.sam / 4u;
    let ra = o.x / 4u + min(rows, lastm) * sa4;
    let ra1 = o.x / 4u + min(rows + vec4<u32>(4u), lastm) * sa4;
    let ra2 = o.x / 4u + min(rows + vec4<u32>(8u), lastm) * sa4;
    let ra3 = o.x / 4u + min(rows + vec4<u32>(12u), lastm) * sa4;
    let ra4 = o.x / 4u + min(rows + vec4<u32>(16u), lastm) * sa4;
    let ra5 = o.x / 4u + min(rows + vec4<u32>(20u), lastm) * sa4;
    let ra6 = o.x / 4u + min(rows + vec4<u32>(24u), lastm) * sa4;
    let ra7 = o.x / 4u + min(rows + vec4<u32>(28u), lastm) * sa4;
    let cb = (o.y + min(vec4<u32>(n0) + vec4<u32>(0u, 4u, 8u, 12u), vec4<u32>(P.N - 4u))) / 4u;
    let cb1 = (o.y + min(vec4<u32>(n0) + vec4<u32>(16u, 20u, 24u, 28u), vec4<u32>(P.N - 4u))) / 4u;
    let bstep = P.sbk / 4u;
    var x0_0 = vec4<f32>(0.0); var x0_1 = vec4<f32>(0.0); var x0_2 = vec4<f32>(0.0); var x0_3 = vec4<f32>(0.0); var x0_4 = vec4<f32>(0.0); var x0_5 = vec4<f32>(0.0); var x0_6 = vec4<f32>(0.0); var x0_7 = vec4<f32>(0.0);
    var x1_0 = vec4<f32>(0.0); var x1_1 = vec4<f32>(0.0); var x1_2 = vec4<f32>(0.0); var x1_3 = vec4<f32>(0.0); var x1_4 = vec4<f32>(0.0); var x1_5 = vec4<f32>(0.0); var x1_6 = vec4<f32>(0.0); var x1_7 = vec4<f32>(0.0);
    var x2_0 = vec4<f32>(0.0); var x2_1 = vec4<f32>(0.0); var x2_2 = vec4<f32>(0.0); var x2_3 = vec4<f32>(0.0); var x2_4 = vec4<f32>(0.0); var x2_5 = vec4<f32>(0.0); var x2_6 = vec4<f32>(0.0); var x2_7 = vec4<f32>(0.0);
    var x3_0 = vec4<f32>(0.0); var x3_1 = vec4<f32>(0.0); var x3_2 = vec4<f32>(0.0); var x3_3 = vec4<f32>(0.0); var x3_4 = vec4<f32>(0.0); var x3_5 = vec4<f32>(0.0); var x3_6 = vec4<f32>(0.0); var x3_7 = vec4<f32>(0.0);
    var x4_0 = vec4<f32>(0.0); var x4_1 = vec4<f32>(0.0); var x4_2 = vec4<f32>(0.0); var x4_3 = vec4<f32>(0.0); var x4_4 = vec4<f32>(0.0); var x4_5 = vec4<f32>(0.0); var x4_6 = vec4<f32>(0.0); var x4_7 = vec4<f32>(0.0);
    var x5_0 = vec4<f32>(0.0); var x5_1 = vec4<f32>(0.0); var x5_2 = vec4<f32>(0.0); var x5_3 = vec4<f32>(0.0); var x5_4 = vec4<f32>(0.0); var x5_5 = vec4<f32>(0.0); var x5_6 = vec4<f32>(0.0); var x5_7 = vec4<f32>(0.0);
    var x6_0 = vec4<f32>(0.0); var x6_1 = vec4<f32>(0.0); var x6_2 = vec4<f32>(0.0); var x6_3 = vec4<f32>(0.0); var x6_4 = vec4<f32>(0.0); var x6_5 = vec4<f32>(0.0); var x6_6 = vec4<f32>(0.0); var x6_7 = vec4<f32>(0.0);
    var x7_0 = vec4<f32>(0.0); var x7_1 = vec4<f32>(0.0); var x7_2 = vec4<f32>(0.0); var x7_3 = vec4<f32>(0.0); var x7_4 = vec4<f32>(0.0); var x7_5 = vec4<f32>(0.0); var x7_6 = vec4<f32>(0.0); var x7_7 = vec4<f32>(0.0);
    var x8_0 = vec4<f32>(0.0); var x8_1 = vec4<f32>(0.0); var x8_2 = vec4<f32>(0.0); var x8_3 = vec4<f32>(0.0); var x8_4 = vec4<f32>(0.0); var x8_5 = vec4<f32>(0.0); var x8_6 = vec4<f32>(0.0); var x8_7 = vec4<f32>(0.0);
    var x9_0 = vec4<f32>(0.0); var x9_1 = vec4<f32>(0.0); var x9_2 = vec4<f32>(0.0); var x9_3 = vec4<f32>(0.0); var x9_4 = vec4<f32>(0.0); var x9_5 = vec4<f32>(0.0); var x9_6 = vec4<f32>(0.0); var x9_7 = vec4<f32>(0.0);
    var x10_0 = vec4<f32>(0.0); var x10_1 = vec4<f32>(0.0); var x10_2 = vec4<f32>(0.0); var x10_3 = vec4<f32>(0.0); var x10_4 = vec4<f32>(0.0); var x10_5 = vec4<f32>(0.0); var x10_6 = vec4<f32>(0.0); var x10_7 = vec4<f32>(0.0);
    var x11_0 = vec4<f32>(0.0); var x11_1 = vec4<f32>(0.0); var x11_2 = vec4<f32>(0.0); var x11_3 = vec4<f32>(0.0); var x11_4 = vec4<f32>(0.0); var x11_5 = vec4<f32>(0.0); var x11_6 = vec4<f32>(0.0); var x11_7 = vec4<f32>(0.0);
    var x12_0 = vec4<f32>(0.0); var x12_1 = vec4<f32>(0.0); var x12_2 = vec4<f32>(0.0); var x12_3 = vec4<f32>(0.0); var x12_4 = vec4<f32>(0.0); var x12_5 = vec4<f32>(0.0); var x12_6 = vec4<f32>(0.0); var x12_7 = vec4<f32>(0.0);
    var x13_0 = vec4<f32>(0.0); var x13_1 = vec4<f32>(0.0); var x13_2 = vec4<f32>(0.0); var x13_3 = vec4<f32>(0.0); var x13_4 = vec4<f32>(0.0); var x13_5 = vec4<f32>(0.0); var x13_6 = vec4<f32>(0.0); var x13_7 = vec4<f32>(0.0);
    var x14_0 = vec4<f32>(0.0); var x14_1 = vec4<f32>(0.0); var x14_2 = vec4<f32>(0.0); var x14_3 = vec4<f32>(0.0); var x14_4 = vec4<f32>(0.0); var x14_5 = vec4<f32>(0.0); var x14_6 = vec4<f32>(0.0); var x14_7 = vec4<f32>(0.0);
    var x15_0 = vec4<f32>(0.0); var x15_1 = vec4<f32>(0.0); var x15_2 = vec4<f32>(0.0); var x15_3 = vec4<f32>(0.0); var x15_4 = vec4<f32>(0.0); var x15_5 = vec4<f32>(0.0); var x15_6 = vec4<f32>(0.0); var x15_7 = vec4<f32>(0.0);
    var x16_0 = vec4<f32>(0.0); var x16_1 = vec4<f32>(0.0); var x16_2 = vec4<f32>(0.0); var x16_3 = vec4<f32>(0.0); var x16_4 = vec4<f32>(0.0); var x16_5 = vec4<f32>(0.0); var x16_6 = vec4<f32>(0.0); var x16_7 = vec4<f32>(0.0);
    var x17_0 = vec4<f32>(0.0); var x17_1 = vec4<f32>(0.0); var x17_2 = vec4<f32>(0.0); var x17_3 = vec4<f32>(0.0); var x17_4 = vec4<f32>(0.0); var x17_5 = vec4<f32>(0.0); var x17_6 = vec4<f32>(0.0); var x17_7 = vec4<f32>(0.0);
    var x18_0 = vec4<f32>(0.0); var x18_1 = vec4<f32>(0.0); var x18_2 = vec4<f32>(0.0); var x18_3 = vec4<f32>(0.0); var x18_4 = vec4<f32>(0.0); var x18_5 = vec4<f32>(0.0); var x18_6 = vec4<f32>(0.0); var x18_7 = vec4<f32>(0.0);
    var x19_0 = vec4<f32>(0.0); var x19_1 = vec4<f32>(0.0); var x19_2 = vec4<f32>(0.0); var x19_3 = vec4<f32>(0.0); var x19_4 = vec4<f32>(0.0); var x19_5 = vec4<f32>(0.0); var x19_6 = vec4<f32>(0.0); var x19_7 = vec4<f32>(0.0);
    var x20_0 = vec4<f32>(0.0); var x20_1 = vec4<f32>(0.0); var x20_2 = vec4<f32>(0.0); var x20_3 = vec4<f32>(0.0); var x20_4 = vec4<f32>(0.0); var x20_5 = vec4<f32>(0.0); var x20_6 = vec4<f32>(0.0); var x20_7 = vec4<f32>(0.0);
    var x21_0 = vec4<f32>(0.0); var x21_1 = vec4<f32>(0.0); var x21_2 = vec4<f32>(0.0); var x21_3 = vec4<f32>(0.0); var x21_4 = vec4<f32>(0.0); var x21_5 = vec4<f32>(0.0); var x21_6 = vec4<f32>(0.0); var x21_7 = vec4<f32>(0.0);
    var x22_0 = vec4<f32>(0.0); var x22_1 = vec4<f32>(0.0); var x22_2 = vec4<f32>(0.0); var x22_3 = vec4<f32>(0.0); var x22_4 = vec4<f32>(0.0); var x22_5 = vec4<f32>(0.0); var x22_6 = vec4<f32>(0.0); var x22_7 = vec4<f32>(0.0);
    var x23_0 = vec4<f32>(0.0); var x23_1 = vec4<f32>(0.0); var x23_2 = vec4<f32>(0.0); var x23_3 = vec4<f32>(0.0); var x23_4 = vec4<f32>(0.0); var x23_5 = vec4<f32>(0.0); var x23_6 = vec4<f32>(0.0); var x23_7 = vec4<f32>(0.0);
    var x24_0 = vec4<f32>(0.0); var x24_1 = vec4<f32>(0.0); var x24_2 = vec4<f32>(0.0); var x24_3 = vec4<f32>(0.0); var x24_4 = vec4<f32>(0.0); var x24_5 = vec4<f32>(0.0); var x24_6 = vec4<f32>(0.0); var x24_7 = vec4<f32>(0.0);
    var x25_0 = vec4<f32>(0.0); var x25_1 = vec4<f32>(0.0); var x25_2 = vec4<f32>(0.0); var x25_3 = vec4<f32>(0.0); var x25_4 = vec4<f32>(0.0); var x25_5 = vec4<f32>(0.0); var x25_6 = vec4<f32>(0.0); var x25_7 = vec4<f32>(0.0);
    var x26_0 = vec4<f32>(0.0); var x26_1 = vec4<f32>(0.0); var x26_2 = vec4<f32>(0.0); var x26_3 = vec4<f32>(0.0); var x26_4 = vec4<f32>(0.0); var x26_5 = vec4<f32>(0.0); var x26_6 = vec4<f32>(0.0); var x26_7 = vec4<f32>(0.0);
    var x27_0 = vec4<f32>(0.0); var x27_1 = vec4<f32>(0.0); var x27_2 = vec4<f32>(0.0); var x27_3 = vec4<f32>(0.0); var x27_4 = vec4<f32>(0.0); var x27_5 = vec4<f32>(0.0); var x27_6 = vec4<f32>(0.0); var x27_7 = vec4<f32>(0.0);
    var x28_0 = vec4<f32>(0.0); var x28_1 = vec4<f32>(0.0); var x28_2 = vec4<f32>(0.0); var x28_3 = vec4<f32>(0.0); var x28_4 = vec4<f32>(0.0); var x28_5 = vec4<f32>(0.0); var x28_6 = vec4<f32>(0.0); var x28_7 = vec4<f32>(0.0);
    var x29_0 = vec4<f32>(0.0); var x29_1 = vec4<f32>(0.0); var x29_2 = vec4<f32>(0.0); var x29_3 = vec4<f32>(0.0); var x29_4 = vec4<f32>(0.0); var x29_5 = vec4<f32>(0.0); var x29_6 = vec4<f32>(0.0); var x29_7 = vec4<f32>(0.0);
    var x30_0 = vec4<f32>(0.0); var x30_1 = vec4<f32>(0.0); var x30_2 = vec4<f32>(0.0); var x30_3 = vec4<f32>(0.0); var x30_4 = vec4<f32>(0.0); var x30_5 = vec4<f32>(0.0); var x30_6 = vec4<f32>(0.0); var x30_7 = vec4<f32>(0.0);
    var x31_0 = vec4<f32>(0.0); var x31_1 = vec4<f32>(0.0); var x31_2 = vec4<f32>(0.0); var x31_3 = vec4<f32>(0.0); var x31_4 = vec4<f32>(0.0); var x31_5 = vec4<f32>(0.0); var x31_6 = vec4<f32>(0.0); var x31_7 = vec4<f32>(0.0);
    var bi = 0u;
    for (var q = 0u; q < P.K / 4u; q++) {
        // Column j of the product gains B[k..k+4, cols] * A[row, k..k+4] as mat4x4 * vec4.
        let b0 = mat4x4<f32>(B4[cb.x + bi], B4[cb.x + bi + bstep], B4[cb.x + bi + 2u * bstep], B4[cb.x + bi + 3u * bstep]);
        let b1 = mat4x4<f32>(B4[cb.y + bi], B4[cb.y + bi + bstep], B4[cb.y + bi + 2u * bstep], B4[cb.y + bi + 3u * bstep]);
        let b2 = mat4x4<f32>(B4[cb.z + bi], B4[cb.z + bi + bstep], B4[cb.z + bi + 2u * bstep], B4[cb.z + bi + 3u * bstep]);
        let b3 = mat4x4<f32>(B4[cb.w + bi], B4[cb.w + bi + bstep], B4[cb.w + bi + 2u * bstep], B4[cb.w + bi + 3u * bstep]);
        let b4 = mat4x4<f32>(B4[cb1.x + bi], B4[cb1.x + bi + bstep], B4[cb1.x + bi + 2u * bstep], B4[cb1.x + bi + 3u * bstep]);
        let b5 = mat4x4<f32>(B4[cb1.y + bi], B4[cb1.y + bi + bstep], B4[cb1.y + bi + 2u * bstep], B4[cb1.y + bi + 3u * bstep]);
        let b6 = mat4x4<f32>(B4[cb1.z + bi], B4[cb1.z + bi + bstep], B4[cb1.z + bi + 2u * bstep], B4[cb1.z + bi + 3u * bstep]);
        let b7 = mat4x4<f32>(B4[cb1.w + bi], B4[cb1.w + bi + bstep], B4[cb1.w + bi + 2u * bstep], B4[cb1.w + bi + 3u * bstep]);
        let a0 = A4[ra.x + q];
        x0_0 += b0 * a0; x0_1 += b1 * a0; x0_2 += b2 * a0; x0_3 += b3 * a0; x0_4 += b4 * a0; x0_5 += b5 * a0; x0_6 += b6 * a0; x0_7 += b7 * a0;
        let a1 = A4[ra.y + q];
        x1_0 += b0 * a1; x1_1 += b1 * a1; x1_2 += b2 * a1; x1_3 += b3 * a1; x1_4 += b4 * a1; x1_5 += b5 * a1; x1_6 += b6 * a1; x1_7 += b7 * a1;
        let a2 = A4[ra.z + q];
        x2_0 += b0 * a2; x2_1 += b1 * a2; x2_2 += b2 * a2; x2_3 += b3 * a2; x2_4 += b4 * a2; x2_5 += b5 * a2; x2_6 += b6 * a2; x2_7 += b7 * a2;
        let a3 = A4[ra.w + q];
        x3_0 += b0 * a3; x3_1 += b1 * a3; x3_2 += b2 * a3; x3_3 += b3 * a3; x3_4 += b4 * a3; x3_5 += b5 * a3; x3_6 += b6 * a3; x3_7 += b7 * a3;
        let a4 = A4[ra1.x + q];
        x4_0 += b0 * a4; x4_1 += b1 * a4; x4_2 += b2 * a4; x4_3 += b3 * a4; x4_4 += b4 * a4; x4_5 += b5 * a4; x4_6 += b6 * a4; x4_7 += b7 * a4;
        let a5 = A4[ra1.y + q];
        x5_0 += b0 * a5; x5_1 += b1 * a5; x5_2 += b2 * a5; x5_3 += b3 * a5; x5_4 += b4 * a5; x5_5 += b5 * a5; x5_6 += b6 * a5; x5_7 += b7 * a5;
        let a6 = A4[ra1.z + q];
        x6_0 += b0 * a6; x6_1 += b1 * a6; x6_2 += b2 * a6; x6_3 += b3 * a6; x6_4 += b4 * a6; x6_5 += b5 * a6; x6_6 += b6 * a6; x6_7 += b7 * a6;
        let a7 = A4[ra1.w + q];
        x7_0 += b0 * a7; x7_1 += b1 * a7; x7_2 += b2 * a7; x7_3 += b3 * a7; x7_4 += b4 * a7; x7_5 += b5 * a7; x7_6 += b6 * a7; x7_7 += b7 * a7;
        let a8 = A4[ra2.x + q];
        x8_0 += b0 * a8; x8_1 += b1 * a8; x8_2 += b2 * a8; x8_3 += b3 * a8; x8_4 += b4 * a8; x8_5 += b5 * a8; x8_6 += b6 * a8; x8_7 += b7 * a8;
        let a9 = A4[ra2.y + q];
        x9_0 += b0 * a9; x9_1 += b1 * a9; x9_2 += b2 * a9; x9_3 += b3 * a9; x9_4 += b4 * a9; x9_5 += b5 * a9; x9_6 += b6 * a9; x9_7 += b7 * a9;
        let a10 = A4[ra2.z + q];
        x10_0 += b0 * a10; x10_1 += b1 * a10; x10_2 += b2 * a10; x10_3 += b3 * a10; x10_4 += b4 * a10; x10_5 += b5 * a10; x10_6 += b6 * a10; x10_7 += b7 * a10;
        let a11 = A4[ra2.w + q];
        x11_0 += b0 * a11; x11_1 += b1 * a11; x11_2 += b2 * a11; x11_3 += b3 * a11; x11_4 += b4 * a11; x11_5 += b5 * a11; x11_6 += b6 * a11; x11_7 += b7 * a11;
        let a12 = A4[ra3.x + q];
        x12_0 += b0 * a12; x12_1 += b1 * a12; x12_2 += b2 * a12; x12_3 += b3 * a12; x12_4 += b4 * a12; x12_5 += b5 * a12; x12_6 += b6 * a12; x12_7 += b7 * a12;
        let a13 = A4[ra3.y + q];
        x13_0 += b0 * a13; x13_1 += b1 * a13; x13_2 += b2 * a13; x13_3 += b3 * a13; x13_4 += b4 * a13; x13_5 += b5 * a13; x13_6 += b6 * a13; x13_7 += b7 * a13;
        let a14 = A4[ra3.z + q];
        x14_0 += b0 * a14; x14_1 += b1 * a14; x14_2 += b2 * a14; x14_3 += b3 * a14; x14_4 += b4 * a14; x14_5 += b5 * a14; x14_6 += b6 * a14; x14_7 += b7 * a14;
        let a15 = A4[ra3.w + q];
        x15_0 += b0 * a15; x15_1 += b1 * a15; x15_2 += b2 * a15; x15_3 += b3 * a15; x15_4 += b4 * a15; x15_5 += b5 * a15; x15_6 += b6 * a15; x15_7 += b7 * a15;
        let a16 = A4[ra4.x + q];
        x16_0 += b0 * a16; x16_1 += b1 * a16; x16_2 += b2 * a16; x16_3 += b3 * a16; x16_4 += b4 * a16; x16_5 += b5 * a16; x16_6 += b6 * a16; x16_7 += b7 * a16;
        let a17 = A4[ra4.y + q];
        x17_0 += b0 * a17; x17_1 += b1 * a17; x17_2 += b2 * a17; x17_3 += b3 * a17; x17_4 += b4 * a17; x17_5 += b5 * a17; x17_6 += b6 * a17; x17_7 += b7 * a17;
        let a18 = A4[ra4.z + q];
        x18_0 += b0 * a18; x18_1 += b1 * a18; x18_2 += b2 * a18; x18_3 += b3 * a18; x18_4 += b4 * a18; x18_5 += b5 * a18; x18_6 += b6 * a18; x18_7 += b7 * a18;
        let a19 = A4[ra4.w + q];
        x19_0 += b0 * a19; x19_1 += b1 * a19; x19_2 += b2 * a19; x19_3 += b3 * a19; x19_4 += b4 * a19; x19_5 += b5 * a19; x19_6 += b6 * a19; x19_7 += b7 * a19;
        let a20 = A4[ra5.x + q];
        x20_0 += b0 * a20; x20_1 += b1 * a20; x20_2 += b2 * a20; x20_3 += b3 * a20; x20_4 += b4 * a20; x20_5 += b5 * a20; x20_6 += b6 * a20; x20_7 += b7 * a20;
        let a21 = A4[ra5.y + q];
        x21_0 += b0 * a21; x21_1 += b1 * a21; x21_2 += b2 * a21; x21_3 += b3 * a21; x21_4 += b4 * a21; x21_5 += b5 * a21; x21_6 += b6 * a21; x21_7 += b7 * a21;
        let a22 = A4[ra5.z + q];
        x22_0 += b0 * a22; x22_1 += b1 * a22; x22_2 += b2 * a22; x22_3 += b3 * a22; x22_4 += b4 * a22; x22_5 += b5 * a22; x22_6 += b6 * a22; x22_7 += b7 * a22;
        let a23 = A4[ra5.w + q];
        x23_0 += b0 * a23; x23_1 += b1 * a23; x23_2 += b2 * a23; x23_3 += b3 * a23; x23_4 += b4 * a23; x23_5 += b5 * a23; x23_6 += b6 * a23; x23_7 += b7 * a23;
        let a24 = A4[ra6.x + q];
        x24_0 += b0 * a24; x24_1 += b1 * a24; x24_2 += b2 * a24; x24_3 += b3 * a24; x24_4 += b4 * a24; x24_5 += b5 * a24; x24_6 += b6 * a24; x24_7 += b7 * a24;
        let a25 = A4[ra6.y + q];
        x25_0 += b0 * a25; x25_1 += b1 * a25; x25_2 += b2 * a25; x25_3 += b3 * a25; x25_4 += b4 * a25; x25_5 += b5 * a25; x25_6 += b6 * a25; x25_7 += b7 * a25;
        let a26 = A4[ra6.z + q];
        x26_0 += b0 * a26; x26_1 += b1 * a26; x26_2 += b2 * a26; x26_3 += b3 * a26; x26_4 += b4 * a26; x26_5 += b5 * a26; x26_6 += b6 * a26; x26_7 += b7 * a26;
        let a27 = A4[ra6.w + q];
        x27_0 += b0 * a27; x27_1 += b1 * a27; x27_2 += b2 * a27; x27_3 += b3 * a27; x27_4 += b4 * a27; x27_5 += b5 * a27; x27_6 += b6 * a27; x27_7 += b7 * a27;
        let a28 = A4[ra7.x + q];
        x28_0 += b0 * a28; x28_1 += b1 * a28; x28_2 += b2 * a28; x28_3 += b3 * a28; x28_4 += b4 * a28; x28_5 += b5 * a28; x28_6 += b6 * a28; x28_7 += b7 * a28;
        let a29 = A4[ra7.y + q];
        x29_0 += b0 * a29; x29_1 += b1 * a29; x29_2 += b2 * a29; x29_3 += b3 * a29; x29_4 += b4 * a29; x29_5 += b5 * a29; x29_6 += b6 * a29; x29_7 += b7 * a29;
        let a30 = A4[ra7.z + q];
        x30_0 += b0 * a30; x30_1 += b1 * a30; x30_2 += b2 * a30; x30_3 += b3 * a30; x30_4 += b4 * a30; x30_5 += b5 * a30; x30_6 += b6 * a30; x30_7 += b7 * a30;
        let a31 = A4[ra7.w + q];
        x31_0 += b0 * a31; x31_1 += b1 * a31; x31_2 += b2 * a31; x31_3 += b3 * a31; x31_4 += b4 * a31; x31_5 += b5 * a31; x31_6 += b6 * a31; x31_7 += b7 * a31;
        bi += 4u * bstep;
    }
    let w = (o.z + m0 * P.N + n0) / 4u;
    if (m0 + 0u < P.M) {
        put4(w + 0u * (P.N / 4u), n0, 0u, x0_0); put4(w + 0u * (P.N / 4u), n0, 1u, x0_1); put4(w + 0u * (P.N / 4u), n0, 2u, x0_2); put4(w + 0u * (P.N / 4u), n0, 3u, x0_3); put4(w + 0u * (P.N / 4u), n0, 4u, x0_4); put4(w + 0u * (P.N / 4u), n0, 5u, x0_5); put4(w + 0u * (P.N / 4u), n0, 6u, x0_6); put4(w + 0u * (P.N / 4u), n0, 7u, x0_7);
    }
    if (m0 + 1u < P.M) {
        put4(w + 1u * (P.N / 4u), n0, 0u, x1_0); put4(w + 1u * (P.N / 4u), n0, 1u, x1_1); put4(w + 1u * (P.N / 4u), n0, 2u, x1_2); put4(w + 1u * (P.N / 4u), n0, 3u, x1_3); put4(w + 1u * (P.N / 4u), n0, 4u, x1_4); put4(w + 1u * (P.N / 4u), n0, 5u, x1_5); put4(w + 1u * (P.N / 4u), n0, 6u, x1_6); put4(w + 1u * (P.N / 4u), n0, 7u, x1_7);
    }
    if (m0 + 2u < P.M) {
        put4(w + 2u * (P.N / 4u), n0, 0u, x2_0); put4(w + 2u * (P.N / 4u), n0, 1u, x2_1); put4(w + 2u * (P.N / 4u), n0, 2u, x2_2); put4(w + 2u * (P.N / 4u), n0, 3u, x2_3); put4(w + 2u * (P.N / 4u), n0, 4u, x2_4); put4(w + 2u * (P.N / 4u), n0, 5u, x2_5); put4(w + 2u * (P.N / 4u), n0, 6u, x2_6); put4(w + 2u * (P.N / 4u), n0, 7u, x2_7);
    }
    if (m0 + 3u < P.M) {
        put4(w + 3u * (P.N / 4u), n0, 0u, x3_0); put4(w + 3u * (P.N / 4u), n0, 1u, x3_1); put4(w + 3u * (P.N / 4u), n0, 2u, x3_2); put4(w + 3u * (P.N / 4u), n0, 3u, x3_3); put4(w + 3u * (P.N / 4u), n0, 4u, x3_4); put4(w + 3u * (P.N / 4u), n0, 5u, x3_5); put4(w + 3u * (P.N / 4u), n0, 6u, x3_6); put4(w + 3u * (P.N / 4u), n0, 7u, x3_7);
    }
    if (m0 + 4u < P.M) {
        put4(w + 4u * (P.N / 4u), n0, 0u, x4_0); put4(w + 4u * (P.N / 4u), n0, 1u, x4_1); put4(w + 4u * (P.N / 4u), n0, 2u, x4_2); put4(w + 4u * (P.N / 4u), n0, 3u, x4_3); put4(w + 4u * (P.N / 4u), n0, 4u, x4_4); put4(w + 4u * (P.N / 4u), n0, 5u, x4_5); put4(w + 4u * (P.N / 4u), n0, 6u, x4_6); put4(w + 4u * (P.N / 4u), n0, 7u, x4_7);
    }
    if (m0 + 5u < P.M) {
        put4(w + 5u * (P.N / 4u), n0, 0u, x5_0); put4(w + 5u * (P.N / 4u), n0, 1u, x5_1); put4(w + 5u * (P.N / 4u), n0, 2u, x5_2); put4(w + 5u * (P.N / 4u), n0, 3u, x5_3); put4(w + 5u * (P.N / 4u), n0, 4u, x5_4); put4(w + 5u * (P.N / 4u), n0, 5u, x5_5); put4(w + 5u * (P.N / 4u), n0, 6u, x5_6); put4(w + 5u * (P.N / 4u), n0, 7u, x5_7);
    }
    if (m0 + 6u < P.M) {
        put4(w + 6u * (P.N / 4u), n0, 0u, x6_0); put4(w + 6u * (P.N / 4u), n0, 1u, x6_1); put4(w + 6u * (P.N / 4u), n0, 2u, x6_2); put4(w + 6u * (P.N / 4u), n0, 3u, x6_3); put4(w + 6u * (P.N / 4u), n0, 4u, x6_4); put4(w + 6u * (P.N / 4u), n0, 5u, x6_5); put4(w + 6u * (P.N / 4u), n0, 6u, x6_6); put4(w + 6u * (P.N / 4u), n0, 7u, x6_7);
    }
    if (m0 + 7u < P.M) {
        put4(w + 7u * (P.N / 4u), n0, 0u, x7_0); put4(w + 7u * (P.N / 4u), n0, 1u, x7_1); put4(w + 7u * (P.N / 4u), n0, 2u, x7_2); put4(w + 7u * (P.N / 4u), n0, 3u, x7_3); put4(w + 7u * (P.N / 4u), n0, 4u, x7_4); put4(w + 7u * (P.N / 4u), n0, 5u, x7_5); put4(w + 7u * (P.N / 4u), n0, 6u, x7_6); put4(w + 7u * (P.N / 4u), n0, 7u, x7_7);
    }
    if (m0 + 8u < P.M) {
        put4(w + 8u * (P.N / 4u), n0, 0u, x8_0); put4(w + 8u * (P.N / 4u), n0, 1u, x8_1); put4(w + 8u * (P.N / 4u), n0, 2u, x8_2); put4(w + 8u * (P.N / 4u), n0, 3u, x8_3); put4(w + 8u * (P.N / 4u), n0, 4u, x8_4); put4(w + 8u * (P.N / 4u), n0, 5u, x8_5); put4(w + 8u * (P.N / 4u), n0, 6u, x8_6); put4(w + 8u * (P.N / 4u), n0, 7u, x8_7);
    }
    if (m0 + 9u < P.M) {
        put4(w + 9u * (P.N / 4u), n0, 0u, x9_0); put4(w + 9u * (P.N / 4u), n0, 1u, x9_1); put4(w + 9u * (P.N / 4u), n0, 2u, x9_2); put4(w + 9u * (P.N / 4u), n0, 3u, x9_3); put4(w + 9u * (P.N / 4u), n0, 4u, x9_4); put4(w + 9u * (P.N / 4u), n0, 5u, x9_5); put4(w + 9u * (P.N / 4u), n0, 6u, x9_6); put4(w + 9u * (P.N / 4u), n0, 7u, x9_7);
    }
    if (m0 + 10u < P.M) {
        put4(w + 10u * (P.N / 4u), n0, 0u, x10_0); put4(w + 10u * (P.N / 4u), n0, 1u, x10_1); put4(w + 10u * (P.N / 4u), n0, 2u, x10_2); put4(w + 10u * (P.N / 4u), n0, 3u, x10_3); put4(w + 10u * (P.N / 4u), n0, 4u, x10_4); put4(w + 10u * (P.N / 4u), n0, 5u, x10_5); put4(w + 10u * (P.N / 4u), n0, 6u, x10_6); put4(w + 10u * (P.N / 4u), n0, 7u, x10_7);
    }
    if (m0 + 11u < P.M) {
        put4(w + 11u * (P.N / 4u), n0, 0u, x11_0); put4(w + 11u * (P.N / 4u), n0, 1u, x11_1); put4(w + 11u * (P.N / 4u), n0, 2u, x11_2); put4(w + 11u * (P.N / 4u), n0, 3u, x11_3); put4(w + 11u * (P.N / 4u), n0, 4u, x11_4); put4(w + 11u * (P.N / 4u), n0, 5u, x11_5); put4(w + 11u * (P.N / 4u), n0, 6u, x11_6); put4(w + 11u * (P.N / 4u), n0, 7u, x11_7);
    }
    if (m0 + 12u < P.M) {
        put4(w + 12u * (P.N / 4u), n0, 0u, x12_0); put4(w + 12u * (P.N / 4u), n0, 1u, x12_1); put4(w + 12u * (P.N / 4u), n0, 2u, x12_2); put4(w + 12u * (P.N / 4u), n0, 3u, x12_3); put4(w + 12u * (P.N / 4u), n0, 4u, x12_4); put4(w + 12u * (P.N / 4u), n0, 5u, x12_5); put4(w + 12u * (P.N / 4u), n0, 6u, x12_6); put4(w + 12u * (P.N / 4u), n0, 7u, x12_7);
    }
    if (m0 + 13u < P.M) {
        put4(w + 13u * (P.N / 4u), n0, 0u, x13_0); put4(w + 13u * (P.N / 4u), n0, 1u, x13_1); put4(w + 13u * (P.N / 4u), n0, 2u, x13_2); put4(w + 13u * (P.N / 4u), n0, 3u, x13_3); put4(w + 13u * (P.N / 4u), n0, 4u, x13_4); put4(w + 13u * (P.N / 4u), n0, 5u, x13_5); put4(w + 13u * (P.N / 4u), n0, 6u, x13_6); put4(w + 13u * (P.N / 4u), n0, 7u, x13_7);
    }
    if (m0 + 14u < P.M) {
        put4(w + 14u * (P.N / 4u), n0, 0u, x14_0); put4(w + 14u * (P.N / 4u), n0, 1u, x14_1); put4(w + 14u * (P.N / 4u), n0, 2u, x14_2); put4(w + 14u * (P.N / 4u), n0, 3u, x14_3); put4(w + 14u * (P.N / 4u), n0, 4u, x14_4); put4(w + 14u * (P.N / 4u), n0, 5u, x14_5); put4(w + 14u * (P.N / 4u), n0, 6u, x14_6); put4(w + 14u * (P.N / 4u), n0, 7u, x14_7);
    }
    if (m0 + 15u < P.M) {
        put4(w + 15u * (P.N / 4u), n0, 0u, x15_0); put4(w + 15u * (P.N / 4u), n0, 1u, x15_1); put4(w + 15u * (P.N / 4u), n0, 2u, x15_2); put4(w + 15u * (P.N / 4u), n0, 3u, x15_3); put4(w + 15u * (P.N / 4u), n0, 4u, x15_4); put4(w + 15u * (P.N / 4u), n0, 5u, x15_5); put4(w + 15u * (P.N / 4u), n0, 6u, x15_6); put4(w + 15u * (P.N / 4u), n0, 7u, x15_7);
    }
    if (m0 + 16u < P.M) {
        put4(w + 16u * (P.N / 4u), n0, 0u, x16_0); put4(w + 16u * (P.N / 4u), n0, 1u, x16_1); put4(w + 16u * (P.N / 4u), n0, 2u, x16_2); put4(w + 16u * (P.N / 4u), n0, 3u, x16_3); put4(w + 16u * (P.N / 4u), n0, 4u, x16_4); put4(w + 16u * (P.N / 4u), n0, 5u, x16_5); put4(w + 16u * (P.N / 4u), n0, 6u, x16_6); put4(w + 16u * (P.N / 4u), n0, 7u, x16_7);
    }
    if (m0 + 17u < P.M) {
        put4(w + 17u * (P.N / 4u), n0, 0u, x17_0); put4(w + 17u * (P.N / 4u), n0, 1u, x17_1); put4(w + 17u * (P.N / 4u), n0, 2u, x17_2); put4(w + 17u * (P.N / 4u), n0, 3u, x17_3); put4(w + 17u * (P.N / 4u), n0, 4u, x17_4); put4(w + 17u * (P.N / 4u), n0, 5u, x17_5); put4(w + 17u * (P.N / 4u), n0, 6u, x17_6); put4(w + 17u * (P.N / 4u), n0, 7u, x17_7);
    }
    if (m0 + 18u < P.M) {
        put4(w + 18u * (P.N / 4u), n0, 0u, x18_0); put4(w + 18u * (P.N / 4u), n0, 1u, x18_1); put4(w + 18u * (P.N / 4u), n0, 2u, x18_2); put4(w + 18u * (P.N / 4u), n0, 3u, x18_3); put4(w + 18u * (P.N / 4u), n0, 4u, x18_4); put4(w + 18u * (P.N / 4u), n0, 5u, x18_5); put4(w + 18u * (P.N / 4u), n0, 6u, x18_6); put4(w + 18u * (P.N / 4u), n0, 7u, x18_7);
    }
    if (m0 + 19u < P.M) {
        put4(w + 19u * (P.N / 4u), n0, 0u, x19_0); put4(w + 19u * (P.N / 4u), n0, 1u, x19_1); put4(w + 19u * (P.N / 4u), n0, 2u, x19_2); put4(w + 19u * (P.N / 4u), n0, 3u, x19_3); put4(w + 19u * (P.N / 4u), n0, 4u, x19_4); put4(w + 19u * (P.N / 4u), n0, 5u, x19_5); put4(w + 19u * (P.N / 4u), n0, 6u, x19_6); put4(w + 19u * (P.N / 4u), n0, 7u, x19_7);
    }
    if (m0 + 20u < P.M) {
        put4(w + 20u * (P.N / 4u), n0, 0u, x20_0); put4(w + 20u * (P.N / 4u), n0, 1u, x20_1); put4(w + 20u * (P.N / 4u), n0, 2u, x20_2); put4(w + 20u * (P.N / 4u), n0, 3u, x20_3); put4(w + 20u * (P.N / 4u), n0, 4u, x20_4); put4(w + 20u * (P.N / 4u), n0, 5u, x20_5); put4(w + 20u * (P.N / 4u), n0, 6u, x20_6); put4(w + 20u * (P.N / 4u), n0, 7u, x20_7);
    }
    if (m0 + 21u < P.M) {
        put4(w + 21u * (P.N / 4u), n0, 0u, x21_0); put4(w + 21u * (P.N / 4u), n0, 1u, x21_1); put4(w + 21u * (P.N / 4u), n0, 2u, x21_2); put4(w + 21u * (P.N / 4u), n0, 3u, x21_3); put4(w + 21u * (P.N / 4u), n0, 4u, x21_4); put4(w + 21u * (P.N / 4u), n0, 5u, x21_5); put4(w + 21u * (P.N / 4u), n0, 6u, x21_6); put4(w + 21u * (P.N / 4u), n0, 7u, x21_7);
    }
    if (m0 + 22u < P.M) {
        put4(w + 22u * (P.N / 4u), n0, 0u, x22_0); put4(w + 22u * (P.N / 4u), n0, 1u, x22_1); put4(w + 22u * (P.N / 4u), n0, 2u, x22_2); put4(w + 22u * (P.N / 4u), n0, 3u, x22_3); put4(w + 22u * (P.N / 4u), n0, 4u, x22_4); put4(w + 22u * (P.N / 4u), n0, 5u, x22_5); put4(w + 22u * (P.N / 4u), n0, 6u, x22_6); put4(w + 22u * (P.N / 4u), n0, 7u, x22_7);
    }
    if (m0 + 23u < P.M) {
        put4(w + 23u * (P.N / 4u), n0, 0u, x23_0); put4(w + 23u * (P.N / 4u), n0, 1u, x23_1); put4(w + 23u * (P.N / 4u), n0, 2u, x23_2); put4(w + 23u * (P.N / 4u), n0, 3u, x23_3); put4(w + 23u * (P.N / 4u), n0, 4u, x23_4); put4(w + 23u * (P.N / 4u), n0, 5u, x23_5); put4(w + 23u * (P.N / 4u), n0, 6u, x23_6); put4(w + 23u * (P.N / 4u), n0, 7u, x23_7);
    }
    if (m0 + 24u < P.M) {
        put4(w + 24u * (P.N / 4u), n0, 0u, x24_0); put4(w + 24u * (P.N / 4u), n0, 1u, x24_1); put4(w + 24u * (P.N / 4u), n0, 2u, x24_2); put4(w + 24u * (P.N / 4u), n0, 3u, x24_3); put4(w + 24u * (P.N / 4u), n0, 4u, x24_4); put4(w + 24u * (P.N / 4u), n0, 5u, x24_5); put4(w + 24u * (P.N / 4u), n0, 6u, x24_6); put4(w + 24u * (P.N / 4u), n0, 7u, x24_7);
    }
    if (m0 + 25u < P.M) {
        put4(w + 25u * (P.N / 4u), n0, 0u, x25_0); put4(w + 25u * (P.N / 4u), n0, 1u, x25_1); put4(w + 25u * (P.N / 4u), n0, 2u, x25_2); put4(w + 25u * (P.N / 4u), n0, 3u, x25_3); put4(w + 25u * (P.N / 4u), n0, 4u, x25_4); put4(w + 25u * (P.N / 4u), n0, 5u, x25_5); put4(w + 25u * (P.N / 4u), n0, 6u, x25_6); put4(w + 25u * (P.N / 4u), n0, 7u, x25_7);
    }
    if (m0 + 26u < P.M) {
        put4(w + 26u * (P.N / 4u), n0, 0u, x26_0); put4(w + 26u * (P.N / 4u), n0, 1u, x26_1); put4(w + 26u * (P.N / 4u), n0, 2u, x26_2); put4(w + 26u * (P.N / 4u), n0, 3u, x26_3); put4(w + 26u * (P.N / 4u), n0, 4u, x26_4); put4(w + 26u * (P.N / 4u), n0, 5u, x26_5); put4(w + 26u * (P.N / 4u), n0, 6u, x26_6); put4(w + 26u * (P.N / 4u), n0, 7u, x26_7);
    }
    if (m0 + 27u < P.M) {
        put4(w + 27u * (P.N / 4u), n0, 0u, x27_0); put4(w + 27u * (P.N / 4u), n0, 1u, x27_1); put4(w + 27u * (P.N / 4u), n0, 2u, x27_2); put4(w + 27u * (P.N / 4u), n0, 3u, x27_3); put4(w + 27u * (P.N / 4u), n0, 4u, x27_4); put4(w + 27u * (P.N / 4u), n0, 5u, x27_5); put4(w + 27u * (P.N / 4u), n0, 6u, x27_6); put4(w + 27u * (P.N / 4u), n0, 7u, x27_7);
    }
    if (m0 + 28u < P.M) {
        put4(w + 28u * (P.N / 4u), n0, 0u, x28_0); put4(w + 28u * (P.N / 4u), n0, 1u, x28_1); put4(w + 28u * (P.N / 4u), n0, 2u, x28_2); put4(w + 28u * (P.N / 4u), n0, 3u, x28_3); put4(w + 28u * (P.N / 4u), n0, 4u, x28_4); put4(w + 28u * (P.N / 4u), n0, 5u, x28_5); put4(w + 28u * (P.N / 4u), n0, 6u, x28_6); put4(w + 28u * (P.N / 4u), n0, 7u, x28_7);
    }
    if (m0 + 29u < P.M) {
        put4(w + 29u * (P.N / 4u), n0, 0u, x29_0); put4(w + 29u * (P.N / 4u), n0, 1u, x29_1); put4(w + 29u * (P.N / 4u), n0, 2u, x29_2); put4(w + 29u * (P.N / 4u), n0, 3u, x29_3); put4(w + 29u * (P.N / 4u), n0, 4u, x29_4); put4(w + 29u * (P.N / 4u), n0, 5u, x29_5); put4(w + 29u * (P.N / 4u), n0, 6u, x29_6); put4(w + 29u * (P.N / 4u), n0, 7u, x29_7);
    }
    if (m0 + 30u < P.M) {
        put4(w + 30u * (P.N / 4u), n0, 0u, x30_0); put4(w + 30u * (P.N / 4u), n0, 1u, x30_1); put4(w + 30u * (P.N / 4u), n0, 2u, x30_2); put4(w + 30u * (P.N / 4u), n0, 3u, x30_3); put4(w + 30u * (P.N / 4u), n0, 4u, x30_4); put4(w + 30u * (P.N / 4u), n0, 5u, x30_5); put4(w + 30u * (P.N / 4u), n0, 6u, x30_6); put4(w + 30u * (P.N / 4u), n0, 7u, x30_7);
    }
    if (m0 + 31u < P.M) {
        put4(w + 31u * (P.N / 4u), n0, 0u, x31_0); put4(w + 31u * (P.N / 4u), n0, 1u, x31_1); put4(w + 31u * (P.N / 4u), n0, 2u, x31_2); put4(w + 31u * (P.N / 4u), n0, 3u, x31_3); put4(w + 31u * (P.N / 4u), n0, 4u, x31_4); put4(w + 31u * (P.N / 4u), n0, 5u, x31_5); put4(w + 31u * (P.N / 4u), n0, 6u, x31_6); put4(w + 31u * (P.N / 4u), n0, 7u, x31_7);
    }
}

// ---------------------------------------------------------------------------------------------
// mm_vec_tb: B stored [N, K] (sbk == 1, sbn % 4 == 0); 4x4 outputs per invocation as dot products
// of vec4 runs along K. sak == 1 and K, offsets, strides multiples of 4. C written as scalars.

@compute @workgroup_size(8, 8, 1)
fn mm_vec_tb(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let o = batch_offsets(wid.z);
    let m0 = (wid.y * 8u + lid.y) * 4u;
    let n0 = (wid.x * 8u + lid.x) * 4u;
    if (m0 >= P.M || n0 >= P.N) {
        return;
    }
    var ra: array<u32, 4>;
    var rb: array<u32, 4>;
    for (var i = 0u; i < 4u; i++) {
        ra[i] = (o.x + min(m0 + i, P.M - 1u) * P.sam) / 4u;
        rb[i] = (o.y + min(n0 + i, P.N - 1u) * P.sbn) / 4u;
    }
    var acc: array<vec4<f32>, 4>;
    let kq = P.K / 4u;
    for (var q = 0u; q < kq; q++) {
        let b0 = B4[rb[0] + q];
        let b1 = B4[rb[1] + q];
        let b2 = B4[rb[2] + q];
        let b3 = B4[rb[3] + q];
        for (var i = 0u; i < 4u; i++) {
            let a = A4[ra[i] + q];
            acc[i] += vec4<f32>(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + i;
        if (m < P.M) {
            for (var j = 0u; j < 4u; j++) {
                let n = n0 + j;
                if (n < P.N) {
                    Cs[o.z + m * P.N + n] = epilogue(acc[i][j], n);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// mm_tiled: 16x16 invocations, each 4x4 outputs strided by 16 (64x64 block), K in steps of 16
// staged through workgroup memory. Out-of-range elements are staged as zero.

const TB: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> tA: array<f32, 1024>; // [TK][TB]: tA[k * TB + m]
var<workgroup> tB: array<f32, 1024>; // [TK][TB]: tB[k * TB + n]

@compute @workgroup_size(16, 16, 1)
fn mm_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let o = batch_offsets(wid.z);
    let mb = wid.y * TB;
    let nb = wid.x * TB;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < P.K; k0 += TK) {
        // 1024 elements of each tile, 4 per invocation.
        for (var e = 0u; e < 4u; e++) {
            let idx = li + e * 256u;
            let kk = idx / TB;
            let mn = idx % TB;
            let k = k0 + kk;
            let m = mb + mn;
            let n = nb + mn;
            var va = 0.0;
            if (k < P.K && m < P.M) {
                va = As[o.x + m * P.sam + k * P.sak];
            }
            var vb = 0.0;
            if (k < P.K && n < P.N) {
                vb = Bs[o.y + k * P.sbk + n * P.sbn];
            }
            tA[idx] = va;
            tB[idx] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let b = vec4<f32>(tB[kk * TB + lid.x], tB[kk * TB + lid.x + 16u], tB[kk * TB + lid.x + 32u], tB[kk * TB + lid.x + 48u]);
            for (var i = 0u; i < 4u; i++) {
                acc[i] += tA[kk * TB + lid.y + 16u * i] * b;
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let m = mb + lid.y + 16u * i;
        if (m < P.M) {
            for (var j = 0u; j < 4u; j++) {
                let n = nb + lid.x + 16u * j;
                if (n < P.N) {
                    Cs[o.z + m * P.N + n] = epilogue(acc[i][j], n);
                }
            }
        }
    }
}

// ==== subgroup kernels: everything below needs Features::SUBGROUP and a subgroup size of exactly 8;
// the host compiles this part (with the whole file above) only on such devices (kernel "matmul_sg").
//
// mm_sg: software devices (lavapipe); row-major A and B with K % 4 == 0 and N % 4 == 0, same layout
// rules as mm_vec. One workgroup = one subgroup of 8 invocations = 64 rows x 128 columns; each lane
// owns all 64 rows x its own 16 columns (4 vec4 accumulators per row, 256 in all, mostly spilled).
// Why: on lavapipe 22.3 every storage-buffer load inside a loop is a per-lane scalar loop (about 25-30
// cycles per lane and component, even at a uniform address), while FMAs on spilled accumulators cost
// ~3 cycles per 8 lanes. So the kernel loads each element of the block's A and B slices exactly once
// per group: lane l loads rows l, l+8, ..., l+56 of A as vec4 along K and the other lanes get them
// with subgroupBroadcast (a register extract + broadcast); B is read as vec4 along N (own columns).
// Per 4 K steps: 8 A vec4 + 16 B vec4 loads per lane for 1024 FMAs (8-wide).
// Measured at 1024^3, GFLOP per CPU-second (lavapipe, 2 cores shared): rows x columns per group
// 8x32 1.24, 16x32 2.22, 32x32 2.86, 16x64 2.69, 32x64 4.23, 64x32 4.08, 64x64 5.04, 96x64 5.04,
// 64x128 5.2-6.8 (this kernel; compiles in a few seconds). 96x128 reached 6.3 but its pipeline took
// ~170 s to compile; 128x128 and 64x256 gave no result within 100 s; the same kernel written as
// `x += mat4x4(b0..b3) * a` measured 6.1 (within noise) and took ~120 s to compile. A read at uniform
// addresses instead of broadcasts: 8x32 0.59, 16x32 0.74; 64-lane workgroups (16x32 each): 1.99.
// Columns past N are clamped for loads (every lane must reach the broadcasts) and skipped on store.

@compute @workgroup_size(8, 1, 1)
fn mm_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let o = batch_offsets(wid.z);
    let m0 = wid.y * 64u;
    let n0 = (wid.x * 8u + lid.x) * 16u;
    let sa4 = P.sam / 4u;
    let a0 = o.x / 4u;
    let bstep = P.sbk / 4u;
    let cb0 = (o.y + min(n0 + 0u, P.N - 4u)) / 4u;
    let cb1 = (o.y + min(n0 + 4u, P.N - 4u)) / 4u;
    let cb2 = (o.y + min(n0 + 8u, P.N - 4u)) / 4u;
    let cb3 = (o.y + min(n0 + 12u, P.N - 4u)) / 4u;
    let lane = lid.x % 8u;
    let ra0 = a0 + min(m0 + lane + 0u, P.M - 1u) * sa4;
    let ra1 = a0 + min(m0 + lane + 8u, P.M - 1u) * sa4;
    let ra2 = a0 + min(m0 + lane + 16u, P.M - 1u) * sa4;
    let ra3 = a0 + min(m0 + lane + 24u, P.M - 1u) * sa4;
    let ra4 = a0 + min(m0 + lane + 32u, P.M - 1u) * sa4;
    let ra5 = a0 + min(m0 + lane + 40u, P.M - 1u) * sa4;
    let ra6 = a0 + min(m0 + lane + 48u, P.M - 1u) * sa4;
    let ra7 = a0 + min(m0 + lane + 56u, P.M - 1u) * sa4;
    var x0_0 = vec4<f32>(0.0); var x0_1 = vec4<f32>(0.0); var x0_2 = vec4<f32>(0.0); var x0_3 = vec4<f32>(0.0);
    var x1_0 = vec4<f32>(0.0); var x1_1 = vec4<f32>(0.0); var x1_2 = vec4<f32>(0.0); var x1_3 = vec4<f32>(0.0);
    var x2_0 = vec4<f32>(0.0); var x2_1 = vec4<f32>(0.0); var x2_2 = vec4<f32>(0.0); var x2_3 = vec4<f32>(0.0);
    var x3_0 = vec4<f32>(0.0); var x3_1 = vec4<f32>(0.0); var x3_2 = vec4<f32>(0.0); var x3_3 = vec4<f32>(0.0);
    var x4_0 = vec4<f32>(0.0); var x4_1 = vec4<f32>(0.0); var x4_2 = vec4<f32>(0.0); var x4_3 = vec4<f32>(0.0);
    var x5_0 = vec4<f32>(0.0); var x5_1 = vec4<f32>(0.0); var x5_2 = vec4<f32>(0.0); var x5_3 = vec4<f32>(0.0);
    var x6_0 = vec4<f32>(0.0); var x6_1 = vec4<f32>(0.0); var x6_2 = vec4<f32>(0.0); var x6_3 = vec4<f32>(0.0);
    var x7_0 = vec4<f32>(0.0); var x7_1 = vec4<f32>(0.0); var x7_2 = vec4<f32>(0.0); var x7_3 = vec4<f32>(0.0);
    var x8_0 = vec4<f32>(0.0); var x8_1 = vec4<f32>(0.0); var x8_2 = vec4<f32>(0.0); var x8_3 = vec4<f32>(0.0);
    var x9_0 = vec4<f32>(0.0); var x9_1 = vec4<f32>(0.0); var x9_2 = vec4<f32>(0.0); var x9_3 = vec4<f32>(0.0);
    var x10_0 = vec4<f32>(0.0); var x10_1 = vec4<f32>(0.0); var x10_2 = vec4<f32>(0.0); var x10_3 = vec4<f32>(0.0);
    var x11_0 = vec4<f32>(0.0); var x11_1 = vec4<f32>(0.0); var x11_2 = vec4<f32>(0.0); var x11_3 = vec4<f32>(0.0);
    var x12_0 = vec4<f32>(0.0); var x12_1 = vec4<f32>(0.0); var x12_2 = vec4<f32>(0.0); var x12_3 = vec4<f32>(0.0);
    var x13_0 = vec4<f32>(0.0); var x13_1 = vec4<f32>(0.0); var x13_2 = vec4<f32>(0.0); var x13_3 = vec4<f32>(0.0);
    var x14_0 = vec4<f32>(0.0); var x14_1 = vec4<f32>(0.0); var x14_2 = vec4<f32>(0.0); var x14_3 = vec4<f32>(0.0);
    var x15_0 = vec4<f32>(0.0); var x15_1 = vec4<f32>(0.0); var x15_2 = vec4<f32>(0.0); var x15_3 = vec4<f32>(0.0);
    var x16_0 = vec4<f32>(0.0); var x16_1 = vec4<f32>(0.0); var x16_2 = vec4<f32>(0.0); var x16_3 = vec4<f32>(0.0);
    var x17_0 = vec4<f32>(0.0); var x17_1 = vec4<f32>(0.0); var x17_2 = vec4<f32>(0.0); var x17_3 = vec4<f32>(0.0);
    var x18_0 = vec4<f32>(0.0); var x18_1 = vec4<f32>(0.0); var x18_2 = vec4<f32>(0.0); var x18_3 = vec4<f32>(0.0);
    var x19_0 = vec4<f32>(0.0); var x19_1 = vec4<f32>(0.0); var x19_2 = vec4<f32>(0.0); var x19_3 = vec4<f32>(0.0);
    var x20_0 = vec4<f32>(0.0); var x20_1 = vec4<f32>(0.0); var x20_2 = vec4<f32>(0.0); var x20_3 = vec4<f32>(0.0);
    var x21_0 = vec4<f32>(0.0); var x21_1 = vec4<f32>(0.0); var x21_2 = vec4<f32>(0.0); var x21_3 = vec4<f32>(0.0);
    var x22_0 = vec4<f32>(0.0); var x22_1 = vec4<f32>(0.0); var x22_2 = vec4<f32>(0.0); var x22_3 = vec4<f32>(0.0);
    var x23_0 = vec4<f32>(0.0); var x23_1 = vec4<f32>(0.0); var x23_2 = vec4<f32>(0.0); var x23_3 = vec4<f32>(0.0);
    var x24_0 = vec4<f32>(0.0); var x24_1 = vec4<f32>(0.0); var x24_2 = vec4<f32>(0.0); var x24_3 = vec4<f32>(0.0);
    var x25_0 = vec4<f32>(0.0); var x25_1 = vec4<f32>(0.0); var x25_2 = vec4<f32>(0.0); var x25_3 = vec4<f32>(0.0);
    var x26_0 = vec4<f32>(0.0); var x26_1 = vec4<f32>(0.0); var x26_2 = vec4<f32>(0.0); var x26_3 = vec4<f32>(0.0);
    var x27_0 = vec4<f32>(0.0); var x27_1 = vec4<f32>(0.0); var x27_2 = vec4<f32>(0.0); var x27_3 = vec4<f32>(0.0);
    var x28_0 = vec4<f32>(0.0); var x28_1 = vec4<f32>(0.0); var x28_2 = vec4<f32>(0.0); var x28_3 = vec4<f32>(0.0);
    var x29_0 = vec4<f32>(0.0); var x29_1 = vec4<f32>(0.0); var x29_2 = vec4<f32>(0.0); var x29_3 = vec4<f32>(0.0);
    var x30_0 = vec4<f32>(0.0); var x30_1 = vec4<f32>(0.0); var x30_2 = vec4<f32>(0.0); var x30_3 = vec4<f32>(0.0);
    var x31_0 = vec4<f32>(0.0); var x31_1 = vec4<f32>(0.0); var x31_2 = vec4<f32>(0.0); var x31_3 = vec4<f32>(0.0);
    var x32_0 = vec4<f32>(0.0); var x32_1 = vec4<f32>(0.0); var x32_2 = vec4<f32>(0.0); var x32_3 = vec4<f32>(0.0);
    var x33_0 = vec4<f32>(0.0); var x33_1 = vec4<f32>(0.0); var x33_2 = vec4<f32>(0.0); var x33_3 = vec4<f32>(0.0);
    var x34_0 = vec4<f32>(0.0); var x34_1 = vec4<f32>(0.0); var x34_2 = vec4<f32>(0.0); var x34_3 = vec4<f32>(0.0);
    var x35_0 = vec4<f32>(0.0); var x35_1 = vec4<f32>(0.0); var x35_2 = vec4<f32>(0.0); var x35_3 = vec4<f32>(0.0);
    var x36_0 = vec4<f32>(0.0); var x36_1 = vec4<f32>(0.0); var x36_2 = vec4<f32>(0.0); var x36_3 = vec4<f32>(0.0);
    var x37_0 = vec4<f32>(0.0); var x37_1 = vec4<f32>(0.0); var x37_2 = vec4<f32>(0.0); var x37_3 = vec4<f32>(0.0);
    var x38_0 = vec4<f32>(0.0); var x38_1 = vec4<f32>(0.0); var x38_2 = vec4<f32>(0.0); var x38_3 = vec4<f32>(0.0);
    var x39_0 = vec4<f32>(0.0); var x39_1 = vec4<f32>(0.0); var x39_2 = vec4<f32>(0.0); var x39_3 = vec4<f32>(0.0);
    var x40_0 = vec4<f32>(0.0); var x40_1 = vec4<f32>(0.0); var x40_2 = vec4<f32>(0.0); var x40_3 = vec4<f32>(0.0);
    var x41_0 = vec4<f32>(0.0); var x41_1 = vec4<f32>(0.0); var x41_2 = vec4<f32>(0.0); var x41_3 = vec4<f32>(0.0);
    var x42_0 = vec4<f32>(0.0); var x42_1 = vec4<f32>(0.0); var x42_2 = vec4<f32>(0.0); var x42_3 = vec4<f32>(0.0);
    var x43_0 = vec4<f32>(0.0); var x43_1 = vec4<f32>(0.0); var x43_2 = vec4<f32>(0.0); var x43_3 = vec4<f32>(0.0);
    var x44_0 = vec4<f32>(0.0); var x44_1 = vec4<f32>(0.0); var x44_2 = vec4<f32>(0.0); var x44_3 = vec4<f32>(0.0);
    var x45_0 = vec4<f32>(0.0); var x45_1 = vec4<f32>(0.0); var x45_2 = vec4<f32>(0.0); var x45_3 = vec4<f32>(0.0);
    var x46_0 = vec4<f32>(0.0); var x46_1 = vec4<f32>(0.0); var x46_2 = vec4<f32>(0.0); var x46_3 = vec4<f32>(0.0);
    var x47_0 = vec4<f32>(0.0); var x47_1 = vec4<f32>(0.0); var x47_2 = vec4<f32>(0.0); var x47_3 = vec4<f32>(0.0);
    var x48_0 = vec4<f32>(0.0); var x48_1 = vec4<f32>(0.0); var x48_2 = vec4<f32>(0.0); var x48_3 = vec4<f32>(0.0);
    var x49_0 = vec4<f32>(0.0); var x49_1 = vec4<f32>(0.0); var x49_2 = vec4<f32>(0.0); var x49_3 = vec4<f32>(0.0);
    var x50_0 = vec4<f32>(0.0); var x50_1 = vec4<f32>(0.0); var x50_2 = vec4<f32>(0.0); var x50_3 = vec4<f32>(0.0);
    var x51_0 = vec4<f32>(0.0); var x51_1 = vec4<f32>(0.0); var x51_2 = vec4<f32>(0.0); var x51_3 = vec4<f32>(0.0);
    var x52_0 = vec4<f32>(0.0); var x52_1 = vec4<f32>(0.0); var x52_2 = vec4<f32>(0.0); var x52_3 = vec4<f32>(0.0);
    var x53_0 = vec4<f32>(0.0); var x53_1 = vec4<f32>(0.0); var x53_2 = vec4<f32>(0.0); var x53_3 = vec4<f32>(0.0);
    var x54_0 = vec4<f32>(0.0); var x54_1 = vec4<f32>(0.0); var x54_2 = vec4<f32>(0.0); var x54_3 = vec4<f32>(0.0);
    var x55_0 = vec4<f32>(0.0); var x55_1 = vec4<f32>(0.0); var x55_2 = vec4<f32>(0.0); var x55_3 = vec4<f32>(0.0);
    var x56_0 = vec4<f32>(0.0); var x56_1 = vec4<f32>(0.0); var x56_2 = vec4<f32>(0.0); var x56_3 = vec4<f32>(0.0);
    var x57_0 = vec4<f32>(0.0); var x57_1 = vec4<f32>(0.0); var x57_2 = vec4<f32>(0.0); var x57_3 = vec4<f32>(0.0);
    var x58_0 = vec4<f32>(0.0); var x58_1 = vec4<f32>(0.0); var x58_2 = vec4<f32>(0.0); var x58_3 = vec4<f32>(0.0);
    var x59_0 = vec4<f32>(0.0); var x59_1 = vec4<f32>(0.0); var x59_2 = vec4<f32>(0.0); var x59_3 = vec4<f32>(0.0);
    var x60_0 = vec4<f32>(0.0); var x60_1 = vec4<f32>(0.0); var x60_2 = vec4<f32>(0.0); var x60_3 = vec4<f32>(0.0);
    var x61_0 = vec4<f32>(0.0); var x61_1 = vec4<f32>(0.0); var x61_2 = vec4<f32>(0.0); var x61_3 = vec4<f32>(0.0);
    var x62_0 = vec4<f32>(0.0); var x62_1 = vec4<f32>(0.0); var x62_2 = vec4<f32>(0.0); var x62_3 = vec4<f32>(0.0);
    var x63_0 = vec4<f32>(0.0); var x63_1 = vec4<f32>(0.0); var x63_2 = vec4<f32>(0.0); var x63_3 = vec4<f32>(0.0);
    var bi = 0u;
    for (var q = 0u; q < P.K / 4u; q++) {
        let b0_0 = B4[cb0 + bi];
        let b0_1 = B4[cb0 + bi + bstep];
        let b0_2 = B4[cb0 + bi + 2u * bstep];
        let b0_3 = B4[cb0 + bi + 3u * bstep];
        let b1_0 = B4[cb1 + bi];
        let b1_1 = B4[cb1 + bi + bstep];
        let b1_2 = B4[cb1 + bi + 2u * bstep];
        let b1_3 = B4[cb1 + bi + 3u * bstep];
        let b2_0 = B4[cb2 + bi];
        let b2_1 = B4[cb2 + bi + bstep];
        let b2_2 = B4[cb2 + bi + 2u * bstep];
        let b2_3 = B4[cb2 + bi + 3u * bstep];
        let b3_0 = B4[cb3 + bi];
        let b3_1 = B4[cb3 + bi + bstep];
        let b3_2 = B4[cb3 + bi + 2u * bstep];
        let b3_3 = B4[cb3 + bi + 3u * bstep];
        let al0 = A4[ra0 + q];
        let al1 = A4[ra1 + q];
        let al2 = A4[ra2 + q];
        let al3 = A4[ra3 + q];
        let al4 = A4[ra4 + q];
        let al5 = A4[ra5 + q];
        let al6 = A4[ra6 + q];
        let al7 = A4[ra7 + q];
        let a0 = subgroupBroadcast(al0, 0u);
        x0_0 += a0.x * b0_0; x0_0 += a0.y * b0_1; x0_0 += a0.z * b0_2; x0_0 += a0.w * b0_3;
        x0_1 += a0.x * b1_0; x0_1 += a0.y * b1_1; x0_1 += a0.z * b1_2; x0_1 += a0.w * b1_3;
        x0_2 += a0.x * b2_0; x0_2 += a0.y * b2_1; x0_2 += a0.z * b2_2; x0_2 += a0.w * b2_3;
        x0_3 += a0.x * b3_0; x0_3 += a0.y * b3_1; x0_3 += a0.z * b3_2; x0_3 += a0.w * b3_3;
        let a1 = subgroupBroadcast(al0, 1u);
        x1_0 += a1.x * b0_0; x1_0 += a1.y * b0_1; x1_0 += a1.z * b0_2; x1_0 += a1.w * b0_3;
        x1_1 += a1.x * b1_0; x1_1 += a1.y * b1_1; x1_1 += a1.z * b1_2; x1_1 += a1.w * b1_3;
        x1_2 += a1.x * b2_0; x1_2 += a1.y * b2_1; x1_2 += a1.z * b2_2; x1_2 += a1.w * b2_3;
        x1_3 += a1.x * b3_0; x1_3 += a1.y * b3_1; x1_3 += a1.z * b3_2; x1_3 += a1.w * b3_3;
        let a2 = subgroupBroadcast(al0, 2u);
        x2_0 += a2.x * b0_0; x2_0 += a2.y * b0_1; x2_0 += a2.z * b0_2; x2_0 += a2.w * b0_3;
        x2_1 += a2.x * b1_0; x2_1 += a2.y * b1_1; x2_1 += a2.z * b1_2; x2_1 += a2.w * b1_3;
        x2_2 += a2.x * b2_0; x2_2 += a2.y * b2_1; x2_2 += a2.z * b2_2; x2_2 += a2.w * b2_3;
        x2_3 += a2.x * b3_0; x2_3 += a2.y * b3_1; x2_3 += a2.z * b3_2; x2_3 += a2.w * b3_3;
        let a3 = subgroupBroadcast(al0, 3u);
        x3_0 += a3.x * b0_0; x3_0 += a3.y * b0_1; x3_0 += a3.z * b0_2; x3_0 += a3.w * b0_3;
        x3_1 += a3.x * b1_0; x3_1 += a3.y * b1_1; x3_1 += a3.z * b1_2; x3_1 += a3.w * b1_3;
        x3_2 += a3.x * b2_0; x3_2 += a3.y * b2_1; x3_2 += a3.z * b2_2; x3_2 += a3.w * b2_3;
        x3_3 += a3.x * b3_0; x3_3 += a3.y * b3_1; x3_3 += a3.z * b3_2; x3_3 += a3.w * b3_3;
        let a4 = subgroupBroadcast(al0, 4u);
        x4_0 += a4.x * b0_0; x4_0 += a4.y * b0_1; x4_0 += a4.z * b0_2; x4_0 += a4.w * b0_3;
        x4_1 += a4.x * b1_0; x4_1 += a4.y * b1_1; x4_1 += a4.z * b1_2; x4_1 += a4.w * b1_3;
        x4_2 += a4.x * b2_0; x4_2 += a4.y * b2_1; x4_2 += a4.z * b2_2; x4_2 += a4.w * b2_3;
        x4_3 += a4.x * b3_0; x4_3 += a4.y * b3_1; x4_3 += a4.z * b3_2; x4_3 += a4.w * b3_3;
        let a5 = subgroupBroadcast(al0, 5u);
        x5_0 += a5.x * b0_0; x5_0 += a5.y * b0_1; x5_0 += a5.z * b0_2; x5_0 += a5.w * b0_3;
        x5_1 += a5.x * b1_0; x5_1 += a5.y * b1_1; x5_1 += a5.z * b1_2; x5_1 += a5.w * b1_3;
        x5_2 += a5.x * b2_0; x5_2 += a5.y * b2_1; x5_2 += a5.z * b2_2; x5_2 += a5.w * b2_3;
        x5_3 += a5.x * b3_0; x5_3 += a5.y * b3_1; x5_3 += a5.z * b3_2; x5_3 += a5.w * b3_3;
        let a6 = subgroupBroadcast(al0, 6u);
        x6_0 += a6.x * b0_0; x6_0 += a6.y * b0_1; x6_0 += a6.z * b0_2; x6_0 += a6.w * b0_3;
        x6_1 += a6.x * b1_0; x6_1 += a6.y * b1_1; x6_1 += a6.z * b1_2; x6_1 += a6.w * b1_3;
        x6_2 += a6.x * b2_0; x6_2 += a6.y * b2_1; x6_2 += a6.z * b2_2; x6_2 += a6.w * b2_3;
        x6_3 += a6.x * b3_0; x6_3 += a6.y * b3_1; x6_3 += a6.z * b3_2; x6_3 += a6.w * b3_3;
        let a7 = subgroupBroadcast(al0, 7u);
        x7_0 += a7.x * b0_0; x7_0 += a7.y * b0_1; x7_0 += a7.z * b0_2; x7_0 += a7.w * b0_3;
        x7_1 += a7.x * b1_0; x7_1 += a7.y * b1_1; x7_1 += a7.z * b1_2; x7_1 += a7.w * b1_3;
        x7_2 += a7.x * b2_0; x7_2 += a7.y * b2_1; x7_2 += a7.z * b2_2; x7_2 += a7.w * b2_3;
        x7_3 += a7.x * b3_0; x7_3 += a7.y * b3_1; x7_3 += a7.z * b3_2; x7_3 += a7.w * b3_3;
        let a8 = subgroupBroadcast(al1, 0u);
        x8_0 += a8.x * b0_0; x8_0 += a8.y * b0_1; x8_0 += a8.z * b0_2; x8_0 += a8.w * b0_3;
        x8_1 += a8.x * b1_0; x8_1 += a8.y * b1_1; x8_1 += a8.z * b1_2; x8_1 += a8.w * b1_3;
        x8_2 += a8.x * b2_0; x8_2 += a8.y * b2_1; x8_2 += a8.z * b2_2; x8_2 += a8.w * b2_3;
        x8_3 += a8.x * b3_0; x8_3 += a8.y * b3_1; x8_3 += a8.z * b3_2; x8_3 += a8.w * b3_3;
        let a9 = subgroupBroadcast(al1, 1u);
        x9_0 += a9.x * b0_0; x9_0 += a9.y * b0_1; x9_0 += a9.z * b0_2; x9_0 += a9.w * b0_3;
        x9_1 += a9.x * b1_0; x9_1 += a9.y * b1_1; x9_1 += a9.z * b1_2; x9_1 += a9.w * b1_3;
        x9_2 += a9.x * b2_0; x9_2 += a9.y * b2_1; x9_2 += a9.z * b2_2; x9_2 += a9.w * b2_3;
        x9_3 += a9.x * b3_0; x9_3 += a9.y * b3_1; x9_3 += a9.z * b3_2; x9_3 += a9.w * b3_3;
        let a10 = subgroupBroadcast(al1, 2u);
        x10_0 += a10.x * b0_0; x10_0 += a10.y * b0_1; x10_0 += a10.z * b0_2; x10_0 += a10.w * b0_3;
        x10_1 += a10.x * b1_0; x10_1 += a10.y * b1_1; x10_1 += a10.z * b1_2; x10_1 += a10.w * b1_3;
        x10_2 += a10.x * b2_0; x10_2 += a10.y * b2_1; x10_2 += a10.z * b2_2; x10_2 += a10.w * b2_3;
        x10_3 += a10.x * b3_0; x10_3 += a10.y * b3_1; x10_3 += a10.z * b3_2; x10_3 += a10.w * b3_3;
        let a11 = subgroupBroadcast(al1, 3u);
        x11_0 += a11.x * b0_0; x11_0 += a11.y * b0_1; x11_0 += a11.z * b0_2; x11_0 += a11.w * b0_3;
        x11_1 += a11.x * b1_0; x11_1 += a11.y * b1_1; x11_1 += a11.z * b1_2; x11_1 += a11.w * b1_3;
        x11_2 += a11.x * b2_0; x11_2 += a11.y * b2_1; x11_2 += a11.z * b2_2; x11_2 += a11.w * b2_3;
        x11_3 += a11.x * b3_0; x11_3 += a11.y * b3_1; x11_3 += a11.z * b3_2; x11_3 += a11.w * b3_3;
        let a12 = subgroupBroadcast(al1, 4u);
        x12_0 += a12.x * b0_0; x12_0 += a12.y * b0_1; x12_0 += a12.z * b0_2; x12_0 += a12.w * b0_3;
        x12_1 += a12.x * b1_0; x12_1 += a12.y * b1_1; x12_1 += a12.z * b1_2; x12_1 += a12.w * b1_3;
        x12_2 += a12.x * b2_0; x12_2 += a12.y * b2_1; x12_2 += a12.z * b2_2; x12_2 += a12.w * b2_3;
        x12_3 += a12.x * b3_0; x12_3 += a12.y * b3_1; x12_3 += a12.z * b3_2; x12_3 += a12.w * b3_3;
        let a13 = subgroupBroadcast(al1, 5u);
        x13_0 += a13.x * b0_0; x13_0 += a13.y * b0_1; x13_0 += a13.z * b0_2; x13_0 += a13.w * b0_3;
        x13_1 += a13.x * b1_0; x13_1 += a13.y * b1_1; x13_1 += a13.z * b1_2; x13_1 += a13.w * b1_3;
        x13_2 += a13.x * b2_0; x13_2 += a13.y * b2_1; x13_2 += a13.z * b2_2; x13_2 += a13.w * b2_3;
        x13_3 += a13.x * b3_0; x13_3 += a13.y * b3_1; x13_3 += a13.z * b3_2; x13_3 += a13.w * b3_3;
        let a14 = subgroupBroadcast(al1, 6u);
        x14_0 += a14.x * b0_0; x14_0 += a14.y * b0_1; x14_0 += a14.z * b0_2; x14_0 += a14.w * b0_3;
        x14_1 += a14.x * b1_0; x14_1 += a14.y * b1_1; x14_1 += a14.z * b1_2; x14_1 += a14.w * b1_3;
        x14_2 += a14.x * b2_0; x14_2 += a14.y * b2_1; x14_2 += a14.z * b2_2; x14_2 += a14.w * b2_3;
        x14_3 += a14.x * b3_0; x14_3 += a14.y * b3_1; x14_3 += a14.z * b3_2; x14_3 += a14.w * b3_3;
        let a15 = subgroupBroadcast(al1, 7u);
        x15_0 += a15.x * b0_0; x15_0 += a15.y * b0_1; x15_0 += a15.z * b0_2; x15_0 += a15.w * b0_3;
        x15_1 += a15.x * b1_0; x15_1 += a15.y * b1_1; x15_1 += a15.z * b1_2; x15_1 += a15.w * b1_3;
        x15_2 += a15.x * b2_0; x15_2 += a15.y * b2_1; x15_2 += a15.z * b2_2; x15_2 += a15.w * b2_3;
        x15_3 += a15.x * b3_0; x15_3 += a15.y * b3_1; x15_3 += a15.z * b3_2; x15_3 += a15.w * b3_3;
        let a16 = subgroupBroadcast(al2, 0u);
        x16_0 += a16.x * b0_0; x16_0 += a16.y * b0_1; x16_0 += a16.z * b0_2; x16_0 += a16.w * b0_3;
        x16_1 += a16.x * b1_0; x16_1 += a16.y * b1_1; x16_1 += a16.z * b1_2; x16_1 += a16.w * b1_3;
        x16_2 += a16.x * b2_0; x16_2 += a16.y * b2_1; x16_2 += a16.z * b2_2; x16_2 += a16.w * b2_3;
        x16_3 += a16.x * b3_0; x16_3 += a16.y * b3_1; x16_3 += a16.z * b3_2; x16_3 += a16.w * b3_3;
        let a17 = subgroupBroadcast(al2, 1u);
        x17_0 += a17.x * b0_0; x17_0 += a17.y * b0_1; x17_0 += a17.z * b0_2; x17_0 += a17.w * b0_3;
        x17_1 += a17.x * b1_0; x17_1 += a17.y * b1_1; x17_1 += a17.z * b1_2; x17_1 += a17.w * b1_3;
        x17_2 += a17.x * b2_0; x17_2 += a17.y * b2_1; x17_2 += a17.z * b2_2; x17_2 += a17.w * b2_3;
        x17_3 += a17.x * b3_0; x17_3 += a17.y * b3_1; x17_3 += a17.z * b3_2; x17_3 += a17.w * b3_3;
        let a18 = subgroupBroadcast(al2, 2u);
        x18_0 += a18.x * b0_0; x18_0 += a18.y * b0_1; x18_0 += a18.z * b0_2; x18_0 += a18.w * b0_3;
        x18_1 += a18.x * b1_0; x18_1 += a18.y * b1_1; x18_1 += a18.z * b1_2; x18_1 += a18.w * b1_3;
        x18_2 += a18.x * b2_0; x18_2 += a18.y * b2_1; x18_2 += a18.z * b2_2; x18_2 += a18.w * b2_3;
        x18_3 += a18.x * b3_0; x18_3 += a18.y * b3_1; x18_3 += a18.z * b3_2; x18_3 += a18.w * b3_3;
        let a19 = subgroupBroadcast(al2, 3u);
        x19_0 += a19.x * b0_0; x19_0 += a19.y * b0_1; x19_0 += a19.z * b0_2; x19_0 += a19.w * b0_3;
        x19_1 += a19.x * b1_0; x19_1 += a19.y * b1_1; x19_1 += a19.z * b1_2; x19_1 += a19.w * b1_3;
        x19_2 += a19.x * b2_0; x19_2 += a19.y * b2_1; x19_2 += a19.z * b2_2; x19_2 += a19.w * b2_3;
        x19_3 += a19.x * b3_0; x19_3 += a19.y * b3_1; x19_3 += a19.z * b3_2; x19_3 += a19.w * b3_3;
        let a20 = subgroupBroadcast(al2, 4u);
        x20_0 += a20.x * b0_0; x20_0 += a20.y * b0_1; x20_0 += a20.z * b0_2; x20_0 += a20.w * b0_3;
        x20_1 += a20.x * b1_0; x20_1 += a20.y * b1_1; x20_1 += a20.z * b1_2; x20_1 += a20.w * b1_3;
        x20_2 += a20.x * b2_0; x20_2 += a20.y * b2_1; x20_2 += a20.z * b2_2; x20_2 += a20.w * b2_3;
        x20_3 += a20.x * b3_0; x20_3 += a20.y * b3_1; x20_3 += a20.z * b3_2; x20_3 += a20.w * b3_3;
        let a21 = subgroupBroadcast(al2, 5u);
        x21_0 += a21.x * b0_0; x21_0 += a21.y * b0_1; x21_0 += a21.z * b0_2; x21_0 += a21.w * b0_3;
        x21_1 += a21.x * b1_0; x21_1 += a21.y * b1_1; x21_1 += a21.z * b1_2; x21_1 += a21.w * b1_3;
        x21_2 += a21.x * b2_0; x21_2 += a21.y * b2_1; x21_2 += a21.z * b2_2; x21_2 += a21.w * b2_3;
        x21_3 += a21.x * b3_0; x21_3 += a21.y * b3_1; x21_3 += a21.z * b3_2; x21_3 += a21.w * b3_3;
        let a22 = subgroupBroadcast(al2, 6u);
        x22_0 += a22.x * b0_0; x22_0 += a22.y * b0_1; x22_0 += a22.z * b0_2; x22_0 += a22.w * b0_3;
        x22_1 += a22.x * b1_0; x22_1 += a22.y * b1_1; x22_1 += a22.z * b1_2; x22_1 += a22.w * b1_3;
        x22_2 += a22.x * b2_0; x22_2 += a22.y * b2_1; x22_2 += a22.z * b2_2; x22_2 += a22.w * b2_3;
        x22_3 += a22.x * b3_0; x22_3 += a22.y * b3_1; x22_3 += a22.z * b3_2; x22_3 += a22.w * b3_3;
        let a23 = subgroupBroadcast(al2, 7u);
        x23_0 += a23.x * b0_0; x23_0 += a23.y * b0_1; x23_0 += a23.z * b0_2; x23_0 += a23.w * b0_3;
        x23_1 += a23.x * b1_0; x23_1 += a23.y * b1_1; x23_1 += a23.z * b1_2; x23_1 += a23.w * b1_3;
        x23_2 += a23.x * b2_0; x23_2 += a23.y * b2_1; x23_2 += a23.z * b2_2; x23_2 += a23.w * b2_3;
        x23_3 += a23.x * b3_0; x23_3 += a23.y * b3_1; x23_3 += a23.z * b3_2; x23_3 += a23.w * b3_3;
        let a24 = subgroupBroadcast(al3, 0u);
        x24_0 += a24.x * b0_0; x24_0 += a24.y * b0_1; x24_0 += a24.z * b0_2; x24_0 += a24.w * b0_3;
        x24_1 += a24.x * b1_0; x24_1 += a24.y * b1_1; x24_1 += a24.z * b1_2; x24_1 += a24.w * b1_3;
        x24_2 += a24.x * b2_0; x24_2 += a24.y * b2_1; x24_2 += a24.z * b2_2; x24_2 += a24.w * b2_3;
        x24_3 += a24.x * b3_0; x24_3 += a24.y * b3_1; x24_3 += a24.z * b3_2; x24_3 += a24.w * b3_3;
        let a25 = subgroupBroadcast(al3, 1u);
        x25_0 += a25.x * b0_0; x25_0 += a25.y * b0_1; x25_0 += a25.z * b0_2; x25_0 += a25.w * b0_3;
        x25_1 += a25.x * b1_0; x25_1 += a25.y * b1_1; x25_1 += a25.z * b1_2; x25_1 += a25.w * b1_3;
        x25_2 += a25.x * b2_0; x25_2 += a25.y * b2_1; x25_2 += a25.z * b2_2; x25_2 += a25.w * b2_3;
        x25_3 += a25.x * b3_0; x25_3 += a25.y * b3_1; x25_3 += a25.z * b3_2; x25_3 += a25.w * b3_3;
        let a26 = subgroupBroadcast(al3, 2u);
        x26_0 += a26.x * b0_0; x26_0 += a26.y * b0_1; x26_0 += a26.z * b0_2; x26_0 += a26.w * b0_3;
        x26_1 += a26.x * b1_0; x26_1 += a26.y * b1_1; x26_1 += a26.z * b1_2; x26_1 += a26.w * b1_3;
        x26_2 += a26.x * b2_0; x26_2 += a26.y * b2_1; x26_2 += a26.z * b2_2; x26_2 += a26.w * b2_3;
        x26_3 += a26.x * b3_0; x26_3 += a26.y * b3_1; x26_3 += a26.z * b3_2; x26_3 += a26.w * b3_3;
        let a27 = subgroupBroadcast(al3, 3u);
        x27_0 += a27.x * b0_0; x27_0 += a27.y * b0_1; x27_0 += a27.z * b0_2; x27_0 += a27.w * b0_3;
        x27_1 += a27.x * b1_0; x27_1 += a27.y * b1_1; x27_1 += a27.z * b1_2; x27_1 += a27.w * b1_3;
        x27_2 += a27.x * b2_0; x27_2 += a27.y * b2_1; x27_2 += a27.z * b2_2; x27_2 += a27.w * b2_3;
        x27_3 += a27.x * b3_0; x27_3 += a27.y * b3_1; x27_3 += a27.z * b3_2; x27_3 += a27.w * b3_3;
        let a28 = subgroupBroadcast(al3, 4u);
        x28_0 += a28.x * b0_0; x28_0 += a28.y * b0_1; x28_0 += a28.z * b0_2; x28_0 += a28.w * b0_3;
        x28_1 += a28.x * b1_0; x28_1 += a28.y * b1_1; x28_1 += a28.z * b1_2; x28_1 += a28.w * b1_3;
        x28_2 += a28.x * b2_0; x28_2 += a28.y * b2_1; x28_2 += a28.z * b2_2; x28_2 += a28.w * b2_3;
        x28_3 += a28.x * b3_0; x28_3 += a28.y * b3_1; x28_3 += a28.z * b3_2; x28_3 += a28.w * b3_3;
        let a29 = subgroupBroadcast(al3, 5u);
        x29_0 += a29.x * b0_0; x29_0 += a29.y * b0_1; x29_0 += a29.z * b0_2; x29_0 += a29.w * b0_3;
        x29_1 += a29.x * b1_0; x29_1 += a29.y * b1_1; x29_1 += a29.z * b1_2; x29_1 += a29.w * b1_3;
        x29_2 += a29.x * b2_0; x29_2 += a29.y * b2_1; x29_2 += a29.z * b2_2; x29_2 += a29.w * b2_3;
        x29_3 += a29.x * b3_0; x29_3 += a29.y * b3_1; x29_3 += a29.z * b3_2; x29_3 += a29.w * b3_3;
        let a30 = subgroupBroadcast(al3, 6u);
        x30_0 += a30.x * b0_0; x30_0 += a30.y * b0_1; x30_0 += a30.z * b0_2; x30_0 += a30.w * b0_3;
        x30_1 += a30.x * b1_0; x30_1 += a30.y * b1_1; x30_1 += a30.z * b1_2; x30_1 += a30.w * b1_3;
        x30_2 += a30.x * b2_0; x30_2 += a30.y * b2_1; x30_2 += a30.z * b2_2; x30_2 += a30.w * b2_3;
        x30_3 += a30.x * b3_0; x30_3 += a30.y * b3_1; x30_3 += a30.z * b3_2; x30_3 += a30.w * b3_3;
        let a31 = subgroupBroadcast(al3, 7u);
        x31_0 += a31.x * b0_0; x31_0 += a31.y * b0_1; x31_0 += a31.z * b0_2; x31_0 += a31.w * b0_3;
        x31_1 += a31.x * b1_0; x31_1 += a31.y * b1_1; x31_1 += a31.z * b1_2; x31_1 += a31.w * b1_3;
        x31_2 += a31.x * b2_0; x31_2 += a31.y * b2_1; x31_2 += a31.z * b2_2; x31_2 += a31.w * b2_3;
        x31_3 += a31.x * b3_0; x31_3 += a31.y * b3_1; x31_3 += a31.z * b3_2; x31_3 += a31.w * b3_3;
        let a32 = subgroupBroadcast(al4, 0u);
        x32_0 += a32.x * b0_0; x32_0 += a32.y * b0_1; x32_0 += a32.z * b0_2; x32_0 += a32.w * b0_3;
        x32_1 += a32.x * b1_0; x32_1 += a32.y * b1_1; x32_1 += a32.z * b1_2; x32_1 += a32.w * b1_3;
        x32_2 += a32.x * b2_0; x32_2 += a32.y * b2_1; x32_2 += a32.z * b2_2; x32_2 += a32.w * b2_3;
        x32_3 += a32.x * b3_0; x32_3 += a32.y * b3_1; x32_3 += a32.z * b3_2; x32_3 += a32.w * b3_3;
        let a33 = subgroupBroadcast(al4, 1u);
        x33_0 += a33.x * b0_0; x33_0 += a33.y * b0_1; x33_0 += a33.z * b0_2; x33_0 += a33.w * b0_3;
        x33_1 += a33.x * b1_0; x33_1 += a33.y * b1_1; x33_1 += a33.z * b1_2; x33_1 += a33.w * b1_3;
        x33_2 += a33.x * b2_0; x33_2 += a33.y * b2_1; x33_2 += a33.z * b2_2; x33_2 += a33.w * b2_3;
        x33_3 += a33.x * b3_0; x33_3 += a33.y * b3_1; x33_3 += a33.z * b3_2; x33_3 += a33.w * b3_3;
        let a34 = subgroupBroadcast(al4, 2u);
        x34_0 += a34.x * b0_0; x34_0 += a34.y * b0_1; x34_0 += a34.z * b0_2; x34_0 += a34.w * b0_3;
        x34_1 += a34.x * b1_0; x34_1 += a34.y * b1_1; x34_1 += a34.z * b1_2; x34_1 += a34.w * b1_3;
        x34_2 += a34.x * b2_0; x34_2 += a34.y * b2_1; x34_2 += a34.z * b2_2; x34_2 += a34.w * b2_3;
        x34_3 += a34.x * b3_0; x34_3 += a34.y * b3_1; x34_3 += a34.z * b3_2; x34_3 += a34.w * b3_3;
        let a35 = subgroupBroadcast(al4, 3u);
        x35_0 += a35.x * b0_0; x35_0 += a35.y * b0_1; x35_0 += a35.z * b0_2; x35_0 += a35.w * b0_3;
        x35_1 += a35.x * b1_0; x35_1 += a35.y * b1_1; x35_1 += a35.z * b1_2; x35_1 += a35.w * b1_3;
        x35_2 += a35.x * b2_0; x35_2 += a35.y * b2_1; x35_2 += a35.z * b2_2; x35_2 += a35.w * b2_3;
        x35_3 += a35.x * b3_0; x35_3 += a35.y * b3_1; x35_3 += a35.z * b3_2; x35_3 += a35.w * b3_3;
        let a36 = subgroupBroadcast(al4, 4u);
        x36_0 += a36.x * b0_0; x36_0 += a36.y * b0_1; x36_0 += a36.z * b0_2; x36_0 += a36.w * b0_3;
        x36_1 += a36.x * b1_0; x36_1 += a36.y * b1_1; x36_1 += a36.z * b1_2; x36_1 += a36.w * b1_3;
        x36_2 += a36.x * b2_0; x36_2 += a36.y * b2_1; x36_2 += a36.z * b2_2; x36_2 += a36.w * b2_3;
        x36_3 += a36.x * b3_0; x36_3 += a36.y * b3_1; x36_3 += a36.z * b3_2; x36_3 += a36.w * b3_3;
        let a37 = subgroupBroadcast(al4, 5u);
        x37_0 += a37.x * b0_0; x37_0 += a37.y * b0_1; x37_0 += a37.z * b0_2; x37_0 += a37.w * b0_3;
        x37_1 += a37.x * b1_0; x37_1 += a37.y * b1_1; x37_1 += a37.z * b1_2; x37_1 += a37.w * b1_3;
        x37_2 += a37.x * b2_0; x37_2 += a37.y * b2_1; x37_2 += a37.z * b2_2; x37_2 += a37.w * b2_3;
        x37_3 += a37.x * b3_0; x37_3 += a37.y * b3_1; x37_3 += a37.z * b3_2; x37_3 += a37.w * b3_3;
        let a38 = subgroupBroadcast(al4, 6u);
        x38_0 += a38.x * b0_0; x38_0 += a38.y * b0_1; x38_0 += a38.z * b0_2; x38_0 += a38.w * b0_3;
        x38_1 += a38.x * b1_0; x38_1 += a38.y * b1_1; x38_1 += a38.z * b1_2; x38_1 += a38.w * b1_3;
        x38_2 += a38.x * b2_0; x38_2 += a38.y * b2_1; x38_2 += a38.z * b2_2; x38_2 += a38.w * b2_3;
        x38_3 += a38.x * b3_0; x38_3 += a38.y * b3_1; x38_3 += a38.z * b3_2; x38_3 += a38.w * b3_3;
        let a39 = subgroupBroadcast(al4, 7u);
        x39_0 += a39.x * b0_0; x39_0 += a39.y * b0_1; x39_0 += a39.z * b0_2; x39_0 += a39.w * b0_3;
        x39_1 += a39.x * b1_0; x39_1 += a39.y * b1_1; x39_1 += a39.z * b1_2; x39_1 += a39.w * b1_3;
        x39_2 += a39.x * b2_0; x39_2 += a39.y * b2_1; x39_2 += a39.z * b2_2; x39_2 += a39.w * b2_3;
        x39_3 += a39.x * b3_0; x39_3 += a39.y * b3_1; x39_3 += a39.z * b3_2; x39_3 += a39.w * b3_3;
        let a40 = subgroupBroadcast(al5, 0u);
        x40_0 += a40.x * b0_0; x40_0 += a40.y * b0_1; x40_0 += a40.z * b0_2; x40_0 += a40.w * b0_3;
        x40_1 += a40.x * b1_0; x40_1 += a40.y * b1_1; x40_1 += a40.z * b1_2; x40_1 += a40.w * b1_3;
        x40_2 += a40.x * b2_0; x40_2 += a40.y * b2_1; x40_2 += a40.z * b2_2; x40_2 += a40.w * b2_3;
        x40_3 += a40.x * b3_0; x40_3 += a40.y * b3_1; x40_3 += a40.z * b3_2; x40_3 += a40.w * b3_3;
        let a41 = subgroupBroadcast(al5, 1u);
        x41_0 += a41.x * b0_0; x41_0 += a41.y * b0_1; x41_0 += a41.z * b0_2; x41_0 += a41.w * b0_3;
        x41_1 += a41.x * b1_0; x41_1 += a41.y * b1_1; x41_1 += a41.z * b1_2; x41_1 += a41.w * b1_3;
        x41_2 += a41.x * b2_0; x41_2 += a41.y * b2_1; x41_2 += a41.z * b2_2; x41_2 += a41.w * b2_3;
        x41_3 += a41.x * b3_0; x41_3 += a41.y * b3_1; x41_3 += a41.z * b3_2; x41_3 += a41.w * b3_3;
        let a42 = subgroupBroadcast(al5, 2u);
        x42_0 += a42.x * b0_0; x42_0 += a42.y * b0_1; x42_0 += a42.z * b0_2; x42_0 += a42.w * b0_3;
        x42_1 += a42.x * b1_0; x42_1 += a42.y * b1_1; x42_1 += a42.z * b1_2; x42_1 += a42.w * b1_3;
        x42_2 += a42.x * b2_0; x42_2 += a42.y * b2_1; x42_2 += a42.z * b2_2; x42_2 += a42.w * b2_3;
        x42_3 += a42.x * b3_0; x42_3 += a42.y * b3_1; x42_3 += a42.z * b3_2; x42_3 += a42.w * b3_3;
        let a43 = subgroupBroadcast(al5, 3u);
        x43_0 += a43.x * b0_0; x43_0 += a43.y * b0_1; x43_0 += a43.z * b0_2; x43_0 += a43.w * b0_3;
        x43_1 += a43.x * b1_0; x43_1 += a43.y * b1_1; x43_1 += a43.z * b1_2; x43_1 += a43.w * b1_3;
        x43_2 += a43.x * b2_0; x43_2 += a43.y * b2_1; x43_2 += a43.z * b2_2; x43_2 += a43.w * b2_3;
        x43_3 += a43.x * b3_0; x43_3 += a43.y * b3_1; x43_3 += a43.z * b3_2; x43_3 += a43.w * b3_3;
        let a44 = subgroupBroadcast(al5, 4u);
        x44_0 += a44.x * b0_0; x44_0 += a44.y * b0_1; x44_0 += a44.z * b0_2; x44_0 += a44.w * b0_3;
        x44_1 += a44.x * b1_0; x44_1 += a44.y * b1_1; x44_1 += a44.z * b1_2; x44_1 += a44.w * b1_3;
        x44_2 += a44.x * b2_0; x44_2 += a44.y * b2_1; x44_2 += a44.z * b2_2; x44_2 += a44.w * b2_3;
        x44_3 += a44.x * b3_0; x44_3 += a44.y * b3_1; x44_3 += a44.z * b3_2; x44_3 += a44.w * b3_3;
        let a45 = subgroupBroadcast(al5, 5u);
        x45_0 += a45.x * b0_0; x45_0 += a45.y * b0_1; x45_0 += a45.z * b0_2; x45_0 += a45.w * b0_3;
        x45_1 += a45.x * b1_0; x45_1 += a45.y * b1_1; x45_1 += a45.z * b1_2; x45_1 += a45.w * b1_3;
        x45_2 += a45.x * b2_0; x45_2 += a45.y * b2_1; x45_2 += a45.z * b2_2; x45_2 += a45.w * b2_3;
        x45_3 += a45.x * b3_0; x45_3 += a45.y * b3_1; x45_3 += a45.z * b3_2; x45_3 += a45.w * b3_3;
        let a46 = subgroupBroadcast(al5, 6u);
        x46_0 += a46.x * b0_0; x46_0 += a46.y * b0_1; x46_0 += a46.z * b0_2; x46_0 += a46.w * b0_3;
        x46_1 += a46.x * b1_0; x46_1 += a46.y * b1_1; x46_1 += a46.z * b1_2; x46_1 += a46.w * b1_3;
        x46_2 += a46.x * b2_0; x46_2 += a46.y * b2_1; x46_2 += a46.z * b2_2; x46_2 += a46.w * b2_3;
        x46_3 += a46.x * b3_0; x46_3 += a46.y * b3_1; x46_3 += a46.z * b3_2; x46_3 += a46.w * b3_3;
        let a47 = subgroupBroadcast(al5, 7u);
        x47_0 += a47.x * b0_0; x47_0 += a47.y * b0_1; x47_0 += a47.z * b0_2; x47_0 += a47.w * b0_3;
        x47_1 += a47.x * b1_0; x47_1 += a47.y * b1_1; x47_1 += a47.z * b1_2; x47_1 += a47.w * b1_3;
        x47_2 += a47.x * b2_0; x47_2 += a47.y * b2_1; x47_2 += a47.z * b2_2; x47_2 += a47.w * b2_3;
        x47_3 += a47.x * b3_0; x47_3 += a47.y * b3_1; x47_3 += a47.z * b3_2; x47_3 += a47.w * b3_3;
        let a48 = subgroupBroadcast(al6, 0u);
        x48_0 += a48.x * b0_0; x48_0 += a48.y * b0_1; x48_0 += a48.z * b0_2; x48_0 += a48.w * b0_3;
        x48_1 += a48.x * b1_0; x48_1 += a48.y * b1_1; x48_1 += a48.z * b1_2; x48_1 += a48.w * b1_3;
        x48_2 += a48.x * b2_0; x48_2 += a48.y * b2_1; x48_2 += a48.z * b2_2; x48_2 += a48.w * b2_3;
        x48_3 += a48.x * b3_0; x48_3 += a48.y * b3_1; x48_3 += a48.z * b3_2; x48_3 += a48.w * b3_3;
        let a49 = subgroupBroadcast(al6, 1u);
        x49_0 += a49.x * b0_0; x49_0 += a49.y * b0_1; x49_0 += a49.z * b0_2; x49_0 += a49.w * b0_3;
        x49_1 += a49.x * b1_0; x49_1 += a49.y * b1_1; x49_1 += a49.z * b1_2; x49_1 += a49.w * b1_3;
        x49_2 += a49.x * b2_0; x49_2 += a49.y * b2_1; x49_2 += a49.z * b2_2; x49_2 += a49.w * b2_3;
        x49_3 += a49.x * b3_0; x49_3 += a49.y * b3_1; x49_3 += a49.z * b3_2; x49_3 += a49.w * b3_3;
        let a50 = subgroupBroadcast(al6, 2u);
        x50_0 += a50.x * b0_0; x50_0 += a50.y * b0_1; x50_0 += a50.z * b0_2; x50_0 += a50.w * b0_3;
        x50_1 += a50.x * b1_0; x50_1 += a50.y * b1_1; x50_1 += a50.z * b1_2; x50_1 += a50.w * b1_3;
        x50_2 += a50.x * b2_0; x50_2 += a50.y * b2_1; x50_2 += a50.z * b2_2; x50_2 += a50.w * b2_3;
        x50_3 += a50.x * b3_0; x50_3 += a50.y * b3_1; x50_3 += a50.z * b3_2; x50_3 += a50.w * b3_3;
        let a51 = subgroupBroadcast(al6, 3u);
        x51_0 += a51.x * b0_0; x51_0 += a51.y * b0_1; x51_0 += a51.z * b0_2; x51_0 += a51.w * b0_3;
        x51_1 += a51.x * b1_0; x51_1 += a51.y * b1_1; x51_1 += a51.z * b1_2; x51_1 += a51.w * b1_3;
        x51_2 += a51.x * b2_0; x51_2 += a51.y * b2_1; x51_2 += a51.z * b2_2; x51_2 += a51.w * b2_3;
        x51_3 += a51.x * b3_0; x51_3 += a51.y * b3_1; x51_3 += a51.z * b3_2; x51_3 += a51.w * b3_3;
        let a52 = subgroupBroadcast(al6, 4u);
        x52_0 += a52.x * b0_0; x52_0 += a52.y * b0_1; x52_0 += a52.z * b0_2; x52_0 += a52.w * b0_3;
        x52_1 += a52.x * b1_0; x52_1 += a52.y * b1_1; x52_1 += a52.z * b1_2; x52_1 += a52.w * b1_3;
        x52_2 += a52.x * b2_0; x52_2 += a52.y * b2_1; x52_2 += a52.z * b2_2; x52_2 += a52.w * b2_3;
        x52_3 += a52.x * b3_0; x52_3 += a52.y * b3_1; x52_3 += a52.z * b3_2; x52_3 += a52.w * b3_3;
        let a53 = subgroupBroadcast(al6, 5u);
        x53_0 += a53.x * b0_0; x53_0 += a53.y * b0_1; x53_0 += a53.z * b0_2; x53_0 += a53.w * b0_3;
        x53_1 += a53.x * b1_0; x53_1 += a53.y * b1_1; x53_1 += a53.z * b1_2; x53_1 += a53.w * b1_3;
        x53_2 += a53.x * b2_0; x53_2 += a53.y * b2_1; x53_2 += a53.z * b2_2; x53_2 += a53.w * b2_3;
        x53_3 += a53.x * b3_0; x53_3 += a53.y * b3_1; x53_3 += a53.z * b3_2; x53_3 += a53.w * b3_3;
        let a54 = subgroupBroadcast(al6, 6u);
        x54_0 += a54.x * b0_0; x54_0 += a54.y * b0_1; x54_0 += a54.z * b0_2; x54_0 += a54.w * b0_3;
        x54_1 += a54.x * b1_0; x54_1 += a54.y * b1_1; x54_1 += a54.z * b1_2; x54_1 += a54.w * b1_3;
        x54_2 += a54.x * b2_0; x54_2 += a54.y * b2_1; x54_2 += a54.z * b2_2; x54_2 += a54.w * b2_3;
        x54_3 += a54.x * b3_0; x54_3 += a54.y * b3_1; x54_3 += a54.z * b3_2; x54_3 += a54.w * b3_3;
        let a55 = subgroupBroadcast(al6, 7u);
        x55_0 += a55.x * b0_0; x55_0 += a55.y * b0_1; x55_0 += a55.z * b0_2; x55_0 += a55.w * b0_3;
        x55_1 += a55.x * b1_0; x55_1 += a55.y * b1_1; x55_1 += a55.z * b1_2; x55_1 += a55.w * b1_3;
        x55_2 += a55.x * b2_0; x55_2 += a55.y * b2_1; x55_2 += a55.z * b2_2; x55_2 += a55.w * b2_3;
        x55_3 += a55.x * b3_0; x55_3 += a55.y * b3_1; x55_3 += a55.z * b3_2; x55_3 += a55.w * b3_3;
        let a56 = subgroupBroadcast(al7, 0u);
        x56_0 += a56.x * b0_0; x56_0 += a56.y * b0_1; x56_0 += a56.z * b0_2; x56_0 += a56.w * b0_3;
        x56_1 += a56.x * b1_0; x56_1 += a56.y * b1_1; x56_1 += a56.z * b1_2; x56_1 += a56.w * b1_3;
        x56_2 += a56.x * b2_0; x56_2 += a56.y * b2_1; x56_2 += a56.z * b2_2; x56_2 += a56.w * b2_3;
        x56_3 += a56.x * b3_0; x56_3 += a56.y * b3_1; x56_3 += a56.z * b3_2; x56_3 += a56.w * b3_3;
        let a57 = subgroupBroadcast(al7, 1u);
        x57_0 += a57.x * b0_0; x57_0 += a57.y * b0_1; x57_0 += a57.z * b0_2; x57_0 += a57.w * b0_3;
        x57_1 += a57.x * b1_0; x57_1 += a57.y * b1_1; x57_1 += a57.z * b1_2; x57_1 += a57.w * b1_3;
        x57_2 += a57.x * b2_0; x57_2 += a57.y * b2_1; x57_2 += a57.z * b2_2; x57_2 += a57.w * b2_3;
        x57_3 += a57.x * b3_0; x57_3 += a57.y * b3_1; x57_3 += a57.z * b3_2; x57_3 += a57.w * b3_3;
        let a58 = subgroupBroadcast(al7, 2u);
        x58_0 += a58.x * b0_0; x58_0 += a58.y * b0_1; x58_0 += a58.z * b0_2; x58_0 += a58.w * b0_3;
        x58_1 += a58.x * b1_0; x58_1 += a58.y * b1_1; x58_1 += a58.z * b1_2; x58_1 += a58.w * b1_3;
        x58_2 += a58.x * b2_0; x58_2 += a58.y * b2_1; x58_2 += a58.z * b2_2; x58_2 += a58.w * b2_3;
        x58_3 += a58.x * b3_0; x58_3 += a58.y * b3_1; x58_3 += a58.z * b3_2; x58_3 += a58.w * b3_3;
        let a59 = subgroupBroadcast(al7, 3u);
        x59_0 += a59.x * b0_0; x59_0 += a59.y * b0_1; x59_0 += a59.z * b0_2; x59_0 += a59.w * b0_3;
        x59_1 += a59.x * b1_0; x59_1 += a59.y * b1_1; x59_1 += a59.z * b1_2; x59_1 += a59.w * b1_3;
        x59_2 += a59.x * b2_0; x59_2 += a59.y * b2_1; x59_2 += a59.z * b2_2; x59_2 += a59.w * b2_3;
        x59_3 += a59.x * b3_0; x59_3 += a59.y * b3_1; x59_3 += a59.z * b3_2; x59_3 += a59.w * b3_3;
        let a60 = subgroupBroadcast(al7, 4u);
        x60_0 += a60.x * b0_0; x60_0 += a60.y * b0_1; x60_0 += a60.z * b0_2; x60_0 += a60.w * b0_3;
        x60_1 += a60.x * b1_0; x60_1 += a60.y * b1_1; x60_1 += a60.z * b1_2; x60_1 += a60.w * b1_3;
        x60_2 += a60.x * b2_0; x60_2 += a60.y * b2_1; x60_2 += a60.z * b2_2; x60_2 += a60.w * b2_3;
        x60_3 += a60.x * b3_0; x60_3 += a60.y * b3_1; x60_3 += a60.z * b3_2; x60_3 += a60.w * b3_3;
        let a61 = subgroupBroadcast(al7, 5u);
        x61_0 += a61.x * b0_0; x61_0 += a61.y * b0_1; x61_0 += a61.z * b0_2; x61_0 += a61.w * b0_3;
        x61_1 += a61.x * b1_0; x61_1 += a61.y * b1_1; x61_1 += a61.z * b1_2; x61_1 += a61.w * b1_3;
        x61_2 += a61.x * b2_0; x61_2 += a61.y * b2_1; x61_2 += a61.z * b2_2; x61_2 += a61.w * b2_3;
        x61_3 += a61.x * b3_0; x61_3 += a61.y * b3_1; x61_3 += a61.z * b3_2; x61_3 += a61.w * b3_3;
        let a62 = subgroupBroadcast(al7, 6u);
        x62_0 += a62.x * b0_0; x62_0 += a62.y * b0_1; x62_0 += a62.z * b0_2; x62_0 += a62.w * b0_3;
        x62_1 += a62.x * b1_0; x62_1 += a62.y * b1_1; x62_1 += a62.z * b1_2; x62_1 += a62.w * b1_3;
        x62_2 += a62.x * b2_0; x62_2 += a62.y * b2_1; x62_2 += a62.z * b2_2; x62_2 += a62.w * b2_3;
        x62_3 += a62.x * b3_0; x62_3 += a62.y * b3_1; x62_3 += a62.z * b3_2; x62_3 += a62.w * b3_3;
        let a63 = subgroupBroadcast(al7, 7u);
        x63_0 += a63.x * b0_0; x63_0 += a63.y * b0_1; x63_0 += a63.z * b0_2; x63_0 += a63.w * b0_3;
        x63_1 += a63.x * b1_0; x63_1 += a63.y * b1_1; x63_1 += a63.z * b1_2; x63_1 += a63.w * b1_3;
        x63_2 += a63.x * b2_0; x63_2 += a63.y * b2_1; x63_2 += a63.z * b2_2; x63_2 += a63.w * b2_3;
        x63_3 += a63.x * b3_0; x63_3 += a63.y * b3_1; x63_3 += a63.z * b3_2; x63_3 += a63.w * b3_3;
        bi += 4u * bstep;
    }
    let w0 = (o.z + n0) / 4u;
    let rs = P.N / 4u;
    if (m0 + 0u < P.M) { put4(w0 + (m0 + 0u) * rs, n0, 0u, x0_0); put4(w0 + (m0 + 0u) * rs, n0, 1u, x0_1); put4(w0 + (m0 + 0u) * rs, n0, 2u, x0_2); put4(w0 + (m0 + 0u) * rs, n0, 3u, x0_3); }
    if (m0 + 1u < P.M) { put4(w0 + (m0 + 1u) * rs, n0, 0u, x1_0); put4(w0 + (m0 + 1u) * rs, n0, 1u, x1_1); put4(w0 + (m0 + 1u) * rs, n0, 2u, x1_2); put4(w0 + (m0 + 1u) * rs, n0, 3u, x1_3); }
    if (m0 + 2u < P.M) { put4(w0 + (m0 + 2u) * rs, n0, 0u, x2_0); put4(w0 + (m0 + 2u) * rs, n0, 1u, x2_1); put4(w0 + (m0 + 2u) * rs, n0, 2u, x2_2); put4(w0 + (m0 + 2u) * rs, n0, 3u, x2_3); }
    if (m0 + 3u < P.M) { put4(w0 + (m0 + 3u) * rs, n0, 0u, x3_0); put4(w0 + (m0 + 3u) * rs, n0, 1u, x3_1); put4(w0 + (m0 + 3u) * rs, n0, 2u, x3_2); put4(w0 + (m0 + 3u) * rs, n0, 3u, x3_3); }
    if (m0 + 4u < P.M) { put4(w0 + (m0 + 4u) * rs, n0, 0u, x4_0); put4(w0 + (m0 + 4u) * rs, n0, 1u, x4_1); put4(w0 + (m0 + 4u) * rs, n0, 2u, x4_2); put4(w0 + (m0 + 4u) * rs, n0, 3u, x4_3); }
    if (m0 + 5u < P.M) { put4(w0 + (m0 + 5u) * rs, n0, 0u, x5_0); put4(w0 + (m0 + 5u) * rs, n0, 1u, x5_1); put4(w0 + (m0 + 5u) * rs, n0, 2u, x5_2); put4(w0 + (m0 + 5u) * rs, n0, 3u, x5_3); }
    if (m0 + 6u < P.M) { put4(w0 + (m0 + 6u) * rs, n0, 0u, x6_0); put4(w0 + (m0 + 6u) * rs, n0, 1u, x6_1); put4(w0 + (m0 + 6u) * rs, n0, 2u, x6_2); put4(w0 + (m0 + 6u) * rs, n0, 3u, x6_3); }
    if (m0 + 7u < P.M) { put4(w0 + (m0 + 7u) * rs, n0, 0u, x7_0); put4(w0 + (m0 + 7u) * rs, n0, 1u, x7_1); put4(w0 + (m0 + 7u) * rs, n0, 2u, x7_2); put4(w0 + (m0 + 7u) * rs, n0, 3u, x7_3); }
    if (m0 + 8u < P.M) { put4(w0 + (m0 + 8u) * rs, n0, 0u, x8_0); put4(w0 + (m0 + 8u) * rs, n0, 1u, x8_1); put4(w0 + (m0 + 8u) * rs, n0, 2u, x8_2); put4(w0 + (m0 + 8u) * rs, n0, 3u, x8_3); }
    if (m0 + 9u < P.M) { put4(w0 + (m0 + 9u) * rs, n0, 0u, x9_0); put4(w0 + (m0 + 9u) * rs, n0, 1u, x9_1); put4(w0 + (m0 + 9u) * rs, n0, 2u, x9_2); put4(w0 + (m0 + 9u) * rs, n0, 3u, x9_3); }
    if (m0 + 10u < P.M) { put4(w0 + (m0 + 10u) * rs, n0, 0u, x10_0); put4(w0 + (m0 + 10u) * rs, n0, 1u, x10_1); put4(w0 + (m0 + 10u) * rs, n0, 2u, x10_2); put4(w0 + (m0 + 10u) * rs, n0, 3u, x10_3); }
    if (m0 + 11u < P.M) { put4(w0 + (m0 + 11u) * rs, n0, 0u, x11_0); put4(w0 + (m0 + 11u) * rs, n0, 1u, x11_1); put4(w0 + (m0 + 11u) * rs, n0, 2u, x11_2); put4(w0 + (m0 + 11u) * rs, n0, 3u, x11_3); }
    if (m0 + 12u < P.M) { put4(w0 + (m0 + 12u) * rs, n0, 0u, x12_0); put4(w0 + (m0 + 12u) * rs, n0, 1u, x12_1); put4(w0 + (m0 + 12u) * rs, n0, 2u, x12_2); put4(w0 + (m0 + 12u) * rs, n0, 3u, x12_3); }
    if (m0 + 13u < P.M) { put4(w0 + (m0 + 13u) * rs, n0, 0u, x13_0); put4(w0 + (m0 + 13u) * rs, n0, 1u, x13_1); put4(w0 + (m0 + 13u) * rs, n0, 2u, x13_2); put4(w0 + (m0 + 13u) * rs, n0, 3u, x13_3); }
    if (m0 + 14u < P.M) { put4(w0 + (m0 + 14u) * rs, n0, 0u, x14_0); put4(w0 + (m0 + 14u) * rs, n0, 1u, x14_1); put4(w0 + (m0 + 14u) * rs, n0, 2u, x14_2); put4(w0 + (m0 + 14u) * rs, n0, 3u, x14_3); }
    if (m0 + 15u < P.M) { put4(w0 + (m0 + 15u) * rs, n0, 0u, x15_0); put4(w0 + (m0 + 15u) * rs, n0, 1u, x15_1); put4(w0 + (m0 + 15u) * rs, n0, 2u, x15_2); put4(w0 + (m0 + 15u) * rs, n0, 3u, x15_3); }
    if (m0 + 16u < P.M) { put4(w0 + (m0 + 16u) * rs, n0, 0u, x16_0); put4(w0 + (m0 + 16u) * rs, n0, 1u, x16_1); put4(w0 + (m0 + 16u) * rs, n0, 2u, x16_2); put4(w0 + (m0 + 16u) * rs, n0, 3u, x16_3); }
    if (m0 + 17u < P.M) { put4(w0 + (m0 + 17u) * rs, n0, 0u, x17_0); put4(w0 + (m0 + 17u) * rs, n0, 1u, x17_1); put4(w0 + (m0 + 17u) * rs, n0, 2u, x17_2); put4(w0 + (m0 + 17u) * rs, n0, 3u, x17_3); }
    if (m0 + 18u < P.M) { put4(w0 + (m0 + 18u) * rs, n0, 0u, x18_0); put4(w0 + (m0 + 18u) * rs, n0, 1u, x18_1); put4(w0 + (m0 + 18u) * rs, n0, 2u, x18_2); put4(w0 + (m0 + 18u) * rs, n0, 3u, x18_3); }
    if (m0 + 19u < P.M) { put4(w0 + (m0 + 19u) * rs, n0, 0u, x19_0); put4(w0 + (m0 + 19u) * rs, n0, 1u, x19_1); put4(w0 + (m0 + 19u) * rs, n0, 2u, x19_2); put4(w0 + (m0 + 19u) * rs, n0, 3u, x19_3); }
    if (m0 + 20u < P.M) { put4(w0 + (m0 + 20u) * rs, n0, 0u, x20_0); put4(w0 + (m0 + 20u) * rs, n0, 1u, x20_1); put4(w0 + (m0 + 20u) * rs, n0, 2u, x20_2); put4(w0 + (m0 + 20u) * rs, n0, 3u, x20_3); }
    if (m0 + 21u < P.M) { put4(w0 + (m0 + 21u) * rs, n0, 0u, x21_0); put4(w0 + (m0 + 21u) * rs, n0, 1u, x21_1); put4(w0 + (m0 + 21u) * rs, n0, 2u, x21_2); put4(w0 + (m0 + 21u) * rs, n0, 3u, x21_3); }
    if (m0 + 22u < P.M) { put4(w0 + (m0 + 22u) * rs, n0, 0u, x22_0); put4(w0 + (m0 + 22u) * rs, n0, 1u, x22_1); put4(w0 + (m0 + 22u) * rs, n0, 2u, x22_2); put4(w0 + (m0 + 22u) * rs, n0, 3u, x22_3); }
    if (m0 + 23u < P.M) { put4(w0 + (m0 + 23u) * rs, n0, 0u, x23_0); put4(w0 + (m0 + 23u) * rs, n0, 1u, x23_1); put4(w0 + (m0 + 23u) * rs, n0, 2u, x23_2); put4(w0 + (m0 + 23u) * rs, n0, 3u, x23_3); }
    if (m0 + 24u < P.M) { put4(w0 + (m0 + 24u) * rs, n0, 0u, x24_0); put4(w0 + (m0 + 24u) * rs, n0, 1u, x24_1); put4(w0 + (m0 + 24u) * rs, n0, 2u, x24_2); put4(w0 + (m0 + 24u) * rs, n0, 3u, x24_3); }
    if (m0 + 25u < P.M) { put4(w0 + (m0 + 25u) * rs, n0, 0u, x25_0); put4(w0 + (m0 + 25u) * rs, n0, 1u, x25_1); put4(w0 + (m0 + 25u) * rs, n0, 2u, x25_2); put4(w0 + (m0 + 25u) * rs, n0, 3u, x25_3); }
    if (m0 + 26u < P.M) { put4(w0 + (m0 + 26u) * rs, n0, 0u, x26_0); put4(w0 + (m0 + 26u) * rs, n0, 1u, x26_1); put4(w0 + (m0 + 26u) * rs, n0, 2u, x26_2); put4(w0 + (m0 + 26u) * rs, n0, 3u, x26_3); }
    if (m0 + 27u < P.M) { put4(w0 + (m0 + 27u) * rs, n0, 0u, x27_0); put4(w0 + (m0 + 27u) * rs, n0, 1u, x27_1); put4(w0 + (m0 + 27u) * rs, n0, 2u, x27_2); put4(w0 + (m0 + 27u) * rs, n0, 3u, x27_3); }
    if (m0 + 28u < P.M) { put4(w0 + (m0 + 28u) * rs, n0, 0u, x28_0); put4(w0 + (m0 + 28u) * rs, n0, 1u, x28_1); put4(w0 + (m0 + 28u) * rs, n0, 2u, x28_2); put4(w0 + (m0 + 28u) * rs, n0, 3u, x28_3); }
    if (m0 + 29u < P.M) { put4(w0 + (m0 + 29u) * rs, n0, 0u, x29_0); put4(w0 + (m0 + 29u) * rs, n0, 1u, x29_1); put4(w0 + (m0 + 29u) * rs, n0, 2u, x29_2); put4(w0 + (m0 + 29u) * rs, n0, 3u, x29_3); }
    if (m0 + 30u < P.M) { put4(w0 + (m0 + 30u) * rs, n0, 0u, x30_0); put4(w0 + (m0 + 30u) * rs, n0, 1u, x30_1); put4(w0 + (m0 + 30u) * rs, n0, 2u, x30_2); put4(w0 + (m0 + 30u) * rs, n0, 3u, x30_3); }
    if (m0 + 31u < P.M) { put4(w0 + (m0 + 31u) * rs, n0, 0u, x31_0); put4(w0 + (m0 + 31u) * rs, n0, 1u, x31_1); put4(w0 + (m0 + 31u) * rs, n0, 2u, x31_2); put4(w0 + (m0 + 31u) * rs, n0, 3u, x31_3); }
    if (m0 + 32u < P.M) { put4(w0 + (m0 + 32u) * rs, n0, 0u, x32_0); put4(w0 + (m0 + 32u) * rs, n0, 1u, x32_1); put4(w0 + (m0 + 32u) * rs, n0, 2u, x32_2); put4(w0 + (m0 + 32u) * rs, n0, 3u, x32_3); }
    if (m0 + 33u < P.M) { put4(w0 + (m0 + 33u) * rs, n0, 0u, x33_0); put4(w0 + (m0 + 33u) * rs, n0, 1u, x33_1); put4(w0 + (m0 + 33u) * rs, n0, 2u, x33_2); put4(w0 + (m0 + 33u) * rs, n0, 3u, x33_3); }
    if (m0 + 34u < P.M) { put4(w0 + (m0 + 34u) * rs, n0, 0u, x34_0); put4(w0 + (m0 + 34u) * rs, n0, 1u, x34_1); put4(w0 + (m0 + 34u) * rs, n0, 2u, x34_2); put4(w0 + (m0 + 34u) * rs, n0, 3u, x34_3); }
    if (m0 + 35u < P.M) { put4(w0 + (m0 + 35u) * rs, n0, 0u, x35_0); put4(w0 + (m0 + 35u) * rs, n0, 1u, x35_1); put4(w0 + (m0 + 35u) * rs, n0, 2u, x35_2); put4(w0 + (m0 + 35u) * rs, n0, 3u, x35_3); }
    if (m0 + 36u < P.M) { put4(w0 + (m0 + 36u) * rs, n0, 0u, x36_0); put4(w0 + (m0 + 36u) * rs, n0, 1u, x36_1); put4(w0 + (m0 + 36u) * rs, n0, 2u, x36_2); put4(w0 + (m0 + 36u) * rs, n0, 3u, x36_3); }
    if (m0 + 37u < P.M) { put4(w0 + (m0 + 37u) * rs, n0, 0u, x37_0); put4(w0 + (m0 + 37u) * rs, n0, 1u, x37_1); put4(w0 + (m0 + 37u) * rs, n0, 2u, x37_2); put4(w0 + (m0 + 37u) * rs, n0, 3u, x37_3); }
    if (m0 + 38u < P.M) { put4(w0 + (m0 + 38u) * rs, n0, 0u, x38_0); put4(w0 + (m0 + 38u) * rs, n0, 1u, x38_1); put4(w0 + (m0 + 38u) * rs, n0, 2u, x38_2); put4(w0 + (m0 + 38u) * rs, n0, 3u, x38_3); }
    if (m0 + 39u < P.M) { put4(w0 + (m0 + 39u) * rs, n0, 0u, x39_0); put4(w0 + (m0 + 39u) * rs, n0, 1u, x39_1); put4(w0 + (m0 + 39u) * rs, n0, 2u, x39_2); put4(w0 + (m0 + 39u) * rs, n0, 3u, x39_3); }
    if (m0 + 40u < P.M) { put4(w0 + (m0 + 40u) * rs, n0, 0u, x40_0); put4(w0 + (m0 + 40u) * rs, n0, 1u, x40_1); put4(w0 + (m0 + 40u) * rs, n0, 2u, x40_2); put4(w0 + (m0 + 40u) * rs, n0, 3u, x40_3); }
    if (m0 + 41u < P.M) { put4(w0 + (m0 + 41u) * rs, n0, 0u, x41_0); put4(w0 + (m0 + 41u) * rs, n0, 1u, x41_1); put4(w0 + (m0 + 41u) * rs, n0, 2u, x41_2); put4(w0 + (m0 + 41u) * rs, n0, 3u, x41_3); }
    if (m0 + 42u < P.M) { put4(w0 + (m0 + 42u) * rs, n0, 0u, x42_0); put4(w0 + (m0 + 42u) * rs, n0, 1u, x42_1); put4(w0 + (m0 + 42u) * rs, n0, 2u, x42_2); put4(w0 + (m0 + 42u) * rs, n0, 3u, x42_3); }
    if (m0 + 43u < P.M) { put4(w0 + (m0 + 43u) * rs, n0, 0u, x43_0); put4(w0 + (m0 + 43u) * rs, n0, 1u, x43_1); put4(w0 + (m0 + 43u) * rs, n0, 2u, x43_2); put4(w0 + (m0 + 43u) * rs, n0, 3u, x43_3); }
    if (m0 + 44u < P.M) { put4(w0 + (m0 + 44u) * rs, n0, 0u, x44_0); put4(w0 + (m0 + 44u) * rs, n0, 1u, x44_1); put4(w0 + (m0 + 44u) * rs, n0, 2u, x44_2); put4(w0 + (m0 + 44u) * rs, n0, 3u, x44_3); }
    if (m0 + 45u < P.M) { put4(w0 + (m0 + 45u) * rs, n0, 0u, x45_0); put4(w0 + (m0 + 45u) * rs, n0, 1u, x45_1); put4(w0 + (m0 + 45u) * rs, n0, 2u, x45_2); put4(w0 + (m0 + 45u) * rs, n0, 3u, x45_3); }
    if (m0 + 46u < P.M) { put4(w0 + (m0 + 46u) * rs, n0, 0u, x46_0); put4(w0 + (m0 + 46u) * rs, n0, 1u, x46_1); put4(w0 + (m0 + 46u) * rs, n0, 2u, x46_2); put4(w0 + (m0 + 46u) * rs, n0, 3u, x46_3); }
    if (m0 + 47u < P.M) { put4(w0 + (m0 + 47u) * rs, n0, 0u, x47_0); put4(w0 + (m0 + 47u) * rs, n0, 1u, x47_1); put4(w0 + (m0 + 47u) * rs, n0, 2u, x47_2); put4(w0 + (m0 + 47u) * rs, n0, 3u, x47_3); }
    if (m0 + 48u < P.M) { put4(w0 + (m0 + 48u) * rs, n0, 0u, x48_0); put4(w0 + (m0 + 48u) * rs, n0, 1u, x48_1); put4(w0 + (m0 + 48u) * rs, n0, 2u, x48_2); put4(w0 + (m0 + 48u) * rs, n0, 3u, x48_3); }
    if (m0 + 49u < P.M) { put4(w0 + (m0 + 49u) * rs, n0, 0u, x49_0); put4(w0 + (m0 + 49u) * rs, n0, 1u, x49_1); put4(w0 + (m0 + 49u) * rs, n0, 2u, x49_2); put4(w0 + (m0 + 49u) * rs, n0, 3u, x49_3); }
    if (m0 + 50u < P.M) { put4(w0 + (m0 + 50u) * rs, n0, 0u, x50_0); put4(w0 + (m0 + 50u) * rs, n0, 1u, x50_1); put4(w0 + (m0 + 50u) * rs, n0, 2u, x50_2); put4(w0 + (m0 + 50u) * rs, n0, 3u, x50_3); }
    if (m0 + 51u < P.M) { put4(w0 + (m0 + 51u) * rs, n0, 0u, x51_0); put4(w0 + (m0 + 51u) * rs, n0, 1u, x51_1); put4(w0 + (m0 + 51u) * rs, n0, 2u, x51_2); put4(w0 + (m0 + 51u) * rs, n0, 3u, x51_3); }
    if (m0 + 52u < P.M) { put4(w0 + (m0 + 52u) * rs, n0, 0u, x52_0); put4(w0 + (m0 + 52u) * rs, n0, 1u, x52_1); put4(w0 + (m0 + 52u) * rs, n0, 2u, x52_2); put4(w0 + (m0 + 52u) * rs, n0, 3u, x52_3); }
    if (m0 + 53u < P.M) { put4(w0 + (m0 + 53u) * rs, n0, 0u, x53_0); put4(w0 + (m0 + 53u) * rs, n0, 1u, x53_1); put4(w0 + (m0 + 53u) * rs, n0, 2u, x53_2); put4(w0 + (m0 + 53u) * rs, n0, 3u, x53_3); }
    if (m0 + 54u < P.M) { put4(w0 + (m0 + 54u) * rs, n0, 0u, x54_0); put4(w0 + (m0 + 54u) * rs, n0, 1u, x54_1); put4(w0 + (m0 + 54u) * rs, n0, 2u, x54_2); put4(w0 + (m0 + 54u) * rs, n0, 3u, x54_3); }
    if (m0 + 55u < P.M) { put4(w0 + (m0 + 55u) * rs, n0, 0u, x55_0); put4(w0 + (m0 + 55u) * rs, n0, 1u, x55_1); put4(w0 + (m0 + 55u) * rs, n0, 2u, x55_2); put4(w0 + (m0 + 55u) * rs, n0, 3u, x55_3); }
    if (m0 + 56u < P.M) { put4(w0 + (m0 + 56u) * rs, n0, 0u, x56_0); put4(w0 + (m0 + 56u) * rs, n0, 1u, x56_1); put4(w0 + (m0 + 56u) * rs, n0, 2u, x56_2); put4(w0 + (m0 + 56u) * rs, n0, 3u, x56_3); }
    if (m0 + 57u < P.M) { put4(w0 + (m0 + 57u) * rs, n0, 0u, x57_0); put4(w0 + (m0 + 57u) * rs, n0, 1u, x57_1); put4(w0 + (m0 + 57u) * rs, n0, 2u, x57_2); put4(w0 + (m0 + 57u) * rs, n0, 3u, x57_3); }
    if (m0 + 58u < P.M) { put4(w0 + (m0 + 58u) * rs, n0, 0u, x58_0); put4(w0 + (m0 + 58u) * rs, n0, 1u, x58_1); put4(w0 + (m0 + 58u) * rs, n0, 2u, x58_2); put4(w0 + (m0 + 58u) * rs, n0, 3u, x58_3); }
    if (m0 + 59u < P.M) { put4(w0 + (m0 + 59u) * rs, n0, 0u, x59_0); put4(w0 + (m0 + 59u) * rs, n0, 1u, x59_1); put4(w0 + (m0 + 59u) * rs, n0, 2u, x59_2); put4(w0 + (m0 + 59u) * rs, n0, 3u, x59_3); }
    if (m0 + 60u < P.M) { put4(w0 + (m0 + 60u) * rs, n0, 0u, x60_0); put4(w0 + (m0 + 60u) * rs, n0, 1u, x60_1); put4(w0 + (m0 + 60u) * rs, n0, 2u, x60_2); put4(w0 + (m0 + 60u) * rs, n0, 3u, x60_3); }
    if (m0 + 61u < P.M) { put4(w0 + (m0 + 61u) * rs, n0, 0u, x61_0); put4(w0 + (m0 + 61u) * rs, n0, 1u, x61_1); put4(w0 + (m0 + 61u) * rs, n0, 2u, x61_2); put4(w0 + (m0 + 61u) * rs, n0, 3u, x61_3); }
    if (m0 + 62u < P.M) { put4(w0 + (m0 + 62u) * rs, n0, 0u, x62_0); put4(w0 + (m0 + 62u) * rs, n0, 1u, x62_1); put4(w0 + (m0 + 62u) * rs, n0, 2u, x62_2); put4(w0 + (m0 + 62u) * rs, n0, 3u, x62_3); }
    if (m0 + 63u < P.M) { put4(w0 + (m0 + 63u) * rs, n0, 0u, x63_0); put4(w0 + (m0 + 63u) * rs, n0, 1u, x63_1); put4(w0 + (m0 + 63u) * rs, n0, 2u, x63_2); put4(w0 + (m0 + 63u) * rs, n0, 3u, x63_3); }
}
