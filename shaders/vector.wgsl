// Vector operations on B rows of length `len` (row b starts at b * stride), for the optimizers.
// Reductions write one partial per workgroup (fixed-order tree); the host adds partials in f64.

struct Params {
    len: u32,
    stride: u32,
    groups: u32, // workgroups per row (dispatch x extent)
    _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> coef: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
@group(0) @binding(5) var<storage, read> w: array<f32>;

var<workgroup> scratch: array<f32, 256>;

fn reduce_and_store(lid: u32, b: u32, g: u32, v: f32) {
    scratch[lid] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) {
            scratch[lid] += scratch[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        partials[b * p.groups + g] = scratch[0];
    }
}

// partials <- per-workgroup sums of x_b . w_b
@compute @workgroup_size(256)
fn dot(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = wg.y;
    var acc = 0.0;
    for (var i = wg.x * 256u + lid.x; i < p.len; i += p.groups * 256u) {
        acc = fma(x[b * p.stride + i], w[b * p.stride + i], acc);
    }
    reduce_and_store(lid.x, b, wg.x, acc);
}

// partials <- per-workgroup sums of x_b
@compute @workgroup_size(256)
fn sum(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = wg.y;
    var acc = 0.0;
    for (var i = wg.x * 256u + lid.x; i < p.len; i += p.groups * 256u) {
        acc += x[b * p.stride + i];
    }
    reduce_and_store(lid.x, b, wg.x, acc);
}

// y_b <- y_b + coef[b] * x_b
@compute @workgroup_size(256)
fn axpy(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = wg.y;
    let a = coef[b];
    for (var i = wg.x * 256u + lid.x; i < p.len; i += p.groups * 256u) {
        let j = b * p.stride + i;
        y[j] = fma(a, x[j], y[j]);
    }
}

// y_b <- coef[b] * y_b
@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = wg.y;
    let a = coef[b];
    for (var i = wg.x * 256u + lid.x; i < p.len; i += p.groups * 256u) {
        let j = b * p.stride + i;
        y[j] = a * y[j];
    }
}
