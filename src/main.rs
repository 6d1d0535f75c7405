//! `wgpu-forge`: argument parsing only; each command lives in `cli/`.

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
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let result = match &args.command {
        Command::Info => cli::info::run(&args.device),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wgpu-forge: error: {e}");
            ExitCode::from(1)
        }
    }
}
