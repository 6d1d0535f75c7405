// Post-processing of a nearest-neighbour field (see src/ops/offset_fit.rs). A field is planar
// [3, H, W]: dx, dy, cost. `median`: per pixel the medians of dx and dy over the square window of
// radius r clipped to the image (an even count averages the two middle values), the cost copied.
// `fit`: per pixel the least-squares affine fit of dx and dy over the window of radius r
// (d = a + b u + c v, u and v the window coordinates relative to the pixel; 3 x 3 normal
// equations by Cramer's rule), its mean squared residual, and the candidate flag.

struct FitParams {
    h: u32,
    w: u32,
    k: u32,          // feature channels (fit)
    r: u32,          // window radius
    n: u32,          // pixels
    max_err: f32,    // fit: largest mean squared residual (px²) of a candidate
    min_energy: f32, // fit: smallest sum of squares of features 1..K of a candidate
    big: f32,        // cost of an invalid offset (no match)
}

@group(0) @binding(0) var<uniform> fp: FitParams;
@group(0) @binding(1) var<storage, read> field: array<f32>;
@group(0) @binding(2) var<storage, read> feat: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn window(p: u32) -> vec4<u32> {
    let x = p % fp.w;
    let y = p / fp.w;
    return vec4<u32>(select(0u, x - fp.r, x >= fp.r), select(0u, y - fp.r, y >= fp.r), min(x + fp.r + 1u, fp.w), min(y + fp.r + 1u, fp.h));
}

// Median of channel `c` of the field over the window `win` (at most 7 x 7 values).
fn median_of(c: u32, win: vec4<u32>) -> f32 {
    var v: array<f32, 49>;
    var cnt = 0u;
    for (var yy = win.y; yy < win.w; yy++) {
        for (var xx = win.x; xx < win.z; xx++) {
            // Insertion into the sorted prefix.
            let val = field[c * fp.n + yy * fp.w + xx];
            var i = cnt;
            while (i > 0u && v[i - 1u] > val) {
                v[i] = v[i - 1u];
                i--;
            }
            v[i] = val;
            cnt++;
        }
    }
    return (v[(cnt - 1u) / 2u] + v[cnt / 2u]) * 0.5;
}

@compute @workgroup_size(64)
fn median(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let p = linear_workgroup(wid, nwg) * 64u + lid;
    if (p >= fp.n) {
        return;
    }
    let win = window(p);
    out[p] = median_of(0u, win);
    out[fp.n + p] = median_of(1u, win);
    out[2u * fp.n + p] = field[2u * fp.n + p];
}

fn det3(a: vec3<f32>, b: vec3<f32>, c: vec3<f32>) -> f32 {
    return dot(a, cross(b, c));
}

@compute @workgroup_size(64)
fn fit(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let p = linear_workgroup(wid, nwg) * 64u + lid;
    if (p >= fp.n) {
        return;
    }
    let x = i32(p % fp.w);
    let y = i32(p / fp.w);
    let win = window(p);
    // Normal equations: columns of the symmetric matrix and the right-hand sides for dx, dy.
    var s1 = 0.0;
    var su = 0.0;
    var sv = 0.0;
    var suu = 0.0;
    var suv = 0.0;
    var svv = 0.0;
    var bx = vec3<f32>(0.0);
    var by = vec3<f32>(0.0);
    for (var yy = win.y; yy < win.w; yy++) {
        for (var xx = win.x; xx < win.z; xx++) {
            let q = yy * fp.w + xx;
            let u = f32(i32(xx) - x);
            let v = f32(i32(yy) - y);
            let e = vec3<f32>(1.0, u, v);
            s1 += 1.0;
            su += u;
            sv += v;
            suu += u * u;
            suv += u * v;
            svv += v * v;
            bx += e * field[q];
            by += e * field[fp.n + q];
        }
    }
    let c0 = vec3<f32>(s1, su, sv);
    let c1 = vec3<f32>(su, suu, suv);
    let c2 = vec3<f32>(sv, suv, svv);
    let d = det3(c0, c1, c2);
    var err = fp.big;
    // A window of fewer than 3 non-collinear points (a 1-pixel-high image) has no fit.
    if (d > 0.5) {
        let ax = vec3<f32>(det3(bx, c1, c2), det3(c0, bx, c2), det3(c0, c1, bx)) / d;
        let ay = vec3<f32>(det3(by, c1, c2), det3(c0, by, c2), det3(c0, c1, by)) / d;
        var res = 0.0;
        for (var yy = win.y; yy < win.w; yy++) {
            for (var xx = win.x; xx < win.z; xx++) {
                let q = yy * fp.w + xx;
                let e = vec3<f32>(1.0, f32(i32(xx) - x), f32(i32(yy) - y));
                let rx = field[q] - dot(ax, e);
                let ry = field[fp.n + q] - dot(ay, e);
                res += rx * rx + ry * ry;
            }
        }
        err = res / s1;
    }
    var energy = 0.0;
    for (var c = 1u; c < fp.k; c++) {
        let f = feat[c * fp.n + p];
        energy += f * f;
    }
    let matched = field[2u * fp.n + p] < fp.big;
    out[p] = select(0.0, 1.0, matched && err <= fp.max_err && energy >= fp.min_energy);
    out[fp.n + p] = err;
}
