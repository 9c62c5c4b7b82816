use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

use super::ranges::{self, at_least, count, positive, MAX_VECTORS};
use super::RunArgs;
use crate::data::{DeviceImages, Split};
use crate::io::read_weights;
use crate::io::shard::sha256_file;
use crate::model::{init_vectors, Arch};
use crate::optim::{adam, LbfgsSettings, LineSearchKind};
use crate::train::{
    footprint, paper, train, CheckpointEvery, LbfgsConfig, MiniBatchConfig, Optimizer, RunRecord, TrainConfig,
    TrainInputs, TrainProgress,
};

/// Train R seeded runs together with SGD or L-BFGS (or Adam) and keep the best K as solution sets.
#[derive(Args)]
#[command(
    after_help = "Example:\n  losscape train --model fcp --optimizer lbfgs --runs 75 --keep 48 --seed 0 --out sets\n  \
losscape train --model lstm --optimizer sgd --runs 4 --keep 2 --epochs 3 --train-size 2000 --out small\n  \
losscape train --model fcp --optimizer adam --runs 8 --keep 8 --epochs 20 --train-size 2000 --out adam\n\n\
Writes DIR/{model}-{optimizer}-train.safetensors and -test.safetensors (the K kept runs' training-loss and\n\
test-loss snapshots, best first), DIR/{model}-{optimizer}-summary.json (Table I numbers, every run's\n\
curves and snapshots), DIR/curves/run-NNN.csv, DIR/config.json and DIR/checkpoint.safetensors.\n\
Re-running the same command resumes from the checkpoint."
)]
pub struct TrainArgs {
    /// Network: fcp, lenet, lstm, autoencoder, a compact MLP (mlp:784-64-10:tanh) or a description
    /// file (.toml; docs/networks.md §7).
    #[arg(long, value_parser = crate::cli::model_arg)]
    model: Arch,
    /// Optimizer: the paper's SGD or L-BFGS, or Adam (mini-batch, PyTorch's betas and eps; --epochs,
    /// --lr and --batch as for SGD).
    #[arg(long, value_enum)]
    optimizer: Optimizer,
    /// Runs, advanced together; run r starts from seed S + r.
    #[arg(long, value_parser = count(1, MAX_VECTORS), help = help::runs())]
    runs: Option<usize>,
    /// Runs kept in the solution sets (lowest training loss), at most --runs.
    #[arg(long, value_parser = count(1, MAX_VECTORS), help = help::keep())]
    keep: Option<usize>,
    /// Seed of the first run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// SGD and Adam epochs.
    #[arg(long, value_parser = count(1, 1_000_000), help = help::epochs())]
    epochs: Option<usize>,
    /// SGD and Adam learning rate.
    #[arg(long, allow_negative_numbers = true, value_parser = positive, help = help::lr())]
    lr: Option<f64>,
    /// SGD and Adam mini-batch size.
    #[arg(long, value_parser = at_least(1), help = help::batch())]
    batch: Option<usize>,
    /// L-BFGS iterations.
    #[arg(long, value_parser = count(1, 1_000_000), help = help::iterations())]
    iterations: Option<usize>,
    /// L-BFGS line search: the authors' (reference) or a clean golden-section search [default:
    /// reference].
    #[arg(long, value_enum)]
    line_search: Option<LineSearchKind>,
    /// L-BFGS: counted loss evaluations per line search.
    #[arg(long, value_parser = count(1, 1000), help = help::budget())]
    budget: Option<usize>,
    /// L-BFGS history length.
    #[arg(long, value_parser = count(1, 100), help = help::history())]
    history: Option<usize>,
    /// Use the first N training images.
    #[arg(long, value_name = "N", value_parser = at_least(1))]
    train_size: Option<usize>,
    /// Use the first N test images for the test curves.
    #[arg(long, value_name = "N", value_parser = at_least(1))]
    test_size: Option<usize>,
    /// Start the runs from these vectors (e.g. made by PyTorch) instead of seeds; --runs defaults to
    /// their count.
    #[arg(long, value_name = "W.safetensors")]
    init: Option<PathBuf>,
    /// Write the checkpoint (every run's whole state; for L-BFGS 23 vectors per run) after every K
    /// epochs (iterations), e.g. 1 or 25, or after the first one that ends a time after the last
    /// checkpoint, e.g. 90s, 5m, 1h. A killed run, re-run, repeats the steps since its last checkpoint
    /// and ends with the files of an uninterrupted run.
    #[arg(long, value_name = "K|TIME", default_value_t = CheckpointEvery::DEFAULT)]
    checkpoint_every: CheckpointEvery,
    /// Append one JSON line per epoch (iteration) with every run's losses to this file (its directory
    /// is made if missing; an existing file must be such a log). A resumed run does not write again
    /// the steps the file already holds.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

/// The help of the options whose defaults the code fills in (they are `Option`s, so that an option
/// given with the wrong optimizer is refused): each states the default from the constant that
/// [`run`] uses, so the help cannot drift from it.
mod help {
    use super::MAX_VECTORS;
    use crate::optim::{adam, LineSearchKind};
    use crate::train::paper;

    pub fn runs() -> String {
        format!(
            "Runs, advanced together; run r starts from seed S + r (1 to {MAX_VECTORS}) [default: {}, or the count of \
             the --init vectors]",
            paper::RUNS
        )
    }

    pub fn keep() -> String {
        format!("Runs kept in the solution sets (lowest training loss), at most --runs [default: {}, or --runs when that is smaller]", paper::KEEP)
    }

    pub fn epochs() -> String {
        format!("SGD and Adam epochs (1 to 1000000) [default: {}]", paper::EPOCHS)
    }

    pub fn lr() -> String {
        format!(
            "SGD and Adam learning rate (> 0) [default: {} for SGD (the paper's), {} for Adam (PyTorch's)]",
            paper::LR,
            adam::DEFAULT_LR
        )
    }

    pub fn batch() -> String {
        format!(
            "SGD and Adam mini-batch size (the last, partial batch of an epoch is kept) [default: {}]",
            paper::BATCH
        )
    }

    pub fn iterations() -> String {
        format!("L-BFGS iterations (1 to 1000000) [default: {}]", paper::ITERATIONS)
    }

    pub fn budget() -> String {
        format!(
            "L-BFGS: counted loss evaluations per line search (1 to 1000) [default: {} for reference, {} for golden]",
            LineSearchKind::Reference.default_budget(),
            LineSearchKind::Golden.default_budget()
        )
    }

    pub fn history() -> String {
        format!("L-BFGS history length (1 to 100) [default: {}]", paper::HISTORY)
    }
}

struct Progress {
    out: crate::cli::progress::Progress,
    /// The --log file and its path.
    log: Option<(std::fs::File, PathBuf)>,
    /// The last step the --log file already holds; a resumed run repeats the steps since its last
    /// checkpoint, and their lines are not written again.
    logged: usize,
    unit: &'static str,
    started: std::time::Instant,
}

impl TrainProgress for Progress {
    fn start(&mut self, total: usize, done: usize) {
        self.out.start(total, done);
        if done == 0 {
            self.logged = 0; // a run from its start logs every step
        }
    }
    fn step(&mut self, done: usize, records: &[RunRecord]) {
        let live: Vec<&RunRecord> = records.iter().filter(|r| r.stopped.is_none()).collect();
        let mean = |f: &dyn Fn(&RunRecord) -> Option<f64>| {
            let v: Vec<f64> = live.iter().filter_map(|r| f(r)).collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let (tr, te) = (mean(&|r| r.train.last().copied()), mean(&|r| r.test.last().copied()));
        self.out.bar.set_message(format!("{} runs, mean train loss {tr:.4e}, test {te:.4e}", live.len()));
        self.out.set(done as u64);
        if let Some((f, path)) = self.log.as_mut().filter(|_| done > self.logged) {
            let line = serde_json::json!({
                self.unit: done,
                "seconds": self.started.elapsed().as_secs_f64(),
                "train": records.iter().map(|r| r.train.get(done - 1)).collect::<Vec<_>>(),
                "test": records.iter().map(|r| r.test.get(done - 1)).collect::<Vec<_>>(),
                "stopped": records.iter().map(|r| r.stopped.clone()).collect::<Vec<_>>(),
            });
            // a full disk or a vanished file ends the log, not the training: its results are the
            // directory's files, which are written (and checked) apart from it
            if let Err(e) = writeln!(f, "{line}") {
                eprintln!(
                    "warning: {}: cannot write to the --log file ({e}); training goes on without it (the \
                     losses are also in the directory's curves/)",
                    path.display()
                );
                self.log = None;
            }
        }
    }
}

/// Opens the `--log` file `path` of a run that counts `unit`s (epoch, iteration) for appending, and
/// returns it with the largest step its lines already hold (0 for a new or empty file, or one that is
/// not a regular file: `/dev/null`, a pipe). Its directory is made when missing, so that a log inside a
/// new `--out` directory can be named. An unfinished last line (a run killed mid-write) is cut off with
/// a note, as in the directory's own JSON-lines files ([`crate::io::jsonl`]).
///
/// Errors: `path` is a directory; a regular file whose first line is not a log line of this kind (a
/// weight file, another command's output: appending would damage it) or whose later lines are not
/// (named by line); the file or its directory cannot be made.
fn open_log(path: &std::path::Path, unit: &str) -> Result<(std::fs::File, usize)> {
    let shown = path.display();
    if path.is_dir() {
        bail!(
            "{shown}: is a directory; --log takes a file to append to, e.g. --log {}",
            path.join("train.log").display()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
        crate::io::create_dir(dir).with_context(|| format!("the directory of the --log file {shown}"))?;
    }
    let logged = if path.metadata().is_ok_and(|m| m.is_file()) { logged_steps(path, unit)? } else { 0 };
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
    Ok((file.with_context(|| format!("{shown}: cannot open the --log file"))?, logged))
}

/// The largest `unit` step of the lines of the regular file `path` (0 when it is empty), after
/// checking that it is a `--log` file of such a run.
///
/// Errors: as [`open_log`].
fn logged_steps(path: &std::path::Path, unit: &str) -> Result<usize> {
    use std::io::Read as _;
    let shown = path.display();
    // the first line alone decides whether this is a log at all, before anything cuts the file
    let mut head = Vec::new();
    let file = std::fs::File::open(path).with_context(|| format!("{shown}: cannot read the --log file"))?;
    file.take(1 << 16).read_to_end(&mut head).with_context(|| format!("{shown}: cannot read the --log file"))?;
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let step = |line: &serde_json::Map<String, serde_json::Value>| line.get(unit).and_then(serde_json::Value::as_u64);
    let is_log =
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(first).is_ok_and(|l| step(&l).is_some());
    if !head.is_empty() && !is_log {
        bail!(
            "{shown}: is not the --log file of a run that counts {unit}s (its first line is not one of its JSON \
             lines), and appending would damage it; give --log a new file (or that run's log)"
        );
    }
    let (_, lines) = crate::io::jsonl::Appender::resume_numbered::<serde_json::Map<String, serde_json::Value>>(path)?;
    let mut last = 0;
    for (number, line) in &lines {
        match step(line) {
            Some(s) => last = last.max(s as usize),
            None => {
                bail!("{shown}: line {number} is not a line of a --log file that counts {unit}s; give --log a new file")
            }
        }
    }
    Ok(last)
}

/// Where the runs start.
struct Start {
    /// R x N_prm starting weights.
    flat: Vec<f32>,
    /// Each run's seed (none with --init).
    seeds: Option<Vec<u64>>,
    runs: usize,
    /// The checksum of the --init file.
    init_sha256: Option<String>,
}

/// The vectors of `--init`, or one initial vector per seed S .. S + R - 1.
///
/// Errors: an --init file that cannot be read, holds no vectors, or holds other than --runs vectors.
fn starting_points(args: &TrainArgs) -> Result<Start> {
    let Some(path) = &args.init else {
        let runs = args.runs.unwrap_or(paper::RUNS);
        let seeds = ranges::seeds("train", args.seed, runs)?;
        // checked before the memory estimate (which needs the data and the device): the starting points
        // alone may not fit
        let flat = init_vectors(args.model, &seeds).map_err(|e| {
            anyhow::anyhow!("train: --runs {runs}: {e}; train fewer --runs, or make the network smaller")
        })?;
        return Ok(Start { flat, seeds: Some(seeds), runs, init_sha256: None });
    };
    let stack = read_weights(path, args.model)?;
    if let Some(runs) = args.runs.filter(|&r| r != stack.count()) {
        bail!("--runs {runs} but {} holds {} vectors; omit --runs to train them all", path.display(), stack.count());
    }
    if stack.count() == 0 {
        bail!("{}: holds no weight vectors to start from", path.display());
    }
    let runs = stack.count();
    ranges::seeds("train", args.seed, runs)?;
    Ok(Start { flat: stack.flat, seeds: None, runs, init_sha256: Some(sha256_file(path)?) })
}

/// The line printed when training ends: stopped runs, then the kept runs' mean losses.
fn report(args: &TrainArgs, runs: usize, summary: &crate::train::Summary) -> Result<()> {
    for (i, rec) in summary.runs.iter().enumerate() {
        if let Some(why) = &rec.stopped {
            eprintln!("run {i} stopped: {why}");
        }
    }
    outln!(
        "{} {}: kept {} of {runs} runs; mean training loss (train snapshots) {:.4e}, mean test loss (test snapshots) {:.4e}",
        args.model.title(),
        args.optimizer.id(),
        summary.kept,
        summary.mean_train_loss,
        summary.mean_test_loss
    )?;
    outln!("wrote {}", args.out.display())
}

/// Refuses the options that do not apply to the optimizer or the network chosen.
fn check_applicable(args: &TrainArgs) -> Result<()> {
    let lbfgs = args.optimizer == Optimizer::Lbfgs;
    let (sgd_only, lbfgs_only) = ("applies to --optimizer sgd or adam", "applies to --optimizer lbfgs");
    for (option, given) in
        [("--epochs", args.epochs.is_some()), ("--lr", args.lr.is_some()), ("--batch", args.batch.is_some())]
    {
        ranges::not_applicable("train", option, lbfgs && given, sgd_only)?;
    }
    for (option, given) in [
        ("--iterations", args.iterations.is_some()),
        ("--line-search", args.line_search.is_some()),
        ("--budget", args.budget.is_some()),
        ("--history", args.history.is_some()),
    ] {
        ranges::not_applicable("train", option, !lbfgs && given, lbfgs_only)?;
    }
    if let (Some(runs), Some(keep)) = (args.runs, args.keep) {
        if keep > runs {
            return Err(ranges::usage(
                "train",
                format!("--keep {keep} is more than --runs {runs}; keep at most the runs trained"),
            ));
        }
    }
    Ok(())
}

pub fn run(args: TrainArgs) -> Result<()> {
    check_applicable(&args)?;
    let act = args.run.act("train", args.model)?;
    let Start { flat: start, seeds, runs, init_sha256 } = starting_points(&args)?;
    if let Some(keep) = args.keep.filter(|&k| k > runs) {
        bail!("--keep {keep} is more than the {runs} runs; keep at most the runs trained");
    }
    let load =
        |split, n, option| ranges::first("train", args.run.data.load_for("train", &[args.model], split)?, n, option);
    let (train_data, test_data) =
        (load(Split::Train, args.train_size, "--train-size")?, load(Split::Test, args.test_size, "--test-size")?);
    let batch = args.batch.unwrap_or(paper::BATCH);
    if args.optimizer != Optimizer::Lbfgs && batch > train_data.len() {
        let n = train_data.len();
        let default = if args.batch.is_none() { " (the default)" } else { "" };
        let msg = format!("--batch {batch}{default} is more than the {n} training images; give --batch {n} or fewer");
        return Err(ranges::usage("train", msg));
    }
    let net = crate::model::Network { arch: args.model, act };
    let line_search = args.line_search.unwrap_or(LineSearchKind::Reference);
    let cfg = TrainConfig {
        keep: args.keep.unwrap_or(paper::KEEP).min(runs),
        seed: args.seed,
        init_sha256,
        minibatch: MiniBatchConfig {
            epochs: args.epochs.unwrap_or(paper::EPOCHS),
            lr: args.lr.unwrap_or(if args.optimizer == Optimizer::Adam { adam::DEFAULT_LR } else { paper::LR }),
            batch,
        },
        lbfgs: LbfgsConfig {
            iterations: args.iterations.unwrap_or(paper::ITERATIONS),
            settings: LbfgsSettings {
                history: args.history.unwrap_or(paper::HISTORY),
                line_search,
                budget: args.budget.unwrap_or(line_search.default_budget()),
            },
        },
        data_sha256: Some(crate::data::fingerprint(&[&train_data, &test_data])),
        ..TrainConfig::new(net, args.optimizer, runs, train_data.len(), test_data.len())
    };
    let gpu = args.run.device.open()?;
    let train_images = DeviceImages::upload(&gpu, &train_data)?;
    let test_images = DeviceImages::upload(&gpu, &test_data)?;
    // before the --log file and the directory are touched
    let data = DeviceImages::footprint(&gpu, &train_data) + DeviceImages::footprint(&gpu, &test_data);
    let need = data + footprint(&cfg, &train_images, &test_images)?;
    let sized_by = format!("--runs {runs} ({} parameters each)", args.model.n_params());
    let fixes =
        "train fewer --runs per directory (more directories, each with its own --seed) or give a smaller --train-size";
    super::memory::check("train", &args.run, &gpu, need, &sized_by, fixes)?;
    let unit = args.optimizer.unit();
    let template = format!("{{bar:30}} {unit} {{pos}}/{{len}}, ETA {{eta}}  {{msg}}");
    let out = crate::cli::progress::Progress::new(&template, &format!("{unit}s"), args.run.quiet);
    let (log, logged) = match &args.log {
        Some(p) => open_log(p, unit).map(|(file, logged)| (Some((file, p.clone())), logged))?,
        None => (None, 0),
    };
    let mut progress = Progress { out, log, logged, unit, started: std::time::Instant::now() };
    let summary = train(
        TrainInputs {
            dir: &args.out,
            cfg: &cfg,
            start: &start,
            seeds,
            train: &train_images,
            test: &test_images,
            checkpoint_every: args.checkpoint_every,
        },
        &mut progress,
    )?;
    progress.out.bar.finish_and_clear();
    report(&args, runs, &summary)?;
    Ok(())
}
