// Vector operations on B rows of length `len` (row b starts at b * stride), for the optimizers.
// Reductions write one partial per workgroup (fixed-order tree, or subgroup sums where the device has
// them: reduce*.wgsl); either the host adds the partials in f64 (immediate dot/sum), or the `finish`
// kernel adds them in order with compensated (two-sum) f32 summation into a double-f32 (WGSL has no
// f64) and applies an L-BFGS scalar operation to the row's scalars (ops::Reduced, ops::LbfgsScalars;
// the CPU backend does the same in f64). The double-f32 scalars themselves never use subgroups.
// Per-row coefficients: factor, times coef[b * coef_stride + coef_index] when use_coef is 1.

struct Params {
    len: u32,
    stride: u32,
    groups: u32, // workgroups per row (dispatch x extent)
    rows: u32,
    use_coef: u32,
    coef_index: u32,
    coef_stride: u32,
    factor: f32,
    op: u32,    // finish: OP_STORE, OP_PAIR, OP_ALPHA, OP_BETA, OP_RESET
    pair: u32,  // finish: the pair, or the index a store writes
    width: u32, // finish: scalars per row
    one: f32,   // 1.0, unknown to the compiler (see `o`)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> coef: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
@group(0) @binding(5) var<storage, read> w: array<f32>;
@group(0) @binding(6) var<storage, read_write> sc: array<f32>;

// The workgroup's sum of v (reduce.wgsl or reduce_subgroups.wgsl, prepended) as its partial.
fn reduce_and_store(lane: Lane, b: u32, g: u32, v: f32) {
    let total = workgroup_sum(lane, v);
    if (lane_leads(lane)) {
        partials[b * p.groups + g] = total;
    }
}

fn row_coef(b: u32) -> f32 {
    if (p.use_coef == 0u) {
        return p.factor;
    }
    return p.factor * coef[b * p.coef_stride + p.coef_index];
}

// partials <- per-workgroup sums of x_b . w_b
@compute @workgroup_size(256)
fn dot(@builtin(workgroup_id) wg: vec3<u32>, lane: Lane) {
    let b = wg.y;
    var acc = 0.0;
    for (var i = wg.x * 256u + lane.index; i < p.len; i += p.groups * 256u) {
        acc = fma(x[b * p.stride + i], w[b * p.stride + i], acc);
    }
    reduce_and_store(lane, b, wg.x, acc);
}

// partials <- per-workgroup sums of x_b
@compute @workgroup_size(256)
fn sum(@builtin(workgroup_id) wg: vec3<u32>, lane: Lane) {
    let b = wg.y;
    var acc = 0.0;
    for (var i = wg.x * 256u + lane.index; i < p.len; i += p.groups * 256u) {
        acc += x[b * p.stride + i];
    }
    reduce_and_store(lane, b, wg.x, acc);
}

// y_b <- y_b + a_b * x_b
@compute @workgroup_size(256)
fn axpy(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = wg.y;
    let a = row_coef(b);
    for (var i = wg.x * 256u + lid.x; i < p.len; i += p.groups * 256u) {
        let j = b * p.stride + i;
        y[j] = fma(a, x[j], y[j]);
    }
}

// y_b <- a_b * y_b
@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = wg.y;
    let a = row_coef(b);
    for (var i = wg.x * 256u + lid.x; i < p.len; i += p.groups * 256u) {
        let j = b * p.stride + i;
        y[j] = a * y[j];
    }
}

// y_b <- x_b, for every row (use_coef 0) or the rows whose flag coef[...] is not 0
@compute @workgroup_size(256)
fn copy(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = wg.y;
    if (p.use_coef != 0u && coef[b * p.coef_stride + p.coef_index] == 0.0) {
        return;
    }
    for (var i = wg.x * 256u + lid.x; i < p.len; i += p.groups * 256u) {
        let j = b * p.stride + i;
        y[j] = x[j];
    }
}

fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn is_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

// Double-f32 arithmetic (hi, lo): error-free transformations (Knuth's two-sum, Dekker's two-product
// with Veltkamp's split; no fma, which WGSL does not promise to fuse). Shader compilers simplify float
// algebra as if it were exact ((a + b) - a -> b), which would erase the error terms; `o` multiplies by
// a 1.0 the compiler cannot see, so no such identity applies. The split halves have 12 bits, so their
// products are exact and contracting them into fma changes nothing. A non-finite hi gets lo = 0, so
// that inf stays inf.
fn o(v: f32) -> f32 {
    return v * p.one;
}

fn two_sum(a: f32, b: f32) -> vec2<f32> {
    let s = o(a + b);
    let bb = o(s - a);
    return vec2<f32>(s, (a - o(s - bb)) + (b - bb));
}

// a = hi + lo with 12-bit halves (Veltkamp)
fn split(a: f32) -> vec2<f32> {
    let c = o(4097.0 * a);
    let hi = o(c - o(c - a));
    return vec2<f32>(hi, a - hi);
}

fn two_prod(a: f32, b: f32) -> vec2<f32> {
    let p = o(a * b);
    let x = split(a);
    let y = split(b);
    return vec2<f32>(p, ((o(x.x * y.x - p) + x.x * y.y) + x.y * y.x) + x.y * y.y);
}

fn fast_two_sum(a: f32, b: f32) -> vec2<f32> {
    let s = o(a + b);
    return vec2<f32>(s, b - o(s - a));
}

fn df_norm(v: vec2<f32>) -> vec2<f32> {
    let r = fast_two_sum(v.x, v.y);
    if (!is_finite(r.x)) {
        return vec2<f32>(r.x, 0.0);
    }
    return r;
}

fn df_add(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let s = two_sum(a.x, b.x);
    let t = two_sum(a.y, b.y);
    let u = fast_two_sum(s.x, s.y + t.x);
    return df_norm(vec2<f32>(u.x, u.y + t.y));
}

fn df_mul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let t = two_prod(a.x, b.x);
    return df_norm(vec2<f32>(t.x, t.y + (a.x * b.y + a.y * b.x)));
}

// a / b: a quotient of hi parts, refined twice with exact residuals.
fn df_div(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let q1 = a.x / b.x;
    let r1 = df_add(a, -df_mul(b, vec2<f32>(q1, 0.0)));
    let q2 = r1.x / b.x;
    let r2 = df_add(r1, -df_mul(b, vec2<f32>(q2, 0.0)));
    let q3 = r2.x / b.x;
    return df_add(df_norm(fast_two_sum(q1, q2)), vec2<f32>(q3, 0.0));
}

fn load(i: u32) -> vec2<f32> {
    return vec2<f32>(sc[i], sc[i + 1u]);
}

fn store(i: u32, v: vec2<f32>) {
    sc[i] = v.x;
    sc[i + 1u] = v.y;
}

fn flag(b: bool) -> vec2<f32> {
    return vec2<f32>(select(0.0, 1.0, b), 0.0);
}

// One thread per row: d = the in-order compensated sum of the row's partials as a double-f32, then
// the operation (see ops::Reduced, whose CPU version computes the same in f64). The element offsets of
// the scalars (SY, YY, GAMMA, RESET, COEF; pair i's block from PAIRS + FIELDS * i with RHO, BAD, MASK,
// ALPHA inside it; a scalar is two elements, hi then lo) and the operation codes OP_* are prepended
// from src/ops/lbfgs_scalars.rs.
@compute @workgroup_size(64)
fn finish(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = gid.x;
    if (b >= p.rows) {
        return;
    }
    var s = 0.0;
    var c = 0.0;
    for (var g = 0u; g < p.groups; g++) {
        let v = partials[b * p.groups + g];
        let t = two_sum(s, v);
        s = t.x;
        c += t.y;
    }
    let d = df_norm(fast_two_sum(s, c));
    let r = b * p.width;
    let pr = r + p.pair; // Store: the element
    let pi = r + PAIRS + FIELDS * p.pair; // other operations: the pair's block
    switch p.op {
        case OP_STORE: {
            store(pr, d);
        }
        case OP_PAIR: {
            let sy = load(r + SY);
            let yy = load(r + YY);
            let norm = sqrt(yy.x) * sqrt(d.x);
            var bad = true;
            if (norm > 0.0) {
                let cos = sy.x / norm;
                bad = is_nan(cos) || cos < MIN_CURVATURE_COSINE;
            }
            // RHO_EPSILON as a double-f32 (both constants are prepended from src/ops/lbfgs_scalars.rs)
            let guard = vec2<f32>(bitcast<f32>(RHO_EPSILON_HI), bitcast<f32>(RHO_EPSILON_LO));
            store(pi + RHO, df_div(vec2<f32>(1.0, 0.0), df_add(sy, guard)));
            store(pi + BAD, flag(bad));
            store(pi + MASK, flag(true));
            store(r + GAMMA, df_div(sy, yy));
        }
        case OP_ALPHA: {
            var alpha = vec2<f32>(0.0, 0.0);
            if (sc[pi + MASK] != 0.0) {
                alpha = df_mul(load(pi + RHO), d);
            }
            store(pi + ALPHA, alpha);
        }
        case OP_BETA: {
            var beta = vec2<f32>(0.0, 0.0);
            if (sc[pi + MASK] != 0.0) {
                beta = df_add(load(pi + ALPHA), -df_mul(load(pi + RHO), d));
            }
            store(r + COEF, beta);
        }
        default: { // OP_RESET
            let pairs = (p.width - PAIRS) / FIELDS;
            var reset = !is_finite(d.x);
            for (var i = 0u; i < pairs; i++) {
                let q = r + PAIRS + FIELDS * i;
                if (sc[q + MASK] != 0.0 && sc[q + BAD] != 0.0) {
                    reset = true;
                }
            }
            store(r + RESET, flag(reset));
            if (reset) {
                for (var i = 0u; i < pairs; i++) {
                    store(r + PAIRS + FIELDS * i + MASK, flag(false));
                }
            }
        }
    }
}
