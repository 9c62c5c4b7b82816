//! The verdict rule of each claim row (`docs/claims.md`): which samples are compared, in which
//! direction, and what the paper's column says.

use std::fmt::Write as _;

use super::{
    paper_table_i, Claim, Evidence, SetPair, TestRule, Unconverged, Verdict, ALPHA, AUC_SEPARATED, CLOSE_CENTROIDS,
    COMPARABLE_RATIO, MIN_SAMPLES,
};
use crate::analysis::stats::{mann_whitney_u, median, rank_biserial, roc_auc, Alternative};
use crate::model::Arch;

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
pub(super) fn table_i(e: &Evidence) -> Vec<Claim> {
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
pub(super) fn heights(e: &Evidence) -> Vec<Claim> {
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
pub(super) fn weight_spread(e: &Evidence) -> Vec<Claim> {
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
pub(super) fn distances(e: &Evidence) -> Vec<Claim> {
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
pub(super) fn kernel_pca(e: &Evidence) -> Vec<Claim> {
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
pub(super) fn alignment(e: &Evidence) -> Vec<Claim> {
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
pub(super) fn sharpness(e: &Evidence) -> Vec<Claim> {
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
