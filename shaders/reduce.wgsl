// Workgroup sums for kernels of @workgroup_size(256), prepended to loss.wgsl and vector.wgsl. This is
// the portable version: a fixed-order tree in workgroup memory. reduce_subgroups.wgsl defines the same
// names with subgroup operations, for devices that have them (src/gpu/shaders.rs chooses).
// Each function is called once per invocation, from uniform control flow, by all 256 invocations.

struct Lane {
    @builtin(local_invocation_index) index: u32,
}

var<workgroup> reduce_scratch: array<vec2<f32>, 256>;

// The workgroup's sum of v (componentwise); valid in the invocation where lane_leads(lane).
fn workgroup_sum2(lane: Lane, v: vec2<f32>) -> vec2<f32> {
    reduce_scratch[lane.index] = v;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (lane.index < stride) {
            reduce_scratch[lane.index] += reduce_scratch[lane.index + stride];
        }
        workgroupBarrier();
    }
    return reduce_scratch[0];
}

// The workgroup's sum of v; valid in the invocation where lane_leads(lane).
fn workgroup_sum(lane: Lane, v: f32) -> f32 {
    return workgroup_sum2(lane, vec2<f32>(v, 0.0)).x;
}

// True in the one invocation that holds the workgroup sums.
fn lane_leads(lane: Lane) -> bool {
    return lane.index == 0u;
}
