// Transposed 2-D convolution (NCHW), gather form: each output pixel sums the inputs that contribute
// to it, so no atomics. Output pixel oy receives input iy through tap ky when
// oy + pad - ky * dil = iy * stride. Output columns are grouped by phase (ox mod stride): all pixels
// of one phase use the same taps, so an invocation takes 8 same-phase pixels of one row
// (ox = rx + (bx * 8 + q) * stride, reading input columns ix0 + q) x 8 output channels.
//
// Weights are packed by the host as [C_in, kh, kw, O/groups]:
// wp[((ci * kh + ky) * kw + kx) * og + j] = w_pytorch[ci, j, ky, kx]; output channel g * og + j
// reads input channels g * cg .. (g + 1) * cg.

struct CtParams {
    n: u32, c: u32, h: u32, w: u32,
    o: u32, ho: u32, wo: u32, groups: u32,
    cg: u32, og: u32, kh: u32, kw: u32,
    sy: u32, sx: u32, py: i32, px: i32,
    dy: u32, dx: u32, act: u32, alpha: f32,
    has_bias: u32, nbx: u32, obg: u32, _p0: u32,
}

@group(0) @binding(0) var<uniform> P: CtParams;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> Wt: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;

fn store4(v: vec4<f32>, rb: u32, o: u32, nvalid: u32, ox: u32) {
    if (ox >= P.wo) {
        return;
    }
    let plane = P.ho * P.wo;
    Y[rb + o * plane + ox] = apply_act(v.x, P.act, P.alpha);
    if (nvalid > 1u) { Y[rb + (o + 1u) * plane + ox] = apply_act(v.y, P.act, P.alpha); }
    if (nvalid > 2u) { Y[rb + (o + 2u) * plane + ox] = apply_act(v.z, P.act, P.alpha); }
    if (nvalid > 3u) { Y[rb + (o + 3u) * plane + ox] = apply_act(v.w, P.act, P.alpha); }
}

fn col(ix: i32) -> vec2<i32> {
    let ok = ix >= 0 && ix < i32(P.w);
    return vec2<i32>(select(0, ix, ok), select(0, 1, ok));
}

// Floor-mod for a possibly negative numerator.
fn pmod(a: i32, m: i32) -> i32 {
    return ((a % m) + m) % m;
}

@compute @workgroup_size(64)
fn conv_transpose(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let per_row = P.sx * P.nbx;
    if (gid.x >= P.ho * per_row) {
        return;
    }
    let oy = gid.x / per_row;
    let r = gid.x % per_row;
    let rx = r / P.nbx;
    let bx = r % P.nbx;
    let ox0 = rx + bx * 8u * P.sx;
    if (ox0 >= P.wo) {
        return;
    }
    let g = wid.y / P.obg;
    let ob = (wid.y % P.obg) * 8u;
    let n = wid.z;
    let last = P.og - 1u;
    let j0 = min(ob, last);
    let j1 = min(ob + 1u, last);
    let j2 = min(ob + 2u, last);
    let j3 = min(ob + 3u, last);
    let j4 = min(ob + 4u, last);
    let j5 = min(ob + 5u, last);
    let j6 = min(ob + 6u, last);
    let j7 = min(ob + 7u, last);
    let sy = i32(P.sy);
    let sx = i32(P.sx);
    let hw = P.h * P.w;
    let xplane0 = (n * P.c + g * P.cg) * hw;
    let wstep = P.kh * P.kw * P.og;
    // a_q: channels ob..ob+3 of pixel q; b_q: channels ob+4..ob+7.
    var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var a6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0);
    var b4 = vec4<f32>(0.0); var b5 = vec4<f32>(0.0); var b6 = vec4<f32>(0.0); var b7 = vec4<f32>(0.0);
    for (var ky = 0u; ky < P.kh; ky++) {
        let ty = i32(oy) + P.py - i32(ky * P.dy);
        if (pmod(ty, sy) != 0) {
            continue;
        }
        let iy = ty / sy;
        if (iy < 0 || iy >= i32(P.h)) {
            continue;
        }
        let rowb = xplane0 + u32(iy) * P.w;
        for (var kx = 0u; kx < P.kw; kx++) {
            let tx = i32(ox0) + P.px - i32(kx * P.dx);
            if (pmod(tx, sx) != 0) {
                continue;
            }
            let ix = tx / sx;
            let inside = ix >= 0 && ix + 7 < i32(P.w);
            let c0 = col(ix); let c1 = col(ix + 1); let c2 = col(ix + 2); let c3 = col(ix + 3);
            let c4 = col(ix + 4); let c5 = col(ix + 5); let c6 = col(ix + 6); let c7 = col(ix + 7);
            let m = vec4<f32>(f32(c0.y), f32(c1.y), f32(c2.y), f32(c3.y));
            let mh = vec4<f32>(f32(c4.y), f32(c5.y), f32(c6.y), f32(c7.y));
            var wi = ((g * P.cg * P.kh + ky) * P.kw + kx) * P.og;
            var xi = rowb;
            for (var c = 0u; c < P.cg; c++) {
                let wa = vec4<f32>(Wt[wi + j0], Wt[wi + j1], Wt[wi + j2], Wt[wi + j3]);
                let wb = vec4<f32>(Wt[wi + j4], Wt[wi + j5], Wt[wi + j6], Wt[wi + j7]);
                let b = i32(xi);
                var x0: f32; var x1: f32; var x2: f32; var x3: f32;
                var x4: f32; var x5: f32; var x6: f32; var x7: f32;
                if (inside) {
                    let q = b + ix;
                    x0 = X[q]; x1 = X[q + 1]; x2 = X[q + 2]; x3 = X[q + 3];
                    x4 = X[q + 4]; x5 = X[q + 5]; x6 = X[q + 6]; x7 = X[q + 7];
                } else {
                    x0 = X[b + c0.x] * m.x; x1 = X[b + c1.x] * m.y; x2 = X[b + c2.x] * m.z; x3 = X[b + c3.x] * m.w;
                    x4 = X[b + c4.x] * mh.x; x5 = X[b + c5.x] * mh.y; x6 = X[b + c6.x] * mh.z; x7 = X[b + c7.x] * mh.w;
                }
                a0 += wa * x0; b0 += wb * x0;
                a1 += wa * x1; b1 += wb * x1;
                a2 += wa * x2; b2 += wb * x2;
                a3 += wa * x3; b3 += wb * x3;
                a4 += wa * x4; b4 += wb * x4;
                a5 += wa * x5; b5 += wb * x5;
                a6 += wa * x6; b6 += wb * x6;
                a7 += wa * x7; b7 += wb * x7;
                wi += wstep;
                xi += hw;
            }
        }
    }
    let o0 = g * P.og + ob;
    var ba = vec4<f32>(0.0);
    var bb = vec4<f32>(0.0);
    if (P.has_bias != 0u) {
        let gb = g * P.og;
        ba = vec4<f32>(B[gb + j0], B[gb + j1], B[gb + j2], B[gb + j3]);
        bb = vec4<f32>(B[gb + j4], B[gb + j5], B[gb + j6], B[gb + j7]);
    }
    let nva = min(4u, P.og - ob);
    let rb = n * P.o * P.ho * P.wo + oy * P.wo;
    let s = P.sx;
    store4(a0 + ba, rb, o0, nva, ox0);
    store4(a1 + ba, rb, o0, nva, ox0 + s);
    store4(a2 + ba, rb, o0, nva, ox0 + 2u * s);
    store4(a3 + ba, rb, o0, nva, ox0 + 3u * s);
    store4(a4 + ba, rb, o0, nva, ox0 + 4u * s);
    store4(a5 + ba, rb, o0, nva, ox0 + 5u * s);
    store4(a6 + ba, rb, o0, nva, ox0 + 6u * s);
    store4(a7 + ba, rb, o0, nva, ox0 + 7u * s);
    if (ob + 4u < P.og) {
        let nvb = min(4u, P.og - ob - 4u);
        let o4 = o0 + 4u;
        store4(b0 + bb, rb, o4, nvb, ox0);
        store4(b1 + bb, rb, o4, nvb, ox0 + s);
        store4(b2 + bb, rb, o4, nvb, ox0 + 2u * s);
        store4(b3 + bb, rb, o4, nvb, ox0 + 3u * s);
        store4(b4 + bb, rb, o4, nvb, ox0 + 4u * s);
        store4(b5 + bb, rb, o4, nvb, ox0 + 5u * s);
        store4(b6 + bb, rb, o4, nvb, ox0 + 6u * s);
        store4(b7 + bb, rb, o4, nvb, ox0 + 7u * s);
    }
}

// Column-to-image gather for the texture-GEMM path on software devices: the GEMM wrote
// COLS[((ky * kw + kx) * og + j) * (h * w) + iy * w + ix] = sum_c W[c, ky, kx, j] X[c, iy, ix] for
// one batch item and group; each invocation sums the taps that reach one output pixel of channel j.
// Strides and dilations are pipeline constants so the modulo and division by them compile to
// shifts and masks (lavapipe has no vector integer division).
struct C2iParams {
    h: u32, w: u32, ho: u32, wo: u32,
    og: u32, kh: u32, kw: u32, has_bias: u32,
    py: i32, px: i32, y_off: u32, bias_off: u32,
    act: u32, alpha: f32, _p0: u32, _p1: u32,
}

override SY: u32 = 1u;
override SX: u32 = 1u;
override DY: u32 = 1u;
override DX: u32 = 1u;

@group(0) @binding(5) var<uniform> Q: C2iParams;
@group(0) @binding(6) var<storage, read> COLS: array<f32>;
@group(0) @binding(7) var<storage, read> CB: array<f32>;
@group(0) @binding(8) var<storage, read_write> CY: array<f32>;

@compute @workgroup_size(64)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ox = gid.x;
    let oy = gid.y;
    let j = gid.z;
    if (ox >= Q.wo) {
        return;
    }
    let hw = Q.h * Q.w;
    var acc = 0.0;
    for (var ky = 0u; ky < Q.kh; ky++) {
        let ty = i32(oy) + Q.py - i32(ky * DY);
        if (ty < 0 || u32(ty) % SY != 0u) {
            continue;
        }
        let iy = u32(ty) / SY;
        if (iy >= Q.h) {
            continue;
        }
        for (var kx = 0u; kx < Q.kw; kx++) {
            let tx = i32(ox) + Q.px - i32(kx * DX);
            if (tx < 0 || u32(tx) % SX != 0u) {
                continue;
            }
            let ix = u32(tx) / SX;
            if (ix >= Q.w) {
                continue;
            }
            acc += COLS[((ky * Q.kw + kx) * Q.og + j) * hw + iy * Q.w + ix];
        }
    }
    if (Q.has_bias != 0u) {
        acc += CB[Q.bias_off + j];
    }
    CY[Q.y_off + (j * Q.ho + oy) * Q.wo + ox] = apply_act(acc, Q.act, Q.alpha);
}
