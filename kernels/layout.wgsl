// Data movement: strided copy for concat/slice (a block of `inner` contiguous elements repeated
// `outer` times) and a general permute of up to 6 dimensions.

struct CopyParams {
    outer: u32,      // number of blocks
    inner: u32,      // elements per block
    src_stride: u32, // elements between block starts in the source
    dst_stride: u32, // elements between block starts in the destination
    src_off: u32,
    dst_off: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> cp: CopyParams;
@group(0) @binding(1) var<storage, read> csrc: array<f32>;
@group(0) @binding(2) var<storage, read_write> cdst: array<f32>;

@compute @workgroup_size(256)
fn copy_blocks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + lid;
    if (i >= cp.outer * cp.inner) {
        return;
    }
    let o = i / cp.inner;
    let r = i % cp.inner;
    cdst[cp.dst_off + o * cp.dst_stride + r] = csrc[cp.src_off + o * cp.src_stride + r];
}

// y[out index] = x[sum of out coordinates times the permuted source strides].
struct PermuteParams {
    n: u32, _p0: u32, _p1: u32, _p2: u32,
    d0: u32, d1: u32, d2: u32, d3: u32, d4: u32, d5: u32, _p3: u32, _p4: u32,
    s0: u32, s1: u32, s2: u32, s3: u32, s4: u32, s5: u32, _p5: u32, _p6: u32,
}

@group(0) @binding(0) var<uniform> pp: PermuteParams;
@group(0) @binding(1) var<storage, read> px: array<f32>;
@group(0) @binding(2) var<storage, read_write> py: array<f32>;

@compute @workgroup_size(256)
fn permute(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + lid;
    if (i >= pp.n) {
        return;
    }
    var r = i;
    let i5 = r % pp.d5; r = r / pp.d5;
    let i4 = r % pp.d4; r = r / pp.d4;
    let i3 = r % pp.d3; r = r / pp.d3;
    let i2 = r % pp.d2; r = r / pp.d2;
    let i1 = r % pp.d1; r = r / pp.d1;
    let i0 = r;
    py[i] = px[i0 * pp.s0 + i1 * pp.s1 + i2 * pp.s2 + i3 * pp.s3 + i4 * pp.s4 + i5 * pp.s5];
}

// Batched 2-D transpose, the common permute (NCHW <-> tokens): y[b, j, i] = x[b, i, j] for x of
// [B, X, Y]. Lanes run along i (contiguous in y), each lane writes 4 rows j. Unlike `permute` it
// needs no integer division per element (lavapipe scalarizes vector division).
struct TransposeParams {
    b: u32, x: u32, y: u32, _p0: u32,
}

@group(0) @binding(3) var<uniform> tp: TransposeParams;
@group(0) @binding(4) var<storage, read> tx: array<f32>;
@group(0) @binding(5) var<storage, read_write> ty: array<f32>;

@compute @workgroup_size(64)
fn transpose(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= tp.x) {
        return;
    }
    let j0 = gid.y * 4u;
    let src = (gid.z * tp.x + i) * tp.y;
    let dst = gid.z * tp.x * tp.y + i;
    for (var k = 0u; k < 4u; k++) {
        let j = j0 + k;
        if (j < tp.y) {
            ty[dst + j * tp.x] = tx[src + j];
        }
    }
}

// `transpose` with Y a multiple of 4 and x 16-byte aligned: one vec4 load per lane.
@group(0) @binding(4) var<storage, read> tx4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn transpose_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= tp.x) {
        return;
    }
    let j0 = gid.y * 4u;
    let v = tx4[((gid.z * tp.x + i) * tp.y + j0) / 4u];
    let dst = gid.z * tp.x * tp.y + i + j0 * tp.x;
    ty[dst] = v.x;
    ty[dst + tp.x] = v.y;
    ty[dst + 2u * tp.x] = v.z;
    ty[dst + 3u * tp.x] = v.w;
}
