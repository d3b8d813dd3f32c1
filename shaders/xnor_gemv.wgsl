// requires: xnor_common, xnor_gemv_lanes
// Packed XNOR-popcount products for small m (batch-1 inference), without subgroup operations;
// xnor_gemv_subgroup.wgsl is the same computation with a subgroup reduction. Uses
// xnor_common.wgsl and xnor_gemv_lanes.wgsl; same bindings and epilogues as xnor_gemm.wgsl:
//   0 p, 1 a [batch, m, words], 2 b [n, words] or [batch, n, words], 3 scale [n], 4 bias [n],
//   5 c f32 [batch, m, n] (plain, affine), 6 c_bits u32 [batch, m, out_words] (binarize).
// Each workgroup of 256 computes 32 output columns of one row; the 8 lanes of a column split K so
// that neighbouring invocations read neighbouring words, and sum their partial popcounts through
// workgroup memory. Dispatch (ceil(n/32), m, batch).

var<workgroup> partial: array<u32, 256>;

fn column_popcount(wid: vec3<u32>, lid: u32) -> ColumnPopcount {
    let col = wid.x * 32u + lid / 8u;
    partial[lid] = lane_popcount(wid, col, lid % 8u, 8u);
    workgroupBarrier();
    var total = 0u;
    if (lid % 8u == 0u) {
        for (var l = 0u; l < 8u; l++) { total += partial[lid + l]; }
    }
    return ColumnPopcount(col, total, lid % 8u == 0u);
}

@compute @workgroup_size(256)
fn xnor_gemv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = column_popcount(wid, lid);
    if (r.owner && r.col < p.n) {
        c[(wid.z * p.m + wid.y) * p.n + r.col] = dot_of(r.popcount);
    }
}

@compute @workgroup_size(256)
fn xnor_gemv_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = column_popcount(wid, lid);
    if (r.owner && r.col < p.n) {
        c[(wid.z * p.m + wid.y) * p.n + r.col] = affine(dot_of(r.popcount), r.col);
    }
}

@compute @workgroup_size(256)
fn xnor_gemv_binarize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) { atomicStore(&bit_word, 0u); }
    workgroupBarrier();
    let r = column_popcount(wid, lid);
    if (r.owner && r.col < p.n && affine(dot_of(r.popcount), r.col) < 0.0) {
        atomicOr(&bit_word, 1u << (r.col % 32u));
    }
    workgroupBarrier();
    if (lid == 0u) {
        c_bits[(wid.z * p.m + wid.y) * p.out_words + wid.x] = atomicLoad(&bit_word);
    }
}
