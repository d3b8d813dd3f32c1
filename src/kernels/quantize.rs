//! `shaders/quantize.wgsl`: Larq quantizer functions and their pseudo-gradients.

use bytemuck::{Pod, Zeroable};

use super::{params_layout, shader, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("quantize", "../../shaders/quantize.wgsl", params_layout, false);
/// q(x).
pub const QUANTIZE: Kernel = Kernel::new(&SHADER, "quantize");
/// dq/dx * dy.
pub const QUANTIZE_GRAD: Kernel = Kernel::new(&SHADER, "quantize_grad");
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[QUANTIZE, QUANTIZE_GRAD];

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Elements.
    pub n: u32,
    /// Function code.
    pub code: u32,
    /// Values in the statistic (read at i % stat_len).
    pub stat_len: u32,
    /// 1 when a statistic is bound.
    pub has_stat: u32,
    /// Straight-through window (+inf: none).
    pub clip: f32,
    /// Function parameter (beta, threshold).
    pub a: f32,
    /// 2^k_bit - 1.
    pub levels: f32,
    /// Padding.
    pub _pad0: u32,
}
params_layout!(Params { n, code, stat_len, has_stat, clip, a, levels, _pad0 });
