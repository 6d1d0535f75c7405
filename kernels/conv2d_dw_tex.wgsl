// conv_dw_tex: depthwise 2-D convolution (NCHW, groups == C == O), stride 1, no dilation, on
// software devices (lavapipe), chosen in src/ops/conv2d/dw_tex.rs: ConvNeXt's 7x7 and MiT's 3x3
// depthwise convs. conv_dw (kernels/conv2d.wgsl) reads the same windows from storage buffers,
// which lavapipe turns into per-lane scalar loops: 8 + KW - 1 input loads and KW weight loads per
// kernel row. Here the input and the weights are textures, so a kernel row costs NU window texels
// and two weight texels, each a vector gather.
//
// One invocation: FP consecutive output pixels of one row of one channel.
// XT: texel (t, iy) of layer c = x[c, iy, 4t .. 4t+3], zero past W (one batch item), whatever the
// layout x came in (the pack's strides). Output pixel (ch, yo, xo) goes to
// Y[y_off + ch * y_cs + yo * y_rs + xo * y_xs]: NCHW, or channels-last (tokens) for a conv fused
// with the permutes around it (graph::fuse).
// TW: texel (q, c) of layer ky = w[c, ky, 4q .. 4q+3], zero past KW.
// KW and E = (-px) mod 4 (where the window starts within its first texel) are override constants,
// so every window index folds to a constant once `tap` is inlined for each kx.

struct DwParams {
    h: u32, w: u32, ho: u32, wo: u32,
    kh: u32, wq: u32, py: i32, px: i32,
    nbx: u32, act: u32, alpha: f32, has_bias: u32,
    y_off: u32, y_cs: u32, y_rs: u32, y_xs: u32,
    x_off4: u32, _p0: u32, _p1: u32, _p2: u32,
}

override KW: u32 = 3u;
override E: u32 = 0u;
// The channel is the grid's x (channels-last output): consecutive workgroups then write the
// neighbouring channels of the same pixels, which share cache lines. Otherwise it is the grid's y.
override CH_X: bool = false;
// Texels of the window that hold taps (at most NT).
override NU: u32 = (E + FP - 1u + KW - 1u) / 4u + 1u;

const FP: u32 = 8u;
const NT: u32 = 5u;

@group(0) @binding(0) var<uniform> D: DwParams;
@group(0) @binding(1) var XT: texture_storage_2d_array<rgba32float, read>;
@group(0) @binding(2) var TW: texture_storage_2d_array<rgba32float, read>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;

// Scalar j of the window (a constant once inlined).
fn dw_win(win: ptr<function, array<vec4<f32>, NT>>, j: u32) -> f32 {
    return (*win)[j / 4u][j % 4u];
}

// Accumulators of the FP pixels. Named fields, not an array: lavapipe spills indexed private arrays.
struct DwAcc {
    a0: f32, a1: f32, a2: f32, a3: f32,
    a4: f32, a5: f32, a6: f32, a7: f32,
}

// Kernel column kx (a constant once inlined) with weight wv.
fn dw_tap(kx: u32, wv: f32, win: ptr<function, array<vec4<f32>, NT>>, a: ptr<function, DwAcc>) {
    (*a).a0 += wv * dw_win(win, E + kx);
    (*a).a1 += wv * dw_win(win, E + kx + 1u);
    (*a).a2 += wv * dw_win(win, E + kx + 2u);
    (*a).a3 += wv * dw_win(win, E + kx + 3u);
    (*a).a4 += wv * dw_win(win, E + kx + 4u);
    (*a).a5 += wv * dw_win(win, E + kx + 5u);
    (*a).a6 += wv * dw_win(win, E + kx + 6u);
    (*a).a7 += wv * dw_win(win, E + kx + 7u);
}

// Bias, activation and the store of pixel xo (if inside the row).
fn dw_put(v: f32, row: u32, xo: u32, bias: f32) {
    if (xo < D.wo) {
        Y[row + xo * D.y_xs] = apply_act(v + bias, D.act, D.alpha);
    }
}

@compute @workgroup_size(64, 1, 1)
fn conv_dw_tex(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let ch = select(wid.y, wid.x, CH_X);
    let pix = select(wid.x, wid.y, CH_X) * 64u + lid.x;
    if (pix >= D.ho * D.nbx) {
        return;
    }
    let yo = pix / D.nbx;
    let xo0 = (pix % D.nbx) * FP;
    // First texel of the window: xo0 - px - E is a multiple of 4 (FP is).
    let t0 = (i32(xo0) - D.px - i32(E)) / 4;
    var a: DwAcc;
    var win: array<vec4<f32>, NT>;
    for (var ky = 0u; ky < D.kh; ky++) {
        let iy = i32(yo + ky) - D.py;
        if (iy < 0 || iy >= i32(D.h)) {
            continue;
        }
        for (var t = 0u; t < NU; t++) {
            let tt = t0 + i32(t);
            let v = textureLoad(XT, vec2<i32>(clamp(tt, 0, i32(D.wq) - 1), iy), i32(ch));
            win[t] = select(vec4<f32>(0.0), v, tt >= 0 && tt < i32(D.wq));
        }
        let w0 = textureLoad(TW, vec2<i32>(0, i32(ch)), i32(ky));
        dw_tap(0u, w0.x, &win, &a);
        if (KW > 1u) { dw_tap(1u, w0.y, &win, &a); }
        if (KW > 2u) { dw_tap(2u, w0.z, &win, &a); }
        if (KW > 3u) { dw_tap(3u, w0.w, &win, &a); }
        if (KW > 4u) {
            let w1 = textureLoad(TW, vec2<i32>(1, i32(ch)), i32(ky));
            dw_tap(4u, w1.x, &win, &a);
            if (KW > 5u) { dw_tap(5u, w1.y, &win, &a); }
            if (KW > 6u) { dw_tap(6u, w1.z, &win, &a); }
            if (KW > 7u) { dw_tap(7u, w1.w, &win, &a); }
        }
    }
    var bias = 0.0;
    if (D.has_bias != 0u) {
        bias = BIAS[ch];
    }
    let row = D.y_off + ch * D.y_cs + yo * D.y_rs;
    dw_put(a.a0, row, xo0, bias);
    dw_put(a.a1, row, xo0 + 1u, bias);
    dw_put(a.a2, row, xo0 + 2u, bias);
    dw_put(a.a3, row, xo0 + 3u, bias);
    dw_put(a.a4, row, xo0 + 4u, bias);
    dw_put(a.a5, row, xo0 + 5u, bias);
    dw_put(a.a6, row, xo0 + 6u, bias);
    dw_put(a.a7, row, xo0 + 7u, bias);
}

// conv_dw_tex_cl: the same conv on tokens (channels last: x is [H, W, C] and y [Ho, Wo, C] of one
// batch item; MiT's Mix-FFN and ConvNeXt's blocks), for C a multiple of 4. An invocation takes 4
// channels (q) of FPC consecutive output pixels on RC consecutive output rows; its lanes run along
// q. It reads x straight from its buffer as vec4s of 4 channels, each input row once for all RC
// output rows: packing tokens into a texture first cost more than the whole conv (a transposing
// pack for `conv_dw_tex`, 34 of 87 ms on MiT's 256 x 128 x 128; docs/BENCHMARKS.md), and
// `conv_dw_tex`'s stores went one float per lane, each to its own cache line.
// TW: texel (q, kx) of layer ky = w[ky, kx, 4q .. 4q+3]. D.wq holds C / 4, D.nbx the pixel blocks
// of an output row, D.x_off4 the batch item's first vec4 of x.

@group(0) @binding(5) var<storage, read> X4: array<vec4<f32>>;

const FPC: u32 = 4u;
// Output rows per invocation, and the window of one input row (FPC + KW - 1 vec4s used).
const RC: u32 = 2u;
const NWC: u32 = 11u;

struct DwAcc4 {
    a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>,
}

fn dw_tap4(kx: u32, wv: vec4<f32>, win: ptr<function, array<vec4<f32>, NWC>>, a: ptr<function, DwAcc4>) {
    (*a).a0 += wv * (*win)[kx];
    (*a).a1 += wv * (*win)[kx + 1u];
    (*a).a2 += wv * (*win)[kx + 2u];
    (*a).a3 += wv * (*win)[kx + 3u];
}

fn dw_put4(v: vec4<f32>, base: u32, xo: u32, bias: vec4<f32>) {
    if (xo < D.wo) {
        let at = base + xo * D.y_xs;
        let r = v + bias;
        Y[at] = apply_act(r.x, D.act, D.alpha);
        Y[at + 1u] = apply_act(r.y, D.act, D.alpha);
        Y[at + 2u] = apply_act(r.z, D.act, D.alpha);
        Y[at + 3u] = apply_act(r.w, D.act, D.alpha);
    }
}

// Kernel row ky (its KW weights) applied to the window `win` into `a`.
fn dw_row4(q: u32, ky: u32, win: ptr<function, array<vec4<f32>, NWC>>, a: ptr<function, DwAcc4>) {
    let l = i32(ky);
    dw_tap4(0u, textureLoad(TW, vec2<i32>(i32(q), 0), l), win, a);
    if (KW > 1u) { dw_tap4(1u, textureLoad(TW, vec2<i32>(i32(q), 1), l), win, a); }
    if (KW > 2u) { dw_tap4(2u, textureLoad(TW, vec2<i32>(i32(q), 2), l), win, a); }
    if (KW > 3u) { dw_tap4(3u, textureLoad(TW, vec2<i32>(i32(q), 3), l), win, a); }
    if (KW > 4u) { dw_tap4(4u, textureLoad(TW, vec2<i32>(i32(q), 4), l), win, a); }
    if (KW > 5u) { dw_tap4(5u, textureLoad(TW, vec2<i32>(i32(q), 5), l), win, a); }
    if (KW > 6u) { dw_tap4(6u, textureLoad(TW, vec2<i32>(i32(q), 6), l), win, a); }
    if (KW > 7u) { dw_tap4(7u, textureLoad(TW, vec2<i32>(i32(q), 7), l), win, a); }
}

fn dw_store_row4(a: ptr<function, DwAcc4>, q: u32, yo: u32, xo0: u32, bias: vec4<f32>) {
    if (yo < D.ho) {
        let base = D.y_off + 4u * q + yo * D.y_rs;
        dw_put4((*a).a0, base, xo0, bias);
        dw_put4((*a).a1, base, xo0 + 1u, bias);
        dw_put4((*a).a2, base, xo0 + 2u, bias);
        dw_put4((*a).a3, base, xo0 + 3u, bias);
    }
}

@compute @workgroup_size(64, 1, 1)
fn conv_dw_tex_cl(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_workgroup(wid, nwg) * 64u + lid.x;
    let q = idx % D.wq;
    let blk = idx / D.wq;
    let strips = (D.ho + RC - 1u) / RC;
    if (blk >= strips * D.nbx) {
        return;
    }
    let yo0 = (blk / D.nbx) * RC;
    let xo0 = (blk % D.nbx) * FPC;
    var a0: DwAcc4;
    var a1: DwAcc4;
    var win: array<vec4<f32>, NWC>;
    // Input row i of the strip serves output row r with kernel row i - r.
    for (var i = 0u; i < D.kh + RC - 1u; i++) {
        let iy = i32(yo0 + i) - D.py;
        if (iy < 0 || iy >= i32(D.h)) {
            continue;
        }
        for (var t = 0u; t < FPC + KW - 1u; t++) {
            let ix = i32(xo0 + t) - D.px;
            let v = X4[D.x_off4 + (u32(iy) * D.w + u32(clamp(ix, 0, i32(D.w) - 1))) * D.wq + q];
            win[t] = select(vec4<f32>(0.0), v, ix >= 0 && ix < i32(D.w));
        }
        if (i < D.kh) {
            dw_row4(q, i, &win, &a0);
        }
        if (RC > 1u && i >= 1u && i - 1u < D.kh) {
            dw_row4(q, i - 1u, &win, &a1);
        }
    }
    var bias = vec4<f32>(0.0);
    if (D.has_bias != 0u) {
        bias = vec4<f32>(BIAS[4u * q], BIAS[4u * q + 1u], BIAS[4u * q + 2u], BIAS[4u * q + 3u]);
    }
    dw_store_row4(&a0, q, yo0, xo0, bias);
    if (RC > 1u) {
        dw_store_row4(&a1, q, yo0 + 1u, xo0, bias);
    }
}
