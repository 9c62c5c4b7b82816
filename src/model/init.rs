//! Seeded PyTorch-default initialisation: every tensor U(±1/sqrt(fan_in)) (docs/networks.md §3).

use anyhow::{anyhow, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Arch;

/// The flat initial vector of run `seed`: one ChaCha8 stream per seed, tensors in flat order.
pub fn init_vector(arch: Arch, seed: u64) -> Vec<f32> {
    let mut out = Vec::with_capacity(arch.n_params());
    draw(arch, seed, &mut out);
    out
}

/// The initial vectors of `seeds` ([`init_vector`] of each), one after another in one flat vector of
/// `seeds.len()` × N_prm values, its memory reserved before any is drawn: a set too large for the
/// machine is an error, not an abort half-way.
///
/// # Errors
/// The allocation (`seeds.len()` × N_prm × 4 bytes) fails; the message gives its size.
pub fn init_vectors(arch: Arch, seeds: &[u64]) -> Result<Vec<f32>> {
    let n = arch.n_params();
    let values = seeds.len().saturating_mul(n);
    let mut out = Vec::new();
    out.try_reserve_exact(values).map_err(|_| {
        anyhow!(
            "{} vector(s) of the {}'s {n} parameters take {}, more than this machine can allocate",
            seeds.len(),
            arch.title(),
            crate::backend::footprint::size((values as u64).saturating_mul(4))
        )
    })?;
    for &seed in seeds {
        draw(arch, seed, &mut out);
    }
    Ok(out)
}

/// Appends the initial vector of `seed` to `out`.
fn draw(arch: Arch, seed: u64, out: &mut Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for t in arch.params() {
        let bound = t.init_bound();
        out.extend((0..t.len()).map(|_| rng.random_range(-bound..bound)));
    }
}
