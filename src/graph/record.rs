//! Recording a plan's steps into a command encoder: compute dispatches in passes, split around
//! the copies between them. Every way of running a plan (whole, timed, node by node) records
//! through here.

use crate::ops::{Dispatch, Work};

/// Record `steps` into `enc`. With `stamps` = (query set, index), the first pass writes timestamp
/// `index` at its beginning and the last writes `index + 1` at its end (a step list that begins or
/// ends with a copy gets an empty pass there, so the copy falls inside the timed span).
pub(crate) fn record(
    enc: &mut wgpu::CommandEncoder,
    steps: &[Dispatch],
    label: &str,
    stamps: Option<(&wgpu::QuerySet, u32)>,
) {
    let segments: Vec<&[Dispatch]> = steps.split(|d| matches!(d.work, Work::CopyToTexture(_))).collect();
    let mut copies = steps.iter().filter_map(|d| match &d.work {
        Work::CopyToTexture(c) => Some(c),
        Work::Compute { .. } => None,
    });
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            copies.next().expect("one copy between segments").record(enc);
        }
        let timestamp_writes = stamps.and_then(|(query_set, index)| {
            let (begin, end) = ((i == 0).then_some(index), (i == last).then_some(index + 1));
            (begin.is_some() || end.is_some()).then_some(wgpu::ComputePassTimestampWrites {
                query_set,
                beginning_of_pass_write_index: begin,
                end_of_pass_write_index: end,
            })
        });
        if segment.is_empty() && timestamp_writes.is_none() {
            continue;
        }
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes });
        for d in segment.iter() {
            if let Work::Compute { pipeline, bind_group, workgroups } = &d.work {
                pass.set_pipeline(&pipeline.pipeline);
                pass.set_bind_group(0, bind_group, &[]);
                pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
            }
        }
    }
}

/// The steps of each node that records any, in plan order: (node index, its steps).
pub(crate) fn by_node(steps: &[Dispatch]) -> impl Iterator<Item = (usize, &[Dispatch])> {
    steps.chunk_by(|a, b| a.node == b.node).map(|chunk| (chunk[0].node, chunk))
}
