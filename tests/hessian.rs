//! Hessian probes: Lanczos and Hutchinson on a quadratic with a known spectrum and on a tiny MLP
//! against its dense f64 Hessian; the batched finite-difference HVP against the f64 reference model;
//! batched against one-at-a-time HVPs.
mod common;

use common::{cpu, gpu, mnist, to_f64};
use losscape::data::{DeviceImages, Split};
use losscape::io::read_weights;
use losscape::model::reference::evaluate;
use losscape::model::{init_vector, Arch, Evaluator, Network};
use losscape::ops::Act;
use losscape::probe::hessian::{hutchinson, lanczos, Gradients, HessianProbe, DEFAULT_STEP};
use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// g_s(w) = A_s (w - c_s) for S quadratics; the oracle sees points in f32 and returns f32 gradients.
struct Quadratics {
    a: Vec<DMatrix<f64>>,
    n: usize,
}

impl Gradients for Quadratics {
    fn dim(&self) -> usize {
        self.n
    }
    fn batch(&self) -> usize {
        2 * self.a.len()
    }
    fn gradients(&mut self, points: &[f32], grads: &mut [f32]) -> anyhow::Result<()> {
        let n = self.n;
        for (p, (pt, g)) in points.chunks(n).zip(grads.chunks_mut(n)).enumerate() {
            let w = DMatrix::from_iterator(n, 1, pt.iter().map(|&x| x as f64));
            let ag = &self.a[p / 2] * w;
            g.iter_mut().zip(ag.iter()).for_each(|(o, &v)| *o = v as f32);
        }
        Ok(())
    }
}

/// Q diag(spectrum) Q^T with a random orthogonal Q.
fn with_spectrum(spectrum: &[f64], seed: u64) -> DMatrix<f64> {
    let n = spectrum.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let m = DMatrix::from_fn(n, n, |_, _| rng.random::<f64>() - 0.5);
    let q = m.qr().q();
    &q * DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(spectrum)) * q.transpose()
}

#[test]
fn lanczos_and_hutchinson_recover_a_known_spectrum() {
    let n = 16;
    // two centres with different spectra, run in lockstep; one indefinite
    let s1: Vec<f64> = (0..n).map(|i| 50.0 / (1.0 + i as f64)).collect();
    let s2: Vec<f64> = (0..n).map(|i| 7.0 - i as f64).collect();
    let a = vec![with_spectrum(&s1, 1), with_spectrum(&s2, 2)];
    let centres: Vec<f32> = (0..2 * n).map(|i| (i as f32 * 0.37).sin()).collect();
    // a quadratic has no truncation error, so a long step keeps the f32 rounding small
    let mut probe = HessianProbe::new(Quadratics { a: a.clone(), n }, &centres, &[0, 1], 1.0).unwrap();
    let top = lanczos(&mut probe, 3, n, 7).unwrap();
    for (got, want) in top.iter().zip([&s1, &s2]) {
        for k in 0..3 {
            let rel = (got[k] - want[k]).abs() / want[0].abs();
            assert!(rel < 1e-5, "eigenvalue {k}: {} vs {} ({rel:e})", got[k], want[k]);
        }
    }
    // Hutchinson is exact on a diagonal Hessian (z^T D z = tr D for every Rademacher z)
    let diag = vec![DMatrix::from_diagonal(&nalgebra::DVector::from_vec(s1.clone())); 2];
    let mut probe = HessianProbe::new(Quadratics { a: diag, n }, &centres, &[0, 1], 1.0).unwrap();
    let tr: f64 = s1.iter().sum();
    for (t, se) in hutchinson(&mut probe, 5, 3).unwrap() {
        assert!((t - tr).abs() < 1e-5 * tr, "{t} vs {tr}");
        assert!(se < 1e-5 * tr);
    }
    // and unbiased otherwise: within 4 standard errors
    let mut probe = HessianProbe::new(Quadratics { a, n }, &centres, &[0, 1], 1.0).unwrap();
    for ((t, se), want) in hutchinson(&mut probe, 400, 3).unwrap().into_iter().zip([&s1, &s2]) {
        let tr: f64 = want.iter().sum();
        assert!((t - tr).abs() < 4.0 * se + 1e-9, "{t} vs {tr} (standard error {se})");
    }
}

#[test]
fn lanczos_restarts_past_an_invariant_subspace() {
    // rank 2 in 10 dimensions: the Krylov space of a generic start has dimension 3 (with the null space)
    let n = 10;
    let mut spectrum = vec![0.0; n];
    spectrum[0] = 4.0;
    spectrum[1] = -1.0;
    let a = vec![with_spectrum(&spectrum, 5)];
    let centres = vec![0.5f32; n];
    let mut probe = HessianProbe::new(Quadratics { a, n }, &centres, &[0], 1.0).unwrap();
    let top = &lanczos(&mut probe, 3, n, 1).unwrap()[0];
    assert!((top[0] - 4.0).abs() < 1e-5 && top[1].abs() < 1e-5 && top[2].abs() < 1e-5, "{top:?}");
}

/// A 4-3-2 MLP with biases (softplus hidden layer, cross-entropy), in f64, on 8 fixed points.
struct Tiny {
    x: Vec<[f64; 4]>,
    y: Vec<usize>,
    batch: usize,
}

const TINY: usize = 3 * 4 + 3 + 2 * 3 + 2;

impl Tiny {
    fn new(batch: usize) -> Tiny {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let x = (0..8).map(|_| [0; 4].map(|_: i32| rng.random::<f64>() * 2.0 - 1.0)).collect();
        let y = (0..8).map(|i| i % 2).collect();
        Tiny { x, y, batch }
    }
    fn grad(&self, w: &[f64]) -> Vec<f64> {
        let (w1, b1, w2, b2) = (&w[0..12], &w[12..15], &w[15..21], &w[21..23]);
        let mut g = vec![0.0; TINY];
        let n = self.x.len() as f64;
        for (x, &y) in self.x.iter().zip(&self.y) {
            let z1: Vec<f64> = (0..3).map(|r| b1[r] + (0..4).map(|c| w1[r * 4 + c] * x[c]).sum::<f64>()).collect();
            let a1: Vec<f64> = z1.iter().map(|z| z.exp().ln_1p()).collect();
            let z2: Vec<f64> = (0..2).map(|r| b2[r] + (0..3).map(|c| w2[r * 3 + c] * a1[c]).sum::<f64>()).collect();
            let m = z2[0].max(z2[1]);
            let e: Vec<f64> = z2.iter().map(|z| (z - m).exp()).collect();
            let d2: Vec<f64> = (0..2).map(|k| e[k] / (e[0] + e[1]) - (k == y) as u8 as f64).collect();
            for r in 0..2 {
                g[21 + r] += d2[r] / n;
                for c in 0..3 {
                    g[15 + r * 3 + c] += d2[r] * a1[c] / n;
                }
            }
            for c in 0..3 {
                let d1 = (0..2).map(|r| d2[r] * w2[r * 3 + c]).sum::<f64>() / (1.0 + (-z1[c]).exp());
                g[12 + c] += d1 / n;
                for k in 0..4 {
                    g[c * 4 + k] += d1 * x[k] / n;
                }
            }
        }
        g
    }
    fn hessian(&self, w: &[f64]) -> DMatrix<f64> {
        let h = 1e-5;
        let mut m = DMatrix::zeros(TINY, TINY);
        for j in 0..TINY {
            let (mut p, mut q) = (w.to_vec(), w.to_vec());
            p[j] += h;
            q[j] -= h;
            let (gp, gq) = (self.grad(&p), self.grad(&q));
            for i in 0..TINY {
                m[(i, j)] = (gp[i] - gq[i]) / (2.0 * h);
            }
        }
        (&m + m.transpose()) / 2.0
    }
}

impl Gradients for Tiny {
    fn dim(&self) -> usize {
        TINY
    }
    fn batch(&self) -> usize {
        self.batch
    }
    fn gradients(&mut self, points: &[f32], grads: &mut [f32]) -> anyhow::Result<()> {
        for (p, g) in points.chunks(TINY).zip(grads.chunks_mut(TINY)) {
            let w: Vec<f64> = p.iter().map(|&x| x as f64).collect();
            g.iter_mut().zip(self.grad(&w)).for_each(|(o, v)| *o = v as f32);
        }
        Ok(())
    }
}

#[test]
fn tiny_mlp_spectrum_and_trace_match_its_dense_f64_hessian() {
    let tiny = Tiny::new(4);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let centres: Vec<f32> = (0..2 * TINY).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    let mut probe = HessianProbe::new(tiny, &centres, &[0, 1], DEFAULT_STEP).unwrap();
    let top = lanczos(&mut probe, 3, TINY, 0).unwrap();
    let traces = hutchinson(&mut probe, 3000, 0).unwrap();
    let dense = Tiny::new(4);
    for s in 0..2 {
        let w: Vec<f64> = centres[s * TINY..(s + 1) * TINY].iter().map(|&x| x as f64).collect();
        let hm = dense.hessian(&w);
        let mut ev: Vec<f64> = hm.symmetric_eigenvalues().iter().copied().collect();
        ev.sort_by(|a, b| b.partial_cmp(a).unwrap());
        let rel = (top[s][0] - ev[0]).abs() / ev[0].abs();
        assert!(rel < 1e-2, "centre {s}: top eigenvalue {} vs {} ({rel:e})", top[s][0], ev[0]);
        for k in 1..3 {
            assert!(
                (top[s][k] - ev[k]).abs() < 1e-2 * ev[0].abs(),
                "centre {s}, eigenvalue {k}: {:?} vs {:?}",
                top[s],
                ev
            );
        }
        let tr = hm.trace();
        let (t, se) = traces[s];
        assert!((t - tr).abs() < 4.0 * se + 1e-3 * tr.abs(), "centre {s}: trace {t} vs {tr} (standard error {se})");
    }
}

/// H v at w by central differences of the f64 reference gradient (h = 1e-4 in f64).
fn reference_hvp(arch: Arch, w: &[f64], v: &[f64], data: &losscape::data::Dataset) -> Vec<f64> {
    let h = 1e-4;
    let p: Vec<f64> = w.iter().zip(v).map(|(a, b)| a + h * b).collect();
    let m: Vec<f64> = w.iter().zip(v).map(|(a, b)| a - h * b).collect();
    let (gp, gm) = (evaluate(arch, &p, Act::Softplus, data).grad, evaluate(arch, &m, Act::Softplus, data).grad);
    gp.iter().zip(&gm).map(|(a, b)| (a - b) / (2.0 * h)).collect()
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    d / b.iter().map(|y| y * y).sum::<f64>().sqrt()
}

/// The f32 batched HVP against the f64 reference, on the FCP and the autoencoder at two init vectors
/// each and on a trained LSTM solution of the paper's authors; prints the error for a range of steps
/// (the measurement behind DEFAULT_STEP) and bounds it at the default. (The LSTM's bound is what kept
/// the shared sigmoid's e^-|x| form; the autoencoder's checks its loss head's direct one.)
#[test]
fn batched_f32_hvp_matches_the_f64_reference_on_the_cpu_backend() {
    let lstm = read_weights(&common::authors_lstm_rows01(), Arch::Lstm).unwrap();
    let cases: Vec<(Arch, Vec<f32>, usize)> = vec![
        (Arch::Fcp, [init_vector(Arch::Fcp, 1), init_vector(Arch::Fcp, 2)].concat(), 200),
        (Arch::Lstm, lstm.flat.clone(), 50),
        (Arch::Autoencoder, [init_vector(Arch::Autoencoder, 1), init_vector(Arch::Autoencoder, 2)].concat(), 100),
    ];
    for (arch, centres, images) in cases {
        let n = arch.n_params();
        let s = centres.len() / n;
        let data = mnist(Split::Train, images);
        let dev = DeviceImages::upload(&cpu(), &data).unwrap();
        let eval = Evaluator::new(Network { arch, act: Act::Softplus }, &dev, 0..images, 2 * s).unwrap();
        let v: Vec<f64> = losscape::probe::directions::gaussian(s * n, 9, 0);
        let want: Vec<Vec<f64>> = (0..s)
            .map(|k| reference_hvp(arch, &to_f64(&centres[k * n..(k + 1) * n]), &v[k * n..(k + 1) * n], &data))
            .collect();
        let mut probe = HessianProbe::new(eval, &centres, &(0..s as u64).collect::<Vec<_>>(), DEFAULT_STEP).unwrap();
        let mut at_default = 0.0f64;
        for step in [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1] {
            let mut p = HessianProbe::new(
                Evaluator::new(Network { arch, act: Act::Softplus }, &dev, 0..images, 2 * s).unwrap(),
                &centres,
                &(0..s as u64).collect::<Vec<_>>(),
                step,
            )
            .unwrap();
            let mut hv = vec![0.0; s * n];
            p.hvp(&v, &mut hv).unwrap();
            let errs: Vec<f64> = (0..s).map(|k| rel_err(&hv[k * n..(k + 1) * n], &want[k])).collect();
            eprintln!("{arch:?} step {step:e}: relative HVP errors {errs:?}");
        }
        let mut hv = vec![0.0; s * n];
        probe.hvp(&v, &mut hv).unwrap();
        for k in 0..s {
            at_default = at_default.max(rel_err(&hv[k * n..(k + 1) * n], &want[k]));
        }
        assert!(at_default < 2e-2, "{arch:?}: relative HVP error {at_default:e} at the default step");
    }
}

#[test]
fn batched_and_one_at_a_time_hvps_agree() {
    let arch = Arch::Fcp;
    let n = arch.n_params();
    let data = mnist(Split::Train, 100);
    let dev = DeviceImages::upload(&gpu(), &data).unwrap();
    let net = Network { arch, act: Act::Softplus };
    let centres: Vec<f32> = (1..=3).flat_map(|k| init_vector(arch, k)).collect();
    let v = losscape::probe::directions::gaussian(3 * n, 4, 0);
    let mut all =
        HessianProbe::new(Evaluator::new(net, &dev, 0..100, 6).unwrap(), &centres, &[0, 1, 2], DEFAULT_STEP).unwrap();
    let mut batched = vec![0.0; 3 * n];
    all.hvp(&v, &mut batched).unwrap();
    for k in 0..3 {
        let one = Evaluator::new(net, &dev, 0..100, 2).unwrap();
        let mut p = HessianProbe::new(one, &centres[k * n..(k + 1) * n], &[k as u64], DEFAULT_STEP).unwrap();
        let mut hv = vec![0.0; n];
        p.hvp(&v[k * n..(k + 1) * n], &mut hv).unwrap();
        let err = rel_err(&hv, &batched[k * n..(k + 1) * n]);
        assert!(err < 1e-4, "vector {k}: batched and single HVPs differ by {err:e}");
    }
}

/// Where the loss bends sharply (a trained LSTM), the eigenvalue Lanczos finds must have converged in
/// the step: the default and a third of it agree, while a step of 1e-2 is far off (the failure the
/// default avoids).
#[test]
fn lanczos_eigenvalue_has_converged_in_the_step_on_the_cpu_backend() {
    let lstm = read_weights(&common::authors_lstm_rows01(), Arch::Lstm).unwrap();
    let data = mnist(Split::Train, 100);
    let dev = DeviceImages::upload(&cpu(), &data).unwrap();
    let net = Network { arch: Arch::Lstm, act: Act::Softplus };
    let top = |step: f64| {
        let eval = Evaluator::new(net, &dev, 0..100, 2).unwrap();
        let mut probe = HessianProbe::new(eval, lstm.vector(1), &[1], step).unwrap();
        lanczos(&mut probe, 1, 12, 0).unwrap()[0][0]
    };
    let (at_default, finer, coarse) = (top(DEFAULT_STEP), top(DEFAULT_STEP / 3.0), top(1e-2));
    eprintln!("top eigenvalue: {coarse:e} at 1e-2, {at_default:e} at the default, {finer:e} at a third of it");
    assert!((at_default - finer).abs() < 1e-2 * finer, "{at_default} vs {finer}");
    assert!(coarse > 2.0 * finer, "the sharp direction has gone: {coarse} vs {finer}");
}

/// A centre whose gradients overflow gives NaN, not a hang or an error, and leaves the others alone.
#[test]
fn a_centre_with_non_finite_gradients_gives_nan_and_spares_the_others() {
    struct Broken(Quadratics);
    impl Gradients for Broken {
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn batch(&self) -> usize {
            self.0.batch()
        }
        fn gradients(&mut self, points: &[f32], grads: &mut [f32]) -> anyhow::Result<()> {
            self.0.gradients(points, grads)?;
            let n = self.0.n;
            grads[2 * n..].fill(f32::INFINITY); // centre 1, both points
            Ok(())
        }
    }
    let n = 6;
    let spectrum = [6.0, 5.0, 4.0, 3.0, 2.0, 1.0];
    let a = vec![with_spectrum(&spectrum, 1); 2];
    let centres = vec![0.25f32; 2 * n];
    let mut probe = HessianProbe::new(Broken(Quadratics { a, n }), &centres, &[0, 1], 1.0).unwrap();
    let top = lanczos(&mut probe, 2, n, 0).unwrap();
    assert!((top[0][0] - 6.0).abs() < 1e-5 && (top[0][1] - 5.0).abs() < 1e-5, "{top:?}");
    assert!(top[1].iter().all(|v| v.is_nan()), "{top:?}");
    let tr = hutchinson(&mut probe, 50, 0).unwrap();
    assert!((tr[0].0 - 21.0).abs() < 4.0 * tr[0].1 && !tr[1].0.is_finite(), "{tr:?}");
}
