//! `vector.wgsl`: per-row dot products and sums (read back), axpy and scale (now, and recorded with a
//! coefficient from a scalar buffer), row copies (all rows, or the rows whose flag is set), and the
//! recorded reductions that keep the L-BFGS scalars on the device ([`Reduced`]), on 3 rows `len + 3`
//! apart. Tolerance: a dot product or sum γ(len + 2) of Σ|terms|; axpy and scale 3u of |a x| + |y|
//! (the coefficient's product, the multiply and the add rounded, fused or not); copies exact; the
//! L-BFGS scalars their dot products' bounds carried through ρ = 1 / (s·y + ε), γ = s·y / y·y,
//! α = ρ s·q and β = α − ρ y·q to first order (the double-f32 or f64 arithmetic after the sums adds
//! about 2⁻⁴⁴), doubled.

use super::{backends, check, gamma, read, run, upload, values, U};
use losscape::backend::{Coef, Rows};
use losscape::ops::{LbfgsScalars as L, Reduced, MIN_CURVATURE_COSINE, RHO_EPSILON};

const ROWS: usize = 3;

/// Σ x y and Σ |x y| in f64.
fn dot(x: &[f32], y: &[f32]) -> (f64, f64) {
    x.iter().zip(y).map(|(&a, &b)| a as f64 * b as f64).fold((0.0, 0.0), |(s, m), t| (s + t, m + t.abs()))
}

#[test]
fn vector_ops_match_f64_on_cpu_and_wgpu() {
    for (backend, device) in backends() {
        for len in [1, 7, 33, 257, 1000] {
            let what = |op| format!("{backend}: {op} of {ROWS} rows of {len}");
            let stride = len + 3;
            let n = ROWS * stride;
            let row = |v: &[f32], r: usize| v[r * stride..][..len].to_vec();
            let (x, y) = (values(n, len as u32, -1.0, 1.0), values(n, len as u32 + 1, -1.0, 1.0));
            let (xb, yb) = (upload(&device, &x), upload(&device, &y));
            let rows = |buf| Rows { buf, rows: ROWS, len, stride };

            // read back: dot products and sums
            let dots = device.dot(rows(&xb), rows(&yb)).unwrap();
            let sums = device.sum(rows(&xb)).unwrap();
            for r in 0..ROWS {
                let (d, dm) = dot(&row(&x, r), &row(&y, r));
                let (s, sm) = dot(&row(&x, r), &vec![1.0; len]);
                assert!((dots[r] - d).abs() <= gamma(len + 2) * dm, "{}: row {r}: {} vs {d}", what("dot"), dots[r]);
                assert!((sums[r] - s).abs() <= gamma(len + 2) * sm, "{}: row {r}: {} vs {s}", what("sum"), sums[r]);
            }

            // now: y += a x, then y *= s; recorded: y += (2 sc[r * 4 + 1]) x, y *= -0.5, and copies
            let (a, s) = ([0.5f32, -2.0, 3.25], [2.0f32, 0.5, -1.0]);
            let sc = values(ROWS * 4, 9, -1.0, 1.0);
            let flags = [1.0f32, 0.0, 1.0];
            let (scb, flagb) = (upload(&device, &sc), upload(&device, &flags));
            let (copy_all, copy_some) = (upload(&device, &vec![7.0; n]), upload(&device, &vec![7.0; n]));
            device.axpy(&a, rows(&xb), rows(&yb)).unwrap();
            device.scale(&s, rows(&yb)).unwrap();
            run(
                &device,
                &[
                    device.axpy_at(Coef::at(&scb, 1, 4).times(2.0), rows(&xb), rows(&yb)).unwrap(),
                    device.scale_at(Coef::constant(-0.5), rows(&yb)).unwrap(),
                    device.copy_rows(rows(&yb), rows(&copy_all), None).unwrap(),
                    device.copy_rows(rows(&xb), rows(&copy_some), Some(Coef::at(&flagb, 0, 1))).unwrap(),
                ],
            );
            let (mut want, mut tol) = (super::to_f64(&y), vec![0.0; n]);
            let (mut all, mut some) = (vec![7.0; n], vec![7.0; n]);
            for r in 0..ROWS {
                let coef = 2.0 * sc[r * 4 + 1] as f64;
                for i in r * stride..r * stride + len {
                    let (xi, yi) = (x[i] as f64, y[i] as f64);
                    let y1 = s[r] as f64 * (yi + a[r] as f64 * xi);
                    let y2 = -0.5 * (y1 + coef * xi);
                    want[i] = y2;
                    // each step's rounding, relative to the magnitudes it combined (halving is exact)
                    let e1 = (s[r] as f64).abs() * 3.0 * U * ((a[r] as f64 * xi).abs() + yi.abs()) + U * y1.abs();
                    tol[i] = 0.5 * (e1 + 3.0 * U * ((coef * xi).abs() + y1.abs()));
                    all[i] = y2;
                    if flags[r] != 0.0 {
                        some[i] = xi;
                    }
                }
            }
            check(&what("axpy and scale"), &read(&device, &yb), &want, |i| tol[i]);
            check(&what("copy of every row"), &read(&device, &copy_all), &all, |i| tol[i]);
            check(&what("copy of flagged rows"), &read(&device, &copy_some), &some, |_| 0.0);

            lbfgs_reductions(&what("L-BFGS reductions"), &device, len);
        }
    }
}

/// The reductions of one L-BFGS iteration with one pair on three rows: s and y nearly parallel (a
/// good pair), opposite (a bad pair: the history resets) and orthogonal-ish (random).
fn lbfgs_reductions(what: &str, device: &losscape::backend::Device, len: usize) {
    let width = L::width(1);
    let noise = values(ROWS * len, len as u32 + 5, -0.1, 0.1);
    let s = values(ROWS * len, len as u32 + 3, -1.0, 1.0);
    let q = values(ROWS * len, len as u32 + 4, -1.0, 1.0);
    let y: Vec<f32> = (0..ROWS * len)
        .map(|i| match i / len {
            0 => s[i] + noise[i],
            1 => -s[i],
            _ => noise[i] * 10.0,
        })
        .collect();
    let (sb, yb, qb) = (upload(device, &s), upload(device, &y), upload(device, &q));
    let scalars = upload(device, &vec![0.0; ROWS * width]);
    let rows = |buf| Rows::new(buf, ROWS, len);
    let reduce = |x, y, op| device.reduce(rows(x), rows(y), &scalars, width, op).unwrap();
    run(
        device,
        &[
            reduce(&sb, &yb, Reduced::Store(L::SY)),
            reduce(&yb, &yb, Reduced::Store(L::YY)),
            reduce(&sb, &sb, Reduced::Pair(0)),
            reduce(&sb, &qb, Reduced::Alpha(0)),
            reduce(&yb, &qb, Reduced::Beta(0)),
            reduce(&qb, &qb, Reduced::Store(L::RR)),
            reduce(&qb, &qb, Reduced::Reset),
        ],
    );
    let got = read(device, &scalars);
    let g = gamma(len + 2);
    for r in 0..ROWS {
        let part = |v: &[f32]| v[r * len..][..len].to_vec();
        let [sy, yy, ss, sq, yq, qq] =
            [(&s, &y), (&y, &y), (&s, &s), (&s, &q), (&y, &q), (&q, &q)].map(|(a, b)| dot(&part(a), &part(b)));
        let rho = 1.0 / (sy.0 + RHO_EPSILON);
        let cos = sy.0 / (yy.0 * ss.0).sqrt();
        let bad = cos.is_nan() || cos < MIN_CURVATURE_COSINE;
        let e = |d: (f64, f64)| g * d.1;
        let e_rho = rho * rho * e(sy);
        let alpha = rho * sq.0;
        let e_alpha = rho.abs() * e(sq) + sq.0.abs() * e_rho;
        let beta = alpha - rho * yq.0;
        let e_beta = e_alpha + rho.abs() * e(yq) + yq.0.abs() * e_rho;
        let gam = sy.0 / yy.0;
        let e_gam = gam.abs() * (e(sy) / sy.0.abs() + e(yy) / yy.0);
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let mask = flag(!bad);
        let want = [
            ("s·y", L::SY, sy.0, e(sy)),
            ("y·y", L::YY, yy.0, e(yy)),
            ("γ", L::GAMMA, gam, e_gam),
            ("|d|²", L::RR, qq.0, e(qq)),
            ("reset", L::RESET, flag(bad), 0.0),
            ("β", L::COEF, beta, e_beta),
            ("ρ", L::rho(0), rho, e_rho),
            ("bad", L::bad(0), flag(bad), 0.0),
            ("mask", L::mask(0), mask, 0.0),
            ("α", L::alpha(0), alpha, e_alpha),
        ];
        for (name, at, value, err) in want {
            let v = L::get(&got[r * width..], at);
            let tol = 2.0 * err + 1e-12 * value.abs();
            assert!(
                (v - value).abs() <= tol,
                "{what}: row {r}: {name} is {v}, the f64 version {value} (tolerance {tol:e})"
            );
        }
    }
}
