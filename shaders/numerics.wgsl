// Shared numerics, prepended to every shader that needs them (see src/gpu/shaders.rs).
// GPU `log` is only accurate to ~2^-21 absolute near 1, so log(1 + s) for small s is computed from the
// atanh series instead: that is what lets cross-entropy resolve per-image losses of 1e-9.

// log(1 + s) for s >= 0, relative error ~1e-7 for every s.
fn log1p_nonneg(s: f32) -> f32 {
    if (s >= 1.0) {
        return log(1.0 + s);
    }
    let u = s / (2.0 + s);
    let u2 = u * u;
    let series = 1.0 + u2 * (1.0 / 3.0 + u2 * (1.0 / 5.0 + u2 * (1.0 / 7.0 + u2 * (1.0 / 9.0
        + u2 * (1.0 / 11.0 + u2 * (1.0 / 13.0 + u2 * (1.0 / 15.0 + u2 * (1.0 / 17.0 + u2 / 19.0))))))));
    return 2.0 * u * series;
}

// PyTorch softplus (beta 1, threshold 20).
fn softplus(x: f32) -> f32 {
    if (x > 20.0) {
        return x;
    }
    return log1p_nonneg(exp(x));
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// Derivative of softplus, matching PyTorch's threshold.
fn softplus_grad(x: f32) -> f32 {
    if (x > 20.0) {
        return 1.0;
    }
    return sigmoid(x);
}
