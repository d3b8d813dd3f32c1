// requires: common
// Elementwise kernels: unary functions, their gradients, broadcasting binary functions, fill.
//
// Bindings (group 0):
//   0  p    uniform Params
//   1  a    storage read        unary: x | unary_grad: x | binary: lhs
//   2  b    storage read        unary_grad: dy | binary: rhs
//   3  out  storage read_write  result
// Op codes (the UNARY_ and BINARY_ constants) are `UnaryOp::code` and `BinaryOp::code` of
// src/graph/ops/elementwise.rs (a test compares them).
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

const UNARY_NEG: u32 = 0u;
const UNARY_ABS: u32 = 1u;
const UNARY_EXP: u32 = 2u;
const UNARY_LOG: u32 = 3u;
const UNARY_SQRT: u32 = 4u;
const UNARY_SQUARE: u32 = 5u;
const UNARY_RECIP: u32 = 6u;
const UNARY_RELU: u32 = 7u;
const UNARY_SIGMOID: u32 = 8u;
const UNARY_TANH: u32 = 9u;
const UNARY_SIGN: u32 = 10u;
const UNARY_SCALE: u32 = 11u;
const UNARY_OFFSET: u32 = 12u;
const UNARY_CLIP: u32 = 13u;
const UNARY_TRUNC: u32 = 14u;

const BINARY_ADD: u32 = 0u;
const BINARY_SUB: u32 = 1u;
const BINARY_MUL: u32 = 2u;
const BINARY_DIV: u32 = 3u;
const BINARY_MAX: u32 = 4u;
const BINARY_MIN: u32 = 5u;
const BINARY_GE: u32 = 6u;
const BINARY_GT: u32 = 7u;
const BINARY_EQ: u32 = 8u;

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

fn unary_f(op: u32, x: f32) -> f32 {
    switch op {
        case UNARY_NEG: { return -x; }
        case UNARY_ABS: { return abs(x); }
        case UNARY_EXP: { return exp(x); }
        case UNARY_LOG: { return log(x); }
        case UNARY_SQRT: { return sqrt(x); }
        case UNARY_SQUARE: { return x * x; }
        case UNARY_RECIP: { return 1.0 / x; }
        case UNARY_RELU: { return max(x, 0.0); }
        case UNARY_SIGMOID: { return sigmoid(x); }
        case UNARY_TANH: { return stable_tanh(x); }
        case UNARY_SIGN: { return larq_sign(x); }
        case UNARY_SCALE: { return x * p.alpha; }
        case UNARY_OFFSET: { return x + p.alpha; }
        case UNARY_CLIP: { return min(max(x, p.alpha), p.beta); }
        case UNARY_TRUNC: { return trunc(x); }
        default: { return nan(p.n); }
    }
}

fn unary_grad_f(op: u32, x: f32, dy: f32) -> f32 {
    switch op {
        case UNARY_NEG: { return -dy; }
        case UNARY_ABS: { return dy * sign(x); }
        case UNARY_EXP: { return dy * exp(x); }
        case UNARY_LOG: { return dy / x; }
        case UNARY_SQRT: { return dy * 0.5 / sqrt(x); }
        case UNARY_SQUARE: { return dy * 2.0 * x; }
        case UNARY_RECIP: { return -dy / (x * x); }
        case UNARY_RELU: { return select(0.0, dy, x > 0.0); }
        case UNARY_SIGMOID: { let s = sigmoid(x); return dy * s * (1.0 - s); }
        case UNARY_TANH: { let t = stable_tanh(x); return dy * (1.0 - t * t); }
        case UNARY_SIGN: { return 0.0; }
        case UNARY_SCALE: { return dy * p.alpha; }
        case UNARY_OFFSET: { return dy; }
        case UNARY_CLIP: { return select(0.0, dy, x >= p.alpha && x <= p.beta); }
        case UNARY_TRUNC: { return 0.0; }
        default: { return nan(p.n); }
    }
}

fn binary_f(op: u32, x: f32, y: f32) -> f32 {
    switch op {
        case BINARY_ADD: { return x + y; }
        case BINARY_SUB: { return x - y; }
        case BINARY_MUL: { return x * y; }
        case BINARY_DIV: { return x / y; }
        case BINARY_MAX: { return max(x, y); }
        case BINARY_MIN: { return min(x, y); }
        case BINARY_GE: { return select(0.0, 1.0, x >= y); }
        case BINARY_GT: { return select(0.0, 1.0, x > y); }
        case BINARY_EQ: { return select(0.0, 1.0, x == y); }
        default: { return nan(p.n); }
    }
}

@compute @workgroup_size(WG)
fn unary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = unary_f(p.op, a[i]);
}

@compute @workgroup_size(WG)
fn unary_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = unary_grad_f(p.op, a[i], b[i]);
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
    out[i] = binary_f(p.op, a[ia], b[ib]);
}

// The index of an operand whose non-broadcast axes are one contiguous run of the output's: the
// output index divided by the size of the axes after the run, modulo the run's size. Equal
// shapes (divisor 1, modulus n) and per-channel or scalar operands take no strided loop; the
// divisions are skipped where they do nothing, as integer division is slow on CPU rasterizers.
fn block_index(i: u32, div: u32, modulus: u32) -> u32 {
    var j = i;
    if (div != 1u) { j = j / div; }
    if (modulus != p.n) { j = j % modulus; }
    return j;
}

@compute @workgroup_size(WG)
fn binary_blocks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = binary_f(p.op, a[block_index(i, p.blocks.x, p.blocks.y)], b[block_index(i, p.blocks.z, p.blocks.w)]);
}

@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = p.alpha;
}
