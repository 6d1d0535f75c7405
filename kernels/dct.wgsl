// Full-image DCT as separable passes. Every pass is one batched matrix product
//   C[z] = A[z] * B[z]   (z = image plane; a batch stride of 0 shares a DCT matrix across planes)
// with an optional coefficient mask applied to C on store (the frequency-domain pass).
// B is read as vec4 rows: its row stride and batch stride are padded to a multiple of 4 columns by
// the host (padded columns hold zeros). A and C are plain f32 with their own row strides.
// Register blocking, no workgroup memory (lavapipe runs each invocation as a SIMD lane and every
// divergent load as a per-lane loop, so loads per multiply-add is what counts there).
// `gemm`: scalar A, 4 rows x 4 columns of C per invocation (any A layout).
// `gemm_v4`: vec4 A, 16 rows x 16 columns per invocation (A strides and k multiples of 4).
// Either may read B past the end of a row for columns >= n: those accumulators are never stored.

struct GemmParams {
    m: u32,      // rows of C (and A)
    n: u32,      // columns of C that are stored (columns n.. of a padded C stay untouched)
    k: u32,      // inner dimension
    _p0: u32,
    lda: u32,    // row stride of A (f32)
    ldb4: u32,   // row stride of B (vec4)
    ldc: u32,    // row stride of C (f32)
    _p1: u32,
    a_bs: u32,   // batch stride of A (f32), 0 = shared
    b_bs4: u32,  // batch stride of B (vec4), 0 = shared
    c_bs: u32,   // batch stride of C (f32)
    _p2: u32,
    // C[r, c] = 0 where r0 <= r < r1 and c0 <= c < c1 (an empty range = no mask).
    r0: u32,
    r1: u32,
    c0: u32,
    c1: u32,
}

@group(0) @binding(0) var<uniform> gp: GemmParams;
@group(0) @binding(1) var<storage, read> ga: array<f32>;
@group(0) @binding(2) var<storage, read> gb: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> gc: array<f32>;

fn store_row(row: u32, col: u32, base: u32, v: vec4<f32>) {
    if (row >= gp.m) {
        return;
    }
    let in_rows = row >= gp.r0 && row < gp.r1;
    let o = base + row * gp.ldc + col;
    for (var j = 0u; j < 4u; j++) {
        let c = col + j;
        if (c < gp.n) {
            let masked = in_rows && c >= gp.c0 && c < gp.c1;
            gc[o + j] = select(v[j], 0.0, masked);
        }
    }
}

@compute @workgroup_size(8, 8)
fn gemm(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x * 4u;
    let m0 = gid.y * 4u;
    if (col >= gp.n || m0 >= gp.m) {
        return;
    }
    let z = gid.z;
    let last = gp.m - 1u;
    let abase = z * gp.a_bs;
    // Rows past the end are clamped for loading (their results are not stored).
    let a0 = abase + m0 * gp.lda;
    let a1 = abase + min(m0 + 1u, last) * gp.lda;
    let a2 = abase + min(m0 + 2u, last) * gp.lda;
    let a3 = abase + min(m0 + 3u, last) * gp.lda;
    var bi = z * gp.b_bs4 + gid.x;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k = 0u; k < gp.k; k++) {
        let b = gb[bi];
        acc0 += ga[a0 + k] * b;
        acc1 += ga[a1 + k] * b;
        acc2 += ga[a2 + k] * b;
        acc3 += ga[a3 + k] * b;
        bi += gp.ldb4;
    }
    let cbase = z * gp.c_bs;
    store_row(m0, col, cbase, acc0);
    store_row(m0 + 1u, col, cbase, acc1);
    store_row(m0 + 2u, col, cbase, acc2);
    store_row(m0 + 3u, col, cbase, acc3);
}

// The same product with A read as vec4 too (A's row and batch strides and k multiples of 4; the
// host pads k with zero columns of A and zero rows of B). Per 4 steps of k: 16 vec4 loads of A and
// 16 of B for 1024 multiply-adds. Measured on lavapipe (1x3x512x512 filter, CPU time): 4x4 tile
// 6.0 s, 8x4 4.5 s, 8x8 3.1 s, 8x16 2.5 s, 16x16 1.7 s.
@group(0) @binding(0) var<uniform> vp: GemmParams;
@group(0) @binding(1) var<storage, read> va: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> vb: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> vc: array<f32>;

fn store_row_v(row: u32, col: u32, base: u32, v: vec4<f32>) {
    if (row >= vp.m) {
        return;
    }
    let in_rows = row >= vp.r0 && row < vp.r1;
    let o = base + row * vp.ldc + col;
    for (var j = 0u; j < 4u; j++) {
        let c = col + j;
        if (c < vp.n) {
            let masked = in_rows && c >= vp.c0 && c < vp.c1;
            vc[o + j] = select(v[j], 0.0, masked);
        }
    }
}

@compute @workgroup_size(8, 8)
fn gemm_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x * 16u;
    let m0 = gid.y * 16u;
    if (col >= vp.n || m0 >= vp.m) {
        return;
    }
    let z = gid.z;
    let last = vp.m - 1u;
    let lda4 = vp.lda / 4u;
    let abase = z * (vp.a_bs / 4u);
    let a0 = abase + min(m0 + 0u, last) * lda4;
    let a1 = abase + min(m0 + 1u, last) * lda4;
    let a2 = abase + min(m0 + 2u, last) * lda4;
    let a3 = abase + min(m0 + 3u, last) * lda4;
    let a4 = abase + min(m0 + 4u, last) * lda4;
    let a5 = abase + min(m0 + 5u, last) * lda4;
    let a6 = abase + min(m0 + 6u, last) * lda4;
    let a7 = abase + min(m0 + 7u, last) * lda4;
    let a8 = abase + min(m0 + 8u, last) * lda4;
    let a9 = abase + min(m0 + 9u, last) * lda4;
    let a10 = abase + min(m0 + 10u, last) * lda4;
    let a11 = abase + min(m0 + 11u, last) * lda4;
    let a12 = abase + min(m0 + 12u, last) * lda4;
    let a13 = abase + min(m0 + 13u, last) * lda4;
    let a14 = abase + min(m0 + 14u, last) * lda4;
    let a15 = abase + min(m0 + 15u, last) * lda4;
    var bi = z * vp.b_bs4 + gid.x * 4u;
    let ldb4 = vp.ldb4;
    var acc0_0 = vec4<f32>(0.0);
    var acc0_1 = vec4<f32>(0.0);
    var acc0_2 = vec4<f32>(0.0);
    var acc0_3 = vec4<f32>(0.0);
    var acc1_0 = vec4<f32>(0.0);
    var acc1_1 = vec4<f32>(0.0);
    var acc1_2 = vec4<f32>(0.0);
    var acc1_3 = vec4<f32>(0.0);
    var acc2_0 = vec4<f32>(0.0);
    var acc2_1 = vec4<f32>(0.0);
    var acc2_2 = vec4<f32>(0.0);
    var acc2_3 = vec4<f32>(0.0);
    var acc3_0 = vec4<f32>(0.0);
    var acc3_1 = vec4<f32>(0.0);
    var acc3_2 = vec4<f32>(0.0);
    var acc3_3 = vec4<f32>(0.0);
    var acc4_0 = vec4<f32>(0.0);
    var acc4_1 = vec4<f32>(0.0);
    var acc4_2 = vec4<f32>(0.0);
    var acc4_3 = vec4<f32>(0.0);
    var acc5_0 = vec4<f32>(0.0);
    var acc5_1 = vec4<f32>(0.0);
    var acc5_2 = vec4<f32>(0.0);
    var acc5_3 = vec4<f32>(0.0);
    var acc6_0 = vec4<f32>(0.0);
    var acc6_1 = vec4<f32>(0.0);
    var acc6_2 = vec4<f32>(0.0);
    var acc6_3 = vec4<f32>(0.0);
    var acc7_0 = vec4<f32>(0.0);
    var acc7_1 = vec4<f32>(0.0);
    var acc7_2 = vec4<f32>(0.0);
    var acc7_3 = vec4<f32>(0.0);
    var acc8_0 = vec4<f32>(0.0);
    var acc8_1 = vec4<f32>(0.0);
    var acc8_2 = vec4<f32>(0.0);
    var acc8_3 = vec4<f32>(0.0);
    var acc9_0 = vec4<f32>(0.0);
    var acc9_1 = vec4<f32>(0.0);
    var acc9_2 = vec4<f32>(0.0);
    var acc9_3 = vec4<f32>(0.0);
    var acc10_0 = vec4<f32>(0.0);
    var acc10_1 = vec4<f32>(0.0);
    var acc10_2 = vec4<f32>(0.0);
    var acc10_3 = vec4<f32>(0.0);
    var acc11_0 = vec4<f32>(0.0);
    var acc11_1 = vec4<f32>(0.0);
    var acc11_2 = vec4<f32>(0.0);
    var acc11_3 = vec4<f32>(0.0);
    var acc12_0 = vec4<f32>(0.0);
    var acc12_1 = vec4<f32>(0.0);
    var acc12_2 = vec4<f32>(0.0);
    var acc12_3 = vec4<f32>(0.0);
    var acc13_0 = vec4<f32>(0.0);
    var acc13_1 = vec4<f32>(0.0);
    var acc13_2 = vec4<f32>(0.0);
    var acc13_3 = vec4<f32>(0.0);
    var acc14_0 = vec4<f32>(0.0);
    var acc14_1 = vec4<f32>(0.0);
    var acc14_2 = vec4<f32>(0.0);
    var acc14_3 = vec4<f32>(0.0);
    var acc15_0 = vec4<f32>(0.0);
    var acc15_1 = vec4<f32>(0.0);
    var acc15_2 = vec4<f32>(0.0);
    var acc15_3 = vec4<f32>(0.0);
    let k4 = vp.k / 4u;
    for (var kk = 0u; kk < k4; kk++) {
        let b0_0 = vb[bi];
        let b0_1 = vb[bi + 1u];
        let b0_2 = vb[bi + 2u];
        let b0_3 = vb[bi + 3u];
        let b1_0 = vb[bi + 1u * ldb4];
        let b1_1 = vb[bi + 1u * ldb4 + 1u];
        let b1_2 = vb[bi + 1u * ldb4 + 2u];
        let b1_3 = vb[bi + 1u * ldb4 + 3u];
        let b2_0 = vb[bi + 2u * ldb4];
        let b2_1 = vb[bi + 2u * ldb4 + 1u];
        let b2_2 = vb[bi + 2u * ldb4 + 2u];
        let b2_3 = vb[bi + 2u * ldb4 + 3u];
        let b3_0 = vb[bi + 3u * ldb4];
        let b3_1 = vb[bi + 3u * ldb4 + 1u];
        let b3_2 = vb[bi + 3u * ldb4 + 2u];
        let b3_3 = vb[bi + 3u * ldb4 + 3u];
        bi += 4u * ldb4;
        let x0 = va[a0 + kk];
        acc0_0 += x0.x * b0_0 + x0.y * b1_0 + x0.z * b2_0 + x0.w * b3_0;
        acc0_1 += x0.x * b0_1 + x0.y * b1_1 + x0.z * b2_1 + x0.w * b3_1;
        acc0_2 += x0.x * b0_2 + x0.y * b1_2 + x0.z * b2_2 + x0.w * b3_2;
        acc0_3 += x0.x * b0_3 + x0.y * b1_3 + x0.z * b2_3 + x0.w * b3_3;
        let x1 = va[a1 + kk];
        acc1_0 += x1.x * b0_0 + x1.y * b1_0 + x1.z * b2_0 + x1.w * b3_0;
        acc1_1 += x1.x * b0_1 + x1.y * b1_1 + x1.z * b2_1 + x1.w * b3_1;
        acc1_2 += x1.x * b0_2 + x1.y * b1_2 + x1.z * b2_2 + x1.w * b3_2;
        acc1_3 += x1.x * b0_3 + x1.y * b1_3 + x1.z * b2_3 + x1.w * b3_3;
        let x2 = va[a2 + kk];
        acc2_0 += x2.x * b0_0 + x2.y * b1_0 + x2.z * b2_0 + x2.w * b3_0;
        acc2_1 += x2.x * b0_1 + x2.y * b1_1 + x2.z * b2_1 + x2.w * b3_1;
        acc2_2 += x2.x * b0_2 + x2.y * b1_2 + x2.z * b2_2 + x2.w * b3_2;
        acc2_3 += x2.x * b0_3 + x2.y * b1_3 + x2.z * b2_3 + x2.w * b3_3;
        let x3 = va[a3 + kk];
        acc3_0 += x3.x * b0_0 + x3.y * b1_0 + x3.z * b2_0 + x3.w * b3_0;
        acc3_1 += x3.x * b0_1 + x3.y * b1_1 + x3.z * b2_1 + x3.w * b3_1;
        acc3_2 += x3.x * b0_2 + x3.y * b1_2 + x3.z * b2_2 + x3.w * b3_2;
        acc3_3 += x3.x * b0_3 + x3.y * b1_3 + x3.z * b2_3 + x3.w * b3_3;
        let x4 = va[a4 + kk];
        acc4_0 += x4.x * b0_0 + x4.y * b1_0 + x4.z * b2_0 + x4.w * b3_0;
        acc4_1 += x4.x * b0_1 + x4.y * b1_1 + x4.z * b2_1 + x4.w * b3_1;
        acc4_2 += x4.x * b0_2 + x4.y * b1_2 + x4.z * b2_2 + x4.w * b3_2;
        acc4_3 += x4.x * b0_3 + x4.y * b1_3 + x4.z * b2_3 + x4.w * b3_3;
        let x5 = va[a5 + kk];
        acc5_0 += x5.x * b0_0 + x5.y * b1_0 + x5.z * b2_0 + x5.w * b3_0;
        acc5_1 += x5.x * b0_1 + x5.y * b1_1 + x5.z * b2_1 + x5.w * b3_1;
        acc5_2 += x5.x * b0_2 + x5.y * b1_2 + x5.z * b2_2 + x5.w * b3_2;
        acc5_3 += x5.x * b0_3 + x5.y * b1_3 + x5.z * b2_3 + x5.w * b3_3;
        let x6 = va[a6 + kk];
        acc6_0 += x6.x * b0_0 + x6.y * b1_0 + x6.z * b2_0 + x6.w * b3_0;
        acc6_1 += x6.x * b0_1 + x6.y * b1_1 + x6.z * b2_1 + x6.w * b3_1;
        acc6_2 += x6.x * b0_2 + x6.y * b1_2 + x6.z * b2_2 + x6.w * b3_2;
        acc6_3 += x6.x * b0_3 + x6.y * b1_3 + x6.z * b2_3 + x6.w * b3_3;
        let x7 = va[a7 + kk];
        acc7_0 += x7.x * b0_0 + x7.y * b1_0 + x7.z * b2_0 + x7.w * b3_0;
        acc7_1 += x7.x * b0_1 + x7.y * b1_1 + x7.z * b2_1 + x7.w * b3_1;
        acc7_2 += x7.x * b0_2 + x7.y * b1_2 + x7.z * b2_2 + x7.w * b3_2;
        acc7_3 += x7.x * b0_3 + x7.y * b1_3 + x7.z * b2_3 + x7.w * b3_3;
        let x8 = va[a8 + kk];
        acc8_0 += x8.x * b0_0 + x8.y * b1_0 + x8.z * b2_0 + x8.w * b3_0;
        acc8_1 += x8.x * b0_1 + x8.y * b1_1 + x8.z * b2_1 + x8.w * b3_1;
        acc8_2 += x8.x * b0_2 + x8.y * b1_2 + x8.z * b2_2 + x8.w * b3_2;
        acc8_3 += x8.x * b0_3 + x8.y * b1_3 + x8.z * b2_3 + x8.w * b3_3;
        let x9 = va[a9 + kk];
        acc9_0 += x9.x * b0_0 + x9.y * b1_0 + x9.z * b2_0 + x9.w * b3_0;
        acc9_1 += x9.x * b0_1 + x9.y * b1_1 + x9.z * b2_1 + x9.w * b3_1;
        acc9_2 += x9.x * b0_2 + x9.y * b1_2 + x9.z * b2_2 + x9.w * b3_2;
        acc9_3 += x9.x * b0_3 + x9.y * b1_3 + x9.z * b2_3 + x9.w * b3_3;
        let x10 = va[a10 + kk];
        acc10_0 += x10.x * b0_0 + x10.y * b1_0 + x10.z * b2_0 + x10.w * b3_0;
        acc10_1 += x10.x * b0_1 + x10.y * b1_1 + x10.z * b2_1 + x10.w * b3_1;
        acc10_2 += x10.x * b0_2 + x10.y * b1_2 + x10.z * b2_2 + x10.w * b3_2;
        acc10_3 += x10.x * b0_3 + x10.y * b1_3 + x10.z * b2_3 + x10.w * b3_3;
        let x11 = va[a11 + kk];
        acc11_0 += x11.x * b0_0 + x11.y * b1_0 + x11.z * b2_0 + x11.w * b3_0;
        acc11_1 += x11.x * b0_1 + x11.y * b1_1 + x11.z * b2_1 + x11.w * b3_1;
        acc11_2 += x11.x * b0_2 + x11.y * b1_2 + x11.z * b2_2 + x11.w * b3_2;
        acc11_3 += x11.x * b0_3 + x11.y * b1_3 + x11.z * b2_3 + x11.w * b3_3;
        let x12 = va[a12 + kk];
        acc12_0 += x12.x * b0_0 + x12.y * b1_0 + x12.z * b2_0 + x12.w * b3_0;
        acc12_1 += x12.x * b0_1 + x12.y * b1_1 + x12.z * b2_1 + x12.w * b3_1;
        acc12_2 += x12.x * b0_2 + x12.y * b1_2 + x12.z * b2_2 + x12.w * b3_2;
        acc12_3 += x12.x * b0_3 + x12.y * b1_3 + x12.z * b2_3 + x12.w * b3_3;
        let x13 = va[a13 + kk];
        acc13_0 += x13.x * b0_0 + x13.y * b1_0 + x13.z * b2_0 + x13.w * b3_0;
        acc13_1 += x13.x * b0_1 + x13.y * b1_1 + x13.z * b2_1 + x13.w * b3_1;
        acc13_2 += x13.x * b0_2 + x13.y * b1_2 + x13.z * b2_2 + x13.w * b3_2;
        acc13_3 += x13.x * b0_3 + x13.y * b1_3 + x13.z * b2_3 + x13.w * b3_3;
        let x14 = va[a14 + kk];
        acc14_0 += x14.x * b0_0 + x14.y * b1_0 + x14.z * b2_0 + x14.w * b3_0;
        acc14_1 += x14.x * b0_1 + x14.y * b1_1 + x14.z * b2_1 + x14.w * b3_1;
        acc14_2 += x14.x * b0_2 + x14.y * b1_2 + x14.z * b2_2 + x14.w * b3_2;
        acc14_3 += x14.x * b0_3 + x14.y * b1_3 + x14.z * b2_3 + x14.w * b3_3;
        let x15 = va[a15 + kk];
        acc15_0 += x15.x * b0_0 + x15.y * b1_0 + x15.z * b2_0 + x15.w * b3_0;
        acc15_1 += x15.x * b0_1 + x15.y * b1_1 + x15.z * b2_1 + x15.w * b3_1;
        acc15_2 += x15.x * b0_2 + x15.y * b1_2 + x15.z * b2_2 + x15.w * b3_2;
        acc15_3 += x15.x * b0_3 + x15.y * b1_3 + x15.z * b2_3 + x15.w * b3_3;
    }
    let cbase = z * vp.c_bs;
    store_row_v(m0 + 0u, col + 0u, cbase, acc0_0);
    store_row_v(m0 + 0u, col + 4u, cbase, acc0_1);
    store_row_v(m0 + 0u, col + 8u, cbase, acc0_2);
    store_row_v(m0 + 0u, col + 12u, cbase, acc0_3);
    store_row_v(m0 + 1u, col + 0u, cbase, acc1_0);
    store_row_v(m0 + 1u, col + 4u, cbase, acc1_1);
    store_row_v(m0 + 1u, col + 8u, cbase, acc1_2);
    store_row_v(m0 + 1u, col + 12u, cbase, acc1_3);
    store_row_v(m0 + 2u, col + 0u, cbase, acc2_0);
    store_row_v(m0 + 2u, col + 4u, cbase, acc2_1);
    store_row_v(m0 + 2u, col + 8u, cbase, acc2_2);
    store_row_v(m0 + 2u, col + 12u, cbase, acc2_3);
    store_row_v(m0 + 3u, col + 0u, cbase, acc3_0);
    store_row_v(m0 + 3u, col + 4u, cbase, acc3_1);
    store_row_v(m0 + 3u, col + 8u, cbase, acc3_2);
    store_row_v(m0 + 3u, col + 12u, cbase, acc3_3);
    store_row_v(m0 + 4u, col + 0u, cbase, acc4_0);
    store_row_v(m0 + 4u, col + 4u, cbase, acc4_1);
    store_row_v(m0 + 4u, col + 8u, cbase, acc4_2);
    store_row_v(m0 + 4u, col + 12u, cbase, acc4_3);
    store_row_v(m0 + 5u, col + 0u, cbase, acc5_0);
    store_row_v(m0 + 5u, col + 4u, cbase, acc5_1);
    store_row_v(m0 + 5u, col + 8u, cbase, acc5_2);
    store_row_v(m0 + 5u, col + 12u, cbase, acc5_3);
    store_row_v(m0 + 6u, col + 0u, cbase, acc6_0);
    store_row_v(m0 + 6u, col + 4u, cbase, acc6_1);
    store_row_v(m0 + 6u, col + 8u, cbase, acc6_2);
    store_row_v(m0 + 6u, col + 12u, cbase, acc6_3);
    store_row_v(m0 + 7u, col + 0u, cbase, acc7_0);
    store_row_v(m0 + 7u, col + 4u, cbase, acc7_1);
    store_row_v(m0 + 7u, col + 8u, cbase, acc7_2);
    store_row_v(m0 + 7u, col + 12u, cbase, acc7_3);
    store_row_v(m0 + 8u, col + 0u, cbase, acc8_0);
    store_row_v(m0 + 8u, col + 4u, cbase, acc8_1);
    store_row_v(m0 + 8u, col + 8u, cbase, acc8_2);
    store_row_v(m0 + 8u, col + 12u, cbase, acc8_3);
    store_row_v(m0 + 9u, col + 0u, cbase, acc9_0);
    store_row_v(m0 + 9u, col + 4u, cbase, acc9_1);
    store_row_v(m0 + 9u, col + 8u, cbase, acc9_2);
    store_row_v(m0 + 9u, col + 12u, cbase, acc9_3);
    store_row_v(m0 + 10u, col + 0u, cbase, acc10_0);
    store_row_v(m0 + 10u, col + 4u, cbase, acc10_1);
    store_row_v(m0 + 10u, col + 8u, cbase, acc10_2);
    store_row_v(m0 + 10u, col + 12u, cbase, acc10_3);
    store_row_v(m0 + 11u, col + 0u, cbase, acc11_0);
    store_row_v(m0 + 11u, col + 4u, cbase, acc11_1);
    store_row_v(m0 + 11u, col + 8u, cbase, acc11_2);
    store_row_v(m0 + 11u, col + 12u, cbase, acc11_3);
    store_row_v(m0 + 12u, col + 0u, cbase, acc12_0);
    store_row_v(m0 + 12u, col + 4u, cbase, acc12_1);
    store_row_v(m0 + 12u, col + 8u, cbase, acc12_2);
    store_row_v(m0 + 12u, col + 12u, cbase, acc12_3);
    store_row_v(m0 + 13u, col + 0u, cbase, acc13_0);
    store_row_v(m0 + 13u, col + 4u, cbase, acc13_1);
    store_row_v(m0 + 13u, col + 8u, cbase, acc13_2);
    store_row_v(m0 + 13u, col + 12u, cbase, acc13_3);
    store_row_v(m0 + 14u, col + 0u, cbase, acc14_0);
    store_row_v(m0 + 14u, col + 4u, cbase, acc14_1);
    store_row_v(m0 + 14u, col + 8u, cbase, acc14_2);
    store_row_v(m0 + 14u, col + 12u, cbase, acc14_3);
    store_row_v(m0 + 15u, col + 0u, cbase, acc15_0);
    store_row_v(m0 + 15u, col + 4u, cbase, acc15_1);
    store_row_v(m0 + 15u, col + 8u, cbase, acc15_2);
    store_row_v(m0 + 15u, col + 12u, cbase, acc15_3);
}
