// Dense nearest-neighbour field by PatchMatch over per-pixel feature vectors (see
// src/ops/patchmatch.rs). Feature maps are planar [K, H, W]; a field is planar [3, H, W]:
// dx, dy (integer-valued f32) and the matching cost, the squared L2 distance of the features.
// Entry points: `pm_init` (hash-random offsets), `pm_step` (one iteration: propagation at a jump and at 1, then
// random search at shrinking radii around the best offset). Every random choice is a hash of
// the pixel, the iteration and the sample, so the CPU reference makes the same choices.

struct PmParams {
    h: u32,
    w: u32,
    k: u32,          // feature channels
    min_off2: u32,   // minimum squared offset length
    jump: u32,       // propagation distance of this iteration (unit neighbours are tried too)
    iter: u32,       // iteration number, salts the hash
    samples: u32,    // random-search samples (radius max(h, w) >> (s + 1), at least 1)
    n: u32,          // pixels
}

@group(0) @binding(0) var<uniform> pp: PmParams;
@group(0) @binding(1) var<storage, read> feat: array<f32>;
@group(0) @binding(2) var<storage, read> prev: array<f32>;
@group(0) @binding(3) var<storage, read_write> next: array<f32>;

// Cost of matching an invalid offset: larger than any real cost, still finite.
const BIG: f32 = 3.0e38;

fn hash(x: u32) -> u32 {
    // PCG-RXS-M-XS output function (O'Neill), on a 32-bit state.
    let v = x * 747796405u + 2891336453u;
    let word = ((v >> ((v >> 28u) + 4u)) ^ v) * 277803737u;
    return (word >> 22u) ^ word;
}

fn rnd(p: u32, iter: u32, s: u32) -> u32 {
    return hash(p ^ hash(iter * 64u + s));
}

// Squared feature distance between pixel p = (x, y) and p + (dx, dy); BIG when the target is
// outside the image or the offset is shorter than the minimum. Stops as soon as the partial sum
// reaches `bound` (the best cost so far): the sum only grows, so such a candidate would lose
// anyway, and most do after a few channels (the patch mean and the low orders carry most of the
// energy). The reference stops at the same channel.
fn cost(x: i32, y: i32, dx: i32, dy: i32, bound: f32) -> f32 {
    let tx = x + dx;
    let ty = y + dy;
    if (tx < 0 || ty < 0 || tx >= i32(pp.w) || ty >= i32(pp.h) || u32(dx * dx + dy * dy) < pp.min_off2) {
        return BIG;
    }
    let plane = pp.h * pp.w;
    let a = u32(y) * pp.w + u32(x);
    let b = u32(ty) * pp.w + u32(tx);
    var acc = 0.0;
    for (var c = 0u; c < pp.k; c++) {
        let d = feat[c * plane + a] - feat[c * plane + b];
        acc += d * d;
        if (acc >= bound) {
            break;
        }
    }
    return acc;
}

@compute @workgroup_size(64)
fn pm_init(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let p = linear_workgroup(wid, nwg) * 64u + lid;
    if (p >= pp.n) {
        return;
    }
    let x = i32(p % pp.w);
    let y = i32(p / pp.w);
    var bx = 0;
    var by = 0;
    var bc = BIG;
    for (var s = 0u; s < 4u; s++) {
        let dx = i32(rnd(p, 0xffffu, 2u * s) % pp.w) - x;
        let dy = i32(rnd(p, 0xffffu, 2u * s + 1u) % pp.h) - y;
        let c = cost(x, y, dx, dy, bc);
        if (c < bc) {
            bx = dx;
            by = dy;
            bc = c;
        }
    }
    next[p] = f32(bx);
    next[pp.n + p] = f32(by);
    next[2u * pp.n + p] = bc;
}

@compute @workgroup_size(64)
fn pm_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let p = linear_workgroup(wid, nwg) * 64u + lid;
    if (p >= pp.n) {
        return;
    }
    let x = i32(p % pp.w);
    let y = i32(p / pp.w);
    var bx = i32(prev[p]);
    var by = i32(prev[pp.n + p]);
    var bc = prev[2u * pp.n + p];
    // Propagation: the offsets of the neighbours at the jump, then at 1 (left, right, up, down).
    for (var r = 0u; r < 2u; r++) {
        let j = select(i32(pp.jump), 1, r == 1u);
        for (var q = 0u; q < 4u; q++) {
            let nx = x + select(select(0, j, q == 1u), -j, q == 0u);
            let ny = y + select(select(0, j, q == 3u), -j, q == 2u);
            if (nx < 0 || ny < 0 || nx >= i32(pp.w) || ny >= i32(pp.h)) {
                continue;
            }
            let qi = u32(ny) * pp.w + u32(nx);
            let dx = i32(prev[qi]);
            let dy = i32(prev[pp.n + qi]);
            let c = cost(x, y, dx, dy, bc);
            if (c < bc) {
                bx = dx;
                by = dy;
                bc = c;
            }
        }
    }
    // Random search around the best offset so far, radius halving per sample.
    let big = i32(max(pp.h, pp.w));
    for (var s = 0u; s < pp.samples; s++) {
        let rad = max(big >> (s + 1u), 1);
        let span = u32(2 * rad + 1);
        let dx = bx + i32(rnd(p, pp.iter, 2u * s) % span) - rad;
        let dy = by + i32(rnd(p, pp.iter, 2u * s + 1u) % span) - rad;
        let c = cost(x, y, dx, dy, bc);
        if (c < bc) {
            bx = dx;
            by = dy;
            bc = c;
        }
    }
    next[p] = f32(bx);
    next[pp.n + p] = f32(by);
    next[2u * pp.n + p] = bc;
}
