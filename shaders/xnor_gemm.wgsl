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
