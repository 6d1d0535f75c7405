//! Several images per engine submission ([`Detector::detect_batch`]). Images whose model input
//! has the same size (any image for a fixed-input model, images of one size for a native one)
//! run together through the plan for that size ([`crate::graph::Executor::run_batch`]: one
//! submission on the GPU), and each gets the detection [`Detector::detect`] gives it alone: the
//! kernels still run one image at a time, so the outputs are the same, bit for bit. Preparing,
//! checking and finishing stay per image, so a bad image fails alone.

use std::time::Instant;

use super::{Detection, Detector, Prepared, Timings};
use crate::error::{Error, Result};
use crate::imageio::RgbImage;

/// The most bytes of model inputs and outputs one batch may hold (each image's are
/// [`crate::graph::Graph::io_bytes`]): the batch's upload and read-back buffers on the device,
/// and the tensors on the host. Bounds `--batch` on large native-size images.
pub const BATCH_IO_BUDGET_BYTES: u64 = 512 << 20;

impl<'g> Detector<'g> {
    /// How many images with model input `hw` one submission takes, at most `want`: as many as
    /// keep the batch's inputs and outputs under [`BATCH_IO_BUDGET_BYTES`], at least one. Plans
    /// for `hw` if the detector has no plan for it.
    pub fn batch_cap(&mut self, hw: [usize; 2], want: usize) -> Result<usize> {
        self.plan_for(hw)?;
        let fit = (BATCH_IO_BUDGET_BYTES / self.plan_io_bytes.max(1)).max(1);
        Ok(want.clamp(1, usize::try_from(fit).unwrap_or(usize::MAX)))
    }

    /// Run the model on each image; images with the same model input size go through the engine
    /// together, up to `max` per submission (fewer where [`Detector::batch_cap`] says so). One
    /// result per image, in order, each what [`Detector::detect`] gives for the image alone
    /// (its engine time is the submission's shared equally). An image that cannot be prepared
    /// or whose outputs are not finite fails alone; if a submission fails as a whole, its images
    /// are run one by one, so that one image's failure stays its own.
    pub fn detect_batch(&mut self, imgs: &[&RgbImage], max: usize) -> Vec<Result<Detection>> {
        if max <= 1 || imgs.len() <= 1 {
            return imgs.iter().map(|img| self.detect(img)).collect();
        }
        let mut results: Vec<Option<Result<Detection>>> = imgs.iter().map(|_| None).collect();
        let mut ready: Vec<(usize, Prepared)> = Vec::new();
        for (i, img) in imgs.iter().enumerate() {
            match self.prepare(img) {
                Ok(p) => ready.push((i, p)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        // Sizes in order of first appearance, so a native model re-plans as little as it can.
        let mut sizes: Vec<[usize; 2]> = Vec::new();
        for (_, p) in &ready {
            if !sizes.contains(&p.hw) {
                sizes.push(p.hw);
            }
        }
        for hw in sizes {
            let (group, rest): (Vec<_>, Vec<_>) = ready.into_iter().partition(|(_, p)| p.hw == hw);
            ready = rest;
            let cap = match self.batch_cap(hw, max) {
                Ok(c) => c,
                Err(e) => {
                    for (i, _) in group {
                        results[i] = Some(Err(e.clone()));
                    }
                    continue;
                }
            };
            let mut group = group.into_iter().peekable();
            while group.peek().is_some() {
                let chunk: Vec<(usize, Prepared)> = group.by_ref().take(cap).collect();
                for (i, r) in self.run_chunk(imgs, hw, chunk) {
                    results[i] = Some(r);
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::invalid("image not run (internal error)"))))
            .collect()
    }

    /// One submission of prepared images of model input `hw`; `(index, result)` per image.
    fn run_chunk(
        &mut self,
        imgs: &[&RgbImage],
        hw: [usize; 2],
        chunk: Vec<(usize, Prepared)>,
    ) -> Vec<(usize, Result<Detection>)> {
        if chunk.len() == 1 {
            return chunk.into_iter().map(|(i, p)| (i, self.run_prepared(imgs[i], p))).collect();
        }
        let t = Instant::now();
        let outs = {
            let items: Vec<Vec<(&str, &crate::tensor::Tensor)>> = chunk.iter().map(|(_, p)| p.named()).collect();
            self.plan_for(hw).and_then(|plan| plan.run_batch(&items))
        };
        let Ok(outs) = outs else {
            return chunk.into_iter().map(|(i, p)| (i, self.run_prepared(imgs[i], p))).collect();
        };
        let share = t.elapsed().as_secs_f64() / chunk.len() as f64;
        chunk
            .into_iter()
            .zip(outs)
            .map(|((i, p), out)| {
                let timings = Timings { preprocess_s: p.preprocess_s, gpu_s: p.side_s + share, ..Default::default() };
                let r = self
                    .check_finite(hw, &p.named(), &out)
                    .and_then(|_| self.finish_detection(imgs[i], hw, out, timings));
                (i, r)
            })
            .collect()
    }
}
