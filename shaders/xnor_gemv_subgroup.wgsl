// requires: xnor_common, xnor_gemv_lanes
// Packed XNOR-popcount products for small m (batch-1 inference) with a subgroup reduction; the
// same computation as xnor_gemv.wgsl, used when the adapter has subgroups of at least 8
// invocations (wgpu's SUBGROUP feature; naga 30 gates the builtins by that capability and does not
// yet parse `enable subgroups;`). Uses xnor_common.wgsl and xnor_gemv_lanes.wgsl; same
// bindings and epilogues as xnor_gemm.wgsl.
// Each workgroup of 256 computes 32 output columns of one row, 8 invocations per column. WebGPU
// does not say which invocations share a subgroup, so nothing here assumes it: subgroup
// `subgroup_id` takes the block of subgroup_size / 8 columns with that index, its invocations
// split those columns' K words by subgroup_invocation_id, and subgroupAdd sums each column's 8
// partial popcounts (one subgroupAdd per column of the block, over that column's invocations).
// Dispatch (ceil(n/32), m, batch).

fn column_popcount(wid: vec3<u32>, block: u32, sid: u32, size: u32) -> ColumnPopcount {
    let per_block = size / 8u;
    let col = wid.x * 32u + block * per_block + sid / 8u;
    let mine = lane_popcount(wid, col, sid % 8u, 8u);
    // Each column's 8 invocations are sid / 8 == j: sum over them with one reduction per column.
    var total = 0u;
    for (var j = 0u; j < per_block; j++) {
        let s = subgroupAdd(select(0u, mine, sid / 8u == j));
        if (sid / 8u == j) { total = s; }
    }
    return ColumnPopcount(col, total, sid % 8u == 0u);
}

@compute @workgroup_size(256)
fn xnor_gemv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) block: u32, @builtin(subgroup_invocation_id) sid: u32, @builtin(subgroup_size) size: u32) {
    let r = column_popcount(wid, block, sid, size);
    if (r.owner && r.col < p.n) {
        c[(wid.z * p.m + wid.y) * p.n + r.col] = dot_of(r.popcount);
    }
}

@compute @workgroup_size(256)
fn xnor_gemv_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) block: u32, @builtin(subgroup_invocation_id) sid: u32, @builtin(subgroup_size) size: u32) {
    let r = column_popcount(wid, block, sid, size);
    if (r.owner && r.col < p.n) {
        c[(wid.z * p.m + wid.y) * p.n + r.col] = affine(dot_of(r.popcount), r.col);
    }
}

@compute @workgroup_size(256)
fn xnor_gemv_binarize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) block: u32, @builtin(subgroup_invocation_id) sid: u32, @builtin(subgroup_size) size: u32) {
    if (lid == 0u) { atomicStore(&bit_word, 0u); }
    workgroupBarrier();
    let r = column_popcount(wid, block, sid, size);
    if (r.owner && r.col < p.n && affine(dot_of(r.popcount), r.col) < 0.0) {
        atomicOr(&bit_word, 1u << (r.col % 32u));
    }
    workgroupBarrier();
    if (lid == 0u) {
        c_bits[(wid.z * p.m + wid.y) * p.out_words + wid.x] = atomicLoad(&bit_word);
    }
}
