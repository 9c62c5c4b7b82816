//! The analysis report of a work directory: Table I and S1, the L2-distance histograms (Fig. 5, S3),
//! kernel PCA scatters (Fig. 6, S4), path-height histograms (Fig. 4, S2), loss curves (Fig. 2, S1)
//! and the toy figure (Fig. 3), each with its numbers as CSV, assembled into `index.html`.
//!
//! Work directory layout (made by `reproduce`): `DIR/<model>/{sgd,lbfgs}/` hold `train` outputs,
//! `DIR/<model>/paths-{train,test}[/shard-*]/` hold `paths` sweeps.

use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::analysis::{distances_to_common_origin, kernel_pca, spread, weight_stats};
use crate::io::{atomic_write, read_weights, WeightStack};
use crate::model::Arch;
use crate::path::sweep::{read_records, PairRecord};
use crate::plot::figures::{curves, histograms, scatter, Series, BLUE, LIGHT_BLUE, ORANGE, RED};
use crate::train::Summary;

/// The four solution sets of a network, in the paper's order.
pub const SETS: [(&str, &str); 4] = [("lbfgs", "train"), ("lbfgs", "test"), ("sgd", "train"), ("sgd", "test")];

pub fn set_label(opt: &str, kind: &str) -> String {
    format!("{}-{kind}", if opt == "lbfgs" { "BFGS" } else { "SGD" })
}

/// The paper's colours for two-set figures: BFGS blue, SGD red.
fn optimizer_colour(opt: &str) -> plotters::style::RGBColor {
    if opt == "lbfgs" {
        BLUE
    } else {
        RED
    }
}

fn set_colour(opt: &str, kind: &str) -> plotters::style::RGBColor {
    match (opt, kind) {
        ("lbfgs", "train") => BLUE,
        ("lbfgs", _) => LIGHT_BLUE,
        (_, "train") => RED,
        _ => ORANGE,
    }
}

/// The sets whose paths are found on each landscape, in sweep order: all four on the training
/// landscape (Fig. 4), the two test snapshots on the test landscape (Fig. S2).
pub fn landscape_sets(landscape: &str) -> &'static [(&'static str, &'static str)] {
    if landscape == "train" {
        &SETS
    } else {
        &[("lbfgs", "test"), ("sgd", "test")]
    }
}

/// Where `train --optimizer opt` of `arch` wrote its sets in a work directory.
pub fn set_file(dir: &Path, arch: Arch, opt: &str, kind: &str) -> PathBuf {
    dir.join(arch.id()).join(opt).join(format!("{}-{opt}-{kind}.safetensors", arch.id()))
}

pub fn summary_file(dir: &Path, arch: Arch, opt: &str) -> PathBuf {
    dir.join(arch.id()).join(opt).join(format!("{}-{opt}-summary.json", arch.id()))
}

/// All finished pairs of a sweep directory and its shard subdirectories.
pub fn sweep_records(dir: &Path) -> Result<Vec<PairRecord>> {
    let mut out = Vec::new();
    if dir.join("paths.jsonl").exists() {
        out.extend(read_records(dir)?);
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut shards: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.join("paths.jsonl").exists()).collect();
        shards.sort();
        for s in shards {
            out.extend(read_records(&s)?);
        }
    }
    out.sort_by_key(|r| r.index);
    out.dedup_by_key(|r| r.index);
    Ok(out)
}

fn csv_rows(header: &str, rows: impl IntoIterator<Item = String>) -> String {
    let mut s = format!("{header}\n");
    for r in rows {
        s.push_str(&r);
        s.push('\n');
    }
    s
}

fn sci(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3e}")
    } else {
        "–".into()
    }
}

struct Report {
    out: PathBuf,
    html: String,
    figures: Vec<String>,
}

impl Report {
    fn write(&self, name: &str, text: &str) -> Result<()> {
        atomic_write(&self.out.join(name), text.as_bytes())
    }
    fn figure(&mut self, file: &str, caption: &str) {
        self.figures.push(file.to_string());
        let _ = writeln!(
            self.html,
            "<figure><img src=\"{file}\" alt=\"{caption}\"><figcaption>{caption}</figcaption></figure>"
        );
    }
    fn table(&mut self, caption: &str, header: &[&str], rows: &[Vec<String>]) {
        let _ = write!(self.html, "<table><caption>{caption}</caption><tr>");
        for h in header {
            let _ = write!(self.html, "<th>{h}</th>");
        }
        self.html.push_str("</tr>\n");
        for r in rows {
            self.html.push_str("<tr>");
            for c in r {
                let _ = write!(self.html, "<td>{c}</td>");
            }
            self.html.push_str("</tr>\n");
        }
        self.html.push_str("</table>\n");
    }
}

fn markdown(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|{}\n", header.join(" | "), " --- |".repeat(header.len()));
    for r in rows {
        let _ = writeln!(s, "| {} |", r.join(" | "));
    }
    s
}

/// Writes the report of `dir` to `out`; `context` is extra HTML (configuration, adapter) for the top.
/// Returns the figure files written.
pub fn analyze(dir: &Path, out: &Path, context: &str) -> Result<Vec<String>> {
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let mut rep = Report { out: out.to_path_buf(), html: String::new(), figures: Vec::new() };
    let mut table1 = Vec::new();
    let mut table_s1 = Vec::new();
    for arch in Arch::ALL {
        let summaries: Vec<Option<Summary>> = ["lbfgs", "sgd"]
            .iter()
            .map(|opt| {
                std::fs::read_to_string(summary_file(dir, arch, opt)).ok().and_then(|t| serde_json::from_str(&t).ok())
            })
            .collect();
        let sets: Vec<Option<WeightStack>> = SETS
            .iter()
            .map(|(opt, kind)| read_weights(&set_file(dir, arch, opt, kind), arch).ok().filter(|s| s.count() > 0))
            .collect();
        if summaries.iter().all(Option::is_none) && sets.iter().all(Option::is_none) {
            continue;
        }
        let m = |s: &Option<Summary>, f: fn(&Summary) -> f64| s.as_ref().map_or("–".to_string(), |s| sci(f(s)));
        table1.push(vec![
            arch.title().to_string(),
            m(&summaries[0], |s| s.mean_train_loss),
            m(&summaries[1], |s| s.mean_train_loss),
            m(&summaries[0], |s| s.mean_test_loss),
            m(&summaries[1], |s| s.mean_test_loss),
            arch.n_params().to_string(),
        ]);
        for ((opt, kind), set) in SETS.iter().zip(&sets) {
            if let Some(set) = set {
                let v: Vec<&[f32]> = (0..set.count()).map(|i| set.vector(i)).collect();
                let (mu, sigma) = weight_stats(&v);
                table_s1.push(vec![
                    arch.title().into(),
                    set_label(opt, kind),
                    set.count().to_string(),
                    sci(mu),
                    format!("{sigma:.5}"),
                ]);
            }
        }
        let _ = writeln!(rep.html, "<h2>{}</h2>", arch.title());
        let id = arch.id();
        // L2 distances and kPCA: (BFGS-train, SGD-test) and (BFGS-test, SGD-test)
        for ((ia, ib), dist_name, pca_name) in [((0usize, 3usize), "Fig. 5", "Fig. 6"), ((1, 3), "Fig. S3", "Fig. S4")]
        {
            let (Some(a), Some(b)) = (&sets[ia], &sets[ib]) else { continue };
            let va: Vec<&[f32]> = (0..a.count()).map(|i| a.vector(i)).collect();
            let vb: Vec<&[f32]> = (0..b.count()).map(|i| b.vector(i)).collect();
            let (la, lb) = (set_label(SETS[ia].0, SETS[ia].1), set_label(SETS[ib].0, SETS[ib].1));
            let d = distances_to_common_origin(&va, &vb);
            let file = format!("{id}-l2-{}-{}.png", la.to_lowercase(), lb.to_lowercase());
            histograms(
                &out.join(&file),
                &format!("{}: L2 distance to the common origin ({la} vs {lb})", arch.title()),
                "L2 distance to the common origin",
                &[
                    Series { label: la.clone(), values: &d.a, colour: optimizer_colour(SETS[ia].0) },
                    Series { label: lb.clone(), values: &d.b, colour: optimizer_colour(SETS[ib].0) },
                ],
                Some((d.centroid, "centroid distance / 2")),
            )?;
            rep.write(
                &file.replace(".png", ".csv"),
                &csv_rows(
                    "set,index,distance",
                    d.a.iter()
                        .enumerate()
                        .map(|(i, v)| format!("{la},{i},{v}"))
                        .chain(d.b.iter().enumerate().map(|(i, v)| format!("{lb},{i},{v}")))
                        .chain([format!("centroid,,{}", d.centroid)]),
                ),
            )?;
            let mut points = va.clone();
            points.extend(&vb);
            let pca = kernel_pca(&points, arch.n_params() as f64, 2);
            let pts: Vec<(f64, f64)> =
                pca.projections.iter().map(|p| (p[0], p.get(1).copied().unwrap_or(0.0))).collect();
            let pfile = format!("{id}-kpca-{}-{}.png", la.to_lowercase(), lb.to_lowercase());
            scatter(
                &out.join(&pfile),
                &format!("{}: RBF kernel PCA ({la} vs {lb})", arch.title()),
                ("PC1", "PC2"),
                &[
                    (la.clone(), pts[..va.len()].to_vec(), optimizer_colour(SETS[ia].0)),
                    (lb.clone(), pts[va.len()..].to_vec(), optimizer_colour(SETS[ib].0)),
                ],
            )?;
            rep.write(
                &pfile.replace(".png", ".csv"),
                &csv_rows(
                    "set,index,pc1,pc2",
                    pts.iter().enumerate().map(|(i, p)| {
                        let (set, j) = if i < va.len() { (&la, i) } else { (&lb, i - va.len()) };
                        format!("{set},{j},{},{}", p.0, p.1)
                    }),
                ),
            )?;
            rep.figure(&file, &format!("{dist_name} ({}): distances of {la} and {lb} vectors to the midpoint of their centroids; dotted: each centroid's distance to it.", arch.title()));
            rep.figure(
                &pfile,
                &format!(
                    "{pca_name} ({}): RBF kernel PCA (2σ² = N_prm = {}), eigenvalues {:.4}, {:.4}.",
                    arch.title(),
                    arch.n_params(),
                    pca.eigenvalues[0],
                    pca.eigenvalues.get(1).copied().unwrap_or(0.0)
                ),
            );
        }
        // path heights on both landscapes
        for (landscape, fig) in [("train", "Fig. 4"), ("test", "Fig. S2")] {
            let records = sweep_records(&dir.join(id).join(format!("paths-{landscape}")))?;
            if records.is_empty() {
                continue;
            }
            let mut by_set: Vec<(String, Vec<f64>, Vec<f64>, plotters::style::RGBColor)> = Vec::new();
            for (i, &(opt, kind)) in landscape_sets(landscape).iter().enumerate() {
                let rs: Vec<&PairRecord> = records.iter().filter(|r| r.set == i).collect();
                if !rs.is_empty() {
                    by_set.push((
                        set_label(opt, kind),
                        rs.iter().map(|r| r.outcome.height).collect(),
                        rs.iter().map(|r| r.outcome.barrier).collect(),
                        set_colour(opt, kind),
                    ));
                }
            }
            let file = format!("{id}-heights-{landscape}.png");
            let series: Vec<Series> =
                by_set.iter().map(|(l, h, _, c)| Series { label: l.clone(), values: h, colour: *c }).collect();
            histograms(
                &out.join(&file),
                &format!("{}: path heights on the {landscape} landscape", arch.title()),
                "path height (max loss along the path)",
                &series,
                None,
            )?;
            rep.write(
                &file.replace(".png", ".csv"),
                &csv_rows(
                    "set,pair_i,pair_j,height,barrier,straight_height,length,best_iteration",
                    records.iter().map(|r| {
                        format!(
                            "{},{},{},{},{},{},{},{}",
                            r.set_file,
                            r.pair.0,
                            r.pair.1,
                            r.outcome.height,
                            r.outcome.barrier,
                            r.outcome.straight_height,
                            r.outcome.length,
                            r.outcome.best_iteration
                        )
                    }),
                ),
            )?;
            rep.figure(
                &file,
                &format!(
                    "{fig} ({}): heights of the optimised paths between pairs of each set, {landscape} landscape.",
                    arch.title()
                ),
            );
            let rows: Vec<Vec<String>> = by_set
                .iter()
                .map(|(l, h, b, _)| {
                    let (hs, bs) = (spread(h), spread(b));
                    vec![
                        l.clone(),
                        hs.count.to_string(),
                        sci(hs.mean),
                        sci(hs.median),
                        sci(bs.mean),
                        sci(bs.median),
                        sci(bs.max),
                    ]
                })
                .collect();
            rep.table(
                &format!("Path heights and barriers, {} {landscape} landscape", arch.title()),
                &["set", "pairs", "mean height", "median height", "mean barrier", "median barrier", "max barrier"],
                &rows,
            );
        }
        // loss curves of the best kept run of each optimizer
        for (s, opt) in summaries.iter().zip(["lbfgs", "sgd"]) {
            let Some(s) = s else { continue };
            let Some(&best) = s.kept_runs.first() else { continue };
            let run = &s.runs[best];
            let file = format!("{id}-curves-{opt}.png");
            let unit = if opt == "sgd" { "epoch" } else { "iteration" };
            curves(
                &out.join(&file),
                &format!(
                    "{}: {} run {best} (lowest training loss)",
                    arch.title(),
                    if opt == "sgd" { "SGD" } else { "L-BFGS" }
                ),
                unit,
                &[
                    Series { label: "training loss".into(), values: &run.train, colour: BLUE },
                    Series { label: "test loss".into(), values: &run.test, colour: RED },
                ],
            )?;
            rep.figure(
                &file,
                &format!(
                    "{} ({}): training and test loss per {unit} of a representative run.",
                    if opt == "sgd" { "Fig. S1" } else { "Fig. 2" },
                    arch.title()
                ),
            );
        }
    }
    // tables
    let t1_header = ["network", "L-BFGS train", "SGD train", "L-BFGS test", "SGD test", "N_prm"];
    rep.write("table1.csv", &csv_rows(&t1_header.join(","), table1.iter().map(|r| r.join(","))))?;
    rep.write("table1.md", &markdown(&t1_header, &table1))?;
    let s1_header = ["network", "set", "vectors", "mean μ", "std σ"];
    rep.write("tableS1.csv", &csv_rows(&s1_header.join(","), table_s1.iter().map(|r| r.join(","))))?;
    rep.write("tableS1.md", &markdown(&s1_header, &table_s1))?;
    let body = std::mem::take(&mut rep.html);
    rep.table(
        "Table I: mean training loss of the train snapshots and mean test loss of the test snapshots",
        &t1_header,
        &table1,
    );
    rep.table("Table S1: mean and standard deviation of each set's concatenated weights", &s1_header, &table_s1);
    let tables = std::mem::take(&mut rep.html);
    // the toy figure
    let toy = crate::path::toy::run(&[10.0, 100.0, 1000.0], Default::default());
    crate::plot::toy::figure(&toy, &out.join("toy.png"))?;
    rep.write(
        "toy-heights.csv",
        &csv_rows(
            "path,lambda,height",
            toy.iter()
                .enumerate()
                .map(|(i, p)| format!("{i},{},{}", p.lambda.map_or("straight".into(), |l| l.to_string()), p.height)),
        ),
    )?;
    rep.html = body;
    rep.figure("toy.png", "Fig. 3: the 2-D toy landscape, straight line and optimised paths for λ = 10, 100, 1000.");
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>losscape report</title><style>body{{font-family:sans-serif;max-width:1000px;margin:auto}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #aaa;padding:4px 8px}}img{{max-width:100%}}figure{{margin:1.5em 0}}</style></head><body><h1>losscape report</h1>\n{context}\n{tables}\n{}\n</body></html>\n",
        rep.html
    );
    rep.write("index.html", &html)?;
    Ok(rep.figures)
}
