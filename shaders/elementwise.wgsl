// requires: common, elementwise_fns
// Elementwise kernels: unary functions, their gradients, broadcasting binary functions, fill.
//
// Bindings (group 0):
//   0  p    uniform Params
//   1  a    storage read        unary: x | unary_grad: x | binary: lhs
//   2  b    storage read        unary_grad: dy | binary: rhs
//   3  out  storage read_write  result
// The functions and op codes are in shaders/elementwise_fns.wgsl.
// `binary` reads each operand through per-axis strides; `binary_blocks` serves the operands whose
// index is one division and one remainder of the output's (see `block_index`).
// Dispatch: 1-D over `n` elements in workgroups of 256, folded into y past 65535 groups.

struct Params {
    n: u32,
    op: u32,
    rank: u32,
    _pad0: u32,
    alpha: f32,
    beta: f32,
    _pad1: u32,
    _pad2: u32,
    // Output shape and each operand's element strides (0 on broadcast axes), 8 axes max.
    shape: array<vec4<u32>, 2>,
    a_strides: array<vec4<u32>, 2>,
    b_strides: array<vec4<u32>, 2>,
    // binary_blocks: (divisor, modulus) of a, then of b.
    blocks: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn unary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = unary_f(p.op, a[i], p.alpha, p.beta, p.n);
}

@compute @workgroup_size(WG)
fn unary_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = unary_grad_f(p.op, a[i], b[i], p.alpha, p.beta, p.n);
}

@compute @workgroup_size(WG)
fn binary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let q = u32(d) / 4u;
        let r = u32(d) % 4u;
        let c = rem % p.shape[q][r];
        rem = rem / p.shape[q][r];
        ia += c * p.a_strides[q][r];
        ib += c * p.b_strides[q][r];
    }
    out[i] = binary_f(p.op, a[ia], b[ib], p.n);
}

@compute @workgroup_size(WG)
fn binary_blocks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = binary_f(p.op, a[block_index(i, p.blocks.x, p.blocks.y, p.n)], b[block_index(i, p.blocks.z, p.blocks.w, p.n)], p.n);
}

@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = p.alpha;
}
