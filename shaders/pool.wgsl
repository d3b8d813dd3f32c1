// requires: common
// The gradient of a maximum over the middle axis of x [rows, taps, c] (max pooling's windows as
// im2col lays them out), as TensorFlow gives it: with `first` set (MaxPoolGrad, 1-D and 2-D
// pooling) all of a window's gradient goes to its first maximal tap; without (MaxPool3DGrad)
// every maximal tap receives all of it. One pass instead of comparisons, ranks, a reduction and
// products over the whole patch matrix.
//
// Bindings (group 0):
//   0  p    uniform Params
//   1  x    storage read        f32 [rows, taps, c]
//   2  y    storage read        f32 [rows, c], the maximum of each window
//   3  dy   storage read        f32 [rows, c]
//   4  out  storage read_write  f32 [rows, taps, c]
// Dispatch: 1-D over rows * c windows (one invocation walks its window's taps), folded into y
// past 65535 groups.

struct Params {
    windows: u32,
    taps: u32,
    c: u32,
    first: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn max_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = flat_index(gid, nwg);
    if (w >= p.windows) { return; }
    let row = w / p.c;
    let ch = w % p.c;
    let m = y[w];
    let g = dy[w];
    var open = true;
    for (var t = 0u; t < p.taps; t++) {
        let i = (row * p.taps + t) * p.c + ch;
        let hit = open && x[i] == m;
        out[i] = select(0.0, g, hit);
        if (hit && p.first != 0u) { open = false; }
    }
}
