//! Line searches against hand-computed traces (docs/algorithms.md §3.1), and L-BFGS through the GPU vector ops.
mod common;

use losscape::backend::{Buffer, Device};
use losscape::model::Want;
use losscape::optim::line_search::{Golden, Next, Reference};
use losscape::optim::{BatchObjective, Lbfgs, LbfgsSettings, LineSearchKind};

/// Drives a reference search on phi from f0 = phi(0); returns the distances asked for and the result.
fn trace(phi: impl Fn(f64) -> f64, r_norm: f64) -> (Vec<f64>, Next) {
    let mut s = Reference::new(phi(0.0), r_norm, 1e-4, 6);
    let mut asked = Vec::new();
    let mut next = s.start();
    while let Next::Evaluate(u) = next {
        asked.push(u);
        next = s.feed(phi(u));
    }
    (asked, next)
}

/// The search ended with this step and (when known) loss, up to rounding.
fn assert_done(done: Next, step: f64, loss: Option<f64>) {
    let Next::Done { step: s, loss: l } = done else { panic!("not finished: {done:?}") };
    assert!((s - step).abs() < 1e-12, "step {s} vs {step}");
    match (l, loss) {
        (Some(a), Some(b)) => assert!((a - b).abs() < 1e-12, "loss {a} vs {b}"),
        (None, None) => {}
        other => panic!("loss {other:?}"),
    }
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
}

#[test]
fn expansion_then_golden_phase_until_the_budget() {
    // phi(u) = (u - 1)^2, |r| = 1: 0.2 and 0.8 improve, 1.6 brackets; golden phase from (0.2, 0.8, 1.6)
    let phi = |u: f64| (u - 1.0).powi(2);
    let (asked, done) = trace(phi, 1.0);
    let u4 = 0.2 + 0.382 * 1.4; // b - x > x - a: from a; phi(u4) > phi(0.8) and u4 < x: a = u4
    let u5 = u4 + 0.382 * (1.6 - u4); // phi(u5) < phi(0.8), u5 > x: a = 0.8, x = u5
    let u6 = 0.8 + 0.382 * (1.6 - 0.8); // phi(u6) > phi(u5): b = u6; budget 6 spent
    assert!(close(&asked, &[0.2, 0.8, 1.6, u4, u5, u6]), "{asked:?}");
    assert_done(done, u5, Some(phi(u5)));
}

#[test]
fn expansion_runs_to_twelve_point_eight_r() {
    let (asked, done) = trace(|u| -u, 2.0);
    assert!(close(&asked, &[0.4, 1.6, 3.2, 6.4, 12.8, 25.6]), "{asked:?}");
    assert_done(done, 25.6, Some(-25.6));
}

#[test]
fn shrinking_until_below_f0() {
    // phi(u) = 100 (u - 0.01)^2: 0.2, 0.0764, 0.02918 are above f0 = 0.01; 0.01115 is below
    let phi = |u: f64| 100.0 * (u - 0.01).powi(2);
    let (asked, done) = trace(phi, 1.0);
    let expect = [0.2, 0.2 * 0.382, 0.2 * 0.382f64.powi(2), 0.2 * 0.382f64.powi(3)];
    assert!(close(&asked, &expect), "{asked:?}");
    assert_done(done, expect[3], Some(phi(expect[3])));
}

#[test]
fn shrinking_accepts_uphill_steps_within_tolerance_or_at_the_budget() {
    // within the absolute tolerance at b = 0.2|r|: stop there although the loss went up
    let (asked, done) = trace(|u| if u == 0.0 { 1.0 } else { 1.0 + 5e-5 }, 1.0);
    assert!(close(&asked, &[0.2],), "{asked:?}");
    assert_done(done, 0.2, Some(1.0 + 5e-5));
    // always uphill: six evaluations, then the last (uphill) trial is taken
    let (asked, done) = trace(|u| 1.0 + u, 1.0);
    let expect: Vec<f64> = (0..6).map(|i| 0.2 * 0.382f64.powi(i)).collect();
    assert!(close(&asked, &expect), "{asked:?}");
    assert_done(done, expect[5], Some(1.0 + expect[5]));
}

#[test]
fn ties_stop_with_an_uncounted_evaluation() {
    // phi(u1) = f0: step 0.1|r|
    let (asked, done) = trace(|_| 1.0, 3.0);
    assert!(close(&asked, &[0.6000000000000001]), "{asked:?}");
    assert_done(done, 0.30000000000000004, None);
    // tie during expansion: step (a + t) / 2 with a = 0
    let (asked, done) = trace(|u| if u == 0.0 { 1.0 } else { 0.5 }, 1.0);
    assert!(close(&asked, &[0.2, 0.8]), "{asked:?}");
    assert_done(done, 0.4, None);
    // tie while shrinking: step t / 2
    let (asked, done) = trace(|u| if u > 0.1 { 2.0 } else { 1.0 }, 1.0);
    assert!(close(&asked, &[0.2, 0.0764]), "{asked:?}");
    assert_done(done, 0.0382, None);
}

#[test]
fn golden_variant_converges_and_never_goes_uphill() {
    let drive = |phi: &dyn Fn(f64) -> f64| {
        let mut s = Golden::new(phi(0.0), 1.0, 1e-3, 40);
        let mut next = s.start();
        while let Next::Evaluate(u) = next {
            next = s.feed(phi(u));
        }
        next
    };
    let Next::Done { step, loss } = drive(&|u| (u - 1.0).powi(2)) else { panic!() };
    assert!((step - 1.0).abs() < 2e-3 && loss.unwrap() < 1e-5, "step {step}");
    assert_eq!(drive(&|u| 1.0 + u), Next::Done { step: 0.0, loss: Some(1.0) });
}

/// Objectives computed on the CPU from the GPU input, gradients written back: L-BFGS itself only
/// touches GPU vectors.
struct CpuObjective {
    gpu: Device,
    rows: usize,
    n: usize,
    input: Buffer,
    grads: Buffer,
    f: fn(&[f64]) -> (f64, Vec<f64>),
}

impl BatchObjective for CpuObjective {
    fn rows(&self) -> usize {
        self.rows
    }
    fn dim(&self) -> usize {
        self.n
    }
    fn input(&self) -> &Buffer {
        &self.input
    }
    fn grads(&self) -> &Buffer {
        &self.grads
    }
    fn evaluate(&mut self, want: Want) -> anyhow::Result<Vec<f64>> {
        let x: Vec<f32> = self.gpu.read(&self.input, 0, self.rows * self.n)?;
        let mut losses = Vec::new();
        let mut grads = Vec::new();
        for r in 0..self.rows {
            let row: Vec<f64> = x[r * self.n..(r + 1) * self.n].iter().map(|&v| v as f64).collect();
            let (f, g) = (self.f)(&row);
            losses.push(f);
            grads.extend(g.iter().map(|&v| v as f32));
        }
        if want == Want::LossAndGrad {
            self.gpu.write(&self.grads, 0, &grads).unwrap();
        }
        Ok(losses)
    }
}

fn quadratic(x: &[f64]) -> (f64, Vec<f64>) {
    let c = |i: usize| 1.0 + 9.0 * i as f64 / (x.len() - 1) as f64;
    let f = x.iter().enumerate().map(|(i, v)| 0.5 * c(i) * v * v).sum();
    (f, x.iter().enumerate().map(|(i, v)| c(i) * v).collect())
}

fn rosenbrock(x: &[f64]) -> (f64, Vec<f64>) {
    let (a, b) = (x[0], x[1]);
    let f = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
    (f, vec![-2.0 * (1.0 - a) - 400.0 * a * (b - a * a), 200.0 * (b - a * a)])
}

fn minimise(
    f: fn(&[f64]) -> (f64, Vec<f64>),
    start: Vec<f32>,
    rows: usize,
    kind: LineSearchKind,
    iterations: usize,
) -> Vec<f64> {
    let gpu = common::gpu();
    let n = start.len() / rows;
    let mut obj = CpuObjective {
        gpu: gpu.clone(),
        rows,
        n,
        input: gpu.zeros(rows * n, "x").unwrap(),
        grads: gpu.zeros(rows * n, "g").unwrap(),
        f,
    };
    let budget = if kind == LineSearchKind::Golden { 20 } else { 6 };
    let mut opt =
        Lbfgs::new(&gpu, LbfgsSettings { line_search: kind, budget, ..Default::default() }, rows, n, &start).unwrap();
    let mut last = vec![];
    for _ in 0..iterations {
        last = opt.step(&mut obj).unwrap().iter().map(|r| r.loss).collect();
    }
    last
}

#[test]
fn lbfgs_converges_on_a_convex_quadratic_with_both_line_searches() {
    for kind in [LineSearchKind::Reference, LineSearchKind::Golden] {
        // two runs from different starts, advanced together
        let start: Vec<f32> = (0..100).map(|i| if i < 50 { 1.0 } else { -0.5 + 0.02 * (i - 50) as f32 }).collect();
        let f0 = [quadratic(&[1.0; 50]).0, 1.0];
        let losses = minimise(quadratic, start, 2, kind, 40);
        for (r, l) in losses.iter().enumerate() {
            assert!(*l < 1e-8 * f0[r].max(1.0), "{kind:?} run {r}: loss {l}");
        }
    }
}

#[test]
fn lbfgs_converges_on_rosenbrock_with_both_line_searches() {
    for kind in [LineSearchKind::Reference, LineSearchKind::Golden] {
        let losses = minimise(rosenbrock, vec![-1.2, 1.0], 1, kind, 150);
        assert!(losses[0] < 1e-6, "{kind:?}: Rosenbrock loss {}", losses[0]);
    }
}

/// Mini-batch Adam with one mini-batch per epoch (all the images) takes PyTorch's Adam steps: the
/// same as Adam in f64 on the host from the evaluator's gradients, up to f32 rounding, and a stopped
/// run stays where it stopped.
#[test]
fn minibatch_adam_follows_host_adam_and_a_stopped_run_stays() {
    use losscape::data::{DeviceImages, Split};
    use losscape::model::{init_vector, Arch, Evaluator, Network};
    use losscape::ops::{Act, AdamStep};
    use losscape::optim::{MiniBatch, MiniBatchSettings, Rule, Solver};
    let device = common::gpu();
    let images = DeviceImages::upload(&device, &common::mnist(Split::Train, 64)).unwrap();
    let net = Network { arch: Arch::Fcp, act: Act::Softplus };
    let (r, n, lr, steps) = (2, Arch::Fcp.n_params(), 1e-2, 3);
    let start: Vec<f32> = (0..r as u64).flat_map(|s| init_vector(Arch::Fcp, s)).collect();
    let settings = MiniBatchSettings { rule: Rule::Adam, lr, batch: 64, seeds: vec![0, 1] };
    let mut adam = MiniBatch::new(&device, net, settings, &images, &start).unwrap();
    assert_eq!(adam.steps_per_epoch(), 1);
    let eval = Evaluator::new(net, &images, 0..64, r).unwrap();
    for _ in 0..steps {
        adam.step().unwrap();
    }
    let got: Vec<f32> = device.read(adam.weights(), 0, r * n).unwrap();

    // the host: g in f32 from the evaluator, Adam in f64
    let mut w: Vec<f64> = start.iter().map(|&x| x as f64).collect();
    let (mut m, mut v) = (vec![0f64; r * n], vec![0f64; r * n]);
    for t in 1..=steps {
        let wf: Vec<f32> = w.iter().map(|&x| x as f32).collect();
        eval.set_weights(&wf).unwrap();
        eval.run(Want::LossAndGrad);
        let g = eval.gradients().unwrap();
        let s = AdamStep::pytorch(lr, t as u32);
        let (step_size, bc2_sqrt) = s.corrections();
        for i in 0..r * n {
            let gi = g[i] as f64;
            m[i] = s.beta1 * m[i] + (1.0 - s.beta1) * gi;
            v[i] = s.beta2 * v[i] + (1.0 - s.beta2) * gi * gi;
            w[i] -= step_size * m[i] / (v[i].sqrt() / bc2_sqrt + s.eps);
        }
    }
    // a sign flip of a gradient component that rounds to ~0 moves it by ~lr: compare whole runs
    for run in 0..r {
        let rows = run * n..(run + 1) * n;
        let diff: f64 = rows.clone().map(|i| (got[i] as f64 - w[i]).powi(2)).sum::<f64>().sqrt();
        let moved: f64 = rows.map(|i| (w[i] - start[i] as f64).powi(2)).sum::<f64>().sqrt();
        assert!(moved > 0.1, "run {run}: Adam moved the weights by {moved}");
        assert!(diff < 1e-4 * moved, "run {run}: |device - host| = {diff}, |host step| = {moved}");
    }

    // run 1 stops: its weights no longer move, run 0's do
    adam.set_active(&[true, false]).unwrap();
    let before: Vec<f32> = device.read(adam.weights(), 0, r * n).unwrap();
    adam.step().unwrap();
    let after: Vec<f32> = device.read(adam.weights(), 0, r * n).unwrap();
    assert_eq!(before[n..], after[n..], "a stopped run moved");
    assert_ne!(before[..n], after[..n], "an active run did not move");
}
