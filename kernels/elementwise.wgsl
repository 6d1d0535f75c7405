// Element-wise ops: activations (unary) and broadcasting binary arithmetic.
// One thread per output element; large tensors arrive as windows ("base" offsets below).

struct UnaryParams {
    n: u32,
    act: u32,
    alpha: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> up: UnaryParams;
@group(0) @binding(1) var<storage, read> ux: array<f32>;
@group(0) @binding(2) var<storage, read_write> uy: array<f32>;

@compute @workgroup_size(256)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + lid;
    if (i >= up.n) {
        return;
    }
    uy[i] = apply_act(ux[i], up.act, up.alpha);
}

// Output is a (up to) 6-D row-major index space; a and b have per-dimension strides (0 where broadcast).
struct BinaryParams {
    n: u32,        // elements in this window of the output
    base: u32,     // flat output index of the window's first element
    op: u32,       // 0 add, 1 sub, 2 mul, 3 div
    act: u32,
    alpha: f32,
    a_base: u32,   // flat index of a's bound window start (subtracted)
    b_base: u32,
    _pad: u32,
    d0: u32, d1: u32, d2: u32, d3: u32, d4: u32, d5: u32, _p0: u32, _p1: u32,
    sa0: u32, sa1: u32, sa2: u32, sa3: u32, sa4: u32, sa5: u32, _p2: u32, _p3: u32,
    sb0: u32, sb1: u32, sb2: u32, sb3: u32, sb4: u32, sb5: u32, _p4: u32, _p5: u32,
}

@group(0) @binding(0) var<uniform> bp: BinaryParams;
@group(0) @binding(1) var<storage, read> ba: array<f32>;
@group(0) @binding(2) var<storage, read> bb: array<f32>;
@group(0) @binding(3) var<storage, read_write> by: array<f32>;

// a (op) b, then the activation.
fn combine(a: f32, b: f32) -> f32 {
    var v: f32;
    switch bp.op {
        case 0u: { v = a + b; }
        case 1u: { v = a - b; }
        case 2u: { v = a * b; }
        default: { v = a / b; }
    }
    return apply_act(v, bp.act, bp.alpha);
}

@compute @workgroup_size(256)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let li = linear_workgroup(wid, nwg) * 256u + lid;
    if (li >= bp.n) {
        return;
    }
    var r = bp.base + li;
    let i5 = r % bp.d5; r = r / bp.d5;
    let i4 = r % bp.d4; r = r / bp.d4;
    let i3 = r % bp.d3; r = r / bp.d3;
    let i2 = r % bp.d2; r = r / bp.d2;
    let i1 = r % bp.d1; r = r / bp.d1;
    let i0 = r;
    let ia = i0 * bp.sa0 + i1 * bp.sa1 + i2 * bp.sa2 + i3 * bp.sa3 + i4 * bp.sa4 + i5 * bp.sa5 - bp.a_base;
    let ib = i0 * bp.sb0 + i1 * bp.sb1 + i2 * bp.sb2 + i3 * bp.sb3 + i4 * bp.sb4 + i5 * bp.sb5 - bp.b_base;
    by[li] = combine(ba[ia], bb[ib]);
}

// `binary` when both operands have the output's shape: the flat index is every operand's, so no
// per-element division (lavapipe runs vector integer division one lane at a time).
@compute @workgroup_size(256)
fn binary_flat(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let li = linear_workgroup(wid, nwg) * 256u + lid;
    if (li >= bp.n) {
        return;
    }
    by[li] = combine(ba[li], bb[li]);
}
