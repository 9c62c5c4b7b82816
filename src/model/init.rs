//! Seeded PyTorch-default initialisation: every tensor U(±1/sqrt(fan_in)) (docs/networks.md §3).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Arch;

/// The flat initial vector of run `seed`: one ChaCha8 stream per seed, tensors in flat order.
pub fn init_vector(arch: Arch, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(arch.n_params());
    for t in arch.params() {
        let bound = t.init_bound();
        out.extend((0..t.len()).map(|_| rng.random_range(-bound..bound)));
    }
    out
}
