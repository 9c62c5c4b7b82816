//! Training solution sets: R seeded runs of SGD (mini-batches of 64, a reshuffle per run and epoch) or
//! full-batch L-BFGS (the paper's optimizers), or mini-batch Adam (beyond the paper), advanced together
//! through the batched primitive. This is the executor: `make_solver` builds the solver the
//! configuration ([`TrainConfig`], `config.rs`) names, and the loop drives it as any
//! [`crate::optim::Solver`] and checkpoints its buffers and state. After every epoch (iteration)
//! each run's full training and test losses extend its curves and the argmin snapshots are kept on the
//! GPU; the whole state is checkpointed atomically as [`CheckpointEvery`] says, so a killed run resumes
//! from its last checkpoint and ends with the same files as an uninterrupted one.

mod checkpoint;
mod config;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::backend::{f32_bytes, Buffer, Device, Footprint};
use crate::data::DeviceImages;
use crate::io::config::prepare_dir;
use crate::io::{write_weights, WeightStack};
use crate::model::{evaluator_bytes, per_vector_evaluator_bytes, Arch, Evaluator, Network, Want};
use crate::optim::{Lbfgs, LbfgsSolver, MiniBatch, NetworkObjective, Rule, Solver};
use checkpoint::Checkpoint;
pub use checkpoint::CheckpointEvery;

pub use crate::io::Optimizer;
pub use config::{paper, LbfgsConfig, MiniBatchConfig, TrainConfig};

/// One run's curves and snapshots.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub seed: Option<u64>,
    /// Full training loss of the starting vector, before any step: what [`diverged`] compares the
    /// run's best with. Absent where it is not finite (JSON has no such number, so a resumed run
    /// would read it back otherwise) and in records written before losscape kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_train: Option<f64>,
    /// Full training and test loss after each epoch (iteration).
    pub train: Vec<f64>,
    pub test: Vec<f64>,
    /// (epoch, loss) of the argmin of each curve; epochs count from 1.
    pub best_train: Option<(usize, f64)>,
    pub best_test: Option<(usize, f64)>,
    /// Why the run stopped early (a non-finite loss).
    pub stopped: Option<String>,
}

/// Table I numbers of one trained set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub model: Arch,
    pub optimizer: Optimizer,
    pub n_prm: usize,
    pub kept: usize,
    /// Mean training loss of the kept train snapshots.
    pub mean_train_loss: f64,
    /// Mean test loss of the kept test snapshots.
    pub mean_test_loss: f64,
    /// Kept runs, best first.
    pub kept_runs: Vec<usize>,
    pub runs: Vec<RunRecord>,
}

/// Progress callbacks.
pub trait TrainProgress {
    fn start(&mut self, total: usize, done: usize);
    fn step(&mut self, done: usize, records: &[RunRecord]);
}

/// The solver a configuration names, starting from `start` (R x n): L-BFGS on the full-batch training
/// loss of `train_eval`, or a mini-batch optimizer drawing from the training images `train`.
fn make_solver<'a>(
    device: &Device,
    net: Network,
    cfg: &TrainConfig,
    (train, train_eval): (&DeviceImages, &'a Evaluator),
    start: &[f32],
    seeds: Vec<u64>,
) -> Result<Box<dyn Solver + 'a>> {
    let minibatch = |rule| MiniBatch::new(device, net, cfg.minibatch.settings(rule, seeds), train, start);
    Ok(match cfg.optimizer {
        Optimizer::Sgd => Box::new(minibatch(Rule::Sgd)?),
        Optimizer::Adam => Box::new(minibatch(Rule::Adam)?),
        Optimizer::Lbfgs => {
            let lbfgs = Lbfgs::new(device, cfg.lbfgs.settings, cfg.runs, cfg.model.n_params(), start)?;
            Box::new(LbfgsSolver { lbfgs, objective: NetworkObjective { eval: train_eval } })
        }
    })
}

/// The memory a training run of `cfg` takes besides its images: the evaluators of the full training
/// and test losses (R vectors each, [`crate::model::evaluator_bytes`]), the two snapshot sets, the
/// solver's buffers (L-BFGS: iterate, gradient, previous gradient, direction and the history's s and y;
/// SGD and Adam: the mini-batch images, their per-run evaluators, the shuffles, and Adam's moments and
/// frozen weights) on the device; on the host the starting vectors and a checkpoint (every kept buffer
/// read back, serialised, then given its canonical header: three times its bytes).
///
/// # Errors
/// The network does not plan.
pub fn footprint(cfg: &TrainConfig, train: &DeviceImages, test: &DeviceImages) -> Result<Footprint> {
    let net = Network { arch: cfg.model, act: cfg.activation };
    let (r, n, budget) = (cfg.runs, cfg.model.n_params(), train.device.chunk_budget());
    let vectors = |k: usize| f32_bytes(k * r * n);
    // the test loss never takes gradients, nor does the full training loss of mini-batch training: on
    // the CPU backend their gradient tensors take no memory
    let loss_only = train.device.is_cpu();
    let lbfgs = cfg.optimizer == Optimizer::Lbfgs;
    let evaluators = evaluator_bytes(net, (r, r), train.count, budget, loss_only && !lbfgs)?
        + evaluator_bytes(net, (r, r), test.count, budget, loss_only)?;
    // the solver's device bytes, and its vectors a checkpoint keeps besides the weights
    let (solver, kept) = match cfg.optimizer {
        Optimizer::Lbfgs => {
            let h = cfg.lbfgs.settings.history;
            (vectors(4 + 2 * h), vectors(1 + 2 * h))
        }
        rule => {
            let bs = cfg.minibatch.batch.min(train.count);
            let adam = if rule == Optimizer::Adam { 3 } else { 0 };
            let last = match train.count % bs {
                0 => 0,
                rem => per_vector_evaluator_bytes(net, rem, r)?,
            };
            let images = DeviceImages::device_bytes(&train.device, train.shape, r * bs).device;
            let own = images + per_vector_evaluator_bytes(net, bs, r)? + last + f32_bytes(r * train.count);
            (own + vectors(adam), vectors(adam.min(2)))
        }
    };
    let checkpoint = 3 * (vectors(3) + kept);
    Ok(Footprint::device(evaluators + vectors(2) + solver) + Footprint::host(vectors(1) + checkpoint))
}

/// The inputs of a training run.
pub struct TrainInputs<'a> {
    pub dir: &'a Path,
    pub cfg: &'a TrainConfig,
    /// R x N_prm starting vectors.
    pub start: &'a [f32],
    /// Seeds of the runs, when they start from seeds.
    pub seeds: Option<Vec<u64>>,
    pub train: &'a DeviceImages,
    pub test: &'a DeviceImages,
    /// When to write the checkpoint besides after the last epoch (iteration).
    pub checkpoint_every: CheckpointEvery,
}

/// Trains (or resumes) and writes the solution sets; returns the summary.
pub fn train(inputs: TrainInputs, progress: &mut dyn TrainProgress) -> Result<Summary> {
    let TrainInputs { dir, cfg, start, seeds, train, test, checkpoint_every } = inputs;
    let device = train.device.clone();
    let (r, n) = (cfg.runs, cfg.model.n_params());
    if cfg.keep == 0 || cfg.keep > r {
        bail!("--keep must be between 1 and --runs ({r})");
    }
    if start.len() != r * n {
        bail!("{} starting values for {r} runs of {n} parameters", start.len());
    }
    let _lock = crate::io::lock::DirLock::acquire(dir, crate::io::lock::LOCK)?;
    let net = Network { arch: cfg.model, act: cfg.activation };
    let train_eval = Evaluator::new(net, train, 0..train.count, r)?;
    // before the directory records this run: a rerun with other starting vectors must not be refused
    train_eval.set_weights(start)?;
    let initial: Vec<f64> = train_eval.evaluate(Want::Loss)?.iter().map(|e| e.loss).collect();
    refuse_overflowing_starts(cfg, &initial)?;
    prepare_dir(dir, cfg)?;
    // a run killed while writing its checkpoint or a loss curve left a temporary file: this directory
    // has one writer (the lock)
    for d in [dir.to_path_buf(), dir.join("curves")] {
        crate::io::remove_partials(&d)?;
    }
    let test_eval = Evaluator::new(net, test, 0..test.count, r)?;
    let shuffle_seeds: Vec<u64> =
        seeds.clone().unwrap_or_else(|| (0..r as u64).map(|i| cfg.seed.wrapping_add(i)).collect());
    let mut solver = make_solver(&device, net, cfg, (train, &train_eval), start, shuffle_seeds)?;
    let weights = solver.weights().clone();
    let best_train = device.upload(start, "best train snapshots")?;
    let best_test = device.upload(start, "best test snapshots")?;
    let mut records: Vec<RunRecord> =
        (0..r).map(|i| RunRecord { seed: seeds.as_ref().map(|s| s[i]), ..Default::default() }).collect();

    let mut buffers: Vec<(String, Buffer)> = vec![
        ("weights".into(), weights.clone()),
        ("best_train".into(), best_train.clone()),
        ("best_test".into(), best_test.clone()),
    ];
    // each buffer once: the solver's iterates are the weights
    for (name, b) in solver.buffers() {
        if !buffers.iter().any(|(_, kept)| kept.same(b)) {
            buffers.push((name, b.clone()));
        }
    }
    let mut done = 0;
    let config_sha256 = checkpoint::config_sha256(cfg)?;
    if let Some((ck, bytes)) = Checkpoint::read(dir, &config_sha256, r)? {
        Checkpoint::load_buffers(dir, &bytes, &device, &buffers)?;
        done = ck.done;
        records = ck.runs.clone();
        solver.restore(ck.solver)?;
    }
    if done == 0 {
        // the starting points' losses, evaluated above
        for (rec, loss) in records.iter_mut().zip(initial) {
            rec.initial_train = loss.is_finite().then_some(loss);
        }
    }
    progress.start(cfg.steps(), done);
    let mut last_checkpoint = std::time::Instant::now();
    let unit = cfg.optimizer.unit();
    let snapshots = Snapshots { weights: &weights, best_train: &best_train, best_test: &best_test, n };
    while done < cfg.steps() {
        let losses = step_losses(solver.as_mut(), (&train_eval, &test_eval), &weights)?;
        done += 1;
        let newly_stopped = record_step(&mut records, &losses, (done, unit), &device, &snapshots)?;
        if newly_stopped {
            let active: Vec<bool> = records.iter().map(|rec| rec.stopped.is_none()).collect();
            solver.set_active(&active)?;
        }
        if checkpoint_every.due(done, last_checkpoint.elapsed()) || done == cfg.steps() {
            let state = solver.state()?;
            let config_sha256 = Some(config_sha256.clone());
            let ck = Checkpoint { done, runs: records.clone(), solver: state, config_sha256, tensors_sha256: None };
            ck.write(dir, &device, &buffers)?;
            last_checkpoint = std::time::Instant::now();
        }
        progress.step(done, &records);
    }
    finish(dir, cfg, &device, &records, (&best_train, &best_test))
}

/// One step of the solver and the losses it leaves: the training loss of every run (from the step when
/// the solver evaluated it at the new weights, else evaluated here) and the test loss.
fn step_losses(
    solver: &mut dyn Solver,
    (train_eval, test_eval): (&Evaluator, &Evaluator),
    weights: &Buffer,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let train_losses: Vec<f64> = match solver.step()? {
        Some(losses) => losses,
        None => full_set_losses(train_eval, weights)?,
    };
    Ok((train_losses, full_set_losses(test_eval, weights)?))
}

/// The mean loss of every run's vector of `weights` (R x N_prm) on all of `eval`'s images.
fn full_set_losses(eval: &Evaluator, weights: &Buffer) -> Result<Vec<f64>> {
    eval.device().copy(weights, 0, &eval.weights, 0, eval.weights.len())?;
    Ok(eval.evaluate(Want::Loss)?.iter().map(|e| e.loss).collect())
}

/// Whether a run diverged: its lowest training loss is above the loss it started from, so its
/// training snapshot is worse than its starting vector (a learning rate too large, or a start lower
/// than anything the optimizer reached). A lowest loss equal to the start's is no divergence: SGD
/// from an L-BFGS minimum (losses near 1e-12) leaves the loss where it was, to its last bit. `false`
/// where the start's loss was not recorded.
pub fn diverged(rec: &RunRecord) -> bool {
    matches!((rec.best_train, rec.initial_train), (Some((_, best)), Some(start)) if best > start)
}

/// Names on standard error each of the kept runs `order` that [`diverged`], with the fix for `optimizer`.
fn warn_diverged(optimizer: Optimizer, records: &[RunRecord], order: &[usize]) {
    let fix = match optimizer {
        Optimizer::Lbfgs => "its line search found no lower loss",
        _ => "try a smaller --lr",
    };
    for &i in order.iter().filter(|&&i| diverged(&records[i])) {
        let (best, start) = (records[i].best_train.unwrap().1, records[i].initial_train.unwrap_or(f64::NAN));
        eprintln!(
            "warning: run {i} diverged: its lowest training loss {best:.4e} is above its starting {start:.4e}, so its \
             training snapshot is worse than where it started; {fix}"
        );
    }
}

/// The current weights of all runs and the snapshots of each run's best so far (R x N_prm each).
struct Snapshots<'a> {
    weights: &'a Buffer,
    best_train: &'a Buffer,
    best_test: &'a Buffer,
    n: usize,
}

/// Refuses starting points whose training losses `initial` (one per run) are all non-finite, and warns of
/// those that are when some are not: no optimizer can move from an overflowing network, whatever its
/// settings (with `--init`, the file's vectors; seeded starts do not overflow the paper's networks).
fn refuse_overflowing_starts(cfg: &TrainConfig, initial: &[f64]) -> Result<()> {
    let bad: Vec<String> = (0..initial.len()).filter(|&i| !initial[i].is_finite()).map(|i| i.to_string()).collect();
    if bad.is_empty() {
        return Ok(());
    }
    let whose = if cfg.init_sha256.is_some() { "the --init file's vectors" } else { "the seeded starting points" };
    let what = format!(
        "the training loss at {whose} {} is not finite (their weights overflow the network; `losscape eval \
         --weights FILE --split train` shows each vector's loss)",
        bad.join(", ")
    );
    if bad.len() == initial.len() {
        bail!("{what}: no run can start there; give starting vectors whose loss is finite");
    }
    eprintln!("warning: {what}; those runs stop at once and are not kept");
    Ok(())
}

/// Appends step `done`'s losses to each active run's curves and copies its weights into a snapshot
/// that improved; a run whose loss is not finite stops with the reason. Returns whether one stopped now.
fn record_step(
    records: &mut [RunRecord],
    (train, test): &(Vec<f64>, Vec<f64>),
    (done, unit): (usize, &str),
    device: &Device,
    s: &Snapshots,
) -> Result<bool> {
    let n = s.n;
    let mut newly_stopped = false;
    for (i, rec) in records.iter_mut().enumerate().filter(|(_, rec)| rec.stopped.is_none()) {
        let (tr, te) = (train[i], test[i]);
        if !tr.is_finite() || !te.is_finite() {
            rec.stopped = Some(format!(
                "the {} loss became {} at {unit} {done}",
                if tr.is_finite() { "test" } else { "training" },
                if tr.is_finite() { te } else { tr }
            ));
            newly_stopped = true;
            continue;
        }
        rec.train.push(tr);
        rec.test.push(te);
        if rec.best_train.is_none_or(|(_, b)| tr < b) {
            rec.best_train = Some((done, tr));
            device.copy(s.weights, i * n, s.best_train, i * n, n)?;
        }
        if rec.best_test.is_none_or(|(_, b)| te < b) {
            rec.best_test = Some((done, te));
            device.copy(s.weights, i * n, s.best_test, i * n, n)?;
        }
    }
    Ok(newly_stopped)
}

/// Writes the kept solution sets, the curves and the summary.
fn finish(
    dir: &Path,
    cfg: &TrainConfig,
    device: &Device,
    records: &[RunRecord],
    best: (&Buffer, &Buffer),
) -> Result<Summary> {
    let n = cfg.model.n_params();
    let mut order: Vec<usize> = (0..records.len()).filter(|&i| records[i].best_train.is_some()).collect();
    order.sort_by(|&a, &b| records[a].best_train.unwrap().1.total_cmp(&records[b].best_train.unwrap().1));
    if order.len() < cfg.keep {
        eprintln!("warning: only {} of {} runs have a finite training loss; keeping those", order.len(), records.len());
    }
    order.truncate(cfg.keep);
    if order.is_empty() {
        let fix = match cfg.optimizer {
            Optimizer::Lbfgs => "check the starting weights".to_string(),
            _ => format!(
                "try a smaller --lr than {} (in a new --out directory: this one records this --lr)",
                cfg.minibatch.lr
            ),
        };
        bail!("no run produced a finite training loss, so nothing was kept; {fix}");
    }
    warn_diverged(cfg.optimizer, records, &order);
    let config = serde_json::to_string(cfg)?;
    let join = |f: &dyn Fn(&RunRecord) -> String| order.iter().map(|&i| f(&records[i])).collect::<Vec<_>>().join(",");
    for (kind, buf) in [("train", best.0), ("test", best.1)] {
        let mut flat = Vec::with_capacity(order.len() * n);
        for &i in &order {
            flat.extend(device.read::<f32>(buf, i * n, n)?);
        }
        let mut stack = WeightStack::new(cfg.model, flat);
        let pick = |rec: &RunRecord| {
            if kind == "train" {
                rec.best_train.unwrap()
            } else {
                rec.best_test.unwrap_or((0, f64::NAN))
            }
        };
        stack.metadata.insert("losscape.snapshot".into(), kind.into());
        stack
            .metadata
            .insert("losscape.runs".into(), order.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(","));
        stack.metadata.insert("losscape.seeds".into(), join(&|rec| rec.seed.map_or("".into(), |s| s.to_string())));
        stack.metadata.insert("losscape.losses".into(), join(&|rec| pick(rec).1.to_string()));
        stack.metadata.insert("losscape.snapshot_epochs".into(), join(&|rec| pick(rec).0.to_string()));
        stack.metadata.insert("losscape.config".into(), config.clone());
        write_weights(&dir.join(crate::io::workdir::set_name(cfg.model, cfg.optimizer, kind)), &stack)?;
    }
    for (i, rec) in records.iter().enumerate() {
        let mut csv = String::from("step,train_loss,test_loss\n");
        for (k, (a, b)) in rec.train.iter().zip(&rec.test).enumerate() {
            csv.push_str(&format!("{},{a},{b}\n", k + 1));
        }
        crate::io::atomic_write(&dir.join("curves").join(format!("run-{i:03}.csv")), csv.as_bytes())?;
    }
    let mean = |f: &dyn Fn(&RunRecord) -> f64| order.iter().map(|&i| f(&records[i])).sum::<f64>() / order.len() as f64;
    let summary = Summary {
        model: cfg.model,
        optimizer: cfg.optimizer,
        n_prm: n,
        kept: order.len(),
        mean_train_loss: mean(&|rec| rec.best_train.unwrap().1),
        mean_test_loss: mean(&|rec| rec.best_test.map_or(f64::NAN, |b| b.1)),
        kept_runs: order,
        runs: records.to_vec(),
    };
    let path = dir.join(crate::io::workdir::summary_name(cfg.model, cfg.optimizer));
    crate::io::atomic_write(&path, serde_json::to_string_pretty(&summary)?.as_bytes())?;
    Ok(summary)
}

/// What [`time_steps`] measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepTimes {
    /// Seconds of one SGD epoch (a median).
    pub sgd_epoch: f64,
    /// Seconds of one L-BFGS iteration (a median).
    pub lbfgs_iteration: f64,
    /// The loss-only evaluations of an iteration's line search (the median over the timed iterations
    /// of the most any run needed, as the runs' trial points are evaluated together; an iteration also
    /// evaluates loss and gradient once).
    pub lbfgs_line_search_evaluations: usize,
}

/// Seconds of one SGD epoch over `data` and of one L-BFGS iteration on it, for `runs` runs advanced
/// together (for `losscape bench`): the median of `repeats` timed epochs and iterations, after one of
/// each as a warm-up. One sample was not enough: an epoch of 2,000 images takes a few milliseconds,
/// and single timings of the same build varied by 2x between runs.
///
/// # Errors
/// The network does not plan; device errors.
pub fn time_steps(net: Network, data: &DeviceImages, runs: usize, repeats: usize) -> Result<StepTimes> {
    let device = data.device.clone();
    let start: Vec<f32> = (0..runs as u64).flat_map(|s| crate::model::init_vector(net.arch, s)).collect();
    let base = TrainConfig::new(net, Optimizer::Sgd, runs, data.count, 0);
    let cfg = TrainConfig {
        keep: runs,
        minibatch: MiniBatchConfig { epochs: repeats + 1, lr: 0.01, ..base.minibatch },
        lbfgs: LbfgsConfig { iterations: repeats + 1, ..base.lbfgs },
        ..base
    };
    let seeds: Vec<u64> = (0..runs as u64).collect();
    let eval = Evaluator::new(net, data, 0..data.count, runs)?;
    // the medians of `repeats` timed calls of `step` after a warm-up: seconds, and what it returned
    let medians = |step: &mut dyn FnMut() -> Result<usize>| -> Result<(f64, usize)> {
        step()?;
        device.wait()?;
        let (mut times, mut outs) = (Vec::with_capacity(repeats), Vec::with_capacity(repeats));
        for _ in 0..repeats.max(1) {
            let t = std::time::Instant::now();
            outs.push(step()?);
            device.wait()?;
            times.push(t.elapsed().as_secs_f64());
        }
        outs.sort_unstable();
        Ok((crate::analysis::stats::median(&times), outs[outs.len() / 2]))
    };
    let mut sgd = make_solver(&device, net, &cfg, (data, &eval), &start, seeds)?;
    let (sgd_epoch, _) = medians(&mut || sgd.step().map(|_| 0))?;
    let mut lbfgs = Lbfgs::new(&device, cfg.lbfgs.settings, runs, cfg.model.n_params(), &start)?;
    let mut objective = NetworkObjective { eval: &eval };
    let mut iteration = || Ok(lbfgs.step(&mut objective)?.iter().map(|r| r.evaluations).max().unwrap_or(0));
    let (lbfgs_iteration, evaluations) = medians(&mut iteration)?;
    Ok(StepTimes { sgd_epoch, lbfgs_iteration, lbfgs_line_search_evaluations: evaluations })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(initial_train: Option<f64>, best: f64) -> RunRecord {
        RunRecord { initial_train, best_train: Some((3, best)), ..Default::default() }
    }

    #[test]
    fn a_run_diverged_only_when_its_best_is_above_its_start() {
        assert!(diverged(&run(Some(2.3), 40.0)));
        assert!(!diverged(&run(Some(2.3), 0.5)));
        // SGD from an L-BFGS minimum: the loss stays where it was, bit for bit
        assert!(!diverged(&run(Some(2.8079e-12), 2.8079e-12)));
        // a record from before the start was kept
        assert!(!diverged(&run(None, 40.0)));
    }
}
