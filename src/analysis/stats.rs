//! Two-sample statistics for the claims table (`docs/claims.md`): the Mann–Whitney U test, the area
//! under the ROC curve, and effect sizes, all in f64.
//!
//! The U test follows SciPy's `scipy.stats.mannwhitneyu` (method "auto"): average ranks for ties; the
//! exact null distribution when a sample has at most [`EXACT_MAX`] values and there are no ties,
//! otherwise the normal approximation with tie correction and continuity correction. References:
//! Mann & Whitney (1947), Ann. Math. Statist. 18, 50–60; Hollander, Wolfe & Chicken, *Nonparametric
//! Statistical Methods* (3rd ed., 2014), §4.1; the AUC–U identity: Hanley & McNeil (1982), Radiology 143.

use statrs::distribution::{ContinuousCDF, Normal};

/// The exact null distribution is used when the smaller sample has at most this many values and no
/// value is tied (SciPy's rule).
pub const EXACT_MAX: usize = 8;

/// Which difference the test looks for: `Less` — x tends to be smaller than y; `Greater` — larger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alternative {
    Less,
    Greater,
    TwoSided,
}

/// How a p-value was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Exact,
    Asymptotic,
}

/// The result of a Mann–Whitney U test of x against y.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannWhitney {
    /// U of x: the number of pairs (x_i, y_j) with x_i > y_j, ties counting 1/2 (SciPy's `statistic`).
    pub u: f64,
    pub p_value: f64,
    pub method: Method,
    pub n_x: usize,
    pub n_y: usize,
}

/// Average ranks (1-based) of `values`, and the sizes of the tie groups (SciPy's `rankdata`).
fn ranks(values: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut ties = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0;
        order[start..end].iter().for_each(|&i| out[i] = rank);
        ties.push(end - start);
        start = end;
    }
    (out, ties)
}

/// U of x (ties counting 1/2) and the tie-group sizes of the pooled sample.
fn u_statistic(x: &[f64], y: &[f64]) -> (f64, Vec<usize>) {
    let pooled: Vec<f64> = x.iter().chain(y).copied().collect();
    let (r, ties) = ranks(&pooled);
    let rank_sum: f64 = r[..x.len()].iter().sum();
    let n = x.len() as f64;
    (rank_sum - n * (n + 1.0) / 2.0, ties)
}

/// P(U ≥ u) under the null hypothesis for samples of sizes m and n without ties: the number of
/// arrangements with each U value, by the recurrence c(m, n, u) = c(m−1, n, u−n) + c(m, n−1, u).
fn exact_sf(u: f64, m: usize, n: usize) -> f64 {
    // counts[j][k]: arrangements of i values of x and j of y with U = k, built up over i
    let max = m * n;
    let mut counts: Vec<Vec<f64>> = (0..=n).map(|_| vec![0.0; max + 1]).collect();
    counts.iter_mut().for_each(|c| c[0] = 1.0);
    for _ in 1..=m {
        let mut next: Vec<Vec<f64>> = (0..=n).map(|_| vec![0.0; max + 1]).collect();
        next[0][0] = 1.0;
        for j in 1..=n {
            for k in 0..=max {
                let with_x_last = if k >= j { counts[j][k - j] } else { 0.0 };
                next[j][k] = with_x_last + next[j - 1][k];
            }
        }
        counts = next;
    }
    let total: f64 = counts[n].iter().sum();
    let from = u.ceil() as usize;
    counts[n].iter().skip(from).sum::<f64>() / total
}

/// The Mann–Whitney U test of `x` against `y`.
///
/// Returns `None` when either sample is empty or holds a non-finite value (no test is possible).
pub fn mann_whitney_u(x: &[f64], y: &[f64], alternative: Alternative) -> Option<MannWhitney> {
    if x.is_empty() || y.is_empty() || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let (m, n) = (x.len(), y.len());
    let (u, ties) = u_statistic(x, y);
    let mn = (m * n) as f64;
    let tied = ties.iter().any(|&t| t > 1);
    let exact = m.min(n) <= EXACT_MAX && !tied;
    // the statistic whose upper tail is the alternative (SciPy's convention)
    let upper = match alternative {
        Alternative::Greater => u,
        Alternative::Less => mn - u,
        Alternative::TwoSided => u.max(mn - u),
    };
    let p = if exact {
        exact_sf(upper, m, n)
    } else {
        let total = (m + n) as f64;
        let tie_term: f64 = ties.iter().map(|&t| (t as f64).powi(3) - t as f64).sum::<f64>() / (total * (total - 1.0));
        let sigma = (mn / 12.0 * ((total + 1.0) - tie_term)).sqrt();
        let z = (upper - mn / 2.0 - 0.5) / sigma;
        if sigma > 0.0 {
            Normal::standard().sf(z)
        } else {
            1.0
        }
    };
    let p = if alternative == Alternative::TwoSided { 2.0 * p } else { p };
    Some(MannWhitney {
        u,
        p_value: p.clamp(0.0, 1.0),
        method: if exact { Method::Exact } else { Method::Asymptotic },
        n_x: m,
        n_y: n,
    })
}

/// The area under the ROC curve of a score that should be higher for `positive` than for `negative`:
/// the probability that a random positive scores above a random negative, ties counting 1/2
/// (= U / (m n), Hanley & McNeil 1982). 1 separates perfectly, 0.5 not at all, 0 perfectly the other
/// way. `None` when a sample is empty or holds a non-finite value.
pub fn roc_auc(positive: &[f64], negative: &[f64]) -> Option<f64> {
    if positive.is_empty() || negative.is_empty() || positive.iter().chain(negative).any(|v| !v.is_finite()) {
        return None;
    }
    let (u, _) = u_statistic(positive, negative);
    Some(u / (positive.len() * negative.len()) as f64)
}

/// The rank-biserial correlation of x against y, 2 AUC − 1 (Cliff's delta): the probability that x
/// exceeds y minus the probability that y exceeds x, in [−1, 1] (Kerby 2014, Compr. Psychol. 3).
pub fn rank_biserial(x: &[f64], y: &[f64]) -> Option<f64> {
    roc_auc(x, y).map(|a| 2.0 * a - 1.0)
}

/// Cohen's d of x against y: (mean x − mean y) / pooled standard deviation (ddof 1 in each sample).
/// `None` with fewer than two values in a sample or zero pooled spread.
pub fn cohens_d(x: &[f64], y: &[f64]) -> Option<f64> {
    let (m, n) = (x.len() as f64, y.len() as f64);
    if x.len() < 2 || y.len() < 2 {
        return None;
    }
    let (mx, my) = (mean(x), mean(y));
    let ss = |v: &[f64], c: f64| v.iter().map(|a| (a - c).powi(2)).sum::<f64>();
    let pooled = ((ss(x, mx) + ss(y, my)) / (m + n - 2.0)).sqrt();
    (pooled > 0.0 && pooled.is_finite()).then(|| (mx - my) / pooled)
}

/// Arithmetic mean (NaN for an empty slice).
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Median, the mean of the two middle values for an even count (NaN for an empty slice).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => 0.5 * (s[n / 2 - 1] + s[n / 2]),
    }
}

/// Holm's step-down adjustment of m p-values for multiple comparisons (Holm 1979, Scand. J. Statist.
/// 6, 65–70), as R's `p.adjust(p, "holm")` and statsmodels' `multipletests(method="holm")` compute
/// it: with the p-values sorted ascending, p_(1) ≤ … ≤ p_(m),
///
/// ```text
/// p̃_(i) = min(1, max_{j ≤ i} (m − j + 1) p_(j)),
/// ```
///
/// returned in the input's order (ties keep their input order; equal p-values get equal adjusted
/// ones). Rejecting where p̃ < α controls the family-wise error rate at α. A NaN stays NaN and sorts
/// last (it still counts in m).
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b)));
    let mut out = vec![f64::NAN; m];
    let mut running = 0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = if p[i].is_nan() { f64::NAN } else { running };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        let (r, t) = ranks(&[3.0, 1.0, 3.0, 2.0]);
        assert_eq!(r, vec![3.5, 1.0, 3.5, 2.0]);
        assert_eq!(t, vec![1, 1, 2]);
    }

    #[test]
    fn exact_distribution_by_hand() {
        // m = 2, n = 2: U takes 0..4 with counts 1,1,2,1,1 of 6 arrangements
        assert!((exact_sf(0.0, 2, 2) - 1.0).abs() < 1e-15);
        assert!((exact_sf(3.0, 2, 2) - 2.0 / 6.0).abs() < 1e-15);
        assert!((exact_sf(4.0, 2, 2) - 1.0 / 6.0).abs() < 1e-15);
    }

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol * b.abs().max(1e-300), "{a} vs {b}");
    }

    // Expected values from SciPy 1.17 `scipy.stats.mannwhitneyu(x, y, alternative=...)`.
    #[test]
    fn exact_test_matches_scipy() {
        let x = [0.12, 0.31, 0.25, 0.08, 0.19];
        let y = [0.40, 0.35, 0.22, 0.51, 0.47, 0.29];
        for (alt, p) in [
            (Alternative::Less, 0.015151515151515152),
            (Alternative::Greater, 0.9913419913419913),
            (Alternative::TwoSided, 0.030303030303030304),
        ] {
            let r = mann_whitney_u(&x, &y, alt).unwrap();
            assert_eq!(r.u, 3.0);
            assert_eq!(r.method, Method::Exact);
            close(r.p_value, p, 1e-12);
        }
        let x: Vec<f64> = (0..7).map(|i| i as f64 + 0.5).collect();
        let y: Vec<f64> = (1..=12).map(f64::from).collect();
        let r = mann_whitney_u(&x, &y, Alternative::Less).unwrap();
        assert_eq!((r.u, r.method), (21.0, Method::Exact));
        close(r.p_value, 0.0415575136937366, 1e-12);
    }

    #[test]
    fn asymptotic_test_with_ties_matches_scipy() {
        let x = [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 6.0, 7.0, 8.0, 9.5];
        let y = [3.0, 4.0, 5.0, 6.0, 6.0, 7.0, 8.0, 9.0, 9.0, 10.0, 11.0, 12.0, 12.0, 13.0];
        for (alt, p) in [
            (Alternative::Less, 0.005713142872403116),
            (Alternative::Greater, 0.9950743327327505),
            (Alternative::TwoSided, 0.011426285744806232),
        ] {
            let r = mann_whitney_u(&x, &y, alt).unwrap();
            assert_eq!((r.u, r.method), (34.5, Method::Asymptotic));
            close(r.p_value, p, 1e-9);
        }
    }

    #[test]
    fn no_test_without_data() {
        assert!(mann_whitney_u(&[], &[1.0], Alternative::Less).is_none());
        assert!(mann_whitney_u(&[f64::NAN], &[1.0], Alternative::Less).is_none());
        assert!(roc_auc(&[1.0], &[]).is_none());
    }

    #[test]
    fn auc_by_hand() {
        // pairs: 1>0; 2=2 (1/2), 2>0; 3>2, 3>0: 4.5 of 6
        assert_eq!(roc_auc(&[1.0, 2.0, 3.0], &[2.0, 0.0]), Some(0.75));
        assert_eq!(roc_auc(&[5.0, 6.0], &[1.0, 2.0]), Some(1.0));
        assert_eq!(roc_auc(&[1.0, 2.0], &[5.0, 6.0]), Some(0.0));
        assert_eq!(rank_biserial(&[1.0, 2.0, 3.0], &[2.0, 0.0]), Some(0.5));
    }

    #[test]
    fn cohens_d_by_hand() {
        // means 4.4 and 2.25; sums of squares 13.2 and 2.75 over 7 degrees of freedom (NumPy)
        close(cohens_d(&[2.0, 4.0, 4.0, 5.0, 7.0], &[1.0, 2.0, 3.0, 3.0]).unwrap(), 1.4243185688531685, 1e-12);
        assert!(cohens_d(&[1.0, 1.0], &[1.0, 1.0]).is_none());
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
    }
}
