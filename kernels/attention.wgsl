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

var<private> qa0: mat4x4<f32>;
var<private> qa1: mat4x4<f32>;
var<private> qa2: mat4x4<f32>;
var<private> qa3: mat4x4<f32>;
var<private> qa4: mat4x4<f32>;
var<private> qa5: mat4x4<f32>;
var<private> qa6: mat4x4<f32>;
var<private> qa7: mat4x4<f32>;
var<private> qb0: mat4x4<f32>;
var<private> qb1: mat4x4<f32>;
var<private> qb2: mat4x4<f32>;
var<private> qb3: mat4x4<f32>;
var<private> qb4: mat4x4<f32>;
var<private> qb5: mat4x4<f32>;
var<private> qb6: mat4x4<f32>;
var<private> qb7: mat4x4<f32>;
var<private> aa0: mat4x4<f32>;
var<private> aa1: mat4x4<f32>;
var<private> aa2: mat4x4<f32>;
var<private> aa3: mat4x4<f32>;
var<private> aa4: mat4x4<f32>;
var<private> aa5: mat4x4<f32>;
var<private> aa6: mat4x4<f32>;
var<private> aa7: mat4x4<f32>;
var<private> ab0: mat4x4<f32>;
var<private> ab1: mat4x4<f32>;
var<private> ab2: mat4x4<f32>;
var<private> ab3: mat4x4<f32>;
var<private> ab4: mat4x4<f32>;
var<private> ab5: mat4x4<f32>;
var<private> ab6: mat4x4<f32>;
var<private> ab7: mat4x4<f32>;

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

// Block `blk` of the k or v row at `off` (indices clamped: q is zero and out is not stored there).
fn kv_block(off: u32, blk: u32, n4: u32, is_v: bool) -> mat4x4<f32> {
    let b = blk * 4u;
    let l = n4 - 1u;
    if (is_v) {
        return mat4x4<f32>(fv[off + min(b, l)], fv[off + min(b + 1u, l)], fv[off + min(b + 2u, l)], fv[off + min(b + 3u, l)]);
    }
    return mat4x4<f32>(fk[off + min(b, l)], fk[off + min(b + 1u, l)], fk[off + min(b + 2u, l)], fk[off + min(b + 3u, l)]);
}

fn mdot(a: mat4x4<f32>, b: mat4x4<f32>) -> f32 {
    return (dot(a[0], b[0]) + dot(a[1], b[1])) + (dot(a[2], b[2]) + dot(a[3], b[3]));
}

// Scores of both rows against block `blk` of one key: one load serves two rows.
fn k_dot2(a: mat4x4<f32>, b: mat4x4<f32>, off: u32, blk: u32, n4: u32) -> vec2<f32> {
    let k = kv_block(off, blk, n4, false);
    return vec2<f32>(mdot(a, k), mdot(b, k));
}

fn score2(off: u32, n4: u32) -> vec2<f32> {
    var s = k_dot2(qa0, qb0, off, 0u, n4);
    if (NQ > 1u) { s += k_dot2(qa1, qb1, off, 1u, n4); }
    if (NQ > 2u) { s += k_dot2(qa2, qb2, off, 2u, n4); }
    if (NQ > 3u) { s += k_dot2(qa3, qb3, off, 3u, n4); }
    if (NQ > 4u) { s += k_dot2(qa4, qb4, off, 4u, n4); }
    if (NQ > 5u) { s += k_dot2(qa5, qb5, off, 5u, n4); }
    if (NQ > 6u) { s += k_dot2(qa6, qb6, off, 6u, n4); }
    if (NQ > 7u) { s += k_dot2(qa7, qb7, off, 7u, n4); }
    return s;
}

// acc = acc * corr + sum_t p[t] * v_row(o[t]) for one block of both rows.
fn acc2(pa: ptr<private, mat4x4<f32>>, pb: ptr<private, mat4x4<f32>>, ca: f32, cb: f32, p: vec4<f32>, r: vec4<f32>, o: vec4<u32>, blk: u32, n4: u32) {
    let v0 = kv_block(o.x, blk, n4, true);
    let v1 = kv_block(o.y, blk, n4, true);
    let v2 = kv_block(o.z, blk, n4, true);
    let v3 = kv_block(o.w, blk, n4, true);
    *pa = *pa * ca + v0 * p.x + v1 * p.y + v2 * p.z + v3 * p.w;
    *pb = *pb * cb + v0 * r.x + v1 * r.y + v2 * r.z + v3 * r.w;
}

fn store_block(a: mat4x4<f32>, off: u32, blk: u32, n4: u32, inv: f32) {
    let b = blk * 4u;
    for (var c = 0u; c < 4u; c++) {
        if (b + c < n4) {
            fo[off + b + c] = a[c] * inv;
        }
    }
}

// Online-softmax state of one query row for a block of four keys.
struct Soft {
    m: f32,
    l: f32,
    corr: f32,
    p: vec4<f32>,
}

fn soft_step(m: f32, l: f32, s_in: vec4<f32>, valid: vec4<bool>) -> Soft {
    let s = select(vec4<f32>(NEG_BIG), s_in, valid);
    let mn = max(m, max(max(s.x, s.y), max(s.z, s.w)));
    let corr = exp(m - mn);
    let p = exp(s - vec4<f32>(mn));
    return Soft(mn, l * corr + (p.x + p.y) + (p.z + p.w), corr, p);
}

// Two query rows per invocation (row and row + 64): every k/v load serves both.
@compute @workgroup_size(64)
fn flash(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = linear_workgroup(wid, nwg);
    let live_g = g < fp.heads * fp.blocks;
    let h = min(g / fp.blocks, fp.heads - 1u);
    let ra = (g % fp.blocks) * 128u + lid;
    let rb = ra + 64u;
    let live_a = live_g && ra < fp.rows;
    let live_b = live_g && rb < fp.rows;
    let d4 = fp.d / 4u;
    let dv4 = fp.dv / 4u;

    let qs = fp.heads * fp.d;
    let qa_off = (fp.q_base + min(ra, fp.rows - 1u) * qs + h * fp.d) / 4u;
    let qb_off = (fp.q_base + min(rb, fp.rows - 1u) * qs + h * fp.d) / 4u;
    let sc = fp.scale;
    let z = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    qa0 = q_block(qa_off, 0u, d4) * sc; qb0 = q_block(qb_off, 0u, d4) * sc;
    if (NQ > 1u) { qa1 = q_block(qa_off, 1u, d4) * sc; qb1 = q_block(qb_off, 1u, d4) * sc; }
    if (NQ > 2u) { qa2 = q_block(qa_off, 2u, d4) * sc; qb2 = q_block(qb_off, 2u, d4) * sc; }
    if (NQ > 3u) { qa3 = q_block(qa_off, 3u, d4) * sc; qb3 = q_block(qb_off, 3u, d4) * sc; }
    if (NQ > 4u) { qa4 = q_block(qa_off, 4u, d4) * sc; qb4 = q_block(qb_off, 4u, d4) * sc; }
    if (NQ > 5u) { qa5 = q_block(qa_off, 5u, d4) * sc; qb5 = q_block(qb_off, 5u, d4) * sc; }
    if (NQ > 6u) { qa6 = q_block(qa_off, 6u, d4) * sc; qb6 = q_block(qb_off, 6u, d4) * sc; }
    if (NQ > 7u) { qa7 = q_block(qa_off, 7u, d4) * sc; qb7 = q_block(qb_off, 7u, d4) * sc; }
    aa0 = z; ab0 = z;
    aa1 = z; ab1 = z;
    aa2 = z; ab2 = z;
    aa3 = z; ab3 = z;
    aa4 = z; ab4 = z;
    aa5 = z; ab5 = z;
    aa6 = z; ab6 = z;
    aa7 = z; ab7 = z;

    let ks = fp.heads * d4;
    let vs = fp.heads * dv4;
    let kh = fp.k_base / 4u + h * d4;
    let vh = fp.v_base / 4u + h * dv4;
    let last = fp.lk - 1u;
    var ma = NEG_BIG;
    var la = 0.0;
    var mb = NEG_BIG;
    var lb = 0.0;
    for (var j = 0u; j < fp.lk; j += 4u) {
        let jv = vec4<u32>(j, j + 1u, j + 2u, j + 3u);
        let valid = jv < vec4<u32>(fp.lk);
        let jj = min(jv, vec4<u32>(last));
        let s0 = score2(kh + jj.x * ks, d4);
        let s1 = score2(kh + jj.y * ks, d4);
        let s2 = score2(kh + jj.z * ks, d4);
        let s3 = score2(kh + jj.w * ks, d4);
        let sa = soft_step(ma, la, vec4<f32>(s0.x, s1.x, s2.x, s3.x), valid);
        let sb = soft_step(mb, lb, vec4<f32>(s0.y, s1.y, s2.y, s3.y), valid);
        ma = sa.m;
        la = sa.l;
        mb = sb.m;
        lb = sb.l;
        let vo = vec4<u32>(vh) + jj * vs;
        acc2(&aa0, &ab0, sa.corr, sb.corr, sa.p, sb.p, vo, 0u, dv4);
        if (NV > 1u) { acc2(&aa1, &ab1, sa.corr, sb.corr, sa.p, sb.p, vo, 1u, dv4); }
        if (NV > 2u) { acc2(&aa2, &ab2, sa.corr, sb.corr, sa.p, sb.p, vo, 2u, dv4); }
        if (NV > 3u) { acc2(&aa3, &ab3, sa.corr, sb.corr, sa.p, sb.p, vo, 3u, dv4); }
        if (NV > 4u) { acc2(&aa4, &ab4, sa.corr, sb.corr, sa.p, sb.p, vo, 4u, dv4); }
        if (NV > 5u) { acc2(&aa5, &ab5, sa.corr, sb.corr, sa.p, sb.p, vo, 5u, dv4); }
        if (NV > 6u) { acc2(&aa6, &ab6, sa.corr, sb.corr, sa.p, sb.p, vo, 6u, dv4); }
        if (NV > 7u) { acc2(&aa7, &ab7, sa.corr, sb.corr, sa.p, sb.p, vo, 7u, dv4); }
    }
    let os = fp.heads * fp.dv;
    if (live_a) {
        let off = (fp.o_base + ra * os + h * fp.dv) / 4u;
        let inv = 1.0 / la;
        store_block(aa0, off, 0u, dv4, inv);
        if (NV > 1u) { store_block(aa1, off, 1u, dv4, inv); }
        if (NV > 2u) { store_block(aa2, off, 2u, dv4, inv); }
        if (NV > 3u) { store_block(aa3, off, 3u, dv4, inv); }
        if (NV > 4u) { store_block(aa4, off, 4u, dv4, inv); }
        if (NV > 5u) { store_block(aa5, off, 5u, dv4, inv); }
        if (NV > 6u) { store_block(aa6, off, 6u, dv4, inv); }
        if (NV > 7u) { store_block(aa7, off, 7u, dv4, inv); }
    }
    if (live_b) {
        let off = (fp.o_base + rb * os + h * fp.dv) / 4u;
        let inv = 1.0 / lb;
        store_block(ab0, off, 0u, dv4, inv);
        if (NV > 1u) { store_block(ab1, off, 1u, dv4, inv); }
        if (NV > 2u) { store_block(ab2, off, 2u, dv4, inv); }
        if (NV > 3u) { store_block(ab3, off, 3u, dv4, inv); }
        if (NV > 4u) { store_block(ab4, off, 4u, dv4, inv); }
        if (NV > 5u) { store_block(ab5, off, 5u, dv4, inv); }
        if (NV > 6u) { store_block(ab6, off, 6u, dv4, inv); }
        if (NV > 7u) { store_block(ab7, off, 7u, dv4, inv); }
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
