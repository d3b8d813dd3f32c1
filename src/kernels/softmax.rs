//! `shaders/softmax.wgsl`: softmax and fused softmax cross-entropy.

use bytemuck::{Pod, Zeroable};

use super::{grid_1d, params_layout, shader, BufferView, Dispatch, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("softmax", "../../shaders/softmax.wgsl", params_layout, false);
/// Softmax over rows.
pub const SOFTMAX: Kernel = Kernel::new(&SHADER, "softmax");
/// Per-row cross-entropy.
pub const XENT: Kernel = Kernel::new(&SHADER, "xent");
/// Gradient of the per-row cross-entropy.
pub const XENT_GRAD: Kernel = Kernel::new(&SHADER, "xent_grad");
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[SOFTMAX, XENT, XENT_GRAD];

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Rows.
    pub rows: u32,
    /// Columns (classes).
    pub cols: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
}
params_layout!(Params { rows, cols, _pad0, _pad1 });

fn params(rows: usize, cols: usize) -> Params {
    Params { rows: rows as u32, cols: cols as u32, ..Default::default() }
}

/// Softmax of each of `rows` rows.
pub fn softmax(rows: usize, cols: usize, x: &BufferView, out: &BufferView) -> Dispatch {
    Dispatch::new(SOFTMAX, &params(rows, cols), &[(1, x), (4, out)], grid_1d(rows, 1))
}

/// Cross-entropy of each row against its label.
pub fn xent(rows: usize, cols: usize, x: &BufferView, labels: &BufferView, out: &BufferView) -> Dispatch {
    Dispatch::new(XENT, &params(rows, cols), &[(1, x), (2, labels), (4, out)], grid_1d(rows, 1))
}

/// `(softmax(x) - onehot(label)) * dloss` per row.
pub fn xent_grad(rows: usize, cols: usize, x: &BufferView, labels: &BufferView, dloss: &BufferView, out: &BufferView) -> Dispatch {
    Dispatch::new(XENT_GRAD, &params(rows, cols), &[(1, x), (2, labels), (3, dloss), (4, out)], grid_1d(rows, 1))
}
