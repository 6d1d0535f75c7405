//! `wgpu-forge`: argument parsing only; each command lives in `cli/`.
//!
//! Exit codes: 0 everything done; 1 an error, or some inputs of a batch failed (each named on
//! stderr); 2 a usage error (from clap).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wgpu_forge::cli::{self, DeviceArgs};

#[derive(Parser)]
#[command(name = "wgpu-forge", version, about = "Image-forgery detection and localization on any GPU")]
struct Cli {
    #[command(flatten)]
    device: DeviceArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tamper-probability maps and masks for images.
    Infer(cli::infer::InferArgs),
    /// Localization metrics against ground-truth masks, and robustness to perturbations.
    Eval(cli::eval::EvalArgs),
    /// Serve the model over HTTP, Open Inference Protocol v2 (KServe v2 REST): POST
    /// /v2/models/NAME/infer; /v2/health/live, /v2/health/ready, /metrics (docs/deploy.md).
    Serve(cli::serve::ServeArgs),
    /// List adapters, the one chosen and why, its features and limits.
    Info,
    /// Time the kernels at model shapes (GPU time from timestamps, GFLOP/s, GB/s), or profile a
    /// whole model (--model / --weights): time, FLOPs and bytes per op family and per node.
    Bench {
        /// Only cases whose family or name contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Timed runs per case (the median is shown).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Profile this model (a training-free one by name, or the arch of --weights).
        #[arg(long)]
        model: Option<String>,
        /// Profile the model of these converted weights.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Input size HxW (a native-resolution model needs one; default 512x512 for those).
        #[arg(long)]
        size: Option<String>,
        /// The device's peak GFLOP/s and GB/s for the roofline shares, e.g. 25,60 (default: the
        /// best rates `bench` measures on its GEMM and copy cases).
        #[arg(long)]
        peak: Option<String>,
        /// How many of the slowest nodes to list.
        #[arg(long, default_value_t = 12)]
        top: usize,
    },
    /// Convert a PyTorch checkpoint (or safetensors file) to a checked safetensors file.
    Convert {
        /// Source: torch.save zip (.pth/.pt) or .safetensors.
        src: PathBuf,
        /// Destination .safetensors file (written atomically).
        dst: PathBuf,
        /// The model the weights are for (default: recognised from the key names; `wgpu-forge
        /// info` lists the models).
        #[arg(long)]
        arch: Option<String>,
        /// Element type to write.
        #[arg(long, default_value = "f32", value_parser = ["f32", "f16"])]
        dtype: String,
        /// Write tensors holding NaN or infinite values (refused by default: they give NaN maps).
        #[arg(long)]
        allow_nonfinite: bool,
    },
}

/// A reader that stops early (`wgpu-forge info | head`) closes our stdout; Rust ignores SIGPIPE
/// and `println!` then panics. Restore the default action so the process ends quietly, as other
/// Unix tools do. Not for `serve`, whose sockets must survive a client that hangs up (they write
/// with MSG_NOSIGNAL anyway, but the server has no stdout to protect).
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called once at startup before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let args = Cli::parse();
    if !matches!(args.command, Command::Serve(_)) {
        quiet_on_closed_pipe();
    }
    let result = match &args.command {
        Command::Infer(a) => cli::infer::run(&args.device, a),
        Command::Eval(a) => cli::eval::run(&args.device, a),
        Command::Serve(a) => cli::serve::run(&args.device, a),
        Command::Info => cli::info::run(&args.device).map(|_| 0),
        Command::Bench { filter, reps, model, weights, size, peak, top } => {
            if model.is_some() || weights.is_some() {
                let opts = cli::bench::ModelBench {
                    model: model.as_deref(),
                    weights: weights.as_deref(),
                    size: size.as_deref(),
                    peak: peak.as_deref(),
                    reps: *reps,
                    top: *top,
                };
                cli::bench::run_model(&args.device, &opts).map(|_| 0)
            } else {
                cli::bench::run(&args.device, filter.as_deref(), *reps).map(|_| 0)
            }
        }
        Command::Convert { src, dst, arch, dtype, allow_nonfinite } => {
            cli::convert::run(src, dst, arch.as_deref(), dtype, *allow_nonfinite).map(|_| 0)
        }
    };
    match result {
        Ok(0) => ExitCode::SUCCESS,
        // Some inputs of a batch failed; each was named on stderr, and the count.
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("wgpu-forge: error: {e}");
            ExitCode::from(1)
        }
    }
}
