// Multi-head scaled dot-product attention on token-major tensors:
//   q [Lq, H*D], k [Lk, H*D], v [Lk, H*Dv] (one batch per dispatch), out [Lq, H*Dv].
// Windows of large tensors arrive with element offsets (*_base) into the bound buffers.
//
// `flash`: fused online-softmax kernel, one invocation per (query row, head). All invocations of a
// workgroup share one head, so key/value addresses are uniform across the workgroup (broadcast loads
// on lavapipe); q (pre-scaled) and the output accumulator live in registers as blocks of 16 dims
// (head dims up to 128, multiples of 4). Keys are taken four at a time so the running-max rescale is
// paid once per four keys.
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

const NEG_BIG: f32 = -3.0e38;

// Register blocks of 16 head dims (one mat4x4 = four vec4 columns) held per invocation: NQ for q
// (and k), NV for the output accumulator (and v); 1..8 each. Every block is a named module-scope
// variable reached by constant indices only, so lavapipe keeps them in registers/stack slots
// rather than lowering a dynamically indexed private array to per-lane gathers.
override NQ: u32 = 4u;
override NV: u32 = 4u;

@group(0) @binding(0) var<uniform> fp: AttnParams;
@group(0) @binding(1) var<storage, read> fq: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> fk: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> fv: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> fo: array<vec4<f32>>;

var<private> q0: mat4x4<f32>;
var<private> q1: mat4x4<f32>;
var<private> q2: mat4x4<f32>;
var<private> q3: mat4x4<f32>;
var<private> q4: mat4x4<f32>;
var<private> q5: mat4x4<f32>;
var<private> q6: mat4x4<f32>;
var<private> q7: mat4x4<f32>;
var<private> a0: mat4x4<f32>;
var<private> a1: mat4x4<f32>;
var<private> a2: mat4x4<f32>;
var<private> a3: mat4x4<f32>;
var<private> a4: mat4x4<f32>;
var<private> a5: mat4x4<f32>;
var<private> a6: mat4x4<f32>;
var<private> a7: mat4x4<f32>;

// Block `blk` of a q row at vec4 offset `off` with n4 vec4s, zero past the end.
fn q_block(off: u32, blk: u32, n4: u32) -> mat4x4<f32> {
    let b = blk * 4u;
    let l = n4 - 1u;
    let z = vec4<f32>(0.0);
    return mat4x4<f32>(
        select(z, fq[off + min(b, l)], b < n4),
        select(z, fq[off + min(b + 1u, l)], b + 1u < n4),
        select(z, fq[off + min(b + 2u, l)], b + 2u < n4),
        select(z, fq[off + min(b + 3u, l)], b + 3u < n4),
    );
}

// Dot of block `m` with block `blk` of the k row at `off` (indices clamped; q is zero there).
fn k_dot(m: mat4x4<f32>, off: u32, blk: u32, n4: u32) -> f32 {
    let b = blk * 4u;
    let l = n4 - 1u;
    return (dot(m[0], fk[off + min(b, l)]) + dot(m[1], fk[off + min(b + 1u, l)]))
        + (dot(m[2], fk[off + min(b + 2u, l)]) + dot(m[3], fk[off + min(b + 3u, l)]));
}

fn score(off: u32, n4: u32) -> f32 {
    var s = k_dot(q0, off, 0u, n4);
    if (NQ > 1u) { s += k_dot(q1, off, 1u, n4); }
    if (NQ > 2u) { s += k_dot(q2, off, 2u, n4); }
    if (NQ > 3u) { s += k_dot(q3, off, 3u, n4); }
    if (NQ > 4u) { s += k_dot(q4, off, 4u, n4); }
    if (NQ > 5u) { s += k_dot(q5, off, 5u, n4); }
    if (NQ > 6u) { s += k_dot(q6, off, 6u, n4); }
    if (NQ > 7u) { s += k_dot(q7, off, 7u, n4); }
    return s;
}

// Block `blk` of the v row at `off` (indices clamped; columns past the end are never stored).
fn v_block(off: u32, blk: u32, n4: u32) -> mat4x4<f32> {
    let b = blk * 4u;
    let l = n4 - 1u;
    return mat4x4<f32>(fv[off + min(b, l)], fv[off + min(b + 1u, l)], fv[off + min(b + 2u, l)], fv[off + min(b + 3u, l)]);
}

// acc = acc * corr + sum_t p[t] * v_row(o[t]) for one block.
fn acc_block(a: mat4x4<f32>, corr: f32, p: vec4<f32>, o: vec4<u32>, blk: u32, n4: u32) -> mat4x4<f32> {
    return a * corr + v_block(o.x, blk, n4) * p.x + v_block(o.y, blk, n4) * p.y
        + v_block(o.z, blk, n4) * p.z + v_block(o.w, blk, n4) * p.w;
}

fn store_block(a: mat4x4<f32>, off: u32, blk: u32, n4: u32, inv: f32) {
    let b = blk * 4u;
    for (var c = 0u; c < 4u; c++) {
        if (b + c < n4) {
            fo[off + b + c] = a[c] * inv;
        }
    }
}

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

    let qoff = (fp.q_base + row * fp.heads * fp.d + h * fp.d) / 4u;
    let sc = fp.scale;
    let z = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    q0 = q_block(qoff, 0u, d4) * sc;
    if (NQ > 1u) { q1 = q_block(qoff, 1u, d4) * sc; }
    if (NQ > 2u) { q2 = q_block(qoff, 2u, d4) * sc; }
    if (NQ > 3u) { q3 = q_block(qoff, 3u, d4) * sc; }
    if (NQ > 4u) { q4 = q_block(qoff, 4u, d4) * sc; }
    if (NQ > 5u) { q5 = q_block(qoff, 5u, d4) * sc; }
    if (NQ > 6u) { q6 = q_block(qoff, 6u, d4) * sc; }
    if (NQ > 7u) { q7 = q_block(qoff, 7u, d4) * sc; }
    a0 = z; a1 = z; a2 = z; a3 = z; a4 = z; a5 = z; a6 = z; a7 = z;

    let ks = fp.heads * d4;
    let vs = fp.heads * dv4;
    let kh = fp.k_base / 4u + h * d4;
    let vh = fp.v_base / 4u + h * dv4;
    let last = fp.lk - 1u;
    var m = NEG_BIG;
    var l = 0.0;
    for (var j = 0u; j < fp.lk; j += 4u) {
        let jj = min(vec4<u32>(j, j + 1u, j + 2u, j + 3u), vec4<u32>(last));
        var s = vec4<f32>(score(kh + jj.x * ks, d4), score(kh + jj.y * ks, d4), score(kh + jj.z * ks, d4), score(kh + jj.w * ks, d4));
        s = select(vec4<f32>(NEG_BIG), s, vec4<u32>(j, j + 1u, j + 2u, j + 3u) < vec4<u32>(fp.lk));
        let mn = max(m, max(max(s.x, s.y), max(s.z, s.w)));
        let corr = exp(m - mn);
        let p = exp(s - vec4<f32>(mn));
        l = l * corr + (p.x + p.y) + (p.z + p.w);
        m = mn;
        let vo = vec4<u32>(vh) + jj * vs;
        a0 = acc_block(a0, corr, p, vo, 0u, dv4);
        if (NV > 1u) { a1 = acc_block(a1, corr, p, vo, 1u, dv4); }
        if (NV > 2u) { a2 = acc_block(a2, corr, p, vo, 2u, dv4); }
        if (NV > 3u) { a3 = acc_block(a3, corr, p, vo, 3u, dv4); }
        if (NV > 4u) { a4 = acc_block(a4, corr, p, vo, 4u, dv4); }
        if (NV > 5u) { a5 = acc_block(a5, corr, p, vo, 5u, dv4); }
        if (NV > 6u) { a6 = acc_block(a6, corr, p, vo, 6u, dv4); }
        if (NV > 7u) { a7 = acc_block(a7, corr, p, vo, 7u, dv4); }
    }
    if (live) {
        let inv = 1.0 / l;
        let ooff = (fp.o_base + row * fp.heads * fp.dv + h * fp.dv) / 4u;
        store_block(a0, ooff, 0u, dv4, inv);
        if (NV > 1u) { store_block(a1, ooff, 1u, dv4, inv); }
        if (NV > 2u) { store_block(a2, ooff, 2u, dv4, inv); }
        if (NV > 3u) { store_block(a3, ooff, 3u, dv4, inv); }
        if (NV > 4u) { store_block(a4, ooff, 4u, dv4, inv); }
        if (NV > 5u) { store_block(a5, ooff, 5u, dv4, inv); }
        if (NV > 6u) { store_block(a6, ooff, 6u, dv4, inv); }
        if (NV > 7u) { store_block(a7, ooff, 7u, dv4, inv); }
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
