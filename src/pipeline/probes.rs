//! The probes stage of `reproduce` (beyond the paper, `docs/probes.md`): for each network, the Hessian
//! sharpness of every train snapshot (the minima) of each optimizer, and the 2-D loss surface through
//! the two endpoints and the midpoint of a representative path of each optimizer's train snapshots.
//! Both resume: a finished spectrum file or surface is skipped, a surface resumes by row.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

use crate::backend::Device;
use crate::data::{DeviceImages, Split};
use crate::io::shard::{SetInfo, Shard};
use crate::io::workdir::{landscape_sets, paths_dir, set_file, sharpness_file, surface_dir, OPTIMIZERS};
use crate::io::Optimizer;
use crate::io::{read_weights, write_weights, WeightStack};
use crate::model::{Arch, Network};
use crate::path::sweep::{replay_pair, PairRecord, SweepOptions};
use crate::path::PathSettings;
use crate::plot::surface::write_outputs;
use crate::probe::directions::{DirectionSpec, Plane};
use crate::probe::grid::AxisRange;
use crate::probe::hessian::{spectra, spectra_csv, spectra_json, SpectraProgress, Spectrum, SpectrumSettings};
use crate::probe::surface::{collect_rows, run_surface, Surface, SurfaceConfig, SurfaceProgress, SurfaceRun};

/// What the probes stage measures, per preset.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeSettings {
    /// The Hessian spectra of the train snapshots (the top eigenvalue and the trace, on the training
    /// landscape).
    pub spectrum: SpectrumSettings,
    /// The spectra use the first N of the preset's training images (None: all of them).
    pub spectrum_images: Option<usize>,
    /// Grid points per axis of the surface through a representative path (on the training landscape).
    pub grid: usize,
}

/// The sets probed: the train snapshots (the minima each optimizer found).
const KIND: &str = "train";

/// What the stage needs from `reproduce`.
pub(super) struct ProbeInputs<'a> {
    pub dir: &'a Path,
    pub arch: Arch,
    pub net: Network,
    pub settings: &'a ProbeSettings,
    pub path: PathSettings,
    pub options: SweepOptions,
    pub train_images: &'a DeviceImages,
    /// The images of the spectra: the first `settings.spectrum_images` of the training images.
    pub spectrum_images: &'a DeviceImages,
    pub device: &'a Device,
}

struct Silent;

impl SpectraProgress for Silent {
    fn phase(&mut self, _: &str, _: &[usize]) {}
    fn calls(&mut self, _: usize) {}
    fn group(&mut self, _: &[usize], _: &[Spectrum]) -> Result<()> {
        Ok(())
    }
}

impl SurfaceProgress for Silent {
    fn start(&mut self, _: usize, _: usize) {}
    fn row(&mut self, _: &crate::probe::surface::RowRecord) {}
}

/// The top eigenvalue and trace of every train snapshot of optimizer `opt`, written as
/// [`sharpness_file`] (CSV as `losscape hessian` writes it) and a JSON record beside it. Returns
/// false when it was there already.
pub(super) fn sharpness(p: &ProbeInputs, opt: Optimizer) -> Result<bool> {
    let out = sharpness_file(p.dir, p.arch, opt);
    if out.exists() {
        return Ok(false);
    }
    let file = set_file(p.dir, p.arch, opt, KIND);
    let stack = read_weights(&file, p.arch)?;
    let rows: Vec<usize> = (0..stack.count()).collect();
    let images = p.spectrum_images;
    // on the CPU backend one vector per call is fastest (docs/probes.md); the results are the same
    let batch = if p.device.is_cpu() { 1 } else { rows.len() };
    let (results, calls) = spectra(p.net, images, &stack, &rows, &p.settings.spectrum, batch, &mut Silent)?;
    crate::io::atomic_write(&out.with_extension("json"), &record(p, &file, &stack, images, (&rows, &results), calls)?)?;
    crate::io::atomic_write(&out, spectra_csv(&rows, &results).as_bytes())?;
    Ok(true)
}

fn record(
    p: &ProbeInputs,
    file: &Path,
    stack: &WeightStack,
    images: &DeviceImages,
    (rows, results): (&[usize], &[Spectrum]),
    calls: usize,
) -> Result<Vec<u8>> {
    let s = &p.settings.spectrum;
    let json = serde_json::json!({
        "model": p.arch.id(),
        // relative to the work directory, as every record of a run: a moved run writes the same bytes
        "set": SetInfo::of(file, stack, p.dir)?,
        "landscape": "train",
        "images": images.count,
        "top": s.top,
        "lanczos_steps": s.steps.min(p.arch.n_params()),
        "probes": s.probes,
        "seed": s.seed,
        "step": s.step,
        "hvp": crate::probe::hessian::HVP_METHOD,
        "batched_hvp_calls": calls,
        "device": p.device.provenance(),
        "results": spectra_json(rows, results),
    });
    Ok(serde_json::to_string_pretty(&json)?.into_bytes())
}

/// The pair of the set whose height is the median of the set's heights (the lower median; ties by
/// pair index), so that the surface shows a typical path.
pub fn representative(records: &[PairRecord], set: usize) -> Option<&PairRecord> {
    let mut mine: Vec<&PairRecord> = records.iter().filter(|r| r.set == set).collect();
    mine.sort_by(|x, y| x.outcome.height.total_cmp(&y.outcome.height).then(x.index.cmp(&y.index)));
    mine.get(mine.len().saturating_sub(1) / 2).copied()
}

/// The axis ranges of the surface in Garipov et al.'s orthonormal coordinates: with d = |b − a| and the
/// midpoint at (mx, my), x from −d/4 to 5d/4 and y symmetric about 0, wide enough for the midpoint and
/// at least ±d/2, so that the three points sit inside a picture that is not stretched far.
pub fn surface_axes(d: f64, (mx, my): (f64, f64), points: usize) -> Result<(AxisRange, AxisRange)> {
    let x_lo = (-0.25 * d).min(mx - 0.25 * d);
    let x_hi = (1.25 * d).max(mx + 0.25 * d);
    let y = (0.5 * d).max(1.25 * my.abs());
    let axis = |lo, hi| AxisRange::new(lo, hi, points).map_err(anyhow::Error::msg);
    Ok((axis(x_lo, x_hi)?, axis(-y, y)?))
}

/// The 2-D loss surface (training landscape) through the endpoints and the midpoint w(1/2) of the
/// representative path of optimizer `opt`'s train snapshots, in [`surface_dir`]: the path is found
/// again ([`replay_pair`]), the three vectors saved as `plane.safetensors`, and the surface written as
/// `losscape surface --through 0,1,2 --orthonormal` writes it. Returns false when it was there already
/// or when the set has no path.
///
/// Errors: the replayed path's height differs from the sweep's (the sets or settings changed since the
/// sweep); device and file errors.
pub(super) fn path_surface(p: &ProbeInputs, opt: Optimizer) -> Result<bool> {
    let out = surface_dir(p.dir, p.arch, opt);
    if out.join("surface.csv").exists() {
        return Ok(false);
    }
    let records = crate::report::landscape_records(p.dir, p.arch, "train", false)?;
    let Some(set) = landscape_sets("train").iter().position(|&s| s == (opt, KIND)) else { return Ok(false) };
    let Some(rec) = representative(&records, set) else { return Ok(false) };
    let stack = read_weights(&set_file(p.dir, p.arch, opt, KIND), p.arch)?;
    let replayed = replay_pair(p.net, p.train_images, p.path, p.options, &stack, rec.pair)?;
    let (h, h0) = (replayed.outcome.height, rec.outcome.height);
    if (h - h0).abs() > 1e-4 * h0.abs().max(1.0) {
        bail!(
            "{}: pair {:?} found again has height {h:.6e}, the sweep recorded {h0:.6e}; the sets or the path \
             settings changed since the sweep: delete {} and rerun the paths stage",
            out.display(),
            rec.pair,
            paths_dir(p.dir, p.arch, "train").display()
        );
    }
    let n = p.arch.n_params();
    let m = replayed.points.len() / n;
    let mid = replayed.points[(m / 2) * n..(m / 2 + 1) * n].to_vec();
    let mut flat = replayed.a.clone();
    flat.extend(&replayed.b);
    flat.extend(&mid);
    let mut plane_stack = WeightStack::new(p.arch, flat);
    plane_stack
        .metadata
        .insert("losscape.plane".into(), format!("endpoints {:?} of {opt}-{KIND} and the path's midpoint", rec.pair));
    let plane_file = out.join("plane.safetensors");
    write_weights(&plane_file, &plane_stack)?;
    let labels = [format!("#{}", rec.pair.0), format!("#{}", rec.pair.1), "w(1/2)".to_string()];
    let vs: Vec<&[f32]> = (0..3).map(|i| plane_stack.vector(i)).collect();
    let plane = Plane::orthonormal(&vs, &labels)?;
    let (x, y) = surface_axes(plane.marks[1].x, (plane.marks[2].x, plane.marks[2].y), p.settings.grid)?;
    let cfg = SurfaceConfig {
        model: p.arch,
        activation: p.net.act,
        set: SetInfo::of(&plane_file, &plane_stack, p.dir)?,
        landscape: Split::Train,
        images: p.train_images.count,
        directions: DirectionSpec::Orthonormal { vectors: vec![0, 1, 2] },
        x,
        y: Some(y),
        data_sha256: None, // the directory's ReproduceConfig records the data
    };
    let batch = if p.device.is_cpu() { x.points.min(64) } else { 256 };
    let run = SurfaceRun {
        dir: &out,
        cfg: &cfg,
        plane: &plane,
        images: p.train_images,
        shard: Shard { index: 0, count: 1 },
        batch,
    };
    // the lock, held until the outputs are written
    let (_, _lock) = run_surface(run, &mut Silent)?;
    let rows = collect_rows(&out, &cfg)?;
    let Some(surface) = Surface::assemble(&cfg, &rows) else { bail!("{}: rows missing after the run", out.display()) };
    let extra = serde_json::json!({
        "path": {"set": rec.set_file, "pair": rec.pair, "index": rec.index, "height": h0, "representative": "median height of the set"},
        "device": p.device.provenance(),
    });
    write_outputs(&out, &cfg, &plane.marks, &surface, extra)?;
    Ok(true)
}

/// Both probes for both optimizers of one network; returns what was computed and how long it took,
/// for the progress line (the files hold no timings, so that the same inputs write the same bytes).
pub(super) fn probe_network(p: &ProbeInputs) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for opt in OPTIMIZERS {
        for (what, probe) in
            [("sharpness", sharpness as fn(&ProbeInputs, Optimizer) -> Result<bool>), ("path surface", path_surface)]
        {
            let start = Instant::now();
            if probe(p, opt)? {
                done.push(format!("{opt} {what} {:.1} s", start.elapsed().as_secs_f64()));
            }
        }
    }
    Ok(done)
}
