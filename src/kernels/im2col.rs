//! `shaders/im2col.wgsl`: patch gathering (im2col) and its adjoint (col2im), also fused with
//! the product of sign bits that makes the patches (col2im_signs).

use bytemuck::{Pod, Zeroable};

use super::{params_layout, shader, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("im2col", "../../shaders/im2col.wgsl", params_layout, false);
/// One thread per patch element.
pub const IM2COL: Kernel = Kernel::new(&SHADER, "im2col");
/// One thread per image element.
pub const COL2IM: Kernel = Kernel::new(&SHADER, "col2im");
/// One thread per image element, for windows that do not overlap (one tap per element at most).
pub const COL2IM_DISJOINT: Kernel = Kernel::new(&SHADER, "col2im_disjoint");
/// col2im of `dY @ sign(W)` without the patches, 4 image pixels (by 4 channels) per thread.
pub const COL2IM_SIGNS_4: Kernel = Kernel::new(&SHADER, "col2im_signs_4");
/// The same, 8 pixels per thread.
pub const COL2IM_SIGNS_8: Kernel = Kernel::new(&SHADER, "col2im_signs_8");
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[IM2COL, COL2IM, COL2IM_DISJOINT, COL2IM_SIGNS_4, COL2IM_SIGNS_8];

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Threads (output elements).
    pub n: u32,
    /// Spatial axes.
    pub rank: u32,
    /// Channels (or words per pixel).
    pub channels: u32,
    /// Raw bits written at padded positions.
    pub pad_word: u32,
    /// Image element stride of the batch axis.
    pub batch_stride: u32,
    /// Image element stride of the channel axis.
    pub channel_stride: u32,
    /// Kernel taps.
    pub taps: u32,
    /// Output pixels per image.
    pub out_pixels: u32,
    /// Consecutive channels copied per im2col thread.
    pub run: u32,
    /// col2im_signs: the product's inner length (dY's columns).
    pub k: u32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
    /// Input spatial sizes.
    pub input: [u32; 4],
    /// Output spatial sizes.
    pub output: [u32; 4],
    /// Kernel sizes.
    pub kernel: [u32; 4],
    /// Strides.
    pub strides: [u32; 4],
    /// Dilation.
    pub dilation: [u32; 4],
    /// Padding before each axis.
    pub pad_begin: [u32; 4],
    /// Image element strides of the spatial axes.
    pub spatial_strides: [u32; 4],
}
params_layout!(Params {
    n,
    rank,
    channels,
    pad_word,
    batch_stride,
    channel_stride,
    taps,
    out_pixels,
    run,
    k,
    _pad1,
    _pad2,
    input,
    output,
    kernel,
    strides,
    dilation,
    pad_begin,
    spatial_strides
});
