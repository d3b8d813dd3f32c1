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
// `direct_<rows>x<cols>_<layout>` (layout nn, tn, nt, tt: whether A and B are stored transposed)
// read their operands straight from storage as vec4s, with no workgroup memory and no barriers:
// each thread computes `rows` rows by 4 columns, a workgroup `cols` columns. They need N and K
// (and M when A is transposed) to be multiples of 4, and bind the buffers as vec4 arrays
// (`a4`, `b4`, `c4`, aliases of bindings 1-3). Which variant is fastest depends on the adapter
// and the shape (on CPU rasterizers such as lavapipe the barrier-free forms are several times
// faster than the tiled one; on GPUs the tiled one usually wins), so the tuner times them.
// `direct1_*` are the same for any K (and any M with A transposed), one K term at a time;
// `direct_signs4_*` and `direct_signs_*` read B as packed sign bits (see `direct_signs`).
// Every variant accumulates K in order with one fma per term, so all give the same bits.
// Dispatch: (ceil(N/cols), ceil(M/rows), batch).
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

// The `direct_*` kernels' views of bindings 1-3 (a pipeline binds only what its entry uses).
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c4: array<vec4<f32>>;

// `rows` x 4 outputs per thread, `wg` threads along N; `ta`/`tb`: A/B stored transposed. The
// entry points pass constants, so each compiles to its own unrolled, branch-free loop.
fn direct(wid: vec3<u32>, lid: u32, rows: u32, wg: u32, ta: bool, tb: bool) {
    let n4 = p.n / 4u;
    let k4 = p.k / 4u;
    let m4 = p.m / 4u;
    let col = wid.x * wg + lid; // in vec4 columns
    let row0 = wid.y * rows;
    if (col >= n4) { return; }
    let offsets = operand_offsets(wid.z) / 4u;
    let c_off = wid.z * p.m * n4;
    var acc: array<vec4<f32>, 8>;
    for (var r = 0u; r < rows; r++) { acc[r] = vec4<f32>(0.0); }
    for (var kq = 0u; kq < k4; kq++) {
        // B[4kq + i][4col .. 4col + 4] as bi.
        var b0: vec4<f32>;
        var b1: vec4<f32>;
        var b2: vec4<f32>;
        var b3: vec4<f32>;
        if (tb) {
            let base = offsets.y + col * 4u * k4 + kq;
            let q0 = b4[base];
            let q1 = b4[base + k4];
            let q2 = b4[base + 2u * k4];
            let q3 = b4[base + 3u * k4];
            b0 = vec4<f32>(q0.x, q1.x, q2.x, q3.x);
            b1 = vec4<f32>(q0.y, q1.y, q2.y, q3.y);
            b2 = vec4<f32>(q0.z, q1.z, q2.z, q3.z);
            b3 = vec4<f32>(q0.w, q1.w, q2.w, q3.w);
        } else {
            let base = offsets.y + kq * 4u * n4 + col;
            b0 = b4[base];
            b1 = b4[base + n4];
            b2 = b4[base + 2u * n4];
            b3 = b4[base + 3u * n4];
        }
        if (ta) {
            // A stored [K, M]: rows in groups of 4 along M (rows is a multiple of 4).
            for (var r4 = 0u; r4 < rows / 4u; r4++) {
                let g = min(row0 / 4u + r4, m4 - 1u);
                let base = offsets.x + kq * 4u * m4 + g;
                let a0 = a4[base];
                let a1 = a4[base + m4];
                let a2 = a4[base + 2u * m4];
                let a3 = a4[base + 3u * m4];
                for (var i = 0u; i < 4u; i++) {
                    let r = r4 * 4u + i;
                    acc[r] = fma(vec4<f32>(a0[i]), b0, acc[r]);
                    acc[r] = fma(vec4<f32>(a1[i]), b1, acc[r]);
                    acc[r] = fma(vec4<f32>(a2[i]), b2, acc[r]);
                    acc[r] = fma(vec4<f32>(a3[i]), b3, acc[r]);
                }
            }
        } else {
            for (var r = 0u; r < rows; r++) {
                // Rows past M read the last row; their results are not stored.
                let av = a4[offsets.x + min(row0 + r, p.m - 1u) * k4 + kq];
                acc[r] = fma(vec4<f32>(av.x), b0, acc[r]);
                acc[r] = fma(vec4<f32>(av.y), b1, acc[r]);
                acc[r] = fma(vec4<f32>(av.z), b2, acc[r]);
                acc[r] = fma(vec4<f32>(av.w), b3, acc[r]);
            }
        }
    }
    for (var r = 0u; r < rows; r++) {
        if (row0 + r < p.m) { c4[c_off + (row0 + r) * n4 + col] = acc[r]; }
    }
}

// `direct` for any K and, with A transposed, any M: one K term at a time, A read as scalars and
// B as a vec4 along N (or four elements K apart when B is transposed). N must be a multiple of 4.
fn direct1(wid: vec3<u32>, lid: u32, rows: u32, wg: u32, ta: bool, tb: bool) {
    let n4 = p.n / 4u;
    let col = wid.x * wg + lid; // in vec4 columns
    let row0 = wid.y * rows;
    if (col >= n4) { return; }
    let offsets = operand_offsets(wid.z);
    let c_off = wid.z * p.m * n4;
    var acc: array<vec4<f32>, 8>;
    for (var r = 0u; r < rows; r++) { acc[r] = vec4<f32>(0.0); }
    for (var kk = 0u; kk < p.k; kk++) {
        var bv: vec4<f32>;
        if (tb) {
            // B stored [N, K]: four elements K apart, picked out of the vec4 view (an entry point
            // may use only one view of a binding).
            let base = offsets.y + col * 4u * p.k + kk;
            for (var j = 0u; j < 4u; j++) {
                let e = base + j * p.k;
                bv[j] = b4[e / 4u][e % 4u];
            }
        } else {
            bv = b4[(offsets.y / 4u) + kk * n4 + col];
        }
        for (var r = 0u; r < rows; r++) {
            // Rows past M read the last row; their results are not stored.
            let row = min(row0 + r, p.m - 1u);
            var av: f32;
            if (ta) { av = a[offsets.x + kk * p.m + row]; } else { av = a[offsets.x + row * p.k + kk]; }
            acc[r] = fma(vec4<f32>(av), bv, acc[r]);
        }
    }
    for (var r = 0u; r < rows; r++) {
        if (row0 + r < p.m) { c4[c_off + (row0 + r) * n4 + col] = acc[r]; }
    }
}
// The `direct_signs_*` view of binding 2: B as packed sign bits (a set bit is -1), the flat
// element index of B being its bit index (rows of a multiple of 32 bits, so no padding bits).
@group(0) @binding(2) var<storage, read> bw: array<u32>;

// Four sign bits of B as +-1: B's row `kk` at vec4 column `col` (its flat index is its bit index).
fn sign_row(base: u32, kk: u32, col: u32) -> vec4<f32> {
    let bit = base + kk * p.n + col * 4u;
    return nibble_signs(bw[bit / 32u] >> (bit % 32u));
}

// `direct_signs4`, as `direct` (K in vec4 steps, A read as vec4s; K, and M when A is
// transposed, must be multiples of 4), and `direct_signs1`, as `direct1` (one K term at a time),
// with B read as sign bits: four columns are four bits of one word. For the backward of binarized products (dX = dY sign(W),
// dW = dY^T sign(X)), which then need no unpacked float copy of the signs. B is never
// transposed here; N must be a multiple of 4.
// (Two functions, as an entry point may use only one view of binding 1.) `direct_signs4`'s A
// loop repeats `direct`'s on purpose: a shared helper taking the accumulators by pointer made the
// nn form about 1.5x slower on lavapipe (64x512x784: 6.6-7.7 ms -> 10.4-11.6 ms).
fn direct_signs4(wid: vec3<u32>, lid: u32, rows: u32, wg: u32, ta: bool) {
    let n4 = p.n / 4u;
    let m4 = p.m / 4u;
    let k4 = p.k / 4u;
    let col = wid.x * wg + lid; // in vec4 columns
    let row0 = wid.y * rows;
    if (col >= n4) { return; }
    let offsets = operand_offsets(wid.z);
    let c_off = wid.z * p.m * n4;
    var acc: array<vec4<f32>, 8>;
    for (var r = 0u; r < rows; r++) { acc[r] = vec4<f32>(0.0); }
    for (var kq = 0u; kq < k4; kq++) {
        let b0 = sign_row(offsets.y, 4u * kq, col);
        let b1 = sign_row(offsets.y, 4u * kq + 1u, col);
        let b2 = sign_row(offsets.y, 4u * kq + 2u, col);
        let b3 = sign_row(offsets.y, 4u * kq + 3u, col);
        if (ta) {
            for (var r4 = 0u; r4 < rows / 4u; r4++) {
                let g = min(row0 / 4u + r4, m4 - 1u);
                let base = offsets.x / 4u + kq * 4u * m4 + g;
                let a0 = a4[base];
                let a1 = a4[base + m4];
                let a2 = a4[base + 2u * m4];
                let a3 = a4[base + 3u * m4];
                for (var i = 0u; i < 4u; i++) {
                    let r = r4 * 4u + i;
                    acc[r] = fma(vec4<f32>(a0[i]), b0, acc[r]);
                    acc[r] = fma(vec4<f32>(a1[i]), b1, acc[r]);
                    acc[r] = fma(vec4<f32>(a2[i]), b2, acc[r]);
                    acc[r] = fma(vec4<f32>(a3[i]), b3, acc[r]);
                }
            }
        } else {
            for (var r = 0u; r < rows; r++) {
                let av = a4[offsets.x / 4u + min(row0 + r, p.m - 1u) * k4 + kq];
                acc[r] = fma(vec4<f32>(av.x), b0, acc[r]);
                acc[r] = fma(vec4<f32>(av.y), b1, acc[r]);
                acc[r] = fma(vec4<f32>(av.z), b2, acc[r]);
                acc[r] = fma(vec4<f32>(av.w), b3, acc[r]);
            }
        }
    }
    for (var r = 0u; r < rows; r++) {
        if (row0 + r < p.m) { c4[c_off + (row0 + r) * n4 + col] = acc[r]; }
    }
}

fn direct_signs1(wid: vec3<u32>, lid: u32, rows: u32, wg: u32, ta: bool) {
    let n4 = p.n / 4u;
    let col = wid.x * wg + lid; // in vec4 columns
    let row0 = wid.y * rows;
    if (col >= n4) { return; }
    let offsets = operand_offsets(wid.z);
    let c_off = wid.z * p.m * n4;
    var acc: array<vec4<f32>, 8>;
    for (var r = 0u; r < rows; r++) { acc[r] = vec4<f32>(0.0); }
    for (var kk = 0u; kk < p.k; kk++) {
        let bv = sign_row(offsets.y, kk, col);
        for (var r = 0u; r < rows; r++) {
            // Rows past M read the last row; their results are not stored.
            let row = min(row0 + r, p.m - 1u);
            var av: f32;
            if (ta) { av = a[offsets.x + kk * p.m + row]; } else { av = a[offsets.x + row * p.k + kk]; }
            acc[r] = fma(vec4<f32>(av), bv, acc[r]);
        }
    }
    for (var r = 0u; r < rows; r++) {
        if (row0 + r < p.m) { c4[c_off + (row0 + r) * n4 + col] = acc[r]; }
    }
}

@compute @workgroup_size(32)
fn direct_4x128_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 4u, 32u, false, false); }
@compute @workgroup_size(32)
fn direct_4x128_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 4u, 32u, true, false); }
@compute @workgroup_size(32)
fn direct_4x128_nt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 4u, 32u, false, true); }
@compute @workgroup_size(32)
fn direct_4x128_tt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 4u, 32u, true, true); }
@compute @workgroup_size(64)
fn direct_4x256_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 4u, 64u, false, false); }
@compute @workgroup_size(64)
fn direct_4x256_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 4u, 64u, true, false); }
@compute @workgroup_size(64)
fn direct_4x256_nt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 4u, 64u, false, true); }
@compute @workgroup_size(64)
fn direct_4x256_tt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 4u, 64u, true, true); }
@compute @workgroup_size(32)
fn direct_8x128_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 8u, 32u, false, false); }
@compute @workgroup_size(32)
fn direct_8x128_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 8u, 32u, true, false); }
@compute @workgroup_size(32)
fn direct_8x128_nt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 8u, 32u, false, true); }
@compute @workgroup_size(32)
fn direct_8x128_tt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 8u, 32u, true, true); }
@compute @workgroup_size(64)
fn direct_8x256_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 8u, 64u, false, false); }
@compute @workgroup_size(64)
fn direct_8x256_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 8u, 64u, true, false); }
@compute @workgroup_size(64)
fn direct_8x256_nt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 8u, 64u, false, true); }
@compute @workgroup_size(64)
fn direct_8x256_tt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct(wid, lid, 8u, 64u, true, true); }

@compute @workgroup_size(64)
fn direct1_8x256_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 8u, 64u, false, false); }
@compute @workgroup_size(64)
fn direct1_8x256_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 8u, 64u, true, false); }
@compute @workgroup_size(64)
fn direct1_8x256_nt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 8u, 64u, false, true); }
@compute @workgroup_size(64)
fn direct1_8x256_tt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 8u, 64u, true, true); }
@compute @workgroup_size(64)
fn direct1_4x256_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 4u, 64u, false, false); }
@compute @workgroup_size(64)
fn direct1_4x256_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 4u, 64u, true, false); }
@compute @workgroup_size(64)
fn direct1_4x256_nt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 4u, 64u, false, true); }
@compute @workgroup_size(64)
fn direct1_4x256_tt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 4u, 64u, true, true); }
@compute @workgroup_size(32)
fn direct1_8x128_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 8u, 32u, false, false); }
@compute @workgroup_size(32)
fn direct1_8x128_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 8u, 32u, true, false); }
@compute @workgroup_size(32)
fn direct1_8x128_nt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 8u, 32u, false, true); }
@compute @workgroup_size(32)
fn direct1_8x128_tt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 8u, 32u, true, true); }
@compute @workgroup_size(32)
fn direct1_4x128_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 4u, 32u, false, false); }
@compute @workgroup_size(32)
fn direct1_4x128_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 4u, 32u, true, false); }
@compute @workgroup_size(32)
fn direct1_4x128_nt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 4u, 32u, false, true); }
@compute @workgroup_size(32)
fn direct1_4x128_tt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct1(wid, lid, 4u, 32u, true, true); }
@compute @workgroup_size(64)
fn direct_signs4_8x256_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs4(wid, lid, 8u, 64u, false); }
@compute @workgroup_size(64)
fn direct_signs4_8x256_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs4(wid, lid, 8u, 64u, true); }
@compute @workgroup_size(64)
fn direct_signs4_4x256_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs4(wid, lid, 4u, 64u, false); }
@compute @workgroup_size(64)
fn direct_signs4_4x256_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs4(wid, lid, 4u, 64u, true); }
@compute @workgroup_size(32)
fn direct_signs4_8x128_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs4(wid, lid, 8u, 32u, false); }
@compute @workgroup_size(32)
fn direct_signs4_8x128_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs4(wid, lid, 8u, 32u, true); }
@compute @workgroup_size(32)
fn direct_signs4_4x128_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs4(wid, lid, 4u, 32u, false); }
@compute @workgroup_size(32)
fn direct_signs4_4x128_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs4(wid, lid, 4u, 32u, true); }
@compute @workgroup_size(64)
fn direct_signs_8x256_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs1(wid, lid, 8u, 64u, false); }
@compute @workgroup_size(64)
fn direct_signs_8x256_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs1(wid, lid, 8u, 64u, true); }
@compute @workgroup_size(64)
fn direct_signs_4x256_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs1(wid, lid, 4u, 64u, false); }
@compute @workgroup_size(64)
fn direct_signs_4x256_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs1(wid, lid, 4u, 64u, true); }
@compute @workgroup_size(32)
fn direct_signs_8x128_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs1(wid, lid, 8u, 32u, false); }
@compute @workgroup_size(32)
fn direct_signs_8x128_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs1(wid, lid, 8u, 32u, true); }
@compute @workgroup_size(32)
fn direct_signs_4x128_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs1(wid, lid, 4u, 32u, false); }
@compute @workgroup_size(32)
fn direct_signs_4x128_tn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_signs1(wid, lid, 4u, 32u, true); }
