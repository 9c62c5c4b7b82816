//! Batched mini-batch SGD (PyTorch's plain `SGD`: w ← w − lr ∇f_B(w), no momentum) for R runs, each with
//! its own reshuffle per epoch. The weights live in the evaluator of full mini-batches; the last,
//! partial mini-batch of an epoch has its own evaluator.

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::objective::BatchObjective;
use super::solver::Solver;
use crate::backend::{Buffer, Command, Device, Rows};
use crate::data::{DeviceImages, PIXELS};
use crate::model::{Evaluator, Network, Want};
use crate::ops::Selection;

/// SGD settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SgdSettings {
    /// Learning rate.
    pub lr: f64,
    /// Mini-batch size (1 to the number of training images).
    pub batch: usize,
    /// Per run: the seed of its reshuffles (run r's order in epoch e is a function of seed r and e).
    pub seeds: Vec<u64>,
}

/// The host half of the SGD state.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SgdHost {
    /// Epochs done.
    pub epoch: usize,
    /// Per run: still moving.
    pub active: Vec<bool>,
}

/// R SGD runs over the training images `data`.
pub struct Sgd {
    device: Device,
    settings: SgdSettings,
    data: DeviceImages,
    full: Evaluator,
    last: Option<Evaluator>,
    batch: DeviceImages,
    order: Buffer,
    updates: (Command, Option<Command>),
    epoch: usize,
    active: Vec<bool>,
}

impl Sgd {
    /// R = `settings.seeds.len()` runs of `net` starting from `start` (R x n); errors when the batch
    /// size is not between 1 and the number of images, or a buffer cannot be made.
    pub fn new(
        device: &Device,
        net: Network,
        settings: SgdSettings,
        data: &DeviceImages,
        start: &[f32],
    ) -> Result<Sgd> {
        let r = settings.seeds.len();
        if settings.batch == 0 || settings.batch > data.count {
            bail!("the mini-batch size must be between 1 and the {} training images", data.count);
        }
        let batch = DeviceImages::empty(device, r * settings.batch)?;
        let full = Evaluator::per_vector(net, &batch, settings.batch, r)?;
        let rem = data.count % settings.batch;
        let last = (rem > 0).then(|| Evaluator::per_vector(net, &batch, rem, r)).transpose()?;
        full.set_weights(start)?;
        let active = vec![true; r];
        let updates = Sgd::updates(device, settings.lr as f32, &active, &full, &last)?;
        let order = device.zeros(r * data.count, "shuffles")?;
        Ok(Sgd {
            device: device.clone(),
            settings,
            data: data.clone(),
            full,
            last,
            batch,
            order,
            updates,
            epoch: 0,
            active,
        })
    }

    /// w ← w − lr g for the active runs, recorded once.
    fn updates(
        device: &Device,
        lr: f32,
        active: &[bool],
        full: &Evaluator,
        last: &Option<Evaluator>,
    ) -> Result<(Command, Option<Command>)> {
        let coef: Vec<f32> = active.iter().map(|&a| if a { -lr } else { 0.0 }).collect();
        let (r, n) = (active.len(), full.network().arch.n_params());
        let upd = |e: &Evaluator| device.axpy_command(&coef, Rows::new(&e.grads, r, n), Rows::new(&e.weights, r, n));
        Ok((upd(full)?, last.as_ref().map(upd).transpose()?))
    }

    /// One epoch, each run with its own shuffle (a function of its seed and the epoch, so a resumed
    /// run repeats it exactly). No read-back.
    fn epoch(&self) -> Result<()> {
        let (data, bs) = (&self.data, self.settings.batch);
        let (r, n_img, n) = (self.settings.seeds.len(), data.count, self.full.network().arch.n_params());
        let mut order = Vec::with_capacity(r * n_img);
        for &seed in &self.settings.seeds {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5eed);
            rng.set_stream(self.epoch as u64);
            let mut perm: Vec<u32> = (0..n_img as u32).collect();
            perm.shuffle(&mut rng);
            order.extend(perm);
        }
        self.device.write(&self.order, 0, &order)?;
        let (src, dst) = ((&data.pixels, &data.labels), (&self.batch.pixels, &self.batch.labels));
        let select = |per_run, offset| {
            self.device.select_images(
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
            self.device.submit(&list);
        }
        if let (Some(last), Some(update)) = (&self.last, &self.updates.1) {
            let pick = select(n_img - full_steps * bs, full_steps * bs)?;
            self.device.copy(&self.full.weights, 0, &last.weights, 0, r * n)?;
            let mut list = vec![&pick];
            list.extend(last.ordered(Want::LossAndGrad));
            list.push(update);
            self.device.submit(&list);
            self.device.copy(&last.weights, 0, &self.full.weights, 0, r * n)?;
        }
        Ok(())
    }
}

impl Solver for Sgd {
    fn weights(&self) -> &Buffer {
        &self.full.weights
    }

    fn step(&mut self, _objective: &mut dyn BatchObjective) -> Result<Option<Vec<f64>>> {
        self.epoch()?;
        self.epoch += 1;
        Ok(None)
    }

    fn set_active(&mut self, active: &[bool]) -> Result<()> {
        self.active = active.to_vec();
        self.updates = Sgd::updates(&self.device, self.settings.lr as f32, active, &self.full, &self.last)?;
        Ok(())
    }

    fn buffers(&self) -> Vec<(String, &Buffer)> {
        vec![("sgd.w".to_string(), &self.full.weights)]
    }

    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::to_value(SgdHost { epoch: self.epoch, active: self.active.clone() })?)
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        let h: SgdHost = serde_json::from_value(state)?;
        self.epoch = h.epoch;
        self.set_active(&h.active)
    }
}
