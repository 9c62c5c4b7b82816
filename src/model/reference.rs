//! Plain CPU forward and backward passes in f64: the test oracle for the GPU kernels. Written for
//! clarity, not speed. Weights are f64 so that finite differences can test the gradients.

use super::Arch;
use crate::data::{Dataset, PIXELS};
use crate::gpu::Act;

/// Mean loss, accuracy (classifiers) and gradient of the mean loss, all in f64.
#[derive(Clone, Debug)]
pub struct Reference {
    pub loss: f64,
    pub accuracy: Option<f64>,
    pub grad: Vec<f64>,
}

pub fn act(a: Act, x: f64) -> f64 {
    match a {
        Act::Softplus if x > 20.0 => x,
        Act::Softplus => x.exp().ln_1p(),
        Act::Relu => x.max(0.0),
        Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Act::Tanh => x.tanh(),
    }
}

pub fn act_grad(a: Act, x: f64) -> f64 {
    match a {
        Act::Softplus if x > 20.0 => 1.0,
        Act::Softplus => 1.0 / (1.0 + (-x).exp()),
        Act::Relu => (x > 0.0) as u8 as f64,
        Act::Sigmoid => {
            let s = 1.0 / (1.0 + (-x).exp());
            s * (1.0 - s)
        }
        Act::Tanh => 1.0 - x.tanh().powi(2),
    }
}

/// Cross-entropy of one image and its gradient with respect to the logits, without cancellation.
pub fn cross_entropy(z: &[f64], label: usize) -> (f64, Vec<f64>) {
    let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let r = if z[label] >= max {
        label
    } else {
        z.iter().position(|&v| v == max).unwrap()
    };
    let s: f64 = (0..z.len())
        .filter(|&k| k != r)
        .map(|k| (z[k] - z[r]).exp())
        .sum();
    let loss = s.ln_1p() + (z[r] - z[label]);
    let grad = (0..z.len())
        .map(|k| {
            let p = if k == r {
                1.0 / (1.0 + s)
            } else {
                (z[k] - z[r]).exp() / (1.0 + s)
            };
            if k == label {
                if k == r {
                    -s / (1.0 + s)
                } else {
                    p - 1.0
                }
            } else {
                p
            }
        })
        .collect();
    (loss, grad)
}

/// y = W x for W (rows x cols) row-major.
fn matvec(w: &[f64], x: &[f64], rows: usize) -> Vec<f64> {
    let cols = x.len();
    (0..rows)
        .map(|r| {
            w[r * cols..(r + 1) * cols]
                .iter()
                .zip(x)
                .map(|(a, b)| a * b)
                .sum()
        })
        .collect()
}

/// g_W += d x^T, g_x = W^T d.
fn matvec_back(w: &[f64], x: &[f64], d: &[f64], gw: &mut [f64]) -> Vec<f64> {
    let cols = x.len();
    let mut gx = vec![0.0; cols];
    for (r, &dr) in d.iter().enumerate() {
        for c in 0..cols {
            gw[r * cols + c] += dr * x[c];
            gx[c] += dr * w[r * cols + c];
        }
    }
    gx
}

pub fn pixels(data: &Dataset, i: usize) -> Vec<f64> {
    data.image(i).iter().map(|&b| b as f64 / 255.0).collect()
}

/// The FCP (784-50-50-10, no biases) on every image of `data`.
pub fn fcp(weights: &[f64], act_fn: Act, data: &Dataset) -> Reference {
    assert_eq!(weights.len(), Arch::Fcp.n_params());
    let (w1, rest) = weights.split_at(50 * PIXELS);
    let (w2, w3) = rest.split_at(50 * 50);
    let mut grad = vec![0.0; weights.len()];
    let (mut loss, mut correct) = (0.0, 0usize);
    let n = data.len() as f64;
    for i in 0..data.len() {
        let x = pixels(data, i);
        let z1 = matvec(w1, &x, 50);
        let a1: Vec<f64> = z1.iter().map(|&v| act(act_fn, v)).collect();
        let z2 = matvec(w2, &a1, 50);
        let a2: Vec<f64> = z2.iter().map(|&v| act(act_fn, v)).collect();
        let z3 = matvec(w3, &a2, 10);
        let label = data.labels[i] as usize;
        let (l, d3) = cross_entropy(&z3, label);
        loss += l;
        let argmax = (0..10).fold(0, |best, k| if z3[k] > z3[best] { k } else { best });
        correct += (argmax == label) as usize;
        let d3: Vec<f64> = d3.iter().map(|g| g / n).collect();
        let (g1, g23) = grad.split_at_mut(50 * PIXELS);
        let (g2, g3) = g23.split_at_mut(2500);
        let da2 = matvec_back(w3, &a2, &d3, g3);
        let d2: Vec<f64> = da2
            .iter()
            .zip(&z2)
            .map(|(g, &z)| g * act_grad(act_fn, z))
            .collect();
        let da1 = matvec_back(w2, &a1, &d2, g2);
        let d1: Vec<f64> = da1
            .iter()
            .zip(&z1)
            .map(|(g, &z)| g * act_grad(act_fn, z))
            .collect();
        matvec_back(w1, &x, &d1, g1);
    }
    Reference {
        loss: loss / n,
        accuracy: Some(correct as f64 / n),
        grad,
    }
}
