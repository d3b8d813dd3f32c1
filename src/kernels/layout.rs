//! `shaders/layout.wgsl`: strided copies for permute and broadcast; windows for slicing and padding.

use bytemuck::{Pod, Zeroable};

use super::{dims8, grid_1d, params_layout, BufferView, Dispatch, Kernel, Shader};

/// The kernel family.
pub static SHADER: Shader = Shader::new("layout", include_str!("../../shaders/layout.wgsl"), params_layout, false);
/// `dst[i] = src[offset(i)]`.
pub const STRIDED_COPY: Kernel = Kernel { shader: "layout", entry: "strided_copy" };
/// `dst[i] = src[i + offset]` inside `src`, else 0.
pub const WINDOW: Kernel = Kernel { shader: "layout", entry: "window" };
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[STRIDED_COPY, WINDOW];

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Output elements.
    pub n: u32,
    /// Output rank.
    pub rank: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
    /// Output shape.
    pub shape: [[u32; 4]; 2],
    /// Source stride of each output axis.
    pub src_strides: [[u32; 4]; 2],
    /// Source shape (window only).
    pub src_shape: [[u32; 4]; 2],
    /// Offset of the output's origin in the source, per axis (window only).
    pub offset: [[i32; 4]; 2],
}
params_layout!(Params { n, rank, _pad0, _pad1, shape, src_strides, src_shape, offset });

/// Writes `dst` (contiguous, `shape`) from `src` read with `src_strides`.
pub fn strided_copy(shape: &[usize], src_strides: &[usize], src: &BufferView, dst: &BufferView) -> Dispatch {
    let n = shape.iter().product::<usize>();
    let p = Params { n: n as u32, rank: shape.len() as u32, shape: dims8(shape), src_strides: dims8(src_strides), ..Default::default() };
    Dispatch::new(STRIDED_COPY, &p, &[(1, src), (2, dst)], grid_1d(n, 256))
}

/// Writes `dst` (contiguous, `shape`) with the window of `src` (`src_shape`) at `offset`.
pub fn window(src_shape: &[usize], offset: &[isize], shape: &[usize], src: &BufferView, dst: &BufferView) -> Dispatch {
    let n = shape.iter().product::<usize>();
    let strides = crate::Shape::new(src_shape.to_vec()).strides();
    let mut off = [[0i32; 4]; 2];
    offset.iter().enumerate().for_each(|(d, &o)| off[d / 4][d % 4] = o as i32);
    let p = Params {
        n: n as u32,
        rank: shape.len() as u32,
        shape: dims8(shape),
        src_strides: dims8(&strides),
        src_shape: dims8(src_shape),
        offset: off,
        ..Default::default()
    };
    Dispatch::new(WINDOW, &p, &[(1, src), (2, dst)], grid_1d(n, 256))
}
