// conv_tiled: hardware GPUs. Module "conv2d_tiled" = kernels/conv2d.wgsl (ConvParams, bindings,
// helpers) + this file, so software devices never compile its workgroup memory.
//
// Implicit GEMM per batch item and group: Y[o, p] = sum_k Wt[k, o] * Xcol[k, p] with k = (c, ky, kx)
// over C/groups x kh x kw (the packed weight's row order, so a weight tile row is contiguous in o)
// and p over the Ho x Wo output pixels. One 16 x 16 workgroup computes a 64-channel x 64-pixel
// block, 4 x 4 outputs per invocation strided by 16; K advances in steps of 16 staged through
// workgroup memory (the im2col gather happens while staging, padding reads zero); f32 accumulation.
// The weight may be stored in f16 (HALF_W); the arithmetic is f32 either way.
// Grid: x = pixel blocks, y = groups x channel blocks per group (P.obg), z = batch items. Windows as
// for conv_general: channels [o_off, o_off + o_cnt) of whole groups, Y indexed relative to them.

// Raw words of the packed weight: f32 bits, or two f16 per word when the host stored it in f16.
@group(0) @binding(2) var<storage, read> Wu: array<u32>;

// 1: the weight is stored as f16 pairs (element e in half e & 1 of word e / 2; PlanCtx::half_input).
override HALF_W: u32 = 0u;

// Element e of the packed weight, as f32 either way: the arithmetic stays f32.
fn load_w(e: u32) -> f32 {
    if (HALF_W != 0u) {
        return unpack2x16float(Wu[e >> 1u])[e & 1u];
    }
    return bitcast<f32>(Wu[e]);
}

const CT_B: u32 = 64u;
const CT_K: u32 = 16u;
var<workgroup> tile_w: array<f32, 1024>; // [CT_K][CT_B]: tile_w[k * CT_B + o]
var<workgroup> tile_x: array<f32, 1024>; // [CT_K][CT_B]: tile_x[k * CT_B + p]

@compute @workgroup_size(16, 16, 1)
fn conv_tiled(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let plane = P.ho * P.wo;
    let pb = wid.x * CT_B;
    let g = P.o_off / P.og + wid.y / P.obg;
    let ob = (wid.y % P.obg) * CT_B;
    let n = wid.z;
    let taps = P.kh * P.kw;
    let kdim = P.cg * taps;
    let hw = P.h * P.w;
    let xbase = (n * P.c + g * P.cg) * hw;
    let wcol = g * P.og + ob;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < kdim; k0 += CT_K) {
        for (var e = 0u; e < 4u; e++) {
            let idx = li + e * 256u;
            let k = k0 + idx / CT_B;
            let j = idx % CT_B;
            var vw = 0.0;
            if (k < kdim && ob + j < P.og) {
                vw = load_w(k * P.o + wcol + j);
            }
            var vx = 0.0;
            let p = pb + j;
            if (k < kdim && p < plane) {
                let c = k / taps;
                let t = k % taps;
                let iy = i32((p / P.wo) * P.sy + (t / P.kw) * P.dy) - P.py;
                let ix = i32((p % P.wo) * P.sx + (t % P.kw) * P.dx) - P.px;
                if (iy >= 0 && iy < i32(P.h) && ix >= 0 && ix < i32(P.w)) {
                    vx = X[xbase + c * hw + u32(iy) * P.w + u32(ix)];
                }
            }
            tile_w[idx] = vw;
            tile_x[idx] = vx;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < CT_K; kk++) {
            let r = kk * CT_B + lid.x;
            let xv = vec4<f32>(tile_x[r], tile_x[r + 16u], tile_x[r + 32u], tile_x[r + 48u]);
            for (var i = 0u; i < 4u; i++) {
                acc[i] += tile_w[kk * CT_B + lid.y + 16u * i] * xv;
            }
        }
        workgroupBarrier();
    }
    let yb = n * P.o_cnt * plane;
    for (var i = 0u; i < 4u; i++) {
        let oc = ob + lid.y + 16u * i;
        if (oc < P.og) {
            let o = g * P.og + oc;
            var bias = 0.0;
            if (P.has_bias != 0u) {
                bias = B[o];
            }
            let row = yb + (o - P.o_off) * plane;
            for (var j = 0u; j < 4u; j++) {
                let p = pb + lid.x + 16u * j;
                if (p < plane) {
                    Y[row + p] = apply_act(acc[i][j] + bias, P.act, P.alpha);
                }
            }
        }
    }
}
