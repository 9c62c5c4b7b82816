//! One network's part of the report: its Table I and S1 rows, the L2-distance and kernel-PCA figures,
//! the path-height figures and the loss curves — each figure with its CSV and a caption stating what it
//! shows in this run — and the [`Evidence`] the claims table judges.

use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::Path;

mod paths;

use super::claims::Sharpness;
use super::claims::{Evidence, SetPair, Unconverged};
use super::{csv_rows, optimizer_colour, sci, set_label, Report, Tables};
use crate::analysis::stats::median;
use crate::analysis::{centroid_ratio, distances_to_common_origin, kernel_pca, weight_stats};
use crate::io::workdir::{paths_dir, set_file, sharpness_file, summary_file, surface_dir, train_dir, OPTIMIZERS, SETS};
use crate::io::{read_weights, Optimizer, WeightStack};
use crate::model::Arch;
use crate::plot::figures::{curves, histograms, scatter, Series, BLUE, RED};
use crate::train::Summary;

/// The loss-curve figure of each optimizer, in the order of [`OPTIMIZERS`] (the summaries' order).
const CURVE_FIGURES: [(Optimizer, &str); 2] = [(Optimizer::Lbfgs, "Fig. 2"), (Optimizer::Sgd, "Fig. S1")];

/// One landscape's paths, per set (in the order of [`landscape_sets`]): heights, barriers (height
/// minus the mean of the endpoints' losses) and the pairs not known to have converged.
struct SetPaths {
    heights: Vec<Vec<f64>>,
    barriers: Vec<Vec<f64>>,
    unconverged: Vec<Unconverged>,
}

/// What a work directory holds for one network.
pub(super) struct NetworkResults {
    pub(super) arch: Arch,
    /// L-BFGS, SGD.
    summaries: [Option<Summary>; 2],
    /// In the order of [`SETS`].
    sets: [Option<WeightStack>; 4],
}

fn read_summary(path: &Path) -> Result<Option<Summary>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let s = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a training summary; delete it and rerun the train stage", path.display()))?;
    Ok(Some(s))
}

fn read_set(path: &Path, arch: Arch) -> Result<Option<WeightStack>> {
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(read_weights(path, arch)?).filter(|s| s.count() > 0))
}

/// λ_1 and trace per vector of a sharpness file; empty when the probes stage has not written it.
fn read_sharpness(path: &Path) -> Result<Sharpness> {
    if !path.exists() {
        return Ok(Sharpness::default());
    }
    let rows = crate::probe::hessian::read_spectra_csv(path)?;
    Ok(Sharpness { lambda_1: rows.iter().map(|r| r.0).collect(), trace: rows.iter().map(|r| r.1).collect() })
}

fn vectors(set: &WeightStack) -> Vec<&[f32]> {
    (0..set.count()).map(|i| set.vector(i)).collect()
}

impl NetworkResults {
    /// The network's summaries and sets in `dir`; `None` when it has neither.
    pub(super) fn load(dir: &Path, arch: Arch) -> Result<Option<NetworkResults>> {
        let [lbfgs, sgd] = OPTIMIZERS.map(|opt| read_summary(&summary_file(dir, arch, opt)));
        let summaries = [lbfgs?, sgd?];
        let mut sets: [Option<WeightStack>; 4] = Default::default();
        for (slot, (opt, kind)) in sets.iter_mut().zip(SETS) {
            *slot = read_set(&set_file(dir, arch, opt, kind), arch)?;
        }
        let empty = summaries.iter().all(Option::is_none) && sets.iter().all(Option::is_none);
        Ok((!empty).then_some(NetworkResults { arch, summaries, sets }))
    }

    /// Writes the network's tables rows, figures and CSVs; returns the evidence for the claims.
    pub(super) fn sections(&self, rep: &mut Report, dir: &Path, tables: &mut Tables) -> Result<Evidence> {
        let mut e = Evidence::empty(self.arch);
        self.scale(rep, dir);
        self.divergence(rep);
        self.table_rows(tables, &mut e);
        for (slot, (ia, fig_l2, fig_pca)) in
            [(0usize, "Fig. 5", "Fig. 6"), (1, "Fig. S3", "Fig. S4")].into_iter().enumerate()
        {
            if let Some(pair) = self.set_pair(rep, ia, 3, (fig_l2, fig_pca))? {
                e.pairs[slot] = pair;
            }
        }
        for (landscape, fig) in [("train", "Fig. 4"), ("test", "Fig. S2")] {
            let SetPaths { heights, barriers, unconverged } = self.heights(rep, dir, landscape, fig)?;
            if landscape == "train" {
                for (slot, h) in e.heights_train.iter_mut().zip(heights) {
                    *slot = h;
                }
                for (slot, b) in e.barriers_train.iter_mut().zip(barriers) {
                    *slot = b;
                }
                for (slot, u) in e.unconverged_train.iter_mut().zip(unconverged) {
                    *slot = u;
                }
            } else {
                for (slot, h) in e.heights_test.iter_mut().zip(heights) {
                    *slot = h;
                }
                for (slot, u) in e.unconverged_test.iter_mut().zip(unconverged) {
                    *slot = u;
                }
            }
        }
        for landscape in ["train", "test"] {
            let aligned = self.alignment(rep, dir, landscape)?;
            if landscape == "train" {
                e.alignment = aligned;
            }
        }
        for (slot, opt) in e.sharpness.iter_mut().zip(OPTIMIZERS) {
            *slot = read_sharpness(&sharpness_file(dir, self.arch, opt))?;
        }
        self.sharpness_figures(rep, &e.sharpness)?;
        for opt in OPTIMIZERS {
            self.path_surface(rep, dir, opt)?;
        }
        self.loss_curves(rep)?;
        Ok(e)
    }

    /// Table I and S1 rows; per-run snapshot losses and per-vector spreads for the claims.
    fn table_rows(&self, tables: &mut Tables, e: &mut Evidence) {
        let m = |s: &Option<Summary>, f: fn(&Summary) -> f64| s.as_ref().map_or("–".to_string(), |s| sci(f(s)));
        let [lb, sgd] = &self.summaries;
        tables.table1.push(vec![
            self.arch.title().to_string(),
            m(lb, |s| s.mean_train_loss),
            m(sgd, |s| s.mean_train_loss),
            m(lb, |s| s.mean_test_loss),
            m(sgd, |s| s.mean_test_loss),
            self.arch.n_params().to_string(),
        ]);
        for (k, s) in self.summaries.iter().enumerate() {
            let Some(s) = s else { continue };
            let kept = s.kept_runs.iter().filter_map(|&r| s.runs.get(r));
            e.train_losses[k] = kept.clone().filter_map(|r| r.best_train.map(|b| b.1)).collect();
            e.test_losses[k] = kept.filter_map(|r| r.best_test.map(|b| b.1)).collect();
        }
        for (i, (&(opt, kind), set)) in SETS.iter().zip(&self.sets).enumerate() {
            let Some(set) = set else { continue };
            let v = vectors(set);
            let (mu, sigma) = weight_stats(&v);
            tables.table_s1.push(vec![
                self.arch.title().into(),
                set_label(opt, kind),
                set.count().to_string(),
                sci(mu),
                format!("{sigma:.5}"),
            ]);
            e.vector_sigma[i] = v.iter().map(|x| weight_stats(&[x]).1).collect();
        }
    }

    /// Fig. 5 / S3 (L2 distances to the common origin) and Fig. 6 / S4 (kernel PCA) for the L-BFGS set
    /// `ia` against the SGD set `ib`.
    fn set_pair(&self, rep: &mut Report, ia: usize, ib: usize, figs: (&str, &str)) -> Result<Option<SetPair>> {
        let (Some(a), Some(b)) = (&self.sets[ia], &self.sets[ib]) else { return Ok(None) };
        let (title, id) = (self.arch.title(), self.arch.id());
        let (va, vb) = (vectors(a), vectors(b));
        let (la, lb) = (set_label(SETS[ia].0, SETS[ia].1), set_label(SETS[ib].0, SETS[ib].1));
        let stem = format!("{}-{}", la.to_lowercase(), lb.to_lowercase());
        let d = distances_to_common_origin(&va, &vb);
        let ratio = centroid_ratio(&va, &vb);
        let file = format!("{id}-l2-{stem}.png");
        histograms(
            &rep.out.join(&file),
            &format!("{title}: L2 distance to the common origin ({la} vs {lb})"),
            "L2 distance to the common origin",
            &[
                Series { label: la.clone(), values: &d.a, colour: optimizer_colour(SETS[ia].0) },
                Series { label: lb.clone(), values: &d.b, colour: optimizer_colour(SETS[ib].0) },
            ],
            Some((d.centroid, "centroid distance / 2")),
        )?;
        let rows = d.a.iter().enumerate().map(|(i, v)| format!("{la},{i},{v}"));
        let rows = rows.chain(d.b.iter().enumerate().map(|(i, v)| format!("{lb},{i},{v}")));
        rep.write(
            &file.replace(".png", ".csv"),
            &csv_rows("set,index,distance", rows.chain([format!("centroid,,{}", d.centroid)])),
        )?;
        rep.figure(
            &file,
            &format!(
                "{} ({title}): distances of {la} and {lb} vectors to the midpoint of their centroids — median {} vs {}; dotted: each centroid's distance to it ({}), the centroid distance being {:.2} times the within-set spread.",
                figs.0,
                sci(median(&d.a)),
                sci(median(&d.b)),
                sci(d.centroid),
                ratio
            ),
        );
        let mut points = va.clone();
        points.extend(&vb);
        let pca = kernel_pca(&points, self.arch.n_params() as f64, 2);
        let pts: Vec<(f64, f64)> = pca.projections.iter().map(|p| (p[0], p.get(1).copied().unwrap_or(0.0))).collect();
        let pfile = format!("{id}-kpca-{stem}.png");
        scatter(
            &rep.out.join(&pfile),
            &format!("{title}: RBF kernel PCA ({la} vs {lb})"),
            ("PC1", "PC2"),
            &[
                (la.clone(), pts[..va.len()].to_vec(), optimizer_colour(SETS[ia].0)),
                (lb.clone(), pts[va.len()..].to_vec(), optimizer_colour(SETS[ib].0)),
            ],
        )?;
        let rows = pts.iter().enumerate().map(|(i, p)| {
            let (set, j) = if i < va.len() { (&la, i) } else { (&lb, i - va.len()) };
            format!("{set},{j},{},{}", p.0, p.1)
        });
        rep.write(&pfile.replace(".png", ".csv"), &csv_rows("set,index,pc1,pc2", rows))?;
        let pc1: [Vec<f64>; 2] =
            [pts[..va.len()].iter().map(|p| p.0).collect(), pts[va.len()..].iter().map(|p| p.0).collect()];
        let auc = crate::analysis::stats::roc_auc(&pc1[0], &pc1[1]).map_or(f64::NAN, |a| a.max(1.0 - a));
        rep.figure(
            &pfile,
            &format!(
                "{} ({title}): RBF kernel PCA (2σ² = N_prm = {}), eigenvalues {:.4}, {:.4}; PC1 separates {la} from {lb} with ROC AUC {auc:.3}.",
                figs.1,
                self.arch.n_params(),
                pca.eigenvalues[0],
                pca.eigenvalues.get(1).copied().unwrap_or(0.0)
            ),
        );
        Ok(Some(SetPair { distances: [d.a, d.b], centroid_ratio: Some(ratio), pc1 }))
    }

    /// The network's scale beside the paper's: training images per parameter (the images from the
    /// training stage's configuration, else from the training landscape's path sweep; nothing when
    /// neither is there).
    fn scale(&self, rep: &mut Report, dir: &Path) {
        let from = |d: std::path::PathBuf, key: &str| -> Option<usize> {
            let v: serde_json::Value = crate::io::config::read_config(&d).ok()?;
            v.get(key)?.as_u64().map(|n| n as usize)
        };
        let images = OPTIMIZERS
            .iter()
            .find_map(|&opt| from(train_dir(dir, self.arch, opt), "train_images"))
            .or_else(|| from(paths_dir(dir, self.arch, "train"), "images"));
        let Some(images) = images else { return };
        rep.html.push_str(&super::scale::images_per_parameter(self.arch, images));
    }

    /// A warning paragraph for each set whose kept runs include diverged ones
    /// ([`crate::train::diverged`]): their snapshots are no better than their starts, whatever the
    /// claims say of them.
    fn divergence(&self, rep: &mut Report) {
        for (s, opt) in self.summaries.iter().zip(OPTIMIZERS) {
            let Some(s) = s else { continue };
            let bad: Vec<String> = s
                .kept_runs
                .iter()
                .filter(|&&r| s.runs.get(r).is_some_and(crate::train::diverged))
                .map(|r| r.to_string())
                .collect();
            if bad.is_empty() {
                continue;
            }
            let _ = writeln!(
                rep.html,
                "<p class=\"warning\"><b>Warning:</b> {} of the {} kept {} runs diverged ({} {}): the lowest \
                 training loss of each is above the loss it started from, so training found no lower point, and \
                 the comparisons that use this set say nothing about the minima the optimizer finds. Train it \
                 again with a smaller learning rate.</p>",
                bad.len(),
                s.kept_runs.len(),
                opt.title(),
                if bad.len() == 1 { "run" } else { "runs" },
                bad.join(", ")
            );
        }
    }

    /// Histograms of the Hessian's top eigenvalue and trace at the train snapshots, SGD against L-BFGS.
    fn sharpness_figures(&self, rep: &mut Report, sharp: &[Sharpness; 2]) -> Result<()> {
        if sharp.iter().all(|s| s.lambda_1.is_empty()) {
            return Ok(());
        }
        let (title, id) = (self.arch.title(), self.arch.id());
        let rows = OPTIMIZERS.into_iter().zip(sharp).flat_map(|(opt, s)| {
            s.lambda_1
                .iter()
                .zip(&s.trace)
                .enumerate()
                .map(move |(i, (l, t))| format!("{},{i},{l},{t}", set_label(opt, "train")))
        });
        rep.write(&format!("{id}-sharpness.csv"), &csv_rows("set,vector,lambda_1,trace", rows))?;
        for (what, name, pick) in [
            (
                "lambda1",
                "top Hessian eigenvalue λ_1",
                (|s: &Sharpness| s.lambda_1.clone()) as fn(&Sharpness) -> Vec<f64>,
            ),
            ("trace", "Hessian trace", |s: &Sharpness| s.trace.clone()),
        ] {
            let values: Vec<Vec<f64>> = sharp.iter().map(pick).collect();
            // they span orders of magnitude: a log axis when every value is positive
            let log = values.iter().flatten().all(|&x| x > 0.0);
            let axis = if log { format!("log10 {name}") } else { name.to_string() };
            let scaled: Vec<Vec<f64>> =
                values.iter().map(|v| v.iter().map(|&x| if log { x.log10() } else { x }).collect()).collect();
            let series: Vec<Series> = OPTIMIZERS
                .into_iter()
                .zip(&scaled)
                .filter(|(_, v)| !v.is_empty())
                .map(|(opt, v)| Series { label: set_label(opt, "train"), values: v, colour: optimizer_colour(opt) })
                .collect();
            let file = format!("{id}-sharpness-{what}.png");
            histograms(&rep.out.join(&file), &format!("{title}: {name} at the train snapshots"), &axis, &series, None)?;
            let medians: Vec<String> = OPTIMIZERS
                .into_iter()
                .zip(&values)
                .filter(|(_, v)| !v.is_empty())
                .map(|(opt, v)| format!("{} {}", set_label(opt, "train"), sci(median(v))))
                .collect();
            rep.figure(
                &file,
                &format!(
                    "Sharpness ({title}, beyond the paper): the {name} of the training loss at each train snapshot (Lanczos and Hutchinson on Hessian-vector products, docs/probes.md); medians {}. The Hessian of a cross-entropy loss vanishes as the loss goes to 0 (the softmax saturates), so minima at a far lower training loss read as flatter whatever their shape; the measure is not invariant to rescaling the weights either (Dinh et al. 2017).",
                    medians.join(", ")
                ),
            );
        }
        Ok(())
    }

    /// The 2-D surface through the endpoints and midpoint of the representative path of optimizer
    /// `opt`'s train snapshots, copied from the probes stage's directory with a caption from its record.
    fn path_surface(&self, rep: &mut Report, dir: &Path, opt: Optimizer) -> Result<()> {
        let src = surface_dir(dir, self.arch, opt);
        if !src.join("surface.json").exists() {
            return Ok(());
        }
        let text = std::fs::read_to_string(src.join("surface.json"))
            .with_context(|| format!("{}: cannot read", src.join("surface.json").display()))?;
        let record: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a surface record; delete the directory and rerun", src.display()))?;
        let stem = format!("{}-surface-{opt}", self.arch.id());
        for ext in ["png", "csv"] {
            let from = src.join(format!("surface.{ext}"));
            let bytes = std::fs::read(&from).with_context(|| format!("{}: cannot read", from.display()))?;
            if ext == "csv" {
                check_surface_rows(&from, &bytes, &record)?;
            }
            crate::io::atomic_write(&rep.out.join(format!("{stem}.{ext}")), &bytes)?;
        }
        let path = &record["run"]["path"];
        let marks = record["marks"].as_array().cloned().unwrap_or_default();
        let f = |v: &serde_json::Value| v.as_f64().map_or("–".to_string(), sci);
        let distance = marks.get(1).map_or("–".to_string(), |m| f(&m["x"]));
        rep.figure(
            &format!("{stem}.png"),
            &format!(
                "Loss surface ({}, beyond the paper): the training loss on the plane through the endpoints {} of the median-height {} path (height {}) and its midpoint w(1/2), in orthonormal coordinates (Garipov et al. 2018); the endpoints are {distance} apart; lowest loss on the grid {}.",
                self.arch.title(),
                path["pair"],
                set_label(opt, "train"),
                f(&path["height"]),
                f(&record["minimum"]["loss"])
            ),
        );
        Ok(())
    }

    /// Fig. 2 / S1: training and test loss of the best kept run of each optimizer.
    fn loss_curves(&self, rep: &mut Report) -> Result<()> {
        for (s, (opt, fig)) in self.summaries.iter().zip(CURVE_FIGURES) {
            let Some(s) = s else { continue };
            let Some(&best) = s.kept_runs.first() else { continue };
            let Some(run) = s.runs.get(best) else { continue };
            let file = format!("{}-curves-{opt}.png", self.arch.id());
            let (unit, name) = (opt.unit(), opt.title());
            curves(
                &rep.out.join(&file),
                &format!("{}: {name} run {best} (lowest training loss)", self.arch.title()),
                unit,
                &[
                    Series { label: "training loss".into(), values: &run.train, colour: BLUE },
                    Series { label: "test loss".into(), values: &run.test, colour: RED },
                ],
            )?;
            let at =
                |b: Option<(usize, f64)>| b.map_or("–".to_string(), |(k, l)| format!("{} at {unit} {k}", sci(l)));
            rep.figure(
                &file,
                &format!(
                    "{fig} ({}): training and test loss per {unit} of the {name} run with the lowest training loss; lowest training loss {}, lowest test loss {} (the test snapshot).",
                    self.arch.title(),
                    at(run.best_train),
                    at(run.best_test)
                ),
            );
        }
        Ok(())
    }
}

/// Refuses a probes stage's `surface.csv` (`bytes`, read from `path`) that does not hold one line per
/// point of its `surface.json` `record` under its header: a file cut short or damaged since, which the
/// report would otherwise copy as the surface's numbers.
fn check_surface_rows(path: &Path, bytes: &[u8], record: &serde_json::Value) -> Result<()> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let rows = lines.filter(|l| l.split(',').count() == 6).count();
    let points = record["points"].as_u64();
    if header == crate::probe::surface::CSV_HEADER && points == Some(rows as u64) && text.ends_with('\n') {
        return Ok(());
    }
    bail!(
        "{}: holds {rows} whole rows, but its surface.json records {} points: the file was cut short or changed; \
         delete it (and the report's index.html) and run `losscape reproduce` on the directory again, which \
         writes it anew from rows.jsonl beside it",
        path.display(),
        points.map_or("no count of".to_string(), |p| p.to_string())
    )
}
