//! Value ranges of the numeric options, so that every out-of-range value is a usage error (exit 2)
//! naming the option and the range, never a panic or a silent wrap-around.

use clap::builder::RangedU64ValueParser;

/// The most vectors a command makes or trains at once (the paper uses 75).
pub const MAX_VECTORS: u64 = 10_000;

/// A count in `lo..=hi`.
pub fn count(lo: u64, hi: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(lo..=hi)
}

/// A count of at least `lo` (up to the platform's maximum). Not clap's ranged parser: its message
/// for an open range names the platform's maximum ("0 is not in 1..18446744073709551615").
pub fn at_least(lo: u64) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let v: u64 = s.trim().parse().map_err(|_| format!("'{s}' is not a whole number"))?;
        if v < lo {
            return Err(format!("{v} is less than {lo}; give at least {lo}"));
        }
        usize::try_from(v).map_err(|_| format!("{v} is too large for this machine"))
    }
}

fn float(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("'{s}' is not a number"))?;
    if !v.is_finite() {
        return Err(format!("{s} is not a finite number"));
    }
    // -0 is 0: recorded as 0.0, not -0.0, so that `--lambda -0` and `--lambda 0` write the same bytes
    Ok(v + 0.0)
}

/// The 1-based positions of the first entry of `items` that repeats an earlier one, and of that
/// earlier one: (earlier, repeat). A list option naming a network or a size twice would run it twice.
pub fn repeated<T: PartialEq>(items: &[T]) -> Option<(usize, usize)> {
    let again = (1..items.len()).find(|&i| items[..i].contains(&items[i]))?;
    Some((items.iter().position(|x| *x == items[again])? + 1, again + 1))
}

/// A finite number > 0 that f32 holds as a normal number (learning rates: the devices step in f32,
/// where 1e-50 is 0 and 1e40 infinite).
pub fn positive(s: &str) -> Result<f64, String> {
    let v = float(s)?;
    if v <= 0.0 {
        return Err(format!("{s} must be greater than 0"));
    }
    let (least, most) = (f32::MIN_POSITIVE as f64, f32::MAX as f64);
    if !(least..=most).contains(&v) {
        return Err(format!("{s} is outside what f32 holds ({least:e} to {most:e}), in which the devices compute"));
    }
    Ok(v)
}

/// A finite-difference step of the Hessian-vector products, 1e-5 to 1 (a weight-space distance):
/// below, the f32 rounding of the shifted weights and their gradients swamps the difference (the
/// error is ~2 % at 1e-4 on the FCP, ten times that at 1e-5; docs/probes.md), and a step below the
/// weights' f32 resolution gives products of exactly 0, a flat Hessian that is not there; above, the
/// difference measures a secant of the loss, not its curvature.
pub fn fd_step(s: &str) -> Result<f64, String> {
    let v = float(s)?;
    if !(1e-5..=1.0).contains(&v) {
        return Err(format!(
            "{s} is outside 1e-5 to 1: a smaller step drowns in f32 rounding, a larger one measures a secant \
             (docs/probes.md; the default 3e-4 suits the paper's networks)"
        ));
    }
    Ok(v)
}

/// The largest regulariser weight λ (`paths --lambda`, `toy --lambdas`). The path finder computes the
/// regulariser's gradient in f32, per coefficient g = 2λ Σ_m Δs_m · D_m over the segments D of the path,
/// and Adam keeps g² (f32, at most 3.4e38, so |g| at most 1.8e19). The steps Δs of a term vary by at most
/// 2K in all (sin(Kπt), K ≤ 1000 terms; a bend by 2), so |g| ≤ 4000 λ max|D|: at λ = 1e12, g² stays
/// finite for segment coordinates up to 4.6e3, far beyond any network's. Larger weights overflow (a
/// weight of 1e39 makes the regulariser's factors 2λΔs infinite, and the path NaN at its first
/// iteration; the toy's f64 from about 1e155 on), and change nothing before they do: from about 1e10
/// the regulariser outweighs the losses so far that the path is the straight line (the toy's height is
/// the straight line's to 4 digits).
pub const MAX_LAMBDA: f64 = 1e12;

/// A regulariser weight: a finite number from 0 to [`MAX_LAMBDA`].
pub fn lambda(s: &str) -> Result<f64, String> {
    let v = float(s)?;
    if v < 0.0 {
        return Err(format!("{s} must be 0 or greater"));
    }
    if v > MAX_LAMBDA {
        return Err(format!(
            "{s} is above {MAX_LAMBDA:e}, the largest regulariser weight: beyond it the f32 gradient of the \
             regulariser can overflow, and the path is already the straight line; give at most {MAX_LAMBDA:e}"
        ));
    }
    Ok(v)
}

/// The seeds `seed, seed + 1, …, seed + count - 1`.
///
/// Errors: a usage error of `subcommand` (exit 2) when the last one exceeds the largest seed.
pub fn seeds(subcommand: &str, seed: u64, count: usize) -> anyhow::Result<Vec<u64>> {
    match (count as u64).checked_sub(1).map_or(Some(seed), |k| seed.checked_add(k)) {
        Some(_) => Ok((0..count as u64).map(|i| seed + i).collect()),
        None => Err(usage(
            subcommand,
            format!(
                "--seed {seed} with {count} vectors needs seeds up to {seed} + {}, beyond the largest seed {}; \
             use a seed of at most {}",
                count - 1,
                u64::MAX,
                u64::MAX - (count as u64 - 1)
            ),
        )),
    }
}

/// A usage mistake that clap's parser cannot see (options that contradict each other, or that do not
/// apply to the choices made): an error that `main` prints with `subcommand`'s usage line and exit
/// status 2, as clap prints its own (see [`super::usage_exit`]).
pub fn usage(subcommand: &str, message: impl std::fmt::Display) -> anyhow::Error {
    let mut cli = super::command();
    cli.build();
    let kind = clap::error::ErrorKind::ArgumentConflict;
    let error = match cli.find_subcommand_mut(subcommand) {
        Some(cmd) => cmd.error(kind, message),
        None => cli.error(kind, message),
    };
    anyhow::Error::new(error)
}

/// Whether `a` and `b` name one existing file (through links or other spellings of the path); false
/// where either does not exist (an output not written yet loses nothing).
pub fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Refuses an output `out` that is one of `inputs` (through any spelling or symbolic link), which
/// writing would destroy: a usage error of `subcommand` naming `--out` and the fix.
pub fn refuse_input_as_out(subcommand: &str, out: &std::path::Path, inputs: &[&std::path::Path]) -> anyhow::Result<()> {
    match inputs.iter().find(|i| same_file(i, out)) {
        Some(input) => Err(usage(
            subcommand,
            format!("--out {} is {}, an input of this command; write to another file", out.display(), input.display()),
        )),
        None => Ok(()),
    }
}

/// Refuses `option` where it does not apply (`why`, e.g. "applies to --optimizer lbfgs"): given, it
/// would be recorded in the run's configuration while changing nothing.
pub fn not_applicable(subcommand: &str, option: &str, given: bool, why: &str) -> anyhow::Result<()> {
    if given {
        return Err(usage(subcommand, format!("{option} {why}; leave it out")));
    }
    Ok(())
}

/// The first `n` images of `data` (all when `n` is `None`); more than the split holds is a usage
/// error of `subcommand` naming `option`.
pub fn first(
    subcommand: &str,
    data: crate::data::Dataset,
    n: Option<usize>,
    option: &str,
) -> anyhow::Result<crate::data::Dataset> {
    match n {
        Some(n) if n > data.len() => Err(usage(
            subcommand,
            format!("{option} {n}, but the split holds only {} images; use at most {}", data.len(), data.len()),
        )),
        Some(n) => Ok(data.truncated(n)),
        None => Ok(data),
    }
}
