//! `shaders/elementwise.wgsl`: unary functions and their gradients, broadcasting binary
//! functions, fill.

use bytemuck::{Pod, Zeroable};

use super::{params_layout, shader, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("elementwise", "../../shaders/elementwise.wgsl", params_layout, false);
/// `y = f(x)`.
pub const UNARY: Kernel = Kernel::new(&SHADER, "unary");
/// `dx = f'(x) * dy`.
pub const UNARY_GRAD: Kernel = Kernel::new(&SHADER, "unary_grad");
/// `y = f(a, b)` with broadcasting.
pub const BINARY: Kernel = Kernel::new(&SHADER, "binary");
/// `y = f(a, b)` where each operand's index is `(i / divisor) % modulus` of the output's.
pub const BINARY_BLOCKS: Kernel = Kernel::new(&SHADER, "binary_blocks");
/// `y = value`.
pub const FILL: Kernel = Kernel::new(&SHADER, "fill");
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[UNARY, UNARY_GRAD, BINARY, BINARY_BLOCKS, FILL];

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Element count.
    pub n: u32,
    /// Op code.
    pub op: u32,
    /// Output rank (binary).
    pub rank: u32,
    /// Padding.
    pub _pad0: u32,
    /// First scalar parameter.
    pub alpha: f32,
    /// Second scalar parameter.
    pub beta: f32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
    /// Output shape (binary).
    pub shape: [[u32; 4]; 2],
    /// Element strides of `a` in the output's index space (binary).
    pub a_strides: [[u32; 4]; 2],
    /// Element strides of `b` in the output's index space (binary).
    pub b_strides: [[u32; 4]; 2],
    /// Divisor and modulus of `a`'s index, then of `b`'s (`binary_blocks`).
    pub blocks: [u32; 4],
}
params_layout!(Params { n, op, rank, _pad0, alpha, beta, _pad1, _pad2, shape, a_strides, b_strides, blocks });
