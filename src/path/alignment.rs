//! What alignment changed, per solution set: distances, straight-line heights and barriers before and
//! after aligning each pair (`paths --align`), and the path heights found after. For the report: does a
//! difference between two sets (e.g. SGD pairs below L-BFGS pairs) survive alignment?

use serde::Serialize;

use super::curve::Curve;
use super::sweep::PairRecord;
use crate::analysis::{spread, Spread};

/// One set's aligned pairs, before and after alignment. Barriers are heights minus the mean of the two
/// endpoint losses (alignment does not change the endpoint losses).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SetAlignment {
    /// Set index in its sweep.
    pub set: usize,
    /// The set's file, as the records name it.
    pub set_file: String,
    /// The curve family of the set's paths.
    pub curve: Curve,
    /// Aligned pairs summarised.
    pub pairs: usize,
    /// L2 distance between the pair's vectors before alignment.
    pub unaligned_distance: Spread,
    /// L2 distance after alignment.
    pub distance: Spread,
    /// Highest loss on the straight line to the unaligned second vector.
    pub unaligned_straight_height: Spread,
    /// The same minus the mean endpoint loss.
    pub unaligned_straight_barrier: Spread,
    /// Highest loss on the straight line to the aligned second vector.
    pub straight_height: Spread,
    /// The same minus the mean endpoint loss.
    pub straight_barrier: Spread,
    /// Highest loss on the optimised path between the aligned endpoints.
    pub height: Spread,
    /// The same minus the mean endpoint loss.
    pub barrier: Spread,
}

/// Summarises the aligned records of a sweep (`paths.jsonl` lines, e.g. from `read_records`), one entry
/// per set in set order. Records without alignment (or from before alignment existed) are skipped; a set
/// with no aligned record has no entry.
pub fn summarise_alignment(records: &[PairRecord]) -> Vec<SetAlignment> {
    let mut sets: Vec<usize> = records.iter().filter(|r| r.aligned).map(|r| r.set).collect();
    sets.sort_unstable();
    sets.dedup();
    sets.into_iter()
        .filter_map(|set| {
            let rs: Vec<&PairRecord> = records.iter().filter(|r| r.aligned && r.set == set).collect();
            let ends = |r: &PairRecord| {
                let l = &r.outcome.straight_losses;
                0.5 * (l[0] + l[l.len() - 1])
            };
            // None when no pair has the quantity (a set of records from before alignment existed)
            let spread = |f: &dyn Fn(&PairRecord) -> Option<f64>| {
                Some(spread(&rs.iter().filter_map(|r| f(r)).collect::<Vec<_>>())).filter(|s| s.count > 0)
            };
            Some(SetAlignment {
                set,
                set_file: rs[0].set_file.clone(),
                curve: rs[0].curve,
                pairs: rs.len(),
                unaligned_distance: spread(&|r| r.unaligned_distance)?,
                distance: spread(&|r| r.distance)?,
                unaligned_straight_height: spread(&|r| r.unaligned_straight_height)?,
                unaligned_straight_barrier: spread(&|r| Some(r.unaligned_straight_height? - ends(r)))?,
                straight_height: spread(&|r| Some(r.outcome.straight_height))?,
                straight_barrier: spread(&|r| Some(r.outcome.straight_height - ends(r)))?,
                height: spread(&|r| Some(r.outcome.height))?,
                barrier: spread(&|r| Some(r.outcome.barrier))?,
            })
        })
        .collect()
}

/// How the median barrier of set `high` exceeds that of set `low`, before and after alignment.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BarrierGap {
    /// high - low, straight lines to the unaligned vectors.
    pub unaligned_straight: f64,
    /// high - low, straight lines to the aligned vectors.
    pub aligned_straight: f64,
    /// high - low, optimised paths between aligned vectors.
    pub aligned_path: f64,
}

impl BarrierGap {
    /// The gaps between two sets' summaries (e.g. low = SGD, high = L-BFGS).
    pub fn between(low: &SetAlignment, high: &SetAlignment) -> BarrierGap {
        BarrierGap {
            unaligned_straight: high.unaligned_straight_barrier.median - low.unaligned_straight_barrier.median,
            aligned_straight: high.straight_barrier.median - low.straight_barrier.median,
            aligned_path: high.barrier.median - low.barrier.median,
        }
    }

    /// The claim "the gap survives alignment": `high` is above `low` before alignment and still above
    /// it after, on both the straight line and the optimised path.
    pub fn survives(&self) -> bool {
        self.unaligned_straight > 0.0 && self.aligned_straight > 0.0 && self.aligned_path > 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::PathOutcome;

    fn record(set: usize, aligned: bool, unaligned: f64, straight: f64, height: f64) -> PairRecord {
        PairRecord {
            index: 0,
            set,
            set_file: format!("set{set}"),
            pair: (0, 1),
            seeds: None,
            curve: Curve::Bezier,
            aligned,
            distance: Some(1.0),
            unaligned_distance: aligned.then_some(2.0),
            unaligned_straight_height: aligned.then_some(unaligned),
            outcome: PathOutcome {
                straight_losses: vec![0.1, straight, 0.3],
                losses: vec![0.1, height, 0.3],
                best_iteration: 1,
                height,
                barrier: height - 0.2,
                straight_height: straight,
                length: 1.0,
                weighted_mean_loss: 0.2,
                coefficients: None,
                iterations: None,
                converged: None,
                trace: None,
            },
        }
    }

    #[test]
    fn summary_per_set_skips_unaligned_records_and_the_gap_is_judged_on_medians() {
        let rs = vec![
            record(0, true, 2.0, 1.0, 0.5),
            record(0, true, 4.0, 1.2, 0.7),
            record(0, false, 9.0, 9.0, 9.0),
            record(1, true, 5.0, 1.5, 0.9),
            record(2, false, 1.0, 1.0, 1.0),
        ];
        let s = summarise_alignment(&rs);
        assert_eq!(s.len(), 2, "set 2 has no aligned pair");
        assert_eq!((s[0].set, s[0].pairs, s[1].pairs), (0, 2, 1));
        assert_eq!(s[0].unaligned_straight_height.median, 3.0);
        assert!((s[0].unaligned_straight_barrier.median - 2.8).abs() < 1e-12);
        assert_eq!(s[0].height.max, 0.7);
        assert_eq!(s[0].unaligned_distance.mean, 2.0);
        let gap = BarrierGap::between(&s[0], &s[1]);
        assert!((gap.unaligned_straight - 2.0).abs() < 1e-12, "{gap:?}");
        assert!((gap.aligned_straight - 0.4).abs() < 1e-12 && (gap.aligned_path - 0.3).abs() < 1e-12, "{gap:?}");
        assert!(gap.survives());
        assert!(!BarrierGap::between(&s[1], &s[0]).survives(), "set 0 is below set 1");
        let mut flat = rs.clone();
        flat[3].outcome.height = 0.55;
        flat[3].outcome.barrier = 0.35;
        let s = summarise_alignment(&flat);
        assert!(!BarrierGap::between(&s[0], &s[1]).survives(), "the path gap closed after alignment");
    }
}
