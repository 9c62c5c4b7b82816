//! A guard on the plans of the paper's four networks: the SHA-256 of `format!("{plan:?}")` for every
//! network (FCP and LeNet with each activation) and several (range, loaded, batch, chunk, per_vector)
//! combinations, against `tests/fixtures/plan_digests.txt`. The digests were recorded from the
//! hand-written plan builders (`model/lenet.rs`, `model/lstm.rs`, the dense stacks of `plans.rs`)
//! before the generic builder of `model/generic.rs` replaced them (issue 23), so a plan that changes
//! in any operation, shape, offset or tensor fails here. The LSTM's five lines were recorded again
//! when its recurrence became two sequence operations per chunk (issue 28; the same tensors, and on a
//! GPU the same launches). Record again (only for an intended change of
//! the plans) with `LOSSCAPE_RECORD_PLAN_DIGESTS=1 cargo test --test plan_digests`.

use sha2::{Digest, Sha256};

use losscape::model::{Arch, Network};
use losscape::ops::plan::Plan;
use losscape::ops::Act;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/plan_digests.txt");

/// (first image, images, loaded, batch, chunk, per_vector)
const COMBINATIONS: [(usize, usize, usize, usize, usize, usize); 5] = [
    (0, 100, 100, 1, 64, 0),
    (5, 295, 1000, 3, 128, 0),
    (0, 64, 64, 2, 64, 0),
    (0, 17, 60, 3, 17, 17),
    (10, 513, 600, 2, 256, 0),
];

/// The networks: every activation for FCP and LeNet, the LSTM and the autoencoder with softplus.
fn networks() -> Vec<Network> {
    let mut out = Vec::new();
    for arch in Arch::ALL {
        let acts: &[Act] = if arch.takes_activation() {
            &[Act::Softplus, Act::Relu, Act::Sigmoid, Act::Tanh]
        } else {
            &[Act::Softplus]
        };
        out.extend(acts.iter().map(|&act| Network { arch, act }));
    }
    out
}

/// One line per (network, combination): `<arch> <act> <combination> <sha256>`.
fn digests() -> String {
    let mut out = String::new();
    for net in networks() {
        for (i, &(first, len, loaded, batch, chunk, per_vector)) in COMBINATIONS.iter().enumerate() {
            let plan = Plan::new(net, first..first + len, loaded, batch, chunk, per_vector).unwrap();
            let digest = Sha256::digest(format!("{plan:?}").as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            out += &format!("{} {:?} {i} {hex}\n", net.arch.id(), net.act);
        }
    }
    out
}

#[test]
fn the_four_networks_plans_are_unchanged() {
    let now = digests();
    if std::env::var_os("LOSSCAPE_RECORD_PLAN_DIGESTS").is_some() {
        std::fs::write(FIXTURE, &now).unwrap();
        return;
    }
    let recorded = std::fs::read_to_string(FIXTURE).unwrap();
    for (want, got) in recorded.lines().zip(now.lines()) {
        assert_eq!(got, want, "the plan changed (want the recorded line, got the new one)");
    }
    assert_eq!(recorded.lines().count(), now.lines().count(), "number of plans");
}
