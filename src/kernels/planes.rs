//! `shaders/planes.wgsl`: weighted AND-popcount products of bit planes (the low-bit encodings'
//! integer dot products), and packing values into planes and back.

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
/// Packs rows of values into the planes of an encoding, one word of every plane per invocation.
pub const PLANE_PACK: Kernel = Kernel::new(&SHADER, "plane_pack");
/// Expands planes back to values, one element per invocation.
pub const PLANE_UNPACK: Kernel = Kernel::new(&SHADER, "plane_unpack");
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[PLANE_GEMM, PLANE_GEMM4, PLANE_GEMM4_SIGNED, PLANE_PACK, PLANE_UNPACK];
/// Output tile edge of a workgroup.
pub const TILE: usize = 32;

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Rows of A (per batch entry).
    pub m: u32,
    /// Rows of B (per batch entry); pack and unpack: rows in all.
    pub n: u32,
    /// Words per row.
    pub words: u32,
    /// Planes of A (pack and unpack: of the encoding).
    pub a_planes: u32,
    /// Planes of B.
    pub b_planes: u32,
    /// Pack and unpack: values per row.
    pub k: u32,
    /// Pack: the encoding's code.
    pub encoding: u32,
    /// Pack and unpack: integers per unit value.
    pub scale: f32,
    /// A's plane weights, 4 per vector.
    pub a_weights: [[i32; 4]; 2],
    /// B's plane weights.
    pub b_weights: [[i32; 4]; 2],
}
params_layout!(Params { m, n, words, a_planes, b_planes, k, encoding, scale, a_weights, b_weights });
