//! The one thread that owns the GPU: it opens the device and plans the model once, then runs the
//! jobs of a bounded queue one after the other. Requests are admitted by a semaphore of the
//! queue's size (taken before the body is read, so bodies in memory are bounded too); a full queue
//! is refused at once. A job whose request gave up (timed out, client gone) is dropped unrun. A
//! failing or panicking image is answered with its error and the worker goes on.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::metrics::Metrics;
use crate::error::{Error, ErrorKind, Result};

/// The probability map at the image's size, row-major `height x width`.
#[derive(Clone, Debug)]
pub struct ProbMap {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

/// How a request wants the probability map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbForm {
    /// 8-bit gray PNG, `round(255 p)` (as `infer`'s S.prob.png).
    Png,
    /// The FP32 values.
    Fp32,
}

/// What the engine says about one image.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The report, as `infer` writes it in S.json (docs/report.md).
    pub report: serde_json::Value,
    pub prob: Option<ProbMap>,
    /// The map as a PNG, when asked for (encoded on the worker).
    pub prob_png: Option<Vec<u8>>,
    /// GPU seconds spent on it.
    pub gpu_s: f64,
}

/// The served model, as `GET /v2/models/{name}` describes it.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub name: String,
    /// The weights' sha256 (the model's version), none for training-free models.
    pub version: Option<String>,
    /// The adapter it runs on.
    pub adapter: String,
}

/// Whatever analyses images: the planned model on the GPU (`cli::serve`), or a stand-in in tests.
pub trait Engine {
    /// Analyse the encoded image `bytes`, named `name` in the report; the map when `prob`.
    fn infer(&mut self, bytes: &[u8], name: &str, prob: bool) -> Result<Answer>;
    /// Whether it can still answer: false once its device is lost, for good.
    fn healthy(&self) -> bool {
        true
    }
}

/// One admitted request.
pub struct Job {
    pub bytes: Vec<u8>,
    pub name: String,
    pub prob: Option<ProbForm>,
    pub reply: oneshot::Sender<Result<Answer>>,
    /// Held until the job is done or dropped: the queue's bound.
    pub permit: OwnedSemaphorePermit,
}

/// The HTTP side's end of the queue.
#[derive(Clone)]
pub struct Queue {
    tx: SyncSender<Job>,
    permits: Arc<Semaphore>,
    pub capacity: usize,
    metrics: Arc<Metrics>,
}

impl Queue {
    /// A place in the queue, or `None` when it is full.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    /// Hand a job to the worker; `Err` when the worker is gone.
    pub fn send(&self, job: Job) -> Result<()> {
        self.metrics.queued.fetch_add(1, Ordering::Relaxed);
        self.tx.try_send(job).map_err(|_| {
            self.metrics.queued.fetch_sub(1, Ordering::Relaxed);
            Error::new(ErrorKind::Gpu, "the GPU worker is not running")
        })
    }
}

/// The worker's end: handed to the function that opens the engine, which calls [`Jobs::serve`].
pub struct Jobs {
    rx: Receiver<Job>,
    ready: std::sync::mpsc::Sender<Result<ModelInfo>>,
    metrics: Arc<Metrics>,
}

impl Jobs {
    /// Say the model is ready, then run jobs until every [`Queue`] is dropped.
    pub fn serve(self, info: ModelInfo, engine: &mut dyn Engine) {
        let _ = self.ready.send(Ok(info));
        let m = &self.metrics;
        for job in self.rx.iter() {
            m.queued.fetch_sub(1, Ordering::Relaxed);
            if job.reply.is_closed() {
                continue; // the request gave up while queued
            }
            let t = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| {
                let mut a = engine.infer(&job.bytes, &job.name, job.prob.is_some())?;
                if job.prob == Some(ProbForm::Png) {
                    if let Some(p) = a.prob.take() {
                        let bytes = p.data.iter().map(|&v| crate::imageio::unit_to_u8(v)).collect();
                        a.prob_png = Some(crate::report::png_gray8(p.width, p.height, bytes)?);
                    }
                }
                Ok(a)
            }))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(Error::new(ErrorKind::Gpu, format!("internal error (the engine panicked: {what})")))
            });
            m.worker_us.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
            match &result {
                Ok(a) => {
                    m.images.fetch_add(1, Ordering::Relaxed);
                    m.gpu_us.fetch_add((a.gpu_s * 1e6) as u64, Ordering::Relaxed);
                }
                Err(_) => {
                    m.image_errors.fetch_add(1, Ordering::Relaxed);
                    if !engine.healthy() && !m.broken.swap(true, Ordering::SeqCst) {
                        eprintln!(
                            "wgpu-forge: the GPU device was lost; /v2/health/live and /ready now answer 503 so that \
                             the orchestrator restarts this server"
                        );
                    }
                }
            }
            // The place in the queue is free before the client hears back, so its next request
            // finds it free.
            drop(job.permit);
            let _ = job.reply.send(result);
        }
    }
}

/// Start the worker thread: `open` opens the device and the model and calls [`Jobs::serve`].
/// Returns once the model is ready (or with `open`'s error), with the queue and the thread.
pub fn spawn<F>(
    capacity: usize,
    metrics: Arc<Metrics>,
    open: F,
) -> Result<(Queue, ModelInfo, std::thread::JoinHandle<()>)>
where
    F: FnOnce(Jobs) -> Result<()> + Send + 'static,
{
    let capacity = capacity.max(1);
    let (tx, rx) = sync_channel(capacity);
    let (ready, ready_rx) = std::sync::mpsc::channel();
    let jobs = Jobs { rx, ready: ready.clone(), metrics: metrics.clone() };
    let thread = std::thread::Builder::new()
        .name("forge-gpu".into())
        .spawn(move || {
            if let Err(e) = catch_unwind(AssertUnwindSafe(|| open(jobs)))
                .unwrap_or_else(|_| Err(Error::new(ErrorKind::Gpu, "internal error: opening the model panicked")))
            {
                let _ = ready.send(Err(e));
            }
        })
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start the GPU worker thread: {e}")))?;
    let info = match ready_rx.recv() {
        Ok(r) => r?,
        Err(_) => return Err(Error::new(ErrorKind::Gpu, "the GPU worker ended before the model was ready")),
    };
    let queue = Queue { tx, permits: Arc::new(Semaphore::new(capacity)), capacity, metrics };
    Ok((queue, info, thread))
}
