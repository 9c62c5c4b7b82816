use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use super::progress::Progress;
use super::ranges::{at_least, count, fd_step};
use super::RunArgs;
use crate::data::{DeviceImages, Split};
use crate::io::jsonl::Appender;
use crate::io::read_weights;
use crate::io::shard::SetInfo;
use crate::model::{Arch, Network};
use crate::ops::Act;
use crate::probe::hessian::{
    spectra, spectra_csv, spectra_footprint, spectra_json, SpectraProgress, Spectrum, SpectrumRecord, SpectrumSettings,
    DEFAULT_STEP, HVP_METHOD,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Top Hessian eigenvalues (Lanczos) and trace (Hutchinson) of every vector of a set, batched.
#[derive(Args)]
#[command(
    after_help = "Example:\n  losscape hessian --model fcp --set fcp-sgd.safetensors --top 3 --landscape train --train-size 10000 --out h\n\n\
Output: DIR/hessian.csv (columns vector,lambda_1,...,lambda_K,trace) and DIR/hessian.json (settings, the\n\
trace's standard error, timings). Resumable: DIR/vectors.jsonl holds one line per finished vector (the\n\
lines of a batch are appended when it finishes); a re-run (with any --batch or --vectors) computes only\n\
the vectors not there yet. Hessian-vector products are central differences of batched f32 gradients\n\
(--step); see docs/probes.md."
)]
pub struct HessianArgs {
    /// Network: fcp, lenet, lstm, autoencoder, a compact MLP (mlp:784-64-10:tanh) or a description
    /// file (.toml; docs/networks.md §7).
    #[arg(long, value_parser = crate::cli::model_arg)]
    model: Arch,
    /// The solution set (stack of vectors, .safetensors or .npy; `--weights`, as `eval` names it, is
    /// the same).
    #[arg(long, visible_alias = "weights")]
    set: PathBuf,
    /// Only these vectors of the set (0-based, e.g. 0,1,5).
    #[arg(long, value_delimiter = ',', value_name = "I,J,...")]
    vectors: Option<Vec<usize>>,
    /// How many of the largest eigenvalues (1 to 100).
    #[arg(long, default_value_t = 1, value_parser = count(1, 100))]
    top: usize,
    /// Lanczos iterations (at least --top; capped at the number of weights). One batched HVP each.
    #[arg(long, default_value_t = 30, value_parser = count(1, 10_000))]
    steps: usize,
    /// Rademacher probes of Hutchinson's trace estimator (0 skips the trace). One batched HVP each.
    #[arg(long, default_value_t = 100, value_parser = count(0, 1_000_000))]
    probes: usize,
    /// Seed of the Lanczos start vectors and the probes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Finite-difference step of the Hessian-vector products (weight-space distance, 1e-5 to 1).
    #[arg(long, allow_negative_numbers = true, default_value_t = DEFAULT_STEP, value_parser = fd_step)]
    step: f64,
    /// Vectors per batched call (each takes two gradient evaluations); default: all.
    #[arg(long, value_name = "N", value_parser = at_least(1))]
    batch: Option<usize>,
    /// The loss landscape: the training or the test split.
    #[arg(long, value_enum, default_value_t = Split::Train)]
    landscape: Split,
    /// Use the first N training images as the training landscape.
    #[arg(long, value_name = "N", value_parser = at_least(1))]
    train_size: Option<usize>,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    run: RunArgs,
}

/// Everything that determines a run's results; `--batch` and `--vectors` are left out (random numbers
/// are drawn per vector), so a run may resume with others.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct HessianConfig {
    model: Arch,
    activation: Act,
    set: SetInfo,
    landscape: Split,
    images: usize,
    settings: SpectrumSettings,
    /// SHA-256 of the landscape's images as loaded: a resume on other data is refused (absent, and not
    /// compared, in directories written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_sha256: Option<String>,
}

/// Finished vectors, one JSON line each, appended as each batch finishes.
const RECORDS: &str = "vectors.jsonl";

/// The progress bar, one line per vector; saves each finished group.
struct Bar {
    out: Progress,
    file: Appender,
}

impl SpectraProgress for Bar {
    fn phase(&mut self, phase: &str, rows: &[usize]) {
        self.out.bar.set_message(format!("{phase} on vectors {}..={}", rows[0], rows[rows.len() - 1]));
    }
    fn calls(&mut self, calls: usize) {
        self.out.advance(calls as u64);
    }
    fn group(&mut self, rows: &[usize], results: &[Spectrum]) -> Result<()> {
        for (r, s) in rows.iter().zip(results) {
            self.file.append(&SpectrumRecord::new(*r, s))?;
            if s.eigenvalues.iter().all(|v| !v.is_finite()) {
                self.out.warn(format!(
                    "warning: vector {r}: the loss's gradients around it are not finite (its weights overflow the \
                     network; `losscape eval` shows its loss), so its eigenvalues and trace are written as NaN"
                ));
            }
            self.out.line(format!(
                "vector {r}: lambda_1 {:.6e}{}",
                s.eigenvalues[0],
                s.trace.map_or(String::new(), |(m, se)| format!(", trace {m:.6e} ± {se:.1e}"))
            ));
        }
        Ok(())
    }
}

/// The spectra of the vectors an earlier run finished: `records`, the numbered lines of `path`, each
/// checked against this run's `settings` (the directory's configuration) and a set of `vectors`.
///
/// Errors: a line this configuration cannot have written (another --top or --probes, a vector the set
/// does not hold) or that repeats a vector, named by file and line with the fix; a wrong line would
/// otherwise reach hessian.csv (a 5-column row under a 4-column header).
fn finished(
    path: &std::path::Path,
    records: Vec<(usize, SpectrumRecord)>,
    settings: &SpectrumSettings,
    vectors: usize,
) -> Result<BTreeMap<usize, Spectrum>> {
    let mut done = BTreeMap::new();
    for (line, r) in records {
        let repeated = || done.contains_key(&r.vector).then(|| format!("repeats vector {}", r.vector));
        if let Some(problem) = r.mismatch(settings, vectors).or_else(repeated) {
            anyhow::bail!(
                "{}: line {line} {problem} (config.json records the run's settings): this directory's run did \
                 not write it. Delete that line (its vector is computed again) or the file (every vector is)",
                path.display()
            );
        }
        done.insert(r.vector, r.spectrum());
    }
    Ok(done)
}

pub fn run(args: HessianArgs) -> Result<()> {
    let settings =
        SpectrumSettings { top: args.top, steps: args.steps, probes: args.probes, seed: args.seed, step: args.step };
    // before loading anything: --top against --steps is a usage mistake
    settings.check().map_err(|e| super::ranges::usage("hessian", e))?;
    let act = args.run.act("hessian", args.model)?;
    let stack = read_weights(&args.set, args.model)?;
    super::note_activation(&stack, &args.set, act);
    let rows = super::pick_vectors(("hessian", "--vectors"), &stack, args.vectors.as_deref(), &args.set)?;
    let data = args.run.data.landscape("hessian", args.model, args.landscape, args.train_size)?;
    let net = Network { arch: args.model, act };
    let cfg = HessianConfig {
        model: args.model,
        activation: net.act,
        set: SetInfo::of(&args.set, &stack, &args.out)?,
        landscape: args.landscape,
        images: data.len(),
        settings,
        data_sha256: Some(data.sha256()),
    };
    let device = args.run.device.open()?;
    let images = DeviceImages::upload(&device, &data)?;
    // before the directory is touched: the largest group this run could take (a resume takes fewer)
    let most = args.batch.unwrap_or(rows.len()).clamp(1, rows.len());
    let budget = (images.count, device.chunk_budget());
    let need =
        DeviceImages::footprint(&device, &data) + stack.footprint() + spectra_footprint(net, most, &settings, budget)?;
    let sized_by = format!("{most} vector(s) per call (--batch) with --steps {}", args.steps);
    let fixes = "give a smaller --batch or fewer --steps (it grows with vectors per call x steps)";
    super::memory::check("hessian", &args.run, &device, need, &sized_by, fixes)?;
    let _lock = crate::io::lock::DirLock::acquire(&args.out, crate::io::lock::LOCK)?;
    // a killed run's half-written files: the lock makes this run the directory's only writer
    crate::io::remove_partials(&args.out)?;
    // the directory's own record of the set from here on: a resume that names it by another path (or
    // from a moved directory) writes the same hessian.json
    let cfg = crate::io::config::prepare_dir(&args.out, &cfg)?;
    let (file, done) = Appender::resume_numbered::<SpectrumRecord>(&args.out.join(RECORDS))?;
    let mut done = finished(&args.out.join(RECORDS), done, &cfg.settings, stack.count())?;
    let todo: Vec<usize> = rows.iter().copied().filter(|r| !done.contains_key(r)).collect();
    let group = args.batch.unwrap_or(todo.len()).clamp(1, todo.len().max(1));
    let mut bar = Bar {
        out: Progress::new("{bar:30} {pos}/{len} batched HVPs, ETA {eta}  {msg}", "batched HVPs", args.run.quiet),
        file,
    };
    let groups = todo.len().div_ceil(group);
    bar.out.bar.set_length((groups * (args.steps.min(args.model.n_params()) + args.probes)) as u64);
    let start = std::time::Instant::now();
    let (results, calls) = spectra(net, &images, &stack, &todo, &settings, group, &mut bar)?;
    let seconds = start.elapsed().as_secs_f64();
    bar.out.bar.finish_and_clear();
    done.extend(todo.iter().copied().zip(results));
    let results: Vec<Spectrum> = rows.iter().map(|r| done[r].clone()).collect();
    crate::io::atomic_write(&args.out.join("hessian.csv"), spectra_csv(&rows, &results).as_bytes())?;
    let record = serde_json::json!({
        "model": args.model.id(),
        "activation": act,
        "set": cfg.set,
        "landscape": args.landscape.name(),
        "images": data.len(),
        "top": args.top,
        "lanczos_steps": args.steps.min(args.model.n_params()),
        "probes": args.probes,
        "seed": args.seed,
        "step": args.step,
        "hvp": HVP_METHOD,
        "vectors_per_call": group,
        "batched_hvp_calls_this_run": calls,
        "seconds_this_run": seconds,
        "device": device.provenance(),
        "results": spectra_json(&rows, &results),
    });
    crate::io::atomic_write(&args.out.join("hessian.json"), serde_json::to_string_pretty(&record)?.as_bytes())?;
    if rows.len() > todo.len() {
        outln!("{} vector(s) done earlier (in {})", rows.len() - todo.len(), args.out.join(RECORDS).display())?;
    }
    outln!(
        "{} vector(s) computed, {calls} batched HVP call(s) in {seconds:.2} s on {}; results in {}",
        todo.len(),
        device.summary().name,
        args.out.join("hessian.csv").display()
    )?;
    Ok(())
}
