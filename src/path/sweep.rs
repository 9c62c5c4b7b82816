//! A resumable, shardable sweep of path finding over the pairs of one or more solution sets, with any
//! curve family and, optionally, each pair aligned first (weight matching). `DIR/config.json` holds the
//! configuration; `DIR/paths.jsonl` gets one line per finished pair, written
//! in one append and synced, so a killed run loses at most the pairs in flight (one batch, see
//! [`run_sweep_batched`]) and never duplicates one. A sweep that stops each pair at convergence may be
//! resumed with a larger `--max-iterations`: its converged pairs are kept and the others found again
//! (`drop_unconverged`), to the bytes a fresh run with that budget writes.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::curve::Curve;
use super::finder::{Ends, PathFinder, PathOutcome, PathSettings};
use super::pairs::draw_pairs;
use crate::backend::{f32_bytes, Device, Footprint};
use crate::data::{DeviceImages, Split};
use crate::io::jsonl::Appender;
use crate::io::shard::{SetInfo, Shard};
use crate::io::{atomic_write, WeightStack};
use crate::model::{batch_fits, weight_matching, Arch, MatchSettings, Matching, Network};
use crate::ops::Act;

/// Everything that determines a sweep's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepConfig {
    pub model: Arch,
    pub activation: Act,
    pub sets: Vec<SetInfo>,
    pub landscape: Split,
    pub images: usize,
    pub pairs: usize,
    pub seed: u64,
    pub settings: PathSettings,
    pub save_paths: bool,
    pub shard: Shard,
    /// SHA-256 of the landscape's images, as loaded ([`crate::data::fingerprint`]): a resume on other data
    /// is refused. Absent in directories written before it was recorded (then not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
}

/// The curve family of a sweep and whether each pair is aligned first. Saved in `config.json` next to
/// the [`SweepConfig`] fields (a directory written before these options existed reads as Fourier,
/// unaligned).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepOptions {
    /// The curve family of every path.
    #[serde(default)]
    pub curve: Curve,
    /// Align each pair's second vector onto its first (weight matching, [`MatchSettings::default`])
    /// before finding the path.
    #[serde(default)]
    pub align: bool,
    /// Stop each pair at the first iteration at which its path has converged
    /// ([`crate::path::ConvergenceRule::DEFAULT`]), the configuration's iterations being the most
    /// (`paths --until-converged --max-iterations K`). Absent from `config.json` when false, so
    /// directories written before the option existed read as a fixed budget.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub until_converged: bool,
}

/// What `config.json` holds: the configuration and the options, side by side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SavedConfig {
    #[serde(flatten)]
    sweep: SweepConfig,
    #[serde(flatten)]
    options: SweepOptions,
}

/// One finished pair, as a line of `paths.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairRecord {
    /// Global pair index (over all sets); the shard key.
    pub index: usize,
    pub set: usize,
    pub set_file: String,
    pub pair: (usize, usize),
    /// Seeds of the two vectors, when the set records them.
    pub seeds: Option<(u64, u64)>,
    /// The curve family (records written before families existed read as Fourier).
    #[serde(default)]
    pub curve: Curve,
    /// Whether the second vector was aligned onto the first before the path was found.
    #[serde(default)]
    pub aligned: bool,
    /// L2 distance between the endpoints the path joins (the second one aligned when `aligned`); absent
    /// in older records.
    #[serde(default)]
    pub distance: Option<f64>,
    /// L2 distance before alignment; aligned pairs only.
    #[serde(default)]
    pub unaligned_distance: Option<f64>,
    /// Highest loss on the straight line to the unaligned second vector; aligned pairs only.
    #[serde(default)]
    pub unaligned_straight_height: Option<f64>,
    #[serde(flatten)]
    pub outcome: PathOutcome,
}

/// A pair to compute.
#[derive(Clone, Debug)]
pub struct Job {
    pub index: usize,
    pub set: usize,
    pub pair: (usize, usize),
}

/// Every job of the configuration (all shards), in global index order.
pub fn all_jobs(cfg: &SweepConfig) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for (s, set) in cfg.sets.iter().enumerate() {
        for pair in draw_pairs(set.vectors, cfg.pairs, cfg.seed, s as u64).with_context(|| set.file.clone())? {
            jobs.push(Job { index: jobs.len(), set: s, pair });
        }
    }
    Ok(jobs)
}

const RESULTS: &str = "paths.jsonl";

/// Checks the records read from the results file `file` of a sweep with `jobs` (all shards'), written
/// by shard `shard`: each record is one of its shard's pairs, with the set and the pair that its index
/// draws, and no index is written twice. An edited or damaged line would otherwise be taken for a
/// finished pair, leaving the real one uncomputed (and a merge calling the sweep complete).
///
/// Errors: the first record that breaks a rule, naming the file, its line, what is wrong and the fix.
pub fn check_records(
    file: &Path,
    records: &[PairRecord],
    (jobs, sets): (&[Job], &[SetInfo]),
    shard: Shard,
) -> Result<()> {
    let mut seen = BTreeSet::new();
    for (line, r) in records.iter().enumerate().map(|(i, r)| (i + 1, r)) {
        let problem = match jobs.get(r.index) {
            None => format!("pair {} is beyond the sweep's {} pairs", r.index, jobs.len()),
            Some(j) if (j.set, j.pair) != (r.set, r.pair) => format!(
                "pair {} joins vectors {:?} of set {}, but the sweep draws vectors {:?} of set {} for it",
                r.index, r.pair, r.set, j.pair, j.set
            ),
            Some(j) if sets.get(j.set).is_some_and(|s| s.file != r.set_file) => format!(
                "pair {} names the set {}, but the sweep's set {} is {}",
                r.index, r.set_file, j.set, sets[j.set].file
            ),
            Some(_) if r.index % shard.count != shard.index => {
                format!("pair {} belongs to shard {} of {}, not this one", r.index, r.index % shard.count, shard.count)
            }
            Some(_) if !seen.insert(r.index) => format!("pair {} is written twice", r.index),
            Some(_) => continue,
        };
        bail!(
            "{}: line {line}: {problem}; the file was edited or damaged: delete that line (the pair is found again \
             when the sweep is re-run) or the whole file",
            file.display()
        );
    }
    Ok(())
}

/// The metadata of a saved path naming its pair ("a,b") and its set file, written with it and checked
/// on resume ([`check_saved_paths`]).
const PAIR_KEY: &str = "losscape.path.pair";
const SET_KEY: &str = "losscape.path.set";

/// Checks that every finished pair of a sweep that saves its paths has its whole coefficients file (a
/// pair's coefficients are written before its record, so a missing or cut one was lost or damaged
/// afterwards), and that the file is that pair's (its `losscape.path.pair` and `losscape.path.set`,
/// so that two files swapped or copied over each other are found), reading only the files' headers
/// ([`crate::io::weights::check_complete`]). Changed values inside a whole file are not found.
///
/// Errors: the first missing, damaged or misplaced file, naming it and the fix.
fn check_saved_paths(dir: &Path, done: &[PairRecord]) -> Result<()> {
    for r in done {
        let file = coefficients_path(dir, r.index);
        let fix = || {
            format!(
                "the saved path of finished pair {}: delete {} (where it is left) and that pair's line in {} to find it \
                 again",
                r.index,
                file.display(),
                dir.join(RESULTS).display()
            )
        };
        let metadata = crate::io::weights::check_complete(&file).with_context(fix)?;
        let pair = format!("{},{}", r.pair.0, r.pair.1);
        for (key, want) in [(PAIR_KEY, &pair), (SET_KEY, &r.set_file)] {
            // (a file of an older version without the entry is taken as it is)
            let Some(got) = metadata.get(key) else { continue };
            if got != want {
                let problem = format!("{}: its {key} is {got}, not {want}: another pair's file", file.display());
                return Err(anyhow::anyhow!(problem).context(fix()));
            }
        }
    }
    Ok(())
}

/// The sets a sweep directory's configurations record (its own `config.json` and its shards'), each
/// with the directory whose configuration names it (its `file` is named from there).
///
/// Errors: a configuration that exists but cannot be read.
pub fn sweep_sets(dir: &Path) -> Result<Vec<(PathBuf, SetInfo)>> {
    let mut dirs = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut shards: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
        shards.sort();
        dirs.extend(shards);
    }
    let mut out = Vec::new();
    for d in dirs.into_iter().filter(|d| d.join(crate::io::config::CONFIG).exists()) {
        let cfg: SavedConfig = crate::io::config::read_config(&d)?;
        out.extend(cfg.sweep.sets.into_iter().map(|s| (d.clone(), s)));
    }
    Ok(out)
}

/// [`read_records`] of a directory whose `config.json` is a sweep's, checked against it
/// ([`check_records`]); unchecked where there is no configuration to check against.
fn read_checked(dir: &Path) -> Result<Vec<PairRecord>> {
    let records = read_records(dir)?;
    if dir.join(crate::io::config::CONFIG).exists() {
        let cfg: SavedConfig = crate::io::config::read_config(dir)?;
        let jobs = all_jobs(&cfg.sweep)?;
        check_records(&dir.join(RESULTS), &records, (&jobs, &cfg.sweep.sets), cfg.sweep.shard)?;
    }
    Ok(records)
}

/// Reads the finished pairs of the sweep (or shard) directory `dir`, leaving `paths.jsonl` as it is
/// (`io::jsonl::read_lines`: an unfinished last line is ignored).
///
/// Errors: the file cannot be read or holds a damaged line.
pub fn read_records(dir: &Path) -> Result<Vec<PairRecord>> {
    crate::io::jsonl::read_lines(&dir.join(RESULTS))
}

/// All finished pairs of a sweep directory and its shard subdirectories (`io::workdir::shard_dir`),
/// sorted by pair index, each pair once.
///
/// Errors: a results file that exists but cannot be read.
pub fn read_sweep_records(dir: &Path) -> Result<Vec<PairRecord>> {
    let mut out = Vec::new();
    if dir.join(RESULTS).exists() {
        out.extend(read_checked(dir)?);
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut shards: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.join(RESULTS).exists()).collect();
        shards.sort();
        for s in shards {
            out.extend(read_checked(&s)?);
        }
    }
    out.sort_by_key(|r| r.index);
    out.dedup_by_key(|r| r.index);
    Ok(out)
}

/// The sets, loaded, with the network and landscape to run on.
pub struct SweepInputs<'a> {
    pub dir: &'a Path,
    pub cfg: &'a SweepConfig,
    pub stacks: &'a [WeightStack],
    pub images: &'a DeviceImages,
}

/// Progress callbacks of a sweep.
pub trait SweepProgress {
    fn start(&mut self, total: usize, done: usize);
    fn iteration(&mut self, job: &Job, iteration: usize, cumulative: f64);
    fn finished(&mut self, record: &PairRecord);
}

fn seeds_of(stack: &WeightStack) -> Option<Vec<u64>> {
    stack.metadata.get("losscape.seeds")?.split(',').map(|s| s.trim().parse().ok()).collect()
}

/// Runs the shard's unfinished Fourier paths, unaligned; returns how many were computed now.
///
/// # Errors
/// See [`run_sweep_with`].
pub fn run_sweep(inputs: SweepInputs, progress: &mut dyn SweepProgress) -> Result<usize> {
    run_sweep_with(inputs, SweepOptions::default(), progress)
}

/// Runs the shard's unfinished pairs with `options` (curve family, alignment), as many pairs at once
/// as [`super::batching::device_pairs_per_batch`] gives for the device; returns how many were computed now.
///
/// # Errors
/// See [`run_sweep_batched`].
pub fn run_sweep_with(inputs: SweepInputs, options: SweepOptions, progress: &mut dyn SweepProgress) -> Result<usize> {
    run_sweep_batched(inputs, options, None, progress)
}

/// The most pairs [`default_pairs_per_batch`] puts in one batch.
pub const MAX_DEFAULT_PAIRS_PER_BATCH: usize = 16;

/// How many pairs a sweep optimises together on `device` unless told: 1 on the CPU backend (its
/// products already use every core at one pair, so batching saves nothing), else the largest
/// P <= [`MAX_DEFAULT_PAIRS_PER_BATCH`] whose evaluator of P x `points` vectors fits the device's chunk
/// budget (`model::batch_fits`), and at least 1.
pub fn default_pairs_per_batch(net: Network, device: &Device, points: usize) -> usize {
    if device.is_cpu() {
        return 1;
    }
    let budget = device.chunk_budget();
    (1..=MAX_DEFAULT_PAIRS_PER_BATCH).rev().find(|&p| batch_fits(net, budget, p * points)).unwrap_or(1)
}

/// Runs the shard's unfinished pairs with `options`, `pairs_per_batch` pairs at once (None:
/// [`super::batching::device_pairs_per_batch`], which adds the dispatch goals to
/// [`default_pairs_per_batch`]'s memory bound; a last batch may hold fewer); returns how many were
/// computed now.
/// Each pair is written as its own record when its batch finishes; the batch size is an execution
/// detail, like the shard: it is not saved, a sweep may be resumed with another, and each pair's
/// results equal a one-pair-at-a-time run's up to f32 rounding. With `until_converged`, a directory
/// whose configuration differs only by a smaller iteration budget resumes under the larger one: its
/// unconverged pairs are found again (`drop_unconverged`); when the shard is complete its records
/// are in pair-index order.
///
/// # Errors
/// A directory holding a different configuration (a smaller budget included); a batch of 0 pairs; a set with too few vectors for
/// the pairs; a path whose loss becomes non-finite (its batch is lost, earlier batches are kept); device
/// and file errors.
pub fn run_sweep_batched(
    inputs: SweepInputs,
    options: SweepOptions,
    pairs_per_batch: Option<usize>,
    progress: &mut dyn SweepProgress,
) -> Result<usize> {
    let SweepInputs { dir, cfg, images, .. } = inputs;
    // every check before the directory is touched: a refused command leaves nothing behind that would
    // make the corrected one "a different configuration"
    let jobs = all_jobs(cfg)?;
    let _lock = crate::io::lock::DirLock::acquire(dir, crate::io::lock::LOCK)?;
    // a killed run's half-written files: the lock makes this run the directory's only writer
    let coefficients = coefficients_path(dir, 0);
    for d in [dir, coefficients.parent().unwrap_or(dir)] {
        crate::io::remove_partials(d)?;
    }
    // the directory's own record of the sets from here on: a resume that names them by another path
    // writes the same records
    let asked = SavedConfig { sweep: cfg.clone(), options };
    let saved = crate::io::config::prepare_dir_raising(dir, &asked, SavedConfig::budget, |_| drop_unconverged(dir))?;
    let (cfg, inputs) = (&saved.sweep, SweepInputs { cfg: &saved.sweep, ..inputs });
    let (results, done) = Appender::resume::<PairRecord>(&dir.join(RESULTS))?;
    check_records(&dir.join(RESULTS), &done, (&jobs, &cfg.sets), cfg.shard)?;
    if cfg.save_paths {
        check_saved_paths(dir, &done)?;
    }
    let done: BTreeSet<usize> = done.iter().map(|r| r.index).collect();
    let mine: Vec<Job> = jobs.into_iter().filter(|j| cfg.shard.holds(j.index)).collect();
    let todo: Vec<Job> = mine.iter().filter(|j| !done.contains(&j.index)).cloned().collect();
    progress.start(mine.len(), mine.len() - todo.len());
    if todo.is_empty() {
        in_pair_order(dir)?;
        return Ok(0);
    }
    let net = Network { arch: cfg.model, act: cfg.activation };
    let per = pairs_at_once(cfg, pairs_per_batch, images);
    if per == 0 {
        bail!("a batch needs at least one pair");
    }
    let mut finder: Option<PathFinder> = None;
    for batch in todo.chunks(per) {
        if finder.as_ref().is_none_or(|f| f.pairs() != batch.len()) {
            drop(finder.take()); // free the previous batch's buffers first
            let range = 0..images.count;
            finder = Some(PathFinder::batched(net, images, range, cfg.settings, options.curve, batch.len())?);
        }
        let finder = finder.as_ref().expect("a finder was just made");
        run_batch(&inputs, options, finder, batch, &results, progress)?;
    }
    in_pair_order(dir)?;
    Ok(todo.len())
}

impl SavedConfig {
    /// The iteration budget, where a resume may raise it: with `until_converged` only (a fixed budget
    /// changes every record; see [`drop_unconverged`]).
    fn budget(&mut self) -> Option<&mut usize> {
        self.options.until_converged.then_some(&mut self.sweep.settings.iterations)
    }
}

/// Before a sweep with `until_converged` resumes under a larger iteration budget: drops the records of
/// the pairs that had not converged, and their saved coefficients, so that they are found again, from
/// the straight line, under the new budget. A pair that converged keeps its record: it stopped at the
/// first iteration at which it had converged, and that iteration does not depend on the budget (the
/// rule reads the iteration number, never the budget: `docs/algorithms.md` §5), so the larger budget
/// would compute the same record. The records go first, so an interruption leaves coefficients
/// without a record (overwritten when the pair is found again), never the other way round.
///
/// Errors: the results file cannot be read or rewritten; a coefficients file cannot be removed.
fn drop_unconverged(dir: &Path) -> Result<()> {
    let converged = |r: &PairRecord| r.outcome.converged == Some(true);
    let dropped: Vec<usize> = read_records(dir)?.iter().filter(|r| !converged(r)).map(|r| r.index).collect();
    crate::io::jsonl::rewrite(&dir.join(RESULTS), converged, |r: &PairRecord| r.index)?;
    for index in dropped {
        let file = coefficients_path(dir, index);
        if file.exists() {
            std::fs::remove_file(&file).with_context(|| format!("{}: cannot remove", file.display()))?;
        }
    }
    Ok(())
}

/// Puts a finished shard's records in pair-index order, the order a run without interruption writes
/// them in; only a resume under a larger budget (`drop_unconverged`) appends pairs out of order, and
/// this makes its file the same bytes as a fresh run's with that budget.
fn in_pair_order(dir: &Path) -> Result<()> {
    crate::io::jsonl::rewrite(&dir.join(RESULTS), |_: &PairRecord| true, |r: &PairRecord| r.index).map(|_| ())
}

/// The pairs a sweep optimises together: `pairs_per_batch`, else (issue 26) the memory bound of
/// [`default_pairs_per_batch`] and the dispatch goals at this N
/// ([`super::batching::device_pairs_per_batch`]).
fn pairs_at_once(cfg: &SweepConfig, pairs_per_batch: Option<usize>, images: &DeviceImages) -> usize {
    let net = Network { arch: cfg.model, act: cfg.activation };
    let points = cfg.settings.points;
    pairs_per_batch
        .unwrap_or_else(|| super::batching::device_pairs_per_batch(net, &images.device, points, images.count))
}

/// The memory a sweep takes besides its images: the path finder of its largest batch
/// ([`PathFinder::footprint`]: `pairs_per_batch` pairs as [`run_sweep_batched`] takes them, at most
/// the shard's pairs), the sets, and per pair of the batch its second endpoint (aligned or copied).
///
/// # Errors
/// The sets hold too few vectors for the pairs; the network does not plan.
pub fn footprint(inputs: &SweepInputs, options: SweepOptions, pairs_per_batch: Option<usize>) -> Result<Footprint> {
    let (cfg, stacks, images) = (inputs.cfg, inputs.stacks, inputs.images);
    let shard_pairs = all_jobs(cfg)?.iter().filter(|j| cfg.shard.holds(j.index)).count();
    let pairs = pairs_at_once(cfg, pairs_per_batch, images).clamp(1, shard_pairs.max(1));
    let net = Network { arch: cfg.model, act: cfg.activation };
    let budget = (images.count, images.device.chunk_budget());
    let finder = PathFinder::footprint(net, cfg.settings, options.curve, pairs, budget, cfg.save_paths)?;
    let ends = Footprint::host(f32_bytes(pairs * cfg.model.n_params()));
    Ok(finder + stacks.iter().map(WeightStack::footprint).sum() + ends)
}

/// One pair of a batch, ready for its path: the endpoints (the second aligned when asked) and what
/// alignment found.
struct Prepared<'a> {
    job: &'a Job,
    a: &'a [f32],
    b: Vec<f32>,
    matching: Option<Matching>,
    unaligned_straight_height: Option<f64>,
}

/// Loads (and with `--align` aligns) the batch's pairs.
fn prepare<'a>(
    inputs: &SweepInputs<'a>,
    options: SweepOptions,
    finder: &PathFinder,
    batch: &'a [Job],
) -> Result<Vec<Prepared<'a>>> {
    let (cfg, stacks) = (inputs.cfg, inputs.stacks);
    let mut out = Vec::new();
    for job in batch {
        let stack = &stacks[job.set];
        let (a, unaligned) = (stack.vector(job.pair.0), stack.vector(job.pair.1));
        let matching = match options.align {
            true => Some(
                weight_matching(cfg.model, a, unaligned, MatchSettings::default())
                    .with_context(|| format!("aligning pair {} ({}, {})", job.index, job.pair.0, job.pair.1))?,
            ),
            false => None,
        };
        let b = matching.as_ref().map_or(unaligned, |m| &m.aligned[..]).to_vec();
        out.push(Prepared { job, a, b, matching, unaligned_straight_height: None });
    }
    if options.align {
        let unaligned: Vec<Ends> = out.iter().map(|p| (p.a, stacks[p.job.set].vector(p.job.pair.1))).collect();
        let max = |v: Vec<f64>| v.into_iter().fold(f64::NEG_INFINITY, f64::max);
        for (p, line) in out.iter_mut().zip(finder.straight_losses(&unaligned)?) {
            p.unaligned_straight_height = Some(max(line));
        }
    }
    Ok(out)
}

/// Finds the paths of one batch of pairs (as many as `finder` holds) and writes a record per pair.
fn run_batch(
    inputs: &SweepInputs,
    options: SweepOptions,
    finder: &PathFinder,
    batch: &[Job],
    results: &Appender,
    progress: &mut dyn SweepProgress,
) -> Result<()> {
    let cfg = inputs.cfg;
    let prepared = prepare(inputs, options, finder, batch)?;
    let ends: Vec<Ends> = prepared.iter().map(|p| (p.a, &p.b[..])).collect();
    let outcomes = finder
        .run_pairs_until(&ends, cfg.save_paths, options.until_converged, |p, k, sum| {
            progress.iteration(&batch[p], k, sum)
        })
        .with_context(|| {
            let name = |j: &Job| format!("pair {} ({}, {}) of {}", j.index, j.pair.0, j.pair.1, cfg.sets[j.set].file);
            batch.iter().map(name).collect::<Vec<_>>().join("; ")
        })?;
    for (p, outcome) in prepared.into_iter().zip(outcomes) {
        let record = finish_pair(inputs, options, p, outcome)?;
        results.append(&record)?;
        progress.finished(&record);
    }
    Ok(())
}

/// Saves a finished pair's coefficients (when the sweep saves paths) and makes its record.
fn finish_pair(inputs: &SweepInputs, options: SweepOptions, p: Prepared, outcome: PathOutcome) -> Result<PairRecord> {
    let (cfg, job) = (inputs.cfg, p.job);
    if let Some(coef) = &outcome.coefficients {
        let file = coefficients_path(inputs.dir, job.index);
        let mut s = WeightStack::new(cfg.model, options.curve.bend(p.a, &p.b, coef));
        s.metadata.insert(PAIR_KEY.into(), format!("{},{}", job.pair.0, job.pair.1));
        s.metadata.insert(SET_KEY.into(), cfg.sets[job.set].file.clone());
        s.metadata.insert("losscape.path.curve".into(), options.curve.id().into());
        s.metadata.insert("losscape.path.aligned".into(), options.align.to_string());
        crate::io::write_weights(&file, &s)?;
    }
    let seeds = seeds_of(&inputs.stacks[job.set]).and_then(|s| Some((*s.get(job.pair.0)?, *s.get(job.pair.1)?)));
    Ok(PairRecord {
        index: job.index,
        set: job.set,
        set_file: cfg.sets[job.set].file.clone(),
        pair: job.pair,
        seeds,
        curve: options.curve,
        aligned: options.align,
        distance: Some(crate::model::matching::distance(p.a, &p.b)),
        unaligned_distance: p.matching.as_ref().map(|m| m.distance_before),
        unaligned_straight_height: p.unaligned_straight_height,
        outcome,
    })
}

/// One pair's path found again.
pub struct Replayed {
    /// The endpoints as the path joins them (the second aligned onto the first when the sweep aligned).
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    /// The best path's points (M x N_prm, at t_m = m / (M - 1)).
    pub points: Vec<f32>,
    pub outcome: PathOutcome,
}

/// Finds the path of vectors `pair` of `stack` again, as a sweep with `settings` and `options` found it:
/// the finder is deterministic, so the same inputs give the same path (the caller can compare the
/// height with the sweep's record). Used to look at one path closely without saving every path's
/// coefficients.
///
/// Errors: as [`run_sweep_with`].
pub fn replay_pair(
    net: Network,
    images: &DeviceImages,
    settings: PathSettings,
    options: SweepOptions,
    stack: &WeightStack,
    pair: (usize, usize),
) -> Result<Replayed> {
    let finder = PathFinder::with_curve(net, images, 0..images.count, settings, options.curve)?;
    let (a, unaligned) = (stack.vector(pair.0), stack.vector(pair.1));
    let b = if options.align {
        weight_matching(net.arch, a, unaligned, MatchSettings::default())
            .with_context(|| format!("aligning pair ({}, {})", pair.0, pair.1))?
            .aligned
    } else {
        unaligned.to_vec()
    };
    let outcome = finder.run_pairs_until(&[(a, &b)], false, options.until_converged, |_, _, _| {})?.remove(0);
    Ok(Replayed { a: a.to_vec(), points: finder.points()?, b, outcome })
}

/// Where `--save-paths` puts the best coefficients of a pair: a stack of NF vectors with the network's
/// tensor names (b_1 .. b_NF), or for Bezier and polychain curves the bend theta (one vector; with
/// `--align` the path's second endpoint is the aligned vector).
pub fn coefficients_path(dir: &Path, index: usize) -> PathBuf {
    dir.join("coefficients").join(format!("pair-{index:05}.safetensors"))
}

/// The set file a record of the sweep directory `dir` names as `named`: `named` from `dir` (a `paths`
/// sweep's), else from the nearest directory above it (a `reproduce` study's sweeps name their sets
/// from the study's directory), taken only where its content has the checksum `sha256` the sweep
/// recorded for it (each shard names the set from itself, so the name alone does not identify it).
fn find_set(dir: &Path, named: &str, sha256: &str) -> Option<PathBuf> {
    let absolute = std::path::absolute(dir).ok()?;
    absolute
        .ancestors()
        .map(|d| d.join(named))
        .find(|candidate| candidate.is_file() && crate::io::shard::sha256_file(candidate).is_ok_and(|h| h == sha256))
}

/// Joins shard directories into one JSON-lines file sorted by pair index; refuses shards whose
/// configurations differ (other than the shard), records that do not belong to their shard
/// ([`check_records`]) and pairs that disagree. Each record's `set_file` names the set from the merged
/// file's directory (as each shard's names it from the shard, or a study's from the study), so the
/// merged bytes do not depend on where the shards lay; a set that is not found from its shard keeps
/// the shard's text, with a warning.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<(usize, usize)> {
    let first = dirs.first().ok_or_else(|| anyhow!("name at least one directory to merge"))?;
    if let Some(dir) = dirs.iter().find(|d| !d.join(crate::io::config::CONFIG).is_file()) {
        bail!(
            "{}: not a directory that `losscape paths` wrote (it has no config.json); name the --out directories \
             of the sweep's shards",
            dir.display()
        );
    }
    let cfg: SavedConfig = crate::io::config::read_config(first)?;
    let mut records: std::collections::BTreeMap<usize, PairRecord> = Default::default();
    // where the file lands: through a symbolic link, the directory of the file it names
    let target = crate::io::link_target(out);
    let out_dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut lost = std::collections::BTreeSet::new();
    for dir in dirs {
        let other: SavedConfig = crate::io::config::read_config(dir)?;
        let diff = crate::io::config::differences(&cfg, &other, &["shard"]);
        if !diff.is_empty() {
            bail!("{} and {} hold different sweeps (differ in: {})", first.display(), dir.display(), diff.join(", "));
        }
        for mut r in read_checked(dir)? {
            // each directory names the set from itself (a study's sweeps, from the study's directory):
            // name it from the merged file instead
            let set = cfg.sweep.sets.get(r.set).and_then(|info| find_set(dir, &r.set_file, &info.sha256));
            match set.and_then(|set| crate::io::shard::path_from(out_dir, &set)) {
                Some(named) => r.set_file = named,
                None if lost.insert(dir.join(&r.set_file)) => eprintln!(
                    "warning: {}: the set it names, {}, is not there (was the directory moved away from its set?); \
                     the merged records keep that name, which is relative to the shard's first place",
                    dir.display(),
                    r.set_file
                ),
                None => {}
            }
            if let Some(prev) = records.get(&r.index) {
                if prev != &r {
                    bail!("pair {} appears twice with different results ({})", r.index, dir.display());
                }
            }
            records.insert(r.index, r);
        }
    }
    let mut text = Vec::new();
    for r in records.values() {
        text.extend(crate::io::jsonl::line(r)?);
    }
    atomic_write(out, &text)?;
    Ok((records.len(), all_jobs(&cfg.sweep)?.len()))
}
