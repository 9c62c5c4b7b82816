//! Line searches along a descent direction, as state machines: each asks for the loss at a distance u
//! along the unit direction, so the trial points of many runs are evaluated in one batched call.
//!
//! `Reference` reproduces the authors' L-BFGS-GSS line search step by step (docs/algorithms.md §3.1), including its
//! absolute tolerances that can accept an uphill step. `Golden` is a clean variant: bracket first, then
//! golden-section search with a relative tolerance, and never an uphill step.

/// What a line search wants next.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Next {
    /// The loss at distance `u` along the direction.
    Evaluate(f64),
    /// Finished: move by `step`; `loss` is the loss there when already known (else evaluate it once
    /// more — the reference's uncounted evaluation).
    Done { step: f64, loss: Option<f64> },
}

/// Which line search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineSearchKind {
    /// The authors' search exactly (trial 0.2|r|, expansion 0.8, 1.6, ... |r|, shrink by 0.382,
    /// absolute tolerance 1e-4, budget 6).
    Reference,
    /// Bracket, then golden-section search; relative tolerance; never uphill.
    Golden,
}

const SHRINK: f64 = 0.382;

/// The reference search's absolute tolerance on the step (the authors' code).
const REFERENCE_TOLERANCE: f64 = 1e-4;

/// The golden-section search's tolerance on the step, relative to the bracket.
const GOLDEN_TOLERANCE: f64 = 1e-3;

impl LineSearchKind {
    /// Counted loss evaluations per search unless told otherwise: the authors' 6 for the reference
    /// search, 12 for golden section (which needs more to narrow its bracket).
    pub fn default_budget(self) -> usize {
        match self {
            LineSearchKind::Reference => 6,
            LineSearchKind::Golden => 12,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    First,
    Expand { a: f64, fa: f64, x: f64, fx: f64, t: f64 },
    Shrink { b: f64, fb: f64, t: f64 },
    Golden { a: f64, fa: f64, x: f64, fx: f64, b: f64, fb: f64, u: f64 },
    Finished,
}

/// The authors' line search (docs/algorithms.md §3.1) for one run. Distances are Euclidean; `r_norm` = |r|.
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    r_norm: f64,
    f0: f64,
    tol: f64,
    budget: usize,
    count: usize,
    phase: Phase,
}

impl Reference {
    pub fn new(f0: f64, r_norm: f64, tol: f64, budget: usize) -> Reference {
        Reference { r_norm, f0, tol, budget, count: 0, phase: Phase::First }
    }

    /// The first request.
    pub fn start(&mut self) -> Next {
        self.count = 1;
        Next::Evaluate(0.2 * self.r_norm)
    }

    fn done(&mut self, step: f64, loss: Option<f64>) -> Next {
        self.phase = Phase::Finished;
        Next::Done { step, loss }
    }

    fn evaluate(&mut self, u: f64) -> Next {
        self.count += 1;
        Next::Evaluate(u)
    }

    /// Golden phase: test the tolerances, then propose the next point (the golden phase of docs/algorithms.md §3.1, run while c < B).
    fn golden(&mut self, a: f64, fa: f64, x: f64, fx: f64, b: f64, fb: f64) -> Next {
        if self.count >= self.budget || b - a < self.tol || (fa - fb).abs() < self.tol {
            return self.done(x, Some(fx));
        }
        let u = if b - x > x - a { a + SHRINK * (b - a) } else { b - SHRINK * (b - a) };
        self.phase = Phase::Golden { a, fa, x, fx, b, fb, u };
        self.evaluate(u)
    }

    /// Shrinking: test the tolerances at b, then try 0.382 b.
    fn shrink(&mut self, b: f64, fb: f64) -> Next {
        if b < self.tol || (self.f0 - fb).abs() < self.tol {
            return self.done(b, Some(fb));
        }
        let t = SHRINK * b;
        self.phase = Phase::Shrink { b, fb, t };
        self.evaluate(t)
    }

    /// Feeds the loss at the last requested distance.
    pub fn feed(&mut self, loss: f64) -> Next {
        match self.phase.clone() {
            Phase::First => {
                let u1 = 0.2 * self.r_norm;
                if loss < self.f0 {
                    let t = 0.8 * self.r_norm;
                    self.phase = Phase::Expand { a: 0.0, fa: self.f0, x: u1, fx: loss, t };
                    if self.count >= self.budget {
                        return self.done(u1, Some(loss));
                    }
                    self.evaluate(t)
                } else if loss > self.f0 {
                    self.shrink(u1, loss)
                } else {
                    self.done(0.1 * self.r_norm, None)
                }
            }
            Phase::Expand { a, fa, x, fx, t } => {
                if loss < fx {
                    if self.count >= self.budget {
                        return self.done(t, Some(loss));
                    }
                    self.phase = Phase::Expand { a: x, fa: fx, x: t, fx: loss, t: 2.0 * t };
                    self.evaluate(2.0 * t)
                } else if loss > fx {
                    if self.count >= self.budget {
                        return self.done(x, Some(fx));
                    }
                    self.golden(a, fa, x, fx, t, loss)
                } else {
                    self.done(0.5 * (a + t), None)
                }
            }
            Phase::Shrink { t, .. } => {
                if loss < self.f0 {
                    // the golden phase would re-evaluate t and stop there
                    self.done(t, Some(loss))
                } else if loss > self.f0 {
                    if self.count >= self.budget {
                        return self.done(t, Some(loss));
                    }
                    self.shrink(t, loss)
                } else {
                    self.done(0.5 * t, None)
                }
            }
            Phase::Golden { a, fa, x, fx, b, fb, u } => {
                if loss < fx {
                    let (a, fa, b, fb) = if u >= x { (x, fx, b, fb) } else { (a, fa, x, fx) };
                    self.golden(a, fa, u, loss, b, fb)
                } else if loss > fx {
                    let (a, fa) = if u < x { (u, loss) } else { (a, fa) };
                    let (b, fb) = if u > x { (u, loss) } else { (b, fb) };
                    self.golden(a, fa, x, fx, b, fb)
                } else {
                    self.done(x, Some(fx))
                }
            }
            Phase::Finished => panic!("line search fed after it finished"),
        }
    }
}

/// The clean variant for one run: expand or shrink to a bracket, golden-section search inside it,
/// stop when the bracket is narrower than `rel_tol` times the best step or the budget is spent;
/// return the best point seen, or no move if nothing was below f0.
#[derive(Clone, Debug, PartialEq)]
pub struct Golden {
    f0: f64,
    r_norm: f64,
    rel_tol: f64,
    budget: usize,
    count: usize,
    best: (f64, f64),
    state: GoldenState,
}

#[derive(Clone, Debug, PartialEq)]
enum GoldenState {
    First,
    Expand { prev: f64, x: f64, fx: f64, t: f64 },
    Shrink { t: f64 },
    Section { a: f64, x: f64, fx: f64, b: f64, u: f64 },
    Finished,
}

impl Golden {
    pub fn new(f0: f64, r_norm: f64, rel_tol: f64, budget: usize) -> Golden {
        Golden { f0, r_norm, rel_tol, budget, count: 0, best: (0.0, f0), state: GoldenState::First }
    }

    pub fn start(&mut self) -> Next {
        self.count = 1;
        Next::Evaluate(0.2 * self.r_norm)
    }

    fn evaluate(&mut self, u: f64) -> Next {
        self.count += 1;
        Next::Evaluate(u)
    }

    fn finish(&mut self) -> Next {
        self.state = GoldenState::Finished;
        Next::Done { step: self.best.0, loss: Some(self.best.1) }
    }

    fn section(&mut self, a: f64, x: f64, fx: f64, b: f64) -> Next {
        if self.count >= self.budget || b - a <= self.rel_tol * x {
            return self.finish();
        }
        let u = if b - x > x - a { x + SHRINK * (b - x) } else { x - SHRINK * (x - a) };
        self.state = GoldenState::Section { a, x, fx, b, u };
        self.evaluate(u)
    }

    pub fn feed(&mut self, loss: f64) -> Next {
        let last = match self.state {
            GoldenState::First => 0.2 * self.r_norm,
            GoldenState::Expand { t, .. } | GoldenState::Shrink { t } => t,
            GoldenState::Section { u, .. } => u,
            GoldenState::Finished => panic!("line search fed after it finished"),
        };
        if loss < self.best.1 {
            self.best = (last, loss);
        }
        match self.state.clone() {
            GoldenState::First | GoldenState::Shrink { .. } if loss < self.f0 => {
                // bracket [0, last, 2 last] is not known yet: expand from here
                if self.count >= self.budget {
                    return self.finish();
                }
                self.state = GoldenState::Expand { prev: 0.0, x: last, fx: loss, t: 2.0 * last };
                self.evaluate(2.0 * last)
            }
            GoldenState::First | GoldenState::Shrink { .. } => {
                if self.count >= self.budget || last < 1e-12 * self.r_norm.max(1e-30) {
                    return self.finish();
                }
                self.state = GoldenState::Shrink { t: SHRINK * last };
                self.evaluate(SHRINK * last)
            }
            GoldenState::Expand { prev, x, fx, t } => {
                if loss < fx {
                    if self.count >= self.budget {
                        return self.finish();
                    }
                    self.state = GoldenState::Expand { prev: x, x: t, fx: loss, t: 2.0 * t };
                    self.evaluate(2.0 * t)
                } else {
                    self.section(prev, x, fx, t)
                }
            }
            GoldenState::Section { a, x, fx, b, u } => {
                if loss < fx {
                    if u > x {
                        self.section(x, u, loss, b)
                    } else {
                        self.section(a, u, loss, x)
                    }
                } else if u > x {
                    self.section(a, x, fx, u)
                } else {
                    self.section(u, x, fx, b)
                }
            }
            GoldenState::Finished => unreachable!(),
        }
    }
}

/// Either line search, behind one interface.
#[derive(Clone, Debug, PartialEq)]
pub enum LineSearch {
    Reference(Reference),
    Golden(Golden),
}

impl LineSearch {
    /// A search from loss `f0` along a direction of norm `r_norm`, with `budget` counted evaluations.
    pub fn new(kind: LineSearchKind, f0: f64, r_norm: f64, budget: usize) -> LineSearch {
        match kind {
            LineSearchKind::Reference => LineSearch::Reference(Reference::new(f0, r_norm, REFERENCE_TOLERANCE, budget)),
            LineSearchKind::Golden => LineSearch::Golden(Golden::new(f0, r_norm, GOLDEN_TOLERANCE, budget)),
        }
    }
    pub fn start(&mut self) -> Next {
        match self {
            LineSearch::Reference(s) => s.start(),
            LineSearch::Golden(s) => s.start(),
        }
    }
    pub fn feed(&mut self, loss: f64) -> Next {
        match self {
            LineSearch::Reference(s) => s.feed(loss),
            LineSearch::Golden(s) => s.feed(loss),
        }
    }
}
