//! `shaders/reduce.wgsl`: sum, mean and max over any set of axes.

use bytemuck::{Pod, Zeroable};

use super::{params_layout, shader, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("reduce", "../../shaders/reduce.wgsl", params_layout, false);
/// One workgroup per output element.
pub const REDUCE: Kernel = Kernel::new(&SHADER, "reduce");
/// One thread per output element.
pub const REDUCE_EACH: Kernel = Kernel::new(&SHADER, "reduce_each");
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[REDUCE, REDUCE_EACH];

/// Up to this many elements per output, one thread per output beats a workgroup per output
/// (whose 64 threads would mostly idle at its barriers).
pub const SHORT: usize = 64;

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Output elements.
    pub n_out: u32,
    /// Elements reduced into each output.
    pub n_red: u32,
    /// Number of kept axes.
    pub out_rank: u32,
    /// Number of reduced axes.
    pub red_rank: u32,
    /// Op code.
    pub op: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
    /// Sizes of the kept axes.
    pub out_shape: [[u32; 4]; 2],
    /// Input strides of the kept axes.
    pub out_strides: [[u32; 4]; 2],
    /// Sizes of the reduced axes.
    pub red_shape: [[u32; 4]; 2],
    /// Input strides of the reduced axes.
    pub red_strides: [[u32; 4]; 2],
}
params_layout!(Params { n_out, n_red, out_rank, red_rank, op, _pad0, _pad1, _pad2, out_shape, out_strides, red_shape, red_strides });
