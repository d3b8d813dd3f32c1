// requires: common
// Weighted AND-popcount products of bit planes: out[m, n] = sum_i sum_j wa[i] wb[j]
// sum_w popcount(a[i, m, w] & b[j, n, w]), exact in i32, written as f32. The low-bit encodings
// (±1, {0,1}, ternary, k-bit levels) are weighted planes (src/graph/ops/planes.rs).
//
// Bindings (group 0):
//   0  p    uniform Params
//   1  a    storage read        u32 [B, Pa, M, W]
//   2  b    storage read        u32 [B, Pb, N, W]
//   3  out  storage read_write  f32 [B, M, N]
//   4  x    storage read        plane_pack: f32 [B, M, K]
//   5  packed storage read_write plane_pack: u32 [B, P, M, W]
//   6  values storage read_write plane_unpack: f32 [B, M, K]
// Dispatch: (ceil(N / 32), ceil(M / 32), B) workgroups of 8x8 invocations, 4x4 outputs each;
// workgroup z is the batch entry (one product per entry, B = 1 without batch axes).
// `plane_gemm4` reads four words at a time (W a multiple of 4). `plane_gemm4_signed` is for two
// planes [s & m, m] with weights [-2, 1] on both sides (ternary or ±1 against ternary or ±1):
// under both masks the first planes are the signs, so a . b = popcount(ma & mb)
// - 2 popcount((sa ^ sb) & ma & mb), two counts per word pair instead of four, the same integers.

struct Params {
    m: u32,
    n: u32,
    words: u32,
    a_planes: u32,
    b_planes: u32,
    k: u32,
    encoding: u32,
    scale: f32,
    a_weights: array<vec4<i32>, 2>,
    b_weights: array<vec4<i32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> a4: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> packed: array<u32>;
@group(0) @binding(6) var<storage, read_write> values: array<f32>;

// How integers are held in planes (`Encoding::code` in src/graph/ops/planes.rs).
const ENCODE_SIGNED: u32 = 0u;
const ENCODE_UNSIGNED: u32 = 1u;
const ENCODE_ODD: u32 = 2u;

fn weight(i: u32, j: u32) -> i32 {
    return p.a_weights[i / 4u][i % 4u] * p.b_weights[j / 4u][j % 4u];
}

fn store(z: u32, r0: u32, c0: u32, acc: array<vec4<i32>, 4>) {
    for (var r = 0u; r < 4u; r++) {
        for (var c = 0u; c < 4u; c++) {
            if (r0 + r < p.m && c0 + c < p.n) {
                out[(z * p.m + r0 + r) * p.n + c0 + c] = f32(acc[r][c]);
            }
        }
    }
}

@compute @workgroup_size(8, 8)
fn plane_gemm4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c0 = gid.x * 4u;
    let r0 = gid.y * 4u;
    if (r0 >= p.m || c0 >= p.n) { return; }
    let w4 = p.words / 4u;
    var acc: array<vec4<i32>, 4>;
    for (var i = 0u; i < p.a_planes; i++) {
        for (var j = 0u; j < p.b_planes; j++) {
            var cnt: array<vec4<u32>, 4>;
            for (var w = 0u; w < w4; w++) {
                var bv: array<vec4<u32>, 4>;
                for (var c = 0u; c < 4u; c++) {
                    bv[c] = b4[((gid.z * p.b_planes + j) * p.n + min(c0 + c, p.n - 1u)) * w4 + w];
                }
                for (var r = 0u; r < 4u; r++) {
                    let av = a4[((gid.z * p.a_planes + i) * p.m + min(r0 + r, p.m - 1u)) * w4 + w];
                    let ones = vec4<u32>(1u);
                    cnt[r] += vec4<u32>(
                        dot(countOneBits(av & bv[0]), ones),
                        dot(countOneBits(av & bv[1]), ones),
                        dot(countOneBits(av & bv[2]), ones),
                        dot(countOneBits(av & bv[3]), ones),
                    );
                }
            }
            for (var r = 0u; r < 4u; r++) {
                acc[r] += weight(i, j) * vec4<i32>(cnt[r]);
            }
        }
    }
    store(gid.z, r0, c0, acc);
}

@compute @workgroup_size(8, 8)
fn plane_gemm(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c0 = gid.x * 4u;
    let r0 = gid.y * 4u;
    if (r0 >= p.m || c0 >= p.n) { return; }
    var acc: array<vec4<i32>, 4>;
    for (var i = 0u; i < p.a_planes; i++) {
        for (var j = 0u; j < p.b_planes; j++) {
            // Counts of one plane pair; rows and columns past the edge read the last one.
            var cnt: array<vec4<u32>, 4>;
            for (var w = 0u; w < p.words; w++) {
                var bv: vec4<u32>;
                for (var c = 0u; c < 4u; c++) {
                    bv[c] = b[((gid.z * p.b_planes + j) * p.n + min(c0 + c, p.n - 1u)) * p.words + w];
                }
                for (var r = 0u; r < 4u; r++) {
                    let av = a[((gid.z * p.a_planes + i) * p.m + min(r0 + r, p.m - 1u)) * p.words + w];
                    cnt[r] += countOneBits(vec4<u32>(av) & bv);
                }
            }
            for (var r = 0u; r < 4u; r++) {
                acc[r] += weight(i, j) * vec4<i32>(cnt[r]);
            }
        }
    }
    store(gid.z, r0, c0, acc);
}

@compute @workgroup_size(8, 8)
fn plane_gemm4_signed(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c0 = gid.x * 4u;
    let r0 = gid.y * 4u;
    if (r0 >= p.m || c0 >= p.n) { return; }
    let w4 = p.words / 4u;
    var both: array<vec4<u32>, 4>;
    var negative: array<vec4<u32>, 4>;
    for (var w = 0u; w < w4; w++) {
        var bs: array<vec4<u32>, 4>;
        var bm: array<vec4<u32>, 4>;
        for (var c = 0u; c < 4u; c++) {
            let col = min(c0 + c, p.n - 1u);
            bs[c] = b4[(gid.z * 2u * p.n + col) * w4 + w];
            bm[c] = b4[((gid.z * 2u + 1u) * p.n + col) * w4 + w];
        }
        for (var r = 0u; r < 4u; r++) {
            let row = min(r0 + r, p.m - 1u);
            let as_ = a4[(gid.z * 2u * p.m + row) * w4 + w];
            let am = a4[((gid.z * 2u + 1u) * p.m + row) * w4 + w];
            let ones = vec4<u32>(1u);
            for (var c = 0u; c < 4u; c++) {
                let mask = am & bm[c];
                both[r][c] += dot(countOneBits(mask), ones);
                negative[r][c] += dot(countOneBits((as_ ^ bs[c]) & mask), ones);
            }
        }
    }
    var acc: array<vec4<i32>, 4>;
    for (var r = 0u; r < 4u; r++) {
        acc[r] = vec4<i32>(both[r]) - 2 * vec4<i32>(negative[r]);
    }
    store(gid.z, r0, c0, acc);
}

// One row element as an integer of the encoding: v = round(q * scale), clamped to the
// encoding's range (NaN counts as 0); a signed element is sign(q) with sign(0) = 0.
fn plane_bits(q: f32, planes: u32) -> u32 {
    // Bit i of the result is the element's bit in plane i. NaN is tested on its bits: compilers
    // may assume `q != q` is false.
    if ((bitcast<u32>(q) & 0x7fffffffu) > 0x7f800000u) { return 0u; }
    if (p.encoding == ENCODE_SIGNED) {
        return select(0u, 1u, q < 0.0) | select(0u, 2u, q != 0.0);
    }
    let v = round(q * p.scale);
    if (p.encoding == ENCODE_UNSIGNED) {
        return u32(clamp(v, 0.0, f32((1u << planes) - 1u)));
    }
    // Odd levels v = 2 n - L: the bits of n, then a nonzero plane weighted -L.
    let levels = (1u << (planes - 1u)) - 1u;
    let r = i32(clamp(v, -f32(levels), f32(levels)));
    if (r == 0) { return 0u; }
    return u32((r + i32(levels)) / 2) | (1u << (planes - 1u));
}

// plane_pack: word w of row r of x [B, M, K] into every plane of packed [B, P, M, W].
@compute @workgroup_size(WG)
fn plane_pack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n * p.words) { return; }
    let r = i / p.words;
    let w = i % p.words;
    let first = w * 32u;
    let count = min(32u, p.k - first);
    var words: array<u32, 8>;
    for (var e = 0u; e < count; e++) {
        let bits = plane_bits(x[r * p.k + first + e], p.a_planes);
        for (var j = 0u; j < p.a_planes; j++) {
            words[j] |= ((bits >> j) & 1u) << e;
        }
    }
    let z = r / p.m;
    let row = r % p.m;
    for (var j = 0u; j < p.a_planes; j++) {
        packed[((z * p.a_planes + j) * p.m + row) * p.words + w] = words[j];
    }
}

// plane_unpack: element (r, c) of values [B, M, K] = sum_j a_weights[j] bit_j / scale.
@compute @workgroup_size(WG)
fn plane_unpack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n * p.k) { return; }
    let r = i / p.k;
    let c = i % p.k;
    let z = r / p.m;
    let row = r % p.m;
    var v = 0;
    for (var j = 0u; j < p.a_planes; j++) {
        let word = a[((z * p.a_planes + j) * p.m + row) * p.words + c / 32u];
        v += select(0, p.a_weights[j / 4u][j % 4u], ((word >> (c % 32u)) & 1u) == 1u);
    }
    values[i] = f32(v) / p.scale;
}
