// Zernike moment magnitudes of the patch around each pixel (see src/ops/zernike.rs): one
// invocation per pixel walks the (2r+1)² taps once, loads the luma once per tap and accumulates
// all 24 basis responses (12 real, 12 imaginary parts) in six vec4 registers. The basis comes in
// the uniform (lane-uniform loads are cheap; a storage buffer would be gathered per lane on
// lavapipe), tap-major, 24 values per tap. Pixels past the edge count as 0 (conv2d's zero padding).

struct ZernikeParams {
    h: u32,
    w: u32,
    r: u32,
    n: u32,
    basis: array<vec4<f32>, 1734>,   // 17 x 17 taps x 6 vec4 (radius <= 8)
}

@group(0) @binding(0) var<uniform> zp: ZernikeParams;
@group(0) @binding(1) var<storage, read> luma: array<f32>;
@group(0) @binding(2) var<storage, read_write> mags: array<f32>;

@compute @workgroup_size(64)
fn zernike(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let p = linear_workgroup(wid, nwg) * 64u + lid;
    if (p >= zp.n) {
        return;
    }
    let x = i32(p % zp.w);
    let y = i32(p / zp.w);
    let r = i32(zp.r);
    let side = 2 * r + 1;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    for (var dy = -r; dy <= r; dy++) {
        let yy = y + dy;
        if (yy < 0 || yy >= i32(zp.h)) {
            continue;
        }
        for (var dx = -r; dx <= r; dx++) {
            let xx = x + dx;
            if (xx < 0 || xx >= i32(zp.w)) {
                continue;
            }
            let v = luma[u32(yy) * zp.w + u32(xx)];
            let t = u32((dy + r) * side + dx + r) * 6u;
            a0 += v * zp.basis[t];
            a1 += v * zp.basis[t + 1u];
            a2 += v * zp.basis[t + 2u];
            a3 += v * zp.basis[t + 3u];
            a4 += v * zp.basis[t + 4u];
            a5 += v * zp.basis[t + 5u];
        }
    }
    let m = array<vec4<f32>, 3>(sqrt(a0 * a0 + a3 * a3), sqrt(a1 * a1 + a4 * a4), sqrt(a2 * a2 + a5 * a5));
    for (var k = 0u; k < 12u; k++) {
        mags[k * zp.n + p] = m[k / 4u][k % 4u];
    }
}
