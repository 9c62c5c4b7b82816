//! `adam.wgsl`: two Adam steps (PyTorch semantics) on `len` parameters from element 3 of a longer
//! vector, one recording resubmitted after [`Device::set_adam_step`] moved it to step 3 with another
//! learning rate. Tolerance: the moments 8u of their terms per step (f32 hyper-parameters, products
//! and sums); the parameters 4u of |p| plus [`REL`] of each update (square root, division and the
//! bias corrections in f32) plus the first moment's error carried through the update.

use super::{backends, check, read, upload, values, REL, U};
use losscape::backend::Device;
use losscape::ops::AdamStep;

#[test]
fn adam_matches_f64_on_cpu_and_wgpu() {
    for (backend, device) in backends() {
        for len in [1, 7, 257, 1000] {
            let what = |part| format!("{backend}: Adam {part} over {len} parameters");
            let p0 = values(len + 5, len as u32, -1.0, 1.0);
            let g = values(len, len as u32 + 1, -1.0, 1.0);
            let m0 = values(len, len as u32 + 2, -0.1, 0.1);
            let v0: Vec<f32> = values(len, len as u32 + 3, 0.0, 0.01);
            let (pb, gb, mb, vb) =
                (upload(&device, &p0), upload(&device, &g), upload(&device, &m0), upload(&device, &v0));
            // the betas stay: a GPU recording keeps those it was made with (only the bias corrections
            // are rewritten), the CPU backend takes the new step whole
            let steps = [AdamStep::pytorch(1e-3, 1), AdamStep::pytorch(3e-3, 3)];
            let mut cmd = device.adam(steps[0], &gb, (&pb, 3), &mb, &vb).unwrap();
            run_one(&device, &cmd);
            device.set_adam_step(&mut cmd, steps[1]).unwrap();
            run_one(&device, &cmd);

            let mut p: Vec<f64> = super::to_f64(&p0);
            let (mut m, mut v) = (super::to_f64(&m0), super::to_f64(&v0));
            let (mut tp, mut tm, mut tv) = (vec![0.0; len + 5], vec![0.0; len], vec![0.0; len]);
            for s in steps {
                let (step_size, bc2_sqrt) = s.corrections();
                // the kernels read the hyper-parameters rounded to f32
                let (b1, b2) = (s.beta1 as f32 as f64, s.beta2 as f32 as f64);
                for i in 0..len {
                    let gi = g[i] as f64;
                    let (mt, vt) = ([b1 * m[i], (1.0 - b1) * gi], [b2 * v[i], (1.0 - b2) * gi * gi]);
                    (m[i], v[i]) = (mt[0] + mt[1], vt[0] + vt[1]);
                    tm[i] = b1 * tm[i] + 8.0 * U * (mt[0].abs() + mt[1].abs());
                    tv[i] = b2 * tv[i] + 8.0 * U * (vt[0].abs() + vt[1].abs());
                    let denominator = v[i].sqrt() / bc2_sqrt + s.eps;
                    let update = step_size * m[i] / denominator;
                    p[i + 3] -= update;
                    // the update's own rounding, and the first moment's error carried into it
                    tp[i + 3] += 4.0 * U * p[i + 3].abs() + REL * update.abs() + step_size * tm[i] / denominator;
                }
            }
            check(&what("first moments"), &read(&device, &mb), &m, |i| tm[i]);
            check(&what("second moments"), &read(&device, &vb), &v, |i| tv[i]);
            check(&what("parameters"), &read(&device, &pb), &p, |i| tp[i]);
        }
    }
}

fn run_one(device: &Device, cmd: &losscape::backend::Command) {
    device.submit(&[cmd]);
    device.wait().unwrap();
}
