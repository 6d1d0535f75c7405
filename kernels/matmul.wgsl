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
//               Generated: kernels/matmul_vec.wgsl (module "matmul" = this file + that one).
//   mm_vec_tb : software devices; A row-major and B given as [N, K] (trans_b), K % 4 == 0; 4x4
//               outputs per invocation as vec4 dot products along K.
//   mm_sg     : software devices with subgroups of exactly 8 (lavapipe); like mm_vec, 64x128 block per
//               subgroup, A shared through subgroupBroadcast. Generated: kernels/matmul_sg.wgsl
//               (module "matmul_sg" = this file + that one, compiled only where subgroups of 8 exist).
//   mm_tiled  : hardware GPUs; 64x64 block per 16x16 workgroup staged through workgroup memory,
//               any strides and sizes; B in f32 or (HALF_B) f16 storage.
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
// Raw words of B (mm_tiled): f32 bits, or two f16 per word when the host stored the weight in f16.
@group(0) @binding(2) var<storage, read> Bu: array<u32>;

// 1: B is stored as f16 pairs (element e in half e & 1 of word e / 2; see PlanCtx::half_input).
override HALF_B: u32 = 0u;

// Element e of B (mm_tiled), as f32 either way: the arithmetic stays f32.
fn load_b(e: u32) -> f32 {
    if (HALF_B != 0u) {
        return unpack2x16float(Bu[e >> 1u])[e & 1u];
    }
    return bitcast<f32>(Bu[e]);
}

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

// Store one vec4 of outputs (column group j of the invocation) unless it lies past the last column
// (mm_vec, mm_sg).
fn put4(w: u32, n0: u32, j: u32, v: vec4<f32>) {
    let n = n0 + 4u * j;
    if (n < P.N) {
        C4[w + j] = epilogue4(v, n);
    }
}

// ---------------------------------------------------------------------------------------------
// mm_scalar and mm_vec_tb: 4x4 outputs per invocation, 8x8 invocations per workgroup (32x32 block).

// The 4x4 block of C of invocation `lid` in workgroup `wid`: the batch offsets, its first row and
// column, and where its 4 rows of A and 4 columns of B start, clamped at the edges, in units of
// `unit` elements (1 for scalar loads, 4 for vec4 loads).
struct Block4 {
    o: vec3<u32>,
    m0: u32,
    n0: u32,
    ra: vec4<u32>,
    cb: vec4<u32>,
}

fn block4(wid: vec3<u32>, lid: vec3<u32>, unit: u32) -> Block4 {
    let o = batch_offsets(wid.z);
    let m0 = (wid.y * 8u + lid.y) * 4u;
    let n0 = (wid.x * 8u + lid.x) * 4u;
    let i = vec4<u32>(0u, 1u, 2u, 3u);
    let ra = (o.x + min(vec4<u32>(m0) + i, vec4<u32>(P.M - 1u)) * P.sam) / unit;
    let cb = (o.y + min(vec4<u32>(n0) + i, vec4<u32>(P.N - 1u)) * P.sbn) / unit;
    return Block4(o, m0, n0, ra, cb);
}

// Store a block's outputs (row i, column j in acc[i][j]) through the epilogue, skipping those past C.
fn store4x4(bk: Block4, acc: array<vec4<f32>, 4>) {
    for (var i = 0u; i < 4u; i++) {
        let m = bk.m0 + i;
        if (m < P.M) {
            for (var j = 0u; j < 4u; j++) {
                let n = bk.n0 + j;
                if (n < P.N) {
                    Cs[bk.o.z + m * P.N + n] = epilogue(acc[i][j], n);
                }
            }
        }
    }
}

// mm_scalar: any strides and sizes; scalar loads.
@compute @workgroup_size(8, 8, 1)
fn mm_scalar(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let bk = block4(wid, lid, 1u);
    if (bk.m0 >= P.M || bk.n0 >= P.N) { return; }
    var acc: array<vec4<f32>, 4>;
    for (var k = 0u; k < P.K; k++) {
        let ka = k * P.sak;
        let kb = k * P.sbk;
        let b = vec4<f32>(Bs[bk.cb.x + kb], Bs[bk.cb.y + kb], Bs[bk.cb.z + kb], Bs[bk.cb.w + kb]);
        acc[0] += As[bk.ra.x + ka] * b;
        acc[1] += As[bk.ra.y + ka] * b;
        acc[2] += As[bk.ra.z + ka] * b;
        acc[3] += As[bk.ra.w + ka] * b;
    }
    store4x4(bk, acc);
}

// mm_vec_tb: B stored [N, K] (sbk == 1, sbn % 4 == 0); dot products of vec4 runs along K.
// sak == 1 and K, offsets, strides multiples of 4. C written as scalars.
@compute @workgroup_size(8, 8, 1)
fn mm_vec_tb(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let bk = block4(wid, lid, 4u);
    if (bk.m0 >= P.M || bk.n0 >= P.N) { return; }
    var acc: array<vec4<f32>, 4>;
    let kq = P.K / 4u;
    for (var q = 0u; q < kq; q++) {
        let b0 = B4[bk.cb.x + q];
        let b1 = B4[bk.cb.y + q];
        let b2 = B4[bk.cb.z + q];
        let b3 = B4[bk.cb.w + q];
        for (var i = 0u; i < 4u; i++) {
            let a = A4[bk.ra[i] + q];
            acc[i] += vec4<f32>(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
        }
    }
    store4x4(bk, acc);
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
                vb = load_b(o.y + k * P.sbk + n * P.sbn);
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
