// Workgroup sums with subgroup operations (the WGSL subgroups extension; wgpu's Features::SUBGROUP).
// Same names and contract as reduce.wgsl, which it replaces on devices that have subgroups. Each
// subgroup adds its values with subgroupAdd; its first invocation stores the subgroup's partial in
// workgroup memory; subgroup 0 then adds the partials (each of its invocations a strided run of them,
// in order) and a last subgroupAdd. Every subgroupAdd is reached by all invocations (uniform control
// flow); only subgroup 0's last result is used. No `enable subgroups;` directive: naga 30 rejects it
// as not yet implemented and accepts the builtins without it.

struct Lane {
    @builtin(local_invocation_index) index: u32,
    @builtin(subgroup_invocation_id) id: u32,
    @builtin(subgroup_size) size: u32,
    @builtin(subgroup_id) group: u32,
    @builtin(num_subgroups) groups: u32,
}

var<workgroup> reduce_scratch: array<vec2<f32>, 256>;

// The workgroup's sum of v (componentwise); valid in the invocation where lane_leads(lane).
fn workgroup_sum2(lane: Lane, v: vec2<f32>) -> vec2<f32> {
    let mine = subgroupAdd(v);
    if (lane.id == 0u) {
        reduce_scratch[lane.group] = mine;
    }
    workgroupBarrier();
    var part = vec2<f32>(0.0, 0.0);
    if (lane.group == 0u) {
        for (var i = lane.id; i < lane.groups; i += lane.size) {
            part += reduce_scratch[i];
        }
    }
    return subgroupAdd(part);
}

// The workgroup's sum of v; valid in the invocation where lane_leads(lane).
fn workgroup_sum(lane: Lane, v: f32) -> f32 {
    return workgroup_sum2(lane, vec2<f32>(v, 0.0)).x;
}

// True in the one invocation that holds the workgroup sums.
fn lane_leads(lane: Lane) -> bool {
    return lane.group == 0u && lane.id == 0u;
}
