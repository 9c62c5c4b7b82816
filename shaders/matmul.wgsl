// Batched, strided matrix product C[z] (+)= alpha * A[z] * B[z] with 64x64 output tiles.
// Every operand is addressed through strides, so one kernel serves X*W^T (forward), dY*W (backward data)
// and dY^T*X (weight gradient). A column index n of B and C may be split into groups
// (n / ng, n % ng) with their own strides: that lets the first layer of B weight vectors be one product
// X [N x 784] * [W_1 | ... | W_B]^T. Either operand may be the packed-u8 image buffer (A_BYTES/B_BYTES).

struct Params {
    m: u32, n: u32, k: u32, accumulate: u32,
    a_off: u32, a_bs: u32, a_rs: u32, a_cs: u32,
    b_off: u32, b_bs: u32, b_rs: u32, b_cs: u32,
    b_ng: u32, b_gs: u32, c_off: u32, c_bs: u32,
    c_rs: u32, c_cs: u32, c_ng: u32, c_gs: u32,
    alpha: f32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a_f32: array<f32>;
@group(0) @binding(2) var<storage, read> b_f32: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bytes: array<u32>;

override A_BYTES: bool = false;
override B_BYTES: bool = false;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> a_tile: array<f32, 1024>; // [TK][TM]
var<workgroup> b_tile: array<f32, 1024>; // [TK][TN]

// Pixel byte i of the packed image buffer, scaled to [0, 1] like torchvision's ToTensor.
fn pixel(i: u32) -> f32 {
    let word = bytes[i >> 2u];
    return f32((word >> ((i & 3u) * 8u)) & 0xffu) / 255.0;
}

fn load_a(z: u32, m: u32, k: u32) -> f32 {
    if (m >= p.m || k >= p.k) {
        return 0.0;
    }
    let i = p.a_off + z * p.a_bs + m * p.a_rs + k * p.a_cs;
    if (A_BYTES) {
        return pixel(i);
    }
    return a_f32[i];
}

fn load_b(z: u32, k: u32, n: u32) -> f32 {
    if (k >= p.k || n >= p.n) {
        return 0.0;
    }
    let i = p.b_off + z * p.b_bs + k * p.b_rs + (n / p.b_ng) * p.b_gs + (n % p.b_ng) * p.b_cs;
    if (B_BYTES) {
        return pixel(i);
    }
    return b_f32[i];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let z = wg.z;
    let m0 = wg.y * TM;
    let n0 = wg.x * TN;
    let tid = lid.y * 16u + lid.x;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = 0.0;
    }
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        // Tile loads: consecutive threads walk the operand's unit-stride dimension.
        for (var r = 0u; r < 4u; r++) {
            let e = tid + r * 256u;
            var mm: u32;
            var kk: u32;
            if (p.a_cs == 1u) {
                mm = e / TK;
                kk = e % TK;
            } else {
                kk = e / TM;
                mm = e % TM;
            }
            a_tile[kk * TM + mm] = load_a(z, m0 + mm, k0 + kk);
            var nn: u32;
            if (p.b_rs == 1u) {
                nn = e / TK;
                kk = e % TK;
            } else {
                kk = e / TN;
                nn = e % TN;
            }
            b_tile[kk * TN + nn] = load_b(z, k0 + kk, n0 + nn);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = a_tile[kk * TM + lid.y + 16u * i];
                bv[i] = b_tile[kk * TN + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(av[i], bv[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + lid.x + 16u * j;
            if (m < p.m && n < p.n) {
                let idx = p.c_off + z * p.c_bs + m * p.c_rs + (n / p.c_ng) * p.c_gs + (n % p.c_ng) * p.c_cs;
                var v = p.alpha * acc[i * 4u + j];
                if (p.accumulate != 0u) {
                    v += c[idx];
                }
                c[idx] = v;
            }
        }
    }
}
