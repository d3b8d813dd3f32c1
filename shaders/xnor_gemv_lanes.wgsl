// requires: xnor_common
// Shared by the small-M XNOR kernels (xnor_gemv.wgsl, xnor_gemv_subgroup.wgsl), whose files name
// it in their `// requires:` line: 8 lanes split the K words of each output column and their
// partial popcounts are summed.

// Sign bits of the workgroup's 32 columns (binarize).
var<workgroup> bit_word: atomic<u32>;

// Popcount of a XOR b over the words this invocation handles: lane `lane` of `lanes` that split
// the K words of output (row, col).
fn lane_popcount(wid: vec3<u32>, col: u32, lane: u32, lanes: u32) -> u32 {
    let a_row = wid.z * p.a_batch_stride + wid.y * p.words;
    let b_row = wid.z * p.b_batch_stride + col * p.words;
    var pc = 0u;
    if (col < p.n) {
        for (var w = lane; w < p.words; w += lanes) {
            pc += countOneBits(a[a_row + w] ^ b[b_row + w]);
        }
    }
    return pc;
}

struct ColumnPopcount {
    col: u32,
    popcount: u32,
    // True for the one invocation that holds the column's total.
    owner: bool,
}
