//! `Plan::new` of each of the paper's four networks is the generic builder's plan of its description
//! (`Network::description`): for FCP and LeNet with each activation, the LSTM and the autoencoder, and
//! several (range, loaded, batch, chunk, per_vector) combinations, tensor names included. This test
//! compared the generic builder with the hand-written builders (model/lenet.rs, model/lstm.rs and the
//! dense stacks of plans.rs) while they existed, and passed; since they are gone, `tests/plan_digests.rs`
//! holds the generic plans to the digests recorded from them.

use losscape::model::{Arch, Network};
use losscape::ops::plan::Plan;
use losscape::ops::Act;

#[test]
fn the_generic_builder_gives_the_four_networks_plans() {
    let combinations =
        [(0, 100, 100, 1, 64, 0), (5, 295, 1000, 3, 128, 0), (0, 17, 60, 3, 17, 17), (10, 513, 600, 2, 256, 0)];
    for arch in Arch::ALL {
        for act in [Act::Softplus, Act::Relu, Act::Sigmoid, Act::Tanh] {
            let net = Network { arch, act };
            let desc = net.description();
            for (first, len, loaded, batch, chunk, per_vector) in combinations {
                let range = first..first + len;
                let old = Plan::new(net, range.clone(), loaded, batch, chunk, per_vector).unwrap();
                let new = Plan::for_description(&desc, range, loaded, batch, chunk, per_vector).unwrap();
                assert_eq!(old.tensors, new.tensors, "{net:?}: tensors");
                for (o, n) in old.chunks.iter().zip(&new.chunks) {
                    for (pass, a, b) in [("forward", &o.forward, &n.forward), ("backward", &o.backward, &n.backward)] {
                        for (k, (x, y)) in a.iter().zip(b).enumerate() {
                            assert_eq!(x, y, "{net:?}: {pass} op {k}");
                        }
                        assert_eq!(a.len(), b.len(), "{net:?}: {pass} ops");
                    }
                }
                assert!(old == new, "{net:?}: plans differ");
            }
        }
    }
}
