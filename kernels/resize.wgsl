// Bilinear resize of NCHW planes with F.interpolate(mode='bilinear') semantics, no antialias.
// One thread per output element. Planes arrive in windows (x_base, y_base: see pool.wgsl).

struct ResizeParams {
    // Plane header (PlaneHead in src/ops/pool.rs).
    planes: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    x_base: u32,
    y_base: u32,
    _pad0: u32,
    scale_h: f32, // (in-1)/(out-1) (0 when out == 1) with align_corners, else in/out
    scale_w: f32,
    align_corners: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> rp: ResizeParams;
@group(0) @binding(1) var<storage, read> rx: array<f32>;
@group(0) @binding(2) var<storage, read_write> ry: array<f32>;

// Source taps along one axis for output index `o`: indices i0, i1 and the weight l1 of i1.
struct Taps {
    i0: u32,
    i1: u32,
    l1: f32,
}

fn taps(o: u32, scale: f32, len: u32) -> Taps {
    var src = scale * f32(o);
    if (rp.align_corners == 0u) {
        src = max(scale * (f32(o) + 0.5) - 0.5, 0.0);
    }
    let i0 = min(u32(src), len - 1u);
    let i1 = select(i0, i0 + 1u, i0 + 1u < len);
    let l1 = clamp(src - f32(i0), 0.0, 1.0);
    return Taps(i0, i1, l1);
}

@compute @workgroup_size(256)
fn bilinear(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + lid;
    let ow = i % rp.out_w;
    let t = i / rp.out_w;
    let oh = t % rp.out_h;
    let plane = t / rp.out_h;
    if (plane >= rp.planes) {
        return;
    }
    let th = taps(oh, rp.scale_h, rp.in_h);
    let tw = taps(ow, rp.scale_w, rp.in_w);
    let base = rp.x_base + plane * rp.in_h * rp.in_w;
    let r0 = base + th.i0 * rp.in_w;
    let r1 = base + th.i1 * rp.in_w;
    let lw0 = 1.0 - tw.l1;
    let top = lw0 * rx[r0 + tw.i0] + tw.l1 * rx[r0 + tw.i1];
    let bottom = lw0 * rx[r1 + tw.i0] + tw.l1 * rx[r1 + tw.i1];
    ry[rp.y_base + i] = (1.0 - th.l1) * top + th.l1 * bottom;
}
