// requires: common
// Reductions (sum, mean, max) over any set of axes.
//
// Bindings (group 0):
//   0  p    uniform Params
//   1  x    storage read        input
//   2  out  storage read_write  one element per kept index
// The input is viewed as (kept axes) x (reduced axes), each with its own shape and strides, so any
// axis set reduces without a transpose. `reduce`: one workgroup of 64 per output element, threads
// stride over the reduced elements, then a tree in workgroup memory combines their partials (long
// reductions into few outputs: batch statistics, weight gradients). `reduce_each`: one thread per
// output element, a plain loop (short reductions into many outputs: pooling windows), where a
// workgroup per output would leave most of its threads idle at every barrier.
// Op codes (the REDUCE_ constants) are `ReduceOp::code` of src/graph/ops/reduce.rs.

struct Params {
    n_out: u32,
    n_red: u32,
    out_rank: u32,
    red_rank: u32,
    op: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    out_shape: array<vec4<u32>, 2>,
    out_strides: array<vec4<u32>, 2>,
    red_shape: array<vec4<u32>, 2>,
    red_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const REDUCE_SUM: u32 = 0u;
const REDUCE_MEAN: u32 = 1u;
const REDUCE_MAX: u32 = 2u;

var<workgroup> part: array<f32, ROW_WG>;

/// Terms a thread of `reduce` sums apart before adding them to its total.
const BLOCK: u32 = 256u;

fn combine(op: u32, s: f32, v: f32) -> f32 {
    if (op == REDUCE_MAX) { return max(s, v); }
    return s + v;
}

/// Input offset of output element `o`'s first reduced element.
fn out_base(o: u32) -> u32 {
    // One axis (the usual case once the planner has merged contiguous axes) takes no division.
    if (p.out_rank == 1u) { return o * p.out_strides[0][0]; }
    var rem = o;
    var base = 0u;
    for (var d = i32(p.out_rank) - 1; d >= 0; d--) {
        let q = u32(d) / 4u;
        let r = u32(d) % 4u;
        base += (rem % p.out_shape[q][r]) * p.out_strides[q][r];
        rem = rem / p.out_shape[q][r];
    }
    return base;
}

/// Input offset of reduced element `j` relative to an output's base.
fn red_offset(j: u32) -> u32 {
    if (p.red_rank == 1u) { return j * p.red_strides[0][0]; }
    var rj = j;
    var off = 0u;
    for (var d = i32(p.red_rank) - 1; d >= 0; d--) {
        let q = u32(d) / 4u;
        let r = u32(d) % 4u;
        off += (rj % p.red_shape[q][r]) * p.red_strides[q][r];
        rj = rj / p.red_shape[q][r];
    }
    return off;
}

// -inf for max, 0 for sums (made at run time, see neg_inf).
fn identity() -> f32 {
    return select(0.0, neg_inf(p.op), p.op == REDUCE_MAX);
}

fn finish(acc: f32) -> f32 {
    return select(acc, acc / f32(p.n_red), p.op == REDUCE_MEAN);
}

@compute @workgroup_size(ROW_WG)
fn reduce_each(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = grid_index(gid, nwg, ROW_WG);
    if (o >= p.n_out) { return; }
    let base = out_base(o);
    var acc = identity();
    for (var j = 0u; j < p.n_red; j++) {
        acc = combine(p.op, acc, x[base + red_offset(j)]);
    }
    out[o] = finish(acc);
}

@compute @workgroup_size(ROW_WG)
fn reduce(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let o = grid_index(wid, nwg, 1u);
    // `o` is the same for the whole workgroup, so this return keeps barriers in uniform flow.
    if (o >= p.n_out) { return; }
    let base = out_base(o);
    // A thread's terms in blocks of BLOCK, each summed apart and then added: its rounding error
    // grows with BLOCK plus its terms / BLOCK instead of with its terms (the mean |w| of a
    // 4096x4096 kernel is 262144 terms per thread, whose running f32 sum would lose whole
    // percents).
    var acc = identity();
    var j = lid;
    while (j < p.n_red) {
        var block = identity();
        let end = min(p.n_red, j + BLOCK * ROW_WG);
        for (; j < end; j += ROW_WG) {
            block = combine(p.op, block, x[base + red_offset(j)]);
        }
        acc = combine(p.op, acc, block);
    }
    part[lid] = acc;
    workgroupBarrier();
    for (var s = ROW_WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            part[lid] = combine(p.op, part[lid], part[lid + s]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        out[o] = finish(part[0]);
    }
}
