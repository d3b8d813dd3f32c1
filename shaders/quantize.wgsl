// requires: common
// Larq quantizers: forward values and pseudo-gradients, elementwise, following Larq 0.14's
// operations in order so that f32 results match.
//
// Bindings (group 0):
//   0  p     uniform Params
//   1  x     storage read        input (latent values)
//   2  stat  storage read        statistic, `stat_len` values read at i % stat_len
//                                (MagnitudeAwareSign scale per channel, SteTern TWN threshold,
//                                DoReFa weights max|tanh|); unused by the others
//   3  dy    storage read        upstream gradient (quantize_grad)
//   4  out   storage read_write  quantize: q(x) | quantize_grad: dq/dx * dy
// Each function has its own pair of entry points, `quantize_<name>` and `quantize_grad_<name>`
// with <name> its QUANT_ constant (`QuantFn::code` of src/graph/ops/quantize.rs; a test compares
// them) in lower case: the entry passes its constant to `forward` or `gradient`, so each
// compiles without the others' cases (a CPU rasterizer would run every case under a mask).
// `QuantFn::params` gives clip, a and levels: swish_sign reads a = beta, scaled_sign (magnitude-aware) scales
// by stat, ste_tern's threshold is a unless has_stat.
// `clip` is the straight-through window (|x| <= clip passes, inclusive); +inf means no clipping.
// `levels` = 2^k_bit - 1. Dispatch: 1-D over n elements, folded into y past 65535 groups.

struct Params {
    n: u32,
    _pad1: u32,
    stat_len: u32,
    has_stat: u32,
    clip: f32,
    a: f32,
    levels: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> stat: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const QUANT_STE_SIGN: u32 = 0u;
const QUANT_APPROX_SIGN: u32 = 1u;
const QUANT_STE_HEAVISIDE: u32 = 2u;
const QUANT_SWISH_SIGN: u32 = 3u;
const QUANT_SCALED_SIGN: u32 = 4u;
const QUANT_STE_TERN: u32 = 5u;
const QUANT_DO_RE_FA_ACTIVATIONS: u32 = 6u;
const QUANT_DO_RE_FA_WEIGHTS: u32 = 7u;
const QUANT_IDENTITY: u32 = 8u;

// TensorFlow's sign: zero at zero.
fn tf_sign(v: f32) -> f32 {
    return select(select(0.0, -1.0, v < 0.0), 1.0, v > 0.0);
}

fn stat_at(i: u32) -> f32 {
    return stat[i % p.stat_len];
}

fn passes(v: f32) -> bool {
    return abs(v) <= p.clip;
}

fn forward(i: u32, v: f32, code: u32) -> f32 {
    switch code {
        case QUANT_STE_SIGN, QUANT_APPROX_SIGN, QUANT_SWISH_SIGN: { return larq_sign(v); }
        case QUANT_STE_HEAVISIDE: { return select(0.0, 1.0, v > 0.0); }
        case QUANT_SCALED_SIGN: { return stat_at(i) * larq_sign(v); }
        case QUANT_STE_TERN: {
            let d = select(p.a, stat_at(i), p.has_stat == 1u);
            return tf_sign(tf_sign(v + d) + tf_sign(v - d));
        }
        case QUANT_DO_RE_FA_ACTIVATIONS: { return round(clamp(v, 0.0, 1.0) * p.levels) / p.levels; }
        case QUANT_DO_RE_FA_WEIGHTS: {
            let m2 = 2.0 * stat_at(i);
            // divide_no_nan: an all-zero tensor has max |tanh| = 0 and quantizes 0 / 0 as 0.
            let normed = select(stable_tanh(v) / m2, 0.0, m2 == 0.0) + 0.5;
            return 2.0 * (round(normed * p.levels) / p.levels) - 1.0;
        }
        case QUANT_IDENTITY, default: { return v; }
    }
}

fn gradient(i: u32, v: f32, g: f32, code: u32) -> f32 {
    switch code {
        case QUANT_STE_SIGN, QUANT_STE_HEAVISIDE, QUANT_STE_TERN: { return select(0.0, g, passes(v)); }
        case QUANT_APPROX_SIGN: { return select(0.0, (1.0 - abs(v)) * 2.0 * g, abs(v) <= 1.0); }
        case QUANT_SWISH_SIGN: {
            let bx = p.a * v;
            return g * p.a * (2.0 - bx * stable_tanh(bx * 0.5)) / (1.0 + cosh(bx));
        }
        case QUANT_SCALED_SIGN: { return select(0.0, stat_at(i) * g, passes(v)); }
        case QUANT_DO_RE_FA_ACTIVATIONS: { return select(0.0, g, v >= 0.0 && v <= 1.0); }
        case QUANT_DO_RE_FA_WEIGHTS: {
            let t = stable_tanh(v);
            let m2 = 2.0 * stat_at(i);
            return select((2.0 * g) / m2, 0.0, m2 == 0.0) * (1.0 - t * t);
        }
        case QUANT_IDENTITY, default: { return g; }
    }
}

@compute @workgroup_size(WG)
fn quantize_ste_sign(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = forward(i, x[i], QUANT_STE_SIGN); }
}

@compute @workgroup_size(WG)
fn quantize_grad_ste_sign(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = gradient(i, x[i], dy[i], QUANT_STE_SIGN); }
}

@compute @workgroup_size(WG)
fn quantize_approx_sign(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = forward(i, x[i], QUANT_APPROX_SIGN); }
}

@compute @workgroup_size(WG)
fn quantize_grad_approx_sign(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = gradient(i, x[i], dy[i], QUANT_APPROX_SIGN); }
}

@compute @workgroup_size(WG)
fn quantize_ste_heaviside(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = forward(i, x[i], QUANT_STE_HEAVISIDE); }
}

@compute @workgroup_size(WG)
fn quantize_grad_ste_heaviside(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = gradient(i, x[i], dy[i], QUANT_STE_HEAVISIDE); }
}

@compute @workgroup_size(WG)
fn quantize_swish_sign(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = forward(i, x[i], QUANT_SWISH_SIGN); }
}

@compute @workgroup_size(WG)
fn quantize_grad_swish_sign(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = gradient(i, x[i], dy[i], QUANT_SWISH_SIGN); }
}

@compute @workgroup_size(WG)
fn quantize_scaled_sign(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = forward(i, x[i], QUANT_SCALED_SIGN); }
}

@compute @workgroup_size(WG)
fn quantize_grad_scaled_sign(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = gradient(i, x[i], dy[i], QUANT_SCALED_SIGN); }
}

@compute @workgroup_size(WG)
fn quantize_ste_tern(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = forward(i, x[i], QUANT_STE_TERN); }
}

@compute @workgroup_size(WG)
fn quantize_grad_ste_tern(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = gradient(i, x[i], dy[i], QUANT_STE_TERN); }
}

@compute @workgroup_size(WG)
fn quantize_do_re_fa_activations(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = forward(i, x[i], QUANT_DO_RE_FA_ACTIVATIONS); }
}

@compute @workgroup_size(WG)
fn quantize_grad_do_re_fa_activations(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = gradient(i, x[i], dy[i], QUANT_DO_RE_FA_ACTIVATIONS); }
}

@compute @workgroup_size(WG)
fn quantize_do_re_fa_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = forward(i, x[i], QUANT_DO_RE_FA_WEIGHTS); }
}

@compute @workgroup_size(WG)
fn quantize_grad_do_re_fa_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = gradient(i, x[i], dy[i], QUANT_DO_RE_FA_WEIGHTS); }
}

@compute @workgroup_size(WG)
fn quantize_identity(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = forward(i, x[i], QUANT_IDENTITY); }
}

@compute @workgroup_size(WG)
fn quantize_grad_identity(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = gradient(i, x[i], dy[i], QUANT_IDENTITY); }
}
