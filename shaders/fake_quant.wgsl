// requires: common
// TensorFlow's fake quantization (FakeQuantWithMinMaxVars and its PerChannel variant), in f32
// and in TensorFlow's order of operations, and the masks its gradients use.
//
// Bindings (group 0):
//   0  p    uniform Params
//   1  x    storage read        input
//   2  lo   storage read        min, one value or one per last-axis channel (`channels`)
//   3  hi   storage read        max, likewise
//   4  out  storage read_write  FAKE_QUANT_VALUE: the fake-quantized value | FAKE_QUANT_IN_RANGE:
//                               1 where nudged_min <= x <= nudged_max | FAKE_QUANT_BELOW_MIN: 1
//                               where x < nudged_min | FAKE_QUANT_ABOVE_MAX: 1 where x > nudged_max
// (`part`: `FakeQuantPart::code` of src/graph/ops/fake_quant.rs).
// A range with min = max = 0 gives 0, and a gradient that passes everywhere (TensorFlow's rule).
// Dispatch: 1-D over n elements, folded into y past 65535 groups.

struct Params {
    n: u32,
    channels: u32,
    part: u32,
    // 1: one range per channel, multiplying by the inverse scale (TensorFlow's PerChannel
    // kernel); 0: one range, dividing by the scale (its per-tensor kernel).
    per_channel: u32,
    quant_min: f32,
    quant_max: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> lo: array<f32>;
@group(0) @binding(3) var<storage, read> hi: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const FAKE_QUANT_VALUE: u32 = 0u;
const FAKE_QUANT_IN_RANGE: u32 = 1u;
const FAKE_QUANT_BELOW_MIN: u32 = 2u;
const FAKE_QUANT_ABOVE_MAX: u32 = 3u;

struct Nudged {
    scale: f32,
    inv_scale: f32,
    min: f32,
    max: f32,
}

// std::round: halves away from zero (WGSL's round() goes to even). v - trunc(v) is exact.
fn round_half_away(v: f32) -> f32 {
    let t = trunc(v);
    return select(t, t + sign(v), abs(v - t) >= 0.5);
}

fn nudge(min: f32, max: f32) -> Nudged {
    let scale = (max - min) / (p.quant_max - p.quant_min);
    let inv_scale = (p.quant_max - p.quant_min) / (max - min);
    let from_min = p.quant_min - min / scale;
    var zero_point = round_half_away(from_min);
    if (from_min < p.quant_min) {
        zero_point = p.quant_min;
    } else if (from_min > p.quant_max) {
        zero_point = p.quant_max;
    }
    return Nudged(scale, inv_scale, (p.quant_min - zero_point) * scale, (p.quant_max - zero_point) * scale);
}

@compute @workgroup_size(WG)
fn fake_quant(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let c = i % p.channels;
    let v = x[i];
    let empty = lo[c] == 0.0 && hi[c] == 0.0;
    let r = nudge(lo[c], hi[c]);
    switch p.part {
        case FAKE_QUANT_VALUE: {
            let quant_zero = floor(-r.min * r.inv_scale + 0.5);
            let shifted = max(min(v, r.max), r.min) - r.min;
            let units = select(shifted / r.scale, shifted * r.inv_scale, p.per_channel == 1u);
            out[i] = select(floor(units - quant_zero + 0.5) * r.scale, 0.0, empty);
        }
        case FAKE_QUANT_IN_RANGE: { out[i] = select(0.0, 1.0, empty || (v >= r.min && v <= r.max)); }
        case FAKE_QUANT_BELOW_MIN: { out[i] = select(0.0, 1.0, !empty && v < r.min); }
        case FAKE_QUANT_ABOVE_MAX, default: { out[i] = select(0.0, 1.0, !empty && v > r.max); }
    }
}
