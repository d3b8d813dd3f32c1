// Template for user-defined quantizers. The two functions between the USER FUNCTIONS markers
// are replaced by the user's `fn forward(x: f32) -> f32` and `fn gradient(x: f32, dy: f32) -> f32`
// (see `CustomQuantizer` in src/quantizers/custom.rs); as written here they are the identity
// quantizer, so this file is validated like every other shader. It requires no shared part on
// purpose: the user's code shares the module's namespace, and may use any name but this file's
// (Params, p, x, dy, out, quantize, quantize_grad). So it spells out the 256-thread workgroup
// and the folded flat index of common.wgsl (a test holds it to `kernels::WG`).
//
// Bindings (group 0):
//   0  p    uniform Params
//   1  x    storage read        input
//   2  dy   storage read        upstream gradient (quantize_grad)
//   3  out  storage read_write  quantize: forward(x) | quantize_grad: gradient(x, dy)
// Dispatch: 1-D over n elements, folded into y past 65535 groups.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// BEGIN USER FUNCTIONS
fn forward(x: f32) -> f32 {
    return x;
}

fn gradient(x: f32, dy: f32) -> f32 {
    return dy;
}
// END USER FUNCTIONS

@compute @workgroup_size(256)
fn quantize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    out[i] = forward(x[i]);
}

@compute @workgroup_size(256)
fn quantize_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    out[i] = gradient(x[i], dy[i]);
}
