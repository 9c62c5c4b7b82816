//! The analysis report of a work directory, written like a results section: the claims table first
//! (`claims`), then Table I and S1, the L2-distance histograms (Fig. 5, S3), kernel PCA scatters
//! (Fig. 6, S4), path-height histograms (Fig. 4, S2), loss curves (Fig. 2, S1) and the toy figure
//! (Fig. 3), each figure with a caption stating what it shows in this run and its numbers as CSV,
//! assembled into `index.html`.
//!
//! It reads a work directory laid out as `io::workdir` describes (made by `reproduce`).

pub mod claims;
mod network;
mod records;
pub mod regime;
mod scale;

use anyhow::{bail, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::io::{atomic_write, Optimizer};
use crate::model::Arch;
use crate::plot::figures::{BLUE, GREEN, LIGHT_BLUE, LIGHT_GREEN, ORANGE, RED};
use claims::Claim;
use plotters::style::RGBColor;
pub use records::landscape_records;

/// The label of a solution set in figures and tables, the paper's: BFGS-train, SGD-test (and
/// Adam-train for Adam, which the study does not run).
pub fn set_label(opt: Optimizer, kind: &str) -> String {
    let name = match opt {
        Optimizer::Lbfgs => "BFGS",
        Optimizer::Sgd => "SGD",
        Optimizer::Adam => "Adam",
    };
    format!("{name}-{kind}")
}

/// The paper's colours for two-set figures: BFGS blue, SGD red (Adam green).
fn optimizer_colour(opt: Optimizer) -> RGBColor {
    match opt {
        Optimizer::Lbfgs => BLUE,
        Optimizer::Sgd => RED,
        Optimizer::Adam => GREEN,
    }
}

/// The lighter colour of an optimizer: its test snapshots, its straight lines.
fn light_colour(opt: Optimizer) -> RGBColor {
    match opt {
        Optimizer::Lbfgs => LIGHT_BLUE,
        Optimizer::Sgd => ORANGE,
        Optimizer::Adam => LIGHT_GREEN,
    }
}

/// The colour of a set: its optimizer's for train snapshots, the lighter one for test snapshots.
fn set_colour(opt: Optimizer, kind: &str) -> RGBColor {
    if kind == "train" {
        optimizer_colour(opt)
    } else {
        light_colour(opt)
    }
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
///
/// Errors: `dir` is not a directory or holds no network's training outputs (nothing is written then);
/// a summary or weight file that exists but cannot be read or parsed (a missing one only leaves its
/// rows and figures out), a figure or CSV that cannot be written.
pub fn analyze(dir: &Path, out: &Path, context: &str) -> Result<Vec<String>> {
    let nets = load_networks(dir)?;
    crate::io::create_dir(out)?;
    let mut rep = Report { out: out.to_path_buf(), html: String::new(), figures: Vec::new() };
    let mut tables = Tables::default();
    let mut evidence = Vec::new();
    for net in nets {
        let arch = net.arch;
        let _ = writeln!(rep.html, "<h2>{}</h2>", arch.title());
        evidence.push(net.sections(&mut rep, dir, &mut tables)?);
    }
    let all_claims = claims::table(&evidence);
    let body = std::mem::take(&mut rep.html);
    claims_section(&mut rep, &all_claims)?;
    tables.write(&mut rep)?;
    let top = std::mem::take(&mut rep.html);
    rep.html = body;
    toy_section(&mut rep)?;
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>losscape report</title><style>{STYLE}</style></head><body><h1>losscape report</h1>\n{context}\n{top}\n{}\n</body></html>\n",
        rep.html
    );
    rep.write("index.html", &html)?;
    Ok(rep.figures)
}

/// The users' networks a study's `config.json` records (`models`), which carry their descriptions;
/// none when `dir` has no such file (a directory laid out by hand holds the paper's networks).
///
/// Errors: a `config.json` whose `models` cannot be read.
fn users_networks(dir: &Path) -> Result<Vec<Arch>> {
    #[derive(serde::Deserialize)]
    struct Models {
        #[serde(default)]
        models: Vec<Arch>,
    }
    if !dir.join("config.json").is_file() {
        return Ok(Vec::new());
    }
    let m: Models = crate::io::config::read_config(dir)?;
    Ok(m.models.into_iter().filter(|a| !a.is_paper()).collect())
}

/// The networks whose training outputs `dir` holds: the paper's in its order, then the users'.
///
/// Errors: `dir` is missing or not a directory, or holds none of them (the error names the files looked
/// for), so that a mistyped `--in` is not an empty report.
fn load_networks(dir: &Path) -> Result<Vec<network::NetworkResults>> {
    if dir.is_file() {
        bail!("{}: is a file, not a directory; give --in the work directory of a study", dir.display());
    }
    if !dir.is_dir() {
        bail!(
            "{}: no such directory; give the work directory of a study (`losscape reproduce --out DIR`, or one \
             laid out like it: see `losscape analyze --help`)",
            dir.display()
        );
    }
    let mut nets = Vec::new();
    for arch in Arch::ALL.into_iter().chain(users_networks(dir)?) {
        nets.extend(network::NetworkResults::load(dir, arch)?);
    }
    if nets.is_empty() {
        let m = Arch::ALL.map(|a| a.id()).join(",");
        bail!(
            "{}: holds no study: found none of {{{m}}}/{{lbfgs,sgd}}/<model>-<opt>-summary.json or \
             <model>-<opt>-{{train,test}}.safetensors; give the work directory of `losscape reproduce`",
            dir.display()
        );
    }
    Ok(nets)
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #aaa;padding:4px 8px}img{max-width:100%}figure{margin:1.5em 0}td.holds{background:#dff0d8}td.fails{background:#f2dede}td.few{background:#eee}td.unconverged{background:#fcf8e3}p.warning{background:#f2dede;padding:6px}";

/// Table I and Table S1 rows, gathered network by network.
#[derive(Default)]
struct Tables {
    table1: Vec<Vec<String>>,
    table_s1: Vec<Vec<String>>,
}

impl Tables {
    const T1: [&'static str; 6] = ["network", "L-BFGS train", "SGD train", "L-BFGS test", "SGD test", "N_prm"];
    const S1: [&'static str; 5] = ["network", "set", "vectors", "mean μ", "std σ"];

    fn write(&self, rep: &mut Report) -> Result<()> {
        rep.write("table1.csv", &csv_rows(&Self::T1.join(","), self.table1.iter().map(|r| r.join(","))))?;
        rep.write("table1.md", &markdown(&Self::T1, &self.table1))?;
        rep.write("tableS1.csv", &csv_rows(&Self::S1.join(","), self.table_s1.iter().map(|r| r.join(","))))?;
        rep.write("tableS1.md", &markdown(&Self::S1, &self.table_s1))?;
        rep.table(
            "Table I: mean training loss of the train snapshots and mean test loss of the test snapshots",
            &Self::T1,
            &self.table1,
        );
        rep.table(
            "Table S1: mean and standard deviation of each set's concatenated weights",
            &Self::S1,
            &self.table_s1,
        );
        Ok(())
    }
}

/// The claims table (HTML, with the verdict rules), `claims.csv` and `claims.json`.
fn claims_section(rep: &mut Report, claims: &[Claim]) -> Result<()> {
    rep.write("claims.csv", &claims::to_csv(claims))?;
    rep.write("claims.json", &claims::to_json(claims)?)?;
    let count = |v: claims::Verdict| claims.iter().filter(|c| c.verdict == v).count();
    let _ = writeln!(
        rep.html,
        "<h2>The paper's claims in this run</h2><p>{} hold, {} fail, {} are not judged because their paths have \
         not converged, {} have too few samples. {}</p>",
        count(claims::Verdict::Holds),
        count(claims::Verdict::Fails),
        count(claims::Verdict::NotConverged),
        count(claims::Verdict::TooFewSamples),
        claims::rules_html()
    );
    rep.html.push_str("<table><tr>");
    for h in claims::CSV_HEADER.split(',') {
        let _ = write!(rep.html, "<th>{}</th>", h.replace('_', " "));
    }
    rep.html.push_str("</tr>\n");
    for c in claims {
        let class = c.verdict.css_class();
        let _ = writeln!(
            rep.html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.claim,
            c.network,
            c.landscape,
            c.paper,
            c.run,
            c.verdict.as_str(),
            c.statistic,
            c.p_value.map_or("–".into(), |p| format!("{p:.2e}")),
            c.p_holm.map_or("–".into(), |p| format!("{p:.2e}"))
        );
    }
    rep.html.push_str("</table>\n");
    Ok(())
}

/// Fig. 3: the toy landscape and its paths.
fn toy_section(rep: &mut Report) -> Result<()> {
    let toy = crate::path::toy::run(&[10.0, 100.0, 1000.0], Default::default());
    crate::plot::toy::figure(&toy, &rep.out.join("toy.png"))?;
    rep.write(
        "toy-heights.csv",
        &csv_rows(
            "path,lambda,height",
            toy.iter()
                .enumerate()
                .map(|(i, p)| format!("{i},{},{}", p.lambda.map_or("straight".into(), |l| l.to_string()), p.height)),
        ),
    )?;
    let heights: Vec<String> = toy.iter().map(|p| format!("{:.3}", p.height)).collect();
    rep.figure(
        "toy.png",
        &format!(
            "Fig. 3: the 2-D toy landscape; heights of the straight line and the optimised paths for λ = 10, 100, 1000: {}.",
            heights.join(", ")
        ),
    );
    Ok(())
}
