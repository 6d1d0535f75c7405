//! `wgpu-forge`: argument parsing only; each command lives in `cli/`.

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
    /// List adapters, the one chosen and why, its features and limits.
    Info,
    /// Time the kernels at model shapes (GPU time from timestamps, GFLOP/s, GB/s).
    Bench {
        /// Only cases whose family or name contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Timed runs per case (the median is shown).
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Convert a PyTorch checkpoint (or safetensors file) to a checked safetensors file.
    Convert {
        /// Source: torch.save zip (.pth/.pt) or .safetensors.
        src: PathBuf,
        /// Destination .safetensors file (written atomically).
        dst: PathBuf,
        /// Architecture (default: detected from the key names).
        #[arg(long, value_parser = ["mesorch", "mesorch-p"])]
        arch: Option<String>,
        /// Element type to write.
        #[arg(long, default_value = "f32", value_parser = ["f32", "f16"])]
        dtype: String,
    },
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let result = match &args.command {
        Command::Info => cli::info::run(&args.device),
        Command::Bench { filter, reps } => cli::bench::run(&args.device, filter.as_deref(), *reps),
        Command::Convert { src, dst, arch, dtype } => cli::convert::run(src, dst, arch.as_deref(), dtype),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wgpu-forge: error: {e}");
            ExitCode::from(1)
        }
    }
}
