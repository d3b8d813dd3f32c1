//! `shaders/gather.wgsl`: row gather and its gradient, and the flat index map `take`.

use bytemuck::{Pod, Zeroable};

use super::{grid_1d, params_layout, shader, BufferView, Dispatch, Kernel, Shader, WG};

/// The kernel family.
pub const SHADER: Shader = shader!("gather", "../../shaders/gather.wgsl", params_layout, false);
/// `out[i] = table[idx[i]]`.
pub const GATHER: Kernel = Kernel::new(&SHADER, "gather");
/// `out[r] = sum of dy[j] where idx[j] == r`.
pub const GATHER_GRAD: Kernel = Kernel::new(&SHADER, "gather_grad");

/// `out[i] = x[idx[i]]`, 0 for an index outside `x`.
pub const TAKE: Kernel = Kernel::new(&SHADER, "take");
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[GATHER, GATHER_GRAD, TAKE];

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Number of indices.
    pub m: u32,
    /// Rows of the table.
    pub rows: u32,
    /// Elements per row.
    pub inner: u32,
    /// Padding.
    pub _pad0: u32,
}
params_layout!(Params { m, rows, inner, _pad0 });

/// Gathers `m` rows of `inner` elements from a `rows`-row table.
pub fn gather(m: usize, rows: usize, inner: usize, table: &BufferView, idx: &BufferView, out: &BufferView) -> Dispatch {
    let p = Params { m: m as u32, rows: rows as u32, inner: inner as u32, _pad0: 0 };
    Dispatch::new(GATHER, &p, &[(1, table), (2, idx), (3, out)], grid_1d(m * inner, WG))
}

/// Accumulates `dy` rows into a `rows`-row table gradient.
pub fn gather_grad(m: usize, rows: usize, inner: usize, idx: &BufferView, dy: &BufferView, out: &BufferView) -> Dispatch {
    let p = Params { m: m as u32, rows: rows as u32, inner: inner as u32, _pad0: 0 };
    Dispatch::new(GATHER_GRAD, &p, &[(1, dy), (2, idx), (3, out)], grid_1d(rows * inner, WG))
}

/// Picks `m` elements of the `len`-element `x` by flat index.
pub fn take(m: usize, len: usize, x: &BufferView, idx: &BufferView, out: &BufferView) -> Dispatch {
    let p = Params { m: m as u32, rows: len as u32, inner: 1, _pad0: 0 };
    Dispatch::new(TAKE, &p, &[(1, x), (2, idx), (3, out)], grid_1d(m, WG))
}
