// requires: common
// Layout kernels for any 4-byte element type (f32, i32 and packed u32 words move as raw bits):
// a strided gather-copy that implements permute and broadcast, and a window (slice or zero pad).
//
// Bindings (group 0):
//   0  p    uniform Params
//   1  src  storage read        source words
//   2  dst  storage read_write  destination, contiguous in `shape`
// strided_copy: dst[i] = src[sum_d coord_d(i) * src_strides[d]]; a stride of 0 repeats
// (broadcasts) an axis.
// window: dst[i] = src[coord(i) + offset] where that lies inside src_shape, else 0.

struct Params {
    n: u32,
    rank: u32,
    _pad0: u32,
    _pad1: u32,
    shape: array<vec4<u32>, 2>,
    src_strides: array<vec4<u32>, 2>,
    src_shape: array<vec4<u32>, 2>,
    offset: array<vec4<i32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(WG)
fn strided_copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    var rem = i;
    var off = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let q = u32(d) / 4u;
        let r = u32(d) % 4u;
        off += (rem % p.shape[q][r]) * p.src_strides[q][r];
        rem = rem / p.shape[q][r];
    }
    dst[i] = src[off];
}

@compute @workgroup_size(WG)
fn window(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    var rem = i;
    var off = 0u;
    var inside = true;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let q = u32(d) / 4u;
        let r = u32(d) % 4u;
        let c = i32(rem % p.shape[q][r]) + p.offset[q][r];
        rem = rem / p.shape[q][r];
        inside = inside && c >= 0 && u32(c) < p.src_shape[q][r];
        off += u32(max(c, 0)) * p.src_strides[q][r];
    }
    dst[i] = select(0u, src[off], inside);
}
