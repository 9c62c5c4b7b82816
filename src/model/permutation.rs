//! The LSTM's fixed pixel permutation: `torch.randperm(784)` on a private MT19937 seeded 1234
//! (docs/networks.md §2.3).

/// The standard 32-bit Mersenne Twister (MT19937), as PyTorch's CPU generator and numpy's RandomState.
pub struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    pub fn new(seed: u32) -> Mt19937 {
        let mut state = [0u32; 624];
        state[0] = seed;
        for j in 1..624 {
            state[j] = 1812433253u32.wrapping_mul(state[j - 1] ^ (state[j - 1] >> 30)).wrapping_add(j as u32);
        }
        Mt19937 { state, index: 624 }
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

/// `torch.randperm(n)` with a generator seeded `seed`: for i < n-1 swap `r[i]` and `r[i + z]`, z = next mod (n-i).
pub fn randperm(n: usize, seed: u32) -> Vec<usize> {
    let mut rng = Mt19937::new(seed);
    let mut r: Vec<usize> = (0..n).collect();
    for i in 0..n.saturating_sub(1) {
        let z = rng.next_u32() as usize % (n - i);
        r.swap(i, i + z);
    }
    r
}

/// The LSTM input permutation: step s, feature f reads pixel P[28 s + f].
pub fn lstm_permutation() -> Vec<usize> {
    randperm(784, 1234)
}

/// The seed S among `seeds` for which `randperm(perm.len(), S)` is `perm`, if any: how a description's
/// `permute_seed` is recovered from a permutation written out (an ONNX Gather's indices). Each seed's
/// first draw is checked before its whole shuffle, so a seed costs little more than seeding MT19937.
pub fn randperm_seed(perm: &[usize], seeds: std::ops::RangeInclusive<u32>) -> Option<u32> {
    let n = perm.len();
    let first = *perm.first()?;
    // step 0 swaps r[0] with r[z]: the first entry is z, the first draw modulo n
    seeds.filter(|&s| Mt19937::new(s).next_u32() as usize % n == first).find(|&s| randperm(n, s) == perm)
}
