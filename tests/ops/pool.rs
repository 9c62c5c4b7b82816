//! `pool.wgsl`: 2x2 average pooling (stride 2) of `planes` maps and its gradient, the elements past
//! the maps untouched. Tolerance: forward γ(4) of the window's Σ|x| / 4 (three additions; the
//! quarter is exact); backward none (a quarter of an f32 is exact).

use super::{backends, check, gamma, read, run, upload, values};

#[test]
fn pooling_matches_f64_on_cpu_and_wgpu() {
    for (backend, device) in backends() {
        for planes in [1, 7, 33] {
            for in_hw in [2, 10, 28] {
                let oh = in_hw / 2;
                let what = |dir| format!("{backend}: {dir} pooling of {planes} maps of {in_hw}x{in_hw}");
                let (big, small) = (planes * in_hw * in_hw, planes * oh * oh);
                let x = values(big, planes as u32, -1.0, 1.0);
                let g = values(small, in_hw as u32, -1.0, 1.0);
                let (xb, gb) = (upload(&device, &x), upload(&device, &g));
                let pooled = upload(&device, &vec![7.0; small + 2]);
                let spread = upload(&device, &vec![7.0; big + 2]);
                run(
                    &device,
                    &[
                        device.avg_pool(false, planes, in_hw, &xb, &pooled).unwrap(),
                        device.avg_pool(true, planes, in_hw, &gb, &spread).unwrap(),
                    ],
                );
                let (mut fwd, mut mag) = (vec![7.0; small + 2], vec![0.0; small + 2]);
                for (t, (f, m)) in fwd.iter_mut().zip(&mut mag).take(small).enumerate() {
                    let (p, y, xx) = (t / (oh * oh), (t / oh) % oh, t % oh);
                    let at = |dy, dx| x[p * in_hw * in_hw + (2 * y + dy) * in_hw + 2 * xx + dx] as f64;
                    let window = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)];
                    *f = 0.25 * window.iter().sum::<f64>();
                    *m = 0.25 * window.iter().map(|v| v.abs()).sum::<f64>();
                }
                check(&what("forward"), &read(&device, &pooled), &fwd, |i| gamma(4) * mag[i]);
                let mut bwd = vec![7.0; big + 2];
                for (t, b) in bwd.iter_mut().take(big).enumerate() {
                    let (p, y, xx) = (t / (in_hw * in_hw), (t / in_hw) % in_hw, t % in_hw);
                    *b = 0.25 * g[(p * oh + y / 2) * oh + xx / 2] as f64;
                }
                check(&what("backward"), &read(&device, &spread), &bwd, |_| 0.0);
            }
        }
    }
}
