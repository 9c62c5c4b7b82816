use losscape::model::{init_vector, Arch};

#[test]
fn parameter_counts_match_table_one() {
    let expect = [(Arch::Fcp, 42200), (Arch::Lenet, 61706), (Arch::Lstm, 15456), (Arch::Autoencoder, 52224)];
    for (arch, n) in expect {
        assert_eq!(arch.n_params(), n, "{}", arch.title());
    }
}

#[test]
fn names_shapes_and_offsets_match_spec_section_one() {
    let names = |a: Arch| a.params().iter().map(|t| (t.name, t.shape.clone())).collect::<Vec<_>>();
    assert_eq!(
        names(Arch::Fcp),
        vec![("fc1.weight", vec![50, 784]), ("fc2.weight", vec![50, 50]), ("fc3.weight", vec![10, 50])]
    );
    assert_eq!(
        names(Arch::Lstm),
        vec![
            ("gru.weight_ih_l0", vec![192, 28]),
            ("gru.weight_hh_l0", vec![192, 48]),
            ("gru.bias_ih_l0", vec![192]),
            ("gru.bias_hh_l0", vec![192]),
            ("fc.weight", vec![10, 48]),
        ]
    );
    assert_eq!(Arch::Lstm.offsets(), vec![0, 5376, 14592, 14784, 14976]);
    let lenet: Vec<_> = names(Arch::Lenet).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        lenet,
        [
            "conv1.weight",
            "conv1.bias",
            "conv2.weight",
            "conv2.bias",
            "fc1.weight",
            "fc1.bias",
            "fc2.weight",
            "fc2.bias",
            "fc3.weight",
            "fc3.bias"
        ]
    );
    assert_eq!(Arch::Lenet.params()[2].shape, vec![16, 6, 5, 5]);
    assert_eq!(
        names(Arch::Autoencoder),
        vec![
            ("encoder.0.weight", vec![32, 784]),
            ("encoder.2.weight", vec![32, 32]),
            ("decoder.0.weight", vec![32, 32]),
            ("decoder.2.weight", vec![784, 32]),
        ]
    );
}

#[test]
fn init_bounds_follow_pytorch_defaults_and_seeds_are_reproducible() {
    // docs/networks.md §3 bounds, per tensor.
    let expect: [(Arch, &[f32]); 4] = [
        (Arch::Fcp, &[0.0357143, 0.1414214, 0.1414214]),
        (Arch::Lenet, &[0.2, 0.2, 0.0816497, 0.0816497, 0.05, 0.05, 0.0912871, 0.0912871, 0.1091089, 0.1091089]),
        (Arch::Lstm, &[0.1443376; 5]),
        (Arch::Autoencoder, &[0.0357143, 0.1767767, 0.1767767, 0.1767767]),
    ];
    for (arch, bounds) in expect {
        let v = init_vector(arch, 11);
        assert_eq!(v, init_vector(arch, 11), "same seed, same vector");
        assert_ne!(v, init_vector(arch, 12), "different seeds differ");
        let mut off = 0;
        for (t, &bound) in arch.params().iter().zip(bounds) {
            assert!((t.init_bound() - bound).abs() < 1e-6, "{} bound", t.name);
            let part = &v[off..off + t.len()];
            let max = part.iter().fold(0f32, |m, x| m.max(x.abs()));
            assert!(max <= bound, "{} exceeds its bound", t.name);
            if t.len() >= 100 {
                // a uniform sample of this size reaches near its bound and has mean ~0
                assert!(max > 0.9 * bound, "{} does not fill its range", t.name);
                let mean = part.iter().sum::<f32>() / t.len() as f32;
                assert!(mean.abs() < 0.15 * bound, "{} mean {mean}", t.name);
            }
            off += t.len();
        }
    }
}
