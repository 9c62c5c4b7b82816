// Direct 2-D convolution (cross-correlation, square kernels, zero padding, any stride, optional bias,
// rectangular maps; PyTorch's nn.Conv2d) for B weight vectors at once. Feature maps are [vector][image][channel][row][col]. The convolution input
// is either the packed-u8 images (shared by all vectors, IN_BYTES) or an f32 map per vector.

struct ConvParams {
    images: u32,
    in_c: u32,
    in_h: u32,
    in_w: u32,
    out_c: u32,
    out_h: u32,
    out_w: u32,
    ksize: u32,
    stride: u32,
    pad: u32,
    batches: u32,
    in_off: u32,   // first element of the input (for images: first image * 784)
    in_bs: u32,    // input stride between vectors (0 for the shared images)
    out_bs: u32,   // output stride between vectors
    w_off: u32,    // offset of the weight tensor in a parameter vector
    b_off: u32,    // offset of the bias
    has_bias: u32, // 0: no bias (b_off unused)
    n_prm: u32,    // parameter-vector length
    accumulate: u32,
    row: u32,      // threads per dispatch row, for 2-D grids
}

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> bytes: array<u32>;
@group(0) @binding(5) var<storage, read> grad_out: array<f32>;

override IN_BYTES: bool = false;

var<workgroup> scratch: array<f32, 256>;

fn in_at(b: u32, n: u32, ci: u32, y: i32, x: i32) -> f32 {
    if (y < 0 || x < 0 || y >= i32(p.in_h) || x >= i32(p.in_w)) {
        return 0.0;
    }
    let i = p.in_off + b * p.in_bs + ((n * p.in_c + ci) * p.in_h + u32(y)) * p.in_w + u32(x);
    if (IN_BYTES) {
        let word = bytes[i >> 2u];
        return f32((word >> ((i & 3u) * 8u)) & 0xffu) / 255.0;
    }
    return input[i];
}

// out[b][n][co][oy][ox] = bias[co] + sum_{ci,ky,kx} in[n][ci][oy*s+ky-pad][ox*s+kx-pad] * w[co][ci][ky][kx]
@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.row;
    let per_b = p.images * p.out_c * p.out_h * p.out_w;
    if (t >= per_b * p.batches) {
        return;
    }
    let b = t / per_b;
    var r = t % per_b;
    let ox = r % p.out_w;
    r /= p.out_w;
    let oy = r % p.out_h;
    r /= p.out_h;
    let co = r % p.out_c;
    let n = r / p.out_c;
    let wbase = b * p.n_prm + p.w_off + co * p.in_c * p.ksize * p.ksize;
    var acc = 0.0;
    if (p.has_bias != 0u) {
        acc = weights[b * p.n_prm + p.b_off + co];
    }
    for (var ci = 0u; ci < p.in_c; ci++) {
        for (var ky = 0u; ky < p.ksize; ky++) {
            for (var kx = 0u; kx < p.ksize; kx++) {
                let v = in_at(b, n, ci, i32(oy * p.stride + ky) - i32(p.pad), i32(ox * p.stride + kx) - i32(p.pad));
                acc = fma(v, weights[wbase + (ci * p.ksize + ky) * p.ksize + kx], acc);
            }
        }
    }
    out[b * p.out_bs + t % per_b] = acc;
}

// One workgroup per (weight or bias element, vector): d w[co][ci][ky][kx] = sum over images and output
// positions of dout * in; the bias element of co (index in_c*k*k within co's block) sums dout and is
// written only when the convolution has a bias.
@compute @workgroup_size(256)
fn weight_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = wg.y;
    let kk = p.ksize * p.ksize;
    let per_co = p.in_c * kk + 1u;
    let co = wg.x / per_co;
    let e = wg.x % per_co;
    let is_bias = e == p.in_c * kk;
    let ci = e / kk;
    let ky = (e % kk) / p.ksize;
    let kx = e % p.ksize;
    let positions = p.out_h * p.out_w;
    let total = p.images * positions;
    var acc = 0.0;
    for (var q = lid.x; q < total; q += 256u) {
        let n = q / positions;
        let pos = q % positions;
        let oy = pos / p.out_w;
        let ox = pos % p.out_w;
        let g = grad_out[b * p.out_bs + (n * p.out_c + co) * positions + pos];
        if (is_bias) {
            acc += g;
        } else {
            acc = fma(g, in_at(b, n, ci, i32(oy * p.stride + ky) - i32(p.pad), i32(ox * p.stride + kx) - i32(p.pad)), acc);
        }
    }
    scratch[lid.x] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid.x < s) {
            scratch[lid.x] += scratch[lid.x + s];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u && (!is_bias || p.has_bias != 0u)) {
        var idx: u32;
        if (is_bias) {
            idx = b * p.n_prm + p.b_off + co;
        } else {
            idx = b * p.n_prm + p.w_off + co * p.in_c * kk + e;
        }
        var v = scratch[0];
        if (p.accumulate != 0u) {
            v += out[idx];
        }
        out[idx] = v;
    }
}

// d in[b][n][ci][iy][ix] = sum_{co,ky,kx} dout[n][co][oy][ox] * w[co][ci][ky][kx] over the output
// positions whose window reads it: oy * s = iy - ky + pad, ox * s = ix - kx + pad
@compute @workgroup_size(256)
fn input_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.row;
    let per_b = p.images * p.in_c * p.in_h * p.in_w;
    if (t >= per_b * p.batches) {
        return;
    }
    let b = t / per_b;
    var r = t % per_b;
    let ix = i32(r % p.in_w);
    r /= p.in_w;
    let iy = i32(r % p.in_h);
    r /= p.in_h;
    let ci = r % p.in_c;
    let n = r / p.in_c;
    let s = i32(p.stride);
    let positions = p.out_h * p.out_w;
    var acc = 0.0;
    for (var co = 0u; co < p.out_c; co++) {
        let gbase = b * p.out_bs + (n * p.out_c + co) * positions;
        let wbase = b * p.n_prm + p.w_off + (co * p.in_c + ci) * p.ksize * p.ksize;
        for (var ky = 0u; ky < p.ksize; ky++) {
            let sy = iy - i32(ky) + i32(p.pad);
            let oy = sy / s;
            if (sy < 0 || sy % s != 0 || oy >= i32(p.out_h)) {
                continue;
            }
            for (var kx = 0u; kx < p.ksize; kx++) {
                let sx = ix - i32(kx) + i32(p.pad);
                let ox = sx / s;
                if (sx < 0 || sx % s != 0 || ox >= i32(p.out_w)) {
                    continue;
                }
                acc = fma(grad_out[gbase + u32(oy) * p.out_w + u32(ox)], weights[wbase + ky * p.ksize + kx], acc);
            }
        }
    }
    out[p.in_off + b * p.in_bs + t % per_b] = acc;
}
