//! `shaders/ranking.wgsl`: where each row's label ranks among its scores.

use bytemuck::{Pod, Zeroable};

use super::{grid_1d, params_layout, shader, BufferView, Dispatch, Kernel, Shader, WG};

/// The kernel family.
pub const SHADER: Shader = shader!("ranking", "../../shaders/ranking.wgsl", params_layout, false);
/// Ranks against integer labels.
pub const LABEL_RANK_SPARSE: Kernel = Kernel::new(&SHADER, "label_rank_sparse");
/// Ranks against one-hot targets.
pub const LABEL_RANK_ONEHOT: Kernel = Kernel::new(&SHADER, "label_rank_onehot");
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[LABEL_RANK_SPARSE, LABEL_RANK_ONEHOT];

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Rows.
    pub rows: u32,
    /// Columns (classes).
    pub cols: u32,
    /// 1 when classes tied with the label at a lower index rank above it.
    pub first_ties: u32,
    /// Padding.
    pub _pad0: u32,
}
params_layout!(Params { rows, cols, first_ties, _pad0 });

/// The rank of each of `rows` labels among its row's `cols` scores; `onehot` when `target` is
/// f32 `[rows, cols]` rather than i32 `[rows]`.
pub fn label_rank(
    rows: usize,
    cols: usize,
    first_ties: bool,
    onehot: bool,
    scores: &BufferView,
    target: &BufferView,
    out: &BufferView,
) -> Dispatch {
    let p = Params { rows: rows as u32, cols: cols as u32, first_ties: u32::from(first_ties), _pad0: 0 };
    let kernel = if onehot { LABEL_RANK_ONEHOT } else { LABEL_RANK_SPARSE };
    Dispatch::new(kernel, &p, &[(1, scores), (2, target), (3, out)], grid_1d(rows, WG))
}
