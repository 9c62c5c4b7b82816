// Average and max pooling (PyTorch's nn.AvgPool2d / nn.MaxPool2d, no padding, floor mode) over
// `planes` maps of in_h x in_w (all vectors, images and channels flattened into planes), a kernel x
// kernel window every `stride` pixels. The average is the window's row-major sum times `scale` (the f32
// of 1 / kernel^2); the maximum is the window's first maximal element in row-major order. Backward is a
// gather over the windows that contain an input element (overlapping windows add); max backward reads
// the forward input again to find each window's maximum (MAX).

struct PoolParams {
    planes: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    kernel: u32,
    stride: u32,
    row: u32,
    scale: f32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> input: array<f32>;

override MAX: bool = false;

// Index (within `plane`'s map) of the first maximal element of window (oy, ox) of `input`.
fn argmax(base: u32, oy: u32, ox: u32) -> u32 {
    var best = oy * p.stride * p.in_w + ox * p.stride;
    for (var ky = 0u; ky < p.kernel; ky++) {
        for (var kx = 0u; kx < p.kernel; kx++) {
            let i = (oy * p.stride + ky) * p.in_w + ox * p.stride + kx;
            if (input[base + i] > input[base + best]) {
                best = i;
            }
        }
    }
    return best;
}

// dst = the pooled src (one thread per output element); max pooling reads src through `input`, which
// the launcher binds to the same buffer.
@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.row;
    let out_map = p.out_h * p.out_w;
    if (t >= p.planes * out_map) {
        return;
    }
    let base = (t / out_map) * p.in_h * p.in_w;
    let oy = (t % out_map) / p.out_w;
    let ox = t % p.out_w;
    if (MAX) {
        dst[t] = input[base + argmax(base, oy, ox)];
        return;
    }
    var acc = 0.0;
    for (var ky = 0u; ky < p.kernel; ky++) {
        for (var kx = 0u; kx < p.kernel; kx++) {
            acc += src[base + (oy * p.stride + ky) * p.in_w + ox * p.stride + kx];
        }
    }
    dst[t] = acc * p.scale;
}

// dst = d loss / d input (one thread per input element) from src = d loss / d pooled.
@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.row;
    let in_map = p.in_h * p.in_w;
    if (t >= p.planes * in_map) {
        return;
    }
    let plane = t / in_map;
    let i = t % in_map;
    let iy = i / p.in_w;
    let ix = i % p.in_w;
    // windows o with o * stride <= i < o * stride + kernel
    let y0 = (max(iy + 1u, p.kernel) - p.kernel + p.stride - 1u) / p.stride;
    let y1 = min(iy / p.stride + 1u, p.out_h);
    let x0 = (max(ix + 1u, p.kernel) - p.kernel + p.stride - 1u) / p.stride;
    let x1 = min(ix / p.stride + 1u, p.out_w);
    var acc = 0.0;
    for (var oy = y0; oy < y1; oy++) {
        for (var ox = x0; ox < x1; ox++) {
            if (!MAX || argmax(plane * in_map, oy, ox) == i) {
                acc += src[(plane * p.out_h + oy) * p.out_w + ox];
            }
        }
    }
    if (MAX) {
        dst[t] = acc;
    } else {
        dst[t] = acc * p.scale;
    }
}
