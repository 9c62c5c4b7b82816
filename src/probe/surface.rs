//! Loss surfaces: the loss (and accuracy) at every point of a 1-D or 2-D grid on a [`Plane`], with as
//! many whole rows as the batch holds (or a row in pieces) evaluated in one batched call. A run is resumable
//! by row and shardable: each finished row is one line of `DIR/rows.jsonl` (or
//! `DIR/rows-shard-I-of-N.jsonl` for shard I of N, so that shards may share one directory), and once
//! every row is present the caller writes `DIR/surface.csv` and `DIR/surface.json` ([`write_data`]) and
//! the figure `DIR/surface.png` (the probe returns data; the CLI and the pipeline draw).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::directions::{DirectionSpec, Mark, Plane};
use super::grid::AxisRange;
use crate::backend::{f32_bytes, Footprint};
use crate::data::{DeviceImages, Split};
use crate::io::jsonl::{read_lines, Appender};
use crate::io::lock::DirLock;
use crate::io::shard::{SetInfo, Shard};
use crate::model::{Arch, Eval, Evaluator, Network, Want};
use crate::ops::Act;

/// Everything that determines a surface's values; the shard is left out so that the shards of one
/// surface can share a directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurfaceConfig {
    pub model: Arch,
    pub activation: Act,
    pub set: SetInfo,
    pub landscape: Split,
    /// Images of the landscape (the first N of the split).
    pub images: usize,
    pub directions: DirectionSpec,
    pub x: AxisRange,
    /// The second axis of a 2-D surface; `None` for a line.
    pub y: Option<AxisRange>,
    /// SHA-256 of the landscape's images, as loaded ([`crate::data::fingerprint`]): a resume on other data
    /// is refused. Absent in directories written before it was recorded (then not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
}

impl SurfaceConfig {
    /// Rows of the grid: the y points of a plane, 1 for a line.
    pub fn rows(&self) -> usize {
        self.y.map_or(1, |y| y.points)
    }
    /// The y value of row `j` (0 on a line).
    pub fn y_value(&self, j: usize) -> f64 {
        self.y.map_or(0.0, |y| y.value(j))
    }
}

/// One finished row of the grid: per x point, the mean loss and accuracy (`None` where not finite, or
/// for the autoencoder's accuracy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowRecord {
    pub j: usize,
    pub losses: Vec<Option<f64>>,
    pub accuracies: Vec<Option<f64>>,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Evaluates points of a plane in batches of a fixed size, reusing one host buffer.
pub struct SurfaceEvaluator {
    eval: Evaluator,
    flat: Vec<f32>,
    n: usize,
}

impl SurfaceEvaluator {
    /// Up to `batch` points of `net` per call, on images `0..images.count`, in image chunks whose cache
    /// aim is sized for `aim` points (a row of the grid: [`crate::model::chunk_capacity_aimed`]), so that
    /// every `batch` computes the same bits.
    ///
    /// Errors: `aim` or `batch` is 0, or the device cannot hold the evaluation.
    pub fn new(net: Network, images: &DeviceImages, (aim, batch): (usize, usize)) -> Result<SurfaceEvaluator> {
        if batch == 0 || aim == 0 {
            bail!("the batch must hold at least one point");
        }
        let chunk = crate::model::chunk_capacity_aimed(net, images.device.chunk_budget(), (aim, batch), images.count);
        let eval = Evaluator::with_chunk(net, images, 0..images.count, batch, Some(chunk))?;
        let n = net.arch.n_params();
        Ok(SurfaceEvaluator { eval, flat: vec![0.0; batch * n], n })
    }

    /// Points per batched call.
    pub fn batch(&self) -> usize {
        self.eval.batch()
    }

    /// Loss and accuracy at every point (x, y) of `points`, in as few batched calls as the batch
    /// allows (slots past the last point keep earlier points and are ignored).
    ///
    /// Errors: the plane belongs to another network, or the device fails.
    pub fn evaluate(&mut self, plane: &Plane, points: &[(f64, f64)]) -> Result<Vec<Eval>> {
        if plane.len() != self.n {
            bail!("the plane's vectors hold {} values, the network {}", plane.len(), self.n);
        }
        let b = self.batch();
        let mut out = Vec::with_capacity(points.len());
        for piece in points.chunks(b) {
            for (&(x, y), w) in piece.iter().zip(self.flat.chunks_mut(self.n)) {
                plane.point(x, y, w);
            }
            self.eval.set_weights(&self.flat)?;
            out.extend(self.eval.evaluate(Want::Loss)?.into_iter().take(piece.len()));
        }
        Ok(out)
    }

    /// Loss and accuracy at (x, y) for every x of `xs`: [`SurfaceEvaluator::evaluate`] on one row.
    ///
    /// Errors: as [`SurfaceEvaluator::evaluate`].
    pub fn row(&mut self, plane: &Plane, xs: &[f64], y: f64) -> Result<Vec<Eval>> {
        let points: Vec<(f64, f64)> = xs.iter().map(|&x| (x, y)).collect();
        self.evaluate(plane, &points)
    }
}

/// Points per call and rows per group for rows of `nx` points and at most `batch` points per call:
/// whole rows when one fits (as many as fit), else a row in balanced pieces (51 points in batches of
/// at most 32 run as 26 + 25).
pub fn batching(nx: usize, batch: usize) -> (usize, usize) {
    let batch = batch.max(1);
    if batch >= nx {
        let rows = batch / nx;
        (rows * nx, rows)
    } else {
        (nx.div_ceil(nx.div_ceil(batch)), 1)
    }
}

/// The rows file of `shard` (`rows.jsonl` for the whole grid).
pub fn rows_file(dir: &Path, shard: Shard) -> PathBuf {
    if shard.count == 1 {
        dir.join("rows.jsonl")
    } else {
        dir.join(format!("rows-shard-{}-of-{}.jsonl", shard.index, shard.count))
    }
}

/// Every finished row in `dir`, from the rows files of all shards (read as they are, never modified:
/// another shard may be appending to its file).
///
/// Errors: the directory cannot be listed, a rows file holds a damaged line, a row lies outside the grid
/// or has the wrong length, or two files hold the same row with different values.
pub fn collect_rows(dir: &Path, cfg: &SurfaceConfig) -> Result<BTreeMap<usize, RowRecord>> {
    let mut rows = BTreeMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("rows") && name.ends_with(".jsonl")
        })
        .collect();
    files.sort();
    for file in files {
        for r in read_lines::<RowRecord>(&file)? {
            if r.j >= cfg.rows() || r.losses.len() != cfg.x.points || r.accuracies.len() != cfg.x.points {
                bail!(
                    "{}: row {} does not fit the {}-row grid of {} points",
                    file.display(),
                    r.j,
                    cfg.rows(),
                    cfg.x.points
                );
            }
            if let Some(prev) = rows.get(&r.j) {
                if prev != &r {
                    bail!("row {} appears twice with different values ({})", r.j, file.display());
                }
            }
            rows.insert(r.j, r);
        }
    }
    Ok(rows)
}

/// Progress callbacks of a surface run.
pub trait SurfaceProgress {
    /// `total` points in this shard, `done` of them already finished.
    fn start(&mut self, total: usize, done: usize);
    /// A row was finished and saved.
    fn row(&mut self, record: &RowRecord);
}

/// A surface to compute.
pub struct SurfaceRun<'a> {
    pub dir: &'a Path,
    pub cfg: &'a SurfaceConfig,
    pub plane: &'a Plane,
    pub images: &'a DeviceImages,
    pub shard: Shard,
    /// At most this many points per batched call (see [`batching`]).
    pub batch: usize,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Rows computed by this run.
    pub rows: usize,
    /// Points per batched call.
    pub batch: usize,
    /// Wall-clock seconds of the evaluations of this run.
    pub seconds: f64,
}

/// Computes the shard's unfinished rows (row j belongs to shard j mod N), saving each as it finishes.
/// Returns what it did and the shard's lock on `dir`: hold it while writing the finished surface
/// (`plot::surface::write_outputs`), so that a later shard's sweep of leftovers never meets those
/// writes in flight.
///
/// When no other shard is writing in `dir`, the temporary files of killed writes are removed first
/// ([`crate::io::lock::hold_all_writers`]), so that a resumed directory holds the files of one that
/// was never interrupted.
///
/// Errors: `dir` holds another configuration; the plane does not fit the network; the device fails;
/// another process holds this shard's lock; a leftover cannot be removed.
pub fn run_surface(run: SurfaceRun, progress: &mut dyn SurfaceProgress) -> Result<(RunSummary, DirLock)> {
    let (dims, rows_dims) = (run.plane.dims(), 1 + run.cfg.y.is_some() as usize);
    if dims != rows_dims {
        bail!("a {rows_dims}-D grid on a {dims}-D plane");
    }
    // shards share the directory, each appending to its own rows file under its own lock
    let (dir, name) = (run.dir, crate::io::lock::shard_lock(run.shard.index, run.shard.count));
    let lock = DirLock::acquire_shared(dir, &name)?;
    if let Some(all) = crate::io::lock::hold_all_writers(dir, &name)? {
        crate::io::remove_partials(dir)?;
        drop(all);
    }
    Ok((compute_rows(run, progress)?, lock))
}

/// [`run_surface`]'s work once it holds the shard's lock.
fn compute_rows(run: SurfaceRun, progress: &mut dyn SurfaceProgress) -> Result<RunSummary> {
    let SurfaceRun { dir, cfg, plane, images, shard, batch } = run;
    crate::io::config::prepare_dir(dir, cfg)?;
    // cuts a line this shard left half-written; the rows are read with the other shards' below
    let (file, _) = Appender::resume::<RowRecord>(&rows_file(dir, shard))?;
    let done = collect_rows(dir, cfg)?;
    let mine: Vec<usize> = (0..cfg.rows()).filter(|j| j % shard.count == shard.index).collect();
    let todo: Vec<usize> = mine.iter().copied().filter(|j| !done.contains_key(j)).collect();
    let nx = cfg.x.points;
    progress.start(mine.len() * nx, (mine.len() - todo.len()) * nx);
    let (batch, group) = batching(nx, batch);
    // fewer points than a full batch: a smaller evaluator
    let batch = batch.min(todo.len() * nx);
    if todo.is_empty() {
        return Ok(RunSummary { rows: 0, batch, seconds: 0.0 });
    }
    let net = Network { arch: cfg.model, act: cfg.activation };
    let mut evaluator = SurfaceEvaluator::new(net, images, (nx, batch))?;
    let xs = cfg.x.values();
    let start = std::time::Instant::now();
    for rows in todo.chunks(group) {
        let points: Vec<(f64, f64)> = rows.iter().flat_map(|&j| xs.iter().map(move |&x| (x, cfg.y_value(j)))).collect();
        let evals = evaluator.evaluate(plane, &points).with_context(|| format!("rows {rows:?}"))?;
        for (&j, evals) in rows.iter().zip(evals.chunks(nx)) {
            let record = RowRecord {
                j,
                losses: evals.iter().map(|e| finite(e.loss)).collect(),
                accuracies: evals.iter().map(|e| e.accuracy.and_then(finite)).collect(),
            };
            file.append(&record)?;
            progress.row(&record);
        }
    }
    Ok(RunSummary { rows: todo.len(), batch, seconds: start.elapsed().as_secs_f64() })
}

/// The memory a surface run takes besides its images and set: the evaluator of as many points as
/// [`run_surface`] puts in one call (`run.batch`, whole rows when they fit, at most the shard's points),
/// its host buffer of their weights (points x N_prm), and the plane's vectors (f64).
///
/// # Errors
/// The network does not plan.
pub fn footprint(run: &SurfaceRun) -> Result<Footprint> {
    let (cfg, n) = (run.cfg, run.plane.len());
    let shard_points = cfg.rows().div_ceil(run.shard.count) * cfg.x.points;
    let points = batching(cfg.x.points, run.batch).0.min(shard_points);
    let net = Network { arch: cfg.model, act: cfg.activation };
    let device = &run.images.device;
    // loss only: on the CPU backend its gradient tensors are never written, so take no memory
    let (aim, budget) = (cfg.x.points, device.chunk_budget());
    let eval = crate::model::evaluator_bytes(net, (aim, points), run.images.count, budget, device.is_cpu())?;
    let plane = f32_bytes(2 * (run.plane.dims() + 1) * n);
    Ok(Footprint::device(eval) + Footprint::host(f32_bytes(points * n) + plane))
}

/// The header line of `surface.csv` ([`Surface::csv`]).
pub const CSV_HEADER: &str = "i,j,x,y,loss,accuracy";

/// A finished grid: `loss[j][i]` and `accuracy[j][i]` at (x_i, y_j).
#[derive(Clone, Debug, PartialEq)]
pub struct Surface {
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    pub loss: Vec<Vec<Option<f64>>>,
    pub accuracy: Vec<Vec<Option<f64>>>,
}

impl Surface {
    /// The grid from its rows, or `None` while rows are missing.
    pub fn assemble(cfg: &SurfaceConfig, rows: &BTreeMap<usize, RowRecord>) -> Option<Surface> {
        if rows.len() != cfg.rows() {
            return None;
        }
        Some(Surface {
            xs: cfg.x.values(),
            ys: (0..cfg.rows()).map(|j| cfg.y_value(j)).collect(),
            loss: rows.values().map(|r| r.losses.clone()).collect(),
            accuracy: rows.values().map(|r| r.accuracies.clone()).collect(),
        })
    }

    /// The CSV text: header `i,j,x,y,loss,accuracy`, one line per point in row order; a non-finite
    /// loss is written `NaN`, a missing accuracy (the autoencoder) as an empty field.
    pub fn csv(&self) -> String {
        let mut s = format!("{CSV_HEADER}\n");
        for (j, &y) in self.ys.iter().enumerate() {
            for (i, &x) in self.xs.iter().enumerate() {
                let loss = self.loss[j][i].map_or("NaN".to_string(), |v| v.to_string());
                let acc = self.accuracy[j][i].map_or(String::new(), |v| v.to_string());
                s.push_str(&format!("{i},{j},{x},{y},{loss},{acc}\n"));
            }
        }
        s
    }

    /// The loss at (x, y) when both are grid values.
    pub fn at(&self, x: f64, y: f64) -> Option<(Option<f64>, Option<f64>)> {
        let i = self.xs.iter().position(|&v| v == x)?;
        let j = self.ys.iter().position(|&v| v == y)?;
        Some((self.loss[j][i], self.accuracy[j][i]))
    }

    /// The lowest finite loss and its (x, y).
    pub fn minimum(&self) -> Option<(f64, f64, f64)> {
        let mut best: Option<(f64, f64, f64)> = None;
        for (j, row) in self.loss.iter().enumerate() {
            for (i, l) in row.iter().enumerate() {
                if let Some(l) = *l {
                    if best.is_none_or(|b| l < b.0) {
                        best = Some((l, self.xs[i], self.ys[j]));
                    }
                }
            }
        }
        best
    }
}

/// Writes `surface.csv` and `surface.json` (the configuration, the marks with their losses where they
/// are grid points, the minimum, the count of non-finite points, and `extra`); the figure is the
/// caller's to draw.
///
/// Errors: a file cannot be written.
pub fn write_data(
    dir: &Path,
    cfg: &SurfaceConfig,
    marks: &[Mark],
    surface: &Surface,
    extra: serde_json::Value,
) -> Result<()> {
    crate::io::atomic_write(&dir.join("surface.csv"), surface.csv().as_bytes())?;
    let marks_json: Vec<_> = marks
        .iter()
        .map(|m| {
            let at = surface.at(m.x, if cfg.y.is_some() { m.y } else { 0.0 });
            serde_json::json!({
                "label": m.label, "x": m.x, "y": m.y,
                "grid_point": at.is_some(),
                "loss": at.and_then(|a| a.0),
                "accuracy": at.and_then(|a| a.1),
            })
        })
        .collect();
    let non_finite = surface.loss.iter().flatten().filter(|l| l.is_none()).count();
    let min = surface.minimum();
    let record = serde_json::json!({
        "config": cfg,
        "columns": ["i", "j", "x", "y", "loss", "accuracy"],
        "points": surface.xs.len() * surface.ys.len(),
        "marks": marks_json,
        "minimum": min.map(|(l, x, y)| serde_json::json!({"loss": l, "x": x, "y": y})),
        "non_finite_points": non_finite,
        "run": extra,
    });
    crate::io::atomic_write(&dir.join("surface.json"), serde_json::to_string_pretty(&record)?.as_bytes())
}
