//! `shaders/planes.wgsl`: weighted AND-popcount products of bit planes (the low-bit encodings'
//! integer dot products).

use bytemuck::{Pod, Zeroable};

use super::{params_layout, shader, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("planes", "../../shaders/planes.wgsl", params_layout, false);
/// 4x4 outputs per invocation, 8x8 invocations per workgroup, no workgroup memory.
pub const PLANE_GEMM: Kernel = Kernel::new(&SHADER, "plane_gemm");
/// The same reading four words at a time (words per row a multiple of 4).
pub const PLANE_GEMM4: Kernel = Kernel::new(&SHADER, "plane_gemm4");
/// Two planes `[s & m, m]` weighted `[-2, 1]` on both sides (ternary, ±1), four words at a
/// time: two counts per word pair.
pub const PLANE_GEMM4_SIGNED: Kernel = Kernel::new(&SHADER, "plane_gemm4_signed");
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[PLANE_GEMM, PLANE_GEMM4, PLANE_GEMM4_SIGNED];
/// Output tile edge of a workgroup.
pub const TILE: usize = 32;

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Rows of A.
    pub m: u32,
    /// Rows of B.
    pub n: u32,
    /// Words per row.
    pub words: u32,
    /// Planes of A.
    pub a_planes: u32,
    /// Planes of B.
    pub b_planes: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
    /// A's plane weights, 4 per vector.
    pub a_weights: [[i32; 4]; 2],
    /// B's plane weights.
    pub b_weights: [[i32; 4]; 2],
}
params_layout!(Params { m, n, words, a_planes, b_planes, _pad0, _pad1, _pad2, a_weights, b_weights });
