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
// Codes mirror `QuantFn::code` in src/graph/op.rs:
//   0 ste_sign   1 approx_sign   2 ste_heaviside   3 swish_sign (a = beta)   4 scaled_sign
//   (magnitude-aware, scale = stat)   5 ste_tern (a = threshold unless has_stat)
//   6 dorefa activations   7 dorefa weights   8 identity.
// `clip` is the straight-through window (|x| <= clip passes, inclusive); +inf means no clipping.
// `levels` = 2^k_bit - 1. Dispatch: 1-D over n elements, folded into y past 65535 groups.

struct Params {
    n: u32,
    code: u32,
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

const WG: u32 = 256u;

// Larq's sign: never zero.
fn larq_sign(v: f32) -> f32 {
    return select(-1.0, 1.0, v >= 0.0);
}

// TensorFlow's sign: zero at zero.
fn tf_sign(v: f32) -> f32 {
    return select(select(0.0, -1.0, v < 0.0), 1.0, v > 0.0);
}

fn stable_tanh(v: f32) -> f32 {
    let t = exp(-2.0 * abs(v));
    return sign(v) * (1.0 - t) / (1.0 + t);
}

fn stat_at(i: u32) -> f32 {
    return stat[i % p.stat_len];
}

fn passes(v: f32) -> bool {
    return abs(v) <= p.clip;
}

fn forward(i: u32, v: f32) -> f32 {
    switch p.code {
        case 0u, 1u, 3u: { return larq_sign(v); }
        case 2u: { return select(0.0, 1.0, v > 0.0); }
        case 4u: { return stat_at(i) * larq_sign(v); }
        case 5u: {
            let d = select(p.a, stat_at(i), p.has_stat == 1u);
            return tf_sign(tf_sign(v + d) + tf_sign(v - d));
        }
        case 6u: { return round(clamp(v, 0.0, 1.0) * p.levels) / p.levels; }
        case 7u: {
            let m2 = 2.0 * stat_at(i);
            // divide_no_nan: an all-zero tensor has max |tanh| = 0 and quantizes 0 / 0 as 0.
            let normed = select(stable_tanh(v) / m2, 0.0, m2 == 0.0) + 0.5;
            return 2.0 * (round(normed * p.levels) / p.levels) - 1.0;
        }
        default: { return v; }
    }
}

fn gradient(i: u32, v: f32, g: f32) -> f32 {
    switch p.code {
        case 0u, 2u, 5u: { return select(0.0, g, passes(v)); }
        case 1u: { return select(0.0, (1.0 - abs(v)) * 2.0 * g, abs(v) <= 1.0); }
        case 3u: {
            let bx = p.a * v;
            return g * p.a * (2.0 - bx * stable_tanh(bx * 0.5)) / (1.0 + cosh(bx));
        }
        case 4u: { return select(0.0, stat_at(i) * g, passes(v)); }
        case 6u: { return select(0.0, g, v >= 0.0 && v <= 1.0); }
        case 7u: {
            let t = stable_tanh(v);
            let m2 = 2.0 * stat_at(i);
            return select((2.0 * g) / m2, 0.0, m2 == 0.0) * (1.0 - t * t);
        }
        default: { return g; }
    }
}

@compute @workgroup_size(256)
fn quantize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n) { return; }
    out[i] = forward(i, x[i]);
}

@compute @workgroup_size(256)
fn quantize_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n) { return; }
    out[i] = gradient(i, x[i], dy[i]);
}
