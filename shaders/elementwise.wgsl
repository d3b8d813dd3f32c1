// Elementwise kernels: unary functions, their gradients, broadcasting binary functions, fill.
//
// Bindings (group 0):
//   0  p    uniform Params
//   1  a    storage read        unary: x | unary_grad: x | binary: lhs
//   2  b    storage read        unary_grad: dy | binary: rhs
//   3  out  storage read_write  result
// Op codes mirror `UnaryOp::code` and `BinaryOp::code` in src/graph/op.rs.
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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;

// A quiet NaN made at run time: browsers' WGSL compilers reject a non-finite constant
// expression such as bitcast<f32>(0x7fc00000u) (naga accepts it), so the bits depend on a uniform.
fn nan() -> f32 {
    return bitcast<f32>(0x7fc00000u | (p.n & 0u));
}

fn flat_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// tanh from exp of a non-positive argument: no overflow for large |x|.
fn stable_tanh(x: f32) -> f32 {
    let t = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - t) / (1.0 + t);
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

fn unary_f(op: u32, x: f32) -> f32 {
    switch op {
        case 0u: { return -x; }
        case 1u: { return abs(x); }
        case 2u: { return exp(x); }
        case 3u: { return log(x); }
        case 4u: { return sqrt(x); }
        case 5u: { return x * x; }
        case 6u: { return 1.0 / x; }
        case 7u: { return max(x, 0.0); }
        case 8u: { return sigmoid(x); }
        case 9u: { return stable_tanh(x); }
        case 10u: { return select(-1.0, 1.0, x >= 0.0); }
        case 11u: { return x * p.alpha; }
        case 12u: { return x + p.alpha; }
        case 13u: { return min(max(x, p.alpha), p.beta); }
        case 14u: { return trunc(x); }
        default: { return nan(); }
    }
}

fn unary_grad_f(op: u32, x: f32, dy: f32) -> f32 {
    switch op {
        case 0u: { return -dy; }
        case 1u: { return dy * sign(x); }
        case 2u: { return dy * exp(x); }
        case 3u: { return dy / x; }
        case 4u: { return dy * 0.5 / sqrt(x); }
        case 5u: { return dy * 2.0 * x; }
        case 6u: { return -dy / (x * x); }
        case 7u: { return select(0.0, dy, x > 0.0); }
        case 8u: { let s = sigmoid(x); return dy * s * (1.0 - s); }
        case 9u: { let t = stable_tanh(x); return dy * (1.0 - t * t); }
        case 10u: { return 0.0; }
        case 11u: { return dy * p.alpha; }
        case 12u: { return dy; }
        case 13u: { return select(0.0, dy, x >= p.alpha && x <= p.beta); }
        case 14u: { return 0.0; }
        default: { return nan(); }
    }
}

fn binary_f(op: u32, x: f32, y: f32) -> f32 {
    switch op {
        case 0u: { return x + y; }
        case 1u: { return x - y; }
        case 2u: { return x * y; }
        case 3u: { return x / y; }
        case 4u: { return max(x, y); }
        case 5u: { return min(x, y); }
        case 6u: { return select(0.0, 1.0, x >= y); }
        case 7u: { return select(0.0, 1.0, x > y); }
        case 8u: { return select(0.0, 1.0, x == y); }
        default: { return nan(); }
    }
}

@compute @workgroup_size(256)
fn unary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = unary_f(p.op, a[i]);
}

@compute @workgroup_size(256)
fn unary_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = unary_grad_f(p.op, a[i], b[i]);
}

@compute @workgroup_size(256)
fn binary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(gid, nwg);
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

@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = p.alpha;
}
