//! Training solution sets: R seeded runs of SGD (mini-batches of 64, a reshuffle per run and epoch) or
//! full-batch L-BFGS, advanced together through the batched primitive. After every epoch (iteration)
//! each run's full training and test losses extend its curves, the argmin snapshots are kept on the GPU,
//! and the whole state is checkpointed atomically, so a killed run resumes where it stopped and ends
//! with the same files as an uninterrupted one.

mod checkpoint;

use anyhow::{anyhow, bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::backend::{Buffer, Command, Device, Rows};
use crate::data::DeviceImages;
use crate::data::PIXELS;
use crate::io::config::prepare_dir;
use crate::io::{write_weights, WeightStack};
use crate::model::{Arch, Evaluator, Network, Want};
use crate::ops::{Act, Selection};
use crate::optim::{Lbfgs, LbfgsSettings, LineSearchKind, NetworkObjective};
use checkpoint::Checkpoint;

/// Which optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    Sgd,
    Lbfgs,
}

impl Optimizer {
    pub fn id(self) -> &'static str {
        match self {
            Optimizer::Sgd => "sgd",
            Optimizer::Lbfgs => "lbfgs",
        }
    }
}

/// Everything that determines a training run's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: Arch,
    pub activation: Act,
    pub optimizer: Optimizer,
    pub runs: usize,
    pub keep: usize,
    /// Run r starts from seed + r (or from vector r of the init file).
    pub seed: u64,
    /// SHA-256 of the --init file, when runs start from given vectors.
    pub init_sha256: Option<String>,
    pub train_images: usize,
    pub test_images: usize,
    /// SGD: epochs, learning rate, mini-batch size.
    pub epochs: usize,
    pub lr: f64,
    pub batch: usize,
    /// L-BFGS: iterations, history, line search and its budget.
    pub iterations: usize,
    pub history: usize,
    pub line_search: LineSearchKind,
    pub budget: usize,
}

impl TrainConfig {
    /// Epochs (SGD) or iterations (L-BFGS).
    pub fn steps(&self) -> usize {
        match self.optimizer {
            Optimizer::Sgd => self.epochs,
            Optimizer::Lbfgs => self.iterations,
        }
    }
}

/// One run's curves and snapshots.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub seed: Option<u64>,
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

/// The optimizer-specific state.
enum Engine {
    Sgd(Box<Sgd>),
    Lbfgs(Box<Lbfgs>),
}

/// Batched SGD: the weights live in the evaluator of full mini-batches; the last, partial mini-batch
/// of an epoch has its own evaluator.
struct Sgd {
    gpu: Device,
    full: Evaluator,
    last: Option<Evaluator>,
    batch: DeviceImages,
    order: Buffer,
    lr: f32,
    updates: (Command, Option<Command>),
}

impl Sgd {
    fn new(gpu: &Device, net: Network, cfg: &TrainConfig, train: &DeviceImages, start: &[f32]) -> Result<Sgd> {
        let r = cfg.runs;
        if cfg.batch == 0 || cfg.batch > train.count {
            bail!("the mini-batch size must be between 1 and the {} training images", train.count);
        }
        let batch = DeviceImages::empty(gpu, r * cfg.batch)?;
        let full = Evaluator::per_vector(net, &batch, cfg.batch, r)?;
        let rem = train.count % cfg.batch;
        let last = (rem > 0).then(|| Evaluator::per_vector(net, &batch, rem, r)).transpose()?;
        full.set_weights(start)?;
        let lr = cfg.lr as f32;
        let updates = Sgd::updates(gpu, lr, &vec![true; r], &full, &last)?;
        let order = gpu.zeros(r * train.count, "shuffles")?;
        Ok(Sgd { gpu: gpu.clone(), full, last, batch, order, lr, updates })
    }

    /// w <- w - lr g for the active runs, recorded once.
    fn updates(
        gpu: &Device,
        lr: f32,
        active: &[bool],
        full: &Evaluator,
        last: &Option<Evaluator>,
    ) -> Result<(Command, Option<Command>)> {
        let coef: Vec<f32> = active.iter().map(|&a| if a { -lr } else { 0.0 }).collect();
        let (r, n) = (active.len(), full.network().arch.n_params());
        let upd = |e: &Evaluator| gpu.axpy_command(&coef, Rows::new(&e.grads, r, n), Rows::new(&e.weights, r, n));
        Ok((upd(full)?, last.as_ref().map(upd).transpose()?))
    }

    fn set_active(&mut self, active: &[bool]) -> Result<()> {
        self.updates = Sgd::updates(&self.gpu, self.lr, active, &self.full, &self.last)?;
        Ok(())
    }

    /// One epoch over `data`, each run with its own shuffle (a function of its seed and the epoch, so
    /// a resumed run repeats it exactly). No read-back.
    fn epoch(&self, cfg: &TrainConfig, seeds: &[u64], epoch: usize, data: &DeviceImages) -> Result<()> {
        let (r, n_img, bs, n) = (cfg.runs, data.count, cfg.batch, cfg.model.n_params());
        let mut order = Vec::with_capacity(r * n_img);
        for &seed in seeds {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5eed);
            rng.set_stream(epoch as u64);
            let mut perm: Vec<u32> = (0..n_img as u32).collect();
            perm.shuffle(&mut rng);
            order.extend(perm);
        }
        self.gpu.write(&self.order, 0, &order)?;
        let (src, dst) = ((&data.pixels, &data.labels), (&self.batch.pixels, &self.batch.labels));
        let select = |per_run, offset| {
            self.gpu.select_images(
                Selection { runs: r, per_run, stride: n_img, offset, pixels: PIXELS },
                src,
                &self.order,
                dst,
            )
        };
        let full_steps = n_img / bs;
        for t in 0..full_steps {
            let pick = select(bs, t * bs)?;
            let mut list = vec![&pick];
            list.extend(self.full.ordered(Want::LossAndGrad));
            list.push(&self.updates.0);
            self.gpu.submit(&list);
        }
        if let (Some(last), Some(update)) = (&self.last, &self.updates.1) {
            let pick = select(n_img - full_steps * bs, full_steps * bs)?;
            self.gpu.copy(&self.full.weights, 0, &last.weights, 0, r * n)?;
            let mut list = vec![&pick];
            list.extend(last.ordered(Want::LossAndGrad));
            list.push(update);
            self.gpu.submit(&list);
            self.gpu.copy(&last.weights, 0, &self.full.weights, 0, r * n)?;
        }
        Ok(())
    }
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
    /// Write the checkpoint every this many epochs (iterations), and after the last; at least 1.
    pub checkpoint_every: usize,
}

/// Trains (or resumes) and writes the solution sets; returns the summary.
pub fn train(inputs: TrainInputs, progress: &mut dyn TrainProgress) -> Result<Summary> {
    let TrainInputs { dir, cfg, start, seeds, train, test, checkpoint_every } = inputs;
    let gpu = train.device.clone();
    let (r, n) = (cfg.runs, cfg.model.n_params());
    if cfg.keep == 0 || cfg.keep > r {
        bail!("--keep must be between 1 and --runs ({r})");
    }
    if start.len() != r * n {
        bail!("{} starting values for {r} runs of {n} parameters", start.len());
    }
    prepare_dir(dir, cfg)?;
    let net = Network { arch: cfg.model, act: cfg.activation };
    let train_eval = Evaluator::new(net, train, 0..train.count, r)?;
    let test_eval = Evaluator::new(net, test, 0..test.count, r)?;
    let mut engine = match cfg.optimizer {
        Optimizer::Sgd => Engine::Sgd(Box::new(Sgd::new(&gpu, net, cfg, train, start)?)),
        Optimizer::Lbfgs => {
            let settings = LbfgsSettings { history: cfg.history, line_search: cfg.line_search, budget: cfg.budget };
            Engine::Lbfgs(Box::new(Lbfgs::new(&gpu, settings, r, n, start)?))
        }
    };
    let weights = match &engine {
        Engine::Sgd(s) => s.full.weights.clone(),
        Engine::Lbfgs(opt) => opt.w.clone(),
    };
    let best_train = gpu.upload(start, "best train snapshots")?;
    let best_test = gpu.upload(start, "best test snapshots")?;
    let shuffle_seeds: Vec<u64> =
        seeds.clone().unwrap_or_else(|| (0..r as u64).map(|i| cfg.seed.wrapping_add(i)).collect());
    let mut records: Vec<RunRecord> =
        (0..r).map(|i| RunRecord { seed: seeds.as_ref().map(|s| s[i]), ..Default::default() }).collect();

    let mut buffers: Vec<(String, Buffer)> = vec![
        ("weights".into(), weights.clone()),
        ("best_train".into(), best_train.clone()),
        ("best_test".into(), best_test.clone()),
    ];
    if let Engine::Lbfgs(opt) = &engine {
        // each buffer once: the L-BFGS iterates are the weights
        for (name, b) in opt.buffers() {
            if !buffers.iter().any(|(_, kept)| kept.same(b)) {
                buffers.push((name, b.clone()));
            }
        }
    }
    let mut done = 0;
    if let Some((ck, bytes)) = Checkpoint::read(dir)? {
        Checkpoint::load_buffers(&bytes, &gpu, &buffers)?;
        done = ck.done;
        records = ck.runs.clone();
        let active: Vec<bool> = records.iter().map(|rec| rec.stopped.is_none()).collect();
        match &mut engine {
            Engine::Lbfgs(opt) => {
                opt.restore_host(ck.lbfgs.clone().ok_or_else(|| anyhow!("the checkpoint lacks the L-BFGS state"))?)
            }
            Engine::Sgd(s) => s.set_active(&active)?,
        }
    }
    progress.start(cfg.steps(), done);
    let unit = if cfg.optimizer == Optimizer::Sgd { "epoch" } else { "iteration" };
    while done < cfg.steps() {
        let train_losses: Vec<f64> = match &mut engine {
            Engine::Sgd(s) => {
                s.epoch(cfg, &shuffle_seeds, done, train)?;
                gpu.copy(&weights, 0, &train_eval.weights, 0, r * n)?;
                train_eval.run(Want::Loss);
                train_eval.results()?.iter().map(|e| e.loss).collect()
            }
            Engine::Lbfgs(opt) => {
                opt.step(&mut NetworkObjective { eval: &train_eval })?.iter().map(|rep| rep.loss).collect()
            }
        };
        gpu.copy(&weights, 0, &test_eval.weights, 0, r * n)?;
        test_eval.run(Want::Loss);
        let test_losses: Vec<f64> = test_eval.results()?.iter().map(|e| e.loss).collect();
        done += 1;
        let mut newly_stopped = false;
        for (i, rec) in records.iter_mut().enumerate() {
            if rec.stopped.is_some() {
                continue;
            }
            let (tr, te) = (train_losses[i], test_losses[i]);
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
                gpu.copy(&weights, i * n, &best_train, i * n, n)?;
            }
            if rec.best_test.is_none_or(|(_, b)| te < b) {
                rec.best_test = Some((done, te));
                gpu.copy(&weights, i * n, &best_test, i * n, n)?;
            }
        }
        if newly_stopped {
            let active: Vec<bool> = records.iter().map(|rec| rec.stopped.is_none()).collect();
            match &mut engine {
                Engine::Sgd(s) => s.set_active(&active)?,
                Engine::Lbfgs(opt) => opt.active.iter_mut().zip(&active).for_each(|(a, &b)| *a &= b),
            }
        }
        let lbfgs = match &engine {
            Engine::Lbfgs(opt) => Some(opt.host()),
            Engine::Sgd(_) => None,
        };
        if done % checkpoint_every.max(1) == 0 || done == cfg.steps() {
            Checkpoint { done, runs: records.clone(), lbfgs }.write(dir, &gpu, &buffers)?;
        }
        progress.step(done, &records);
    }
    finish(dir, cfg, &gpu, &records, (&best_train, &best_test))
}

/// Writes the kept solution sets, the curves and the summary.
fn finish(
    dir: &Path,
    cfg: &TrainConfig,
    gpu: &Device,
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
        bail!("no run produced a finite training loss; try a smaller --lr");
    }
    let config = serde_json::to_string(cfg)?;
    let join = |f: &dyn Fn(&RunRecord) -> String| order.iter().map(|&i| f(&records[i])).collect::<Vec<_>>().join(",");
    for (kind, buf) in [("train", best.0), ("test", best.1)] {
        let mut flat = Vec::with_capacity(order.len() * n);
        for &i in &order {
            flat.extend(gpu.read::<f32>(buf, i * n, n)?);
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
        write_weights(&dir.join(format!("{}-{}-{kind}.safetensors", cfg.model.id(), cfg.optimizer.id())), &stack)?;
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
    let path = dir.join(format!("{}-{}-summary.json", cfg.model.id(), cfg.optimizer.id()));
    crate::io::atomic_write(&path, serde_json::to_string_pretty(&summary)?.as_bytes())?;
    Ok(summary)
}

/// Seconds of one SGD epoch over `data` and of one L-BFGS iteration on it, for `runs` runs advanced
/// together (for `losscape bench`; the first of each is a warm-up and not counted).
pub fn time_steps(net: Network, data: &DeviceImages, runs: usize) -> Result<(f64, f64)> {
    let gpu = data.device.clone();
    let n = net.arch.n_params();
    let start: Vec<f32> = (0..runs as u64).flat_map(|s| crate::model::init_vector(net.arch, s)).collect();
    let cfg = TrainConfig {
        model: net.arch,
        activation: net.act,
        optimizer: Optimizer::Sgd,
        runs,
        keep: runs,
        seed: 0,
        init_sha256: None,
        train_images: data.count,
        test_images: 0,
        epochs: 2,
        lr: 0.01,
        batch: 64.min(data.count),
        iterations: 2,
        history: 10,
        line_search: LineSearchKind::Reference,
        budget: 6,
    };
    let seeds: Vec<u64> = (0..runs as u64).collect();
    let sgd = Sgd::new(&gpu, net, &cfg, data, &start)?;
    let mut times = Vec::new();
    for epoch in 0..2 {
        let t = std::time::Instant::now();
        sgd.epoch(&cfg, &seeds, epoch, data)?;
        gpu.wait()?;
        times.push(t.elapsed().as_secs_f64());
    }
    let eval = Evaluator::new(net, data, 0..data.count, runs)?;
    let mut opt = Lbfgs::new(&gpu, LbfgsSettings::default(), runs, n, &start)?;
    let mut iters = Vec::new();
    for _ in 0..2 {
        let t = std::time::Instant::now();
        opt.step(&mut NetworkObjective { eval: &eval })?;
        iters.push(t.elapsed().as_secs_f64());
    }
    Ok((times[1], iters[1]))
}
