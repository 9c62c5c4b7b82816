//! The claims table: each finding of the paper, the paper's value beside this run's, a verdict and its
//! evidence. The verdict rules are written out in `docs/claims.md`; the statistics are in
//! [`crate::analysis::stats`].

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::analysis::stats::{holm, mann_whitney_u, median, rank_biserial, roc_auc, Alternative};
use crate::model::Arch;
use crate::path::alignment::BarrierGap;

/// Fewest values per group for a verdict: with 5 and 5, the smallest one-sided U-test p-value is
/// 1/252, so a real difference can reach [`ALPHA`]; with 3 and 3 it cannot go below 1/20.
pub const MIN_SAMPLES: usize = 5;
/// Significance level of every test.
pub const ALPHA: f64 = 0.05;
/// Two sets "separate along PC1" when the area under the ROC curve of PC1 (or of −PC1) reaches this.
pub const AUC_SEPARATED: f64 = 0.9;
/// Mean test losses are "comparable" when their ratio lies within [1/x, x].
pub const COMPARABLE_RATIO: f64 = 2.0;
/// The centroids are "close" when their distance is below this multiple of the within-set spread.
pub const CLOSE_CENTROIDS: f64 = 1.0;

/// The verdict rules as the report states them above the table (`docs/claims.md` has them in full).
pub fn rules_html() -> String {
    format!(
        "Verdict rules (docs/claims.md): a directional claim (the paper reports a difference, e.g. SGD paths \
         lower) holds when a one-sided Mann–Whitney U test finds it at p &lt; {ALPHA}; a claim that the paper \
         reports no difference (e.g. the autoencoder's heights) holds when the test does not find it. Mean test \
         losses are comparable within a factor {COMPARABLE_RATIO}; two sets separate along PC1 when the ROC AUC \
         of PC1 is at least {AUC_SEPARATED} (p &lt; {ALPHA}); centroids are close when their distance is below \
         {CLOSE_CENTROIDS} times the within-set RMS spread. A claim needs at least {MIN_SAMPLES} values per \
         group (runs, vectors or path pairs), else its verdict is <i>too few samples</i>. The verdicts use \
         Holm-adjusted p-values (p holm: adjusted over every p-value of the table, which controls the chance of \
         any false difference at {ALPHA}); the raw p-value stays beside it. A claim about path heights or \
         barriers whose pairs have not all converged (docs/algorithms.md §5; records without convergence \
         information count as not converged) gets <i>not converged</i>: a height after a fixed budget is not \
         the path's height."
    )
}

/// The paper's Table I: mean L-BFGS and SGD training loss (train snapshots), mean L-BFGS and SGD
/// test loss (test snapshots), over 48 runs.
/// `None` for a network that is not the paper's.
pub fn paper_table_i(arch: Arch) -> Option<[f64; 4]> {
    match arch {
        Arch::Fcp => Some([1.26e-8, 6.21e-4, 9.69e-2, 8.25e-2]),
        Arch::Lenet => Some([3.35e-8, 1.76e-5, 4.17e-2, 3.89e-2]),
        Arch::Autoencoder => Some([1.69e-2, 4.57e-2, 1.65e-2, 4.52e-2]),
        Arch::Lstm => Some([1.63e-6, 1.35e-2, 1.55e-1, 1.28e-1]),
        Arch::Custom(_) => None,
    }
}

/// A claim's verdict on this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Holds,
    Fails,
    TooFewSamples,
    /// A path-height (or path-barrier) claim whose pairs have not all converged: the heights are those
    /// after the iteration budget, not the paths' heights, so the claim is not judged.
    NotConverged,
}

impl Verdict {
    /// The verdict as the table and `claims.csv` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Fails => "fails",
            Verdict::TooFewSamples => "too few samples",
            Verdict::NotConverged => "not converged",
        }
    }

    /// The verdict [`Verdict::as_str`] writes as `text` (as `claims.json` holds it).
    pub fn parse(text: &str) -> Option<Verdict> {
        [Verdict::Holds, Verdict::Fails, Verdict::TooFewSamples, Verdict::NotConverged]
            .into_iter()
            .find(|v| v.as_str() == text)
    }

    /// The style class of the verdict's table cell in the reports.
    pub fn css_class(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Fails => "fails",
            Verdict::TooFewSamples => "few",
            Verdict::NotConverged => "unconverged",
        }
    }
}

/// How a claim with a p-value is judged, so that the table can judge it again on the Holm-adjusted
/// p-value: it holds when (p < [`ALPHA`]) == `difference_expected` and `otherwise_met` (the part of
/// the rule that is not the test, e.g. kernel PCA's AUC threshold).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TestRule {
    difference_expected: bool,
    otherwise_met: bool,
}

impl TestRule {
    fn verdict(self, p: f64) -> Verdict {
        if self.otherwise_met && (p < ALPHA) == self.difference_expected {
            Verdict::Holds
        } else {
            Verdict::Fails
        }
    }
}

/// How many of a group's path pairs are not known to have converged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unconverged {
    /// Pairs whose record says they had not converged.
    pub not_converged: usize,
    /// Pairs whose record has no convergence information (written before issue 25).
    pub unknown: usize,
}

impl Unconverged {
    /// Counts the records' `converged` fields (None: unknown).
    pub fn count(converged: impl IntoIterator<Item = Option<bool>>) -> Unconverged {
        let mut u = Unconverged::default();
        for c in converged {
            match c {
                Some(true) => {}
                Some(false) => u.not_converged += 1,
                None => u.unknown += 1,
            }
        }
        u
    }

    /// Pairs not known to have converged.
    pub fn total(&self) -> usize {
        self.not_converged + self.unknown
    }
}

/// One row of the claims table.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    /// The claim's identifier, e.g. `heights-sgd-lower` (listed in `docs/claims.md`).
    pub claim: &'static str,
    pub network: String,
    /// The landscape (train/test) or the sets compared.
    pub landscape: String,
    /// What the paper reports.
    pub paper: String,
    /// What this run measured.
    pub run: String,
    pub verdict: Verdict,
    /// The test statistic and effect size behind the verdict.
    pub statistic: String,
    /// The test's raw p-value.
    pub p_value: Option<f64>,
    /// The p-value Holm-adjusted over every p-value of the table ([`table`]); the verdict uses it.
    pub p_holm: Option<f64>,
    /// How the verdict follows from the p-value (claims judged by a test).
    rule: Option<TestRule>,
}

/// What one network's sets, runs and paths provide to the claims; empty vectors where a stage did
/// not run. Set order as [`crate::io::workdir::SETS`]: BFGS-train, BFGS-test, SGD-train, SGD-test.
#[derive(Clone, Debug)]
pub struct Evidence {
    pub arch: Arch,
    /// Training losses of the kept train snapshots: L-BFGS, SGD.
    pub train_losses: [Vec<f64>; 2],
    /// Test losses of the kept test snapshots: L-BFGS, SGD.
    pub test_losses: [Vec<f64>; 2],
    /// Each vector's standard deviation of weights, per set.
    pub vector_sigma: [Vec<f64>; 4],
    /// Fig. 5 (BFGS-train vs SGD-test) and Fig. S3 (BFGS-test vs SGD-test).
    pub pairs: [SetPair; 2],
    /// Path heights on the training landscape, per set.
    pub heights_train: [Vec<f64>; 4],
    /// Path barriers (height minus the mean of the two endpoints' losses) on the training landscape,
    /// per set.
    pub barriers_train: [Vec<f64>; 4],
    /// Path heights on the test landscape: BFGS-test, SGD-test.
    pub heights_test: [Vec<f64>; 2],
    /// Pairs not known to have converged, per set as `heights_train` and `heights_test`.
    pub unconverged_train: [Unconverged; 4],
    pub unconverged_test: [Unconverged; 2],
    /// Aligned pairs on the training landscape (`paths --align`, `reproduce --align`), if any.
    pub alignment: Option<AlignmentEvidence>,
    /// Hessian sharpness of the train snapshots (the minima): top eigenvalue λ_1 and trace per vector,
    /// L-BFGS then SGD (the probes stage; empty where it did not run).
    pub sharpness: [Sharpness; 2],
}

/// The Hessian's top eigenvalue and trace at each vector of a set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sharpness {
    pub lambda_1: Vec<f64>,
    pub trace: Vec<f64>,
}

impl Evidence {
    /// Evidence of a network for which nothing ran yet: every claim has too few samples.
    pub fn empty(arch: Arch) -> Evidence {
        Evidence {
            arch,
            train_losses: Default::default(),
            test_losses: Default::default(),
            vector_sigma: Default::default(),
            pairs: Default::default(),
            heights_train: Default::default(),
            barriers_train: Default::default(),
            heights_test: Default::default(),
            unconverged_train: Default::default(),
            unconverged_test: Default::default(),
            alignment: None,
            sharpness: Default::default(),
        }
    }
}

/// The training landscape's BFGS-train and SGD-train pairs after weight matching.
#[derive(Clone, Debug)]
pub struct AlignmentEvidence {
    /// Barriers of the optimised paths between aligned vectors: L-BFGS, SGD.
    pub barriers: [Vec<f64>; 2],
    /// Those pairs not known to have converged: L-BFGS, SGD.
    pub unconverged: [Unconverged; 2],
    /// Median barrier of L-BFGS pairs minus SGD pairs', before and after alignment.
    pub gap: BarrierGap,
}

/// What the L2-distance and kernel-PCA figures measure for an L-BFGS set against an SGD set.
#[derive(Clone, Debug, Default)]
pub struct SetPair {
    /// Distances of each set's vectors to the common origin: L-BFGS, SGD.
    pub distances: [Vec<f64>; 2],
    /// Centroid distance over the root-mean-square distance of vectors to their own set's centroid.
    pub centroid_ratio: Option<f64>,
    /// PC1 of each set's vectors in their joint kernel PCA: L-BFGS, SGD.
    pub pc1: [Vec<f64>; 2],
}

const FIG5: &str = "BFGS-train vs SGD-test";
const FIGS3: &str = "BFGS-test vs SGD-test";

fn g(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v != 0.0 && (v.abs() < 1e-2 || v.abs() >= 1e4) {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}")
    }
}

fn too_few(x: &[f64], y: &[f64]) -> bool {
    x.len() < MIN_SAMPLES || y.len() < MIN_SAMPLES
}

/// Whether the paper finds the optimizers' solutions different (paths, sharpness): for its three
/// classifiers, not for its autoencoder. A user's network is judged against the paper's finding for
/// networks with its head (a classifier's or a reconstruction's).
fn differences_expected(arch: Arch) -> bool {
    match arch {
        Arch::Autoencoder => false,
        Arch::Fcp | Arch::Lenet | Arch::Lstm => true,
        Arch::Custom(m) => m.is_classifier(),
    }
}

/// The frame of a claim row; verdict, run, statistic and p-value are filled in by the rule. A user's
/// network has no column in the paper: its row says what was tested instead.
fn row(claim: &'static str, arch: Arch, landscape: &str, paper: String) -> Claim {
    let paper = if arch.is_paper() { paper } else { format!("— (not in the paper; tested: {paper})") };
    Claim {
        claim,
        network: arch.title().to_string(),
        landscape: landscape.to_string(),
        paper,
        run: String::new(),
        verdict: Verdict::TooFewSamples,
        statistic: String::new(),
        p_value: None,
        p_holm: None,
        rule: None,
    }
}

/// A one-sided U test of x against y: the claim holds when the test's significance agrees with
/// `expected` (the paper reports a difference, or reports none).
fn directional(mut c: Claim, (x, y): (&[f64], &[f64]), alt: Alternative, expected: bool, names: (&str, &str)) -> Claim {
    c.run =
        format!("median {} {} vs {} {} (n = {}, {})", names.0, g(median(x)), names.1, g(median(y)), x.len(), y.len());
    if too_few(x, y) {
        return c;
    }
    let Some(t) = mann_whitney_u(x, y, alt) else {
        c.run.push_str("; non-finite values");
        return c;
    };
    let r = rank_biserial(x, y).unwrap_or(f64::NAN);
    c.statistic = format!("U = {}, median difference {}, rank-biserial r = {}", t.u, g(median(x) - median(y)), g(r));
    c.p_value = Some(t.p_value);
    let rule = TestRule { difference_expected: expected, otherwise_met: true };
    c.rule = Some(rule);
    c.verdict = rule.verdict(t.p_value);
    c
}

/// A claim about the paths of two groups of pairs: `not converged` instead of a verdict when any pair
/// of either group is not known to have converged (a claim with too few samples keeps that verdict);
/// the run column says how many.
fn paths_converged(mut c: Claim, groups: [(&str, Unconverged, usize); 2]) -> Claim {
    if c.verdict == Verdict::TooFewSamples || groups.iter().all(|g| g.1.total() == 0) {
        return c;
    }
    c.verdict = Verdict::NotConverged;
    let counts: Vec<String> = groups.iter().map(|(name, u, n)| format!("{name} {} of {n}", u.total())).collect();
    let _ = write!(c.run, "; pairs not converged: {}", counts.join(", "));
    let unknown: usize = groups.iter().map(|g| g.1.unknown).sum();
    if unknown > 0 {
        let _ = write!(c.run, " ({unknown} without convergence information)");
    }
    c
}

fn mean(v: &[f64]) -> f64 {
    crate::analysis::stats::mean(v)
}

/// Table I: L-BFGS training loss below SGD's (all networks); test losses comparable (classifiers).
fn table_i(e: &Evidence) -> Vec<Claim> {
    let p = paper_table_i(e.arch);
    let [lb, sgd] = &e.train_losses;
    let paper = |text: &dyn Fn(&[f64; 4]) -> String| p.as_ref().map_or("L-BFGS lower".to_string(), text);
    let mut train = directional(
        row(
            "table1-train-lbfgs-lower",
            e.arch,
            "train",
            paper(&|p| format!("ratio {} ({} / {})", g(p[0] / p[1]), g(p[0]), g(p[1]))),
        ),
        (lb, sgd),
        Alternative::Less,
        true,
        ("L-BFGS", "SGD"),
    );
    let _ = write!(train.run, "; ratio of means {}", g(mean(lb) / mean(sgd)));
    let mut out = vec![train];
    if e.arch.is_classifier() {
        let [lb, sgd] = &e.test_losses;
        let text = paper(&|p| format!("ratio {}", g(p[2] / p[3])));
        let mut c = row("table1-test-comparable", e.arch, "test", text.replace("L-BFGS lower", "comparable"));
        let ratio = mean(lb) / mean(sgd);
        c.run = format!("ratio of means {} ({} / {})", g(ratio), g(mean(lb)), g(mean(sgd)));
        c.statistic = format!("L-BFGS / SGD mean test loss, comparable within a factor {COMPARABLE_RATIO}");
        if !too_few(lb, sgd) && ratio.is_finite() {
            let within = (1.0 / COMPARABLE_RATIO..=COMPARABLE_RATIO).contains(&ratio);
            c.verdict = if within { Verdict::Holds } else { Verdict::Fails };
        }
        out.push(c);
    }
    out
}

/// Path heights: SGD below L-BFGS on both landscapes (not for the autoencoder); L-BFGS train-set
/// heights above test-set heights on the training landscape (only FCP and the LSTM).
fn heights(e: &Evidence) -> Vec<Claim> {
    let lower = differences_expected(e.arch);
    let paper = if lower { "SGD lower" } else { "SGD not lower" }.to_string();
    let (h, t, b) = (&e.heights_train, &e.heights_test, &e.barriers_train);
    // the paper reports this for two of its networks, and says nothing of others
    let above = matches!(e.arch, Arch::Fcp | Arch::Lstm);
    let (u, ut) = (&e.unconverged_train, &e.unconverged_test);
    let row = |claim, landscape, paper| row(claim, e.arch, landscape, paper);
    let (sgd_train, sgd_test) = (("SGD-train", "BFGS-train"), ("SGD-test", "BFGS-test"));
    let (less, greater) = ((Alternative::Less, lower), (Alternative::Greater, above));
    let mut rows = vec![
        paths_claim(row("heights-sgd-lower", "train", paper.clone()), (&h[2], &h[0]), (u[2], u[0]), less, sgd_train),
        // the heights include the endpoints' own losses, which differ between the optimizers (L-BFGS
        // minima sit lower): the barriers compare the rise above the endpoints alone
        paths_claim(
            row("barriers-sgd-lower", "train", format!("{paper} (as heights; the paper reports no barriers)")),
            (&b[2], &b[0]),
            (u[2], u[0]),
            less,
            sgd_train,
        ),
        paths_claim(row("heights-sgd-lower", "test", paper), (&t[1], &t[0]), (ut[1], ut[0]), less, sgd_test),
    ];
    if !e.arch.is_paper() {
        return rows;
    }
    rows.push(paths_claim(
        row(
            "heights-lbfgs-train-above-test",
            "train",
            if above { "BFGS-train higher" } else { "BFGS-train not higher" }.into(),
        ),
        (&h[0], &h[1]),
        (u[0], u[1]),
        greater,
        ("BFGS-train", "BFGS-test"),
    ));
    rows
}

/// A claim on the paths of two sets: a one-sided U test of `x` against `y` whose difference is
/// `expected` or not ([`directional`]), left unjudged where a pair of either set has not converged
/// ([`paths_converged`]).
fn paths_claim(
    c: Claim,
    (x, y): (&[f64], &[f64]),
    (ux, uy): (Unconverged, Unconverged),
    (alt, expected): (Alternative, bool),
    names: (&str, &str),
) -> Claim {
    paths_converged(directional(c, (x, y), alt, expected, names), [(names.0, ux, x.len()), (names.1, uy, y.len())])
}

/// Table S1: L-BFGS weights spread wider than SGD's, for train and for test snapshots.
fn weight_spread(e: &Evidence) -> Vec<Claim> {
    let s = &e.vector_sigma;
    [("train snapshots", 0, 2, "BFGS-train", "SGD-train"), ("test snapshots", 1, 3, "BFGS-test", "SGD-test")]
        .into_iter()
        .map(|(what, a, b, na, nb)| {
            let mut c = directional(
                row("tableS1-lbfgs-sigma-higher", e.arch, what, "σ(L-BFGS) > σ(SGD)".into()),
                (&s[a], &s[b]),
                Alternative::Greater,
                true,
                (na, nb),
            );
            c.run = format!("per-vector σ: {c}", c = c.run.replacen("median ", "median σ ", 1));
            c
        })
        .collect()
}

/// Fig. 5 / S3: L-BFGS vectors farther from the common origin; centroids close against the spread.
fn distances(e: &Evidence) -> Vec<Claim> {
    let mut out = Vec::new();
    for (pair, sets) in e.pairs.iter().zip([FIG5, FIGS3]) {
        let [lb, sgd] = &pair.distances;
        out.push(directional(
            row("l2-lbfgs-farther", e.arch, sets, "L-BFGS farther".into()),
            (lb, sgd),
            Alternative::Greater,
            true,
            ("L-BFGS", "SGD"),
        ));
        let mut c = row("l2-centroids-close", e.arch, sets, "centroid distance small against the spread".into());
        if let Some(ratio) = pair.centroid_ratio {
            c.run = format!("centroid distance / within-set RMS spread = {}", g(ratio));
            c.statistic = format!("close when below {CLOSE_CENTROIDS}");
            if !too_few(lb, sgd) && ratio.is_finite() {
                c.verdict = if ratio < CLOSE_CENTROIDS { Verdict::Holds } else { Verdict::Fails };
            }
        }
        out.push(c);
    }
    out
}

/// PC1's separation of an L-BFGS set from an SGD set: max(AUC, 1 − AUC), the sign of a kernel PCA
/// component being arbitrary.
fn separation(pair: &SetPair) -> Option<f64> {
    roc_auc(&pair.pc1[0], &pair.pc1[1]).map(|a| a.max(1.0 - a))
}

/// Fig. 6 / S4: BFGS-train and SGD-test separate along PC1; weaker for the test sets in FCP and LeNet.
fn kernel_pca(e: &Evidence) -> Vec<Claim> {
    let [fig6, figs4] = &e.pairs;
    let mut c = row("kpca-pc1-separates", e.arch, FIG5, "separated along PC1".into());
    if let (Some(auc), Some(t)) = (separation(fig6), mann_whitney_u(&fig6.pc1[0], &fig6.pc1[1], Alternative::TwoSided))
    {
        c.run = format!("PC1 AUC {auc:.3} (n = {}, {})", fig6.pc1[0].len(), fig6.pc1[1].len());
        if !too_few(&fig6.pc1[0], &fig6.pc1[1]) {
            c.statistic = format!("U = {}, separated when AUC ≥ {AUC_SEPARATED} and p < {ALPHA}", t.u);
            c.p_value = Some(t.p_value);
            let rule = TestRule { difference_expected: true, otherwise_met: auc >= AUC_SEPARATED };
            c.rule = Some(rule);
            c.verdict = rule.verdict(t.p_value);
        }
    }
    let mut out = vec![c];
    if matches!(e.arch, Arch::Fcp | Arch::Lenet) {
        let mut c = row("kpca-test-sets-weaker", e.arch, FIGS3, "weaker than BFGS-train vs SGD-test".into());
        if let (Some(train), Some(test)) = (separation(fig6), separation(figs4)) {
            c.run = format!("PC1 AUC {test:.3} vs {train:.3}");
            c.statistic = "AUC(BFGS-test vs SGD-test) < AUC(BFGS-train vs SGD-test)".into();
            let enough = [&fig6.pc1, &figs4.pc1].iter().all(|p| !too_few(&p[0], &p[1]));
            if enough {
                c.verdict = if test < train { Verdict::Holds } else { Verdict::Fails };
            }
        }
        out.push(c);
    }
    out
}

/// Beyond the paper: the SGD-below-L-BFGS barrier gap survives weight matching (classifiers; only
/// when the paths were aligned).
fn alignment(e: &Evidence) -> Vec<Claim> {
    let Some(a) = e.alignment.as_ref().filter(|_| e.arch.is_classifier()) else { return Vec::new() };
    let mut c = directional(
        row("barrier-gap-survives-alignment", e.arch, "train", "— (the paper does not align)".into()),
        (&a.barriers[1], &a.barriers[0]),
        Alternative::Less,
        true,
        ("SGD-train", "BFGS-train"),
    );
    let gap = &a.gap;
    let _ = write!(
        c.run,
        "; median barrier gap L-BFGS − SGD: straight line {} unaligned, {} aligned; optimised path {} aligned",
        g(gap.unaligned_straight),
        g(gap.aligned_straight),
        g(gap.aligned_path)
    );
    let n = |i: usize| a.barriers[i].len();
    vec![paths_converged(c, [("SGD-train", a.unconverged[1], n(1)), ("BFGS-train", a.unconverged[0], n(0))])]
}

/// Beyond the paper, which infers flatness from path heights: SGD's minima are flatter, measured by the
/// Hessian's top eigenvalue and its trace at each train snapshot (not for the autoencoder, whose path
/// heights the paper finds no different).
fn sharpness(e: &Evidence) -> Vec<Claim> {
    let flatter = differences_expected(e.arch);
    // the paper argues this from path heights without measuring it
    let paper = if flatter { "SGD flatter (argued, not measured)" } else { "no difference (argued, not measured)" };
    let [lb, sgd] = &e.sharpness;
    [("top eigenvalue", &sgd.lambda_1, &lb.lambda_1, "λ_1"), ("trace", &sgd.trace, &lb.trace, "trace")]
        .into_iter()
        .map(|(what, x, y, name)| {
            let mut c = directional(
                row("sharpness-sgd-flatter", e.arch, what, paper.into()),
                (x, y),
                Alternative::Less,
                flatter,
                ("SGD-train", "BFGS-train"),
            );
            c.run = c.run.replacen("median ", &format!("median {name} "), 1);
            c
        })
        .collect()
}

/// Every claim row of one network, in the order of `docs/claims.md`, judged as a table of its own
/// ([`table`] of this network alone: Holm's adjustment over these rows' p-values).
pub fn claims(e: &Evidence) -> Vec<Claim> {
    table(std::slice::from_ref(e))
}

/// The claims table of several networks: each network's rows in turn, every p-value Holm-adjusted over
/// all the rows that have one ([`holm`]; the family is the whole table, `not converged` rows
/// included), and each verdict that follows from a test judged on the adjusted p-value.
pub fn table(evidence: &[Evidence]) -> Vec<Claim> {
    let mut rows: Vec<Claim> = evidence
        .iter()
        .flat_map(|e| {
            [table_i(e), heights(e), weight_spread(e), distances(e), kernel_pca(e), sharpness(e), alignment(e)].concat()
        })
        .collect();
    let tested: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].p_value.is_some()).collect();
    let raw: Vec<f64> = tested.iter().map(|&i| rows[i].p_value.expect("tested rows have a p-value")).collect();
    for (&i, adjusted) in tested.iter().zip(holm(&raw)) {
        let c = &mut rows[i];
        c.p_holm = Some(adjusted);
        if let (Some(rule), Verdict::Holds | Verdict::Fails) = (c.rule, c.verdict) {
            c.verdict = rule.verdict(adjusted);
        }
    }
    rows
}

/// The CSV header of `report/claims.csv`.
pub const CSV_HEADER: &str = "claim,network,landscape,paper,run,verdict,statistic,p_value,p_holm";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `report/claims.csv`: one line per claim, fields quoted where they hold commas (RFC 4180).
pub fn to_csv(claims: &[Claim]) -> String {
    let mut s = format!("{CSV_HEADER}\n");
    for c in claims {
        let fields = [
            c.claim.to_string(),
            c.network.clone(),
            c.landscape.clone(),
            c.paper.clone(),
            c.run.clone(),
            c.verdict.as_str().to_string(),
            c.statistic.clone(),
            c.p_value.map_or(String::new(), |p| format!("{p:.3e}")),
            c.p_holm.map_or(String::new(), |p| format!("{p:.3e}")),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        s.push_str(&line.join(","));
        s.push('\n');
    }
    s
}

/// One row of `report/claims.json`: a [`Claim`] as written, and as read back by the regime map
/// (`crate::report::regime`), which gathers the verdicts of one study per training-set size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimRow {
    pub claim: String,
    pub network: String,
    pub landscape: String,
    pub paper: String,
    pub run: String,
    /// As [`Verdict::as_str`] writes it.
    pub verdict: String,
    pub statistic: String,
    pub p_value: Option<f64>,
    pub p_holm: Option<f64>,
}

impl From<&Claim> for ClaimRow {
    fn from(c: &Claim) -> ClaimRow {
        ClaimRow {
            claim: c.claim.to_string(),
            network: c.network.clone(),
            landscape: c.landscape.clone(),
            paper: c.paper.clone(),
            run: c.run.clone(),
            verdict: c.verdict.as_str().to_string(),
            statistic: c.statistic.clone(),
            p_value: c.p_value,
            p_holm: c.p_holm,
        }
    }
}

/// `report/claims.json`: the rows of `claims.csv` as a JSON array of [`ClaimRow`]s.
pub fn to_json(claims: &[Claim]) -> Result<String, serde_json::Error> {
    let rows: Vec<ClaimRow> = claims.iter().map(ClaimRow::from).collect();
    Ok(serde_json::to_string_pretty(&rows)? + "\n")
}
