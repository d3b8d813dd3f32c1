//! `shaders/layout.wgsl`: strided copies for permute and broadcast; windows for slicing and padding.

use bytemuck::{Pod, Zeroable};

use super::{params_layout, shader, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("layout", "../../shaders/layout.wgsl", params_layout, false);
/// `dst[i] = src[offset(i)]`.
pub const STRIDED_COPY: Kernel = Kernel::new(&SHADER, "strided_copy");
/// `dst[i] = src[i + offset]` inside `src`, else 0.
pub const WINDOW: Kernel = Kernel::new(&SHADER, "window");
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
