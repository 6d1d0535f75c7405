//! `wgpu-forge serve`: the model behind the Open Inference Protocol v2 over HTTP (src/serve/,
//! docs/deploy.md). The model is opened exactly as `infer` opens it ([`open_detector`]) and
//! planned once, on the one worker thread that owns the device; each request's report is the
//! one `infer` writes ([`report_only`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cli::infer::{open_detector, parse_settings, report_only, Context, InferArgs};
use crate::cli::DeviceArgs;
use crate::error::{Error, Result};
use crate::imageio::{decode_image, LoadOptions};
use crate::pipeline::Detector;
use crate::serve::worker::{Answer, Engine, ModelInfo, ProbMap};
use crate::serve::Config;

/// Options of `serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed on start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Converted weights, as for `infer` (default: FORGE_WEIGHTS, else the shipped model).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Model by name, as for `infer`; it is also the model's name in the URL.
    #[arg(long)]
    pub model: Option<String>,
    /// A setting of the model over its default (repeatable), as for `infer`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Mask threshold for the reported regions, as for `infer`.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Run the model on native-resolution tiles, as `infer --tile`.
    #[arg(long)]
    pub tile: bool,
    /// Requests admitted at once (waiting, being read, or on the GPU); more are answered 503.
    #[arg(long, default_value_t = 16)]
    pub queue: usize,
    /// Largest request body, in MiB; larger ones are answered 413.
    #[arg(long, default_value_t = 32)]
    pub max_body_mb: usize,
    /// Refuse images with more pixels than this (as `infer --max-pixels`); default: what memory
    /// allows, at most 100000000.
    #[arg(long, value_name = "PIXELS")]
    pub max_pixels: Option<u64>,
    /// Seconds from a request's arrival to its answer before it is given up (504).
    #[arg(long, default_value_t = 60.0)]
    pub timeout_s: f64,
}

/// The planned model on the device, answering one image at a time.
struct Forge<'g> {
    engine: crate::graph::exec::Engine<'g>,
    det: Detector<'g>,
    args: InferArgs,
    load: LoadOptions,
}

impl Engine for Forge<'_> {
    fn infer(&mut self, bytes: &[u8], name: &str, prob: bool) -> Result<Answer> {
        let t = Instant::now();
        let decoded = decode_image(bytes, &self.load)?;
        let decode_s = t.elapsed().as_secs_f64();
        let mut d = self.det.detect_with(&decoded.image, self.args.tile.then_some(self.args.tile_overlap))?;
        d.timings.decode_s = decode_s;
        let ctx = Context::new(&self.args, self.engine);
        let report = report_only(&self.det, &decoded.image, &d, name, &ctx, &decoded.notes)?;
        let gpu_s = d.timings.gpu_s;
        let prob = prob.then(|| ProbMap { width: d.width, height: d.height, data: d.prob });
        Ok(Answer { report, prob, prob_png: None, gpu_s })
    }

    fn healthy(&self) -> bool {
        match self.engine {
            crate::graph::exec::Engine::Gpu(gpu) => !gpu.is_lost(),
            crate::graph::exec::Engine::Cpu => true,
        }
    }
}

/// Run the server until SIGTERM or Ctrl-C; returns 0 after a graceful shutdown.
pub fn run(dev: &DeviceArgs, args: &ServeArgs) -> Result<usize> {
    if !(0.0..1.0).contains(&args.threshold) {
        return Err(Error::invalid(format!("--threshold {} must be in [0, 1)", args.threshold)));
    }
    if !(args.timeout_s > 0.0 && args.timeout_s.is_finite()) || args.queue == 0 || args.max_body_mb == 0 {
        return Err(Error::invalid("--timeout-s, --queue and --max-body-mb must be positive"));
    }
    let settings = parse_settings(&args.set)?;
    let mut report_args = InferArgs::defaults();
    report_args.threshold = args.threshold;
    report_args.tile = args.tile;
    let load = LoadOptions {
        max_pixels: args.max_pixels.unwrap_or_else(crate::imageio::default_max_pixels),
        apply_exif_orientation: true, // as `infer`: photos the way viewers show them
        allow_truncated: false,
    };
    let (dev, a) = (dev.clone(), args.clone());
    let open = move |jobs: crate::serve::worker::Jobs| -> Result<()> {
        let t = Instant::now();
        let backend = dev.backend()?;
        let engine = backend.engine();
        let det = open_detector(engine, a.weights.as_deref(), a.model.as_deref(), &settings)?;
        if a.tile {
            det.check_tile_overlap(report_args.tile_overlap)?;
        }
        let info = ModelInfo {
            name: det.name().to_string(),
            version: det.weights.sha256.clone(),
            adapter: engine.device_name(),
        };
        eprintln!("wgpu-forge: {} on {}: planned in {:.1} s", info.name, info.adapter, t.elapsed().as_secs_f64());
        let mut forge = Forge { engine, det, args: report_args, load };
        jobs.serve(info, &mut forge);
        Ok(())
    };
    let cfg = Config {
        addr: args.addr.clone(),
        queue: args.queue,
        max_body: args.max_body_mb << 20,
        timeout: Duration::from_secs_f64(args.timeout_s),
        signals: true,
    };
    let server = crate::serve::start(cfg, open)?;
    // Tests and scripts read the address from this line (with port 0 it is the one chosen).
    eprintln!(
        "wgpu-forge: serving '{}' on http://{}/v2/models/{}/infer",
        server.model.name, server.addr, server.model.name
    );
    server.wait()?;
    eprintln!("wgpu-forge: stopped");
    Ok(0)
}
