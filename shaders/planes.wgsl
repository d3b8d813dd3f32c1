// Weighted AND-popcount products of bit planes: out[m, n] = sum_i sum_j wa[i] wb[j]
// sum_w popcount(a[i, m, w] & b[j, n, w]), exact in i32, written as f32. The low-bit encodings
// (±1, {0,1}, ternary, k-bit levels) are weighted planes (src/graph/ops/planes.rs).
//
// Bindings (group 0):
//   0  p    uniform Params
//   1  a    storage read        u32 [Pa, M, W]
//   2  b    storage read        u32 [Pb, N, W]
//   3  out  storage read_write  f32 [M, N]
// Dispatch: (ceil(N / 32), ceil(M / 32), 1) workgroups of 8x8 invocations, 4x4 outputs each.
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
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    a_weights: array<vec4<i32>, 2>,
    b_weights: array<vec4<i32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> a4: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<u32>>;

fn weight(i: u32, j: u32) -> i32 {
    return p.a_weights[i / 4u][i % 4u] * p.b_weights[j / 4u][j % 4u];
}

fn store(r0: u32, c0: u32, acc: array<vec4<i32>, 4>) {
    for (var r = 0u; r < 4u; r++) {
        for (var c = 0u; c < 4u; c++) {
            if (r0 + r < p.m && c0 + c < p.n) {
                out[(r0 + r) * p.n + c0 + c] = f32(acc[r][c]);
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
                    bv[c] = b4[(j * p.n + min(c0 + c, p.n - 1u)) * w4 + w];
                }
                for (var r = 0u; r < 4u; r++) {
                    let av = a4[(i * p.m + min(r0 + r, p.m - 1u)) * w4 + w];
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
    store(r0, c0, acc);
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
                    bv[c] = b[(j * p.n + min(c0 + c, p.n - 1u)) * p.words + w];
                }
                for (var r = 0u; r < 4u; r++) {
                    let av = a[(i * p.m + min(r0 + r, p.m - 1u)) * p.words + w];
                    cnt[r] += countOneBits(vec4<u32>(av) & bv);
                }
            }
            for (var r = 0u; r < 4u; r++) {
                acc[r] += weight(i, j) * vec4<i32>(cnt[r]);
            }
        }
    }
    store(r0, c0, acc);
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
            bs[c] = b4[col * w4 + w];
            bm[c] = b4[(p.n + col) * w4 + w];
        }
        for (var r = 0u; r < 4u; r++) {
            let row = min(r0 + r, p.m - 1u);
            let as_ = a4[row * w4 + w];
            let am = a4[(p.m + row) * w4 + w];
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
    store(r0, c0, acc);
}
