// requires: common
// The elementwise functions, shared by the elementwise family (shaders/elementwise.wgsl) and the
// kernels the planner generates for fused chains of elementwise ops (src/runtime/fuse.rs): one
// home per function. Constants and functions only. Op codes (the UNARY_ and BINARY_ constants)
// are `UnaryOp::code` and `BinaryOp::code` of src/graph/ops/elementwise.rs (a test compares
// them); `alpha` and `beta` are the op's scalar parameters, `runtime` any value read from a
// uniform (it makes the NaN of an unknown code, see `nan`).

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

fn unary_f(op: u32, x: f32, alpha: f32, beta: f32, runtime: u32) -> f32 {
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
        case UNARY_SCALE: { return x * alpha; }
        case UNARY_OFFSET: { return x + alpha; }
        case UNARY_CLIP: { return min(max(x, alpha), beta); }
        case UNARY_TRUNC: { return trunc(x); }
        default: { return nan(runtime); }
    }
}

fn unary_grad_f(op: u32, x: f32, dy: f32, alpha: f32, beta: f32, runtime: u32) -> f32 {
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
        case UNARY_SCALE: { return dy * alpha; }
        case UNARY_OFFSET: { return dy; }
        case UNARY_CLIP: { return select(0.0, dy, x >= alpha && x <= beta); }
        case UNARY_TRUNC: { return 0.0; }
        default: { return nan(runtime); }
    }
}

fn binary_f(op: u32, x: f32, y: f32, runtime: u32) -> f32 {
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
        default: { return nan(runtime); }
    }
}

// The index of an operand whose non-broadcast axes are one contiguous run of the output's: the
// output index divided by the size of the axes after the run, modulo the run's size. Equal
// shapes (divisor 1, modulus n, the output's size) and per-channel or scalar operands take no
// strided loop; the divisions are skipped where they do nothing, as integer division is slow on
// CPU rasterizers.
fn block_index(i: u32, div: u32, modulus: u32, n: u32) -> u32 {
    var j = i;
    if (div != 1u) { j = j / div; }
    if (modulus != n) { j = j % modulus; }
    return j;
}
