//! A network's path sections of the report: the heights on each landscape (Fig. 4 / S2), the paths'
//! convergence, and the aligned paths' barriers.

use anyhow::{bail, Result};
use std::path::Path;

use super::{NetworkResults, SetPaths};
use crate::analysis::spread;
use crate::analysis::stats::median;
use crate::io::workdir::{landscape_sets, paths_dir};
use crate::path::alignment::{summarise_alignment, BarrierGap};
use crate::path::sweep::PairRecord;
use crate::plot::figures::{bands, histograms, Band, Series, XAxis};
use crate::report::claims::{AlignmentEvidence, Unconverged};
use crate::report::{csv_rows, landscape_records, sci, set_colour, set_label, Report};

impl NetworkResults {
    /// Fig. 4 / S2: path heights on one landscape, per set in sweep order (empty where no pair ran), the
    /// convergence of the paths (figure and CSV), and each set's pairs not known to have converged.
    pub(super) fn heights(&self, rep: &mut Report, dir: &Path, landscape: &str, fig: &str) -> Result<SetPaths> {
        let (title, id) = (self.arch.title(), self.arch.id());
        let records = landscape_records(dir, self.arch, landscape, true)?;
        let sets = landscape_sets(landscape);
        let per_set: Vec<Vec<f64>> = (0..sets.len())
            .map(|i| records.iter().filter(|r| r.set == i).map(|r| r.outcome.height).collect())
            .collect();
        let unconverged: Vec<Unconverged> = (0..sets.len())
            .map(|i| Unconverged::count(records.iter().filter(|r| r.set == i).map(|r| r.outcome.converged)))
            .collect();
        let barriers: Vec<Vec<f64>> = (0..sets.len())
            .map(|i| records.iter().filter(|r| r.set == i).map(|r| r.outcome.barrier).collect())
            .collect();
        if records.is_empty() {
            return Ok(SetPaths { heights: per_set, barriers, unconverged });
        }
        let labels: Vec<String> = sets.iter().map(|&(o, k)| set_label(o, k)).collect();
        let series: Vec<Series> = (0..sets.len())
            .filter(|&i| !per_set[i].is_empty())
            .map(|i| Series { label: labels[i].clone(), values: &per_set[i], colour: set_colour(sets[i].0, sets[i].1) })
            .collect();
        let file = format!("{id}-heights-{landscape}.png");
        histograms(
            &rep.out.join(&file),
            &format!("{title}: path heights on the {landscape} landscape"),
            "path height (max loss along the path)",
            &series,
            None,
        )?;
        let rows = records.iter().map(|r| {
            let o = &r.outcome;
            let (i, j) = r.pair;
            let known = |v: Option<String>| v.unwrap_or_default();
            format!(
                "{},{i},{j},{},{},{},{},{},{},{}",
                r.set_file,
                o.height,
                o.barrier,
                o.straight_height,
                o.length,
                o.best_iteration,
                known(o.iterations.map(|n| n.to_string())),
                known(o.converged.map(|c| c.to_string()))
            )
        });
        rep.write(
            &file.replace(".png", ".csv"),
            &csv_rows(
                "set,pair_i,pair_j,height,barrier,straight_height,length,best_iteration,iterations,converged",
                rows,
            ),
        )?;
        let medians: Vec<String> = series.iter().map(|s| format!("{} {}", s.label, sci(median(s.values)))).collect();
        rep.figure(
            &file,
            &format!(
                "{fig} ({title}): heights of the optimised paths between pairs of each set, {landscape} landscape; median heights: {}.",
                medians.join(", ")
            ),
        );
        let rows: Vec<Vec<String>> = (0..sets.len())
            .filter(|&i| !per_set[i].is_empty())
            .map(|i| {
                let (hs, bs) = (spread(&per_set[i]), spread(&barriers[i]));
                let s = |v: f64| sci(v);
                vec![
                    labels[i].clone(),
                    hs.count.to_string(),
                    s(hs.mean),
                    s(hs.median),
                    s(bs.mean),
                    s(bs.median),
                    s(bs.max),
                    (per_set[i].len() - unconverged[i].total()).to_string(),
                ]
            })
            .collect();
        rep.table(
            &format!("Path heights and barriers, {title} {landscape} landscape"),
            &[
                "set",
                "pairs",
                "mean height",
                "median height",
                "mean barrier",
                "median barrier",
                "max barrier",
                "converged",
            ],
            &rows,
        );
        self.convergence(rep, &records, landscape, &labels, &unconverged)?;
        Ok(SetPaths { heights: per_set, barriers, unconverged })
    }

    /// The convergence of the paths on one landscape: per set, the median and range over its pairs of
    /// the height at each traced iteration (a pair that stopped keeps its final height), as
    /// `<model>-convergence-<landscape>.{png,csv}`; nothing when no record has a trace.
    fn convergence(
        &self,
        rep: &mut Report,
        records: &[PairRecord],
        landscape: &str,
        labels: &[String],
        unconverged: &[Unconverged],
    ) -> Result<()> {
        let (title, id) = (self.arch.title(), self.arch.id());
        let sets = landscape_sets(landscape);
        let mut rows = Vec::new();
        let mut series = Vec::new();
        let mut counts = Vec::new();
        for (i, label) in labels.iter().enumerate() {
            let traced: Vec<(&crate::path::Trace, f64)> = records
                .iter()
                .filter(|r| r.set == i)
                .filter_map(|r| Some((r.outcome.trace.as_ref()?, r.outcome.height)))
                .collect();
            if traced.is_empty() {
                continue;
            }
            let mut grid: Vec<usize> = traced.iter().flat_map(|(t, _)| t.iteration.iter().copied()).collect();
            grid.sort_unstable();
            grid.dedup();
            let mut band = Band {
                label: label.clone(),
                x: Vec::new(),
                median: Vec::new(),
                low: Vec::new(),
                high: Vec::new(),
                colour: set_colour(sets[i].0, sets[i].1),
            };
            for &k in &grid {
                let h: Vec<f64> = traced.iter().filter_map(|(t, last)| t.height_at(k, *last)).collect();
                let (lo, hi) = h.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
                let med = median(&h);
                rows.push(format!("{label},{k},{},{med},{lo},{hi}", h.len()));
                band.x.push(k as f64);
                band.median.push(med);
                band.low.push(lo);
                band.high.push(hi);
            }
            let n = records.iter().filter(|r| r.set == i).count();
            counts.push(format!("{label} {} of {n}", n - unconverged[i].total()));
            series.push(band);
        }
        if series.is_empty() {
            return Ok(());
        }
        let file = format!("{id}-convergence-{landscape}.png");
        bands(
            &rep.out.join(&file),
            &format!("{title}: path height against Adam iteration, {landscape} landscape"),
            ("Adam iteration", "path height (median and range over pairs)"),
            XAxis::Linear,
            &series,
        )?;
        rep.write(&file.replace(".png", ".csv"), &csv_rows("set,iteration,pairs,median,min,max", rows))?;
        rep.figure(
            &file,
            &format!(
                "Convergence ({title}, {landscape} landscape): the median (line) and range (band) over each set's pairs \
                 of the height of the path at each Adam iteration (a pair that stopped when it converged keeps its \
                 final height). Converged pairs (docs/algorithms.md §5): {}.",
                counts.join(", ")
            ),
        );
        Ok(())
    }

    /// Distances, straight-line barriers and path barriers before and after weight matching, per set
    /// (sweeps run with `--align`); the BFGS-train and SGD-train pairs for the claims table.
    pub(super) fn alignment(&self, rep: &mut Report, dir: &Path, landscape: &str) -> Result<Option<AlignmentEvidence>> {
        let records = landscape_records(dir, self.arch, landscape, false)?;
        let summary = summarise_alignment(&records);
        if summary.is_empty() {
            return Ok(None);
        }
        let sets = landscape_sets(landscape);
        let header = "set,pairs,unaligned_distance,distance,unaligned_straight_barrier,straight_barrier,path_barrier";
        let rows: Vec<Vec<String>> = summary
            .iter()
            .map(|s| {
                let Some(&(opt, kind)) = sets.get(s.set) else {
                    bail!(
                        "{}: a path record names set {} of the {landscape} landscape, which has {} sets",
                        paths_dir(dir, self.arch, landscape).display(),
                        s.set,
                        sets.len()
                    );
                };
                let m = |x: &crate::analysis::Spread| sci(x.median);
                Ok(vec![
                    set_label(opt, kind),
                    s.pairs.to_string(),
                    m(&s.unaligned_distance),
                    m(&s.distance),
                    m(&s.unaligned_straight_barrier),
                    m(&s.straight_barrier),
                    m(&s.barrier),
                ])
            })
            .collect::<Result<_>>()?;
        rep.write(
            &format!("{}-alignment-{landscape}.csv", self.arch.id()),
            &csv_rows(header, rows.iter().map(|r| r.join(","))),
        )?;
        rep.table(
            &format!("{}, {landscape} landscape: medians before and after weight matching", self.arch.title()),
            &header.split(',').collect::<Vec<_>>(),
            &rows,
        );
        let barriers = |set: usize| -> Vec<f64> {
            records.iter().filter(|r| r.aligned && r.set == set).map(|r| r.outcome.barrier).collect()
        };
        let unconverged = |set: usize| {
            Unconverged::count(records.iter().filter(|r| r.aligned && r.set == set).map(|r| r.outcome.converged))
        };
        let find = |set: usize| summary.iter().find(|s| s.set == set);
        Ok(match (find(0), find(2)) {
            (Some(lbfgs), Some(sgd)) if landscape == "train" => Some(AlignmentEvidence {
                barriers: [barriers(0), barriers(2)],
                unconverged: [unconverged(0), unconverged(2)],
                gap: BarrierGap::between(sgd, lbfgs),
            }),
            _ => None,
        })
    }
}
