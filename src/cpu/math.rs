//! Branch-free f32 exp, log1p, sigmoid, softplus and tanh that the compiler vectorises (libm's scalar
//! calls were a third of the CPU backend's time in the FCP and most of the LSTM's). Accuracy: a few
//! ulp over the ranges the networks use (tested against f64 below).
//!
//! Every polynomial step is a fused multiply-add (`mul_add`): one rounding instead of two, and half the
//! instructions and half the latency of the dependent chain a polynomial is. `mul_add` is exact by
//! definition, so every SIMD level computes the same bits; the AVX2 and AVX-512 builds and NEON have
//! the instruction, while the x86-64 baseline build (`LOSSCAPE_SIMD=portable`, or a processor without
//! FMA, made before 2013) computes it in software: the same bits, the activations 13 to 18 times
//! slower (measured).

/// e^x for x in [-87, 88] (clamped outside: 0-ish and large), Cody–Waite reduction and a degree-7
/// polynomial; about 2 ulp.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let t = x.mul_add(LOG2E, ROUND);
    let n = t - ROUND;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    // e^r on |r| <= ln2/2: Taylor to degree 7 (error < 1e-8 relative)
    let p = (1.0f32 / 5040.0).mul_add(r, 1.0 / 720.0);
    let p = p.mul_add(r, 1.0 / 120.0);
    let p = p.mul_add(r, 1.0 / 24.0);
    let p = p.mul_add(r, 1.0 / 6.0);
    let p = p.mul_add(r, 0.5);
    let p = p.mul_add(r, 1.0);
    let p = p.mul_add(r, 1.0);
    // 2^n from t's bits without a conversion: t = 1.5 * 2^23 + n exactly, so its low bits hold n in
    // two's complement, and shifting them into the exponent field drops the rest (mod 2^32).
    p * f32::from_bits((t.to_bits() << 23).wrapping_add(127 << 23))
}

/// log(1 + u) for u in [0, 1]: 2 atanh(u / (2 + u)) by its series, full relative precision for tiny u
/// (the series of `shaders/numerics.wgsl`, cut after s¹⁴ here: with s ≤ 1/3 the terms after it add
/// less than 2e-9 relative).
#[inline(always)]
pub fn log1p_unit(u: f32) -> f32 {
    let s = u / (2.0 + u);
    let s2 = s * s;
    let q = (1.0f32 / 15.0).mul_add(s2, 1.0 / 13.0);
    let q = q.mul_add(s2, 1.0 / 11.0);
    let q = q.mul_add(s2, 1.0 / 9.0);
    let q = q.mul_add(s2, 1.0 / 7.0);
    let q = q.mul_add(s2, 1.0 / 5.0);
    let q = q.mul_add(s2, 1.0 / 3.0);
    let q = q.mul_add(s2, 1.0);
    2.0 * s * q
}

/// PyTorch softplus (beta 1, threshold 20): max(x, 0) + log1p(e^-|x|), which is x itself above 20 in f32.
#[inline(always)]
pub fn softplus(x: f32) -> f32 {
    let sp = x.max(0.0) + log1p_unit(exp(-x.abs()));
    if x > 20.0 {
        x
    } else {
        sp
    }
}

/// 1 / (1 + e^-x), from e^-|x| so that it never overflows. (The direct 1 / (1 + e^-x), four
/// instructions fewer, doubled the LSTM's finite-difference Hessian error at the authors' vector in
/// `tests/hessian.rs`; the autoencoder's loss head, whose error it leaves as it is, uses it.)
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    let e = exp(-x.abs());
    let pos = 1.0 / (1.0 + e);
    if x >= 0.0 {
        pos
    } else {
        e * pos
    }
}

/// tanh x: an odd Taylor polynomial below |x| = 0.25 (where 1 - e^-2|x| would cancel), else
/// (1 - e^-2|x|) / (1 + e^-2|x|) with the sign of x.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let e = exp(-2.0 * a);
    let big = (1.0 - e) / (1.0 + e);
    let x2 = x * x;
    let q = (21_844.0f32 / 6_081_075.0).mul_add(x2, -929.0 / 155_925.0);
    let q = q.mul_add(x2, 62.0 / 2835.0);
    let q = q.mul_add(x2, -17.0 / 315.0);
    let q = q.mul_add(x2, 2.0 / 15.0);
    let q = q.mul_add(x2, -1.0 / 3.0);
    let small = (a * x2).mul_add(q, a);
    let t = if a < 0.25 { small } else { big };
    t.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f32, b: f64) -> f64 {
        if b == 0.0 {
            (a as f64).abs()
        } else {
            ((a as f64 - b) / b).abs()
        }
    }

    #[test]
    fn functions_match_f64_to_a_few_ulp() {
        let xs: Vec<f32> =
            (-4000..=4000).map(|i| i as f32 * 0.01).chain([1e-6, -1e-6, 1e-3, -30.0, 30.0, 80.0]).collect();
        for &x in &xs {
            let xd = x as f64;
            assert!(rel(exp(x), xd.exp()) < 5e-7, "exp({x})");
            let sp = if xd > 20.0 { xd } else { xd.exp().ln_1p() };
            assert!(rel(softplus(x), sp) < 5e-7, "softplus({x}) = {} vs {sp}", softplus(x));
            assert!(rel(sigmoid(x), 1.0 / (1.0 + (-xd).exp())) < 5e-7, "sigmoid({x})");
            assert!(rel(tanh(x), xd.tanh()) < 5e-7, "tanh({x}) = {} vs {}", tanh(x), xd.tanh());
        }
        for u in [0.0f32, 1e-30, 1e-9, 1e-4, 0.3, 1.0] {
            assert!(rel(log1p_unit(u), (u as f64).ln_1p()) < 5e-7, "log1p({u})");
        }
        assert_eq!(softplus(25.0), 25.0);
        assert!(exp(-200.0) < 1e-37);
    }
}
