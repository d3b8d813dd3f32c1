//! `shaders/fake_quant.wgsl`: TensorFlow's fake quantization and its gradient masks.

use bytemuck::{Pod, Zeroable};

use super::{grid_1d, params_layout, BufferView, Dispatch, Kernel, Shader};
use crate::graph::{FakeQuantPart, FakeQuantSpec};

/// The kernel family.
pub static SHADER: Shader = Shader::new("fake_quant", include_str!("../../shaders/fake_quant.wgsl"), params_layout, false);
/// The value or a mask.
pub const FAKE_QUANT: Kernel = Kernel { shader: "fake_quant", entry: "fake_quant" };
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

/// `out = part(x; min, max)` for `n` elements and `channels` ranges.
pub fn fake_quant(
    spec: FakeQuantSpec,
    part: FakeQuantPart,
    n: usize,
    channels: usize,
    [x, min, max]: [&BufferView; 3],
    out: &BufferView,
) -> Dispatch {
    let part = match part {
        FakeQuantPart::Value => 0,
        FakeQuantPart::InRange => 1,
        FakeQuantPart::BelowMin => 2,
        FakeQuantPart::AboveMax => 3,
    };
    let params = Params {
        n: n as u32,
        channels: channels as u32,
        part,
        per_channel: u32::from(spec.per_channel),
        quant_min: if spec.narrow_range { 1.0 } else { 0.0 },
        quant_max: ((1u32 << spec.num_bits) - 1) as f32,
        _pad0: 0,
        _pad1: 0,
    };
    Dispatch::new(FAKE_QUANT, &params, &[(1, x), (2, min), (3, max), (4, out)], grid_1d(n, 256))
}
