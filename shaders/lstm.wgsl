// LSTM pieces for B weight vectors (PyTorch nn.LSTM, gate order i, f, g, o; docs/networks.md).
// With H hidden units and S steps: gates buffer [vector][image][step][4H] pre-activations; states:
// [vector][image][S + 1][H] cells (slot 0 = c_0 = 0) and [vector][image][S][H] step inputs h_0..h_{S-1}
// (slot 0 = h_0 = 0), h_S apart.

struct LstmParams {
    images: u32,
    batches: u32,
    step: u32,
    n_prm: u32,
    bias_ih: u32,     // offsets of the two bias vectors in a parameter vector
    bias_hh: u32,
    first_image: u32, // gather: first image of the chunk
    row: u32,
    img_bs: u32,      // gather: images per vector when each vector has its own (0: shared)
    hidden: u32,      // H
    steps: u32,       // sequence length
    pixels: u32,      // inputs per image: steps x features
}

@group(0) @binding(0) var<uniform> p: LstmParams;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> gates: array<f32>;
@group(0) @binding(3) var<storage, read_write> cells: array<f32>;
@group(0) @binding(4) var<storage, read_write> hidden: array<f32>;
@group(0) @binding(5) var<storage, read_write> last: array<f32>;
@group(0) @binding(6) var<storage, read_write> dh: array<f32>;   // backward: d loss / d h of this step
@group(0) @binding(7) var<storage, read_write> dc: array<f32>;   // backward: carried d loss / d c

@group(0) @binding(8) var<storage, read> bytes: array<u32>;
@group(0) @binding(9) var<storage, read> perm: array<u32>;
@group(0) @binding(10) var<storage, read_write> xperm: array<f32>;


// xperm[b][n][j] = pixel P[j] of image b * img_bs + first_image + n, scaled to [0, 1]; with shared
// images (img_bs = 0) run it for one vector.
@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.row;
    if (t >= p.batches * p.images * p.pixels) {
        return;
    }
    let b = t / (p.images * p.pixels);
    let n = (t / p.pixels) % p.images;
    let i = (b * p.img_bs + p.first_image + n) * p.pixels + perm[t % p.pixels];
    let word = bytes[i >> 2u];
    xperm[t] = f32((word >> ((i & 3u) * 8u)) & 0xffu) / 255.0;
}

fn sigm(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// One thread per (vector, image, unit): adds the biases to the step's gates (kept for backward) and
// advances c and h.
@compute @workgroup_size(256)
fn cell_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.row;
    if (t >= p.batches * p.images * p.hidden) {
        return;
    }
    let b = t / (p.images * p.hidden);
    let j = t % p.hidden;
    let bn = t / p.hidden; // = b * images + n
    let gbase = (bn * p.steps + p.step) * (4u * p.hidden);
    var z: array<f32, 4>;
    for (var q = 0u; q < 4u; q++) {
        let k = q * p.hidden + j;
        z[q] = gates[gbase + k] + weights[b * p.n_prm + p.bias_ih + k] + weights[b * p.n_prm + p.bias_hh + k];
        gates[gbase + k] = z[q];
    }
    let c_prev = cells[(bn * (p.steps + 1u) + p.step) * p.hidden + j];
    let c = sigm(z[1]) * c_prev + sigm(z[0]) * tanh(z[2]);
    cells[(bn * (p.steps + 1u) + p.step + 1u) * p.hidden + j] = c;
    let h = sigm(z[3]) * tanh(c);
    if (p.step + 1u < p.steps) {
        hidden[(bn * p.steps + p.step + 1u) * p.hidden + j] = h;
    } else {
        last[bn * p.hidden + j] = h;
    }
}

// Backward through one step: from d h_s (dh) and the carried d c_s (dc), overwrite the step's gates
// with d loss / d gates and carry d c_{s-1}.
@compute @workgroup_size(256)
fn cell_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.row;
    if (t >= p.batches * p.images * p.hidden) {
        return;
    }
    let j = t % p.hidden;
    let bn = t / p.hidden; // = b * images + n
    let gbase = (bn * p.steps + p.step) * (4u * p.hidden);
    let i = sigm(gates[gbase + j]);
    let f = sigm(gates[gbase + p.hidden + j]);
    let g = tanh(gates[gbase + 2u * p.hidden + j]);
    let o = sigm(gates[gbase + 3u * p.hidden + j]);
    let c_prev = cells[(bn * (p.steps + 1u) + p.step) * p.hidden + j];
    let tc = tanh(cells[(bn * (p.steps + 1u) + p.step + 1u) * p.hidden + j]);
    let dh_s = dh[bn * p.hidden + j];
    var dc_s = dh_s * o * (1.0 - tc * tc);
    if (p.step + 1u < p.steps) {
        dc_s += dc[bn * p.hidden + j];
    }
    gates[gbase + j] = dc_s * g * i * (1.0 - i);
    gates[gbase + p.hidden + j] = dc_s * c_prev * f * (1.0 - f);
    gates[gbase + 2u * p.hidden + j] = dc_s * i * (1.0 - g * g);
    gates[gbase + 3u * p.hidden + j] = dh_s * tc * o * (1.0 - o);
    dc[bn * p.hidden + j] = dc_s * f;
}
