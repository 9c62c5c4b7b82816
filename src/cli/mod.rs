//! The command line: one file per subcommand, no algorithm code.

mod align;
mod analyze;
mod bench;
mod eval;
mod info;
mod init;
mod merge;
mod paths;
mod ranges;
mod reproduce;
mod toy;
mod train;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use crate::backend::{Device, DeviceChoice};
use crate::data::{bundled_dir, load_split, Dataset, Split};
use crate::ops::Act;

#[derive(Parser)]
#[command(
    name = "losscape",
    version,
    about = "Batched GPU study of how optimizers shape neural-network loss landscapes (Yu & Morozov)",
    after_help = "Example:\n  losscape info\n  losscape init --model fcp --seed 0 --count 4 --out fcp.safetensors\n  losscape eval --model fcp --weights fcp.safetensors --split test"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Info(info::InfoArgs),
    Init(init::InitArgs),
    Eval(eval::EvalArgs),
    Bench(bench::BenchArgs),
    Paths(paths::PathsArgs),
    Align(align::AlignArgs),
    Merge(merge::MergeArgs),
    Toy(toy::ToyArgs),
    Train(train::TrainArgs),
    Analyze(analyze::AnalyzeArgs),
    Reproduce(reproduce::ReproduceArgs),
}

/// Which device runs the work.
#[derive(Args, Clone, Debug, Default)]
pub struct DeviceArgs {
    /// cpu (the native CPU backend), auto (a real GPU when present, else cpu), or GPU backends: vulkan,
    /// metal, dx12 (comma separated). Default: LOSSCAPE_BACKEND, else WGPU_BACKEND, else auto.
    #[arg(long, global = true)]
    pub backend: Option<String>,
    /// GPU adapter number from `losscape info`, or part of its name. Default: WGPU_ADAPTER_NAME, else the
    /// fastest kind present (discrete > integrated > software).
    #[arg(long, global = true)]
    pub adapter: Option<String>,
}

impl DeviceArgs {
    pub fn choice(&self) -> DeviceChoice {
        DeviceChoice { backend: self.backend.clone(), adapter: self.adapter.clone() }
    }
    pub fn open(&self) -> Result<Device> {
        Device::open(&self.choice())
    }
}

/// Where the MNIST files are.
#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// Directory with the four MNIST IDX files (.gz or raw). Default: the bundled copy.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

impl DataArgs {
    pub fn load(&self, split: Split) -> Result<Dataset> {
        load_split(&self.data.clone().unwrap_or_else(bundled_dir), split)
    }
}

/// Activation of the FCP and LeNet (SPEC §10 #1).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub enum Activation {
    /// The authors' code and published weights.
    #[default]
    Softplus,
    /// The paper's text.
    Relu,
}

impl Activation {
    pub fn act(self) -> Act {
        match self {
            Activation::Softplus => Act::Softplus,
            Activation::Relu => Act::Relu,
        }
    }
}

/// Parses the command line and runs the subcommand.
pub fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Info(a) => info::run(a),
        Command::Init(a) => init::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Paths(a) => paths::run(a),
        Command::Align(a) => align::run(a),
        Command::Merge(a) => merge::run(a),
        Command::Toy(a) => toy::run(a),
        Command::Train(a) => train::run(a),
        Command::Analyze(a) => analyze::run(a),
        Command::Reproduce(a) => reproduce::run(a),
    }
}
