//! `shaders/fake_quant.wgsl`: TensorFlow's fake quantization and its gradient masks.

use bytemuck::{Pod, Zeroable};

use super::{params_layout, shader, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("fake_quant", "../../shaders/fake_quant.wgsl", params_layout, false);
/// The value or a mask.
pub const FAKE_QUANT: Kernel = Kernel::new(&SHADER, "fake_quant");
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[FAKE_QUANT];

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Elements.
    pub n: u32,
    /// Ranges (1, or the last axis when per channel).
    pub channels: u32,
    /// 0 value, 1 in range, 2 below min, 3 above max.
    pub part: u32,
    /// 1 per channel (multiply by the inverse scale), 0 per tensor (divide by the scale).
    pub per_channel: u32,
    /// Lowest integer level.
    pub quant_min: f32,
    /// Highest integer level.
    pub quant_max: f32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
}
params_layout!(Params { n, channels, part, per_channel, quant_min, quant_max, _pad0, _pad1 });
