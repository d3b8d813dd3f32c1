// requires: common
// Where each row's label ranks among its scores: the metrics' accuracy and top-k hits in one
// pass over the classes, one invocation per row.
//
// Bindings (group 0):
//   0  p       uniform Params
//   1  scores  storage read        f32 [rows, cols]
//   2  targets storage read        label_rank_sparse: i32 labels [rows] | label_rank_onehot:
//                                  f32 [rows, cols], the label is the first largest entry
//                                  (read as bits: one binding, two element types)
//   3  out     storage read_write  f32 [rows]: classes scoring above the label, plus, with
//                                  p.first_ties, classes tied with it at a lower index
// A label outside 0..cols ranks cols (never a hit). rank < k is TensorFlow's in_top_k (ties
// count in); with first_ties, rank 0 is argmax picking the label (its first largest score).

struct Params {
    rows: u32,
    cols: u32,
    first_ties: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn rank_of(row: u32, label: i32) -> f32 {
    if (label < 0 || u32(label) >= p.cols) { return f32(p.cols); }
    let base = row * p.cols;
    let at = scores[base + u32(label)];
    var rank = 0u;
    for (var c = 0u; c < p.cols; c++) {
        let s = scores[base + c];
        if (s > at || (p.first_ties != 0u && s == at && c < u32(label))) { rank += 1u; }
    }
    return f32(rank);
}

@compute @workgroup_size(WG)
fn label_rank_sparse(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = flat_index(gid, nwg);
    if (row >= p.rows) { return; }
    out[row] = rank_of(row, bitcast<i32>(targets[row]));
}

@compute @workgroup_size(WG)
fn label_rank_onehot(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = flat_index(gid, nwg);
    if (row >= p.rows) { return; }
    var label = 0u;
    for (var c = 1u; c < p.cols; c++) {
        if (bitcast<f32>(targets[row * p.cols + c]) > bitcast<f32>(targets[row * p.cols + label])) { label = c; }
    }
    out[row] = rank_of(row, i32(label));
}
