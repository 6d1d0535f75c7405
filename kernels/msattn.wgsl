// Windowed multi-scale attention (see src/ops/msattn.rs): q, k, v, out are feature maps
// [N, C, H, W]; channel group g (channels c0 .. c0 + cg) is one head whose tokens are the
// non-overlapping p x p patches. Token t = (ty, tx), ty in 0..H/p, tx in 0..W/p, t = ty * tw + tx;
// token element e = (c, dy, dx), e = (c * p + dy) * p + dx, so the token dim is d = cg * p * p.
// Element e of token t of batch item n sits at
//   n * C*H*W + tok(t) + rel(e),  tok(t) = ty * p * W + tx * p,  rel(e) = (c0 + c) * H*W + dy * W + dx,
// which is how the tokenize / untokenize are folded into loads and stores (no permuted copy).
// One dispatch per group; the uniform carries that group's c0 and p.
//
// `fused` (GPUs; software devices for heads of few tokens): one 64-invocation workgroup per (batch
// item, query token), online softmax over the keys. The score of each key is a workgroup
// reduction over d; each invocation owns the token elements e = lid, lid + 64, ... of the query's
// output patch and keeps their running weighted sum in the output buffer itself (no other
// workgroup writes that patch), rescaled when the running max grows, so d may be large (16 x 16
// patches of 128 channels: d = 32768) and no score matrix is written.
//
// `gather` / `scatter` (the composed path on software devices): tokenize one group of one batch
// item into a dense matrix (token-major [L, d] or element-major [d, L]) for the GEMM ops, and write
// an element-major [d, L] result back into the map.

struct MsParams {
    n: u32,       // batch items
    c: u32,       // channels of the whole map
    h: u32,
    w: u32,
    c0: u32,      // first channel of this group
    cg: u32,      // channels of this group
    p: u32,       // patch size of this group
    tw: u32,      // tokens across: W / p
    lt: u32,      // tokens: (H / p) * (W / p)
    d: u32,       // token dim: cg * p * p
    scale: f32,   // fused: 1 / sqrt(d)
    mode: u32,    // gather: 0 token-major [L, d], 1 element-major [d, L]
    item: u32,    // gather / scatter: batch item
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

const NEG_BIG: f32 = -3.0e38;

// Offset of token element e relative to its token's first element (same for every token).
fn rel(e: u32, c0: u32, p: u32, h: u32, w: u32) -> u32 {
    let pp = p * p;
    let c = e / pp;
    let r = e - c * pp;
    let dy = r / p;
    return (c0 + c) * h * w + dy * w + (r - dy * p);
}

// Offset of token t's first element (its patch's top-left pixel in channel 0).
fn tok(t: u32, tw: u32, p: u32, w: u32) -> u32 {
    let ty = t / tw;
    return ty * p * w + (t - ty * tw) * p;
}

@group(0) @binding(0) var<uniform> fp: MsParams;
@group(0) @binding(1) var<storage, read> fq: array<f32>;
@group(0) @binding(2) var<storage, read> fk: array<f32>;
@group(0) @binding(3) var<storage, read> fv: array<f32>;
@group(0) @binding(4) var<storage, read_write> fo: array<f32>;

var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn fused(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = linear_workgroup(wid, nwg);
    if (g >= fp.n * fp.lt) {
        return;
    }
    let n = g / fp.lt;
    let t = g - n * fp.lt;
    let nb = n * fp.c * fp.h * fp.w;
    let qb = nb + tok(t, fp.tw, fp.p, fp.w);
    var m = NEG_BIG;
    var l = 0.0;
    for (var j = 0u; j < fp.lt; j++) {
        let kb = nb + tok(j, fp.tw, fp.p, fp.w);
        // Partial dot product over this invocation's elements, then a tree reduction.
        var s4 = vec4<f32>(0.0);
        var e = lid;
        for (; e + 192u < fp.d; e += 256u) {
            let r0 = rel(e, fp.c0, fp.p, fp.h, fp.w);
            let r1 = rel(e + 64u, fp.c0, fp.p, fp.h, fp.w);
            let r2 = rel(e + 128u, fp.c0, fp.p, fp.h, fp.w);
            let r3 = rel(e + 192u, fp.c0, fp.p, fp.h, fp.w);
            s4 += vec4<f32>(fq[qb + r0], fq[qb + r1], fq[qb + r2], fq[qb + r3])
                * vec4<f32>(fk[kb + r0], fk[kb + r1], fk[kb + r2], fk[kb + r3]);
        }
        var s = (s4.x + s4.y) + (s4.z + s4.w);
        for (; e < fp.d; e += 64u) {
            let r = rel(e, fp.c0, fp.p, fp.h, fp.w);
            s += fq[qb + r] * fk[kb + r];
        }
        red[lid] = s;
        workgroupBarrier();
        for (var st = 32u; st > 0u; st >>= 1u) {
            if (lid < st) {
                red[lid] += red[lid + st];
            }
            workgroupBarrier();
        }
        let sc = red[0] * fp.scale;
        workgroupBarrier();
        // Online softmax: rescale the running sum when the max grows.
        let mn = max(m, sc);
        let corr = exp(m - mn);
        let pj = exp(sc - mn);
        l = l * corr + pj;
        m = mn;
        for (var e2 = lid; e2 < fp.d; e2 += 64u) {
            let r = rel(e2, fp.c0, fp.p, fp.h, fp.w);
            if (j == 0u) {
                fo[qb + r] = pj * fv[kb + r];
            } else {
                fo[qb + r] = fo[qb + r] * corr + pj * fv[kb + r];
            }
        }
    }
    let inv = 1.0 / l;
    for (var e2 = lid; e2 < fp.d; e2 += 64u) {
        let r = rel(e2, fp.c0, fp.p, fp.h, fp.w);
        fo[qb + r] *= inv;
    }
}

// ---- Composed path: tokenize / untokenize one group of one batch item. ----

@group(0) @binding(0) var<uniform> gp: MsParams;
@group(0) @binding(1) var<storage, read> gx: array<f32>;
@group(0) @binding(2) var<storage, read_write> gd: array<f32>;

// gd[i] = element of the token matrix: mode 0 [L, d] (i = t * d + e), mode 1 [d, L] (i = e * L + t).
@compute @workgroup_size(64)
fn gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_workgroup(wid, nwg) * 64u + lid;
    if (i >= gp.lt * gp.d) {
        return;
    }
    var t: u32;
    var e: u32;
    if (gp.mode == 0u) {
        t = i / gp.d;
        e = i - t * gp.d;
    } else {
        e = i / gp.lt;
        t = i - e * gp.lt;
    }
    let nb = gp.item * gp.c * gp.h * gp.w;
    gd[i] = gx[nb + tok(t, gp.tw, gp.p, gp.w) + rel(e, gp.c0, gp.p, gp.h, gp.w)];
}

@group(0) @binding(0) var<uniform> sp: MsParams;
@group(0) @binding(1) var<storage, read> ss: array<f32>;
@group(0) @binding(2) var<storage, read_write> so: array<f32>;

// The element-major [d, L] matrix ss back into the map: so[..] = ss[e * L + t].
@compute @workgroup_size(64)
fn scatter(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_workgroup(wid, nwg) * 64u + lid;
    if (i >= sp.lt * sp.d) {
        return;
    }
    let e = i / sp.lt;
    let t = i - e * sp.lt;
    let nb = sp.item * sp.c * sp.h * sp.w;
    so[nb + tok(t, sp.tw, sp.p, sp.w) + rel(e, sp.c0, sp.p, sp.h, sp.w)] = ss[i];
}
