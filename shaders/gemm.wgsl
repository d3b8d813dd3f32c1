// requires: common
// Tiled f32 matrix product C[b] = op(A[b]) @ op(B[b]) with broadcast batch axes.
//
// Bindings (group 0):
//   0  p  uniform Params
//   1  a  storage read        A: [.., M, K], or [.., K, M] when trans_a
//   2  b  storage read        B: [.., K, N], or [.., N, K] when trans_b
//   3  c  storage read_write  C: [batch, M, N]
// Each workgroup of 16x16 threads computes a 64x64 tile of C; each thread a 4x4 register tile,
// strided by 16 so that neighbouring threads touch neighbouring columns (coalesced stores,
// conflict-free workgroup reads). K advances in slices of 16 staged through workgroup memory;
// out-of-range rows, columns and K are loaded as 0, so any M, N, K works.
// Dispatch: (ceil(N/64), ceil(M/64), batch).
//
// `gemv` serves small M (batch-1 inference, where a 64-row tile would idle 63 rows): one thread
// per output column, 256 columns per workgroup, so reads of row-major B are coalesced across
// threads and the A row is the same address for the whole workgroup.
// Dispatch: (ceil(N/256), M, batch).

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch_rank: u32,
    trans_a: u32,
    trans_b: u32,
    _pad0: u32,
    _pad1: u32,
    // Output batch shape and, per batch axis, the matrix step in A and B (0 = broadcast).
    batch_shape: array<vec4<u32>, 2>,
    a_batch_strides: array<vec4<u32>, 2>,
    b_batch_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> a_tile: array<f32, 1024>; // [TK][TILE]
var<workgroup> b_tile: array<f32, 1024>; // [TK][TILE]

// Element offsets of the A and B matrices that output matrix `batch` reads.
fn operand_offsets(batch: u32) -> vec2<u32> {
    var rem = batch;
    var ma = 0u;
    var mb = 0u;
    for (var d = i32(p.batch_rank) - 1; d >= 0; d--) {
        let q = u32(d) / 4u;
        let r = u32(d) % 4u;
        let c = rem % p.batch_shape[q][r];
        rem = rem / p.batch_shape[q][r];
        ma += c * p.a_batch_strides[q][r];
        mb += c * p.b_batch_strides[q][r];
    }
    return vec2<u32>(ma * p.m * p.k, mb * p.k * p.n);
}

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let offsets = operand_offsets(wid.z);
    let a_off = offsets.x;
    let b_off = offsets.y;
    let c_off = wid.z * p.m * p.n;
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let tid = lid.y * 16u + lid.x;

    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }

    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var e = tid; e < TK * TILE; e += 256u) {
            // A slice: TILE rows x TK; read along whichever axis is contiguous in memory.
            var r: u32;
            var kk: u32;
            if (p.trans_a == 0u) { r = e / TK; kk = e % TK; } else { kk = e / TILE; r = e % TILE; }
            let gr = row0 + r;
            let gk = k0 + kk;
            var va = 0.0;
            if (gr < p.m && gk < p.k) {
                if (p.trans_a == 0u) { va = a[a_off + gr * p.k + gk]; } else { va = a[a_off + gk * p.m + gr]; }
            }
            a_tile[kk * TILE + r] = va;

            var cc: u32;
            if (p.trans_b == 0u) { kk = e / TILE; cc = e % TILE; } else { cc = e / TK; kk = e % TK; }
            let gc = col0 + cc;
            let gk2 = k0 + kk;
            var vb = 0.0;
            if (gc < p.n && gk2 < p.k) {
                if (p.trans_b == 0u) { vb = b[b_off + gk2 * p.n + gc]; } else { vb = b[b_off + gc * p.k + gk2]; }
            }
            b_tile[kk * TILE + cc] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = a_tile[kk * TILE + lid.y + 16u * i];
                bv[i] = b_tile[kk * TILE + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(av[i], bv[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let gr = row0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let gc = col0 + lid.x + 16u * j;
            if (gr < p.m && gc < p.n) {
                c[c_off + gr * p.n + gc] = acc[i * 4u + j];
            }
        }
    }
}

@compute @workgroup_size(256)
fn gemv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let col = wid.x * 256u + lid;
    let row = wid.y;
    if (col >= p.n) { return; }
    let offsets = operand_offsets(wid.z);
    var acc = 0.0;
    for (var kk = 0u; kk < p.k; kk++) {
        var va: f32;
        var vb: f32;
        if (p.trans_a == 0u) { va = a[offsets.x + row * p.k + kk]; } else { va = a[offsets.x + kk * p.m + row]; }
        if (p.trans_b == 0u) { vb = b[offsets.y + kk * p.n + col]; } else { vb = b[offsets.y + col * p.k + kk]; }
        acc = fma(va, vb, acc);
    }
    c[(wid.z * p.m + row) * p.n + col] = acc;
}
