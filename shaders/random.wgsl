// requires: common
// Counter-based random numbers: element i of a tensor is a pure function of (seed, i), so any
// backend, dispatch shape or thread order draws the same numbers. The CPU reference
// (src/graph/ops/random.rs, `random_bits`) implements the same hash.
//
// Bindings (group 0):
//   0  p    uniform Params
//   1  out     storage read_write  f32 [n]
//   2  stream  storage read        f32 [1]  (random_streamed only: its integer value is mixed
//                                           into the high seed word, as `stream_seed` does)
// dist (`Distribution::code` of src/graph/ops/random.rs): DIST_UNIFORM on [a, b), DIST_NORMAL with
// mean a and standard deviation b (Box-Muller), DIST_TRUNCATED_NORMAL the same normal truncated at
// two standard deviations (Keras' TruncatedNormal): out-of-range draws are redrawn from fresh
// counters, up to 32 times, then clamped.

struct Params {
    n: u32,
    dist: u32,
    seed_lo: u32,
    seed_hi: u32,
    a: f32,
    b: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> stream: array<f32>;

const DIST_UNIFORM: u32 = 0u;
const DIST_NORMAL: u32 = 1u;
const DIST_TRUNCATED_NORMAL: u32 = 2u;
const TWO_PI: f32 = 6.283185307179586;

// "lowbias32" integer hash (Wellons): full avalanche, cheap, identical in any language.
fn mix32(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

fn key_of(seed_lo: u32, seed_hi: u32) -> u32 {
    return mix32(seed_lo ^ mix32(seed_hi ^ 0x9e3779b9u));
}

fn random_bits(key: u32, counter: u32) -> u32 {
    return mix32(counter ^ key);
}

// 24 random bits scaled into [0, 1): exact in f32.
fn unit(bits: u32) -> f32 {
    return f32(bits >> 8u) * (1.0 / 16777216.0);
}

const ATTEMPTS: u32 = 32u;

// A standard normal draw (Box-Muller) from the counter pair (2c, 2c + 1); 1 - u lies in (0, 1],
// so the logarithm is finite.
fn normal(key: u32, c: u32) -> f32 {
    let u1 = 1.0 - unit(random_bits(key, 2u * c));
    let u2 = unit(random_bits(key, 2u * c + 1u));
    return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

fn draw(key: u32, i: u32) -> f32 {
    if (p.dist == DIST_UNIFORM) {
        return p.a + (p.b - p.a) * unit(random_bits(key, i));
    } else if (p.dist == DIST_NORMAL) {
        return p.a + p.b * normal(key, i);
    } else { // DIST_TRUNCATED_NORMAL
        var z = clamp(normal(key, i * ATTEMPTS), -2.0, 2.0);
        for (var a = 0u; a < ATTEMPTS; a++) {
            let d = normal(key, i * ATTEMPTS + a);
            if (abs(d) <= 2.0) {
                z = d;
                break;
            }
        }
        return p.a + p.b * z;
    }
}

@compute @workgroup_size(WG)
fn random(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = draw(key_of(p.seed_lo, p.seed_hi), i);
}

@compute @workgroup_size(WG)
fn random_streamed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = draw(key_of(p.seed_lo, p.seed_hi ^ mix32(u32(stream[0]))), i);
}
