//! The command line: one file per subcommand, no algorithm code.

/// `println!` for the subcommands' results: writes one line to standard output and returns a
/// `Result`, so that a closed pipe (`losscape … | head -1`) ends the command quietly ([`StdoutClosed`])
/// instead of a panic.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::write_stdout(format_args!($($arg)*)) };
}

mod align;
mod analyze;
mod bench;
mod eval;
mod export;
mod hessian;
mod import;
mod info;
mod init;
mod memory;
mod merge;
pub mod panic;
mod paths;
mod plan;
mod progress;
mod ranges;
mod reproduce;
mod stack;
mod surface;
mod toy;
mod train;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use crate::backend::{Device, DeviceChoice};
use crate::data::{load_split, locate, Dataset, Split};
use crate::model::Arch;
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
    /// When another process is writing the output directory, wait until it has finished (then
    /// resume from what it wrote) instead of exiting with status 1.
    #[arg(long, global = true)]
    wait: bool,
    /// The loss head of an ONNX model whose graph ends in logits (--model net.onnx, or import)
    /// [default: the head the model records, else cross-entropy].
    #[arg(long, global = true, value_enum)]
    loss: Option<LossArg>,
}

/// The loss head on an ONNX model's output (`--loss`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossArg {
    /// Softmax cross-entropy over the outputs (a classifier's logits; a trailing LogSoftmax is dropped).
    CrossEntropy,
    /// Sigmoid then mean squared error against the input image (an autoencoder; a trailing Sigmoid is
    /// the head's).
    MseSigmoid,
}

impl LossArg {
    pub fn loss(self) -> crate::model::onnx::Loss {
        match self {
            LossArg::CrossEntropy => crate::model::onnx::Loss::CrossEntropy,
            LossArg::MseSigmoid => crate::model::onnx::Loss::SigmoidMse,
        }
    }
}

/// The `--loss` of the command line, read before clap parses it: clap runs `--model`'s value parser
/// ([`model_arg`]) as it meets the option, possibly before a `--loss` written after it, and the parser
/// needs the head to import an ONNX model. Unset when the library is used without [`main`].
static MODEL_LOSS: std::sync::OnceLock<Option<crate::model::onnx::Loss>> = std::sync::OnceLock::new();

/// Whether a `--model` took the `--loss` (so that a `--loss` no model took is refused).
static LOSS_TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The value of `--loss X` or `--loss=X` among `args` (before a `--`), if it is a valid one (an invalid
/// one is left to clap, which reports it).
fn loss_in(args: &[std::ffi::OsString]) -> Option<crate::model::onnx::Loss> {
    use clap::ValueEnum;
    let args: Vec<&str> = args.iter().map_while(|a| a.to_str()).take_while(|a| *a != "--").collect();
    let value = args.iter().enumerate().find_map(|(i, a)| match a.strip_prefix("--loss") {
        Some("") => args.get(i + 1).copied(),
        Some(v) => v.strip_prefix('='),
        None => None,
    })?;
    LossArg::from_str(value, false).ok().map(LossArg::loss)
}

#[derive(Subcommand)]
enum Command {
    Info(info::InfoArgs),
    Init(init::InitArgs),
    Eval(eval::EvalArgs),
    Bench(bench::BenchArgs),
    Paths(paths::PathsArgs),
    Plan(plan::PlanArgs),
    Align(align::AlignArgs),
    Merge(merge::MergeArgs),
    Toy(toy::ToyArgs),
    Train(train::TrainArgs),
    Analyze(analyze::AnalyzeArgs),
    Reproduce(reproduce::ReproduceArgs),
    Surface(surface::SurfaceArgs),
    Hessian(hessian::HessianArgs),
    Import(import::ImportArgs),
    Export(export::ExportArgs),
    Stack(stack::StackArgs),
}

/// Which device runs the work.
#[derive(Args, Clone, Debug, Default)]
pub struct DeviceArgs {
    /// cpu (the native CPU backend), auto (a real GPU when present, else cpu), or GPU backends: vulkan,
    /// metal, dx12 (comma separated). Default: LOSSCAPE_BACKEND, else WGPU_BACKEND, else auto.
    #[arg(long, global = true, value_parser = parse_backend)]
    pub backend: Option<String>,
    /// GPU adapter number from `losscape info`, or part of its name. Default: WGPU_ADAPTER_NAME, else the
    /// fastest kind present (discrete > integrated > software).
    #[arg(long, global = true)]
    pub adapter: Option<String>,
    /// GPU memory the batched evaluations may use for their intermediate tensors, e.g. 40G or 512M
    /// (default: a quarter of a recognised GPU's memory, else from the adapter's limits, else 2G;
    /// `losscape info` shows it; more gives larger image chunks).
    #[arg(long, global = true, value_name = "BYTES", value_parser = parse_bytes)]
    pub gpu_memory: Option<u64>,
}

/// A `--backend` value: `cpu`, `auto`, or GPU backends by wgpu's names, comma separated (checked here so
/// that a typo is a usage error before anything runs; the environment variables are checked when the
/// device opens).
pub fn parse_backend(text: &str) -> std::result::Result<String, String> {
    const GPU: [&str; 8] = ["vulkan", "vk", "metal", "mtl", "dx12", "d3d12", "primary", "all"];
    let lower = text.trim().to_ascii_lowercase();
    if lower == "cpu" || lower == "auto" {
        return Ok(lower);
    }
    match lower.split(',').map(str::trim).find(|part| !GPU.contains(part)) {
        Some(bad) => {
            Err(format!("unknown backend '{bad}': choose cpu, auto, or vulkan, metal, dx12 (comma separated)"))
        }
        None => Ok(lower),
    }
}

/// A byte count: a number with an optional K, M, G or T suffix (powers of 1024), at least 1M.
pub fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let (digits, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        Some('T') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let value: f64 =
        digits.parse().map_err(|_| format!("'{text}' is not a size: write e.g. 40G, 512M or 1073741824"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !(bytes >= (1u64 << 20) as f64 && bytes < 2f64.powi(63)) {
        return Err(format!("'{text}': give at least 1M and less than 8E"));
    }
    Ok(bytes as u64)
}

impl DeviceArgs {
    pub fn choice(&self) -> DeviceChoice {
        DeviceChoice {
            backend: self.backend.clone(),
            adapter: self.adapter.clone(),
            gpu_memory: self.gpu_memory,
            subgroups: None,
        }
    }
    /// Opens the device, and records it as the one this process writes results with
    /// ([`crate::io::config::note_device`]).
    pub fn open(&self) -> Result<Device> {
        let device = Device::open(&self.choice())?;
        crate::io::config::note_device(device.provenance());
        Ok(device)
    }
}

/// The options shared by the commands that evaluate a network on MNIST and report progress: the
/// activation, the progress bar, the data and the device.
#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    /// Activation of the FCP and LeNet [default: softplus].
    #[arg(long, value_enum)]
    pub activation: Option<Activation>,
    /// No progress bar (and no memory estimate on stderr).
    #[arg(long)]
    pub quiet: bool,
    /// Host memory the run may take, e.g. 8G: a run whose estimated peak is larger is refused before
    /// it writes anything [default: LOSSCAPE_MEMORY_LIMIT, else auto: the memory available now, under
    /// the control group's limit where there is one; none: no check].
    #[arg(long, value_name = "BYTES|auto|none", value_parser = memory::parse_memory_limit)]
    pub memory_limit: Option<crate::backend::MemoryLimit>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl RunArgs {
    /// The activation of `arch` ([`activation_for`]).
    pub fn act(&self, subcommand: &str, arch: Arch) -> Result<Act> {
        activation_for(subcommand, arch, self.activation)
    }
}

/// Warns when the weights in `file` were trained (`train` records its configuration in the set) with
/// another activation than `act`, the one this command runs: FCP and LeNet sets of either activation
/// have the same tensors, so nothing else would tell (`--activation relu` forgotten on a ReLU set).
pub fn note_activation(stack: &crate::io::WeightStack, file: &std::path::Path, act: Act) {
    let Some(config) = stack.metadata.get("losscape.config").filter(|_| stack.arch.takes_activation()) else {
        return;
    };
    let trained = serde_json::from_str::<serde_json::Value>(config).ok().and_then(|c| {
        let name = c.get("activation")?.as_str()?.to_string();
        serde_json::from_value::<Act>(serde_json::Value::String(name.clone())).ok().map(|a| (a, name))
    });
    if let Some((_, name)) = trained.filter(|(a, _)| *a != act) {
        let ours = serde_json::to_value(act).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        eprintln!(
            "warning: {}: trained with the {name} activation, evaluated here with {ours}; give \
             --activation {name} to evaluate the network it was trained as",
            file.display()
        );
    }
}

/// The activation of `arch`: `--activation` for the FCP and LeNet (default softplus, the authors'),
/// the network's own for the LSTM and the autoencoder.
///
/// Errors: a usage error of `subcommand` when `--activation` is given for the LSTM or the autoencoder.
pub fn activation_for(subcommand: &str, arch: Arch, given: Option<Activation>) -> Result<Act> {
    let applies = arch.takes_activation();
    let why = format!("applies to the FCP and LeNet; the {} has its own activations", arch.title());
    ranges::not_applicable(subcommand, "--activation", !applies && given.is_some(), &why)?;
    Ok(given.unwrap_or_default().act())
}

/// Parses `--model`/`--models`: a paper network, a compact MLP, a description file or an ONNX model
/// with the head `--loss` chooses ([`Arch::parse_with`]); clap reports an error as a usage error (exit
/// status 2), `--loss` for a network whose head is fixed included.
pub fn model_arg(spec: &str) -> std::result::Result<Arch, String> {
    let loss = MODEL_LOSS.get().copied().flatten();
    let arch = Arch::parse_with(spec, loss).map_err(|e| format!("{e:#}"))?;
    if loss.is_some() {
        LOSS_TAKEN.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(arch)
}

/// The parser of `--preset` (`reproduce`, `plan`): one of [`crate::pipeline::PRESETS`], which the help
/// lists, each with what it is for; any other name is a usage error (exit status 2).
pub fn preset_arg() -> clap::builder::PossibleValuesParser {
    let values =
        crate::pipeline::PRESETS.iter().map(|&(name, about)| clap::builder::PossibleValue::new(name).help(about));
    clap::builder::PossibleValuesParser::new(values)
}

/// Where the data is.
#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// The dataset: a directory (MNIST's four IDX files, .gz or raw, as for MNIST, Fashion-MNIST, KMNIST
    /// and EMNIST; CIFAR-10's binary batches; or train.npz and test.npz) or a .npz file (x_train,
    /// y_train, x_test, y_test; or x, y: the training split). Default: LOSSCAPE_DATA, else mnist/ or
    /// assets/mnist/ beside the executable (or two levels up), else the source tree's assets/mnist/.
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
}

impl DataArgs {
    /// Loads `split` from the path the search order finds ([`crate::data::locate()`]).
    pub fn load(&self, split: Split) -> Result<Dataset> {
        load_split(&locate(self.data.as_deref())?.dir, split)
    }

    /// Loads `split` for the networks `models` of `subcommand`: data whose images or classes do not fit
    /// one of them is a usage error (exit status 2, [`check_data`]) before any work.
    pub fn load_for(&self, subcommand: &str, models: &[Arch], split: Split) -> Result<Dataset> {
        let data = self.load(split)?;
        for &arch in models {
            check_data(subcommand, arch, &data)?;
        }
        Ok(data)
    }

    /// The images of `landscape` for `arch` in `subcommand`: the first `train_size` training images
    /// (all when `None`), or the whole test split.
    ///
    /// Errors (usage errors, exit 2, before any work): `--train-size` with the test landscape, where it
    /// would be recorded and ignored; more images than the split holds; data `arch` cannot take.
    pub fn landscape(
        &self,
        subcommand: &str,
        arch: Arch,
        landscape: Split,
        train_size: Option<usize>,
    ) -> Result<Dataset> {
        let test = landscape == Split::Test;
        ranges::not_applicable(
            subcommand,
            "--train-size",
            test && train_size.is_some(),
            "applies to the train landscape",
        )?;
        ranges::first(subcommand, self.load_for(subcommand, &[arch], landscape)?, train_size, "--train-size")
    }
}

/// Refuses data that `arch` cannot take (another image shape, more classes than its outputs): a usage
/// error of `subcommand` naming the data file, its shape, the network and what it expects.
pub fn check_data(subcommand: &str, arch: Arch, data: &Dataset) -> Result<()> {
    crate::model::check_input(arch, data).map_err(|e| ranges::usage(subcommand, e))
}

/// Activation of the FCP and LeNet (docs/decisions.md #1).
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

/// The rows `vectors` names of `stack` (read from `file`), or all of them. An empty stack is an error
/// naming the file; a row past its end or named twice is a usage error of `subcommand` (exit 2, see
/// `ranges::usage`) naming `option` (`--vectors`, or export's `--vector`).
pub fn pick_vectors(
    (subcommand, option): (&str, &str),
    stack: &crate::io::WeightStack,
    vectors: Option<&[usize]>,
    file: &std::path::Path,
) -> Result<Vec<usize>> {
    if stack.count() == 0 {
        anyhow::bail!("{}: holds no weight vectors", file.display());
    }
    let rows: Vec<usize> = vectors.map_or_else(|| (0..stack.count()).collect(), <[usize]>::to_vec);
    if let Some(&bad) = rows.iter().find(|&&r| r >= stack.count()) {
        return Err(no_vector((subcommand, option), bad, file, stack.count()));
    }
    if let Some(k) = (1..rows.len()).find(|&k| rows[..k].contains(&rows[k])) {
        return Err(ranges::usage(
            subcommand,
            format!("{option} names vector {} twice; give each vector once", rows[k]),
        ));
    }
    Ok(rows)
}

/// The usage error (exit 2) of `subcommand` for `option` naming vector `index`, which `file` (holding
/// `count` vectors) does not have.
pub fn no_vector(
    (subcommand, option): (&str, &str),
    index: usize,
    file: &std::path::Path,
    count: usize,
) -> anyhow::Error {
    let held = if count == 0 { "no vectors".to_string() } else { format!("{count} (0 to {})", count - 1) };
    ranges::usage(subcommand, format!("{option}: there is no vector {index}; {} holds {held}", file.display()))
}

/// The reader of standard output went away (`losscape … | head -1`): not a failure of the command,
/// which ends quietly with exit status 0 (see [`is_stdout_closed`]).
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes `text` and a newline to standard output (what `outln!` expands to).
///
/// Errors: [`StdoutClosed`] when the reader closed the pipe; other write errors (a full disk under
/// `> file`) as they are.
pub fn write_stdout(text: std::fmt::Arguments) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        r => r.map_err(|e| anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

/// The exit status and message of a usage mistake found after parsing (`ranges::usage`): clap's
/// error, printed with the subcommand's usage; None for any other error.
pub fn usage_exit(error: &anyhow::Error) -> Option<i32> {
    let clap_error = error.downcast_ref::<clap::Error>()?;
    let _ = clap_error.print();
    Some(clap_error.exit_code())
}

/// Whether `error` is (or was caused by) a closed standard output, which ends a command quietly.
pub fn is_stdout_closed(error: &anyhow::Error) -> bool {
    error.chain().any(|e| e.is::<StdoutClosed>())
}

/// The subcommands that take no network, whose help leaves out the global `--loss` (which they refuse).
const WITHOUT_A_MODEL: [&str; 4] = ["info", "analyze", "merge", "toy"];

/// The command line's definition, with `--loss` hidden in the help of the subcommands that take no
/// network: each gets a hidden copy of the global argument, which clap then does not propagate to it.
pub(crate) fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut cli = Cli::command();
    let loss = cli.get_arguments().find(|a| a.get_id() == "loss").cloned().expect("the global --loss").hide(true);
    for name in WITHOUT_A_MODEL {
        cli = cli.mut_subcommand(name, |s| s.arg(loss.clone()));
    }
    cli
}

/// Parses the command line and runs the subcommand.
pub fn main() -> Result<()> {
    use clap::FromArgMatches;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let _ = MODEL_LOSS.set(loss_in(&args));
    let matches = command().get_matches_from(&args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let subcommand = matches.subcommand_name().unwrap_or_default();
    let taken = LOSS_TAKEN.load(std::sync::atomic::Ordering::Relaxed);
    if cli.loss.is_some() && subcommand != "import" && !taken {
        return Err(ranges::usage(
            subcommand,
            "--loss applies to an ONNX model given with --model (or --models), and to import; no model here \
             took it: name the ONNX model, or leave --loss out",
        ));
    }
    crate::io::lock::wait_for_writers(cli.wait);
    match cli.command {
        Command::Info(a) => info::run(a),
        Command::Init(a) => init::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Paths(a) => paths::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Align(a) => align::run(a),
        Command::Merge(a) => merge::run(a),
        Command::Toy(a) => toy::run(a),
        Command::Train(a) => train::run(a),
        Command::Analyze(a) => analyze::run(a),
        Command::Reproduce(a) => reproduce::run(a),
        Command::Surface(a) => surface::run(a),
        Command::Hessian(a) => hessian::run(a),
        Command::Import(a) => import::run(a, cli.loss.map(LossArg::loss)),
        Command::Export(a) => export::run(a),
        Command::Stack(a) => stack::run(a),
    }
}
