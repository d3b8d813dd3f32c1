// requires: common
// Fused optimizer updates: each function is one pass over a variable's elements, in the order
// of operations of the op-by-op form it replaces (Keras' update order), so that a training step
// runs one dispatch per slot and per variable instead of one per arithmetic step.
//
// Bindings (group 0):
//   0  p    uniform Params
//   1  a    storage read        the variable or slot being updated
//   2  b    storage read        the gradient (moments) or the new first moment (steps)
//   3  c    storage read        the new second moment (steps; else bound to `a`)
//   4  d    storage read        f32 [1]: Adam's step size alpha (steps; else bound to `a`)
//   5  e    storage read        f32 [1]: AdamW's decay factor weight_decay * lr (else `a`)
//   6  out  storage read_write  the new value
// `op` is one of the UPDATE_ constants below, `UpdateFn::code` of src/graph/ops/update.rs (a
// test compares them); `s` is 1 - beta for the moments and epsilon for the steps.
//   UPDATE_MOMENT:          a + (b - a) * s
//   UPDATE_SQUARED_MOMENT:  a + (b * b - a) * s
//   UPDATE_ADAM_STEP:       a - (b * d) / (sqrt(c) + s)
//   UPDATE_ADAM_W_STEP:     (a - a * e) - (b * d) / (sqrt(c) + s)
// Dispatch: 1-D over n elements, folded into y past 65535 groups.

struct Params {
    n: u32,
    op: u32,
    s: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read> d: array<f32>;
@group(0) @binding(5) var<storage, read> e: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

const UPDATE_MOMENT: u32 = 0u;
const UPDATE_SQUARED_MOMENT: u32 = 1u;
const UPDATE_ADAM_STEP: u32 = 2u;
const UPDATE_ADAM_W_STEP: u32 = 3u;

@compute @workgroup_size(WG)
fn update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let x = a[i];
    switch p.op {
        case UPDATE_MOMENT: {
            let dm = b[i] - x;
            out[i] = x + dm * p.s;
        }
        case UPDATE_SQUARED_MOMENT: {
            let g = b[i];
            let dv = g * g - x;
            out[i] = x + dv * p.s;
        }
        case UPDATE_ADAM_STEP: {
            let step = b[i] * d[0];
            out[i] = x - step / (sqrt(c[i]) + p.s);
        }
        case UPDATE_ADAM_W_STEP, default: {
            let base = x - x * e[0];
            let step = b[i] * d[0];
            out[i] = base - step / (sqrt(c[i]) + p.s);
        }
    }
}
