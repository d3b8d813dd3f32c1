// requires: common
// Row gather along axis 0 and its gradient, and the flat index map `take`.
//
// Bindings (group 0):
//   0  p    uniform Params
//   1  src  storage read        gather: table [rows, inner] | gather_grad: dy [m, inner] | take: x [rows]
//   2  idx  storage read        i32 row indices [m]
//   3  out  storage read_write  gather: [m, inner] | gather_grad: [rows, inner] | take: [m]
// An index outside 0..rows gathers NaN, so a bad label shows up instead of reading garbage.
// gather_grad sums, for each table row, the dy rows whose index selects it. It loops over all m
// indices instead of scattering with atomics: WGSL has no f32 atomics, and this order is
// deterministic.

struct Params {
    m: u32,
    rows: u32,
    inner: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.m * p.inner) { return; }
    let row = idx[i / p.inner];
    if (row < 0 || u32(row) >= p.rows) {
        out[i] = nan(p.m);
        return;
    }
    out[i] = src[u32(row) * p.inner + i % p.inner];
}

@compute @workgroup_size(WG)
fn gather_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.rows * p.inner) { return; }
    let row = i32(i / p.inner);
    let c = i % p.inner;
    var acc = 0.0;
    for (var j = 0u; j < p.m; j++) {
        if (idx[j] == row) {
            acc += src[j * p.inner + c];
        }
    }
    out[i] = acc;
}

// out[i] = src[idx[i]], or 0 where the index is outside src (-1 marks a position with no source,
// such as a padded tap of a locally connected kernel).
@compute @workgroup_size(WG)
fn take(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.m) { return; }
    let j = idx[i];
    if (j < 0 || u32(j) >= p.rows) {
        out[i] = 0.0;
        return;
    }
    out[i] = src[u32(j)];
}
