//! 2-D pooling on NCHW f32 with PyTorch's semantics: `MaxPool2d` (padding, dilation, ceil mode),
//! `AvgPool2d` (ceil mode, `count_include_pad`) and `AdaptiveAvgPool2d` (PyTorch's bins).
//! Dispatch and windows of whole planes: `ops::planes`, shared with `resize`.

use crate::error::Result;
use crate::kernel;
use crate::ops::planes::{dispatch_planes, nchw_input, plane_kernel, reference_planes, sized_output};
use crate::ops::{as_bytes, Op, PlanCtx, TensorView};
use crate::tensor::{Shape, Tensor};

pub const KERNELS: &[crate::gpu::Kernel] = &[kernel!("pool")];

/// `nn.MaxPool2d`: padding is -inf; `[h, w]` pairs throughout.
#[derive(Clone, Debug)]
pub struct MaxPool2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub ceil_mode: bool,
}

impl MaxPool2d {
    /// Square window, no dilation.
    pub fn new(kernel: usize, stride: usize, padding: usize, ceil_mode: bool) -> Self {
        MaxPool2d { kernel: [kernel; 2], stride: [stride; 2], padding: [padding; 2], dilation: [1, 1], ceil_mode }
    }
}

/// `nn.AvgPool2d` (no `divisor_override`).
#[derive(Clone, Debug)]
pub struct AvgPool2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub ceil_mode: bool,
    pub count_include_pad: bool,
}

impl AvgPool2d {
    /// Square window.
    pub fn new(kernel: usize, stride: usize, padding: usize, ceil_mode: bool, count_include_pad: bool) -> Self {
        AvgPool2d { kernel: [kernel; 2], stride: [stride; 2], padding: [padding; 2], ceil_mode, count_include_pad }
    }
}

/// `nn.AdaptiveAvgPool2d(out)`: bin `i` of `Out` over `In` covers `[floor(i*In/Out), ceil((i+1)*In/Out))`.
#[derive(Clone, Debug)]
pub struct AdaptiveAvgPool2d {
    pub out: [usize; 2],
}

/// PyTorch's pooled length along one axis (`pooling_output_shape`), with its checks.
pub fn pool_out_len(
    input: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    ceil_mode: bool,
) -> std::result::Result<usize, String> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return Err(format!("kernel {kernel}, stride {stride} and dilation {dilation} must be positive"));
    }
    if pad > kernel / 2 {
        return Err(format!("padding {pad} must be at most half the kernel size {kernel}"));
    }
    let (i, k, s, p, d) = (input as i64, kernel as i64, stride as i64, pad as i64, dilation as i64);
    let num = i + 2 * p - d * (k - 1) - 1 + if ceil_mode { s - 1 } else { 0 };
    let mut out = num.div_euclid(s) + 1;
    // In ceil mode the last window must start inside the input or the left padding.
    if ceil_mode && (out - 1) * s >= i + p {
        out -= 1;
    }
    if out < 1 {
        return Err(format!(
            "input length {input} is too small for kernel {kernel} (dilation {dilation}, padding {pad}): output length {out}"
        ));
    }
    Ok(out as usize)
}

/// Pooling fields after the plane header (`ops::planes`).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PoolParams {
    k_h: u32,
    k_w: u32,
    s_h: u32,
    s_w: u32,
    p_h: u32,
    p_w: u32,
    d_h: u32,
    d_w: u32,
    include_pad: u32,
    _pad: [u32; 3],
}

/// Window geometry of one pooling dispatch (adaptive pooling uses only the sizes).
#[derive(Clone, Copy, Default)]
struct Window {
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    d: [usize; 2],
    include_pad: bool,
}

fn plan_pool(ctx: &mut PlanCtx, entry: &str, win: Window, x: &TensorView, y: &TensorView) -> Result<()> {
    let params = PoolParams {
        k_h: win.k[0] as u32,
        k_w: win.k[1] as u32,
        s_h: win.s[0] as u32,
        s_w: win.s[1] as u32,
        p_h: win.p[0] as u32,
        p_w: win.p[1] as u32,
        d_h: win.d[0] as u32,
        d_w: win.d[1] as u32,
        include_pad: win.include_pad as u32,
        _pad: [0; 3],
    };
    dispatch_planes(ctx, &KERNELS[0], entry, x, y, as_bytes(&params))
}

/// Output shape of a windowed pooling op.
fn pooled_shape(inputs: &[&[usize]], win: Window, ceil_mode: bool) -> std::result::Result<Vec<Shape>, String> {
    let x = nchw_input(inputs)?;
    let oh =
        pool_out_len(x[2], win.k[0], win.s[0], win.p[0], win.d[0], ceil_mode).map_err(|m| format!("height: {m}"))?;
    let ow =
        pool_out_len(x[3], win.k[1], win.s[1], win.p[1], win.d[1], ceil_mode).map_err(|m| format!("width: {m}"))?;
    Ok(vec![vec![x[0], x[1], oh, ow]])
}

impl MaxPool2d {
    fn window(&self) -> Window {
        Window { k: self.kernel, s: self.stride, p: self.padding, d: self.dilation, include_pad: false }
    }

    /// Output element (i, j) of a plane of the NCHW input `x`.
    fn element(&self, x: &[usize]) -> impl Fn(&[f32], usize, usize) -> f32 + Send + Sync + 'static {
        let (h, w) = (x[2] as i64, x[3] as i64);
        let p = self.clone();
        move |plane: &[f32], i: usize, j: usize| {
            let mut m = f32::NEG_INFINITY;
            for a in 0..p.kernel[0] {
                let r = (i * p.stride[0] + a * p.dilation[0]) as i64 - p.padding[0] as i64;
                for b in 0..p.kernel[1] {
                    let q = (j * p.stride[1] + b * p.dilation[1]) as i64 - p.padding[1] as i64;
                    if (0..h).contains(&r) && (0..w).contains(&q) {
                        let v = plane[(r * w + q) as usize];
                        if v > m || v.is_nan() {
                            m = v;
                        }
                    }
                }
            }
            m
        }
    }
}

impl Op for MaxPool2d {
    fn kind(&self) -> &'static str {
        "max_pool2d"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        pooled_shape(inputs, self.window(), self.ceil_mode)
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        let y = &self.infer(&[inputs[0].shape]).ok()?[0];
        plane_kernel(inputs[0].shape, [y[2], y[3]], self.element(inputs[0].shape), "max_pool2d planes")
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let x = inputs[0];
        let out = &self.infer(&[&x.shape]).unwrap()[0];
        let f = self.element(&x.shape);
        vec![reference_planes(x, out[2], out[3], f)]
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        plan_pool(ctx, "max_pool2d", self.window(), &inputs[0], &outputs[0])
    }
}

impl AvgPool2d {
    fn window(&self) -> Window {
        Window { k: self.kernel, s: self.stride, p: self.padding, d: [1, 1], include_pad: self.count_include_pad }
    }

    /// Output element (i, j) of a plane of the NCHW input `x`.
    fn element(&self, x: &[usize]) -> impl Fn(&[f32], usize, usize) -> f32 + Send + Sync + 'static {
        let (h, w) = (x[2] as i64, x[3] as i64);
        let p = self.clone();
        // Per axis: the window as PyTorch sees it for the divisor (clipped to input + padding) and
        // the part of it inside the input.
        let (stride, padding, kernel) = (p.stride, p.padding, p.kernel);
        let span = move |o: usize, axis: usize, len: i64| {
            let start = (o * stride[axis]) as i64 - padding[axis] as i64;
            let end = (start + kernel[axis] as i64).min(len + padding[axis] as i64);
            (end - start, start.max(0), end.min(len))
        };
        move |plane: &[f32], i: usize, j: usize| {
            let (ph, r0, r1) = span(i, 0, h);
            let (pw, q0, q1) = span(j, 1, w);
            if r0 >= r1 || q0 >= q1 {
                return 0.0;
            }
            let mut s = 0f64;
            for r in r0..r1 {
                for q in q0..q1 {
                    s += plane[(r * w + q) as usize] as f64;
                }
            }
            let div = if p.count_include_pad { ph * pw } else { (r1 - r0) * (q1 - q0) };
            (s / div as f64) as f32
        }
    }
}

impl Op for AvgPool2d {
    fn kind(&self) -> &'static str {
        "avg_pool2d"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        pooled_shape(inputs, self.window(), self.ceil_mode)
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        let y = &self.infer(&[inputs[0].shape]).ok()?[0];
        plane_kernel(inputs[0].shape, [y[2], y[3]], self.element(inputs[0].shape), "avg_pool2d planes")
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let x = inputs[0];
        let out = &self.infer(&[&x.shape]).unwrap()[0];
        let f = self.element(&x.shape);
        vec![reference_planes(x, out[2], out[3], f)]
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        plan_pool(ctx, "avg_pool2d", self.window(), &inputs[0], &outputs[0])
    }
}

impl AdaptiveAvgPool2d {
    /// Output element (i, j) of a plane of the NCHW input `x`.
    fn element(&self, x: &[usize]) -> impl Fn(&[f32], usize, usize) -> f32 + Send + Sync + 'static {
        let (h, w) = (x[2], x[3]);
        let [oh, ow] = self.out;
        let bin = |o: usize, len: usize, out: usize| {
            ((o * len) as f64 / out as f64).floor() as usize..(((o + 1) * len) as f64 / out as f64).ceil() as usize
        };
        move |plane: &[f32], i: usize, j: usize| {
            let (rows, cols) = (bin(i, h, oh), bin(j, w, ow));
            let count = rows.len() * cols.len();
            let s: f64 = rows.flat_map(|r| cols.clone().map(move |q| plane[r * w + q] as f64)).sum();
            (s / count as f64) as f32
        }
    }
}

impl Op for AdaptiveAvgPool2d {
    fn kind(&self) -> &'static str {
        "adaptive_avg_pool2d"
    }
    fn infer(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<Shape>, String> {
        sized_output(inputs, self.out)
    }
    fn cpu_kernel(&self, inputs: &[crate::cpu::CpuInput]) -> Option<Box<dyn crate::cpu::CpuKernel>> {
        plane_kernel(inputs[0].shape, self.out, self.element(inputs[0].shape), "adaptive_avg_pool2d planes")
    }
    fn reference(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        let x = inputs[0];
        let [oh, ow] = self.out;
        let f = self.element(&x.shape);
        vec![reference_planes(x, oh, ow, f)]
    }
    fn plan(&self, ctx: &mut PlanCtx, inputs: &[TensorView], outputs: &[TensorView]) -> Result<()> {
        plan_pool(ctx, "adaptive_avg_pool2d", Window::default(), &inputs[0], &outputs[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{check_op, check_op_windowed, device, run_on_gpu};
    use crate::ops::window::{test_limit, Windows};
    use crate::tensor::Rng;

    const TOL: f32 = 1e-5;

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        Tensor::random(shape, seed, -4.0, 4.0)
    }

    fn assert_values(case: &str, got: &Tensor, shape: &[usize], want: &[f32]) {
        assert_eq!(got.shape, shape, "{case}: shape");
        for (k, (g, w)) in got.data.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                "{case}: element {k}: got {g}, want {w} (all: {:?})",
                got.data
            );
        }
    }

    /// Hand-derived values guard the CPU references and the kernels alike.
    #[test]
    fn hand_checked_small_cases() {
        // 3x3 = 1..9, 2x2 stride 2 ceil mode: windows rows {0,1},{2} x cols {0,1},{2}.
        let x = Tensor::new(&[1, 1, 3, 3], (1..=9).map(|v| v as f32).collect()).unwrap();
        let mp = MaxPool2d::new(2, 2, 0, true);
        let ap = AvgPool2d::new(2, 2, 0, true, true);
        for (case, op, want) in [
            ("max 2x2 s2 ceil", &mp as &dyn Op, vec![5.0, 6.0, 8.0, 9.0]),
            // Windows past the input are clipped for the divisor too (no padding to count).
            ("avg 2x2 s2 ceil", &ap as &dyn Op, vec![3.0, 4.5, 7.5, 9.0]),
        ] {
            assert_values(&format!("{case} reference"), &op.reference(&[&x])[0], &[1, 1, 2, 2], &want);
        }
        assert_values(
            "max 2x2 s2 ceil gpu",
            &run_on_gpu(&mp, &[x.clone()]).unwrap()[0],
            &[1, 1, 2, 2],
            &[5.0, 6.0, 8.0, 9.0],
        );
        assert_values(
            "avg 2x2 s2 ceil gpu",
            &run_on_gpu(&ap, &[x.clone()]).unwrap()[0],
            &[1, 1, 2, 2],
            &[3.0, 4.5, 7.5, 9.0],
        );
        assert_eq!(MaxPool2d::new(2, 2, 0, false).infer(&[&[1, 1, 3, 3]]).unwrap()[0], vec![1, 1, 1, 1]);

        // 3x3 stride 2 padding 1 on 3x3: windows rows/cols [-1,2) and [1,4) -> inside [0,2) and [1,3).
        let inc = [12.0 / 9.0, 16.0 / 9.0, 24.0 / 9.0, 28.0 / 9.0];
        let exc = [3.0, 4.0, 6.0, 7.0];
        for (incl, want) in [(true, &inc), (false, &exc)] {
            let op = AvgPool2d::new(3, 2, 1, false, incl);
            assert_values(&format!("avg 3x3 s2 p1 incl {incl}"), &op.reference(&[&x])[0], &[1, 1, 2, 2], want);
            assert_values(
                &format!("avg 3x3 s2 p1 incl {incl} gpu"),
                &run_on_gpu(&op, &[x.clone()]).unwrap()[0],
                &[1, 1, 2, 2],
                want,
            );
        }

        // 1x4 = [1,2,3,4], 3x3 stride 2 padding 1 ceil: widths 2 -> 3 outputs, windows [-1,2) [1,4) [3,5)
        // (the last clipped to input + padding = 5). Rows: [-1,2) clipped to [-1,2), inside [0,1).
        let x = Tensor::new(&[1, 1, 1, 4], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(AvgPool2d::new(3, 2, 1, false, true).infer(&[&[1, 1, 1, 4]]).unwrap()[0], vec![1, 1, 1, 2]);
        let cases: [(Box<dyn Op>, [f32; 3]); 3] = [
            (Box::new(AvgPool2d::new(3, 2, 1, true, true)), [3.0 / 9.0, 9.0 / 9.0, 4.0 / 6.0]),
            (Box::new(AvgPool2d::new(3, 2, 1, true, false)), [1.5, 3.0, 4.0]),
            (Box::new(MaxPool2d::new(3, 2, 1, true)), [2.0, 4.0, 4.0]),
        ];
        for (op, want) in &cases {
            assert_values(&format!("{op:?} 1x4"), &op.reference(&[&x])[0], &[1, 1, 1, 3], want);
        }
        let gpu_avg = run_on_gpu(&AvgPool2d::new(3, 2, 1, true, true), &[x.clone()]).unwrap();
        assert_values("avg 1x4 ceil incl gpu", &gpu_avg[0], &[1, 1, 1, 3], &cases[0].1);

        // Adaptive 5 -> 3: bins [0,2) [1,4) [3,5).
        let x = Tensor::new(&[1, 1, 1, 5], vec![1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        let op = AdaptiveAvgPool2d { out: [1, 3] };
        assert_values("adaptive 5->3", &op.reference(&[&x])[0], &[1, 1, 1, 3], &[1.5, 3.0, 4.5]);
        assert_values("adaptive 5->3 gpu", &run_on_gpu(&op, &[x]).unwrap()[0], &[1, 1, 1, 3], &[1.5, 3.0, 4.5]);
    }

    #[test]
    fn output_size_rules() {
        // (in, k, s, p, d, ceil) -> out, as torch.nn.MaxPool2d gives.
        for (args, want) in [
            ((7, 2, 2, 0, 1, false), 3),
            ((7, 2, 2, 0, 1, true), 4),
            ((4, 3, 2, 1, 1, false), 2),
            ((4, 3, 2, 1, 1, true), 3),
            ((5, 3, 2, 1, 1, true), 3),
            ((6, 3, 3, 1, 1, true), 3), // ceil gives 3 without the start rule too
            ((5, 2, 2, 1, 1, true), 3), // the start rule drops a 4th window starting at 5, all padding
            ((1, 2, 2, 0, 1, true), 1),
            ((9, 3, 1, 1, 2, false), 7),
        ] {
            let (i, k, s, p, d, c) = args;
            assert_eq!(pool_out_len(i, k, s, p, d, c).unwrap(), want, "{args:?}");
        }
        assert!(pool_out_len(5, 3, 1, 2, 1, false).unwrap_err().contains("half"));
        assert!(pool_out_len(1, 2, 2, 0, 1, false).unwrap_err().contains("too small"));
        assert!(MaxPool2d::new(2, 2, 0, true).infer(&[&[3, 4, 5]]).unwrap_err().contains("4-D"));
    }

    #[test]
    fn max_pool_matches_reference() {
        let seed = Rng::fresh_seed();
        let cases: &[(&[usize], MaxPool2d)] = &[
            (&[2, 3, 7, 9], MaxPool2d::new(2, 2, 0, true)),
            (&[2, 3, 7, 9], MaxPool2d::new(2, 2, 0, false)),
            (&[1, 3, 13, 17], MaxPool2d::new(3, 2, 1, true)),
            (&[2, 3, 13, 17], MaxPool2d::new(3, 2, 1, false)),
            (
                &[2, 3, 7, 1],
                MaxPool2d { kernel: [3, 1], stride: [2, 1], padding: [1, 0], dilation: [1, 1], ceil_mode: true },
            ),
            (&[1, 3, 1, 1], MaxPool2d::new(2, 2, 0, true)),
            (
                &[2, 3, 13, 17],
                MaxPool2d { kernel: [3, 2], stride: [1, 3], padding: [1, 1], dilation: [2, 3], ceil_mode: true },
            ),
        ];
        for (k, (shape, op)) in cases.iter().enumerate() {
            let x = rand(shape, seed + k as u64);
            // Max pooling only selects values: exact.
            check_op(&format!("max_pool {shape:?} seed {seed}"), op, &[x], 0.0);
        }
    }

    #[test]
    fn avg_pool_matches_reference() {
        let seed = Rng::fresh_seed();
        let shapes: &[(&[usize], [usize; 3])] = &[
            (&[2, 3, 7, 9], [2, 2, 0]),
            (&[2, 3, 13, 17], [3, 2, 1]),
            (&[1, 3, 13, 17], [5, 3, 2]),
            (&[2, 3, 7, 1], [3, 2, 1]),
            (&[1, 3, 1, 1], [3, 1, 1]),
        ];
        for (k, (shape, [kk, s, p])) in shapes.iter().enumerate() {
            let x = rand(shape, seed + k as u64);
            for ceil_mode in [false, true] {
                for incl in [false, true] {
                    let op = AvgPool2d::new(*kk, *s, *p, ceil_mode, incl);
                    check_op(&format!("avg_pool {shape:?} seed {seed}"), &op, &[x.clone()], TOL);
                }
            }
        }
    }

    #[test]
    fn adaptive_avg_pool_matches_reference() {
        let seed = Rng::fresh_seed();
        let x = rand(&[2, 3, 17, 23], seed);
        for o in [1, 2, 3, 6] {
            check_op(
                &format!("adaptive 17x23 -> {o} seed {seed}"),
                &AdaptiveAvgPool2d { out: [o, o] },
                &[x.clone()],
                TOL,
            );
        }
        // Output larger than the input: bins overlap and repeat.
        let small = rand(&[2, 3, 4, 5], seed + 1);
        check_op(&format!("adaptive 4x5 -> 6x6 seed {seed}"), &AdaptiveAvgPool2d { out: [6, 6] }, &[small], TOL);
        let one = rand(&[1, 3, 1, 1], seed + 2);
        check_op(&format!("adaptive 1x1 -> 3x2 seed {seed}"), &AdaptiveAvgPool2d { out: [3, 2] }, &[one], TOL);
        check_op(&format!("adaptive 17x23 -> 3x7 seed {seed}"), &AdaptiveAvgPool2d { out: [3, 7] }, &[x], TOL);
    }

    /// Windows of whole planes at unaligned plane sizes, by shrinking the binding limit: planes of
    /// 13 x 17 = 221 input elements, two per window of 512, so 6 planes take 3 dispatches.
    #[test]
    fn split_into_plane_windows() {
        let seed = Rng::fresh_seed();
        let x = rand(&[2, 3, 13, 17], seed);
        let limit = 2 * 13 * 17 + 70;
        assert!(Windows::of(device()).align() <= 64, "the limit below assumes a small alignment");
        let n = check_op_windowed(
            &format!("max_pool split seed {seed}"),
            &MaxPool2d::new(3, 2, 1, true),
            &[x.clone()],
            0.0,
            limit,
        );
        assert_eq!(n, 3, "dispatches");
        let n = check_op_windowed(
            &format!("adaptive split seed {seed}"),
            &AdaptiveAvgPool2d { out: [3, 3] },
            &[x],
            TOL,
            limit,
        );
        assert_eq!(n, 3, "dispatches");
        let _limit = test_limit(100);
        let err = run_on_gpu(&MaxPool2d::new(2, 2, 0, false), &[rand(&[1, 1, 13, 17], seed)]).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
    }
}
