//! The per-row scalars the L-BFGS two-loop recursion keeps on the device ([`LbfgsScalars`]), the
//! reductions that write them ([`Reduced`]) and the constants of its guards. The WGSL `finish` kernel
//! (`shaders/vector.wgsl`) reads the same layout: `gpu::shaders` prepends [`WGSL_CONSTANTS`] (and the
//! guards) to that shader, so the offsets and operation codes are written once, here. Besides L-BFGS
//! (`optim::lbfgs`), the path finder (`path::finder`) borrows the layout for its segment lengths: a
//! [`Reduced::Store`] of each segment's squared length into rows of width 2, read back with
//! [`LbfgsScalars::get`].

/// The per-row scalars of the L-BFGS two-loop recursion (Nocedal & Wright, Numerical Optimization,
/// 2nd ed., Alg. 7.4) that stay on the device: row r of a scalar buffer holds [`LbfgsScalars::width`]
/// f32 elements from element `r * width`. Each scalar is a double-f32 pair (hi, lo) whose sum carries
/// about 48 significant bits, so the recursion keeps the f64 precision the host gave it before (WGSL
/// has no f64); flags are 0 or 1 in `hi`. The constants and functions give the element of `hi`:
/// kernels that take a per-row coefficient read `hi`, which is the scalar rounded to f32. The reduction
/// kernels ([`Reduced`]) write them.
pub struct LbfgsScalars;

type L = LbfgsScalars;

/// ε in ρ = 1 / (s·y + ε): keeps ρ finite when s·y is 0 (the authors' code; no curvature skip,
/// `docs/decisions.md`).
pub const RHO_EPSILON: f64 = 1e-6;

/// A stored pair whose cos(s, y) = s·y / (|s| |y|) is NaN or below this drops the run's whole history
/// (d = g): the curvature condition s·y > 0 holds with too little margin to trust H (`docs/algorithms.md`).
pub const MIN_CURVATURE_COSINE: f64 = 1e-4;

impl LbfgsScalars {
    /// s·y of the newest pair (written before [`Reduced::Pair`]).
    pub const SY: usize = 0;
    /// y·y of the newest pair (written before [`Reduced::Pair`]).
    pub const YY: usize = 2;
    /// γ = s·y / y·y of the newest pair: the initial Hessian approximation H⁰ = γI.
    pub const GAMMA: usize = 4;
    /// |d|² of the final search direction.
    pub const RR: usize = 6;
    /// 1 when the history was reset this iteration (then d = g), else 0.
    pub const RESET: usize = 8;
    /// Second-loop coefficient α_i − ρ_i y_i·d of the pair being applied.
    pub const COEF: usize = 10;
    /// First element of pair 0; pair i takes [`Self::FIELDS`] elements from `PAIRS + FIELDS * i`.
    const PAIRS: usize = 12;
    const FIELDS: usize = 8;
    /// Elements of a pair's block, from its first element: ρ_i, bad_i, mask_i, α_i.
    const RHO: usize = 0;
    const BAD: usize = 2;
    const MASK: usize = 4;
    const ALPHA: usize = 6;

    /// First element of pair i's block.
    fn pair(i: usize) -> usize {
        Self::PAIRS + Self::FIELDS * i
    }
    /// Elements per row for a history of `history` pairs.
    pub fn width(history: usize) -> usize {
        Self::PAIRS + Self::FIELDS * history
    }
    /// Pairs a row of `width` elements holds.
    pub fn pairs(width: usize) -> usize {
        (width - Self::PAIRS) / Self::FIELDS
    }
    /// ρ_i = 1 / (s_i·y_i + 1e-6) (the authors' guard; no curvature test).
    pub fn rho(i: usize) -> usize {
        Self::pair(i) + Self::RHO
    }
    /// 1 when cos(s_i, y_i) is NaN or below 1e-4 (the authors' reset test), else 0.
    pub fn bad(i: usize) -> usize {
        Self::pair(i) + Self::BAD
    }
    /// 1 while pair i is in use, 0 before it is made and after a reset.
    pub fn mask(i: usize) -> usize {
        Self::pair(i) + Self::MASK
    }
    /// α_i = ρ_i s_i·q of the first loop (0 when the pair is masked).
    pub fn alpha(i: usize) -> usize {
        Self::pair(i) + Self::ALPHA
    }
    /// The scalar at element `i` of a row (hi + lo).
    pub fn get(s: &[f32], i: usize) -> f64 {
        s[i] as f64 + s[i + 1] as f64
    }
    /// Stores `v` at element `i` of a row as hi = v rounded to f32, lo = the rest (0 when v is not
    /// finite).
    pub fn put(s: &mut [f32], i: usize, v: f64) {
        let hi = v as f32;
        s[i] = hi;
        s[i + 1] = if hi.is_finite() { (v - hi as f64) as f32 } else { 0.0 };
    }
}

/// What a recorded per-row reduction (a dot product d = x_r·y_r) does with its result, on row r of a
/// scalar buffer `s` laid out as [`LbfgsScalars`]. The CPU backend computes in f64, a GPU in double-f32
/// arithmetic (cos(s, y) in f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduced {
    /// `s[i]` = d.
    Store(usize),
    /// Pair i from s·y = `s[SY]`, y·y = `s[YY]` and s·s = d: ρ_i = 1/(s·y + 1e-6),
    /// bad_i = cos(s, y) is NaN or < 1e-4 (cos = s·y / √(y·y s·s), NaN when that is 0),
    /// mask_i = 1, γ = s·y / y·y.
    Pair(usize),
    /// First loop: α_i = ρ_i d (d = s_i·q), 0 when pair i is masked.
    Alpha(usize),
    /// Second loop: `s[COEF]` = α_i − ρ_i d (d = y_i·r), 0 when pair i is masked.
    Beta(usize),
    /// Reset test on d = |d|²: `s[RESET]` = 1 when d is not finite or a masked-in pair is bad, and
    /// then every mask of the row is cleared (the next pair starts a new history).
    Reset,
}

impl Reduced {
    const STORE: u32 = 0;
    const PAIR: u32 = 1;
    const ALPHA: u32 = 2;
    const BETA: u32 = 3;
    const RESET: u32 = 4;

    /// The operation code and element index the WGSL `finish` kernel reads.
    pub fn code(self) -> (u32, u32) {
        match self {
            Reduced::Store(i) => (Self::STORE, i as u32),
            Reduced::Pair(i) => (Self::PAIR, i as u32),
            Reduced::Alpha(i) => (Self::ALPHA, i as u32),
            Reduced::Beta(i) => (Self::BETA, i as u32),
            Reduced::Reset => (Self::RESET, 0),
        }
    }

    /// Applies the operation to one row of scalars in f64 (the CPU backend; the WGSL `finish` kernel
    /// does the same in double-f32).
    pub fn apply(self, d: f64, s: &mut [f32]) {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        match self {
            Reduced::Store(i) => L::put(s, i, d),
            Reduced::Pair(i) => {
                let (sy, yy) = (L::get(s, L::SY), L::get(s, L::YY));
                let norm = (yy * d).sqrt();
                let cos = if norm > 0.0 { sy / norm } else { f64::NAN };
                L::put(s, L::rho(i), 1.0 / (sy + RHO_EPSILON));
                L::put(s, L::bad(i), flag(cos.is_nan() || cos < MIN_CURVATURE_COSINE));
                L::put(s, L::mask(i), 1.0);
                L::put(s, L::GAMMA, sy / yy);
            }
            Reduced::Alpha(i) => {
                let alpha = if s[L::mask(i)] != 0.0 { L::get(s, L::rho(i)) * d } else { 0.0 };
                L::put(s, L::alpha(i), alpha)
            }
            Reduced::Beta(i) => {
                let valid = s[L::mask(i)] != 0.0;
                let beta = if valid { L::get(s, L::alpha(i)) - L::get(s, L::rho(i)) * d } else { 0.0 };
                L::put(s, L::COEF, beta)
            }
            Reduced::Reset => {
                let pairs = L::pairs(s.len());
                let bad = (0..pairs).any(|i| s[L::mask(i)] != 0.0 && s[L::bad(i)] != 0.0);
                let reset = !d.is_finite() || bad;
                L::put(s, L::RESET, flag(reset));
                if reset {
                    (0..pairs).for_each(|i| L::put(s, L::mask(i), 0.0));
                }
            }
        }
    }
}

/// The layout's element offsets and [`Reduced`]'s operation codes under the names `shaders/vector.wgsl`
/// uses; `gpu::shaders` prepends them to it as `const NAME: u32 = value;`.
pub const WGSL_CONSTANTS: [(&str, u32); 17] = [
    ("SY", L::SY as u32),
    ("YY", L::YY as u32),
    ("GAMMA", L::GAMMA as u32),
    ("RR", L::RR as u32),
    ("RESET", L::RESET as u32),
    ("COEF", L::COEF as u32),
    ("PAIRS", L::PAIRS as u32),
    ("FIELDS", L::FIELDS as u32),
    ("RHO", L::RHO as u32),
    ("BAD", L::BAD as u32),
    ("MASK", L::MASK as u32),
    ("ALPHA", L::ALPHA as u32),
    ("OP_STORE", Reduced::STORE),
    ("OP_PAIR", Reduced::PAIR),
    ("OP_ALPHA", Reduced::ALPHA),
    ("OP_BETA", Reduced::BETA),
    ("OP_RESET", Reduced::RESET),
];
