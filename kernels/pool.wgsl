// 2-D pooling on NCHW planes: max (with dilation), average (PyTorch divisor rules) and adaptive
// average (PyTorch bins). One thread per output element. Planes arrive in windows: x_base and y_base
// are the element offsets of the first plane inside the bound windows.

struct PoolParams {
    // Plane header (PlaneHead in src/ops/pool.rs).
    planes: u32,      // planes (N*C) in this window
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    x_base: u32,
    y_base: u32,
    _pad0: u32,
    // Window.
    k_h: u32,
    k_w: u32,
    s_h: u32,
    s_w: u32,
    p_h: u32,
    p_w: u32,
    d_h: u32,
    d_w: u32,
    include_pad: u32, // avg: padding counts in the divisor
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

@group(0) @binding(0) var<uniform> pp: PoolParams;
@group(0) @binding(1) var<storage, read> px: array<f32>;
@group(0) @binding(2) var<storage, read_write> py: array<f32>;

// Output coordinates of thread `i`: (plane, oh, ow); plane == planes means "out of range".
fn pool_coords(i: u32) -> vec3<u32> {
    let ow = i % pp.out_w;
    let t = i / pp.out_w;
    return vec3<u32>(t / pp.out_h, t % pp.out_h, ow);
}

// Input coordinates (row, col) of the top-left tap of output (oh, ow)'s window; may be in the padding.
fn window_origin(c: vec3<u32>) -> vec2<i32> {
    return vec2<i32>(i32(c.y * pp.s_h) - i32(pp.p_h), i32(c.z * pp.s_w) - i32(pp.p_w));
}

@compute @workgroup_size(256)
fn max_pool2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + lid;
    let c = pool_coords(i);
    if (c.x >= pp.planes) {
        return;
    }
    let o = window_origin(c);
    let base = pp.x_base + c.x * pp.in_h * pp.in_w;
    var m = bitcast<f32>(0xff800000u); // -inf: padding never wins
    for (var kh = 0u; kh < pp.k_h; kh++) {
        let h = o.x + i32(kh * pp.d_h);
        if (h < 0 || h >= i32(pp.in_h)) {
            continue;
        }
        let row = base + u32(h) * pp.in_w;
        for (var kw = 0u; kw < pp.k_w; kw++) {
            let w = o.y + i32(kw * pp.d_w);
            if (w < 0 || w >= i32(pp.in_w)) {
                continue;
            }
            let v = px[row + u32(w)];
            // NaN propagates, as in PyTorch.
            if (v > m || v != v) {
                m = v;
            }
        }
    }
    py[pp.y_base + i] = m;
}

// Sum of the input rectangle [hs, he) x [ws, we) of one plane.
fn window_sum(base: u32, hs: u32, he: u32, ws: u32, we: u32) -> f32 {
    var s = 0.0;
    for (var h = hs; h < he; h++) {
        let row = base + h * pp.in_w;
        for (var w = ws; w < we; w++) {
            s += px[row + w];
        }
    }
    return s;
}

@compute @workgroup_size(256)
fn avg_pool2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + lid;
    let c = pool_coords(i);
    if (c.x >= pp.planes) {
        return;
    }
    // Window clipped to input + padding (count_include_pad divisor), then to the input.
    let o = window_origin(c);
    let h1 = min(o.x + i32(pp.k_h), i32(pp.in_h + pp.p_h));
    let w1 = min(o.y + i32(pp.k_w), i32(pp.in_w + pp.p_w));
    let padded = (h1 - o.x) * (w1 - o.y);
    let hs = max(o.x, 0);
    let ws = max(o.y, 0);
    let he = min(h1, i32(pp.in_h));
    let we = min(w1, i32(pp.in_w));
    if (hs >= he || ws >= we) {
        py[pp.y_base + i] = 0.0;
        return;
    }
    let s = window_sum(pp.x_base + c.x * pp.in_h * pp.in_w, u32(hs), u32(he), u32(ws), u32(we));
    let div = select((he - hs) * (we - ws), padded, pp.include_pad != 0u);
    py[pp.y_base + i] = s / f32(div);
}

@compute @workgroup_size(256)
fn adaptive_avg_pool2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + lid;
    let c = pool_coords(i);
    if (c.x >= pp.planes) {
        return;
    }
    // Bin [floor(o*In/Out), ceil((o+1)*In/Out)).
    let hs = c.y * pp.in_h / pp.out_h;
    let he = ((c.y + 1u) * pp.in_h + pp.out_h - 1u) / pp.out_h;
    let ws = c.z * pp.in_w / pp.out_w;
    let we = ((c.z + 1u) * pp.in_w + pp.out_w - 1u) / pp.out_w;
    let s = window_sum(pp.x_base + c.x * pp.in_h * pp.in_w, hs, he, ws, we);
    py[pp.y_base + i] = s / f32((he - hs) * (we - ws));
}
