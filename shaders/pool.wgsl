// 2x2 average pooling, stride 2, over `planes` square maps of side `in_hw` (all vectors, images and
// channels flattened into planes).

struct PoolParams {
    planes: u32,
    in_hw: u32,
    row: u32,
    _p0: u32,
}

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.row;
    let out_hw = p.in_hw / 2u;
    if (t >= p.planes * out_hw * out_hw) {
        return;
    }
    let plane = t / (out_hw * out_hw);
    let y = (t / out_hw) % out_hw;
    let x = t % out_hw;
    let base = plane * p.in_hw * p.in_hw + 2u * y * p.in_hw + 2u * x;
    dst[t] = 0.25 * (src[base] + src[base + 1u] + src[base + p.in_hw] + src[base + p.in_hw + 1u]);
}

// dst = gradient of the pooled input: each input cell gets a quarter of its window's gradient.
@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.row;
    if (t >= p.planes * p.in_hw * p.in_hw) {
        return;
    }
    let out_hw = p.in_hw / 2u;
    let plane = t / (p.in_hw * p.in_hw);
    let y = (t / p.in_hw) % p.in_hw;
    let x = t % p.in_hw;
    dst[t] = 0.25 * src[(plane * out_hw + y / 2u) * out_hw + x / 2u];
}
