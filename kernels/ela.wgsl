// Error Level Analysis: a baseline JPEG round trip (libjpeg/IJG path, 4:2:0) and |orig - decoded|.
// See src/ops/ela.rs for the definition; the CPU reference there does the same f32 operations in
// the same order. Three passes per band of MCU rows (16 image rows each) over a scratch holding
// that band's planes (f32 holding u8 values):
//   to_ycc: RGB -> YCbCr (libjpeg's fixed-point jccolor), edge replication to a 16 x 16 MCU grid,
//           h2v2 chroma downsampling with the alternating bias 1, 2;
//   blocks: per 8 x 8 block, level shift, float DCT, quantize, dequantize, float IDCT, +128, round;
//   to_rgb: h2v2 fancy (triangle) chroma upsampling, libjpeg's jdcolor YCbCr -> RGB, |orig - rt|,
//           for the band's core rows (the planes also hold one MCU row of context above and below
//           when the image is split; a core row's upsampling reads at most one chroma row of it).
// Scratch layout: Y (bh x wp), then Cb and Cr (bh/2 x wp/2 each). Each colour
// channel of the input and output is bound as its own window over the rows a pass touches; `xb`
// and `ob` are the offsets of those rows' first element inside the windows. Rows are image rows.

struct ElaParams {
    h: u32,       // image height and width
    w: u32,
    bh: u32,      // rows of the band's planes (a multiple of 16)
    wp: u32,      // width padded to a multiple of 16
    n: u32,       // work items of this dispatch
    row0: u32,    // image row of the planes' first row (a multiple of 16)
    y0: u32,      // to_rgb: first image row written
    xb0: u32,     // offsets of the first bound row inside the input windows (R, G, B)
    xb1: u32,
    xb2: u32,
    ob0: u32,     // ... and inside the output windows
    ob1: u32,
    ob2: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

// u8 value of an input sample: round half up, clamp to 0..255.
fn to_u8(v: f32) -> i32 {
    return i32(clamp(floor(v + 0.5), 0.0, 255.0));
}

@group(0) @binding(0) var<uniform> yp: ElaParams;
@group(0) @binding(1) var<storage, read> yr: array<f32>;
@group(0) @binding(2) var<storage, read> yg: array<f32>;
@group(0) @binding(3) var<storage, read> yb: array<f32>;
@group(0) @binding(4) var<storage, read_write> yplanes: array<f32>;

// The u8 RGB of image pixel (y, x), edges replicated; the windows start at image row `row0`.
fn rgb_at(y: u32, x: u32) -> vec3<i32> {
    let i = (min(y, yp.h - 1u) - yp.row0) * yp.w + min(x, yp.w - 1u);
    return vec3<i32>(to_u8(yr[yp.xb0 + i]), to_u8(yg[yp.xb1 + i]), to_u8(yb[yp.xb2 + i]));
}

// libjpeg jccolor.c rgb_ycc_convert, SCALEBITS 16 (all terms non-negative before the shift).
fn ycc(c: vec3<i32>) -> vec3<i32> {
    let yv = (19595 * c.x + 38470 * c.y + 7471 * c.z + 32768) >> 16u;
    let cb = (-11059 * c.x - 21709 * c.y + 32768 * c.z + 8388608 + 32767) >> 16u;
    let cr = (32768 * c.x - 27439 * c.y - 5329 * c.z + 8388608 + 32767) >> 16u;
    return vec3<i32>(yv, cb, cr);
}

// One invocation per 2 x 2 cell of the band's padded rows: 4 luma samples, 1 Cb, 1 Cr.
@compute @workgroup_size(64)
fn to_ycc(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = linear_workgroup(wid, nwg) * 64u + lid;
    if (t >= yp.n) {
        return;
    }
    let wc = yp.wp / 2u;
    let li = t / wc;              // chroma row in the band
    let cj = t % wc;
    let ci = yp.row0 / 2u + li;   // chroma row in the image
    // Rows below the last chroma row group repeat it (libjpeg pads the downsampled rows); that
    // row is in the image's last MCU row, so in the band whenever `ci` is.
    let ri = min(ci, (yp.h + 1u) / 2u - 1u);
    var csum = vec2<i32>(0, 0);
    for (var dy = 0u; dy < 2u; dy++) {
        for (var dx = 0u; dx < 2u; dx++) {
            let l = ycc(rgb_at(2u * ci + dy, 2u * cj + dx));
            yplanes[(2u * li + dy) * yp.wp + 2u * cj + dx] = f32(l.x);
            csum += l.yz;
        }
    }
    if (ri != ci) {
        csum = vec2<i32>(0, 0);
        for (var dy = 0u; dy < 2u; dy++) {
            for (var dx = 0u; dx < 2u; dx++) {
                csum += ycc(rgb_at(2u * ri + dy, 2u * cj + dx)).yz;
            }
        }
    }
    let bias = 1 + i32(cj & 1u);
    let co = yp.bh * yp.wp + li * wc + cj;
    yplanes[co] = f32((csum.x + bias) >> 2u);
    yplanes[co + (yp.bh / 2u) * wc] = f32((csum.y + bias) >> 2u);
}

// One separable pass of the 8-point DCT over every row of `src`, stored transposed:
// dst[k * 8 + r] = sum_i t(k, i) src[r * 8 + i], t(k, i) = m[k][i] (forward) or m[i][k] (inverse).
// Two passes transform rows then columns and leave the block in natural order.
fn pass8(m: ptr<function, array<f32, 64>>, src: ptr<function, array<f32, 64>>, dst: ptr<function, array<f32, 64>>, inverse: bool) {
    for (var r = 0u; r < 8u; r++) {
        for (var k = 0u; k < 8u; k++) {
            var acc = 0.0;
            for (var i = 0u; i < 8u; i++) {
                acc += (*m)[select(k * 8u + i, i * 8u + k, inverse)] * (*src)[r * 8u + i];
            }
            (*dst)[k * 8u + r] = acc;
        }
    }
}

@group(0) @binding(0) var<uniform> bp: ElaParams;
// [0, 64): DCT matrix m[k * 8 + n] = c(k)/2 cos((2n+1) k pi / 16) (the f32 values of
// `dct8()` in src/ops/ela.rs); [64, 128): luma Q;
// [128, 192): chroma Q; [192, 256): 1/Q luma; [256, 320): 1/Q chroma (natural order, row = v).
@group(0) @binding(1) var<storage, read> btab: array<f32>;
@group(0) @binding(2) var<storage, read_write> bplanes: array<f32>;

@compute @workgroup_size(64)
fn blocks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = linear_workgroup(wid, nwg) * 64u + lid;
    if (t >= bp.n) {
        return;
    }
    var b = t;
    let nbx = bp.wp / 8u;
    let ny = (bp.bh / 8u) * nbx;
    var base = 0u;
    var stride = bp.wp;
    var bx = nbx;
    var q0 = 64u;
    if (b >= ny) {
        b -= ny;
        bx = nbx / 2u;
        let nc = (bp.bh / 16u) * bx;
        base = bp.bh * bp.wp + (b / nc) * nc * 64u;
        b = b % nc;
        stride = bp.wp / 2u;
        q0 = 128u;
    }
    let origin = base + (b / bx) * 8u * stride + (b % bx) * 8u;
    var f: array<f32, 64>;
    var tmp: array<f32, 64>;
    // The DCT matrix in private memory: one load each instead of one per multiply-add (2.8x
    // faster on lavapipe, where a storage load is a per-lane gather).
    var m: array<f32, 64>;
    for (var i = 0u; i < 64u; i++) {
        m[i] = btab[i];
    }
    for (var i = 0u; i < 64u; i++) {
        f[i] = bplanes[origin + (i / 8u) * stride + i % 8u] - 128.0;
    }
    // Forward: rows, then (the first pass stored its result transposed) columns: f = F[v][u].
    pass8(&m, &f, &tmp, false);
    pass8(&m, &tmp, &f, false);
    // Quantize (round half up, as libjpeg's float path) and dequantize.
    for (var k = 0u; k < 64u; k++) {
        f[k] = floor(f[k] * btab[q0 + 128u + k] + 0.5) * btab[q0 + k];
    }
    // Inverse: rows along u, then columns along v: f = out[y][x].
    pass8(&m, &f, &tmp, true);
    pass8(&m, &tmp, &f, true);
    for (var i = 0u; i < 64u; i++) {
        bplanes[origin + (i / 8u) * stride + i % 8u] = clamp(floor(f[i] + 128.5), 0.0, 255.0);
    }
}

@group(0) @binding(0) var<uniform> rp: ElaParams;
@group(0) @binding(1) var<storage, read> rr: array<f32>;
@group(0) @binding(2) var<storage, read> rg: array<f32>;
@group(0) @binding(3) var<storage, read> rb: array<f32>;
@group(0) @binding(4) var<storage, read> rplanes: array<f32>;
@group(0) @binding(5) var<storage, read_write> outr: array<f32>;
@group(0) @binding(6) var<storage, read_write> outg: array<f32>;
@group(0) @binding(7) var<storage, read_write> outb: array<f32>;

// Decoded chroma at image chroma row i, column j of the plane at `base` in the band's planes.
fn chroma(base: u32, i: u32, j: u32) -> i32 {
    return i32(rplanes[base + (i - rp.row0 / 2u) * (rp.wp / 2u) + j]);
}

// libjpeg h2v2_fancy_upsample at image pixel (y, x) of the plane at `base`: 3/4 nearer row + 1/4
// other row, then 3/4 nearer column + 1/4 other column, edges replicated (at the image's edges,
// not the band's); plain replication when the downsampled width is <= 2 (libjpeg-turbo's
// h2v2_upsample).
fn upsample(base: u32, y: u32, x: u32) -> i32 {
    let dh = (rp.h + 1u) / 2u;
    let dw = (rp.w + 1u) / 2u;
    let i = y / 2u;
    let j = x / 2u;
    if (dw <= 2u) {
        return chroma(base, i, j);
    }
    let inb = select(min(i + 1u, dh - 1u), max(i, 1u) - 1u, (y & 1u) == 0u);
    let this_sum = 3 * chroma(base, i, j) + chroma(base, inb, j);
    if ((x & 1u) == 0u) {
        let jl = max(j, 1u) - 1u;
        return (3 * this_sum + 3 * chroma(base, i, jl) + chroma(base, inb, jl) + 8) >> 4u;
    }
    let jr = min(j + 1u, dw - 1u);
    return (3 * this_sum + 3 * chroma(base, i, jr) + chroma(base, inb, jr) + 7) >> 4u;
}

// One invocation per output pixel of the core rows y0 .. y0 + n / w: decode to RGB (jdcolor.c
// ycc_rgb_convert tables) and write |orig - decoded| for each channel.
@compute @workgroup_size(64)
fn to_rgb(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = linear_workgroup(wid, nwg) * 64u + lid;
    if (t >= rp.n) {
        return;
    }
    let y = rp.y0 + t / rp.w;
    let x = t % rp.w;
    let lum = i32(rplanes[(y - rp.row0) * rp.wp + x]);
    let cbase = rp.bh * rp.wp;
    let cb = upsample(cbase, y, x) - 128;
    let cr = upsample(cbase + (rp.bh / 2u) * (rp.wp / 2u), y, x) - 128;
    let r = lum + ((91881 * cr + 32768) >> 16u);
    let g = lum + ((-22554 * cb + 32768 - 46802 * cr) >> 16u);
    let bl = lum + ((116130 * cb + 32768) >> 16u);
    let rt = clamp(vec3<i32>(r, g, bl), vec3<i32>(0), vec3<i32>(255));
    outr[rp.ob0 + t] = f32(abs(to_u8(rr[rp.xb0 + t]) - rt.x));
    outg[rp.ob1 + t] = f32(abs(to_u8(rg[rp.xb1 + t]) - rt.y));
    outb[rp.ob2 + t] = f32(abs(to_u8(rb[rp.xb2 + t]) - rt.z));
}
