//! The regime map: how the paths' heights and the claims' verdicts change with the number of training
//! images per parameter. `reproduce --images N1,N2,…` runs one study per training-set size, each in its
//! own work directory; [`write_map`] reads them and writes `regime/`: `index.html`, one figure per
//! network (`regime-<model>.png`, with its numbers in `regime.csv`) and every claim's verdict per size
//! (`regime-claims.csv`). `docs/findings.md` says what the map shows.

use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::claims::{ClaimRow, Verdict};
use super::{csv_rows, light_colour, set_colour, set_label, Report, STYLE};
use crate::analysis::stats::median;
use crate::io::workdir::{report_dir, SETS};
use crate::model::Arch;
use crate::path::sweep::PairRecord;
use crate::plot::figures::{bands, Band, XAxis};

/// One study of the map: its training-set size and its work directory (a `reproduce` directory whose
/// report has been written).
#[derive(Clone, Debug)]
pub struct Study {
    pub images: usize,
    pub dir: PathBuf,
}

/// The sets whose pairs the map follows: the train snapshots on the training landscape, the paper's
/// Fig. 4 (indices into [`SETS`], which is the training landscape's set order).
const MAPPED: [usize; 2] = [0, 2];

/// Median, lowest and highest of some values (NaN for none).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(v: &[f64]) -> Spread {
        let (min, max) = v.iter().fold((f64::NAN, f64::NAN), |(a, b), &x| (a.min(x), b.max(x)));
        Spread { median: median(v), min, max }
    }
}

/// One set's pairs at one size.
struct SetRow {
    set: usize,
    pairs: usize,
    converged: usize,
    height: Spread,
    barrier: Spread,
    straight: Spread,
}

impl SetRow {
    fn of(set: usize, records: &[PairRecord]) -> SetRow {
        let mine: Vec<&PairRecord> = records.iter().filter(|r| r.set == set && !r.aligned).collect();
        let values = |f: fn(&PairRecord) -> f64| Spread::of(&mine.iter().map(|r| f(r)).collect::<Vec<_>>());
        SetRow {
            set,
            pairs: mine.len(),
            converged: mine.iter().filter(|r| r.outcome.converged == Some(true)).count(),
            height: values(|r| r.outcome.height),
            barrier: values(|r| r.outcome.barrier),
            straight: values(|r| r.outcome.straight_height),
        }
    }

    fn label(&self) -> String {
        let (opt, kind) = SETS[self.set];
        set_label(opt, kind)
    }
}

/// What one study contributes for one network.
struct Point {
    images: usize,
    ratio: f64,
    sets: Vec<SetRow>,
    claims: Vec<ClaimRow>,
}

fn read_claims(study: &Study) -> Result<Vec<ClaimRow>> {
    let path = report_dir(&study.dir).join("claims.json");
    if !path.exists() {
        bail!(
            "{}: missing: the study on {} training images has no report yet; run `losscape reproduce` with the \
             same --images (finished stages are skipped) before the map",
            path.display(),
            study.images
        );
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!("{}: not a claims file of this version; delete the report directory and rerun", path.display())
    })
}

fn point(arch: Arch, study: &Study, claims: &[ClaimRow]) -> Result<Point> {
    let records = super::landscape_records(&study.dir, arch, "train", false)?;
    Ok(Point {
        images: study.images,
        ratio: study.images as f64 / arch.n_params() as f64,
        sets: MAPPED.iter().map(|&s| SetRow::of(s, &records)).collect(),
        claims: claims.iter().filter(|c| c.network == arch.title()).cloned().collect(),
    })
}

/// Writes the map of `studies` (in increasing size) for `models` into `out`.
///
/// Errors: a study without its report (`claims.json`) or with unreadable path records, a file that
/// cannot be written.
pub fn write_map(out: &Path, studies: &[Study], models: &[Arch]) -> Result<()> {
    let claims = studies.iter().map(read_claims).collect::<Result<Vec<_>>>()?;
    crate::io::create_dir(out)?;
    let mut rep = Report { out: out.to_path_buf(), html: String::new(), figures: Vec::new() };
    let (mut heights, mut verdicts) = (Vec::new(), Vec::new());
    for &arch in models {
        let points = studies.iter().zip(&claims).map(|(s, c)| point(arch, s, c)).collect::<Result<Vec<Point>>>()?;
        network_section(&mut rep, arch, &points, studies)?;
        heights.extend(points.iter().flat_map(|p| height_rows(arch, p)));
        verdicts.extend(points.iter().flat_map(verdict_rows));
    }
    rep.write(
        "regime.csv",
        &csv_rows(
            "network,images,images_per_parameter,set,pairs,converged,height_median,height_min,height_max,\
             barrier_median,barrier_min,barrier_max,straight_median,straight_min,straight_max",
            heights,
        ),
    )?;
    rep.write(
        "regime-claims.csv",
        &csv_rows("network,images,images_per_parameter,claim,landscape,verdict,p_holm", verdicts),
    )?;
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>losscape regime map</title><style>{STYLE}</style>\
         </head><body><h1>losscape regime map</h1>\n<p>One study per training-set size ({}), each with its own \
         report; the paper trains on 60,000 images.</p>\n{}</body></html>\n",
        studies.iter().map(|s| s.images.to_string()).collect::<Vec<_>>().join(", "),
        rep.html
    );
    rep.write("index.html", &html)
}

fn height_rows(arch: Arch, p: &Point) -> Vec<String> {
    let s3 = |s: Spread| format!("{},{},{}", s.median, s.min, s.max);
    p.sets
        .iter()
        .map(|r| {
            format!(
                "{},{},{},{},{},{},{},{},{}",
                arch.id(),
                p.images,
                p.ratio,
                r.label(),
                r.pairs,
                r.converged,
                s3(r.height),
                s3(r.barrier),
                s3(r.straight)
            )
        })
        .collect()
}

fn verdict_rows(p: &Point) -> Vec<String> {
    p.claims
        .iter()
        .map(|c| {
            let p_holm = c.p_holm.map_or(String::new(), |v| format!("{v:.3e}"));
            format!("{},{},{},{},{},{},{p_holm}", c.network, p.images, p.ratio, c.claim, c.landscape, c.verdict)
        })
        .collect()
}

/// The figure of one network: per mapped set the median path height and its range against images per
/// parameter, and the straight line's.
fn network_section(rep: &mut Report, arch: Arch, points: &[Point], studies: &[Study]) -> Result<()> {
    let _ = writeln!(rep.html, "<h2>{}</h2>", arch.title());
    let mut series = Vec::new();
    for (k, &set) in MAPPED.iter().enumerate() {
        let (opt, kind) = SETS[set];
        let band = |what: &str, f: fn(&SetRow) -> Spread, colour| Band {
            label: format!("{} {what}", set_label(opt, kind)),
            x: points.iter().map(|p| p.ratio).collect(),
            median: points.iter().map(|p| f(&p.sets[k]).median).collect(),
            low: points.iter().map(|p| f(&p.sets[k]).min).collect(),
            high: points.iter().map(|p| f(&p.sets[k]).max).collect(),
            colour,
        };
        series.push(band("path", |r| r.height, set_colour(opt, kind)));
        series.push(band("straight line", |r| r.straight, light_colour(opt)));
    }
    let file = format!("regime-{}.png", arch.id());
    bands(
        &rep.out.join(&file),
        &format!("{}: path heights against training images per parameter", arch.title()),
        ("training images per parameter", "height (median and range over pairs)"),
        XAxis::Log,
        &series,
    )?;
    let paper = 60_000.0 / arch.n_params() as f64;
    rep.figure(
        &file,
        &format!(
            "{}: the height of the optimised paths (Eq. 5) and of the straight lines between the train snapshots \
             on the training landscape, median (line) and range (band) over each set's pairs, against training \
             images per parameter ({} parameters; the paper's 60,000 images are {paper:.2} per parameter). \
             Numbers in regime.csv.",
            arch.title(),
            arch.n_params()
        ),
    );
    heights_table(rep, points);
    verdict_table(rep, points, studies);
    Ok(())
}

fn heights_table(rep: &mut Report, points: &[Point]) {
    let g = |v: f64| format!("{v:.3e}");
    let rows: Vec<Vec<String>> = points
        .iter()
        .flat_map(|p| {
            p.sets.iter().map(move |r| {
                vec![
                    p.images.to_string(),
                    format!("{:.3}", p.ratio),
                    r.label(),
                    format!("{} of {}", r.converged, r.pairs),
                    g(r.height.median),
                    g(r.barrier.median),
                    g(r.straight.median),
                ]
            })
        })
        .collect();
    rep.table(
        "Medians over each set's pairs on the training landscape",
        &["images", "images per parameter", "set", "converged", "path height", "path barrier", "straight line"],
        &rows,
    );
}

/// Every claim's verdict (rows) at each size (columns), linked to the size's report.
fn verdict_table(rep: &mut Report, points: &[Point], studies: &[Study]) {
    let mut keys: Vec<(String, String)> = Vec::new();
    for c in points.iter().flat_map(|p| &p.claims) {
        if !keys.iter().any(|(a, b)| *a == c.claim && *b == c.landscape) {
            keys.push((c.claim.clone(), c.landscape.clone()));
        }
    }
    let _ = write!(
        rep.html,
        "<table><caption>Each claim's verdict per training-set size</caption><tr><th>claim</th><th>landscape</th>"
    );
    for (p, s) in points.iter().zip(studies) {
        let link = relative_report(s);
        let _ = write!(rep.html, "<th><a href=\"{link}\">{} images</a><br>{:.3} per parameter</th>", p.images, p.ratio);
    }
    rep.html.push_str("</tr>\n");
    for (claim, landscape) in keys {
        let _ = write!(rep.html, "<tr><td>{claim}</td><td>{landscape}</td>");
        for p in points {
            let c = p.claims.iter().find(|c| c.claim == claim && c.landscape == landscape);
            let verdict = c.map_or("–", |c| c.verdict.as_str());
            let class = Verdict::parse(verdict).map_or("few", Verdict::css_class);
            let _ = write!(rep.html, "<td class=\"{class}\">{verdict}</td>");
        }
        rep.html.push_str("</tr>\n");
    }
    rep.html.push_str("</table>\n");
}

/// A study's report as a link from `regime/` (its sibling directory when `reproduce --images` laid it out).
fn relative_report(s: &Study) -> String {
    let name = s.dir.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    format!("../{name}/report/index.html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_values_is_median_and_range() {
        let s = Spread::of(&[3.0, 1.0, 2.0, 10.0]);
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 10.0));
        assert!(Spread::of(&[]).median.is_nan());
    }

    #[test]
    fn verdicts_read_back_as_written() {
        for v in [Verdict::Holds, Verdict::Fails, Verdict::TooFewSamples, Verdict::NotConverged] {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
        }
        assert_eq!(Verdict::parse("maybe"), None);
        assert_eq!(Verdict::parse("not converged").map(Verdict::css_class), Some("unconverged"));
    }
}
