// LayerNorm over one axis of a tensor viewed as [outer, C, inner] (row-major):
// last dimension (inner = 1) or the channels of NCHW (outer = N, inner = H*W).
// One invocation per (outer, inner) position loops over C with stride `stride` (= inner), so for
// NCHW neighbouring invocations read neighbouring pixels (coalesced along W).
// Corrected two-pass statistics in f32: mean, then sum(d) and sum(d^2) with d = x - mean; the
// small correction sum(d)/C refines the mean, so inputs with a large offset stay accurate.
// Biased variance (divide by C), as PyTorch. A dispatch sees one window of the tensor (see
// `axis_windows` in softmax.rs): `outer` slices, `inner` positions each, from element `base`.

struct NormParams {
    count: u32,        // invocations: outer * inner
    inner: u32,        // inner positions handled in this window
    len: u32,          // C, the normalised axis
    stride: u32,       // elements between consecutive channels
    outer_stride: u32, // elements between consecutive outer slices
    base: u32,         // element offset of the window's first position inside the binding
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> np: NormParams;
@group(0) @binding(1) var<storage, read> nx: array<f32>;
@group(0) @binding(2) var<storage, read> ngamma: array<f32>;
@group(0) @binding(3) var<storage, read> nbeta: array<f32>;
@group(0) @binding(4) var<storage, read_write> ny: array<f32>;

@compute @workgroup_size(64)
fn layer_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = linear_workgroup(wid, nwg) * 64u + lid;
    if (g >= np.count) {
        return;
    }
    let o = g / np.inner;
    let start = np.base + o * np.outer_stride + (g - o * np.inner);
    let n = f32(np.len);
    var s = 0.0;
    var idx = start;
    for (var c = 0u; c < np.len; c++) {
        s += nx[idx];
        idx += np.stride;
    }
    let mean = s / n;
    var sd = 0.0;
    var sq = 0.0;
    idx = start;
    for (var c = 0u; c < np.len; c++) {
        let d = nx[idx] - mean;
        sd += d;
        sq += d * d;
        idx += np.stride;
    }
    let corr = sd / n;
    let variance = max(sq / n - corr * corr, 0.0);
    let rstd = 1.0 / sqrt(variance + np.eps);
    idx = start;
    for (var c = 0u; c < np.len; c++) {
        ny[idx] = (nx[idx] - mean - corr) * rstd * ngamma[c] + nbeta[c];
        idx += np.stride;
    }
}

// vec4 variants (4x fewer loads; lavapipe turns each per-lane load into a gather). The uniform then
// counts in vec4 units. `layer_norm_pixels4`: 4 neighbouring inner positions per invocation
// (inner % 4 == 0). `layer_norm_rows4`: the axis itself in vec4s (inner == 1, C % 4 == 0).

@group(0) @binding(1) var<storage, read> nx4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> ngamma4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> nbeta4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> ny4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn layer_norm_pixels4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = linear_workgroup(wid, nwg) * 64u + lid;
    if (g >= np.count) {
        return;
    }
    let o = g / np.inner;
    let start = np.base + o * np.outer_stride + (g - o * np.inner);
    let n = f32(np.len);
    var s = vec4<f32>(0.0);
    var idx = start;
    for (var c = 0u; c < np.len; c++) {
        s += nx4[idx];
        idx += np.stride;
    }
    let mean = s / n;
    var sd = vec4<f32>(0.0);
    var sq = vec4<f32>(0.0);
    idx = start;
    for (var c = 0u; c < np.len; c++) {
        let d = nx4[idx] - mean;
        sd += d;
        sq += d * d;
        idx += np.stride;
    }
    let corr = sd / n;
    let variance = max(sq / n - corr * corr, vec4<f32>(0.0));
    let rstd = 1.0 / sqrt(variance + np.eps);
    idx = start;
    for (var c = 0u; c < np.len; c++) {
        ny4[idx] = (nx4[idx] - mean - corr) * rstd * ngamma[c] + nbeta[c];
        idx += np.stride;
    }
}

// Here np.len, np.outer_stride and np.base are in vec4s; C = 4 * np.len.
@compute @workgroup_size(64)
fn layer_norm_rows4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = linear_workgroup(wid, nwg) * 64u + lid;
    if (g >= np.count) {
        return;
    }
    let start = np.base + g * np.outer_stride;
    let n = f32(4u * np.len);
    var s = vec4<f32>(0.0);
    for (var c = 0u; c < np.len; c++) {
        s += nx4[start + c];
    }
    let mean = (s.x + s.y + s.z + s.w) / n;
    var sd = vec4<f32>(0.0);
    var sq = vec4<f32>(0.0);
    for (var c = 0u; c < np.len; c++) {
        let d = nx4[start + c] - mean;
        sd += d;
        sq += d * d;
    }
    let corr = (sd.x + sd.y + sd.z + sd.w) / n;
    let variance = max((sq.x + sq.y + sq.z + sq.w) / n - corr * corr, 0.0);
    let rstd = 1.0 / sqrt(variance + np.eps);
    for (var c = 0u; c < np.len; c++) {
        ny4[start + c] = (nx4[start + c] - mean - corr) * rstd * ngamma4[c] + nbeta4[c];
    }
}
