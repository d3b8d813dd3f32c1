//! `shaders/elementwise.wgsl`: unary functions and their gradients, broadcasting binary
//! functions, fill.

use bytemuck::{Pod, Zeroable};

use super::{dims8, grid_1d, params_layout, BufferView, Dispatch, Kernel, Shader};
use crate::graph::{BinaryOp, UnaryOp};

/// The kernel family.
pub static SHADER: Shader = Shader::new("elementwise", include_str!("../../shaders/elementwise.wgsl"), params_layout, false);
/// `y = f(x)`.
pub const UNARY: Kernel = Kernel { shader: "elementwise", entry: "unary" };
/// `dx = f'(x) * dy`.
pub const UNARY_GRAD: Kernel = Kernel { shader: "elementwise", entry: "unary_grad" };
/// `y = f(a, b)` with broadcasting.
pub const BINARY: Kernel = Kernel { shader: "elementwise", entry: "binary" };
/// `y = value`.
pub const FILL: Kernel = Kernel { shader: "elementwise", entry: "fill" };
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[UNARY, UNARY_GRAD, BINARY, FILL];

const WG: usize = 256;

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
}
params_layout!(Params { n, op, rank, _pad0, alpha, beta, _pad1, _pad2, shape, a_strides, b_strides });

/// `out = op(x)` over `n` elements.
pub fn unary(op: UnaryOp, n: usize, x: &BufferView, out: &BufferView) -> Dispatch {
    let (alpha, beta) = op.params();
    let p = Params { n: n as u32, op: op.code(), alpha, beta, ..Default::default() };
    Dispatch::new(UNARY, &p, &[(1, x), (3, out)], grid_1d(n, WG))
}

/// `out = op'(x) * dy` over `n` elements.
pub fn unary_grad(op: UnaryOp, n: usize, x: &BufferView, dy: &BufferView, out: &BufferView) -> Dispatch {
    let (alpha, beta) = op.params();
    let p = Params { n: n as u32, op: op.code(), alpha, beta, ..Default::default() };
    Dispatch::new(UNARY_GRAD, &p, &[(1, x), (2, dy), (3, out)], grid_1d(n, WG))
}

/// `out = op(a, b)` where `a_strides`/`b_strides` map output coordinates to operand elements.
pub fn binary(
    op: BinaryOp,
    out_shape: &[usize],
    a_strides: &[usize],
    b_strides: &[usize],
    a: &BufferView,
    b: &BufferView,
    out: &BufferView,
) -> Dispatch {
    let n = out_shape.iter().product::<usize>();
    let p = Params {
        n: n as u32,
        op: op.code(),
        rank: out_shape.len() as u32,
        shape: dims8(out_shape),
        a_strides: dims8(a_strides),
        b_strides: dims8(b_strides),
        ..Default::default()
    };
    Dispatch::new(BINARY, &p, &[(1, a), (2, b), (3, out)], grid_1d(n, WG))
}

/// `out[..n] = value`.
pub fn fill(value: f32, n: usize, out: &BufferView) -> Dispatch {
    let p = Params { n: n as u32, alpha: value, ..Default::default() };
    Dispatch::new(FILL, &p, &[(3, out)], grid_1d(n, WG))
}
