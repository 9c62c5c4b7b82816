// Per-image losses and their gradients with respect to the network output, for a chunk of images and
// B weight vectors (workgroup y = vector). Each workgroup sums its 256 per-image losses (a fixed-order
// tree, or subgroup sums where the device has them: reduce*.wgsl) and writes one partial; the host adds
// the partials in f64.

struct Params {
    images: u32,       // images in this chunk
    width: u32,        // outputs per image (10 classes)
    first_image: u32,  // index of the chunk's first image in the dataset
    part_off: u32,     // first partial slot of this chunk
    parts: u32,        // partial slots per weight vector
    out_bs: u32,       // stride between weight vectors in the output buffer
    inv_total: f32,    // 1 / (images in the whole evaluation): the loss is a mean
    img_bs: u32,       // images per weight vector when each vector has its own (0: shared images)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>; // [vector][slot][loss, correct]
@group(0) @binding(5) var<storage, read> bytes: array<u32>;           // images, for reconstruction

// Sums the workgroup's losses and correct counts (reduce.wgsl or reduce_subgroups.wgsl, prepended) and
// writes them as the workgroup's partial.
fn store_partials(b: u32, wg: u32, lane: Lane, loss: f32, correct: f32) {
    let total = workgroup_sum2(lane, vec2<f32>(loss, correct));
    if (lane_leads(lane)) {
        let slot = (b * p.parts + p.part_off + wg) * 2u;
        partials[slot] = total.x;
        partials[slot + 1u] = total.y;
    }
}

// Cross-entropy without cancellation. With r the largest logit (the label when it ties),
// loss = log1p(sum_{k != r} exp(z_k - z_r)) + (z_r - z_y); when the label wins, that is log1p of a tiny
// sum, resolved to full relative precision. The gradient p - onehot uses p_y - 1 = -s / (1 + s).
@compute @workgroup_size(256)
fn cross_entropy(@builtin(workgroup_id) wg: vec3<u32>, lane: Lane) {
    let b = wg.y;
    let n = wg.x * 256u + lane.index;
    var loss = 0.0;
    var correct = 0.0;
    if (n < p.images) {
        let base = b * p.out_bs + n * p.width;
        let y = labels[b * p.img_bs + p.first_image + n];
        var r = y;
        var first_max = 0u;
        for (var k = 0u; k < p.width; k++) {
            let zk = logits[base + k];
            if (zk > logits[base + r]) {
                r = k;
            }
            if (zk > logits[base + first_max]) {
                first_max = k;
            }
        }
        let zr = logits[base + r];
        var s = 0.0;
        for (var k = 0u; k < p.width; k++) {
            if (k != r) {
                s += exp(logits[base + k] - zr);
            }
        }
        loss = log1p_nonneg(s) + (zr - logits[base + y]);
        correct = select(0.0, 1.0, first_max == y);
        let inv = 1.0 / (1.0 + s);
        for (var k = 0u; k < p.width; k++) {
            var g: f32;
            if (k == r) {
                g = inv;
                if (k == y) {
                    g = -s * inv;
                }
            } else {
                g = exp(logits[base + k] - zr) * inv;
                if (k == y) {
                    g = g - 1.0;
                }
            }
            dlogits[base + k] = g * p.inv_total;
        }
    }
    store_partials(b, wg.x, lane, loss, correct);
}

// Reconstruction: output sigmoid(z), loss = mean over images and pixels of (sigmoid(z) - x)^2 against
// the input image itself. The per-image partial is the image's pixel mean, so the host's mean over
// images is the mean over images and pixels.
@compute @workgroup_size(256)
fn mse_sigmoid(@builtin(workgroup_id) wg: vec3<u32>, lane: Lane) {
    let b = wg.y;
    let n = wg.x * 256u + lane.index;
    var loss = 0.0;
    if (n < p.images) {
        let base = b * p.out_bs + n * p.width;
        let scale = 2.0 * p.inv_total / f32(p.width);
        for (var k = 0u; k < p.width; k++) {
            let i = (b * p.img_bs + p.first_image + n) * p.width + k;
            let x = f32((bytes[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu) / 255.0;
            let y = sigmoid(logits[base + k]);
            let d = y - x;
            loss = fma(d, d, loss);
            dlogits[base + k] = scale * d * y * (1.0 - y);
        }
        loss = loss / f32(p.width);
    }
    store_partials(b, wg.x, lane, loss, 0.0);
}
