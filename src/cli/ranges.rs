//! Value ranges of the numeric options, so that every out-of-range value is a usage error (exit 2)
//! naming the option and the range, never a panic or a silent wrap-around.

use clap::builder::RangedU64ValueParser;
use clap::CommandFactory;

/// The most vectors a command makes or trains at once (the paper uses 75).
pub const MAX_VECTORS: u64 = 10_000;

/// A count in `lo..=hi`.
pub fn count(lo: u64, hi: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(lo..=hi)
}

/// A count of at least `lo` (up to the platform's maximum).
pub fn at_least(lo: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(lo..)
}

fn float(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("'{s}' is not a number"))?;
    if !v.is_finite() {
        return Err(format!("{s} is not a finite number"));
    }
    Ok(v)
}

/// A finite number > 0 (learning rates).
pub fn positive(s: &str) -> Result<f64, String> {
    let v = float(s)?;
    if v <= 0.0 {
        return Err(format!("{s} must be greater than 0"));
    }
    Ok(v)
}

/// A finite number >= 0 (regulariser weights).
pub fn non_negative(s: &str) -> Result<f64, String> {
    let v = float(s)?;
    if v < 0.0 {
        return Err(format!("{s} must be 0 or greater"));
    }
    Ok(v)
}

/// The seeds `seed, seed + 1, …, seed + count - 1`, or a usage error (exit 2) when the last one
/// exceeds the largest seed.
pub fn seeds(seed: u64, count: usize) -> Vec<u64> {
    match (count as u64).checked_sub(1).map_or(Some(seed), |k| seed.checked_add(k)) {
        Some(_) => (0..count as u64).map(|i| seed + i).collect(),
        None => usage_error(&format!(
            "--seed {seed} with {count} vectors needs seeds up to {seed} + {}, beyond the largest seed {}; \
             use a seed of at most {}",
            count - 1,
            u64::MAX,
            u64::MAX - (count as u64 - 1)
        )),
    }
}

/// Prints `message` as a usage error and exits with status 2, like clap's own checks.
pub fn usage_error(message: &str) -> ! {
    super::Cli::command().error(clap::error::ErrorKind::ValueValidation, message).exit()
}

/// The first `n` images of `data` (all when `n` is `None`); more than the split holds is an error
/// naming `option`.
pub fn first(data: crate::data::Dataset, n: Option<usize>, option: &str) -> anyhow::Result<crate::data::Dataset> {
    match n {
        Some(n) if n > data.len() => {
            anyhow::bail!("{option} {n}, but the split holds only {} images; use at most {}", data.len(), data.len())
        }
        Some(n) => Ok(data.truncated(n)),
        None => Ok(data),
    }
}
