//! The claims table: each finding of the paper, the paper's value beside this run's, a verdict and its
//! evidence. The verdict rules are written out in `docs/claims.md`; the statistics are in
//! [`crate::analysis::stats`].

mod rules;

use serde::{Deserialize, Serialize};

use crate::analysis::stats::holm;
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
            use rules::*;
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
