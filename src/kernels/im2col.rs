//! `shaders/im2col.wgsl`: patch gathering (im2col) and its adjoint (col2im).

use bytemuck::{Pod, Zeroable};

use super::{grid_1d, params_layout, BufferView, Dispatch, Kernel, Shader};
use crate::graph::{ConvGeometry, DataFormat};

/// The kernel family.
pub static SHADER: Shader = Shader::new("im2col", include_str!("../../shaders/im2col.wgsl"), params_layout, false);
/// One thread per patch element.
pub const IM2COL: Kernel = Kernel { shader: "im2col", entry: "im2col" };
/// One thread per image element.
pub const COL2IM: Kernel = Kernel { shader: "im2col", entry: "col2im" };
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[IM2COL, COL2IM];

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
    /// Padding.
    pub _pad0: u32,
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
    _pad0,
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

fn vec4(v: &[usize]) -> [u32; 4] {
    let mut out = [0; 4];
    v.iter().enumerate().for_each(|(i, &x)| out[i] = x as u32);
    out
}

fn params(g: &ConvGeometry, n: usize, pad_word: u32, run: usize) -> Params {
    let (sn, ss, sc) = g.image_strides();
    Params {
        run: run as u32,
        _pad0: 0,
        _pad1: 0,
        _pad2: 0,
        n: n as u32,
        rank: g.kernel.len() as u32,
        channels: g.channels as u32,
        pad_word,
        batch_stride: sn as u32,
        channel_stride: sc as u32,
        taps: g.taps() as u32,
        out_pixels: g.out_pixels() as u32,
        input: vec4(&g.input),
        output: vec4(&g.output),
        kernel: vec4(&g.kernel),
        strides: vec4(&g.strides),
        dilation: vec4(&g.dilation),
        pad_begin: vec4(&g.pad_begin),
        spatial_strides: vec4(&ss),
    }
}

/// Gathers patches of `image` into `cols`; padded positions get the raw word `pad_word`.
pub fn im2col(g: &ConvGeometry, pad_word: u32, image: &BufferView, cols: &BufferView) -> Dispatch {
    let n = g.cols_shape().numel();
    // Runs of 4 channels need them contiguous (channels last) and a whole number of runs per pixel.
    let run = if g.format == DataFormat::ChannelsLast && g.channels % 4 == 0 { 4 } else { 1 };
    Dispatch::new(IM2COL, &params(g, n, pad_word, run), &[(1, image), (3, cols)], grid_1d(n / run, 256))
}

/// Sums patches back into an f32 image.
pub fn col2im(g: &ConvGeometry, cols: &BufferView, image: &BufferView) -> Dispatch {
    let n = g.image_shape().numel();
    Dispatch::new(COL2IM, &params(g, n, 0, 1), &[(2, cols), (3, image)], grid_1d(n, 256))
}
