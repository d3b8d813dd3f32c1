//! `shaders/xnor_gemm.wgsl`: packed XNOR-popcount matrix products with plain, affine and
//! re-binarizing epilogues, tiled for large M and lane-split for small M. The shader files share
//! `xnor_common.wgsl` (Params, bindings, epilogue helpers) and, for the small-M ones,
//! `xnor_gemv_lanes.wgsl` (the lane split), which their `// requires:` lines name.

use bytemuck::{Pod, Zeroable};

use super::{params_layout, shader, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("xnor_gemm", "../../shaders/xnor_gemm.wgsl", params_layout, false);
/// Tiled kernels by epilogue.
pub const TILED: [Kernel; 3] =
    [Kernel::new(&SHADER, "xnor_gemm"), Kernel::new(&SHADER, "xnor_gemm_affine"), Kernel::new(&SHADER, "xnor_gemm_binarize")];
/// The small-M kernels (`shaders/xnor_gemv.wgsl`): workgroup-memory reduction.
pub const GEMV_SHADER: Shader = shader!("xnor_gemv", "../../shaders/xnor_gemv.wgsl", params_layout, false);
/// The small-M kernels with a subgroup reduction (`shaders/xnor_gemv_subgroup.wgsl`).
pub const GEMV_SUBGROUP_SHADER: Shader = shader!("xnor_gemv_subgroup", "../../shaders/xnor_gemv_subgroup.wgsl", params_layout, true);
/// Small-M kernels by epilogue.
pub const GEMV: [Kernel; 3] = gemv_kernels(&GEMV_SHADER);
/// Small-M kernels with subgroups, by epilogue.
pub const GEMV_SUBGROUP: [Kernel; 3] = gemv_kernels(&GEMV_SUBGROUP_SHADER);

/// A barrier-free variant (`xnor_direct*` in `shaders/xnor_gemm.wgsl`): `rows` x 4 outputs per
/// invocation, `cols` output columns per workgroup.
#[derive(Clone, Debug)]
pub struct XnorDirect {
    /// Its entry points by epilogue (plain, affine).
    pub kernels: [Kernel; 2],
    /// Output rows per invocation.
    pub rows: usize,
    /// Output columns per workgroup.
    pub cols: usize,
    /// Whether it reads K as `vec4<u32>` (words a multiple of 4).
    pub vec_k: bool,
}

macro_rules! xnor_direct {
    ($(($stem:literal, $vec_k:literal, $rows:literal, $cols:literal)),* $(,)?) => {
        /// The barrier-free variants, best first when nothing was timed.
        pub const DIRECT: &[XnorDirect] = &[$(XnorDirect {
            kernels: [
                Kernel::new(&SHADER, concat!($stem, "_", $rows, "x", $cols)),
                Kernel::new(&SHADER, concat!($stem, "_", $rows, "x", $cols, "_affine")),
            ],
            rows: $rows,
            cols: $cols,
            vec_k: $vec_k,
        }),*];
        /// Every entry point of the family's three shaders.
        pub const KERNELS: &[Kernel] = &[
            Kernel::new(&SHADER, "xnor_gemm"),
            Kernel::new(&SHADER, "xnor_gemm_affine"),
            Kernel::new(&SHADER, "xnor_gemm_binarize"),
            Kernel::new(&GEMV_SHADER, "xnor_gemv"),
            Kernel::new(&GEMV_SHADER, "xnor_gemv_affine"),
            Kernel::new(&GEMV_SHADER, "xnor_gemv_binarize"),
            Kernel::new(&GEMV_SUBGROUP_SHADER, "xnor_gemv"),
            Kernel::new(&GEMV_SUBGROUP_SHADER, "xnor_gemv_affine"),
            Kernel::new(&GEMV_SUBGROUP_SHADER, "xnor_gemv_binarize"),
            $(
            Kernel::new(&SHADER, concat!($stem, "_", $rows, "x", $cols)),
            Kernel::new(&SHADER, concat!($stem, "_", $rows, "x", $cols, "_affine")),
        )*];
    };
}
xnor_direct!(
    ("xnor_direct4", true, 8, 256),
    ("xnor_direct4", true, 4, 256),
    ("xnor_direct4", true, 8, 128),
    ("xnor_direct4", true, 4, 128),
    ("xnor_direct", false, 8, 256),
    ("xnor_direct", false, 4, 256),
    ("xnor_direct", false, 8, 128),
    ("xnor_direct", false, 4, 128),
);

const fn gemv_kernels(shader: &'static Shader) -> [Kernel; 3] {
    [Kernel::new(shader, "xnor_gemv"), Kernel::new(shader, "xnor_gemv_affine"), Kernel::new(shader, "xnor_gemv_binarize")]
}

/// Below this many rows the lane-split kernel keeps more of the GPU busy than 64-row tiles.
pub const SMALL_M: usize = 8;
/// Output tile edge of the tiled kernels.
pub const TILE: usize = 64;
/// Output columns per small-M workgroup.
pub const GEMV_COLUMNS: usize = 32;

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Rows of A.
    pub m: u32,
    /// Rows of B.
    pub n: u32,
    /// Bits per row.
    pub k: u32,
    /// Words per row.
    pub words: u32,
    /// Words between batches of A.
    pub a_batch_stride: u32,
    /// Words between batches of B (0: one B for all).
    pub b_batch_stride: u32,
    /// Words per output row when binarizing.
    pub out_words: u32,
    /// Padding.
    pub _pad0: u32,
}
params_layout!(Params { m, n, k, words, a_batch_stride, b_batch_stride, out_words, _pad0 });
