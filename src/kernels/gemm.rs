//! `shaders/gemm.wgsl`: tiled, batched f32 matrix product.

use bytemuck::{Pod, Zeroable};

use super::{params_layout, shader, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("gemm", "../../shaders/gemm.wgsl", params_layout, false);
/// 64x64 tiles, 4x4 per thread.
pub const MATMUL: Kernel = Kernel::new(&SHADER, "matmul");
/// One thread per output column, for small M.
pub const GEMV: Kernel = Kernel::new(&SHADER, "gemv");
/// A barrier-free vec4 variant (`direct_<rows>x<cols>_<layout>`, or `direct1_...` for any K): a
/// workgroup computes `rows` x `cols` outputs of one storage layout.
#[derive(Clone, Debug)]
pub struct Direct {
    /// Its entry point.
    pub kernel: Kernel,
    /// Output rows per workgroup.
    pub rows: usize,
    /// Output columns per workgroup.
    pub cols: usize,
    /// A stored transposed.
    pub trans_a: bool,
    /// B stored transposed.
    pub trans_b: bool,
    /// K advances in vec4s (`direct_*`, K a multiple of 4) rather than one term at a time.
    pub vec_k: bool,
}

/// Declares [`DIRECT`] (every variant, in the order the untuned choice prefers them) and
/// [`KERNELS`] from one list of workgroup tile shapes, so the two cannot disagree.
macro_rules! direct_variants {
    ($(($stem:literal, $vec_k:literal, $rows:literal, $cols:literal)),*; signs $(($sstem:literal, $svec_k:literal, $srows:literal, $scols:literal)),*) => {
        /// The variants that read B as packed sign bits (`direct_signs4_*`, K in vec4 steps,
        /// and `direct_signs_*`; layouts nn and tn), best first when nothing was timed.
        pub const DIRECT_SIGNS: &[Direct] = &[$(
            direct_variants!(@one $sstem, $svec_k, $srows, $scols, "nn", false, false),
            direct_variants!(@one $sstem, $svec_k, $srows, $scols, "tn", true, false),
        )*];
        /// The barrier-free vec4 variants, best first when nothing was timed.
        pub const DIRECT: &[Direct] = &[$(
            direct_variants!(@one $stem, $vec_k, $rows, $cols, "nn", false, false),
            direct_variants!(@one $stem, $vec_k, $rows, $cols, "tn", true, false),
            direct_variants!(@one $stem, $vec_k, $rows, $cols, "nt", false, true),
            direct_variants!(@one $stem, $vec_k, $rows, $cols, "tt", true, true),
        )*];
        /// Every entry point of the family.
        pub const KERNELS: &[Kernel] = &[MATMUL, GEMV, $(
            Kernel::new(&SHADER, concat!($stem, "_", $rows, "x", $cols, "_nn")),
            Kernel::new(&SHADER, concat!($stem, "_", $rows, "x", $cols, "_tn")),
            Kernel::new(&SHADER, concat!($stem, "_", $rows, "x", $cols, "_nt")),
            Kernel::new(&SHADER, concat!($stem, "_", $rows, "x", $cols, "_tt")),
        )*
        $(
            Kernel::new(&SHADER, concat!($sstem, "_", $srows, "x", $scols, "_nn")),
            Kernel::new(&SHADER, concat!($sstem, "_", $srows, "x", $scols, "_tn")),
        )*];
    };
    (@one $stem:literal, $vec_k:literal, $rows:literal, $cols:literal, $layout:literal, $ta:literal, $tb:literal) => {
        Direct {
            kernel: Kernel::new(&SHADER, concat!($stem, "_", $rows, "x", $cols, "_", $layout)),
            rows: $rows,
            cols: $cols,
            trans_a: $ta,
            trans_b: $tb,
            vec_k: $vec_k,
        }
    };
}
direct_variants!(
    ("direct", true, 8, 256),
    ("direct", true, 4, 256),
    ("direct", true, 8, 128),
    ("direct", true, 4, 128),
    ("direct1", false, 8, 256),
    ("direct1", false, 4, 256),
    ("direct1", false, 8, 128),
    ("direct1", false, 4, 128);
    signs ("direct_signs4", true, 8, 256),
    ("direct_signs4", true, 4, 256),
    ("direct_signs4", true, 8, 128),
    ("direct_signs4", true, 4, 128),
    ("direct_signs", false, 8, 256),
    ("direct_signs", false, 4, 256),
    ("direct_signs", false, 8, 128),
    ("direct_signs", false, 4, 128)
);

impl Direct {
    /// Whether this variant can run an `m x n x k` product of its layout: N a multiple of 4, and
    /// with vec4 K steps K too (and M when A is stored transposed).
    pub const fn fits(&self, m: usize, n: usize, k: usize) -> bool {
        n % 4 == 0 && (!self.vec_k || (k % 4 == 0 && (!self.trans_a || m % 4 == 0)))
    }
}

/// Below this share of useful outputs in its 64x64 tiles (a product with few rows or columns),
/// the one-thread-per-output `GEMV` is also a candidate for the tuner.
pub const GEMV_BELOW_TILE_USE: f64 = 0.25;

/// Below this many rows the one-thread-per-column kernel beats 64-row tiles.
pub const SMALL_M: usize = 8;

/// Output tile edge of `MATMUL` (64x64 tiles, 4x4 per invocation).
pub const TILE: usize = 64;
/// Output columns per `GEMV` workgroup.
pub const GEMV_COLUMNS: usize = 256;

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Rows of C.
    pub m: u32,
    /// Columns of C.
    pub n: u32,
    /// Reduction length.
    pub k: u32,
    /// Number of batch axes.
    pub batch_rank: u32,
    /// 1 if A is stored transposed.
    pub trans_a: u32,
    /// 1 if B is stored transposed.
    pub trans_b: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
    /// Output batch shape.
    pub batch_shape: [[u32; 4]; 2],
    /// Matrix step of A per batch axis.
    pub a_batch_strides: [[u32; 4]; 2],
    /// Matrix step of B per batch axis.
    pub b_batch_strides: [[u32; 4]; 2],
}
params_layout!(Params { m, n, k, batch_rank, trans_a, trans_b, _pad0, _pad1, batch_shape, a_batch_strides, b_batch_strides });
