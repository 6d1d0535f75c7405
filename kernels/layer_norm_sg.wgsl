// layer_norm_sg: hardware GPUs with subgroups (module "layer_norm_sg" = layer_norm.wgsl + this
// file, compiled only where Features::SUBGROUP exists). LayerNorm over the last axis (inner == 1):
// one row per subgroup, its lanes striding along the row, the sums through subgroupAdd; the same
// corrected two-pass statistics in f32 as `layer_norm`. A 64-invocation workgroup holds
// 64 / subgroup-size rows; the invocations of rows past the window compute on its last row and
// store nothing, so every subgroup op runs in uniform control flow.

@compute @workgroup_size(64)
fn layer_norm_sg(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_id) sid: u32,
    @builtin(subgroup_size) sgs: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let row = linear_workgroup(wid, nwg) * (64u / sgs) + sid;
    let start = np.base + min(row, np.count - 1u) * np.outer_stride;
    let n = f32(np.len);
    var s = 0.0;
    for (var c = lane; c < np.len; c += sgs) {
        s += nx[start + c];
    }
    let mean = subgroupAdd(s) / n;
    var sd = 0.0;
    var sq = 0.0;
    for (var c = lane; c < np.len; c += sgs) {
        let d = nx[start + c] - mean;
        sd += d;
        sq += d * d;
    }
    let corr = subgroupAdd(sd) / n;
    let variance = max(subgroupAdd(sq) / n - corr * corr, 0.0);
    let rstd = 1.0 / sqrt(variance + np.eps);
    if (row < np.count) {
        for (var c = lane; c < np.len; c += sgs) {
            ny[start + c] = (nx[start + c] - mean - corr) * rstd * ngamma[c] + nbeta[c];
        }
    }
}
