// Multi-head scaled dot-product attention on token-major tensors:
//   q [Lq, H*D], k [Lk, H*D], v [Lk, H*Dv] (one batch per dispatch), out [Lq, H*Dv].
// Windows of large tensors arrive with element offsets (*_base) into the bound buffers.
//
// `flash`: fused online-softmax kernel; one invocation handles four query rows of one head (rows
// r, r+64, r+128, r+192 of a 256-row workgroup tile), so every k/v element loaded serves four rows
// (lavapipe runs each invocation as a SIMD lane and storage loads are per-lane, so loads dominate).
// q (pre-scaled) and the output accumulators live in named mat4x4 blocks of 16 dims reached by
// constant indices only (head dims up to 128, multiples of 4; NQ/NV blocks chosen at plan time).
// Keys are taken four at a time so the running-max rescale is paid once per four keys. The
// repetitive block code below is unrolled by hand (WGSL has no macros) so nothing relies on the
// driver unrolling loops over private arrays.
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
var<private> qc0: mat4x4<f32>;
var<private> qc1: mat4x4<f32>;
var<private> qc2: mat4x4<f32>;
var<private> qc3: mat4x4<f32>;
var<private> qc4: mat4x4<f32>;
var<private> qc5: mat4x4<f32>;
var<private> qc6: mat4x4<f32>;
var<private> qc7: mat4x4<f32>;
var<private> qd0: mat4x4<f32>;
var<private> qd1: mat4x4<f32>;
var<private> qd2: mat4x4<f32>;
var<private> qd3: mat4x4<f32>;
var<private> qd4: mat4x4<f32>;
var<private> qd5: mat4x4<f32>;
var<private> qd6: mat4x4<f32>;
var<private> qd7: mat4x4<f32>;
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
var<private> ac0: mat4x4<f32>;
var<private> ac1: mat4x4<f32>;
var<private> ac2: mat4x4<f32>;
var<private> ac3: mat4x4<f32>;
var<private> ac4: mat4x4<f32>;
var<private> ac5: mat4x4<f32>;
var<private> ac6: mat4x4<f32>;
var<private> ac7: mat4x4<f32>;
var<private> ad0: mat4x4<f32>;
var<private> ad1: mat4x4<f32>;
var<private> ad2: mat4x4<f32>;
var<private> ad3: mat4x4<f32>;
var<private> ad4: mat4x4<f32>;
var<private> ad5: mat4x4<f32>;
var<private> ad6: mat4x4<f32>;
var<private> ad7: mat4x4<f32>;

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

// Scores of the 4 rows against block `blk` of one key: one load serves every row.
fn k_dot(a: mat4x4<f32>, b: mat4x4<f32>, c: mat4x4<f32>, d: mat4x4<f32>, off: u32, blk: u32, n4: u32) -> vec4<f32> {
    let k = kv_block(off, blk, n4, false);
    return vec4<f32>(mdot(a, k), mdot(b, k), mdot(c, k), mdot(d, k));
}

fn score(off: u32, n4: u32) -> vec4<f32> {
    var s = k_dot(qa0, qb0, qc0, qd0, off, 0u, n4);
    if (NQ > 1u) { s += k_dot(qa1, qb1, qc1, qd1, off, 1u, n4); }
    if (NQ > 2u) { s += k_dot(qa2, qb2, qc2, qd2, off, 2u, n4); }
    if (NQ > 3u) { s += k_dot(qa3, qb3, qc3, qd3, off, 3u, n4); }
    if (NQ > 4u) { s += k_dot(qa4, qb4, qc4, qd4, off, 4u, n4); }
    if (NQ > 5u) { s += k_dot(qa5, qb5, qc5, qd5, off, 5u, n4); }
    if (NQ > 6u) { s += k_dot(qa6, qb6, qc6, qd6, off, 6u, n4); }
    if (NQ > 7u) { s += k_dot(qa7, qb7, qc7, qd7, off, 7u, n4); }
    return s;
}

fn store_block(a: mat4x4<f32>, off: u32, blk: u32, n4: u32, inv: f32) {
    let b = blk * 4u;
    for (var c = 0u; c < 4u; c++) {
        if (b + c < n4) {
            fo[off + b + c] = a[c] * inv;
        }
    }
}

// Online-softmax state of one query row after a block of four keys.
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

// acc = acc * corr + sum_t p[t] * v_row(o[t]) for block `blk` of every row.
fn acc_step(pa: ptr<private, mat4x4<f32>>, sa: Soft, pb: ptr<private, mat4x4<f32>>, sb: Soft, pc: ptr<private, mat4x4<f32>>, sc: Soft, pd: ptr<private, mat4x4<f32>>, sd: Soft, o: vec4<u32>, blk: u32, n4: u32) {
    let v0 = kv_block(o.x, blk, n4, true);
    let v1 = kv_block(o.y, blk, n4, true);
    let v2 = kv_block(o.z, blk, n4, true);
    let v3 = kv_block(o.w, blk, n4, true);
    *pa = *pa * sa.corr + v0 * sa.p.x + v1 * sa.p.y + v2 * sa.p.z + v3 * sa.p.w;
    *pb = *pb * sb.corr + v0 * sb.p.x + v1 * sb.p.y + v2 * sb.p.z + v3 * sb.p.w;
    *pc = *pc * sc.corr + v0 * sc.p.x + v1 * sc.p.y + v2 * sc.p.z + v3 * sc.p.w;
    *pd = *pd * sd.corr + v0 * sd.p.x + v1 * sd.p.y + v2 * sd.p.z + v3 * sd.p.w;
}

// 4 query rows per invocation (row, row + 64, ...): every k/v load serves all of them.
@compute @workgroup_size(64)
fn flash(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = linear_workgroup(wid, nwg);
    let live_g = g < fp.heads * fp.blocks;
    let h = min(g / fp.blocks, fp.heads - 1u);
    let r0 = (g % fp.blocks) * 256u + lid;
    let d4 = fp.d / 4u;
    let dv4 = fp.dv / 4u;
    let qs = fp.heads * fp.d;
    let scl = fp.scale;
    let z = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let qa_off = (fp.q_base + min(r0 + 0u, fp.rows - 1u) * qs + h * fp.d) / 4u;
    let qb_off = (fp.q_base + min(r0 + 64u, fp.rows - 1u) * qs + h * fp.d) / 4u;
    let qc_off = (fp.q_base + min(r0 + 128u, fp.rows - 1u) * qs + h * fp.d) / 4u;
    let qd_off = (fp.q_base + min(r0 + 192u, fp.rows - 1u) * qs + h * fp.d) / 4u;
    qa0 = q_block(qa_off, 0u, d4) * scl; qb0 = q_block(qb_off, 0u, d4) * scl; qc0 = q_block(qc_off, 0u, d4) * scl; qd0 = q_block(qd_off, 0u, d4) * scl;
    if (NQ > 1u) { qa1 = q_block(qa_off, 1u, d4) * scl; qb1 = q_block(qb_off, 1u, d4) * scl; qc1 = q_block(qc_off, 1u, d4) * scl; qd1 = q_block(qd_off, 1u, d4) * scl; }
    if (NQ > 2u) { qa2 = q_block(qa_off, 2u, d4) * scl; qb2 = q_block(qb_off, 2u, d4) * scl; qc2 = q_block(qc_off, 2u, d4) * scl; qd2 = q_block(qd_off, 2u, d4) * scl; }
    if (NQ > 3u) { qa3 = q_block(qa_off, 3u, d4) * scl; qb3 = q_block(qb_off, 3u, d4) * scl; qc3 = q_block(qc_off, 3u, d4) * scl; qd3 = q_block(qd_off, 3u, d4) * scl; }
    if (NQ > 4u) { qa4 = q_block(qa_off, 4u, d4) * scl; qb4 = q_block(qb_off, 4u, d4) * scl; qc4 = q_block(qc_off, 4u, d4) * scl; qd4 = q_block(qd_off, 4u, d4) * scl; }
    if (NQ > 5u) { qa5 = q_block(qa_off, 5u, d4) * scl; qb5 = q_block(qb_off, 5u, d4) * scl; qc5 = q_block(qc_off, 5u, d4) * scl; qd5 = q_block(qd_off, 5u, d4) * scl; }
    if (NQ > 6u) { qa6 = q_block(qa_off, 6u, d4) * scl; qb6 = q_block(qb_off, 6u, d4) * scl; qc6 = q_block(qc_off, 6u, d4) * scl; qd6 = q_block(qd_off, 6u, d4) * scl; }
    if (NQ > 7u) { qa7 = q_block(qa_off, 7u, d4) * scl; qb7 = q_block(qb_off, 7u, d4) * scl; qc7 = q_block(qc_off, 7u, d4) * scl; qd7 = q_block(qd_off, 7u, d4) * scl; }
    aa0 = z; ab0 = z; ac0 = z; ad0 = z;
    aa1 = z; ab1 = z; ac1 = z; ad1 = z;
    aa2 = z; ab2 = z; ac2 = z; ad2 = z;
    aa3 = z; ab3 = z; ac3 = z; ad3 = z;
    aa4 = z; ab4 = z; ac4 = z; ad4 = z;
    aa5 = z; ab5 = z; ac5 = z; ad5 = z;
    aa6 = z; ab6 = z; ac6 = z; ad6 = z;
    aa7 = z; ab7 = z; ac7 = z; ad7 = z;

    let ks = fp.heads * d4;
    let vs = fp.heads * dv4;
    let kh = fp.k_base / 4u + h * d4;
    let vh = fp.v_base / 4u + h * dv4;
    let last = fp.lk - 1u;
    var sa = Soft(NEG_BIG, 0.0, 1.0, vec4<f32>(0.0));
    var sb = Soft(NEG_BIG, 0.0, 1.0, vec4<f32>(0.0));
    var sc = Soft(NEG_BIG, 0.0, 1.0, vec4<f32>(0.0));
    var sd = Soft(NEG_BIG, 0.0, 1.0, vec4<f32>(0.0));
    for (var j = 0u; j < fp.lk; j += 4u) {
        let jv = vec4<u32>(j, j + 1u, j + 2u, j + 3u);
        let valid = jv < vec4<u32>(fp.lk);
        let jj = min(jv, vec4<u32>(last));
        let t0 = score(kh + jj.x * ks, d4);
        let t1 = score(kh + jj.y * ks, d4);
        let t2 = score(kh + jj.z * ks, d4);
        let t3 = score(kh + jj.w * ks, d4);
        sa = soft_step(sa.m, sa.l, vec4<f32>(t0.x, t1.x, t2.x, t3.x), valid);
        sb = soft_step(sb.m, sb.l, vec4<f32>(t0.y, t1.y, t2.y, t3.y), valid);
        sc = soft_step(sc.m, sc.l, vec4<f32>(t0.z, t1.z, t2.z, t3.z), valid);
        sd = soft_step(sd.m, sd.l, vec4<f32>(t0.w, t1.w, t2.w, t3.w), valid);
        let vo = vec4<u32>(vh) + jj * vs;
        acc_step(&aa0, sa, &ab0, sb, &ac0, sc, &ad0, sd, vo, 0u, dv4);
        if (NV > 1u) { acc_step(&aa1, sa, &ab1, sb, &ac1, sc, &ad1, sd, vo, 1u, dv4); }
        if (NV > 2u) { acc_step(&aa2, sa, &ab2, sb, &ac2, sc, &ad2, sd, vo, 2u, dv4); }
        if (NV > 3u) { acc_step(&aa3, sa, &ab3, sb, &ac3, sc, &ad3, sd, vo, 3u, dv4); }
        if (NV > 4u) { acc_step(&aa4, sa, &ab4, sb, &ac4, sc, &ad4, sd, vo, 4u, dv4); }
        if (NV > 5u) { acc_step(&aa5, sa, &ab5, sb, &ac5, sc, &ad5, sd, vo, 5u, dv4); }
        if (NV > 6u) { acc_step(&aa6, sa, &ab6, sb, &ac6, sc, &ad6, sd, vo, 6u, dv4); }
        if (NV > 7u) { acc_step(&aa7, sa, &ab7, sb, &ac7, sc, &ad7, sd, vo, 7u, dv4); }
    }
    let os = fp.heads * fp.dv;
    if (live_g && r0 + 0u < fp.rows) {
        let off = (fp.o_base + (r0 + 0u) * os + h * fp.dv) / 4u;
        let inv = 1.0 / sa.l;
        store_block(aa0, off, 0u, dv4, inv);
        if (NV > 1u) { store_block(aa1, off, 1u, dv4, inv); }
        if (NV > 2u) { store_block(aa2, off, 2u, dv4, inv); }
        if (NV > 3u) { store_block(aa3, off, 3u, dv4, inv); }
        if (NV > 4u) { store_block(aa4, off, 4u, dv4, inv); }
        if (NV > 5u) { store_block(aa5, off, 5u, dv4, inv); }
        if (NV > 6u) { store_block(aa6, off, 6u, dv4, inv); }
        if (NV > 7u) { store_block(aa7, off, 7u, dv4, inv); }
    }
    if (live_g && r0 + 64u < fp.rows) {
        let off = (fp.o_base + (r0 + 64u) * os + h * fp.dv) / 4u;
        let inv = 1.0 / sb.l;
        store_block(ab0, off, 0u, dv4, inv);
        if (NV > 1u) { store_block(ab1, off, 1u, dv4, inv); }
        if (NV > 2u) { store_block(ab2, off, 2u, dv4, inv); }
        if (NV > 3u) { store_block(ab3, off, 3u, dv4, inv); }
        if (NV > 4u) { store_block(ab4, off, 4u, dv4, inv); }
        if (NV > 5u) { store_block(ab5, off, 5u, dv4, inv); }
        if (NV > 6u) { store_block(ab6, off, 6u, dv4, inv); }
        if (NV > 7u) { store_block(ab7, off, 7u, dv4, inv); }
    }
    if (live_g && r0 + 128u < fp.rows) {
        let off = (fp.o_base + (r0 + 128u) * os + h * fp.dv) / 4u;
        let inv = 1.0 / sc.l;
        store_block(ac0, off, 0u, dv4, inv);
        if (NV > 1u) { store_block(ac1, off, 1u, dv4, inv); }
        if (NV > 2u) { store_block(ac2, off, 2u, dv4, inv); }
        if (NV > 3u) { store_block(ac3, off, 3u, dv4, inv); }
        if (NV > 4u) { store_block(ac4, off, 4u, dv4, inv); }
        if (NV > 5u) { store_block(ac5, off, 5u, dv4, inv); }
        if (NV > 6u) { store_block(ac6, off, 6u, dv4, inv); }
        if (NV > 7u) { store_block(ac7, off, 7u, dv4, inv); }
    }
    if (live_g && r0 + 192u < fp.rows) {
        let off = (fp.o_base + (r0 + 192u) * os + h * fp.dv) / 4u;
        let inv = 1.0 / sd.l;
        store_block(ad0, off, 0u, dv4, inv);
        if (NV > 1u) { store_block(ad1, off, 1u, dv4, inv); }
        if (NV > 2u) { store_block(ad2, off, 2u, dv4, inv); }
        if (NV > 3u) { store_block(ad3, off, 3u, dv4, inv); }
        if (NV > 4u) { store_block(ad4, off, 4u, dv4, inv); }
        if (NV > 5u) { store_block(ad5, off, 5u, dv4, inv); }
        if (NV > 6u) { store_block(ad6, off, 6u, dv4, inv); }
        if (NV > 7u) { store_block(ad7, off, 7u, dv4, inv); }
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
