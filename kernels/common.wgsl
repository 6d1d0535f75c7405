// Shared prelude, compiled in front of every kernel file (see src/gpu/kernel.rs).
// Activation codes match `Act` in src/ops/act.rs.

const ACT_NONE: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_RELU6: u32 = 2u;
const ACT_GELU: u32 = 3u;
const ACT_SIGMOID: u32 = 4u;
const ACT_HSWISH: u32 = 5u;
const ACT_LEAKY: u32 = 6u;

// The activation a pipeline is specialized on (the host passes `Act::constant`), or ACT_RUNTIME to
// take the code from the caller's uniform. lavapipe runs both sides of every branch, even on a
// uniform value, so a runtime switch pays every activation's exps and divisions per output; a
// constant code folds to its one case.
const ACT_RUNTIME: u32 = 0xFFFFFFFFu;
override ACT: u32 = ACT_RUNTIME;

// erf by Abramowitz & Stegun 7.1.26 (max abs error 1.5e-7), odd-extended.
fn erf_f32(x: f32) -> f32 {
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * exp(-a * a);
    return select(y, -y, x < 0.0);
}

// Exact (erf) GELU, as PyTorch's nn.GELU() default.
fn gelu_erf(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf_f32(x * 0.70710678118654752));
}

fn sigmoid_f32(x: f32) -> f32 {
    // Split by sign so exp never overflows.
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

fn apply_act(x: f32, code: u32, alpha: f32) -> f32 {
    switch select(code, ACT, ACT != ACT_RUNTIME) {
        case 1u: { return max(x, 0.0); }
        case 2u: { return clamp(x, 0.0, 6.0); }
        case 3u: { return gelu_erf(x); }
        case 4u: { return sigmoid_f32(x); }
        case 5u: { return x * clamp(x + 3.0, 0.0, 6.0) / 6.0; }
        case 6u: { return select(x * alpha, x, x >= 0.0); }
        default: { return x; }
    }
}

// Linear workgroup index for 1-D work split over a 2-D grid (65535 workgroups per dimension).
fn linear_workgroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}
