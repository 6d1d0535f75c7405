// Softmax over one axis of a tensor viewed as [outer, len, inner] (row-major).
// One invocation per (outer, inner) position loops over the axis with stride `stride` (= inner), so
// neighbouring invocations read neighbouring addresses whenever inner > 1 (e.g. axis 1 of NCHW).
// Three passes over the axis: max, sum of exp(x - max), write. All in f32.
// A dispatch sees one window of the tensor: `outer` slices of `outer_stride` elements, `inner`
// positions each, starting `base` elements into the bound range (see `axis_windows` in softmax.rs).

struct SoftmaxParams {
    count: u32,        // invocations: outer * inner
    inner: u32,        // inner positions handled in this window
    len: u32,          // length of the softmax axis
    stride: u32,       // elements between consecutive entries along the axis
    outer_stride: u32, // elements between consecutive outer slices
    base: u32,         // element offset of the window's first position inside the binding
    _eps: f32,         // unused (the layout is shared with layer_norm)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> sp: SoftmaxParams;
@group(0) @binding(1) var<storage, read> sx: array<f32>;
@group(0) @binding(2) var<storage, read_write> sy: array<f32>;

@compute @workgroup_size(64)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = linear_workgroup(wid, nwg) * 64u + lid;
    if (g >= sp.count) {
        return;
    }
    let o = g / sp.inner;
    let start = sp.base + o * sp.outer_stride + (g - o * sp.inner);
    var m = sx[start];
    var idx = start + sp.stride;
    for (var c = 1u; c < sp.len; c++) {
        m = max(m, sx[idx]);
        idx += sp.stride;
    }
    var s = 0.0;
    idx = start;
    for (var c = 0u; c < sp.len; c++) {
        s += exp(sx[idx] - m);
        idx += sp.stride;
    }
    let inv = 1.0 / s;
    idx = start;
    for (var c = 0u; c < sp.len; c++) {
        sy[idx] = exp(sx[idx] - m) * inv;
        idx += sp.stride;
    }
}

// vec4 variants (4x fewer loads; lavapipe turns each per-lane load into a gather). The uniform then
// counts in vec4 units. `softmax_pixels4`: 4 neighbouring inner positions per invocation
// (inner % 4 == 0). `softmax_rows4`: the axis itself in vec4s (inner == 1, len % 4 == 0).

@group(0) @binding(1) var<storage, read> sx4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> sy4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn softmax_pixels4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = linear_workgroup(wid, nwg) * 64u + lid;
    if (g >= sp.count) {
        return;
    }
    let o = g / sp.inner;
    let start = sp.base + o * sp.outer_stride + (g - o * sp.inner);
    var m = sx4[start];
    var idx = start + sp.stride;
    for (var c = 1u; c < sp.len; c++) {
        m = max(m, sx4[idx]);
        idx += sp.stride;
    }
    var s = vec4<f32>(0.0);
    idx = start;
    for (var c = 0u; c < sp.len; c++) {
        s += exp(sx4[idx] - m);
        idx += sp.stride;
    }
    let inv = 1.0 / s;
    idx = start;
    for (var c = 0u; c < sp.len; c++) {
        sy4[idx] = exp(sx4[idx] - m) * inv;
        idx += sp.stride;
    }
}

// Here sp.len, sp.outer_stride and sp.base are in vec4s.
@compute @workgroup_size(64)
fn softmax_rows4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = linear_workgroup(wid, nwg) * 64u + lid;
    if (g >= sp.count) {
        return;
    }
    let start = sp.base + g * sp.outer_stride;
    var m4 = sx4[start];
    for (var c = 1u; c < sp.len; c++) {
        m4 = max(m4, sx4[start + c]);
    }
    let m = max(max(m4.x, m4.y), max(m4.z, m4.w));
    var s4 = vec4<f32>(0.0);
    for (var c = 0u; c < sp.len; c++) {
        s4 += exp(sx4[start + c] - m);
    }
    let inv = 1.0 / (s4.x + s4.y + s4.z + s4.w);
    for (var c = 0u; c < sp.len; c++) {
        sy4[start + c] = exp(sx4[start + c] - m) * inv;
    }
}
