// requires: common
// Softmax over the last axis and fused softmax cross-entropy with integer labels.
//
// Bindings (group 0):
//   0  p       uniform Params
//   1  x       storage read        logits [rows, cols]
//   2  labels  storage read        i32 [rows]        (xent, xent_grad)
//   3  dloss   storage read        f32 [rows]        (xent_grad)
//   4  out     storage read_write  softmax: [rows, cols] | xent: [rows] | xent_grad: [rows, cols]
// One workgroup of 64 per row. Every row subtracts its max before exponentiating, so large logits
// never overflow. A label outside 0..cols yields NaN (loss and gradient) rather than a silent value.

struct Params {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> dloss: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> part: array<f32, ROW_WG>;

// Max and sum-of-exp over one row; called by every thread of the workgroup (uniform flow).
fn row_max(base: u32, lid: u32) -> f32 {
    var m = neg_inf(p.rows);
    for (var j = lid; j < p.cols; j += ROW_WG) {
        m = max(m, x[base + j]);
    }
    part[lid] = m;
    workgroupBarrier();
    for (var s = ROW_WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) { part[lid] = max(part[lid], part[lid + s]); }
        workgroupBarrier();
    }
    let r = part[0];
    workgroupBarrier();
    return r;
}

fn row_sum_exp(base: u32, lid: u32, m: f32) -> f32 {
    var acc = 0.0;
    for (var j = lid; j < p.cols; j += ROW_WG) {
        acc += exp(x[base + j] - m);
    }
    part[lid] = acc;
    workgroupBarrier();
    for (var s = ROW_WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) { part[lid] = part[lid] + part[lid + s]; }
        workgroupBarrier();
    }
    let r = part[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(ROW_WG)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = grid_index(wid, nwg, 1u);
    if (row >= p.rows) { return; }
    let base = row * p.cols;
    let m = row_max(base, lid);
    let s = row_sum_exp(base, lid, m);
    for (var j = lid; j < p.cols; j += ROW_WG) {
        out[base + j] = exp(x[base + j] - m) / s;
    }
}

@compute @workgroup_size(ROW_WG)
fn xent(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = grid_index(wid, nwg, 1u);
    if (row >= p.rows) { return; }
    let base = row * p.cols;
    let m = row_max(base, lid);
    let s = row_sum_exp(base, lid, m);
    if (lid == 0u) {
        let label = labels[row];
        if (label < 0 || u32(label) >= p.cols) {
            out[row] = nan(p.rows);
        } else {
            out[row] = log(s) + m - x[base + u32(label)];
        }
    }
}

@compute @workgroup_size(ROW_WG)
fn xent_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = grid_index(wid, nwg, 1u);
    if (row >= p.rows) { return; }
    let base = row * p.cols;
    let m = row_max(base, lid);
    let s = row_sum_exp(base, lid, m);
    let label = labels[row];
    let valid = label >= 0 && u32(label) < p.cols;
    let g = dloss[row];
    for (var j = lid; j < p.cols; j += ROW_WG) {
        let onehot = select(0.0, 1.0, valid && u32(label) == j);
        let d = (exp(x[base + j] - m) / s - onehot) * g;
        out[base + j] = select(nan(p.rows), d, valid);
    }
}
