// Winograd F(2x2, 3x3) for 3x3 stride-1 convs on software devices (lavapipe), chosen in
// src/ops/conv2d/winograd_tex.rs; the math is the CPU backend's (src/ops/conv2d/winograd.rs).
// Every 2x2 block of output pixels (a tile) is Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A of its 4x4 input patch
// d, so over all channels the conv becomes 16 products M_ξ [O x T] = U_ξ [O x C] V_ξ [C x T]
// (ξ = 4a + b: a the row and b the column of the 4x4 transform) on the texture GEMM: 16 x 2 O C T
// FLOPs against im2col's 36 x 2 O C T.
//
// - wino_weights: U_ξ into the GEMM's A texture (texel (q, o) of layer ξ = U_ξ[o, 4q .. 4q+3],
//   zero past C) from the packed weight [C, 3, 3, O]; one invocation per texel column q and o.
// - wino_in: V_ξ into the GEMM's B texture (texel (j, c) of layer ξ = V_ξ[c, 4j .. 4j+3], rows
//   C .. 4 KQ zero) for the tiles of a chunk of tile rows, from XT (texel (t, iy) of layer c =
//   x[c, iy, 4t .. 4t+3], zero past W). Tiles are numbered row by row with TW4 (the tile row's
//   width rounded up to 4) per row, so a texel's 4 tiles share a row: their patches are 4 rows of
//   10 input columns, NU texels a row. E = (-px) mod 4 is where the window starts in its texel.
// - wino_out: Y from the products M (C of the GEMM: M_ξ[o, t] at (ξ O + o) T + t, T a multiple
//   of 4), with bias and activation; one invocation per 4 tiles and output channel.

struct WinoParams {
    c: u32, o: u32, h: u32, w: u32,
    ho: u32, wo: u32, py: i32, px: i32,
    wq: u32, kq: u32, tw4: u32, ty0: u32,
    nty: u32, act: u32, alpha: f32, has_bias: u32,
    y_off: u32, _p0: u32, _p1: u32, _p2: u32,
}

override E: u32 = 0u;
// Texels of a patch row's window (E + 9 < 16).
override NU: u32 = (E + 9u) / 4u + 1u;

@group(0) @binding(0) var<uniform> WG: WinoParams;
@group(0) @binding(1) var XT: texture_storage_2d_array<rgba32float, read>;
@group(0) @binding(2) var VT: texture_storage_2d_array<rgba32float, write>;
@group(0) @binding(3) var<storage, read> WPK: array<f32>;
@group(0) @binding(4) var<storage, read> MV: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> BIAS: array<f32>;
@group(0) @binding(6) var<storage, read_write> Y: array<f32>;

// G g Gᵀ of one channel's 3x3 kernel g (row-major), element 4a + b.
fn wino_u(g: array<f32, 9>) -> array<f32, 16> {
    var gg: array<f32, 12>; // G g: 4 x 3
    for (var k = 0u; k < 3u; k++) {
        let g0 = g[k];
        let g1 = g[3u + k];
        let g2 = g[6u + k];
        gg[k] = g0;
        gg[3u + k] = 0.5 * (g0 + g1 + g2);
        gg[6u + k] = 0.5 * (g0 - g1 + g2);
        gg[9u + k] = g2;
    }
    var u: array<f32, 16>;
    for (var a = 0u; a < 4u; a++) {
        let r0 = gg[3u * a];
        let r1 = gg[3u * a + 1u];
        let r2 = gg[3u * a + 2u];
        u[4u * a] = r0;
        u[4u * a + 1u] = 0.5 * (r0 + r1 + r2);
        u[4u * a + 2u] = 0.5 * (r0 - r1 + r2);
        u[4u * a + 3u] = r2;
    }
    return u;
}

@compute @workgroup_size(8, 8, 1)
fn wino_weights(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gid.x;
    let o = gid.y;
    if (q >= WG.kq || o >= WG.o) {
        return;
    }
    var u: array<vec4<f32>, 16>;
    for (var t = 0u; t < 4u; t++) {
        let c = 4u * q + t;
        var g: array<f32, 9>;
        if (c < WG.c) {
            for (var i = 0u; i < 9u; i++) {
                g[i] = WPK[(c * 9u + i) * WG.o + o];
            }
        }
        let uc = wino_u(g);
        for (var xi = 0u; xi < 16u; xi++) {
            u[xi][t] = uc[xi];
        }
    }
    for (var xi = 0u; xi < 16u; xi++) {
        textureStore(VT, vec2<u32>(q, o), xi, u[xi]);
    }
}

// Scalar j of a patch row's window (a constant once inlined).
fn wino_at(win: ptr<function, array<vec4<f32>, 4>>, j: u32) -> f32 {
    return (*win)[j / 4u][j % 4u];
}

// Bᵀ over one patch row for the 4 tiles (vec4 lanes): tile u's columns are window scalars
// E + 2u .. E + 2u + 3. Element k is column k of d B.
fn wino_row(win: ptr<function, array<vec4<f32>, 4>>) -> array<vec4<f32>, 4> {
    let d0 = vec4<f32>(wino_at(win, E), wino_at(win, E + 2u), wino_at(win, E + 4u), wino_at(win, E + 6u));
    let d1 = vec4<f32>(wino_at(win, E + 1u), wino_at(win, E + 3u), wino_at(win, E + 5u), wino_at(win, E + 7u));
    let d2 = vec4<f32>(wino_at(win, E + 2u), wino_at(win, E + 4u), wino_at(win, E + 6u), wino_at(win, E + 8u));
    let d3 = vec4<f32>(wino_at(win, E + 3u), wino_at(win, E + 5u), wino_at(win, E + 7u), wino_at(win, E + 9u));
    return array<vec4<f32>, 4>(d0 - d2, d1 + d2, d2 - d1, d1 - d3);
}

// Bᵀ over input row iy of channel c for the 4 tiles whose window starts at texel t0 (zero outside x).
fn wino_patch_row(c: u32, iy: i32, t0: i32) -> array<vec4<f32>, 4> {
    var win: array<vec4<f32>, 4>;
    let row_ok = iy >= 0 && iy < i32(WG.h);
    let iyc = clamp(iy, 0, i32(WG.h) - 1);
    for (var t = 0u; t < NU; t++) {
        let tt = t0 + i32(t);
        let v = textureLoad(XT, vec2<i32>(clamp(tt, 0, i32(WG.wq) - 1), iyc), i32(c));
        win[t] = select(vec4<f32>(0.0), v, row_ok && tt >= 0 && tt < i32(WG.wq));
    }
    return wino_row(&win);
}

@compute @workgroup_size(64, 1, 1)
fn wino_in(@builtin(global_invocation_id) gid: vec3<u32>) {
    let tq = WG.tw4 / 4u;
    let j = gid.x;
    let c = gid.y;
    if (j >= WG.nty * tq || c >= 4u * WG.kq) {
        return;
    }
    if (c >= WG.c) {
        for (var xi = 0u; xi < 16u; xi++) {
            textureStore(VT, vec2<u32>(j, c), xi, vec4<f32>(0.0));
        }
        return;
    }
    let ty = WG.ty0 + j / tq;
    let tx0 = (j % tq) * 4u;
    let iy0 = i32(2u * ty) - WG.py;
    // First texel of the window: 2 tx0 - px - E is a multiple of 4 (2 tx0 is a multiple of 8).
    let t0 = (i32(2u * tx0) - WG.px - i32(E)) / 4;
    let r0 = wino_patch_row(c, iy0, t0);
    let r1 = wino_patch_row(c, iy0 + 1, t0);
    let r2 = wino_patch_row(c, iy0 + 2, t0);
    let r3 = wino_patch_row(c, iy0 + 3, t0);
    for (var k = 0u; k < 4u; k++) {
        let at = vec2<u32>(j, c);
        textureStore(VT, at, k, r0[k] - r2[k]);
        textureStore(VT, at, 4u + k, r1[k] + r2[k]);
        textureStore(VT, at, 8u + k, r2[k] - r1[k]);
        textureStore(VT, at, 12u + k, r1[k] - r3[k]);
    }
}

// Bias, activation and the stores of one output row's pixels 2 tx0 + 2u + dx (the vec4's
// lanes u, for dx 0 and 1) that lie inside Y.
fn wino_put(row: u32, oy: u32, tx0: u32, v0: vec4<f32>, v1: vec4<f32>, bias: f32) {
    if (oy >= WG.ho) {
        return;
    }
    for (var u = 0u; u < 4u; u++) {
        let ox = 2u * (tx0 + u);
        if (ox < WG.wo) {
            Y[row + oy * WG.wo + ox] = apply_act(v0[u] + bias, WG.act, WG.alpha);
        }
        if (ox + 1u < WG.wo) {
            Y[row + oy * WG.wo + ox + 1u] = apply_act(v1[u] + bias, WG.act, WG.alpha);
        }
    }
}

@compute @workgroup_size(64, 1, 1)
fn wino_out(@builtin(global_invocation_id) gid: vec3<u32>) {
    let tq = WG.tw4 / 4u;
    let tc4 = WG.nty * tq;
    let j = gid.x;
    let o = gid.y;
    if (j >= tc4 || o >= WG.o) {
        return;
    }
    let ty = WG.ty0 + j / tq;
    let tx0 = (j % tq) * 4u;
    // Aᵀ over the transform's rows: s_k = m_0k + m_1k + m_2k, d_k = m_1k - m_2k - m_3k.
    var s: array<vec4<f32>, 4>;
    var d: array<vec4<f32>, 4>;
    let stride = WG.o * tc4;
    let base = o * tc4 + j;
    for (var k = 0u; k < 4u; k++) {
        let m0 = MV[base + k * stride];
        let m1 = MV[base + (4u + k) * stride];
        let m2 = MV[base + (8u + k) * stride];
        let m3 = MV[base + (12u + k) * stride];
        s[k] = m0 + m1 + m2;
        d[k] = m1 - m2 - m3;
    }
    var bias = 0.0;
    if (WG.has_bias != 0u) {
        bias = BIAS[o];
    }
    let row = WG.y_off + o * WG.ho * WG.wo;
    wino_put(row, 2u * ty, tx0, s[0] + s[1] + s[2], s[1] - s[2] - s[3], bias);
    wino_put(row, 2u * ty + 1u, tx0, d[0] + d[1] + d[2], d[1] - d[2] - d[3], bias);
}
