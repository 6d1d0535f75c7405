// Per-sample min-max normalisation y = (x - min) / (max - min), stats over everything but dim 0.
// Three passes, no workgroup memory or barriers: `partial` (each invocation folds a strided slice
// of one sample into a (min, max) pair), `combine` (one invocation per sample folds the pairs),
// `norm` (element-wise). No epsilon: where max == min the output is 0/0 = NaN, written
// explicitly so it does not depend on the driver's division by zero.

struct StatParams {
    len: u32,      // elements per sample
    threads: u32,  // partial pairs per sample (= 64 x workgroups along x in `partial`)
    samples: u32,  // samples in this window
    _p0: u32,
}

@group(0) @binding(0) var<uniform> sp: StatParams;
@group(0) @binding(1) var<storage, read> sx: array<f32>;
@group(0) @binding(2) var<storage, read_write> spart: array<f32>;

@compute @workgroup_size(64)
fn partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = wid.y;
    let t = wid.x * 64u + lid;
    let base = s * sp.len;
    var mn = bitcast<f32>(0x7f800000u);
    var mx = -mn;
    for (var i = t; i < sp.len; i += sp.threads) {
        let v = sx[base + i];
        mn = min(mn, v);
        mx = max(mx, v);
    }
    let o = (s * sp.threads + t) * 2u;
    spart[o] = mn;
    spart[o + 1u] = mx;
}

@group(0) @binding(0) var<uniform> fp: StatParams;
@group(0) @binding(1) var<storage, read> fpart: array<f32>;
@group(0) @binding(2) var<storage, read_write> fstats: array<f32>;

@compute @workgroup_size(64)
fn combine(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = gid.x;
    if (s >= fp.samples) {
        return;
    }
    let base = s * fp.threads * 2u;
    var mn = fpart[base];
    var mx = fpart[base + 1u];
    for (var t = 1u; t < fp.threads; t++) {
        mn = min(mn, fpart[base + 2u * t]);
        mx = max(mx, fpart[base + 2u * t + 1u]);
    }
    fstats[2u * s] = mn;
    fstats[2u * s + 1u] = mx;
}

struct NormParams {
    n: u32,    // elements in this window
    len: u32,  // elements per sample
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> np: NormParams;
@group(0) @binding(1) var<storage, read> nx: array<f32>;
@group(0) @binding(2) var<storage, read> nstats: array<f32>;
@group(0) @binding(3) var<storage, read_write> ny: array<f32>;

@compute @workgroup_size(256)
fn norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + lid;
    if (i >= np.n) {
        return;
    }
    let s = i / np.len;
    let mn = nstats[2u * s];
    let range = nstats[2u * s + 1u] - mn;
    let v = (nx[i] - mn) / range;
    ny[i] = select(v, bitcast<f32>(0x7fc00000u), range == 0.0);
}
