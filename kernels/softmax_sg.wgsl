// softmax_sg: hardware GPUs with subgroups (module "softmax_sg" = softmax.wgsl + this file, compiled
// only where Features::SUBGROUP exists). A last-axis softmax (inner == 1): one row per subgroup, its
// lanes striding along the row, the row's max and sum through subgroupMax / subgroupAdd; f32
// throughout. A 64-invocation workgroup holds 64 / subgroup-size rows; the invocations of rows past
// the window compute on its last row and store nothing, so every subgroup op runs in uniform
// control flow.

@compute @workgroup_size(64)
fn softmax_sg(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_id) sid: u32,
    @builtin(subgroup_size) sgs: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let row = linear_workgroup(wid, nwg) * (64u / sgs) + sid;
    let start = sp.base + min(row, sp.count - 1u) * sp.outer_stride;
    var m = -3.4028235e38;
    for (var c = lane; c < sp.len; c += sgs) {
        m = max(m, sx[start + c]);
    }
    m = subgroupMax(m);
    var s = 0.0;
    for (var c = lane; c < sp.len; c += sgs) {
        s += exp(sx[start + c] - m);
    }
    let inv = 1.0 / subgroupAdd(s);
    if (row < sp.count) {
        for (var c = lane; c < sp.len; c += sgs) {
            sy[start + c] = exp(sx[start + c] - m) * inv;
        }
    }
}
