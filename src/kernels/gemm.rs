//! `shaders/gemm.wgsl`: tiled, batched f32 matrix product.

use bytemuck::{Pod, Zeroable};

use super::{dims8, params_layout, BufferView, Dispatch, Kernel, Shader};
use crate::graph::MatMulDims;

/// The kernel family.
pub static SHADER: Shader = Shader::new("gemm", include_str!("../../shaders/gemm.wgsl"), params_layout, false);
/// 64x64 tiles, 4x4 per thread.
pub const MATMUL: Kernel = Kernel { shader: "gemm", entry: "matmul" };
/// One thread per output column, for small M.
pub const GEMV: Kernel = Kernel { shader: "gemm", entry: "gemv" };
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[MATMUL, GEMV];

/// Below this many rows the one-thread-per-column kernel beats 64-row tiles.
pub const SMALL_M: usize = 8;

const TILE: usize = 64;

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

/// `c = op(a) @ op(b)` for the sizes in `d`, choosing the kernel shape by M.
pub fn matmul(d: &MatMulDims, trans_a: bool, trans_b: bool, a: &BufferView, b: &BufferView, c: &BufferView) -> Dispatch {
    let p = Params {
        m: d.m as u32,
        n: d.n as u32,
        k: d.k as u32,
        batch_rank: d.batch_shape.len() as u32,
        trans_a: trans_a as u32,
        trans_b: trans_b as u32,
        batch_shape: dims8(&d.batch_shape),
        a_batch_strides: dims8(&d.a_batch_strides),
        b_batch_strides: dims8(&d.b_batch_strides),
        ..Default::default()
    };
    let (kernel, workgroups) = if d.m < SMALL_M {
        (GEMV, [d.n.div_ceil(256) as u32, d.m as u32, d.batch as u32])
    } else {
        (MATMUL, [d.n.div_ceil(TILE) as u32, d.m.div_ceil(TILE) as u32, d.batch as u32])
    };
    Dispatch::new(kernel, &p, &[(1, a), (2, b), (3, c)], workgroups)
}
