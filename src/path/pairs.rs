//! Pairs of a set's vectors: distinct unordered pairs drawn without replacement (docs/algorithms.md §6).

use anyhow::{bail, Result};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// `count` distinct pairs (i < j) of `vectors`, drawn with `seed`; stream `set` keeps sets independent.
pub fn draw_pairs(vectors: usize, count: usize, seed: u64, set: u64) -> Result<Vec<(usize, usize)>> {
    let all = vectors * vectors.saturating_sub(1) / 2;
    if count > all {
        bail!("{count} pairs asked for, but {vectors} vectors have only {all} distinct pairs");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(set);
    // pair number q (0-based) in the order (0,1), (0,2), .., (0,n-1), (1,2), ..
    let unrank = |mut q: usize| {
        let mut i = 0;
        while q >= vectors - 1 - i {
            q -= vectors - 1 - i;
            i += 1;
        }
        (i, i + 1 + q)
    };
    Ok(sample(&mut rng, all, count).into_iter().map(unrank).collect())
}
