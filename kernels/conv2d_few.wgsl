// conv_few: direct 2-D convolution (NCHW, one group) for at most 8 output channels on software
// devices (lavapipe), chosen in src/ops/conv2d/few.rs. With so few output channels the texture GEMM
// (im2col + mm_tex) spends its time writing and reading the im2col texture, C*kh*kw rows by all
// output pixels, for only 8 multiply-adds per element; here nothing is materialized.
//
// One invocation: all output channels (two vec4s: 0..3, 4..7) x FP consecutive output pixels of
// one row. Per input channel c and kernel row ky it loads a window of NU texels of the input row
// (XT: texel (t, iy) of layer c = x[c, iy, 4t .. 4t+3], zero past W) that covers every tap of its
// FP pixels, and two of the row's 2 KW weight texels (TW: texel (hh, c * kh + ky) of layer kx =
// w[4hh .. 4hh+3, c, ky, kx], zero past O), which the subgroup of 8 shares by shuffles; then
// 2 FP vec4 multiply-adds per kx. Textures, not storage buffers: lavapipe turns storage loads in
// loops into per-lane scalar loops. Needs subgroups of exactly 8 (the host checks).
//
// KW, SX, DX (kernel width, column stride and dilation) and E = (-px) mod 4 (where the window
// starts within its first texel) are override constants, so every window index below folds to a
// constant once `tap_row` is inlined for each kx (the host checks
// E + SX (FP-1) + DX (KW-1) < 4 NT).

struct FewParams {
    c: u32, h: u32, w: u32, o: u32,
    ho: u32, wo: u32, kh: u32, wq: u32,
    sy: u32, dy: u32, py: i32, px: i32,
    nbx: u32, act: u32, alpha: f32, has_bias: u32,
    y_off: u32, _p0: u32, _p1: u32, _p2: u32,
}

override KW: u32 = 3u;
override SX: u32 = 1u;
override DX: u32 = 1u;
override E: u32 = 0u;
// Texels of the window that hold taps (at most NT).
override NU: u32 = (E + SX * (FP - 1u) + DX * (KW - 1u)) / 4u + 1u;

const FP: u32 = 8u;
const NT: u32 = 8u;

@group(0) @binding(0) var<uniform> F: FewParams;
@group(0) @binding(1) var XT: texture_storage_2d_array<rgba32float, read>;
@group(0) @binding(2) var TW: texture_storage_2d_array<rgba32float, read>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;

// Scalar j of the window (a constant once inlined).
fn win_at(win: ptr<function, array<vec4<f32>, NT>>, j: u32) -> f32 {
    return (*win)[j / 4u][j % 4u];
}

// Accumulators of one invocation: pixel i, output channels 0..3 (l<i>) and 4..7 (h<i>). Named
// fields, not an array: lavapipe spills indexed private arrays.
struct Acc {
    l0: vec4<f32>, h0: vec4<f32>,
    l1: vec4<f32>, h1: vec4<f32>,
    l2: vec4<f32>, h2: vec4<f32>,
    l3: vec4<f32>, h3: vec4<f32>,
    l4: vec4<f32>, h4: vec4<f32>,
    l5: vec4<f32>, h5: vec4<f32>,
    l6: vec4<f32>, h6: vec4<f32>,
    l7: vec4<f32>, h7: vec4<f32>,
}

// The taps of kernel column kx (a constant once inlined): its weights are texels 2 kx and
// 2 kx + 1 of the 16 the subgroup loaded (w0: lanes' first load, kx < 4; w1: second), broadcast.
fn tap_col(kx: u32, w0: vec4<f32>, w1: vec4<f32>, win: ptr<function, array<vec4<f32>, NT>>, a: ptr<function, Acc>) {
    let src = select(w1, w0, kx < 4u);
    let wl = subgroupShuffle(src, (2u * kx) % 8u);
    let wh = subgroupShuffle(src, (2u * kx + 1u) % 8u);
    let v0 = win_at(win, E + SX * 0u + DX * kx);
    (*a).l0 += v0 * wl;
    (*a).h0 += v0 * wh;
    let v1 = win_at(win, E + SX * 1u + DX * kx);
    (*a).l1 += v1 * wl;
    (*a).h1 += v1 * wh;
    let v2 = win_at(win, E + SX * 2u + DX * kx);
    (*a).l2 += v2 * wl;
    (*a).h2 += v2 * wh;
    let v3 = win_at(win, E + SX * 3u + DX * kx);
    (*a).l3 += v3 * wl;
    (*a).h3 += v3 * wh;
    let v4 = win_at(win, E + SX * 4u + DX * kx);
    (*a).l4 += v4 * wl;
    (*a).h4 += v4 * wh;
    let v5 = win_at(win, E + SX * 5u + DX * kx);
    (*a).l5 += v5 * wl;
    (*a).h5 += v5 * wh;
    let v6 = win_at(win, E + SX * 6u + DX * kx);
    (*a).l6 += v6 * wl;
    (*a).h6 += v6 * wh;
    let v7 = win_at(win, E + SX * 7u + DX * kx);
    (*a).l7 += v7 * wl;
    (*a).h7 += v7 * wh;
}

@compute @workgroup_size(64, 1, 1)
fn conv_few(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
    // Every lane runs the loops (the subgroup shares weight loads); only lanes inside store.
    let total = F.ho * F.nbx;
    let idx = min(gid.x, total - 1u);
    let yo = idx / F.nbx;
    let xo0 = (idx % F.nbx) * FP;
    // First texel of the window: (SX xo0 - px - E) is a multiple of 4 (FP is).
    let t0 = (i32(SX * xo0) - F.px - i32(E)) / 4;
    var a: Acc;
    var win: array<vec4<f32>, NT>;
    // Lane l loads weight texel (l % 2) of kernel columns l / 2 and 4 + l / 2.
    let kx0 = i32(min(lane / 2u, KW - 1u));
    let kx1 = i32(min(4u + lane / 2u, KW - 1u));
    let hh = i32(lane % 2u);
    for (var c = 0u; c < F.c; c++) {
        for (var ky = 0u; ky < F.kh; ky++) {
            let iy = i32(yo * F.sy + ky * F.dy) - F.py;
            let row_ok = iy >= 0 && iy < i32(F.h);
            let iyc = clamp(iy, 0, i32(F.h) - 1);
            for (var t = 0u; t < NU; t++) {
                let tt = t0 + i32(t);
                let v = textureLoad(XT, vec2<i32>(clamp(tt, 0, i32(F.wq) - 1), iyc), i32(c));
                win[t] = select(vec4<f32>(0.0), v, row_ok && tt >= 0 && tt < i32(F.wq));
            }
            let r = i32(c * F.kh + ky);
            let w0 = textureLoad(TW, vec2<i32>(hh, r), kx0);
            let w1 = textureLoad(TW, vec2<i32>(hh, r), kx1);
            tap_col(0u, w0, w1, &win, &a);
            if (KW > 1u) { tap_col(1u, w0, w1, &win, &a); }
            if (KW > 2u) { tap_col(2u, w0, w1, &win, &a); }
            if (KW > 3u) { tap_col(3u, w0, w1, &win, &a); }
            if (KW > 4u) { tap_col(4u, w0, w1, &win, &a); }
            if (KW > 5u) { tap_col(5u, w0, w1, &win, &a); }
            if (KW > 6u) { tap_col(6u, w0, w1, &win, &a); }
            if (KW > 7u) { tap_col(7u, w0, w1, &win, &a); }
        }
    }
    if (gid.x >= total) {
        return;
    }
    let plane = F.ho * F.wo;
    put(yo, xo0 + 0u, plane, a.l0, a.h0);
    put(yo, xo0 + 1u, plane, a.l1, a.h1);
    put(yo, xo0 + 2u, plane, a.l2, a.h2);
    put(yo, xo0 + 3u, plane, a.l3, a.h3);
    put(yo, xo0 + 4u, plane, a.l4, a.h4);
    put(yo, xo0 + 5u, plane, a.l5, a.h5);
    put(yo, xo0 + 6u, plane, a.l6, a.h6);
    put(yo, xo0 + 7u, plane, a.l7, a.h7);
}

// Bias, activation and scalar stores of one pixel's channels (those inside Y).
fn put(yo: u32, xo: u32, plane: u32, l: vec4<f32>, h: vec4<f32>) {
    if (xo >= F.wo) {
        return;
    }
    let acc = array<vec4<f32>, 2>(l, h);
    for (var o = 0u; o < F.o; o++) {
        var v = acc[o / 4u][o % 4u];
        if (F.has_bias != 0u) {
            v += BIAS[o];
        }
        Y[F.y_off + o * plane + yo * F.wo + xo] = apply_act(v, F.act, F.alpha);
    }
}
