// ELA difference -> probability-like map (see src/ops/ela_map.rs): per pixel the max over
// channels, summed over a (2r+1)^2 box with replicated edges (an integer when the input holds
// integer levels, so the sums are exact in f32 and their histogram is exact), the per-sample
// k-th smallest sum from that histogram, and prob = min(sum / max(kth, floor_sum), 1).
// Passes: clear (histogram), chmax, hbox, vbox (separable box sum + histogram, atomics), pct
// (one invocation per sample scans the histogram), norm (element-wise).

struct MapParams {
    h: u32,
    w: u32,
    c: u32,          // input channels
    n: u32,          // work items of this dispatch
    r: u32,          // box radius
    bins: u32,       // histogram bins per sample: (2r+1)^2 * 255 + 1
    k: u32,          // rank (1-based) of the percentile among h * w sums
    samples: u32,
    floor_sum: f32,  // smallest scale, as a box sum
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> cp: MapParams;
@group(0) @binding(1) var<storage, read_write> chist: array<u32>;

@compute @workgroup_size(64)
fn clear(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = linear_workgroup(wid, nwg) * 64u + lid;
    if (t < cp.n) {
        chist[t] = 0u;
    }
}

@group(0) @binding(0) var<uniform> mp: MapParams;
@group(0) @binding(1) var<storage, read> mx: array<f32>;
@group(0) @binding(2) var<storage, read_write> mout: array<f32>;

// m = max over channels.
@compute @workgroup_size(64)
fn chmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = linear_workgroup(wid, nwg) * 64u + lid;
    if (t >= mp.n) {
        return;
    }
    let hw = mp.h * mp.w;
    let i = (t / hw) * mp.c * hw + t % hw;
    var m = mx[i];
    for (var c = 1u; c < mp.c; c++) {
        m = max(m, mx[i + c * hw]);
    }
    mout[t] = m;
}

@group(0) @binding(0) var<uniform> hp: MapParams;
@group(0) @binding(1) var<storage, read> hx: array<f32>;
@group(0) @binding(2) var<storage, read_write> hout: array<f32>;

// Horizontal box sum of m, edges replicated.
@compute @workgroup_size(64)
fn hbox(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = linear_workgroup(wid, nwg) * 64u + lid;
    if (t >= hp.n) {
        return;
    }
    let row = t - t % hp.w;
    let x = i32(t % hp.w);
    let r = i32(hp.r);
    var acc = 0.0;
    for (var dx = -r; dx <= r; dx++) {
        acc += hx[row + u32(clamp(x + dx, 0, i32(hp.w) - 1))];
    }
    hout[t] = acc;
}

@group(0) @binding(0) var<uniform> bp: MapParams;
@group(0) @binding(1) var<storage, read> bx: array<f32>;
@group(0) @binding(2) var<storage, read_write> bsum: array<f32>;
@group(0) @binding(3) var<storage, read_write> bhist: array<atomic<u32>>;

// Vertical box sum of the horizontal sums (integers: exact in any order), and its histogram.
@compute @workgroup_size(64)
fn vbox(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = linear_workgroup(wid, nwg) * 64u + lid;
    if (t >= bp.n) {
        return;
    }
    let hw = bp.h * bp.w;
    let s = t / hw;
    let y = i32((t % hw) / bp.w);
    let x = t % bp.w;
    let r = i32(bp.r);
    var acc = 0.0;
    for (var dy = -r; dy <= r; dy++) {
        acc += bx[s * hw + u32(clamp(y + dy, 0, i32(bp.h) - 1)) * bp.w + x];
    }
    bsum[t] = acc;
    let bin = u32(clamp(floor(acc), 0.0, f32(bp.bins - 1u)));
    atomicAdd(&bhist[s * bp.bins + bin], 1u);
}

@group(0) @binding(0) var<uniform> pp: MapParams;
@group(0) @binding(1) var<storage, read> phist: array<u32>;
@group(0) @binding(2) var<storage, read_write> pscale: array<f32>;

@compute @workgroup_size(64)
fn pct(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = gid.x;
    if (s >= pp.samples) {
        return;
    }
    var cum = 0u;
    var b = 0u;
    for (; b < pp.bins; b++) {
        cum += phist[s * pp.bins + b];
        if (cum >= pp.k) {
            break;
        }
    }
    pscale[s] = max(f32(min(b, pp.bins - 1u)), pp.floor_sum);
}

@group(0) @binding(0) var<uniform> np: MapParams;
@group(0) @binding(1) var<storage, read> nsum: array<f32>;
@group(0) @binding(2) var<storage, read> nscale: array<f32>;
@group(0) @binding(3) var<storage, read_write> nout: array<f32>;

@compute @workgroup_size(64)
fn norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = linear_workgroup(wid, nwg) * 64u + lid;
    if (t < np.n) {
        nout[t] = min(nsum[t] / nscale[t / (np.h * np.w)], 1.0);
    }
}
