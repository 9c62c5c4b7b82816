// Mini-batch selection for B runs at once: run b's batch is images idx[b * stride + offset + n] of the
// dataset, n < per_run; they are copied (as packed u32 words) to a buffer of per_run images per run.

struct SelectParams {
    per_run: u32,
    runs: u32,
    stride: u32,  // index-list length per run
    offset: u32,  // first index of this batch in each run's list
    row: u32,
    words: u32,   // packed u32 words per image (pixels / 4)
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: SelectParams;
@group(0) @binding(1) var<storage, read> src_pixels: array<u32>;
@group(0) @binding(2) var<storage, read> src_labels: array<u32>;
@group(0) @binding(3) var<storage, read> idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> dst_pixels: array<u32>;
@group(0) @binding(5) var<storage, read_write> dst_labels: array<u32>;

@compute @workgroup_size(256)
fn select_images(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.row;
    if (t >= p.runs * p.per_run * p.words) {
        return;
    }
    let slot = t / p.words;
    let b = slot / p.per_run;
    let n = slot % p.per_run;
    let image = idx[b * p.stride + p.offset + n];
    dst_pixels[t] = src_pixels[image * p.words + t % p.words];
    if (t % p.words == 0u) {
        dst_labels[slot] = src_labels[image];
    }
}
