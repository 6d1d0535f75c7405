// Noise-inconsistency map (see src/ops/noise.rs): luminance, the HH subband of a one-level Haar
// transform, per block sigma = median(|HH|) / 0.6745, the image's median sigma, then per pixel
// p = |sigma_block - M| / (|sigma_block - M| + M + 1e-3) from the pixel's block (nearest).
// Passes: sigma (per band of block rows of a sample, one invocation per block: gathers its |HH|
// into a private array and sorts it; each input channel's rows bound as their own window),
// median (one 256-invocation workgroup per sample over all its blocks: exact radix select on the
// f32 bit patterns, which order like the values since sigmas are >= 0), map (element-wise, in
// binding-sized runs of the output).

struct NoiseParams {
    h: u32,
    w: u32,
    hh: u32,       // HH plane: floor(h / 2) x floor(w / 2)
    wh: u32,
    b: u32,        // block side in HH coefficients (block pixels / 2), <= 16
    nbx: u32,      // blocks across and in all, per sample
    nblocks: u32,
    n: u32,        // work items of this dispatch
    row0: u32,     // sigma: image row of the first bound row
    first: u32,    // sigma: first block of the band; map: first output element of the run
    s: u32,        // sigma: sample
    _p0: u32,
    xb0: u32,      // sigma: offsets of the first bound row inside the channel windows
    xb1: u32,
    xb2: u32,
    ob: u32,       // map: offset of the run inside the output window
}

@group(0) @binding(0) var<uniform> sp: NoiseParams;
@group(0) @binding(1) var<storage, read> sr: array<f32>;
@group(0) @binding(2) var<storage, read> sg: array<f32>;
@group(0) @binding(3) var<storage, read> sb: array<f32>;
@group(0) @binding(4) var<storage, read_write> ssig: array<f32>;

// Luminance of image pixel (y, x) of the band.
fn luma(y: u32, x: u32) -> f32 {
    let i = (y - sp.row0) * sp.w + x;
    return 0.299 * sr[sp.xb0 + i] + 0.587 * sg[sp.xb1 + i] + 0.114 * sb[sp.xb2 + i];
}

@compute @workgroup_size(64)
fn sigma(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = linear_workgroup(wid, nwg) * 64u + lid;
    if (t >= sp.n) {
        return;
    }
    let bi = sp.first + t;
    let i0 = (bi / sp.nbx) * sp.b;
    let j0 = (bi % sp.nbx) * sp.b;
    let i1 = min(i0 + sp.b, sp.hh);
    let j1 = min(j0 + sp.b, sp.wh);
    var v: array<f32, 256>;
    var cnt = 0u;
    for (var i = i0; i < i1; i++) {
        for (var j = j0; j < j1; j++) {
            let a = luma(2u * i, 2u * j);
            let b = luma(2u * i, 2u * j + 1u);
            let c = luma(2u * i + 1u, 2u * j);
            let d = luma(2u * i + 1u, 2u * j + 1u);
            v[cnt] = abs((a - b - c + d) * 0.5);
            cnt++;
        }
    }
    for (var i = 1u; i < cnt; i++) {
        let key = v[i];
        var j = i;
        while (j > 0u && v[j - 1u] > key) {
            v[j] = v[j - 1u];
            j--;
        }
        v[j] = key;
    }
    ssig[sp.s * sp.nblocks + bi] = (v[(cnt - 1u) / 2u] + v[cnt / 2u]) * 0.5 / 0.6745;
}

@group(0) @binding(0) var<uniform> mp: NoiseParams;
@group(0) @binding(1) var<storage, read> msig: array<f32>;
@group(0) @binding(2) var<storage, read_write> mmed: array<f32>;

var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> wprefix: u32;
var<workgroup> wrank: u32;

// The bit pattern of the k-th smallest (0-based) of msig[base .. base + n], 8 bits per pass.
fn select_kth(base: u32, n: u32, k: u32, lid: u32) -> u32 {
    var prefix = 0u;
    var mask = 0u;
    var rank = k;
    for (var round = 0u; round < 4u; round++) {
        let shift = 24u - 8u * round;
        atomicStore(&hist[lid], 0u);
        workgroupBarrier();
        for (var i = lid; i < n; i += 256u) {
            let v = bitcast<u32>(msig[base + i]);
            if ((v & mask) == prefix) {
                atomicAdd(&hist[(v >> shift) & 255u], 1u);
            }
        }
        workgroupBarrier();
        if (lid == 0u) {
            var cum = 0u;
            var pick = 255u;
            for (var d = 0u; d < 256u; d++) {
                let c = atomicLoad(&hist[d]);
                if (cum + c > rank) {
                    pick = d;
                    break;
                }
                cum += c;
            }
            wprefix = prefix | (pick << shift);
            wrank = rank - cum;
        }
        prefix = workgroupUniformLoad(&wprefix);
        rank = workgroupUniformLoad(&wrank);
        mask |= 255u << shift;
    }
    return prefix;
}

@compute @workgroup_size(256)
fn median(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = mp.nblocks;
    let base = wid.x * n;
    let lo = select_kth(base, n, (n - 1u) / 2u, lid);
    let hi = select_kth(base, n, n / 2u, lid);
    if (lid == 0u) {
        mmed[wid.x] = (bitcast<f32>(lo) + bitcast<f32>(hi)) * 0.5;
    }
}

@group(0) @binding(0) var<uniform> op: NoiseParams;
@group(0) @binding(1) var<storage, read> osig: array<f32>;
@group(0) @binding(2) var<storage, read> omed: array<f32>;
@group(0) @binding(3) var<storage, read_write> oout: array<f32>;

// One invocation per output element of the run.
@compute @workgroup_size(64)
fn map(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = linear_workgroup(wid, nwg) * 64u + lid;
    if (t >= op.n) {
        return;
    }
    if (op.nblocks == 0u) {
        oout[op.ob + t] = 0.0;
        return;
    }
    let e = op.first + t;
    let hw = op.h * op.w;
    let s = e / hw;
    let i = min(((e % hw) / op.w) / 2u, op.hh - 1u);
    let j = min((e % op.w) / 2u, op.wh - 1u);
    let m = omed[s];
    let d = abs(osig[s * op.nblocks + (i / op.b) * op.nbx + j / op.b] - m);
    oout[op.ob + t] = d / (d + m + 1e-3);
}
