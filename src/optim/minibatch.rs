//! Batched mini-batch optimizers for R runs, each with its own reshuffle per epoch: PyTorch's plain
//! `SGD` (w ← w − lr ∇f_B(w), no momentum) and `Adam` ([`super::adam`]: Kingma & Ba 2015 with PyTorch's
//! defaults; the step count t runs on across epochs). Their problem is a network's mean loss over the
//! training images they are built on, from which they draw their mini-batches. The weights live in the
//! evaluator of full mini-batches; the last, partial mini-batch of an epoch has its own evaluator, and
//! is a step like the others (PyTorch's `DataLoader` without `drop_last`).
//!
//! Everything a step runs is recorded when the optimizer is built (the selection of each step's
//! mini-batches, the evaluation, the update), so an epoch creates nothing on a GPU and reads nothing
//! back; SGD steps are submitted [`SGD_STEPS_PER_SUBMISSION`] at a time, Adam steps one at a time
//! (each rewrites its bias corrections).

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::adam::{Adam, AdamSettings, AdamUpdate};
use super::solver::Solver;
use crate::backend::{Buffer, Coef, Command, Device, Rows};
use crate::data::DeviceImages;
use crate::model::{Evaluator, Network, Want};
use crate::ops::Selection;

/// SGD steps recorded into one submission: enough that a GPU is not waiting on the host between
/// small steps, few enough that a command buffer stays small.
pub const SGD_STEPS_PER_SUBMISSION: usize = 32;

/// The update rule of a mini-batch step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// w ← w − lr g.
    Sgd,
    /// Adam with PyTorch's defaults ([`super::adam`]).
    Adam,
}

/// Mini-batch optimizer settings.
#[derive(Clone, Debug, PartialEq)]
pub struct MiniBatchSettings {
    pub rule: Rule,
    /// Learning rate.
    pub lr: f64,
    /// Mini-batch size (1 to the number of training images).
    pub batch: usize,
    /// Per run: the seed of its reshuffles (run r's order in epoch e is a function of seed r and e).
    pub seeds: Vec<u64>,
}

/// The host half of a mini-batch optimizer's state.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MiniBatchHost {
    /// Epochs done.
    pub epoch: usize,
    /// Per run: still moving.
    pub active: Vec<bool>,
}

/// Adam's device state: the moment estimates, and what keeps stopped runs where they stopped (Adam
/// has no per-run coefficient to zero, so their weights are copied back after each step).
struct AdamState {
    adam: Adam,
    /// The weights of the stopped runs, and a flag per run (1: stopped).
    frozen: Buffer,
    stopped: Buffer,
}

/// The recorded update of one evaluator's step.
enum Update {
    /// w ← w − lr g, with lr 0 for the stopped runs.
    Sgd(Command),
    /// Adam's step on every run, then the copy that puts the stopped runs back.
    Adam { step: AdamUpdate, freeze: Command },
}

/// R runs of mini-batch SGD or Adam over the training images `data`.
pub struct MiniBatch {
    device: Device,
    settings: MiniBatchSettings,
    data: DeviceImages,
    full: Evaluator,
    last: Option<Evaluator>,
    order: Buffer,
    /// The selection of each step's mini-batches, in epoch order (the partial one last).
    picks: Vec<Command>,
    adam: Option<AdamState>,
    updates: (Update, Option<Update>),
    epoch: usize,
    active: Vec<bool>,
}

impl MiniBatch {
    /// R = `settings.seeds.len()` runs of `net` starting from `start` (R x n).
    ///
    /// # Errors
    /// The batch size is not between 1 and the number of images; a buffer cannot be made.
    pub fn new(
        device: &Device,
        net: Network,
        settings: MiniBatchSettings,
        data: &DeviceImages,
        start: &[f32],
    ) -> Result<MiniBatch> {
        let (r, bs, n) = (settings.seeds.len(), settings.batch, net.arch.n_params());
        if bs == 0 || bs > data.count {
            bail!("the mini-batch size must be between 1 and the {} training images", data.count);
        }
        let batch = DeviceImages::empty(device, r * bs, data.shape)?;
        let full = Evaluator::per_vector(net, &batch, bs, r)?;
        let rem = data.count % bs;
        let last = (rem > 0).then(|| Evaluator::per_vector(net, &batch, rem, r)).transpose()?;
        full.set_weights(start)?;
        let order = device.zeros(r * data.count, "shuffles")?;
        let picks = record_picks(device, data, &batch, &order, r, bs)?;
        let adam = match settings.rule {
            Rule::Sgd => None,
            Rule::Adam => Some(AdamState {
                adam: Adam::new(device, AdamSettings { lr: settings.lr }, r * n)?,
                frozen: device.zeros(r * n, "stopped runs")?,
                stopped: device.zeros(r, "stopped flags")?,
            }),
        };
        let active = vec![true; r];
        let updates = record_updates(device, &settings, &active, adam.as_ref(), (&full, last.as_ref()))?;
        Ok(MiniBatch {
            device: device.clone(),
            settings,
            data: data.clone(),
            full,
            last,
            order,
            picks,
            adam,
            updates,
            epoch: 0,
            active,
        })
    }

    /// Mini-batch steps per epoch (the partial one included).
    pub fn steps_per_epoch(&self) -> usize {
        self.picks.len()
    }

    /// Writes each run's shuffle of epoch `self.epoch` (a function of its seed and the epoch, so a
    /// resumed run repeats it exactly).
    fn shuffle(&self) -> Result<()> {
        let n_img = self.data.count;
        let mut order = Vec::with_capacity(self.settings.seeds.len() * n_img);
        for &seed in &self.settings.seeds {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5eed);
            rng.set_stream(self.epoch as u64);
            let mut perm: Vec<u32> = (0..n_img as u32).collect();
            perm.shuffle(&mut rng);
            order.extend(perm);
        }
        self.device.write(&self.order, 0, &order)
    }

    /// The commands of step `i` of the epoch on `eval` with `update`.
    fn step_commands<'a>(&'a self, i: usize, eval: &'a Evaluator, update: &'a Update) -> Vec<&'a Command> {
        let mut list = vec![&self.picks[i]];
        list.extend(eval.ordered(Want::LossAndGrad));
        match update {
            Update::Sgd(step) => list.push(step),
            Update::Adam { step, freeze } => {
                list.push(step.command());
                list.extend(Some(freeze).filter(|_| self.active.contains(&false)));
            }
        }
        list
    }

    /// Submits the full mini-batches' steps `steps` of the epoch; `first_t` is the Adam step number of
    /// the first (from 1).
    fn full_steps(&mut self, steps: std::ops::Range<usize>, first_t: usize) -> Result<()> {
        if self.adam.is_none() {
            for group in steps.collect::<Vec<_>>().chunks(SGD_STEPS_PER_SUBMISSION) {
                let list: Vec<&Command> =
                    group.iter().flat_map(|&i| self.step_commands(i, &self.full, &self.updates.0)).collect();
                self.device.submit(&list);
            }
            return Ok(());
        }
        for (k, i) in steps.enumerate() {
            self.set_adam_step(false, first_t + k)?;
            self.device.submit(&self.step_commands(i, &self.full, &self.updates.0));
        }
        Ok(())
    }

    /// Makes the recorded Adam update (of the full or the `partial` evaluator) take step `t`.
    fn set_adam_step(&mut self, partial: bool, t: usize) -> Result<()> {
        let update = if partial { self.updates.1.as_mut() } else { Some(&mut self.updates.0) };
        match update {
            Some(Update::Adam { step, .. }) => step.set_step(t),
            _ => Ok(()),
        }
    }

    /// One epoch. No read-back.
    fn epoch(&mut self) -> Result<()> {
        self.shuffle()?;
        let (r, n) = (self.settings.seeds.len(), self.full.n_params());
        let steps = self.steps_per_epoch();
        let full_steps = self.data.count / self.settings.batch;
        self.full_steps(0..full_steps, self.epoch * steps + 1)?;
        self.set_adam_step(true, (self.epoch + 1) * steps)?;
        if let (Some(last), Some(update)) = (&self.last, &self.updates.1) {
            self.device.copy(&self.full.weights, 0, &last.weights, 0, r * n)?;
            self.device.submit(&self.step_commands(full_steps, last, update));
            self.device.copy(&last.weights, 0, &self.full.weights, 0, r * n)?;
        }
        Ok(())
    }
}

/// The selection commands of an epoch's mini-batches out of `order` (R shuffles of the images) into
/// `batch`: one per full mini-batch of `bs`, and one for the partial last.
fn record_picks(
    device: &Device,
    data: &DeviceImages,
    batch: &DeviceImages,
    order: &Buffer,
    r: usize,
    bs: usize,
) -> Result<Vec<Command>> {
    let n_img = data.count;
    let (src, dst) = ((&data.pixels, &data.labels), (&batch.pixels, &batch.labels));
    let select = |per_run, offset| {
        device.select_images(
            Selection { runs: r, per_run, stride: n_img, offset, pixels: data.shape.pixels() },
            src,
            order,
            dst,
        )
    };
    let mut picks: Vec<Command> = (0..n_img / bs).map(|t| select(bs, t * bs)).collect::<Result<_>>()?;
    if !n_img.is_multiple_of(bs) {
        picks.push(select(n_img % bs, n_img / bs * bs)?);
    }
    Ok(picks)
}

/// The recorded updates of the full and the partial evaluator: for SGD w ← w − lr g on the active
/// runs; for Adam the step on every run, then the stopped runs' weights put back.
fn record_updates(
    device: &Device,
    settings: &MiniBatchSettings,
    active: &[bool],
    adam: Option<&AdamState>,
    (full, last): (&Evaluator, Option<&Evaluator>),
) -> Result<(Update, Option<Update>)> {
    let lr = settings.lr as f32;
    let (r, n) = (active.len(), full.n_params());
    let record = |e: &Evaluator| -> Result<Update> {
        let (grads, weights) = (Rows::new(&e.grads, r, n), Rows::new(&e.weights, r, n));
        Ok(match adam {
            None => {
                let coef: Vec<f32> = active.iter().map(|&a| if a { -lr } else { 0.0 }).collect();
                Update::Sgd(device.axpy_command(&coef, grads, weights)?)
            }
            Some(a) => Update::Adam {
                step: a.adam.record(&e.grads, &e.weights)?,
                freeze: device.copy_rows(Rows::new(&a.frozen, r, n), weights, Some(Coef::at(&a.stopped, 0, 1)))?,
            },
        })
    };
    Ok((record(full)?, last.map(record).transpose()?))
}

impl Solver for MiniBatch {
    fn weights(&self) -> &Buffer {
        &self.full.weights
    }

    fn step(&mut self) -> Result<Option<Vec<f64>>> {
        self.epoch()?;
        self.epoch += 1;
        Ok(None)
    }

    fn set_active(&mut self, active: &[bool]) -> Result<()> {
        self.active = active.to_vec();
        match &self.adam {
            None => {
                let evals = (&self.full, self.last.as_ref());
                self.updates = record_updates(&self.device, &self.settings, active, None, evals)?;
            }
            Some(a) => {
                // the stopped runs' rows of `frozen` are their weights now, which no step changes
                self.device.copy(&self.full.weights, 0, &a.frozen, 0, a.frozen.len())?;
                let flags: Vec<f32> = active.iter().map(|&a| if a { 0.0 } else { 1.0 }).collect();
                self.device.write(&a.stopped, 0, &flags)?;
            }
        }
        Ok(())
    }

    fn buffers(&self) -> Vec<(String, &Buffer)> {
        let mut buffers = vec![("sgd.w".to_string(), &self.full.weights)];
        if let Some(a) = &self.adam {
            let [m, v] = a.adam.moments();
            buffers.extend([("adam.m".to_string(), m), ("adam.v".to_string(), v)]);
        }
        buffers
    }

    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::to_value(MiniBatchHost { epoch: self.epoch, active: self.active.clone() })?)
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        let h: MiniBatchHost = serde_json::from_value(state)?;
        self.epoch = h.epoch;
        self.set_active(&h.active)
    }
}
