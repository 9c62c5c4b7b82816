//! Golden test: the paper authors' trained LSTM weights (docs/networks.md §6).
mod common;

use common::{authors_lstm_rows01, cpu, mnist, to_f64, wgpu};
use losscape::data::{DeviceImages, Split};
use losscape::io::read_weights;
use losscape::model::{reference, Arch, Evaluator, Network, Want};
use losscape::ops::Act;

const NET: Network = Network { arch: Arch::Lstm, act: Act::Softplus };

/// Rows 0 and 1 of the authors' file, shipped under `tests/data/`.
fn authors_weights() -> Vec<f32> {
    let s = read_weights(&authors_lstm_rows01(), Arch::Lstm).unwrap();
    assert_eq!(s.count(), 2);
    s.flat
}

#[test]
fn authors_lstm_row0_and_midpoint_on_the_official_test_set() {
    let w = authors_weights();
    let n = Arch::Lstm.n_params();
    let (row0, row1) = (&w[..n], &w[n..2 * n]);
    let midpoint: Vec<f32> = row0.iter().zip(row1).map(|(a, b)| 0.5 * (a + b)).collect();
    let data = mnist(Split::Test, usize::MAX);
    for device in [cpu(), wgpu()] {
        let images = DeviceImages::upload(&device, &data).unwrap();
        let eval = Evaluator::new(NET, &images, 0..data.len(), 2).unwrap();
        eval.set_weights(&[row0, &midpoint].concat()).unwrap();
        eval.run(Want::Loss);
        let r = eval.results().unwrap();
        let on = device.summary().name;
        assert!((r[0].loss - 0.781673).abs() / 0.781673 <= 1e-3, "{on}: row 0 test CE {}", r[0].loss);
        assert!((r[0].accuracy.unwrap() - 0.9392).abs() < 5e-5, "{on}: row 0 accuracy {:?}", r[0].accuracy);
        assert!((r[1].loss - 3.90842).abs() / 3.90842 <= 1e-3, "{on}: midpoint test CE {}", r[1].loss);
    }
}

#[test]
fn authors_lstm_row0_on_a_training_slice_matches_the_reference_at_1e_6() {
    let w = authors_weights();
    let row0 = &w[..Arch::Lstm.n_params()];
    let data = mnist(Split::Train, 256);
    let f64_ref = reference::evaluate(Arch::Lstm, &to_f64(row0), Act::Softplus, &data);
    assert!(f64_ref.loss > 1e-7 && f64_ref.loss < 1e-5, "reference training CE {} is not of order 1e-6", f64_ref.loss);
    assert_eq!(f64_ref.accuracy, Some(1.0));
    for device in [cpu(), wgpu()] {
        let images = DeviceImages::upload(&device, &data).unwrap();
        let eval = Evaluator::new(NET, &images, 0..data.len(), 1).unwrap();
        eval.set_weights(row0).unwrap();
        eval.run(Want::Loss);
        let loss = eval.results().unwrap()[0].loss;
        let on = device.summary().name;
        assert!((loss - f64_ref.loss).abs() / f64_ref.loss < 1e-3, "{on}: {loss} vs f64 {}", f64_ref.loss);
    }
}
