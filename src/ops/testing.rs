//! Test harness shared by every op family: run one op on the device and compare with its CPU reference.

use std::collections::HashMap;

use crate::error::Result;
use crate::gpu::device::{shared, Gpu};
use crate::graph::{GraphBuilder, Plan, PlanStats};
use crate::ops::Op;
use crate::tensor::{check_close, Tensor};

/// The shared test device; a failure says why (no silent skip).
pub fn device() -> &'static Gpu {
    match shared() {
        Ok(g) => g,
        Err(e) => panic!("GPU tests need a device and none could be created: {e}"),
    }
}

/// `op` alone as a graph with inputs "in0", "in1" ... and outputs "out0", "out1" ...; the inputs
/// listed in `constants` become constants of the graph (weights), so CPU kernels prepack them.
fn single_op_graph<O: Op + Clone + 'static>(
    op: &O,
    inputs: &[Tensor],
    constants: &[usize],
) -> Result<(crate::graph::Graph, usize)> {
    let mut b = GraphBuilder::new();
    let ids: Vec<_> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let name = format!("in{i}");
            if constants.contains(&i) {
                b.constant(&name, t.clone())
            } else {
                b.input(&name, &t.shape)
            }
        })
        .collect();
    let outs = b.add_multi("op", op.clone(), &ids)?;
    for (k, o) in outs.iter().enumerate() {
        b.output(&format!("out{k}"), *o);
    }
    Ok((b.finish(), outs.len()))
}

/// Feed a single-op graph (every input not listed in `constants`, by its name "inN") to `run`
/// and return the graph's outputs "out0" .. in order.
fn run_single(
    inputs: &[Tensor],
    constants: &[usize],
    nout: usize,
    run: impl FnOnce(&[(&str, &Tensor)]) -> Result<HashMap<String, Tensor>>,
) -> Result<Vec<Tensor>> {
    let names: Vec<String> = (0..inputs.len()).map(|i| format!("in{i}")).collect();
    let feed: Vec<(&str, &Tensor)> = names
        .iter()
        .zip(inputs)
        .enumerate()
        .filter(|(i, _)| !constants.contains(i))
        .map(|(_, (n, t))| (n.as_str(), t))
        .collect();
    let mut res = run(&feed)?;
    Ok((0..nout).map(|k| res.remove(&format!("out{k}")).unwrap()).collect())
}

/// Panic with the case, the op and the worst element unless every output is within `rel_tol` of
/// the reference's (relative to max(|want|, 1)).
fn assert_outputs<O: Op>(case: &str, op: &O, got: &[Tensor], want: &[Tensor], rel_tol: f32) {
    assert_eq!(got.len(), want.len(), "{case}: output count");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        if let Err(m) = check_close(&format!("{case} output {k}"), g, w, rel_tol) {
            panic!("{m}\nop: {op:?}");
        }
    }
}

/// Run `op` alone as a graph on the CPU backend ([`crate::cpu::CpuPlan`]), with the inputs listed
/// in `constants` given as constants; returns its outputs in order.
pub fn run_on_cpu<O: Op + Clone + 'static>(op: &O, inputs: &[Tensor], constants: &[usize]) -> Result<Vec<Tensor>> {
    let (g, nout) = single_op_graph(op, inputs, constants)?;
    let plan = crate::cpu::CpuPlan::new(&g)?;
    run_single(inputs, constants, nout, |feed| plan.run(feed))
}

/// `op`'s own CPU kernel (made for these inputs' shapes, none constant) against its reference,
/// bit for bit (NaN payloads included): for kernels that do the reference's operations in its
/// order, only split over the pool.
pub fn check_cpu_kernel_bits(case: &str, op: &dyn Op, inputs: &[&Tensor]) {
    let want = op.reference(inputs);
    let shapes: Vec<crate::cpu::CpuInput> =
        inputs.iter().map(|t| crate::cpu::CpuInput { shape: &t.shape, constant: None }).collect();
    let kernel = op.cpu_kernel(&shapes).unwrap_or_else(|| panic!("{case}: {} has no CPU kernel", op.kind()));
    let mut outs: Vec<Vec<f32>> = want.iter().map(|t| vec![f32::NAN; t.numel()]).collect();
    let data: Vec<&[f32]> = inputs.iter().map(|t| t.data.as_slice()).collect();
    kernel.run(&data, &mut outs.iter_mut().map(|o| o.as_mut_slice()).collect::<Vec<_>>());
    for (i, (got, want)) in outs.iter().zip(&want).enumerate() {
        let first = got.iter().zip(&want.data).position(|(a, b)| a.to_bits() != b.to_bits());
        if let Some(at) = first {
            panic!("{case}: output {i} differs from the reference at element {at}: {} vs {}", got[at], want.data[at]);
        }
    }
}

/// Check `op` on the CPU backend against its reference, with the same tolerance rule as
/// [`check_op`]: once with every input fed at run time, once with all but the first as constants
/// (the weights a fast kernel prepacks at plan time).
pub fn check_op_cpu<O: Op + Clone + 'static>(case: &str, op: &O, inputs: &[Tensor], rel_tol: f32) {
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let want = op.reference(&refs);
    let all_but_first: Vec<usize> = (1..inputs.len()).collect();
    for constants in [&[][..], &all_but_first[..]] {
        let got = run_on_cpu(op, inputs, constants)
            .unwrap_or_else(|e| panic!("{case}: {op:?} failed on the CPU backend: {e}"));
        assert_outputs(&format!("{case} (CPU backend, constants {constants:?})"), op, &got, &want, rel_tol);
    }
}

/// Run `op` alone as a graph on the device, planned with `opts`, with the inputs listed in
/// `constants` given as constants; returns its outputs in order and the plan (its statistics and
/// dispatches).
fn run_planned<O: Op + Clone + 'static>(
    op: &O,
    inputs: &[Tensor],
    constants: &[usize],
    opts: &crate::graph::PlanOptions,
) -> Result<(Vec<Tensor>, Plan<'static>)> {
    let (g, nout) = single_op_graph(op, inputs, constants)?;
    let plan = Plan::with_options(device(), &g, opts)?;
    let outputs = run_single(inputs, constants, nout, |feed| plan.run(feed))?;
    Ok((outputs, plan))
}

/// Run `op` alone as a graph on the device; returns its outputs in order.
pub fn run_on_gpu<O: Op + Clone + 'static>(op: &O, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    run_with_stats(op, inputs).map(|r| r.0)
}

/// [`run_on_gpu`], with the plan's statistics (dispatch count, memory).
pub fn run_with_stats<O: Op + Clone + 'static>(op: &O, inputs: &[Tensor]) -> Result<(Vec<Tensor>, PlanStats)> {
    // The options `Plan::new` uses on this device.
    let opts = crate::graph::PlanOptions { half_weights: device().half_weights, ..Default::default() };
    run_planned(op, inputs, &[], &opts).map(|(outputs, plan)| (outputs, plan.stats))
}

/// Check `op` on the device against its CPU reference, with a tolerance relative to the output's
/// scale (max(|want|, 1)), and the CPU backend too ([`check_op_cpu`]). Panics with the op, the
/// case and the worst element on failure.
pub fn check_op<O: Op + Clone + 'static>(case: &str, op: &O, inputs: &[Tensor], rel_tol: f32) {
    check_op_stats(case, op, inputs, rel_tol);
}

/// [`check_op`] with the storage-binding limit shrunk to `limit` elements (planning and the bind
/// check, see `ops::window`); returns the number of dispatches the op recorded, from which tests
/// tell how many windows ran.
#[cfg(test)]
pub fn check_op_windowed<O: Op + Clone + 'static>(
    case: &str,
    op: &O,
    inputs: &[Tensor],
    rel_tol: f32,
    limit: usize,
) -> usize {
    let _limit = crate::ops::window::test_limit(limit);
    check_op_stats(&format!("{case} (binding limit {limit} elements)"), op, inputs, rel_tol).dispatches
}

fn check_op_stats<O: Op + Clone + 'static>(case: &str, op: &O, inputs: &[Tensor], rel_tol: f32) -> PlanStats {
    check_op_cpu(case, op, inputs, rel_tol);
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let want = op.reference(&refs);
    let (got, stats) = run_with_stats(op, inputs).unwrap_or_else(|e| panic!("{case}: {op:?} failed on the GPU: {e}"));
    assert_outputs(case, op, &got, &want, rel_tol);
    stats
}

/// [`check_op`], returning the labels of the steps its plan records (pipelines and copies), so
/// tests can tell which path ran.
#[cfg(test)]
pub fn check_op_steps<O: Op + Clone + 'static>(case: &str, op: &O, inputs: &[Tensor], rel_tol: f32) -> Vec<String> {
    let opts = crate::graph::PlanOptions::default();
    let (got, plan) = run_planned(op, inputs, &[], &opts).unwrap_or_else(|e| panic!("{case}: {op:?} failed: {e}"));
    let refs: Vec<&Tensor> = inputs.iter().collect();
    assert_outputs(case, op, &got, &op.reference(&refs), rel_tol);
    plan.dispatches.iter().map(|d| d.label().to_string()).collect()
}

/// Options that plan as for a hardware GPU (`PlanOptions::class`) on whatever device runs the tests.
#[cfg(test)]
fn as_hardware(half_weights: bool) -> crate::graph::PlanOptions {
    crate::graph::PlanOptions { class: Some(crate::gpu::DeviceClass::Hardware), half_weights, ..Default::default() }
}

/// Check `op` planned as for a hardware GPU, on whatever device runs the tests, against its
/// reference; returns the labels of the pipelines its dispatches use, so tests can tell which
/// kernel ran.
#[cfg(test)]
pub fn check_op_as_hardware<O: Op + Clone + 'static>(
    case: &str,
    op: &O,
    inputs: &[Tensor],
    rel_tol: f32,
) -> Vec<String> {
    let (got, plan) =
        run_planned(op, inputs, &[], &as_hardware(false)).unwrap_or_else(|e| panic!("{case}: {op:?} failed: {e}"));
    let refs: Vec<&Tensor> = inputs.iter().collect();
    assert_outputs(&format!("{case} (hardware kernels)"), op, &got, &op.reference(&refs), rel_tol);
    plan.dispatches.iter().map(|d| d.label().to_string()).collect()
}

/// Check `op` planned for a hardware GPU (on whatever device runs the tests) with input `weight`
/// given as a constant and [`crate::graph::PlanOptions::half_weights`]: the planner must store
/// that constant in f16, and the outputs must match the reference run on the weight rounded to
/// f16 (the kernel's arithmetic is f32) within `rel_tol`. Also checks that the same plan without
/// half weights keeps it in f32.
#[cfg(test)]
pub fn check_op_half_weight<O: Op + Clone + 'static>(
    case: &str,
    op: &O,
    inputs: &[Tensor],
    weight: usize,
    rel_tol: f32,
) {
    let mut rounded = inputs.to_vec();
    rounded[weight].data.iter_mut().for_each(|v| *v = half::f16::from_f32(*v).to_f32());
    let refs: Vec<&Tensor> = rounded.iter().collect();
    let want = op.reference(&refs);
    for half_weights in [true, false] {
        let (got, plan) = run_planned(op, inputs, &[weight], &as_hardware(half_weights))
            .unwrap_or_else(|e| panic!("{case}: {op:?} failed: {e}"));
        assert_eq!(
            plan.stats.half_weights, half_weights as usize,
            "{case}: f16 constants (half_weights {half_weights})"
        );
        if half_weights {
            assert_outputs(&format!("{case} (f16 weight)"), op, &got, &want, rel_tol);
        }
    }
}

/// Mean of a `[1, 1, H, W]` map over the pixels inside the rectangle `inner` (rows, columns) and
/// over those outside `outer` (a band between the two is left out): (region, background).
pub fn region_means(
    map: &Tensor,
    inner: [std::ops::Range<usize>; 2],
    outer: [std::ops::Range<usize>; 2],
) -> (f64, f64) {
    let w = map.shape[map.shape.len() - 1];
    let (mut fg, mut bg) = ((0.0, 0usize), (0.0, 0usize));
    for (i, &p) in map.data.iter().enumerate() {
        let (y, x) = (i / w, i % w);
        if inner[0].contains(&y) && inner[1].contains(&x) {
            fg = (fg.0 + p as f64, fg.1 + 1);
        } else if !(outer[0].contains(&y) && outer[1].contains(&x)) {
            bg = (bg.0 + p as f64, bg.1 + 1);
        }
    }
    (fg.0 / fg.1.max(1) as f64, bg.0 / bg.1.max(1) as f64)
}

/// Panics unless every name in `entries` is an entry point of `kernel` (variant enums name entry
/// points as string literals; this keeps them honest without a device).
pub fn assert_entry_points(kernel: &crate::gpu::Kernel, entries: &[&str]) {
    let eps = kernel.entry_points().unwrap_or_else(|e| panic!("kernel module '{}': {e}", kernel.name));
    for e in entries {
        assert!(eps.iter().any(|(name, _)| name == e), "kernel module '{}' has no entry point '{e}'", kernel.name);
    }
}
