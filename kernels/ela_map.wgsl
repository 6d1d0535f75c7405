// ELA difference -> probability-like map (see src/ops/ela_map.rs): per pixel the max over
// channels, summed over a (2r+1)^2 box with replicated edges (an integer when the input holds
// integer levels, so the sums are exact in f32 and their histogram is exact), the per-sample
// k-th smallest sum from that histogram, and prob = min(sum / max(kth, floor_sum), 1).
// Passes: clear (histogram); per band of rows of a sample: chmax (only for more than three
// channels), hbox (channel max summed along rows, for the band's core and context rows, as
// sliding sums over runs of SEG pixels), vbox (likewise down columns for the core rows, written
// to the output, counted in the histogram with atomics, equal consecutive bins counted once);
// then pct (one invocation per sample scans the histogram) and norm (the output divided in
// place, in binding-sized runs). Rows are image rows; each input channel's rows are bound as
// their own window, `xb*` / `ob` being the offset of the first bound row inside a window.

struct MapParams {
    h: u32,
    w: u32,
    acc: u32,        // chmax: 0 writes the maximum, 1 folds it into what is there
    n: u32,          // work items of this dispatch
    r: u32,          // box radius
    bins: u32,       // histogram bins per sample: (2r+1)^2 * 255 + 1
    k: u32,          // rank (1-based) of the percentile among h * w sums
    samples: u32,
    floor_sum: f32,  // smallest scale, as a box sum
    row0: u32,       // image row of the band's first bound row (its context included)
    y0: u32,         // vbox: first core row; norm: first output element of the run
    y1: u32,         // vbox: end of the core rows
    s: u32,          // sample of this band
    xb0: u32,        // offsets inside the input windows (three channels)
    xb1: u32,
    xb2: u32,
    ob: u32,         // offset inside the output window
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
@group(0) @binding(1) var<storage, read> m0: array<f32>;
@group(0) @binding(2) var<storage, read> m1: array<f32>;
@group(0) @binding(3) var<storage, read> m2: array<f32>;
@group(0) @binding(4) var<storage, read_write> mout: array<f32>;

// More than three channels: the maximum of three more channels, over the band's rows.
@compute @workgroup_size(64)
fn chmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = linear_workgroup(wid, nwg) * 64u + lid;
    if (t >= mp.n) {
        return;
    }
    var m = max(max(m0[mp.xb0 + t], m1[mp.xb1 + t]), m2[mp.xb2 + t]);
    if (mp.acc != 0u) {
        m = max(m, mout[t]);
    }
    mout[t] = m;
}

@group(0) @binding(0) var<uniform> hp: MapParams;
@group(0) @binding(1) var<storage, read> h0: array<f32>;
@group(0) @binding(2) var<storage, read> h1: array<f32>;
@group(0) @binding(3) var<storage, read> h2: array<f32>;
@group(0) @binding(4) var<storage, read_write> hout: array<f32>;

// Pixels per invocation of hbox (along a row) and vbox (down a column): each sums its first
// pixel's box, then slides it (one value in, one out). With integer inputs every partial sum is
// an integer below 2^24, exact in f32, so sliding gives the direct sums exactly.
const SEG: u32 = 16u;

// The maximum over channels at column x (clamped: edges replicated) of the band row at `row`.
fn chan_max(row: u32, x: i32) -> f32 {
    let i = row + u32(clamp(x, 0, i32(hp.w) - 1));
    return max(max(h0[hp.xb0 + i], h1[hp.xb1 + i]), h2[hp.xb2 + i]);
}

// Horizontal box sum of the channel maximum over the band's rows; one invocation per run of SEG
// pixels of a row.
@compute @workgroup_size(64)
fn hbox(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = linear_workgroup(wid, nwg) * 64u + lid;
    if (t >= hp.n) {
        return;
    }
    let runs = (hp.w + SEG - 1u) / SEG;
    let row = (t / runs) * hp.w;
    let x0 = (t % runs) * SEG;
    let x1 = min(x0 + SEG, hp.w);
    let r = i32(hp.r);
    var acc = 0.0;
    for (var dx = -r; dx <= r; dx++) {
        acc += chan_max(row, i32(x0) + dx);
    }
    hout[row + x0] = acc;
    for (var x = x0 + 1u; x < x1; x++) {
        acc += chan_max(row, i32(x) + r) - chan_max(row, i32(x) - r - 1);
        hout[row + x] = acc;
    }
}

@group(0) @binding(0) var<uniform> bp: MapParams;
@group(0) @binding(1) var<storage, read> bx: array<f32>;
@group(0) @binding(2) var<storage, read_write> bsum: array<f32>;
@group(0) @binding(3) var<storage, read_write> bhist: array<atomic<u32>>;

// The horizontal sum at image row y (clamped: edges replicated), column x, of the band.
fn hsum(y: i32, x: u32) -> f32 {
    return bx[(u32(clamp(y, 0, i32(bp.h) - 1)) - bp.row0) * bp.w + x];
}

fn put(y: u32, x: u32, v: f32) -> u32 {
    bsum[bp.ob + (y - bp.y0) * bp.w + x] = v;
    return u32(clamp(floor(v), 0.0, f32(bp.bins - 1u)));
}

// Vertical box sum of the horizontal sums for the core rows y0 .. y1, written to the output and
// counted in the sample's histogram; one invocation per run of SEG rows of a column, which
// counts equal consecutive bins once (fewer atomics where the map is flat).
@compute @workgroup_size(64)
fn vbox(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = linear_workgroup(wid, nwg) * 64u + lid;
    if (t >= bp.n) {
        return;
    }
    let x = t % bp.w;
    let ya = bp.y0 + (t / bp.w) * SEG;
    let yb = min(ya + SEG, bp.y1);
    let r = i32(bp.r);
    var acc = 0.0;
    for (var dy = -r; dy <= r; dy++) {
        acc += hsum(i32(ya) + dy, x);
    }
    var bin = put(ya, x, acc);
    var count = 1u;
    let hist = bp.s * bp.bins;
    for (var y = ya + 1u; y < yb; y++) {
        acc += hsum(i32(y) + r, x) - hsum(i32(y) - r - 1, x);
        let b = put(y, x, acc);
        if (b != bin) {
            atomicAdd(&bhist[hist + bin], count);
            bin = b;
            count = 0u;
        }
        count++;
    }
    atomicAdd(&bhist[hist + bin], count);
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
@group(0) @binding(1) var<storage, read> nscale: array<f32>;
@group(0) @binding(2) var<storage, read_write> nout: array<f32>;

// The box sums in the output, divided by their sample's scale and clipped, in place.
@compute @workgroup_size(64)
fn norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = linear_workgroup(wid, nwg) * 64u + lid;
    if (t < np.n) {
        let i = np.ob + t;
        nout[i] = min(nout[i] / nscale[(np.y0 + t) / (np.h * np.w)], 1.0);
    }
}
