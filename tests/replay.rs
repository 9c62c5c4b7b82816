//! The probes stage's building blocks: a pair's path found again equals the sweep's, the
//! representative pair is the median-height one, and the surface axes hold the three named points.

mod common;

use losscape::data::{DeviceImages, Split};
use losscape::io::shard::{SetInfo, Shard};
use losscape::io::WeightStack;
use losscape::model::{init_vector, Arch, Network};
use losscape::ops::Act;
use losscape::path::sweep::Job;
use losscape::path::sweep::{
    read_sweep_records, replay_pair, run_sweep_with, PairRecord, SweepConfig, SweepInputs, SweepOptions, SweepProgress,
};
use losscape::path::PathSettings;
use losscape::pipeline::{representative, surface_axes};

struct Quiet;

impl SweepProgress for Quiet {
    fn start(&mut self, _: usize, _: usize) {}
    fn iteration(&mut self, _: &Job, _: usize, _: f64) {}
    fn finished(&mut self, _: &PairRecord) {}
}

#[test]
fn a_replayed_path_equals_the_sweeps_and_joins_its_endpoints() {
    let gpu = common::gpu();
    let images = DeviceImages::upload(&gpu, &common::mnist(Split::Train, 48)).unwrap();
    let flat: Vec<f32> = (0..3).flat_map(|s| init_vector(Arch::Fcp, s)).collect();
    let stack = WeightStack::new(Arch::Fcp, flat);
    let settings = PathSettings { fourier: 2, points: 5, lambda: 1e-4, lr: 1e-2, iterations: 3 };
    let dir = tempfile::tempdir().unwrap();
    for align in [false, true] {
        let cfg = SweepConfig {
            model: Arch::Fcp,
            activation: Act::Relu,
            sets: vec![SetInfo { file: "set".into(), sha256: "-".into(), vectors: 3 }],
            landscape: Split::Train,
            images: images.count,
            pairs: 2,
            seed: 1,
            settings,
            save_paths: false,
            shard: Shard { index: 0, count: 1 },
            data_sha256: None,
        };
        let out = dir.path().join(format!("align-{align}"));
        let options = SweepOptions { align, ..Default::default() };
        let inputs = SweepInputs { dir: &out, cfg: &cfg, stacks: std::slice::from_ref(&stack), images: &images };
        run_sweep_with(inputs, options, &mut Quiet).unwrap();
        let records = read_sweep_records(&out).unwrap();
        assert_eq!(records.len(), 2);
        let net = Network { arch: Arch::Fcp, act: Act::Relu };
        for r in &records {
            let again = replay_pair(net, &images, settings, options, &stack, r.pair).unwrap();
            assert_eq!(again.outcome.height.to_bits(), r.outcome.height.to_bits(), "align {align}, pair {:?}", r.pair);
            assert_eq!(again.outcome.losses, r.outcome.losses);
            let n = Arch::Fcp.n_params();
            assert_eq!(again.points.len(), 5 * n);
            assert_eq!(&again.points[..n], stack.vector(r.pair.0), "the path starts at a");
            assert_eq!(&again.points[4 * n..], &again.b[..], "and ends at b");
            assert_eq!(again.b == stack.vector(r.pair.1), !align, "b is the aligned vector only with --align");
            // the optimised path bends away from the straight line's midpoint
            let straight: Vec<f32> = again.a.iter().zip(&again.b).map(|(x, y)| 0.5 * (x + y)).collect();
            assert!(again.points[2 * n..3 * n].iter().zip(&straight).any(|(p, s)| (p - s).abs() > 1e-6));
        }
    }
}

#[test]
fn the_representative_pair_has_the_median_height_of_its_set() {
    let record = |index: usize, set: usize, height: f64| -> PairRecord {
        serde_json::from_value(serde_json::json!({
            "index": index, "set": set, "set_file": "s", "pair": [index, index + 1], "seeds": null,
            "straight_losses": [], "losses": [], "best_iteration": 0, "height": height, "barrier": 0.0,
            "straight_height": 0.0, "length": 0.0, "weighted_mean_loss": 0.0
        }))
        .unwrap()
    };
    let records = vec![
        record(0, 0, 5.0),
        record(1, 0, 1.0),
        record(2, 1, 0.1),
        record(3, 0, 3.0),
        record(4, 0, 3.0),
        record(5, 0, 9.0),
    ];
    // set 0 sorted by height, ties by index: pairs 1, 3, 4, 0, 5 (heights 1, 3, 3, 5, 9); the middle one
    assert_eq!(representative(&records, 0).unwrap().index, 4);
    // an even count takes the lower median
    assert_eq!(representative(&records[..4], 0).unwrap().index, 3);
    assert_eq!(representative(&records[..2], 0).unwrap().index, 1);
    assert_eq!(representative(&records, 1).unwrap().index, 2);
    assert!(representative(&records, 2).is_none());
}

#[test]
fn surface_axes_hold_both_endpoints_and_the_midpoint() {
    for (d, mid) in [(10.0, (5.0, 1.0)), (2.0, (1.0, 6.0)), (4.0, (-1.5, -0.2)), (1.0, (3.0, 0.5))] {
        let (x, y) = surface_axes(d, mid, 21).unwrap();
        let inside = |a: &losscape::probe::grid::AxisRange, v: f64| a.value(0) < v && v < a.value(a.points - 1);
        for (px, py) in [(0.0, 0.0), (d, 0.0), mid] {
            assert!(inside(&x, px) && inside(&y, py), "d {d}, point ({px}, {py}): x {x:?}, y {y:?}");
        }
        assert_eq!((x.points, y.points), (21, 21));
        assert!((y.value(0) + y.value(20)).abs() < 1e-12, "y symmetric about the line through a and b");
    }
    assert!(surface_axes(0.0, (0.0, 0.0), 21).is_err(), "coincident endpoints span no plane");
}
