use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

use super::progress::Progress;
use super::ranges::{at_least, count, lambda, positive};
use super::RunArgs;
use crate::data::{DeviceImages, Split};
use crate::io::read_weights;
use crate::io::shard::{SetInfo, Shard};
use crate::model::Arch;
use crate::path::pairs::draw_pairs;
use crate::path::sweep::{
    footprint, run_sweep_batched, Job, PairRecord, SweepConfig, SweepInputs, SweepOptions, SweepProgress,
};
use crate::path::{Curve, PathSettings};

/// Find low-loss paths (Fourier, Bezier or polygonal chain) between pairs of each set's vectors, optionally
/// aligning each pair first; resumable and shardable.
#[derive(Args)]
#[command(
    after_help = "Example:\n  losscape paths --model fcp --set fcp-lbfgs-train.safetensors --landscape train --pairs 300 --seed 0 --out paths-fcp\n  \
losscape paths --model lstm --set lstm.npy --landscape test --pairs 10 --seed 1 --out p --shard 0/4\n  \
losscape paths --model fcp --set sgd.npy --set lbfgs.npy --align --curve bezier --pairs 50 --out p-bezier\n\n\
Output: DIR/config.json and DIR/paths.jsonl (one JSON object per finished pair: index, set, pair, seeds,\n\
curve, aligned, distance, unaligned_distance, unaligned_straight_height (the last two with --align, else\n\
null), straight_losses, losses, best_iteration, height, barrier, straight_height, length,\n\
weighted_mean_loss, iterations, converged, trace). Every curve is optimised with Adam on the same fixed\n\
grid t_m = m/(M-1). With --until-converged each pair stops when its best cumulative loss improved by\n\
less than 0.1 % (or its mean over the points by less than 1e-5) over the last max(10, 10 %)\n\
iterations, or its height stayed at the larger endpoint loss over them (docs/algorithms.md §5), at\n\
most --max-iterations; without it every pair runs --iterations and `converged` says whether it had.\n\
Re-running the same command (with any --pairs-per-batch) skips finished pairs. With --until-converged a\n\
larger --max-iterations resumes too: converged pairs are kept (they would stop at the same iteration),\n\
the others are found again, and the directory ends as a fresh run with that budget would leave it."
)]
pub struct PathsArgs {
    /// Network: fcp, lenet, lstm, autoencoder, a compact MLP (mlp:784-64-10:tanh) or a description
    /// file (.toml; docs/networks.md §7).
    #[arg(long, value_parser = crate::cli::model_arg)]
    model: Arch,
    /// A solution set (stack of vectors, .safetensors or .npy); repeat for several sets.
    #[arg(long = "set", required = true)]
    sets: Vec<PathBuf>,
    /// The loss landscape: the training or the test split.
    #[arg(long, value_enum, default_value_t = Split::Train)]
    landscape: Split,
    /// Pairs per set.
    #[arg(long, default_value_t = PathSettings::PAPER_PAIRS, value_parser = at_least(1))]
    pairs: usize,
    /// Seed of the pair draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Curve family: the paper's Fourier series, or Garipov et al.'s quadratic Bezier or polygonal chain
    /// with one bend.
    #[arg(long, value_enum, default_value_t)]
    curve: Curve,
    /// Fourier terms N_F (1 to 1000; --curve fourier only) [default: 10].
    #[arg(long, value_parser = count(1, 1000))]
    fourier: Option<usize>,
    /// Align each pair's second vector onto the first (weight matching, as `losscape align`) before
    /// finding the path; records the unaligned distance and straight-line height too.
    #[arg(long)]
    align: bool,
    /// Path points M (endpoints included; 3 to 10000: one point between the endpoints at least).
    #[arg(long, default_value_t = PathSettings::PAPER.points, value_parser = count(3, 10_000))]
    points: usize,
    /// Weight of the squared-length regulariser (0 to 1e12).
    #[arg(long, allow_negative_numbers = true, default_value_t = PathSettings::PAPER.lambda, value_parser = lambda)]
    lambda: f64,
    /// Adam learning rate (> 0).
    #[arg(long, allow_negative_numbers = true, default_value_t = PathSettings::PAPER.lr, value_parser = positive)]
    lr: f64,
    /// Adam iterations per path (1 to 1000000).
    #[arg(long, default_value_t = PathSettings::PAPER.iterations, value_parser = count(1, 1_000_000))]
    iterations: usize,
    /// Stop each pair at the first iteration at which its path has converged: the best cumulative loss
    /// improved by less than 0.1 % (or its mean over the points by less than 1e-5) over the last
    /// max(10, 10 %) iterations, or its height stayed at the larger endpoint loss over them
    /// (docs/algorithms.md §5).
    #[arg(long, conflicts_with = "iterations")]
    until_converged: bool,
    /// With --until-converged: the most Adam iterations per path (1 to 1000000) [default: 1000].
    #[arg(long, value_name = "K", requires = "until_converged", value_parser = count(1, 1_000_000))]
    max_iterations: Option<usize>,
    /// Use the first N training images as the training landscape.
    #[arg(long, value_name = "N", value_parser = at_least(1))]
    train_size: Option<usize>,
    /// Compute only this shard of the pairs: i/n takes the pairs whose index is i modulo n.
    #[arg(long, default_value = "0/1")]
    shard: Shard,
    /// Pairs optimised together, in one evaluation of P x M points per Adam iteration (1 to 1000)
    /// [default: 1 on the CPU backend, else the most, at most 16, that fit the device's memory and keep
    /// an evaluation within the network's dispatch goal (`losscape plan --preset` prints it)]. An
    /// execution detail like the shard: not saved, results do not depend on it, and a sweep may be
    /// resumed with another value.
    #[arg(long, value_name = "P", value_parser = count(1, 1000))]
    pairs_per_batch: Option<usize>,
    /// Also save each best path's coefficients to DIR/coefficients/.
    #[arg(long)]
    save_paths: bool,
    #[command(flatten)]
    run: RunArgs,
}

/// The iteration budget of `--until-converged` without `--max-iterations`.
pub const DEFAULT_MAX_ITERATIONS: usize = 1000;

struct Bar {
    out: Progress,
    iterations: usize,
}

impl SweepProgress for Bar {
    fn start(&mut self, total: usize, done: usize) {
        self.out.start(total, done);
    }
    fn iteration(&mut self, job: &Job, k: usize, cumulative: f64) {
        self.out.bar.set_message(format!(
            "pair {} ({},{}) iteration {}/{} cumulative loss {cumulative:.4}",
            job.index,
            job.pair.0,
            job.pair.1,
            k + 1,
            self.iterations
        ));
    }
    fn finished(&mut self, r: &PairRecord) {
        self.out.advance(1);
        let unaligned = match r.unaligned_straight_height {
            Some(h) => format!("; unaligned straight line {h:.4e}"),
            None => String::new(),
        };
        let o = &r.outcome;
        let converged = match o.converged {
            Some(true) => "converged",
            _ => "not converged",
        };
        self.out.line(format!(
            "pair {} ({},{}): height {:.4e} (straight line {:.4e}{unaligned}), barrier {:.4e}; best iteration {} of {}, {converged}",
            r.index,
            r.pair.0,
            r.pair.1,
            o.height,
            o.straight_height,
            o.barrier,
            o.best_iteration,
            o.iterations.unwrap_or(0)
        ));
    }
}

pub fn run(args: PathsArgs) -> Result<()> {
    if let (Some(k), false) = (args.max_iterations, args.until_converged) {
        let msg = format!("--max-iterations {k} applies to --until-converged; without it every pair runs --iterations");
        return Err(super::ranges::usage("paths", msg));
    }
    let activation = args.run.act("paths", args.model)?;
    let fourier = match (args.curve, args.fourier) {
        (Curve::Fourier, n) => n.unwrap_or(PathSettings::PAPER.fourier),
        (curve, Some(_)) => {
            let why = format!("applies to --curve fourier; a {} curve has one bend", curve.id());
            return Err(super::ranges::usage("paths", format!("--fourier {why}")));
        }
        (curve, None) => curve.terms(PathSettings::PAPER.fourier),
    };
    let stacks = args.sets.iter().map(|p| read_weights(p, args.model)).collect::<Result<Vec<_>>>()?;
    args.sets.iter().zip(&stacks).for_each(|(p, s)| super::note_activation(s, p, activation));
    // each set against --pairs, named as given (the configuration names it from the work directory)
    for (i, (p, s)) in args.sets.iter().zip(&stacks).enumerate() {
        if s.count() < 2 {
            bail!("{}: a set needs at least two vectors to form a pair, it holds {}", p.display(), s.count());
        }
        if let Err(e) = draw_pairs(s.count(), args.pairs, args.seed, i as u64) {
            return Err(super::ranges::usage("paths", format!("{}: {e:#}; give fewer --pairs", p.display())));
        }
    }
    let iterations = match args.until_converged {
        true => args.max_iterations.unwrap_or(DEFAULT_MAX_ITERATIONS),
        false => args.iterations,
    };
    let data = args.run.data.landscape("paths", args.model, args.landscape, args.train_size)?;
    let sets = args.sets.iter().zip(&stacks).map(|(p, s)| SetInfo::of(p, s, &args.out)).collect::<Result<Vec<_>>>()?;
    let cfg = SweepConfig {
        model: args.model,
        activation,
        sets,
        landscape: args.landscape,
        images: data.len(),
        pairs: args.pairs,
        seed: args.seed,
        settings: PathSettings { fourier, points: args.points, lambda: args.lambda, lr: args.lr, iterations },
        save_paths: args.save_paths,
        shard: args.shard,
        data_sha256: Some(data.sha256()),
    };
    let device = args.run.device.open()?;
    let images = DeviceImages::upload(&device, &data)?;
    let inputs = SweepInputs { dir: &args.out, cfg: &cfg, stacks: &stacks, images: &images };
    let options = SweepOptions { curve: args.curve, align: args.align, until_converged: args.until_converged };
    let need = DeviceImages::footprint(&device, &data) + footprint(&inputs, options, args.pairs_per_batch)?;
    let batch = match args.pairs_per_batch {
        Some(p) => format!(" and --pairs-per-batch {p}"),
        None => String::new(),
    };
    let sized_by = format!("--points {}{batch} ({} parameters per point)", args.points, args.model.n_params());
    let fixes = "give fewer --points or a smaller --pairs-per-batch (it grows with points x pairs per batch)";
    super::memory::check("paths", &args.run, &device, need, &sized_by, fixes)?;
    let mut progress =
        Bar { out: Progress::new("{bar:30} {pos}/{len} pairs, ETA {eta}  {msg}", "pairs", args.run.quiet), iterations };
    let computed = run_sweep_batched(inputs, options, args.pairs_per_batch, &mut progress)?;
    progress.out.bar.finish_and_clear();
    report(&cfg, &args.out, computed)
}

/// The line printed when the sweep ends: the pairs computed and where their results are, or, for a
/// shard that holds none of the pairs, that it holds none and wrote only its configuration.
fn report(cfg: &SweepConfig, out: &std::path::Path, computed: usize) -> Result<()> {
    let (shard, pairs) = (cfg.shard, cfg.sets.len() * cfg.pairs);
    if shard.share(pairs) == 0 {
        return outln!(
            "shard {}/{} holds none of the sweep's {pairs} pair(s) (pair i is shard i mod {}'s): nothing to \
             compute; wrote only {}",
            shard.index,
            shard.count,
            shard.count,
            out.join("config.json").display()
        );
    }
    outln!("{computed} pair(s) computed; results in {}", out.join("paths.jsonl").display())
}
