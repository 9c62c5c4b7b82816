//! `lstm.wgsl`: the LSTM cell (gate order i, f, g, o) forward through every step of a sequence, then
//! backward from the last step to the first with a fresh d h per step, for B parameter vectors. The
//! gates hold pre-activations on a GPU and activations on the CPU between the passes, so the forward
//! pass is compared on the states (c, h, the last h) and the backward pass on what both leave: d loss
//! / d gate pre-activations and the carried d c. Tolerance: [`REL`] of the value plus [`ABS`] of its
//! scale (1: states and gradients are O(1)), times the steps the error has travelled through.

use super::{backends, check, read, record, run, sigmoid, upload, values, ABS, REL, T0, T1, T2, T3};
use losscape::ops::plan::{LstmCellBackward, LstmCellForward, WEIGHTS};
use losscape::ops::{LstmShape, LstmStep};

#[test]
fn lstm_cells_match_f64_on_cpu_and_wgpu() {
    // (hidden, steps, images, batches): 1, 70 and 297 threads per step
    for (backend, device) in backends() {
        for (h, steps, n_img, batches) in [(1, 2, 1, 1), (7, 3, 5, 2), (33, 2, 9, 1)] {
            let what = |part| format!("{backend}: LSTM {part}, hidden {h}, {steps} steps, {n_img} images x {batches}");
            let (g4, rows) = (4 * h, n_img * batches);
            let (bias_ih, bias_hh) = (1, 2 + 4 * h);
            let n_prm = bias_hh + 4 * h + 1;
            let step = |s| LstmStep {
                shape: LstmShape { hidden: h, steps, features: 3 },
                images: n_img,
                batches,
                step: s,
                n_prm,
                bias_ih,
                bias_hh,
                first_image: 0,
                img_bs: 0,
            };
            let w = values(batches * n_prm, h as u32, -1.0, 1.0);
            let z0 = values(rows * steps * g4, h as u32 + 1, -3.0, 3.0);
            // c_0 is not 0 here, so that the forget gate has something to act on
            let mut c0 = vec![0.0; rows * (steps + 1) * h];
            let first_cells = values(rows * h, h as u32 + 2, -1.0, 1.0);
            for r in 0..rows {
                c0[r * (steps + 1) * h..][..h].copy_from_slice(&first_cells[r * h..][..h]);
            }
            let dh: Vec<Vec<f32>> = (0..steps).map(|s| values(rows * h, (h * 10 + s) as u32, -1.0, 1.0)).collect();
            let (wb, gates, cells) = (upload(&device, &w), upload(&device, &z0), upload(&device, &c0));
            let hidden = upload(&device, &vec![0.0; rows * steps * h]);
            let last = upload(&device, &vec![0.0; rows * h]);
            let (dh_buf, dc) = (upload(&device, &vec![0.0; rows * h]), upload(&device, &vec![5.0; rows * h]));
            let forward: Vec<_> = (0..steps)
                .map(|s| {
                    let op = LstmCellForward { step: step(s), gates: T0, cells: T1, hidden: T2, last: T3 };
                    record(&device, op, &[(WEIGHTS, &wb), (T0, &gates), (T1, &cells), (T2, &hidden), (T3, &last)])
                })
                .collect();
            run(&device, &forward);
            let states = (read(&device, &cells), read(&device, &hidden), read(&device, &last));
            for s in (0..steps).rev() {
                device.write(&dh_buf, 0, &dh[s]).unwrap();
                let op = LstmCellBackward { step: step(s), gates: T0, cells: T1, dh: T2, dc: T3 };
                run(&device, &[record(&device, op, &[(T0, &gates), (T1, &cells), (T2, &dh_buf), (T3, &dc)])]);
            }

            // the f64 version: activations per (row, step, unit), then the states, then backward
            let (mut cw, mut hw, mut lw) = (super::to_f64(&c0), vec![0.0; rows * steps * h], vec![0.0; rows * h]);
            let mut act = vec![[0.0; 4]; rows * steps * h];
            for r in 0..rows {
                let wr = &w[(r / n_img) * n_prm..];
                for s in 0..steps {
                    for j in 0..h {
                        let z = |q: usize| {
                            let k = q * h + j;
                            z0[(r * steps + s) * g4 + k] as f64 + wr[bias_ih + k] as f64 + wr[bias_hh + k] as f64
                        };
                        let a = [sigmoid(z(0)), sigmoid(z(1)), z(2).tanh(), sigmoid(z(3))];
                        let c_prev = cw[(r * (steps + 1) + s) * h + j];
                        let c = a[1] * c_prev + a[0] * a[2];
                        cw[(r * (steps + 1) + s + 1) * h + j] = c;
                        let out = a[3] * c.tanh();
                        if s + 1 < steps {
                            hw[(r * steps + s + 1) * h + j] = out;
                        } else {
                            lw[r * h + j] = out;
                        }
                        act[(r * steps + s) * h + j] = a;
                    }
                }
            }
            let tol = |v: &[f64]| -> Vec<f64> { v.iter().map(|x| steps as f64 * (REL * x.abs() + ABS)).collect() };
            let (tc, th, tl) = (tol(&cw), tol(&hw), tol(&lw));
            check(&what("cells"), &states.0, &cw, |i| tc[i]);
            check(&what("hidden states"), &states.1, &hw, |i| th[i]);
            check(&what("last hidden state"), &states.2, &lw, |i| tl[i]);

            let (mut dz, mut dcw) = (vec![0.0; rows * steps * g4], vec![0.0; rows * h]);
            for s in (0..steps).rev() {
                for r in 0..rows {
                    for j in 0..h {
                        let [i, f, g, o] = act[(r * steps + s) * h + j];
                        let c_prev = cw[(r * (steps + 1) + s) * h + j];
                        let tc = cw[(r * (steps + 1) + s + 1) * h + j].tanh();
                        let dh_s = dh[s][r * h + j] as f64;
                        let mut dc_s = dh_s * o * (1.0 - tc * tc);
                        if s + 1 < steps {
                            dc_s += dcw[r * h + j];
                        }
                        let at = (r * steps + s) * g4 + j;
                        dz[at] = dc_s * g * i * (1.0 - i);
                        dz[at + h] = dc_s * c_prev * f * (1.0 - f);
                        dz[at + 2 * h] = dc_s * i * (1.0 - g * g);
                        dz[at + 3 * h] = dh_s * tc * o * (1.0 - o);
                        dcw[r * h + j] = dc_s * f;
                    }
                }
            }
            let (tz, tdc) = (tol(&dz), tol(&dcw));
            check(&what("gate gradients"), &read(&device, &gates), &dz, |i| tz[i]);
            check(&what("carried d c"), &read(&device, &dc), &dcw, |i| tdc[i]);
        }
    }
}
