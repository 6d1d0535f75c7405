//! Running a plan on several inputs in one submission: each item's inputs are copied from one
//! upload buffer into the plan's input buffers, the whole graph is recorded after each copy, and
//! each item's outputs are copied into its own part of one read-back buffer; one submit, one wait.
//! The kernels still see one item at a time (the plan is the batch-1 plan, its buffers reused
//! item after item), so every item's outputs are those of [`Plan::run`] on it alone, and the
//! plan's memory does not grow with the batch: only the upload and read-back buffers do.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::graph::plan::Plan;
use crate::tensor::Tensor;

impl<'g> Plan<'g> {
    /// Run once per item, all items in one submission; returns each item's outputs by name, in
    /// order. Items whose upload or read-back would pass the device's buffer size limit are run
    /// in several submissions.
    pub fn run_batch(&self, items: &[Vec<(&str, &Tensor)>]) -> Result<Vec<HashMap<String, Tensor>>> {
        let in_bytes: u64 = self.inputs.iter().map(|s| s.view.bytes()).sum();
        let out_bytes: u64 = self.outputs.iter().map(|o| o.view.bytes()).sum();
        let per = in_bytes.max(out_bytes).max(4);
        let fit = (self.gpu.limits.max_buffer_size / per).max(1) as usize;
        let mut all = Vec::with_capacity(items.len());
        for part in items.chunks(fit) {
            all.extend(self.run_one_submission(part, in_bytes, out_bytes)?);
        }
        Ok(all)
    }

    fn run_one_submission(
        &self,
        items: &[Vec<(&str, &Tensor)>],
        in_bytes: u64,
        out_bytes: u64,
    ) -> Result<Vec<HashMap<String, Tensor>>> {
        let gpu = self.gpu;
        let n = items.len() as u64;
        // Check every item before anything is recorded: a bad item fails the call, not the device.
        let mut data: Vec<f32> = Vec::with_capacity((n * in_bytes / 4) as usize);
        for item in items {
            for t in self.slot_tensors(item)? {
                data.extend_from_slice(&t.data);
            }
        }
        let readback = gpu.scoped("running a batch", || {
            let upload = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("batch inputs"),
                size: (n * in_bytes).max(4),
                usage: wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: true,
            });
            {
                let mut view = upload
                    .slice(..)
                    .get_mapped_range_mut()
                    .map_err(|e| Error::gpu(format!("mapping a batch's inputs: {e}")))?;
                view.slice(..data.len() * 4).copy_from_slice(bytemuck::cast_slice(&data));
            }
            upload.unmap();
            let readback = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("batch outputs"),
                size: (n * out_bytes).max(4),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("batch") });
            let (mut src, mut dst) = (0u64, 0u64);
            for _ in items {
                for slot in &self.inputs {
                    enc.copy_buffer_to_buffer(&upload, src, &slot.view.buffer, slot.view.offset, slot.view.bytes());
                    src += slot.view.bytes();
                }
                self.encode(&mut enc, None);
                for o in &self.outputs {
                    enc.copy_buffer_to_buffer(&o.view.buffer, o.view.offset, &readback, dst, o.view.bytes());
                    dst += o.view.bytes();
                }
            }
            gpu.queue.submit([enc.finish()]);
            Ok(readback)
        })?;
        let mapped = std::sync::Arc::new(std::sync::Mutex::new(None));
        let m = mapped.clone();
        readback.slice(..).map_async(wgpu::MapMode::Read, move |r| *m.lock().unwrap() = Some(r.is_ok()));
        gpu.wait("running a batch")?;
        // Another thread's poll may run our callback a moment after our wait returned (as in run).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            match *mapped.lock().unwrap() {
                Some(true) => break,
                Some(false) => return Err(Error::gpu("reading a batch's results back from the GPU failed")),
                None if std::time::Instant::now() > deadline => {
                    return Err(Error::gpu("reading a batch's results back from the GPU timed out"))
                }
                None => {}
            }
            gpu.device.poll(wgpu::PollType::Poll).map_err(|e| Error::gpu(format!("polling the GPU: {e}")))?;
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let mut out = Vec::with_capacity(items.len());
        {
            let view =
                readback.slice(..).get_mapped_range().map_err(|e| Error::gpu(format!("mapping a batch: {e}")))?;
            let all: &[f32] = bytemuck::cast_slice(&view[..(n * out_bytes) as usize]);
            let mut at = 0usize;
            for _ in items {
                let mut one = HashMap::new();
                for o in &self.outputs {
                    let len = (o.view.bytes() / 4) as usize;
                    one.insert(o.name.clone(), Tensor::new(&o.view.shape, all[at..at + len].to_vec())?);
                    at += len;
                }
                out.push(one);
            }
        }
        readback.unmap();
        Ok(out)
    }
}
