//! `shaders/random.wgsl`: counter-based uniform and normal draws.

use bytemuck::{Pod, Zeroable};

use super::{params_layout, shader, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("random", "../../shaders/random.wgsl", params_layout, false);
/// Fills a tensor with draws.
pub const RANDOM: Kernel = Kernel::new(&SHADER, "random");
/// Fills a tensor with draws whose seed also depends on a stream value.
pub const RANDOM_STREAMED: Kernel = Kernel::new(&SHADER, "random_streamed");
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[RANDOM, RANDOM_STREAMED];

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Elements.
    pub n: u32,
    /// 0 uniform, 1 normal, 2 truncated normal.
    pub dist: u32,
    /// Low word of the seed.
    pub seed_lo: u32,
    /// High word of the seed.
    pub seed_hi: u32,
    /// Uniform low bound or normal mean.
    pub a: f32,
    /// Uniform high bound or normal standard deviation.
    pub b: f32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
}
params_layout!(Params { n, dist, seed_lo, seed_hi, a, b, _pad0, _pad1 });
