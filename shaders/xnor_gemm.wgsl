// requires: xnor_common
// Packed XNOR-popcount matrix product: for rows of A and rows of B holding k sign bits packed
// 32 per word (see bitpack.wgsl), dot = k - 2 * popcount(a XOR b), exact for any k < 2^24:
// padding bits (past k, or inside a row where each convolution tap's channels were packed
// separately) are 0 in both operands, so they XOR to 0 and never count.
//
// Params, bindings, epilogue codes, dot_of and affine are in xnor_common.wgsl.
// Bindings (group 0):
//   0  p       uniform Params
//   1  a       storage read        u32 [batch, m, words]
//   2  b       storage read        u32 [n, words], or [batch, n, words] (b_batch_stride > 0)
//   3  scale   storage read        f32 [n]                  (affine, binarize)
//   4  bias    storage read        f32 [n]                  (affine, binarize)
//   5  c       storage read_write  f32 [batch, m, n]        (plain, affine)
//   6  c_bits  storage read_write  u32 [batch, m, out_words] (binarize)
// Epilogues: plain writes the dot; affine writes dot * scale[n] + bias[n] (BatchNorm folded into
// the layer); binarize packs (dot * scale[n] + bias[n] < 0) along n, ready for the next binary
// layer, and never writes the f32 result at all.
//
// Each epilogue is its own entry point rather than a runtime switch: pipelines use the layout
// derived from what an entry point references, so the plain one must not mention scale and bias
// (callers would have to bind them).
//
// 64x64 output tile per workgroup of 16x16 threads, 4x4 outputs per thread (strided by 16), K
// staged through workgroup memory 8 words (256 bits) at a time. Dispatch (ceil(n/64), ceil(m/64),
// batch). Small m (batch-1 inference) uses xnor_gemv.wgsl instead.
//
// `xnor_direct_<rows>x<cols>[_affine]` (plain and affine epilogues) read their operands straight
// from storage, with no workgroup memory and no barriers, as gemm.wgsl's direct kernels do: each
// thread computes `rows` rows by 4 columns, a workgroup `cols` columns; `xnor_direct4_*` read K
// as vec4<u32> (128 bits per load; words a multiple of 4), `xnor_direct_*` one word at a time.
// On CPU rasterizers these are several times faster than the tiled kernel; the tuner times them
// against it (popcounts are exact, so every variant gives the same result).
// Dispatch (ceil(n/cols), ceil(m/rows), batch).

const TILE: u32 = 64u;
const TW: u32 = 8u;
var<workgroup> a_tile: array<u32, 512>; // [TW][TILE]
var<workgroup> b_tile: array<u32, 512>; // [TW][TILE]
// Sign bits of one output tile: 64 rows x 2 words.
var<workgroup> bit_tile: array<atomic<u32>, 128>;

// Popcounts of a XOR b for this thread's 4x4 outputs of the workgroup's 64x64 tile.
fn tile_popcounts(wid: vec3<u32>, lid: vec3<u32>) -> array<u32, 16> {
    let a_off = wid.z * p.a_batch_stride;
    let b_off = wid.z * p.b_batch_stride;
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let tid = lid.y * 16u + lid.x;
    var acc: array<u32, 16>;
    for (var w0 = 0u; w0 < p.words; w0 += TW) {
        for (var e = tid; e < TW * TILE; e += 256u) {
            // Consecutive threads read consecutive words of one row.
            let r = e / TW;
            let ww = e % TW;
            let gw = w0 + ww;
            let gr = row0 + r;
            var va = 0u;
            if (gr < p.m && gw < p.words) { va = a[a_off + gr * p.words + gw]; }
            a_tile[ww * TILE + r] = va;
            let gc = col0 + r;
            var vb = 0u;
            if (gc < p.n && gw < p.words) { vb = b[b_off + gc * p.words + gw]; }
            b_tile[ww * TILE + r] = vb;
        }
        workgroupBarrier();
        for (var ww = 0u; ww < TW; ww++) {
            var av: array<u32, 4>;
            var bv: array<u32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = a_tile[ww * TILE + lid.y + 16u * i];
                bv[i] = b_tile[ww * TILE + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] += countOneBits(av[i] ^ bv[j]);
                }
            }
        }
        workgroupBarrier();
    }
    return acc;
}

@compute @workgroup_size(16, 16)
fn xnor_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let pc = tile_popcounts(wid, lid);
    for (var i = 0u; i < 4u; i++) {
        let gr = wid.y * TILE + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let gc = wid.x * TILE + lid.x + 16u * j;
            if (gr < p.m && gc < p.n) {
                c[(wid.z * p.m + gr) * p.n + gc] = dot_of(pc[i * 4u + j]);
            }
        }
    }
}

@compute @workgroup_size(16, 16)
fn xnor_gemm_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let pc = tile_popcounts(wid, lid);
    for (var i = 0u; i < 4u; i++) {
        let gr = wid.y * TILE + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let gc = wid.x * TILE + lid.x + 16u * j;
            if (gr < p.m && gc < p.n) {
                c[(wid.z * p.m + gr) * p.n + gc] = affine(dot_of(pc[i * 4u + j]), gc);
            }
        }
    }
}

@compute @workgroup_size(16, 16)
fn xnor_gemm_binarize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    if (tid < 128u) { atomicStore(&bit_tile[tid], 0u); }
    workgroupBarrier();
    let pc = tile_popcounts(wid, lid);
    for (var i = 0u; i < 4u; i++) {
        let r = lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let cl = lid.x + 16u * j;
            let gc = wid.x * TILE + cl;
            if (wid.y * TILE + r < p.m && gc < p.n && affine(dot_of(pc[i * 4u + j]), gc) < 0.0) {
                atomicOr(&bit_tile[r * 2u + cl / 32u], 1u << (cl % 32u));
            }
        }
    }
    workgroupBarrier();
    if (tid < 128u) {
        let gr = wid.y * TILE + tid / 2u;
        let gw = wid.x * 2u + tid % 2u;
        if (gr < p.m && gw < p.out_words) {
            c_bits[(wid.z * p.m + gr) * p.out_words + gw] = atomicLoad(&bit_tile[tid]);
        }
    }
}

// The `xnor_direct4_*` kernels' views of bindings 1-2 (a pipeline binds only what its entry uses).
@group(0) @binding(1) var<storage, read> a4: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<u32>>;

fn popcount4(v: vec4<u32>) -> u32 {
    let c = countOneBits(v);
    return c.x + c.y + c.z + c.w;
}

// The 4 output columns of invocation `lid`, those past n clamped to the last one.
fn direct_columns(wid: vec3<u32>, lid: u32, wg: u32) -> vec4<u32> {
    return min(vec4<u32>((wid.x * wg + lid) * 4u) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.n - 1u));
}

// Popcounts of a XOR b for `rows` rows by 4 columns, `wg` threads along n, K as vec4 words
// (`direct_popcounts4`) or one word at a time (`direct_popcounts1`: separate functions, as an
// entry point may use only one view of a binding). Rows and columns past m and n read the last
// one; their results are not stored. The entry points pass constants, so each compiles to its
// own unrolled loop.
fn direct_popcounts4(wid: vec3<u32>, lid: u32, rows: u32, wg: u32) -> array<vec4<u32>, 8> {
    let row0 = wid.y * rows;
    let a_off = wid.z * p.a_batch_stride;
    let b_off = wid.z * p.b_batch_stride;
    let cols = direct_columns(wid, lid, wg);
    var acc: array<vec4<u32>, 8>; // zero-initialized
    let w4 = p.words / 4u;
    for (var q = 0u; q < w4; q++) {
        let b0 = b4[(b_off + cols.x * p.words) / 4u + q];
        let b1 = b4[(b_off + cols.y * p.words) / 4u + q];
        let b2 = b4[(b_off + cols.z * p.words) / 4u + q];
        let b3 = b4[(b_off + cols.w * p.words) / 4u + q];
        for (var r = 0u; r < rows; r++) {
            let av = a4[(a_off + min(row0 + r, p.m - 1u) * p.words) / 4u + q];
            acc[r] += vec4<u32>(popcount4(av ^ b0), popcount4(av ^ b1), popcount4(av ^ b2), popcount4(av ^ b3));
        }
    }
    return acc;
}

fn direct_popcounts1(wid: vec3<u32>, lid: u32, rows: u32, wg: u32) -> array<vec4<u32>, 8> {
    let row0 = wid.y * rows;
    let a_off = wid.z * p.a_batch_stride;
    let b_off = wid.z * p.b_batch_stride;
    let cols = direct_columns(wid, lid, wg);
    var acc: array<vec4<u32>, 8>; // zero-initialized
    for (var w = 0u; w < p.words; w++) {
        let bv = vec4<u32>(b[b_off + cols.x * p.words + w], b[b_off + cols.y * p.words + w], b[b_off + cols.z * p.words + w], b[b_off + cols.w * p.words + w]);
        for (var r = 0u; r < rows; r++) {
            acc[r] += countOneBits(vec4<u32>(a[a_off + min(row0 + r, p.m - 1u) * p.words + w]) ^ bv);
        }
    }
    return acc;
}

// The plain and affine stores are separate functions: an entry point that mentions scale and
// bias (even under a constant false) binds them (see above).
fn direct_plain(wid: vec3<u32>, lid: u32, rows: u32, wg: u32, acc: array<vec4<u32>, 8>) {
    let col0 = (wid.x * wg + lid) * 4u;
    for (var r = 0u; r < rows; r++) {
        let gr = wid.y * rows + r;
        for (var j = 0u; j < 4u; j++) {
            if (gr < p.m && col0 + j < p.n) { c[(wid.z * p.m + gr) * p.n + col0 + j] = dot_of(acc[r][j]); }
        }
    }
}

fn direct_affine(wid: vec3<u32>, lid: u32, rows: u32, wg: u32, acc: array<vec4<u32>, 8>) {
    let col0 = (wid.x * wg + lid) * 4u;
    for (var r = 0u; r < rows; r++) {
        let gr = wid.y * rows + r;
        for (var j = 0u; j < 4u; j++) {
            if (gr < p.m && col0 + j < p.n) { c[(wid.z * p.m + gr) * p.n + col0 + j] = affine(dot_of(acc[r][j]), col0 + j); }
        }
    }
}

@compute @workgroup_size(64)
fn xnor_direct4_8x256(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_plain(wid, lid, 8u, 64u, direct_popcounts4(wid, lid, 8u, 64u)); }

@compute @workgroup_size(64)
fn xnor_direct4_8x256_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_affine(wid, lid, 8u, 64u, direct_popcounts4(wid, lid, 8u, 64u)); }

@compute @workgroup_size(64)
fn xnor_direct4_4x256(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_plain(wid, lid, 4u, 64u, direct_popcounts4(wid, lid, 4u, 64u)); }

@compute @workgroup_size(64)
fn xnor_direct4_4x256_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_affine(wid, lid, 4u, 64u, direct_popcounts4(wid, lid, 4u, 64u)); }

@compute @workgroup_size(32)
fn xnor_direct4_8x128(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_plain(wid, lid, 8u, 32u, direct_popcounts4(wid, lid, 8u, 32u)); }

@compute @workgroup_size(32)
fn xnor_direct4_8x128_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_affine(wid, lid, 8u, 32u, direct_popcounts4(wid, lid, 8u, 32u)); }

@compute @workgroup_size(32)
fn xnor_direct4_4x128(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_plain(wid, lid, 4u, 32u, direct_popcounts4(wid, lid, 4u, 32u)); }

@compute @workgroup_size(32)
fn xnor_direct4_4x128_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_affine(wid, lid, 4u, 32u, direct_popcounts4(wid, lid, 4u, 32u)); }

@compute @workgroup_size(64)
fn xnor_direct_8x256(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_plain(wid, lid, 8u, 64u, direct_popcounts1(wid, lid, 8u, 64u)); }

@compute @workgroup_size(64)
fn xnor_direct_8x256_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_affine(wid, lid, 8u, 64u, direct_popcounts1(wid, lid, 8u, 64u)); }

@compute @workgroup_size(64)
fn xnor_direct_4x256(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_plain(wid, lid, 4u, 64u, direct_popcounts1(wid, lid, 4u, 64u)); }

@compute @workgroup_size(64)
fn xnor_direct_4x256_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_affine(wid, lid, 4u, 64u, direct_popcounts1(wid, lid, 4u, 64u)); }

@compute @workgroup_size(32)
fn xnor_direct_8x128(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_plain(wid, lid, 8u, 32u, direct_popcounts1(wid, lid, 8u, 32u)); }

@compute @workgroup_size(32)
fn xnor_direct_8x128_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_affine(wid, lid, 8u, 32u, direct_popcounts1(wid, lid, 8u, 32u)); }

@compute @workgroup_size(32)
fn xnor_direct_4x128(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_plain(wid, lid, 4u, 32u, direct_popcounts1(wid, lid, 4u, 32u)); }

@compute @workgroup_size(32)
fn xnor_direct_4x128_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) { direct_affine(wid, lid, 4u, 32u, direct_popcounts1(wid, lid, 4u, 32u)); }
