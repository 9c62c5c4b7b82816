use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use super::progress::Progress;
use super::ranges::{at_least, count, not_applicable, usage};
use super::RunArgs;
use crate::data::{DeviceImages, Split};
use crate::io::read_weights;
use crate::io::shard::{SetInfo, Shard};
use crate::model::Arch;
use crate::plot::surface::write_outputs;
use crate::probe::directions::{Biases, DirectionSpec, Plane};
use crate::probe::grid::AxisRange;
use crate::probe::surface::{
    collect_rows, footprint, run_surface, RowRecord, Surface, SurfaceConfig, SurfaceProgress, SurfaceRun,
};

/// Loss (and accuracy) on a line or plane in weight space, whole rows of the grid per batched evaluation.
#[derive(Args)]
#[command(
    after_help = "Example:\n  losscape surface --model fcp --set fcp-sgd.safetensors --through 0,1,2 --range -0.5:1.5:41 --out surf\n  \
losscape surface --model lenet --set lenet.npy --random 2 --vector 0 --seed 1 --range -1:1:51 --landscape test --out s\n\n\
Output: DIR/surface.csv (columns i,j,x,y,loss,accuracy; a line has j = 0, y = 0; accuracy is empty for the\n\
autoencoder), DIR/surface.png, DIR/surface.json, DIR/config.json and DIR/rows*.jsonl (finished rows).\n\
Re-running the same command skips finished rows; shards may share one DIR."
)]
pub struct SurfaceArgs {
    /// Network: fcp, lenet, lstm, autoencoder, a compact MLP (mlp:784-64-10:tanh) or a description
    /// file (.toml; docs/networks.md §7).
    #[arg(long, value_parser = crate::cli::model_arg)]
    model: Arch,
    /// The solution set (stack of vectors, .safetensors or .npy; `--weights`, as `eval` names it, is
    /// the same).
    #[arg(long, visible_alias = "weights")]
    set: PathBuf,
    /// The line w = a + x(b - a) or plane w = a + x(b - a) + y(c - a) through vectors A,B[,C] of the set
    /// (0-based), which sit at (0,0), (1,0) and (0,1).
    #[arg(long, value_delimiter = ',', value_name = "A,B[,C]", conflicts_with = "random")]
    through: Option<Vec<usize>>,
    /// With --through: Gram-Schmidt axes of the same line or plane (Garipov et al. 2018), in units of
    /// Euclidean distance from A.
    #[arg(long, requires = "through")]
    orthonormal: bool,
    /// K (1 or 2) filter-normalised random directions (Li et al. 2018) around --vector.
    #[arg(long, value_name = "K", value_parser = count(1, 2))]
    random: Option<usize>,
    /// With --random: the vector of the set at the origin (0-based) [default: 0].
    #[arg(long)]
    vector: Option<usize>,
    /// With --random: seed of the directions [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// With --random: what the directions do on biases: copy the solution's biases (Li et al.'s
    /// default) or ignore them (0) [default: copy].
    #[arg(long, value_enum)]
    biases: Option<Biases>,
    /// Grid axis lo:hi:n (n points from lo to hi); give it once for every axis or once per axis (x, then
    /// y).
    #[arg(long = "range", value_name = "LO:HI:N", allow_hyphen_values = true, default_value = "-1:1:51")]
    ranges: Vec<AxisRange>,
    /// The loss landscape: the training or the test split.
    #[arg(long, value_enum, default_value_t = Split::Train)]
    landscape: Split,
    /// Use the first N training images as the training landscape.
    #[arg(long, value_name = "N", value_parser = at_least(1))]
    train_size: Option<usize>,
    /// At most N points per batched evaluation: as many whole rows as fit, or a row in pieces. Default:
    /// 256 on a GPU; on the CPU backend, which gains nothing from large batches, one row (at most 64).
    #[arg(long, value_name = "N", value_parser = count(1, 100_000))]
    batch: Option<usize>,
    /// Compute only this shard of the rows: i/n takes the rows j with j modulo n = i.
    #[arg(long, default_value = "0/1")]
    shard: Shard,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    run: RunArgs,
}

struct Bar {
    out: Progress,
    points: usize,
}

impl SurfaceProgress for Bar {
    fn start(&mut self, total: usize, done: usize) {
        self.out.start(total, done);
    }
    fn row(&mut self, r: &RowRecord) {
        self.out.advance(self.points as u64);
        let min = r.losses.iter().flatten().fold(f64::INFINITY, |a, &b| a.min(b));
        self.out.bar.set_message(format!("row {} done, lowest loss {min:.4e}", r.j));
    }
}

/// The directions the options ask for, checked against the set's size.
fn directions(args: &SurfaceArgs, count: usize) -> Result<DirectionSpec> {
    let check = |i: usize, option: &str| {
        if i >= count {
            return Err(super::no_vector(("surface", option), i, &args.set, count));
        }
        Ok(())
    };
    match (&args.through, args.random) {
        (Some(v), None) => {
            let random_only = "applies to --random (the directions through vectors have no origin, seed or bias rule)";
            let given = [("--vector", args.vector.is_some()), ("--seed", args.seed.is_some())];
            for (option, given) in given.into_iter().chain([("--biases", args.biases.is_some())]) {
                not_applicable("surface", option, given, random_only)?;
            }
            if !(2..=3).contains(&v.len()) {
                return Err(usage(
                    "surface",
                    format!("--through takes 2 vectors (a line) or 3 (a plane), got {}", v.len()),
                ));
            }
            for &i in v {
                check(i, "--through")?;
            }
            if (1..v.len()).any(|k| v[..k].contains(&v[k])) {
                return Err(usage("surface", format!("--through names a vector twice: {v:?}")));
            }
            let vectors = v.clone();
            Ok(if args.orthonormal {
                DirectionSpec::Orthonormal { vectors }
            } else {
                DirectionSpec::Through { vectors }
            })
        }
        (None, Some(k)) => {
            not_applicable("surface", "--orthonormal", args.orthonormal, "applies to --through")?;
            let vector = args.vector.unwrap_or(0);
            check(vector, "--vector")?;
            let (seed, biases) = (args.seed.unwrap_or(0), args.biases.unwrap_or_default());
            Ok(DirectionSpec::Random { vector, count: k, seed, biases })
        }
        _ => Err(usage("surface", "say how to span the surface: --through A,B[,C] or --random K")),
    }
}

pub fn run(args: SurfaceArgs) -> Result<()> {
    // usage mistakes before any file is read (the vector indices are checked against the set below)
    directions(&args, usize::MAX)?;
    let activation = args.run.act("surface", args.model)?;
    let stack = read_weights(&args.set, args.model)?;
    super::note_activation(&stack, &args.set, activation);
    let spec = directions(&args, stack.count())?;
    let label = |i: usize| format!("#{i}");
    let plane = match &spec {
        DirectionSpec::Through { vectors } | DirectionSpec::Orthonormal { vectors } => {
            let vs: Vec<&[f32]> = vectors.iter().map(|&i| stack.vector(i)).collect();
            let labels: Vec<String> = vectors.iter().map(|&i| label(i)).collect();
            if args.orthonormal {
                Plane::orthonormal(&vs, &labels)?
            } else {
                Plane::through(&vs, &labels)?
            }
        }
        DirectionSpec::Random { vector, count, seed, biases } => {
            Plane::random(&args.model.params(), stack.vector(*vector), *count, *seed, *biases, &label(*vector))?
        }
    };
    let dims = plane.dims();
    if args.ranges.len() > dims {
        return Err(usage("surface", format!("--range given {} times for a {dims}-D surface", args.ranges.len())));
    }
    let x = args.ranges[0];
    let y = (dims == 2).then(|| *args.ranges.get(1).unwrap_or(&x));
    let data = args.run.data.landscape("surface", args.model, args.landscape, args.train_size)?;
    let cfg = SurfaceConfig {
        model: args.model,
        activation,
        set: SetInfo::of(&args.set, &stack, &args.out)?,
        landscape: args.landscape,
        images: data.len(),
        directions: spec,
        x,
        y,
        data_sha256: Some(data.sha256()),
    };
    let device = args.run.device.open()?;
    let images = DeviceImages::upload(&device, &data)?;
    let mut progress = Bar {
        out: Progress::new("{bar:30} {pos}/{len} points, ETA {eta}  {msg}", "points", args.run.quiet),
        points: x.points,
    };
    let batch = args.batch.unwrap_or(if device.is_cpu() { x.points.min(64) } else { 256 });
    let run = SurfaceRun { dir: &args.out, cfg: &cfg, plane: &plane, images: &images, shard: args.shard, batch };
    let need = DeviceImages::footprint(&device, &data) + stack.footprint() + footprint(&run)?;
    let sized_by = format!("--batch {batch} (points per call, {} parameters each)", args.model.n_params());
    super::memory::check("surface", &args.run, &device, need, &sized_by, "give a smaller --batch")?;
    // the shard's lock, held until the outputs are written
    let (summary, _lock) = run_surface(run, &mut progress)?;
    progress.out.bar.finish_and_clear();
    // the directory's own record of the set from here on: a resume that names it by another path (or
    // from a moved directory) writes the same surface.json
    let cfg: SurfaceConfig = crate::io::config::read_config(&args.out)?;
    let rows = collect_rows(&args.out, &cfg)?;
    let points = summary.rows * x.points;
    // printed once the outputs are written (a closed stdout then loses nothing)
    let computed = (summary.rows > 0).then(|| {
        format!(
            "{} row(s), {points} points in {:.2} s ({:.1} points/s, {} per batched call) on {}",
            summary.rows,
            summary.seconds,
            points as f64 / summary.seconds.max(1e-9),
            summary.batch,
            device.summary().name
        )
    });
    match Surface::assemble(&cfg, &rows) {
        Some(surface) => {
            let extra = serde_json::json!({
                "rows_computed": summary.rows,
                "points_computed": points,
                "seconds": summary.seconds,
                "batch": summary.batch,
                "device": device.summary().name,
            });
            write_outputs(&args.out, &cfg, &plane.marks, &surface, extra)?;
            if let Some(line) = &computed {
                outln!("{line}")?;
            }
            if let Some((l, x, y)) = surface.minimum() {
                outln!("lowest loss {l:.6e} at x = {}, y = {}", short(x), short(y))?;
            }
            outln!("results in {}", args.out.join("surface.csv").display())?;
        }
        None => {
            if let Some(line) = &computed {
                outln!("{line}")?;
            }
            outln!(
                "{} of {} rows done; run the other shards (or this command without --shard) to finish",
                rows.len(),
                cfg.rows()
            )?;
        }
    }
    Ok(())
}

/// A grid coordinate for people: the shortest decimal of its nearest f32 (the grid's
/// 0.30000000000000004 prints as 0.3; surface.csv keeps every digit).
fn short(v: f64) -> String {
    format!("{}", v as f32)
}
