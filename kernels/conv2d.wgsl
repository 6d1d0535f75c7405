// 2-D convolution (NCHW), fused bias + activation. Kernel ladder (chosen in src/ops/conv2d.rs):
//   conv_dw      depthwise (groups == C == O): one channel x 8 consecutive output pixels of a row per
//                invocation; stride-1 dilation-1 rows slide a register window (one load per tap).
//   conv_1x1     1x1, stride 1, pad 0, groups 1, H*W % 4 == 0: a GEMM over (O x C) . (C x HW),
//                8 output channels x 8 pixels per invocation, vec4 loads and stores of pixels.
//   conv_general everything else (grouped, strided, dilated, patchify): implicit GEMM, register
//                blocked over 8 output channels x 8 output pixels of one row per invocation.
// On lavapipe each loaded scalar costs several FMAs (loads run per lane), so blocks are as large as
// the registers allow (64 accumulators).
// No workgroup memory or barriers (they are slow on lavapipe; see specs/wgpu-notes.md).
//
// Weights are packed by the host as [C/groups, kh, kw, O]: wp[((c * kh + ky) * kw + kx) * O + o]
// = w_pytorch[o, c, ky, kx], so the output channels of a block are adjacent.
// Large outputs arrive as windows: a dispatch covers batch items [0, z) of the bound X/Y and the
// output channels [o_off, o_off + o_cnt) (whole groups); Y is indexed relative to the window.

struct ConvParams {
    n: u32, c: u32, h: u32, w: u32,
    o: u32, ho: u32, wo: u32, groups: u32,
    cg: u32, og: u32, kh: u32, kw: u32,
    sy: u32, sx: u32, py: i32, px: i32,
    dy: u32, dx: u32, act: u32, alpha: f32,
    has_bias: u32, nbx: u32, obg: u32, o_off: u32,
    o_cnt: u32, slide: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> P: ConvParams;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> Wt: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
// Views used by conv_1x1 only (same bindings, vec4 elements).
@group(0) @binding(1) var<storage, read> XV: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> YV: array<vec4<f32>>;

fn act4(v: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(apply_act(v.x, P.act, P.alpha), apply_act(v.y, P.act, P.alpha),
                     apply_act(v.z, P.act, P.alpha), apply_act(v.w, P.act, P.alpha));
}

// Write 4 channels (starting at window channel `ol`) of pixel `ox` in output row base `rb`.
fn store4(v: vec4<f32>, rb: u32, ol: u32, nvalid: u32, ox: u32) {
    if (ox >= P.wo) {
        return;
    }
    let plane = P.ho * P.wo;
    let r = act4(v);
    Y[rb + ol * plane + ox] = r.x;
    if (nvalid > 1u) { Y[rb + (ol + 1u) * plane + ox] = r.y; }
    if (nvalid > 2u) { Y[rb + (ol + 2u) * plane + ox] = r.z; }
    if (nvalid > 3u) { Y[rb + (ol + 3u) * plane + ox] = r.w; }
}

// Column offset and 0/1 mask of one input column (padding reads zero).
fn col(ix: i32) -> vec2<i32> {
    let ok = ix >= 0 && ix < i32(P.w);
    return vec2<i32>(select(0, ix, ok), select(0, 1, ok));
}

@compute @workgroup_size(64)
fn conv_general(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    if (gid.x >= P.ho * P.nbx) {
        return;
    }
    let oy = gid.x / P.nbx;
    let ox0 = (gid.x % P.nbx) * 8u;
    let g = P.o_off / P.og + wid.y / P.obg;
    let ob = (wid.y % P.obg) * 8u;
    let n = wid.z;
    let last = P.og - 1u;
    let o0 = g * P.og;
    let oc0 = o0 + min(ob, last);
    let oc1 = o0 + min(ob + 1u, last);
    let oc2 = o0 + min(ob + 2u, last);
    let oc3 = o0 + min(ob + 3u, last);
    let oc4 = o0 + min(ob + 4u, last);
    let oc5 = o0 + min(ob + 5u, last);
    let oc6 = o0 + min(ob + 6u, last);
    let oc7 = o0 + min(ob + 7u, last);
    let sx = i32(P.sx);
    let ixb = i32(ox0 * P.sx) - P.px;
    let iyb = i32(oy * P.sy) - P.py;
    let hw = P.h * P.w;
    let xplane0 = (n * P.c + g * P.cg) * hw;
    let wstep = P.kh * P.kw * P.o;
    // a_p: channels ob..ob+3 of pixel p; b_p: channels ob+4..ob+7.
    var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var a6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0);
    var b4 = vec4<f32>(0.0); var b5 = vec4<f32>(0.0); var b6 = vec4<f32>(0.0); var b7 = vec4<f32>(0.0);
    for (var ky = 0u; ky < P.kh; ky++) {
        let iy = iyb + i32(ky * P.dy);
        if (iy < 0 || iy >= i32(P.h)) {
            continue;
        }
        let rowb = xplane0 + u32(iy) * P.w;
        for (var kx = 0u; kx < P.kw; kx++) {
            let ix = ixb + i32(kx * P.dx);
            // Columns read by the 8 pixels: inside the row (no padding) or clamped and masked.
            let inside = ix >= 0 && ix + 7 * sx < i32(P.w);
            let c0 = col(ix); let c1 = col(ix + sx); let c2 = col(ix + 2 * sx); let c3 = col(ix + 3 * sx);
            let c4 = col(ix + 4 * sx); let c5 = col(ix + 5 * sx); let c6 = col(ix + 6 * sx); let c7 = col(ix + 7 * sx);
            let m = vec4<f32>(f32(c0.y), f32(c1.y), f32(c2.y), f32(c3.y));
            let mh = vec4<f32>(f32(c4.y), f32(c5.y), f32(c6.y), f32(c7.y));
            var wi = (ky * P.kw + kx) * P.o;
            var xi = rowb;
            for (var c = 0u; c < P.cg; c++) {
                let wa = vec4<f32>(Wt[wi + oc0], Wt[wi + oc1], Wt[wi + oc2], Wt[wi + oc3]);
                let wb = vec4<f32>(Wt[wi + oc4], Wt[wi + oc5], Wt[wi + oc6], Wt[wi + oc7]);
                let b = i32(xi);
                var x0: f32; var x1: f32; var x2: f32; var x3: f32;
                var x4: f32; var x5: f32; var x6: f32; var x7: f32;
                if (inside) {
                    let q = b + ix;
                    x0 = X[q]; x1 = X[q + sx]; x2 = X[q + 2 * sx]; x3 = X[q + 3 * sx];
                    x4 = X[q + 4 * sx]; x5 = X[q + 5 * sx]; x6 = X[q + 6 * sx]; x7 = X[q + 7 * sx];
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
    var ba = vec4<f32>(0.0);
    var bb = vec4<f32>(0.0);
    if (P.has_bias != 0u) {
        ba = vec4<f32>(B[oc0], B[oc1], B[oc2], B[oc3]);
        bb = vec4<f32>(B[oc4], B[oc5], B[oc6], B[oc7]);
    }
    let nva = min(4u, P.og - ob);
    let ol = o0 + ob - P.o_off;
    let rb = n * P.o_cnt * P.ho * P.wo + oy * P.wo;
    store4(a0 + ba, rb, ol, nva, ox0);
    store4(a1 + ba, rb, ol, nva, ox0 + 1u);
    store4(a2 + ba, rb, ol, nva, ox0 + 2u);
    store4(a3 + ba, rb, ol, nva, ox0 + 3u);
    store4(a4 + ba, rb, ol, nva, ox0 + 4u);
    store4(a5 + ba, rb, ol, nva, ox0 + 5u);
    store4(a6 + ba, rb, ol, nva, ox0 + 6u);
    store4(a7 + ba, rb, ol, nva, ox0 + 7u);
    if (ob + 4u < P.og) {
        let nvb = min(4u, P.og - ob - 4u);
        let olb = ol + 4u;
        store4(b0 + bb, rb, olb, nvb, ox0);
        store4(b1 + bb, rb, olb, nvb, ox0 + 1u);
        store4(b2 + bb, rb, olb, nvb, ox0 + 2u);
        store4(b3 + bb, rb, olb, nvb, ox0 + 3u);
        store4(b4 + bb, rb, olb, nvb, ox0 + 4u);
        store4(b5 + bb, rb, olb, nvb, ox0 + 5u);
        store4(b6 + bb, rb, olb, nvb, ox0 + 6u);
        store4(b7 + bb, rb, olb, nvb, ox0 + 7u);
    }
}

fn xdw(b: i32, ix: i32) -> f32 {
    let ok = ix >= 0 && ix < i32(P.w);
    return X[b + select(0, ix, ok)] * select(0.0, 1.0, ok);
}

fn store1(v: f32, rb: u32, ox: u32) {
    if (ox < P.wo) {
        Y[rb + ox] = apply_act(v, P.act, P.alpha);
    }
}

@compute @workgroup_size(64)
fn conv_dw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    if (gid.x >= P.ho * P.nbx) {
        return;
    }
    let oy = gid.x / P.nbx;
    let ox0 = (gid.x % P.nbx) * 8u;
    let ch = wid.y;
    let n = wid.z;
    let sx = i32(P.sx);
    let ixb = i32(ox0 * P.sx) - P.px;
    let iyb = i32(oy * P.sy) - P.py;
    let xplane = (n * P.c + ch) * P.h * P.w;
    var a0 = 0.0; var a1 = 0.0; var a2 = 0.0; var a3 = 0.0;
    var a4 = 0.0; var a5 = 0.0; var a6 = 0.0; var a7 = 0.0;
    // Whole window of the block inside the row: [ixb, ixb + 7 sx + (kw - 1) dx].
    let inside = ixb >= 0 && ixb + 7 * sx + i32((P.kw - 1u) * P.dx) < i32(P.w);
    for (var ky = 0u; ky < P.kh; ky++) {
        let iy = iyb + i32(ky * P.dy);
        if (iy < 0 || iy >= i32(P.h)) {
            continue;
        }
        let rowb = xplane + u32(iy) * P.w;
        var wi = ky * P.kw * P.o + ch;
        if (inside && P.slide != 0u) {
            // stride 1, dilation 1: v0..v7 hold X[ix + kx .. ix + kx + 7].
            let b = rowb + u32(ixb);
            var v0 = X[b]; var v1 = X[b + 1u]; var v2 = X[b + 2u]; var v3 = X[b + 3u];
            var v4 = X[b + 4u]; var v5 = X[b + 5u]; var v6 = X[b + 6u]; var v7 = X[b + 7u];
            for (var kx = 0u; kx < P.kw; kx++) {
                let wv = Wt[wi];
                wi += P.o;
                a0 += wv * v0; a1 += wv * v1; a2 += wv * v2; a3 += wv * v3;
                a4 += wv * v4; a5 += wv * v5; a6 += wv * v6; a7 += wv * v7;
                v0 = v1; v1 = v2; v2 = v3; v3 = v4; v4 = v5; v5 = v6; v6 = v7;
                v7 = X[b + min(kx + 8u, 7u + P.kw - 1u)];
            }
        } else {
            let rb = i32(rowb);
            for (var kx = 0u; kx < P.kw; kx++) {
                let wv = Wt[wi];
                wi += P.o;
                let ix = ixb + i32(kx * P.dx);
                a0 += wv * xdw(rb, ix);
                a1 += wv * xdw(rb, ix + sx);
                a2 += wv * xdw(rb, ix + 2 * sx);
                a3 += wv * xdw(rb, ix + 3 * sx);
                a4 += wv * xdw(rb, ix + 4 * sx);
                a5 += wv * xdw(rb, ix + 5 * sx);
                a6 += wv * xdw(rb, ix + 6 * sx);
                a7 += wv * xdw(rb, ix + 7 * sx);
            }
        }
    }
    var bias = 0.0;
    if (P.has_bias != 0u) {
        bias = B[ch];
    }
    let rb = (n * P.o + ch) * P.ho * P.wo + oy * P.wo;
    store1(a0 + bias, rb, ox0);
    store1(a1 + bias, rb, ox0 + 1u);
    store1(a2 + bias, rb, ox0 + 2u);
    store1(a3 + bias, rb, ox0 + 3u);
    store1(a4 + bias, rb, ox0 + 4u);
    store1(a5 + bias, rb, ox0 + 5u);
    store1(a6 + bias, rb, ox0 + 6u);
    store1(a7 + bias, rb, ox0 + 7u);
}

// 1x1 GEMM path: invocation (x: pair of pixel vec4s, y: block of 8 output channels, z: batch item).
// On lavapipe every loaded scalar costs about as much as several FMAs (loads are per lane), so the
// block is as large as registers allow: 8 loads of x and 8 of w feed 64 FMAs.
fn out8(acc: vec4<f32>, b: f32, yi: u32, second: bool, hi: vec4<f32>) {
    YV[yi] = act4(acc + b);
    if (second) {
        YV[yi + 1u] = act4(hi + b);
    }
}

@compute @workgroup_size(64)
fn conv_1x1(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let np4 = (P.h * P.w) / 4u;
    let p4 = gid.x * 2u;
    if (p4 >= np4) {
        return;
    }
    let second = p4 + 1u < np4;
    let xoff = select(0u, 1u, second);
    let ob = P.o_off + wid.y * 8u;
    let last = P.o_off + P.o_cnt - 1u;
    let oc0 = min(ob, last);
    let oc1 = min(ob + 1u, last);
    let oc2 = min(ob + 2u, last);
    let oc3 = min(ob + 3u, last);
    let oc4 = min(ob + 4u, last);
    let oc5 = min(ob + 5u, last);
    let oc6 = min(ob + 6u, last);
    let oc7 = min(ob + 7u, last);
    let n = wid.z;
    var xi = n * P.c * np4 + p4;
    var wi = 0u;
    var l0 = vec4<f32>(0.0); var l1 = vec4<f32>(0.0); var l2 = vec4<f32>(0.0); var l3 = vec4<f32>(0.0);
    var l4 = vec4<f32>(0.0); var l5 = vec4<f32>(0.0); var l6 = vec4<f32>(0.0); var l7 = vec4<f32>(0.0);
    var h0 = vec4<f32>(0.0); var h1 = vec4<f32>(0.0); var h2 = vec4<f32>(0.0); var h3 = vec4<f32>(0.0);
    var h4 = vec4<f32>(0.0); var h5 = vec4<f32>(0.0); var h6 = vec4<f32>(0.0); var h7 = vec4<f32>(0.0);
    for (var c = 0u; c < P.c; c++) {
        let xa = XV[xi];
        let xb = XV[xi + xoff];
        let wa = vec4<f32>(Wt[wi + oc0], Wt[wi + oc1], Wt[wi + oc2], Wt[wi + oc3]);
        let wb = vec4<f32>(Wt[wi + oc4], Wt[wi + oc5], Wt[wi + oc6], Wt[wi + oc7]);
        l0 += wa.x * xa; h0 += wa.x * xb;
        l1 += wa.y * xa; h1 += wa.y * xb;
        l2 += wa.z * xa; h2 += wa.z * xb;
        l3 += wa.w * xa; h3 += wa.w * xb;
        l4 += wb.x * xa; h4 += wb.x * xb;
        l5 += wb.y * xa; h5 += wb.y * xb;
        l6 += wb.z * xa; h6 += wb.z * xb;
        l7 += wb.w * xa; h7 += wb.w * xb;
        xi += np4;
        wi += P.o;
    }
    var ba = vec4<f32>(0.0);
    var bb = vec4<f32>(0.0);
    if (P.has_bias != 0u) {
        ba = vec4<f32>(B[oc0], B[oc1], B[oc2], B[oc3]);
        bb = vec4<f32>(B[oc4], B[oc5], B[oc6], B[oc7]);
    }
    let nvalid = min(8u, P.o_off + P.o_cnt - ob);
    let yi = (n * P.o_cnt + (ob - P.o_off)) * np4 + p4;
    out8(l0, ba.x, yi, second, h0);
    if (nvalid > 1u) { out8(l1, ba.y, yi + np4, second, h1); }
    if (nvalid > 2u) { out8(l2, ba.z, yi + 2u * np4, second, h2); }
    if (nvalid > 3u) { out8(l3, ba.w, yi + 3u * np4, second, h3); }
    if (nvalid > 4u) { out8(l4, bb.x, yi + 4u * np4, second, h4); }
    if (nvalid > 5u) { out8(l5, bb.y, yi + 5u * np4, second, h5); }
    if (nvalid > 6u) { out8(l6, bb.z, yi + 6u * np4, second, h6); }
    if (nvalid > 7u) { out8(l7, bb.w, yi + 7u * np4, second, h7); }
}
