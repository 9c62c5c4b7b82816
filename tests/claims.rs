//! The claims table's verdict rules on synthetic evidence: each claim holds, fails, or has too few
//! samples as `docs/claims.md` says.

use losscape::analysis::stats::holm;
use losscape::model::Arch;
use losscape::report::claims::{
    claims, table, to_csv, Claim, Evidence, SetPair, Sharpness, Unconverged, Verdict, CSV_HEADER,
};

/// n values spread evenly from `lo` upwards in steps of `step`.
fn values(n: usize, lo: f64, step: f64) -> Vec<f64> {
    (0..n).map(|i| lo + step * i as f64).collect()
}

/// Evidence in which every claim of the paper holds for a classifier, with n values per group.
fn as_in_the_paper(arch: Arch, n: usize) -> Evidence {
    let pair = |far: f64| SetPair {
        distances: [values(n, 10.0, 0.1), values(n, 5.0, 0.1)],
        centroid_ratio: Some(0.3),
        pc1: [values(n, far, 0.01), values(n, -far, 0.01)],
    };
    Evidence {
        arch,
        train_losses: [values(n, 1e-8, 1e-9), values(n, 1e-3, 1e-4)],
        test_losses: [values(n, 0.09, 0.001), values(n, 0.08, 0.001)],
        vector_sigma: [values(n, 0.7, 0.01), values(n, 0.69, 0.01), values(n, 0.3, 0.01), values(n, 0.29, 0.01)],
        // the test-set separation (Fig. S4) weaker than Fig. 6's: the groups overlap
        pairs: [pair(1.0), SetPair { pc1: [values(n, 0.0, 0.02), values(n, 0.03, 0.02)], ..pair(1.0) }],
        // BFGS-train above BFGS-test (FCP, LSTM), SGD below both
        heights_train: [values(n, 2.0, 0.1), values(n, 1.0, 0.1), values(n, 0.1, 0.01), values(n, 0.1, 0.01)],
        heights_test: [values(n, 1.0, 0.1), values(n, 0.2, 0.01)],
        // the same for the barriers (heights minus the endpoints' mean loss)
        barriers_train: [values(n, 0.2, 0.01), values(n, 0.1, 0.01), values(n, 0.01, 0.001), values(n, 0.01, 0.001)],
        // every path converged
        unconverged_train: Default::default(),
        unconverged_test: Default::default(),
        alignment: None,
        // L-BFGS minima sharper than SGD's: λ_1 and trace about ten times larger
        sharpness: [
            Sharpness { lambda_1: values(n, 10.0, 1.0), trace: values(n, 100.0, 5.0) },
            Sharpness { lambda_1: values(n, 1.0, 0.1), trace: values(n, 10.0, 1.0) },
        ],
    }
}

fn verdicts(c: &[Claim]) -> Vec<(&'static str, String, Verdict)> {
    c.iter().map(|c| (c.claim, c.landscape.clone(), c.verdict)).collect()
}

#[test]
fn every_claim_holds_on_evidence_like_the_papers() {
    let c = claims(&as_in_the_paper(Arch::Fcp, 8));
    assert_eq!(c.len(), 16, "{:#?}", verdicts(&c));
    assert!(c.iter().all(|c| c.verdict == Verdict::Holds), "{:#?}", verdicts(&c));
    // directional claims carry their p-value; an exact one-sided test of 8 vs 8 separated values
    let h = c.iter().find(|c| c.claim == "heights-sgd-lower" && c.landscape == "train").unwrap();
    assert!((h.p_value.unwrap() - 1.0 / 12870.0).abs() < 1e-12, "{h:?}");
    assert!(h.statistic.contains("U = 0"), "{h:?}");
}

#[test]
fn claims_fail_when_the_run_contradicts_the_paper() {
    let mut e = as_in_the_paper(Arch::Lstm, 8);
    // SGD paths higher than L-BFGS's; SGD training loss below L-BFGS's; test losses 10x apart
    e.heights_train.swap(0, 2);
    e.train_losses.swap(0, 1);
    e.test_losses[0] = values(8, 0.9, 0.01);
    // the sets overlap along PC1
    e.pairs[0].pc1 = [values(8, 0.0, 0.02), values(8, 0.01, 0.02)];
    e.pairs[0].centroid_ratio = Some(3.0);
    let c = claims(&e);
    let verdict = |name: &str, landscape: &str| {
        c.iter().find(|c| c.claim == name && c.landscape == landscape).map(|c| c.verdict).unwrap()
    };
    assert_eq!(verdict("heights-sgd-lower", "train"), Verdict::Fails);
    assert_eq!(verdict("heights-sgd-lower", "test"), Verdict::Holds);
    assert_eq!(verdict("table1-train-lbfgs-lower", "train"), Verdict::Fails);
    assert_eq!(verdict("table1-test-comparable", "test"), Verdict::Fails);
    assert_eq!(verdict("kpca-pc1-separates", "BFGS-train vs SGD-test"), Verdict::Fails);
    assert_eq!(verdict("l2-centroids-close", "BFGS-train vs SGD-test"), Verdict::Fails);
}

#[test]
fn claims_of_no_difference_hold_when_none_is_found() {
    // the autoencoder: the paper finds SGD heights not lower; LeNet: BFGS-train not above BFGS-test
    let mut e = as_in_the_paper(Arch::Autoencoder, 8);
    let c = claims(&e);
    let of = |c: &[Claim], name: &str| c.iter().find(|c| c.claim == name).map(|c| c.verdict).unwrap();
    assert_eq!(of(&c, "heights-sgd-lower"), Verdict::Fails, "SGD clearly lower contradicts the paper's autoencoder");
    e.heights_train[2] = e.heights_train[0].clone();
    e.heights_test[1] = e.heights_test[0].clone();
    assert_eq!(of(&claims(&e), "heights-sgd-lower"), Verdict::Holds);
    assert!(!claims(&e).iter().any(|c| c.claim == "table1-test-comparable"), "a classifier claim");
    let mut e = as_in_the_paper(Arch::Lenet, 8);
    assert_eq!(of(&claims(&e), "heights-lbfgs-train-above-test"), Verdict::Fails);
    e.heights_train[1] = e.heights_train[0].clone();
    assert_eq!(of(&claims(&e), "heights-lbfgs-train-above-test"), Verdict::Holds);
}

#[test]
fn few_samples_give_no_verdict() {
    let c = claims(&as_in_the_paper(Arch::Fcp, 4));
    assert_eq!(c.len(), 16);
    assert!(c.iter().all(|c| c.verdict == Verdict::TooFewSamples), "{:#?}", verdicts(&c));
    assert!(c.iter().all(|c| c.p_value.is_none()), "{c:#?}");
    // nothing ran at all: every row still present, none judged
    let empty = Evidence::empty(Arch::Lenet);
    let c = claims(&empty);
    assert_eq!(c.len(), 16);
    assert!(c.iter().all(|c| c.verdict == Verdict::TooFewSamples));
}

#[test]
fn the_csv_has_the_documented_columns_and_quotes_commas() {
    let c = claims(&as_in_the_paper(Arch::Fcp, 8));
    let csv = to_csv(&c);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER));
    assert_eq!(CSV_HEADER, "claim,network,landscape,paper,run,verdict,statistic,p_value,p_holm");
    let row = lines.find(|l| l.starts_with("heights-sgd-lower,FCP,train,")).unwrap();
    assert!(row.contains(",holds,\"U = 0, median difference"), "{row}");
    // raw p = 1/12870 (8 against 8, perfectly separated, exact); eleven of the twelve p-values are
    // 1/12870 and kernel PCA's two-sided one 2/12870, so Holm gives every row 12/12870
    assert!(row.ends_with(",7.770e-5,9.324e-4"), "{row}");
    assert_eq!(csv.lines().count(), 1 + 16);
}

#[test]
fn the_barrier_gap_row_appears_with_aligned_paths_and_follows_the_test() {
    use losscape::path::alignment::BarrierGap;
    use losscape::report::claims::AlignmentEvidence;
    let mut e = as_in_the_paper(Arch::Fcp, 8);
    assert!(!claims(&e).iter().any(|c| c.claim == "barrier-gap-survives-alignment"), "no aligned paths, no row");
    let gap = BarrierGap { unaligned_straight: 5.0, aligned_straight: 0.5, aligned_path: 0.1 };
    e.alignment = Some(AlignmentEvidence {
        barriers: [values(8, 0.5, 0.01), values(8, 0.1, 0.01)],
        unconverged: Default::default(),
        gap,
    });
    let row = |e: &Evidence| claims(e).into_iter().find(|c| c.claim == "barrier-gap-survives-alignment").unwrap();
    let c = row(&e);
    assert_eq!(c.verdict, Verdict::Holds, "{c:?}");
    assert!(c.run.contains("optimised path 0.100 aligned"), "{c:?}");
    // after alignment the SGD barriers are no lower: the gap did not survive
    e.alignment.as_mut().unwrap().barriers[1] = values(8, 0.6, 0.01);
    assert_eq!(row(&e).verdict, Verdict::Fails);
    // one unconverged aligned L-BFGS pair: no verdict on the barriers
    e.alignment.as_mut().unwrap().barriers[1] = values(8, 0.1, 0.01);
    e.alignment.as_mut().unwrap().unconverged[0] = Unconverged { not_converged: 1, unknown: 0 };
    let c = row(&e);
    assert_eq!(c.verdict, Verdict::NotConverged, "{c:?}");
    assert!(c.run.contains("pairs not converged: SGD-train 0 of 8, BFGS-train 1 of 8"), "{c:?}");
    e.alignment.as_mut().unwrap().barriers = [values(3, 0.5, 0.01), values(3, 0.1, 0.01)];
    assert_eq!(row(&e).verdict, Verdict::TooFewSamples);
    // the paper claims no gap for the autoencoder: no row
    let mut ae = as_in_the_paper(Arch::Autoencoder, 8);
    ae.alignment = e.alignment.clone();
    assert!(!claims(&ae).iter().any(|c| c.claim == "barrier-gap-survives-alignment"));
}

#[test]
fn sharpness_rows_judge_sgd_flatter_by_eigenvalue_and_trace() {
    let row = |e: &Evidence, what: &str| {
        claims(e).into_iter().find(|c| c.claim == "sharpness-sgd-flatter" && c.landscape == what).unwrap()
    };
    let mut e = as_in_the_paper(Arch::Lenet, 8);
    let c = row(&e, "top eigenvalue");
    assert_eq!(c.verdict, Verdict::Holds, "{c:?}");
    assert!(c.run.starts_with("median λ_1 SGD-train 1.350 vs BFGS-train 13.500 (n = 8, 8)"), "{c:?}");
    // sharper SGD minima contradict the claim; one that cannot be told apart fails it too
    e.sharpness.swap(0, 1);
    assert_eq!(row(&e, "top eigenvalue").verdict, Verdict::Fails);
    e.sharpness[1].trace = e.sharpness[0].trace.clone();
    assert_eq!(row(&e, "trace").verdict, Verdict::Fails);
    // the autoencoder: no difference expected
    let mut e = as_in_the_paper(Arch::Autoencoder, 8);
    assert_eq!(row(&e, "trace").verdict, Verdict::Fails);
    e.sharpness[1] = e.sharpness[0].clone();
    assert_eq!(row(&e, "trace").verdict, Verdict::Holds);
    // fewer than five minima measured: no verdict
    e.sharpness[0].lambda_1.truncate(4);
    assert_eq!(row(&e, "top eigenvalue").verdict, Verdict::TooFewSamples);
}

#[test]
fn holm_adjusts_as_computed_by_hand() {
    // sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    // (R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02)
    let got = holm(&[0.01, 0.04, 0.03, 0.005]);
    for (g, w) in got.iter().zip([0.03, 0.06, 0.06, 0.02]) {
        assert!((g - w).abs() < 1e-15, "{got:?}");
    }
    // capped at 1; ties share one value; one p-value is its own adjustment
    assert_eq!(holm(&[0.5, 0.6]), vec![1.0, 1.0]);
    let tied = holm(&[0.02, 0.5, 0.02]);
    assert!((tied[0] - 0.06).abs() < 1e-15 && tied[0] == tied[2] && tied[1] == 0.5, "{tied:?}");
    assert_eq!(holm(&[0.3]), vec![0.3]);
    assert!(holm(&[]).is_empty());
}

#[test]
fn verdicts_use_holm_adjusted_p_values_over_the_whole_table() {
    let mut e = as_in_the_paper(Arch::Fcp, 8);
    // SGD-train heights lower than BFGS-train's in 64 - 14 of the 64 pairs: exact one-sided p = 418/12870
    e.heights_train[0] = values(8, 2.0, 1.0);
    e.heights_train[2] = vec![0.1, 0.2, 0.3, 2.5, 3.5, 4.5, 5.5, 5.6];
    // no difference in the Hessian traces: the largest p-value of the table
    e.sharpness[1].trace = e.sharpness[0].trace.clone();
    let c = claims(&e);
    let find = |name: &str, landscape: &str| c.iter().find(|c| c.claim == name && c.landscape == landscape).unwrap();
    let h = find("heights-sgd-lower", "train");
    let raw = 418.0 / 12870.0;
    assert!((h.p_value.unwrap() - raw).abs() < 1e-12, "{h:?}");
    // the second largest of 12 p-values: multiplied by 2, past alpha — the raw p alone would hold
    assert!((h.p_holm.unwrap() - 2.0 * raw).abs() < 1e-12, "{h:?}");
    assert_eq!(h.verdict, Verdict::Fails, "{h:?}");
    let trace = find("sharpness-sgd-flatter", "trace");
    let p = trace.p_value.unwrap();
    assert!(p > 2.0 * raw && trace.p_holm == Some(p), "the largest keeps its own p: {trace:?}");
    // the nine smallest (1/12870) get 12/12870, kernel PCA's 2/12870 x 3 the running max of 12/12870
    let small = find("table1-train-lbfgs-lower", "train");
    assert!((small.p_holm.unwrap() - 12.0 / 12870.0).abs() < 1e-15, "{small:?}");
    assert_eq!(small.verdict, Verdict::Holds);
    // over two networks the family doubles: the same row of each is adjusted over 24 p-values
    let both = table(&[as_in_the_paper(Arch::Fcp, 8), as_in_the_paper(Arch::Lstm, 8)]);
    assert_eq!(both.len(), 31);
    let adjusted: Vec<f64> = both.iter().filter_map(|c| c.p_holm).collect();
    assert_eq!(adjusted.len(), 24);
    assert!(adjusted.iter().all(|&p| (p - 24.0 / 12870.0).abs() < 1e-15), "{adjusted:?}");
    assert!(both.iter().all(|c| c.verdict == Verdict::Holds), "{:#?}", verdicts(&both));
    // rows without a test have no adjusted p-value either
    assert!(c.iter().all(|c| c.p_value.is_some() == c.p_holm.is_some()));
}

#[test]
fn height_claims_on_unconverged_paths_are_not_judged() {
    let mut e = as_in_the_paper(Arch::Fcp, 8);
    e.unconverged_train[2] = Unconverged { not_converged: 3, unknown: 0 };
    let c = claims(&e);
    let find = |name: &str, landscape: &str| c.iter().find(|c| c.claim == name && c.landscape == landscape).unwrap();
    let h = find("heights-sgd-lower", "train");
    assert_eq!(h.verdict, Verdict::NotConverged, "{h:?}");
    assert_eq!(h.verdict.as_str(), "not converged");
    assert!(h.run.ends_with("; pairs not converged: SGD-train 3 of 8, BFGS-train 0 of 8"), "{h:?}");
    assert!(h.p_value.is_some() && h.p_holm.is_some(), "the test is still reported: {h:?}");
    // the other height claims compare sets whose pairs all converged
    assert_eq!(find("heights-sgd-lower", "test").verdict, Verdict::Holds);
    assert_eq!(find("heights-lbfgs-train-above-test", "train").verdict, Verdict::Holds);
    // records without convergence information (written before issue 25) count as not converged
    let mut e = as_in_the_paper(Arch::Fcp, 8);
    e.unconverged_train[1] = Unconverged::count([Some(true), None, Some(true)]);
    e.unconverged_test[0] = Unconverged::count([Some(false), Some(true)]);
    let c = claims(&e);
    let find = |name: &str, landscape: &str| c.iter().find(|c| c.claim == name && c.landscape == landscape).unwrap();
    let above = find("heights-lbfgs-train-above-test", "train");
    assert_eq!(above.verdict, Verdict::NotConverged, "{above:?}");
    assert!(above.run.contains("BFGS-test 1 of 8 (1 without convergence information)"), "{above:?}");
    assert_eq!(find("heights-sgd-lower", "test").verdict, Verdict::NotConverged);
    assert_eq!(find("heights-sgd-lower", "train").verdict, Verdict::Holds);
    // too few pairs stays too few pairs: there is nothing to judge either way
    let mut e = as_in_the_paper(Arch::Fcp, 4);
    e.unconverged_train = [Unconverged { not_converged: 4, unknown: 0 }; 4];
    assert!(claims(&e).iter().all(|c| c.verdict == Verdict::TooFewSamples));
}

#[test]
fn barriers_judge_the_rise_above_the_endpoints_apart_from_the_heights() {
    // the regime map's case: SGD minima sit higher (their heights are above L-BFGS's), yet the paths
    // between them rise less above their endpoints
    let mut e = as_in_the_paper(Arch::Fcp, 8);
    e.heights_train[2] = values(8, 3.0, 0.1);
    let c = claims(&e);
    let find = |name: &str| c.iter().find(|c| c.claim == name && c.landscape == "train").unwrap();
    assert_eq!(find("heights-sgd-lower").verdict, Verdict::Fails);
    let b = find("barriers-sgd-lower");
    assert_eq!(b.verdict, Verdict::Holds, "{b:?}");
    assert!(b.run.starts_with("median SGD-train 0.01") && b.run.ends_with("vs BFGS-train 0.235 (n = 8, 8)"), "{b:?}");
    // and the other way round; unconverged pairs leave it unjudged like the heights
    e.barriers_train.swap(0, 2);
    assert_eq!(claims(&e).iter().find(|c| c.claim == "barriers-sgd-lower").unwrap().verdict, Verdict::Fails);
    e.unconverged_train[0] = Unconverged { not_converged: 1, unknown: 0 };
    assert_eq!(claims(&e).iter().find(|c| c.claim == "barriers-sgd-lower").unwrap().verdict, Verdict::NotConverged);
}
