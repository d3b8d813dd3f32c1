//! `shaders/quantize.wgsl`: Larq quantizer functions and their pseudo-gradients.

use bytemuck::{Pod, Zeroable};

use super::{params_layout, shader, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("quantize", "../../shaders/quantize.wgsl", params_layout, false);
/// Declares [`QUANTIZE`], [`QUANTIZE_GRAD`] and [`KERNELS`] from one list of function names (in
/// `QuantFn` code order), so the three cannot disagree.
macro_rules! quantizer_entries {
    ($($name:literal),*) => {
        /// q(x), one entry point per function, indexed by `QuantFn::code`.
        pub const QUANTIZE: &[Kernel] = &[$(Kernel::new(&SHADER, concat!("quantize_", $name))),*];
        /// dq/dx * dy, one entry point per function, indexed by `QuantFn::code`.
        pub const QUANTIZE_GRAD: &[Kernel] = &[$(Kernel::new(&SHADER, concat!("quantize_grad_", $name))),*];
        /// Every entry point of the family.
        pub const KERNELS: &[Kernel] = &[$(Kernel::new(&SHADER, concat!("quantize_", $name)), Kernel::new(&SHADER, concat!("quantize_grad_", $name))),*];
    };
}
quantizer_entries!(
    "ste_sign",
    "approx_sign",
    "ste_heaviside",
    "swish_sign",
    "scaled_sign",
    "ste_tern",
    "do_re_fa_activations",
    "do_re_fa_weights",
    "identity"
);

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Elements.
    pub n: u32,
    /// Padding.
    pub _pad1: u32,
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
params_layout!(Params { n, _pad1, stat_len, has_stat, clip, a, levels, _pad0 });
