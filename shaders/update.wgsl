// requires: common, update_fns
// Fused optimizer updates: each function is one pass over a variable's elements, in the order
// of operations of the op-by-op form it replaces (Keras' and Larq's update order), so that a
// training step runs one dispatch per slot and per variable instead of one per arithmetic step.
//
// Bindings (group 0): arrays shaped as the variable in a, b, c, then [1] scalars in d, e; an
// unused slot is bound to `a` and never read.
//   0  p    uniform Params
//   1  a    storage read        the variable or slot being updated (x)
//   2  b    storage read        the second array (y): gradient, moment or velocity
//   3  c    storage read        the third array (z)
//   4  d    storage read        f32 [1], the first scalar (s)
//   5  e    storage read        f32 [1], the second scalar (t)
//   6  out  storage read_write  the new value
// The functions are in shaders/update_fns.wgsl. Each has its own entry point, named as the
// UPDATE_ constant in lower case (which is `UpdateFn::code` of src/graph/ops/update.rs; a test
// compares them): the entry passes its constant to `update_f`, so each compiles without the
// others' cases (a CPU rasterizer such as lavapipe would otherwise run every case under a mask)
// and without the loads its function does not use. `k` is 1 - beta for the moments, epsilon for Adam's steps, and `k`, `k2`
// are ln beta_1, ln beta_2 for Adam's step size.
//   UPDATE_MOMENT:          x + (y - x) * k
//   UPDATE_SQUARED_MOMENT:  x + (y * y - x) * k
//   UPDATE_ADAM_STEP:       x - (y * s) / (sqrt(z) + k)
//   UPDATE_ADAM_W_STEP:     (x - x * t) - (y * s) / (sqrt(z) + k)
//   UPDATE_SGD:             x - y * s
//   UPDATE_VELOCITY:        x * t - y * s
//   UPDATE_NESTEROV_STEP:   x + (y * t - z * s)
//   UPDATE_BOP_MOMENT:      x + (y - x) * s
//   UPDATE_BOP_FLIP:        larq_sign(-(sign(x * y - s) * x)), sign with 0 at 0 (TensorFlow's)
//   UPDATE_ADAM_ALPHA:      s * sqrt(1 - exp((x + 1) * k2)) / (1 - exp((x + 1) * k)), x the
//                           iteration count (each step in the op-by-op form's order)
// Dispatch: 1-D over n elements, folded into y past 65535 groups.

struct Params {
    n: u32,
    k: f32,
    k2: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read> d: array<f32>;
@group(0) @binding(5) var<storage, read> e: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn update_moment(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = update_f(UPDATE_MOMENT, a[i], b[i], c[i], d[0], e[0], p.k, p.k2); }
}

@compute @workgroup_size(WG)
fn update_squared_moment(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = update_f(UPDATE_SQUARED_MOMENT, a[i], b[i], c[i], d[0], e[0], p.k, p.k2); }
}

@compute @workgroup_size(WG)
fn update_adam_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = update_f(UPDATE_ADAM_STEP, a[i], b[i], c[i], d[0], e[0], p.k, p.k2); }
}

@compute @workgroup_size(WG)
fn update_adam_w_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = update_f(UPDATE_ADAM_W_STEP, a[i], b[i], c[i], d[0], e[0], p.k, p.k2); }
}

@compute @workgroup_size(WG)
fn update_sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = update_f(UPDATE_SGD, a[i], b[i], c[i], d[0], e[0], p.k, p.k2); }
}

@compute @workgroup_size(WG)
fn update_velocity(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = update_f(UPDATE_VELOCITY, a[i], b[i], c[i], d[0], e[0], p.k, p.k2); }
}

@compute @workgroup_size(WG)
fn update_nesterov_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = update_f(UPDATE_NESTEROV_STEP, a[i], b[i], c[i], d[0], e[0], p.k, p.k2); }
}

@compute @workgroup_size(WG)
fn update_bop_moment(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = update_f(UPDATE_BOP_MOMENT, a[i], b[i], c[i], d[0], e[0], p.k, p.k2); }
}

@compute @workgroup_size(WG)
fn update_bop_flip(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = update_f(UPDATE_BOP_FLIP, a[i], b[i], c[i], d[0], e[0], p.k, p.k2); }
}

@compute @workgroup_size(WG)
fn update_adam_alpha(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = update_f(UPDATE_ADAM_ALPHA, a[i], b[i], c[i], d[0], e[0], p.k, p.k2); }
}
