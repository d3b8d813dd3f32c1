// Shared by the XNOR-popcount kernels (xnor_gemm.wgsl, xnor_gemv.wgsl, xnor_gemv_subgroup.wgsl),
// whose files name it in their `// requires:` line: the Params, the bindings documented in
// xnor_gemm.wgsl, the epilogue codes, and the dot product and affine epilogue.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    words: u32,
    a_batch_stride: u32,
    b_batch_stride: u32,
    out_words: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;
@group(0) @binding(6) var<storage, read_write> c_bits: array<u32>;

// Epilogues, `Epilogue::code` of src/graph/ops/xnor.rs: the index of each epilogue's entry
// point in its kernel lists (`TILED`, `GEMV`, `GEMV_SUBGROUP`). Each epilogue is its own entry
// point (see xnor_gemm.wgsl), so no shader switches on them.
const EPILOGUE_PLAIN: u32 = 0u;
const EPILOGUE_AFFINE: u32 = 1u;
const EPILOGUE_BINARIZE: u32 = 2u;

fn dot_of(popcount: u32) -> f32 {
    return f32(i32(p.k) - 2 * i32(popcount));
}

fn affine(dot: f32, col: u32) -> f32 {
    return dot * scale[col] + bias[col];
}
