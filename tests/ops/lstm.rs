//! `lstm.wgsl` and `cpu/lstm.rs`: the LSTM recurrence of a chunk (gate order i, f, g, o) as its two
//! sequence operations — forward through every step from given inputs, then backward through time
//! from a given d loss / d last hidden state to the gradients of W_ih, W_hh, b_ih and b_hh — for B
//! parameter vectors, with shared and with per-vector inputs, and chunks of several of the CPU's tiles
//! (a ragged last one included), after a pass over fewer images on the same buffers. The gates, cells and hidden states are each backend's own scratch
//! between the passes (pre-activations on a GPU, activations in step-major tiles on the CPU), so the
//! forward pass is compared on the last hidden state and the backward pass on the weight gradients
//! (which every step's states enter), overwritten and added to; the weight and gradient buffers are
//! exactly as long as the sequence addresses. On the CPU the results also have the same bits on any
//! thread count and for a vector alone as inside a batch.
//!
//! Tolerance: the last state as the other element-wise families, [`REL`] of the value plus [`ABS`]
//! (states are O(1)), times the steps the error has travelled through. A weight gradient is a sum
//! over the (image, step) rows of d z times an input: [`gamma`] of the rows times the sum of the
//! absolute terms, plus the element-wise error of each d z (the same rule, times its input).

use super::{backends, check, gamma, read, record, run, sigmoid, upload, values, ABS, REL, T0, T1, T2, T3};
use losscape::backend::{Buffer, Command, Device};
use losscape::ops::plan::{LstmBackward, LstmForward, TensorId, GRADS, WEIGHTS};
use losscape::ops::{LstmOperands, LstmSequence, LstmShape};

/// The tensor ids a test binds the sequence's buffers to ([`record`]).
const IDS: LstmOperands<TensorId> = LstmOperands {
    inputs: T0,
    weights: WEIGHTS,
    grads: GRADS,
    gates: T1,
    cells: T2,
    hidden: T3,
    last: T3 + 1,
    dh: T3 + 2,
    dc: T3 + 3,
    ones: T3 + 4,
};

/// The sequence's buffers at [`IDS`].
fn bound(t: &LstmOperands<Buffer>) -> Vec<(TensorId, &Buffer)> {
    let (i, t) = (IDS, t.as_ref());
    vec![
        (i.inputs, t.inputs),
        (i.weights, t.weights),
        (i.grads, t.grads),
        (i.gates, t.gates),
        (i.cells, t.cells),
        (i.hidden, t.hidden),
        (i.last, t.last),
        (i.dh, t.dh),
        (i.dc, t.dc),
        (i.ones, t.ones),
    ]
}

/// The forward plan operation of `seq`, recorded on `t`.
fn forward(device: &Device, seq: LstmSequence, t: &LstmOperands<Buffer>) -> Command {
    record(device, LstmForward { seq, tensors: IDS }, &bound(t))
}

/// The backward plan operation of `seq`, recorded on `t`.
fn backward(device: &Device, seq: LstmSequence, t: &LstmOperands<Buffer>, accumulate: bool) -> Command {
    record(device, LstmBackward { seq, tensors: IDS, accumulate }, &bound(t))
}

/// One test case: sizes, and whether each vector has its own inputs.
#[derive(Clone, Copy, Debug)]
struct Case {
    hidden: usize,
    steps: usize,
    features: usize,
    images: usize,
    batches: usize,
    own_inputs: bool,
}

impl Case {
    /// The sequence, with the parameters of a vector spread over `n_prm` with gaps between them.
    fn sequence(&self) -> LstmSequence {
        let (g, h, f) = (4 * self.hidden, self.hidden, self.features);
        let w_ih = 3;
        let w_hh = w_ih + g * f + 1;
        let b_ih = w_hh + g * h + 2;
        let b_hh = b_ih + g + 1;
        LstmSequence {
            shape: LstmShape { hidden: h, steps: self.steps, features: f },
            images: self.images,
            batches: self.batches,
            n_prm: b_hh + g + 4,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            first_image: 0,
            img_bs: if self.own_inputs { self.images } else { 0 },
        }
    }
}

/// The f64 LSTM of one vector over its images: the last hidden state [n][H], then the weight gradients
/// [W_ih | W_hh | b_ih | b_hh] from d loss / d last, each with the tolerance of the f32 sum that
/// computes it.
struct Exact {
    last: Vec<f64>,
    grads: Vec<f64>,
    tolerance: Vec<f64>,
}

/// `w` is one vector's parameters, `x` its images' inputs [n][S][F], `dh` its d loss / d last [n][H].
fn exact(s: &LstmSequence, w: &[f32], x: &[f32], dh: &[f32]) -> Exact {
    let (h, steps, feat, n) = (s.shape.hidden, s.shape.steps, s.shape.features, s.images);
    let g = 4 * h;
    let wf = |i: usize| w[i] as f64;
    let mut cells = vec![0.0; n * (steps + 1) * h];
    let mut hidden = vec![0.0; n * steps * h];
    let mut last = vec![0.0; n * h];
    // per (image, step, unit): the activations i, f, g, o
    let mut act = vec![[0.0; 4]; n * steps * h];
    for img in 0..n {
        let mut hs = vec![0.0; h];
        for st in 0..steps {
            let xs = &x[(img * steps + st) * feat..][..feat];
            let mut next = vec![0.0; h];
            for j in 0..h {
                let z = |q: usize| {
                    let k = q * h + j;
                    let input: f64 = (0..feat).map(|i| xs[i] as f64 * wf(s.w_ih + k * feat + i)).sum();
                    let rec: f64 = (0..h).map(|i| hs[i] * wf(s.w_hh + k * h + i)).sum();
                    input + rec + wf(s.b_ih + k) + wf(s.b_hh + k)
                };
                let a = [sigmoid(z(0)), sigmoid(z(1)), z(2).tanh(), sigmoid(z(3))];
                let c = a[1] * cells[(img * (steps + 1) + st) * h + j] + a[0] * a[2];
                cells[(img * (steps + 1) + st + 1) * h + j] = c;
                next[j] = a[3] * c.tanh();
                act[(img * steps + st) * h + j] = a;
            }
            if st + 1 < steps {
                hidden[(img * steps + st + 1) * h..][..h].copy_from_slice(&next);
            } else {
                last[img * h..][..h].copy_from_slice(&next);
            }
            hs = next;
        }
    }
    // back through time: dz per (image, step, gate)
    let mut dz = vec![0.0; n * steps * g];
    for img in 0..n {
        let mut dhs: Vec<f64> = dh[img * h..][..h].iter().map(|&v| v as f64).collect();
        let mut dc = vec![0.0; h];
        for st in (0..steps).rev() {
            for j in 0..h {
                let [i, f, gg, o] = act[(img * steps + st) * h + j];
                let c_prev = cells[(img * (steps + 1) + st) * h + j];
                let tc = cells[(img * (steps + 1) + st + 1) * h + j].tanh();
                let dc_s = dhs[j] * o * (1.0 - tc * tc) + dc[j];
                let at = (img * steps + st) * g + j;
                dz[at] = dc_s * gg * i * (1.0 - i);
                dz[at + h] = dc_s * c_prev * f * (1.0 - f);
                dz[at + 2 * h] = dc_s * i * (1.0 - gg * gg);
                dz[at + 3 * h] = dhs[j] * tc * o * (1.0 - o);
                dc[j] = dc_s * f;
            }
            let dzs = &dz[(img * steps + st) * g..][..g];
            dhs = (0..h).map(|j| (0..g).map(|k| dzs[k] * wf(s.w_hh + k * h + j)).sum()).collect();
        }
    }
    // weight gradients: sum over rows r = (image, step) of dz[r][k] times the row's x, h_s or 1
    let rows = n * steps;
    let mut grads = Vec::new();
    let mut tolerance = Vec::new();
    let mut push = |k: usize, of: &dyn Fn(usize) -> f64| {
        let terms: Vec<(f64, f64)> = (0..rows).map(|r| (dz[r * g + k], of(r))).collect();
        grads.push(terms.iter().map(|(d, v)| d * v).sum());
        let magnitude: f64 = terms.iter().map(|(d, v)| (d * v).abs()).sum();
        let scale: f64 = terms.iter().map(|(_, v)| v.abs()).sum();
        // each dz is an element-wise result after up to `steps` steps back, with products in between
        tolerance.push(gamma(rows + g) * magnitude + 4.0 * steps as f64 * (REL * magnitude + ABS * scale));
    };
    for k in 0..g {
        for i in 0..feat {
            push(k, &|r| x[r * feat + i] as f64);
        }
    }
    for k in 0..g {
        for i in 0..h {
            push(k, &|r| hidden[r * h + i]);
        }
    }
    for _ in 0..2 {
        for k in 0..g {
            push(k, &|_| 1.0);
        }
    }
    Exact { last, grads, tolerance }
}

/// The buffers of one case on a device.
fn buffers(device: &Device, s: &LstmSequence, w: &[f32], x: &[f32], grads: &[f32]) -> LstmOperands<Buffer> {
    let need = s.lengths();
    let zeros = |len: usize| upload(device, &vec![0.0; len]);
    LstmOperands {
        inputs: upload(device, x),
        weights: upload(device, w),
        grads: upload(device, grads),
        gates: zeros(need.gates),
        cells: zeros(need.cells),
        hidden: zeros(need.hidden),
        last: zeros(need.last),
        dh: zeros(need.dh),
        dc: zeros(need.dc),
        ones: upload(device, &vec![1.0; need.ones]),
    }
}

/// The parameter positions of W_ih, W_hh, b_ih, b_hh in one vector, in the order of [`Exact::grads`].
fn gradient_positions(s: &LstmSequence) -> Vec<usize> {
    let g = s.shape.gates();
    let mut at: Vec<usize> = (0..g * s.shape.features).map(|i| s.w_ih + i).collect();
    at.extend((0..g * s.shape.hidden).map(|i| s.w_hh + i));
    at.extend((0..g).map(|i| s.b_ih + i));
    at.extend((0..g).map(|i| s.b_hh + i));
    at
}

#[test]
fn lstm_sequences_match_f64_on_cpu_and_wgpu() {
    let cases = [
        Case { hidden: 1, steps: 2, features: 1, images: 1, batches: 1, own_inputs: false },
        // 37 images: CPU tiles of 24 and 13 rows per vector
        Case { hidden: 7, steps: 3, features: 5, images: 37, batches: 2, own_inputs: false },
        Case { hidden: 5, steps: 4, features: 2, images: 20, batches: 3, own_inputs: true },
        Case { hidden: 33, steps: 2, features: 3, images: 9, batches: 1, own_inputs: false },
    ];
    for (backend, device) in backends() {
        for case in cases {
            let what = |part: &str| format!("{backend}: {part}, {case:?}");
            let s = case.sequence();
            let (n_prm, b, n, h) = (s.n_prm, s.batches, s.images, s.shape.hidden);
            let seed = (case.hidden * 100 + case.images) as u32;
            let need = s.lengths();
            let w = values(need.weights, seed, -0.6, 0.6);
            let x = values(need.inputs, seed + 1, 0.0, 1.0);
            let dh = values(b * n * h, seed + 2, -1.0, 1.0);
            let before = values(need.grads, seed + 3, -1.0, 1.0);
            let t = buffers(&device, &s, &w, &x, &before);
            let pass = forward(&device, s, &t);
            let overwrite = backward(&device, s, &t, false);
            let add = backward(&device, s, &t, true);

            // first a pass over fewer images on the same buffers, as a plan's chunks of two sizes leave
            // them (the CPU's tiles and their first steps move with the image count)
            if n > 8 {
                let fewer = LstmSequence { images: n - 8, ..s };
                run(&device, &[forward(&device, fewer, &t)]);
            }
            run(&device, &[pass]);
            let last = read(&device, &t.last);
            device.write(&t.dh, 0, &dh).unwrap();
            let pass = forward(&device, s, &t);
            run(&device, &[overwrite]);
            let overwritten = read(&device, &t.grads);
            // again from a fresh forward pass (backward leaves the gates as scratch), now added to the
            // gradients the buffer held
            device.write(&t.dh, 0, &dh).unwrap();
            device.write(&t.grads, 0, &before).unwrap();
            run(&device, &[pass, add]);
            let added = read(&device, &t.grads);

            let positions = gradient_positions(&s);
            for v in 0..b {
                let xv = if case.own_inputs { &x[v * n * s.shape.pixels()..] } else { &x[..] };
                let e = exact(&s, &w[v * n_prm..], xv, &dh[v * n * h..][..n * h]);
                let tl: Vec<f64> = e.last.iter().map(|x| s.shape.steps as f64 * (REL * x.abs() + ABS)).collect();
                check(&what(&format!("vector {v} last hidden state")), &last[v * n * h..][..n * h], &e.last, |i| tl[i]);

                let pick = |all: &[f32]| -> Vec<f32> { positions.iter().map(|&p| all[v * n_prm + p]).collect() };
                check(&what(&format!("vector {v} weight gradients")), &pick(&overwritten), &e.grads, |i| {
                    e.tolerance[i]
                });
                let want: Vec<f64> =
                    positions.iter().zip(&e.grads).map(|(&p, g)| before[v * n_prm + p] as f64 + g).collect();
                check(&what(&format!("vector {v} added weight gradients")), &pick(&added), &want, |i| {
                    e.tolerance[i] + 2.0 * super::U * want[i].abs()
                });
                // every other parameter's gradient is left alone
                for at in
                    (v * n_prm..(v * n_prm + n_prm).min(need.grads)).filter(|at| !positions.contains(&(at - v * n_prm)))
                {
                    assert_eq!((overwritten[at], added[at]), (before[at], before[at]), "{}", what("a gap"));
                }
            }
        }
    }
}

/// The CPU's states and weight gradients of one case, on a pool of `threads` rayon workers.
fn cpu_run(threads: usize, s: &LstmSequence, w: &[f32], x: &[f32], dh: &[f32]) -> Vec<Vec<f32>> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let device = Device::cpu();
        let t = buffers(&device, s, w, x, &vec![0.0; w.len()]);
        run(&device, &[forward(&device, *s, &t)]);
        device.write(&t.dh, 0, dh).unwrap();
        run(&device, &[backward(&device, *s, &t, false)]);
        [&t.cells, &t.hidden, &t.last, &t.grads].iter().map(|b| read(&device, b)).collect()
    })
}

/// The CPU's tiles depend on the image count alone (`cpu/lstm.rs`): the same bits on 1, 2 and 3
/// threads, and for a vector evaluated alone as inside a batch of three.
#[test]
fn cpu_sequences_give_the_same_bits_on_any_thread_count_and_alone() {
    // 70 images: tiles of 40 and 30 rows per vector
    let case = Case { hidden: 6, steps: 3, features: 4, images: 70, batches: 3, own_inputs: true };
    let s = case.sequence();
    let (n_prm, n, h) = (s.n_prm, s.images, s.shape.hidden);
    let w = values(3 * n_prm, 11, -0.6, 0.6);
    let x = values(s.lengths().inputs, 12, 0.0, 1.0);
    let dh = values(3 * n * h, 13, -1.0, 1.0);
    let batch = cpu_run(2, &s, &w, &x, &dh);
    for threads in [1, 3] {
        assert!(cpu_run(threads, &s, &w, &x, &dh) == batch, "{threads} threads differ from 2");
    }
    let alone = LstmSequence { batches: 1, ..s };
    let px = s.shape.pixels();
    let one = cpu_run(2, &alone, &w[n_prm..2 * n_prm], &x[n * px..2 * n * px], &dh[n * h..2 * n * h]);
    for (part, (got, all)) in
        ["cells", "hidden states", "last hidden state", "gradients"].iter().zip(one.iter().zip(&batch))
    {
        let per_vector = got.len();
        assert!(*got == all[per_vector..2 * per_vector], "vector 1 alone: its {part} differ from the batch's");
    }
}
