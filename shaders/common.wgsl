// Helpers shared by the kernel families: the part `common` that a family file names in its first
// line, `// requires: common`, so that src/kernels/mod.rs (`assemble`) puts this file before it.
// Constants and functions only (no bindings, no entry points), so it is valid WGSL on its own;
// it names nothing of any family, so a value that must come from a uniform is an argument.

// Threads per workgroup of the one-thread-per-element kernels, dispatched by
// `kernels::grid_1d(n, 256)`.
const WG: u32 = 256u;
// Threads per workgroup of the kernels whose workgroup cooperates on one output (reduce, softmax);
// reduce_each, one thread per output, is dispatched by `kernels::grid_1d(n, 64)`.
const ROW_WG: u32 = 64u;

// The flat index of `id` in a 1-D dispatch that `kernels::grid_1d(items, per_group)` folded into y
// past 65535 groups: `id` is the global invocation id with `per_group` threads per workgroup, or
// the workgroup id with `per_group` 1.
fn grid_index(id: vec3<u32>, nwg: vec3<u32>, per_group: u32) -> u32 {
    return id.x + id.y * nwg.x * per_group;
}

// The element of global invocation `gid` in a 1-D dispatch of WG-thread workgroups.
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return grid_index(gid, nwg, WG);
}

// A quiet NaN and -inf made at run time: browsers' WGSL compilers reject a non-finite constant
// expression such as bitcast<f32>(0x7fc00000u) (naga accepts it), so the bits depend on
// `runtime`, a value the caller reads from a uniform (any value: it is masked to zero).
fn nan(runtime: u32) -> f32 {
    return bitcast<f32>(0x7fc00000u | (runtime & 0u));
}

fn neg_inf(runtime: u32) -> f32 {
    return bitcast<f32>(0xff800000u | (runtime & 0u));
}

// Larq's sign: never zero (sign(0) = +1).
fn larq_sign(v: f32) -> f32 {
    return select(-1.0, 1.0, v >= 0.0);
}

// Four packed sign bits (the low bits of `nibble`, a set bit is -1) as +-1, lowest bit first.
fn nibble_signs(nibble: u32) -> vec4<f32> {
    return select(vec4<f32>(1.0), vec4<f32>(-1.0), (vec4<u32>(nibble) & vec4<u32>(1u, 2u, 4u, 8u)) != vec4<u32>(0u));
}

// tanh from exp of a non-positive argument: no overflow for large |x|.
fn stable_tanh(x: f32) -> f32 {
    let t = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - t) / (1.0 + t);
}

// No helper turns a flat index into strided offsets, although four kernels (binary,
// strided_copy, reduce, gemm's batch) do that: each loop reads its own uniform `Params` arrays by
// run-time index, and WGSL cannot pass a uniform array by reference. Passed by value, an array
// indexed at run time is copied to memory per invocation, which made the broadcasting binary
// kernel 6x slower on lavapipe (and vec4 halves in registers still cost 1.3x), so the loop is
// written in each kernel.
