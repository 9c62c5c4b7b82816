// Element-wise activations: forward a = f(z), backward d <- d * f'(z) in place.
// ACT: 0 softplus, 1 relu, 2 sigmoid, 3 tanh.

struct Params {
    len: u32,
    row: u32, // threads per dispatch row (the x extent times 256), for 2-D dispatches of long vectors
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

override ACT: u32 = 0u;

fn act(x: f32) -> f32 {
    switch ACT {
        case 0u: { return softplus(x); }
        case 1u: { return max(x, 0.0); }
        case 2u: { return sigmoid(x); }
        default: { return tanh(x); }
    }
}

fn act_grad(x: f32) -> f32 {
    switch ACT {
        case 0u: { return softplus_grad(x); }
        case 1u: { return select(0.0, 1.0, x > 0.0); }
        case 2u: { let s = sigmoid(x); return s * (1.0 - s); }
        default: { let t = tanh(x); return 1.0 - t * t; }
    }
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * p.row;
    if (i < p.len) {
        out[i] = act(z[i]);
    }
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * p.row;
    if (i < p.len) {
        out[i] = out[i] * act_grad(z[i]);
    }
}
