// Multi-head scaled dot-product attention on token-major tensors:
//   q [Lq, H*D], k [Lk, H*D], v [Lk, H*Dv] (one batch per dispatch), out [Lq, H*Dv].
// Windows of large tensors arrive with element offsets (*_base) into the bound buffers.
//
// `flash`: fused online-softmax kernel, one invocation per (query row, head). All invocations of a
// workgroup share one head, so key/value addresses are uniform across the workgroup (broadcast loads
// on lavapipe); q (pre-scaled) and the output accumulator live in private vec4 arrays of DCAP slots
// (D/4 and Dv/4 at most DCAP <= 32, i.e. head dims up to 128, both multiples of 4). Keys are taken
// four at a time so the running-max rescale is paid once per four keys.
//
// Fallback for any head dims (odd, or far above 128): `scores` (one invocation per score, looping
// over D), `softmax_rows` (in place, one invocation per row) and `weighted_sum` (one invocation per
// output element, looping over keys), through a scratch score buffer for a window of query rows.

struct AttnParams {
    rows: u32,     // query rows in this dispatch
    lk: u32,       // keys
    heads: u32,
    d: u32,        // head dim of q and k
    dv: u32,       // head dim of v and out
    q_base: u32,   // element offset of this dispatch's first query row in the bound q
    k_base: u32,
    v_base: u32,
    o_base: u32,
    scale: f32,
    blocks: u32,   // flash: workgroups per head
    _pad: u32,
}

override DCAP: u32 = 16u;
const NEG_BIG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> fp: AttnParams;
@group(0) @binding(1) var<storage, read> fq: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> fk: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> fv: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> fo: array<vec4<f32>>;

@compute @workgroup_size(64)
fn flash(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = linear_workgroup(wid, nwg);
    let live_g = g < fp.heads * fp.blocks;
    let h = min(g / fp.blocks, fp.heads - 1u);
    let row_raw = (g % fp.blocks) * 64u + lid;
    let live = live_g && row_raw < fp.rows;
    let row = min(row_raw, fp.rows - 1u);
    let d4 = fp.d / 4u;
    let dv4 = fp.dv / 4u;

    var q: array<vec4<f32>, 32>;
    var acc: array<vec4<f32>, 32>;
    let qoff = (fp.q_base + row * fp.heads * fp.d + h * fp.d) / 4u;
    for (var i = 0u; i < DCAP; i++) {
        q[i] = select(vec4<f32>(0.0), fq[qoff + min(i, d4 - 1u)] * fp.scale, i < d4);
        acc[i] = vec4<f32>(0.0);
    }

    let ks = fp.heads * d4;
    let vs = fp.heads * dv4;
    let kh = fp.k_base / 4u + h * d4;
    let vh = fp.v_base / 4u + h * dv4;
    let last = fp.lk - 1u;
    var m = NEG_BIG;
    var l = 0.0;
    for (var j = 0u; j < fp.lk; j += 4u) {
        let k0 = kh + j * ks;
        let k1 = kh + min(j + 1u, last) * ks;
        let k2 = kh + min(j + 2u, last) * ks;
        let k3 = kh + min(j + 3u, last) * ks;
        var s = vec4<f32>(0.0);
        for (var i = 0u; i < DCAP; i++) {
            let ii = min(i, d4 - 1u);
            let qi = q[i];
            s += vec4<f32>(dot(qi, fk[k0 + ii]), dot(qi, fk[k1 + ii]), dot(qi, fk[k2 + ii]), dot(qi, fk[k3 + ii]));
        }
        s = select(vec4<f32>(NEG_BIG), s, vec4<u32>(j, j + 1u, j + 2u, j + 3u) < vec4<u32>(fp.lk));
        let mn = max(m, max(max(s.x, s.y), max(s.z, s.w)));
        let corr = exp(m - mn);
        let p = exp(s - vec4<f32>(mn));
        l = l * corr + (p.x + p.y) + (p.z + p.w);
        m = mn;
        let v0 = vh + j * vs;
        let v1 = vh + min(j + 1u, last) * vs;
        let v2 = vh + min(j + 2u, last) * vs;
        let v3 = vh + min(j + 3u, last) * vs;
        for (var i = 0u; i < DCAP; i++) {
            let ii = min(i, dv4 - 1u);
            acc[i] = acc[i] * corr + p.x * fv[v0 + ii] + p.y * fv[v1 + ii] + p.z * fv[v2 + ii] + p.w * fv[v3 + ii];
        }
    }
    if (live) {
        let inv = 1.0 / l;
        let ooff = (fp.o_base + row * fp.heads * fp.dv + h * fp.dv) / 4u;
        for (var i = 0u; i < DCAP; i++) {
            if (i < dv4) {
                fo[ooff + i] = acc[i] * inv;
            }
        }
    }
}

// ---- Fallback: scores to scratch, softmax in place, weighted sum. ----
// Scratch layout for a window of `rows` query rows: s[(h * rows + i) * lk + j].

@group(0) @binding(0) var<uniform> sp: AttnParams;
@group(0) @binding(1) var<storage, read> sq: array<f32>;
@group(0) @binding(2) var<storage, read> sk: array<f32>;
@group(0) @binding(3) var<storage, read_write> ss: array<f32>;

@compute @workgroup_size(64)
fn scores(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = linear_workgroup(wid, nwg) * 64u + lid;
    if (n >= sp.heads * sp.rows * sp.lk) {
        return;
    }
    let j = n % sp.lk;
    let hi = n / sp.lk;
    let i = hi % sp.rows;
    let h = hi / sp.rows;
    let qo = sp.q_base + i * sp.heads * sp.d + h * sp.d;
    let ko = sp.k_base + j * sp.heads * sp.d + h * sp.d;
    var a = vec4<f32>(0.0);
    let d4 = sp.d / 4u * 4u;
    for (var c = 0u; c < d4; c += 4u) {
        a += vec4<f32>(sq[qo + c], sq[qo + c + 1u], sq[qo + c + 2u], sq[qo + c + 3u])
            * vec4<f32>(sk[ko + c], sk[ko + c + 1u], sk[ko + c + 2u], sk[ko + c + 3u]);
    }
    var t = (a.x + a.y) + (a.z + a.w);
    for (var c = d4; c < sp.d; c++) {
        t += sq[qo + c] * sk[ko + c];
    }
    ss[n] = t * sp.scale;
}

@group(0) @binding(0) var<uniform> rp: AttnParams;
@group(0) @binding(1) var<storage, read_write> rs: array<f32>;

@compute @workgroup_size(64)
fn softmax_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = linear_workgroup(wid, nwg) * 64u + lid;
    if (r >= rp.heads * rp.rows) {
        return;
    }
    let o = r * rp.lk;
    var m = NEG_BIG;
    for (var j = 0u; j < rp.lk; j++) {
        m = max(m, rs[o + j]);
    }
    var sum = 0.0;
    for (var j = 0u; j < rp.lk; j++) {
        let e = exp(rs[o + j] - m);
        rs[o + j] = e;
        sum += e;
    }
    let inv = 1.0 / sum;
    for (var j = 0u; j < rp.lk; j++) {
        rs[o + j] *= inv;
    }
}

@group(0) @binding(0) var<uniform> wp: AttnParams;
@group(0) @binding(1) var<storage, read> ws: array<f32>;
@group(0) @binding(2) var<storage, read> wv: array<f32>;
@group(0) @binding(3) var<storage, read_write> wo: array<f32>;

@compute @workgroup_size(64)
fn weighted_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // n indexes the output window [rows, heads * dv] directly.
    let n = linear_workgroup(wid, nwg) * 64u + lid;
    let width = wp.heads * wp.dv;
    if (n >= wp.rows * width) {
        return;
    }
    let i = n / width;
    let hc = n % width;
    let h = hc / wp.dv;
    let so = (h * wp.rows + i) * wp.lk;
    let vo = wp.v_base + hc;
    var a = 0.0;
    for (var j = 0u; j < wp.lk; j++) {
        a += ws[so + j] * wv[vo + j * width];
    }
    wo[wp.o_base + n] = a;
}
