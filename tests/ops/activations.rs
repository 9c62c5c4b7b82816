//! `activation.wgsl`: out = f(z) and grad *= f'(z) for every [`Act`], over the first `len` elements
//! (the rest untouched), z across [-25, 25] (past softplus's threshold of 20). Tolerance: [`REL`] of
//! the value plus [`ABS`] of its scale (1 forward, |grad| backward).

use super::{backends, check, read, record, run, sigmoid, upload, values, ABS, REL, T0, T1, T2};
use losscape::ops::plan::{ActBackward, ActForward};
use losscape::ops::Act;

/// f(z) and f'(z) in f64 (softplus with PyTorch's threshold: z and 1 above 20).
fn f64_act(act: Act, z: f64) -> (f64, f64) {
    match act {
        Act::Softplus if z > 20.0 => (z, 1.0),
        Act::Softplus => (z.exp().ln_1p(), sigmoid(z)),
        Act::Relu => (z.max(0.0), if z > 0.0 { 1.0 } else { 0.0 }),
        Act::Sigmoid => (sigmoid(z), sigmoid(z) * (1.0 - sigmoid(z))),
        Act::Tanh => (z.tanh(), 1.0 - z.tanh().powi(2)),
    }
}

#[test]
fn activations_match_f64_on_cpu_and_wgpu() {
    for (backend, device) in backends() {
        for act in [Act::Softplus, Act::Relu, Act::Sigmoid, Act::Tanh] {
            for len in [1, 7, 33, 257, 1000] {
                let what = |dir| format!("{backend}: {act:?} {dir} over {len} elements");
                let mut z = values(len + 3, len as u32, -25.0, 25.0);
                z[0] = if len == 1 { 0.5 } else { 20.5 }; // one above the threshold, or a small value
                let grad = values(len + 3, len as u32 + 1, -2.0, 2.0);
                let zb = upload(&device, &z);
                let out = upload(&device, &[7.0; 1003][..len + 3]);
                let gb = upload(&device, &grad);
                run(
                    &device,
                    &[
                        record(&device, ActForward { act, z: T0, out: T1, len }, &[(T0, &zb), (T1, &out)]),
                        record(&device, ActBackward { act, z: T0, grad: T2, len }, &[(T0, &zb), (T2, &gb)]),
                    ],
                );
                let f: Vec<(f64, f64)> = z.iter().map(|&v| f64_act(act, v as f64)).collect();
                let keep = |i: usize, v: f64, new: f64| if i < len { new } else { v };
                let fwd: Vec<f64> = (0..len + 3).map(|i| keep(i, 7.0, f[i].0)).collect();
                let bwd: Vec<f64> = (0..len + 3).map(|i| keep(i, grad[i] as f64, grad[i] as f64 * f[i].1)).collect();
                check(&what("forward"), &read(&device, &out), &fwd, |i| REL * fwd[i].abs() + ABS);
                check(&what("backward"), &read(&device, &gb), &bwd, |i| {
                    REL * bwd[i].abs() + ABS * grad[i].abs() as f64
                });
            }
        }
    }
}
