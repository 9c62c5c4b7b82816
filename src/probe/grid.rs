//! The grid of a loss surface: one evenly spaced axis per direction, spelled `lo:hi:n` on the command
//! line.

use serde::{Deserialize, Serialize};

/// The most points one axis may have.
pub const MAX_POINTS: usize = 100_000;

/// `points` evenly spaced values from `lo` to `hi`, both included.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AxisRange {
    pub lo: f64,
    pub hi: f64,
    pub points: usize,
}

impl AxisRange {
    /// A checked range: `lo` and `hi` finite with `lo < hi` and a finite span `hi - lo` (else every
    /// value between the ends is infinite or NaN), and 2 to [`MAX_POINTS`] points.
    ///
    /// Errors: a message naming the bad part (the ends in Rust's shortest form: `1e308`, not 309
    /// digits).
    pub fn new(lo: f64, hi: f64, points: usize) -> Result<AxisRange, String> {
        if !lo.is_finite() || !hi.is_finite() {
            return Err(format!("{lo:?}:{hi:?}: the ends must be finite numbers"));
        }
        if lo >= hi {
            return Err(format!("{lo:?}:{hi:?}: the first end must be less than the second"));
        }
        if !(hi - lo).is_finite() {
            return Err(format!("{lo:?}:{hi:?}: the span from the first end to the second is too large for f64"));
        }
        if !(2..=MAX_POINTS).contains(&points) {
            return Err(format!("{points} points: need 2 to {MAX_POINTS}"));
        }
        Ok(AxisRange { lo, hi, points })
    }

    /// Value `i` (0-based): `lo + (hi - lo) * i / (points - 1)`, so that the first is `lo` and the last
    /// exactly `hi`; a value within 1e-9 of a spacing of 0 or 1 is that number exactly, so that a grid
    /// whose spacing reaches the named vectors' coordinates holds them bit for bit (`-0.2:1.2:8`
    /// computes 0 as -2.8e-17 and 1 as 0.9999999999999998 in f64).
    pub fn value(&self, i: usize) -> f64 {
        if i + 1 == self.points {
            return self.hi;
        }
        let step = (self.hi - self.lo) / (self.points - 1) as f64;
        let v = self.lo + (self.hi - self.lo) * i as f64 / (self.points - 1) as f64;
        match [0.0, 1.0].into_iter().find(|m| (v - m).abs() <= 1e-9 * step.abs()) {
            Some(m) => m,
            None => v,
        }
    }

    /// All values, in order.
    pub fn values(&self) -> Vec<f64> {
        (0..self.points).map(|i| self.value(i)).collect()
    }

    /// The index of the grid value equal to `v` (exactly), if there is one.
    pub fn index_of(&self, v: f64) -> Option<usize> {
        (0..self.points).find(|&i| self.value(i) == v)
    }
}

impl std::str::FromStr for AxisRange {
    type Err = String;
    /// Parses `lo:hi:n`, e.g. `-1:1:51` or `-0.5:1.5:21`.
    fn from_str(s: &str) -> Result<AxisRange, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [lo, hi, n] = parts[..] else {
            return Err(format!("'{s}': expected lo:hi:n, e.g. -1:1:51"));
        };
        let num = |t: &str| t.trim().parse::<f64>().map_err(|_| format!("'{t}' is not a number (in '{s}')"));
        let n: usize = n.trim().parse().map_err(|_| format!("'{n}' is not a whole number of points (in '{s}')"))?;
        AxisRange::new(num(lo)?, num(hi)?, n)
    }
}

impl std::fmt::Display for AxisRange {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.lo, self.hi, self.points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_parses_and_reaches_both_ends() {
        let r: AxisRange = "-1:1:51".parse().unwrap();
        assert_eq!((r.lo, r.hi, r.points), (-1.0, 1.0, 51));
        let v = r.values();
        assert_eq!((v[0], v[25], v[50]), (-1.0, 0.0, 1.0));
    }

    /// Each bad part gets its own message; huge ends print in short form, and a span past f64's
    /// largest value (whose grid values would be infinite or NaN) is refused.
    #[test]
    fn bad_ranges_are_refused_with_a_message_naming_the_part() {
        let err = |s: &str| s.parse::<AxisRange>().unwrap_err();
        assert!(err("nan:1:5").contains("must be finite"), "{}", err("nan:1:5"));
        assert!(err("1:0:5").contains("less than the second"));
        assert_eq!(err("1e308:-1e308:3"), "1e308:-1e308: the first end must be less than the second");
        assert!(err("-1e308:1e308:3").contains("span"), "{}", err("-1e308:1e308:3"));
        assert!(err("0:1:1").contains("need 2 to"));
        assert!(err("0:1").contains("expected lo:hi:n"));
        assert!(err("a:1:3").contains("'a' is not a number"));
        assert!(err("0:1:2.5").contains("whole number"));
        assert!("-1e307:1e307:3".parse::<AxisRange>().unwrap().values().iter().all(|v| v.is_finite()));
    }
}
