//! `shaders/random.wgsl`: counter-based uniform and normal draws.

use bytemuck::{Pod, Zeroable};

use super::{grid_1d, params_layout, BufferView, Dispatch, Kernel, Shader};
use crate::graph::Distribution;

/// The kernel family.
pub static SHADER: Shader = Shader::new("random", include_str!("../../shaders/random.wgsl"), params_layout, false);
/// Fills a tensor with draws.
pub const RANDOM: Kernel = Kernel { shader: "random", entry: "random" };
/// Fills a tensor with draws whose seed also depends on a stream value.
pub const RANDOM_STREAMED: Kernel = Kernel { shader: "random", entry: "random_streamed" };
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

/// `n` draws from `dist` with `seed`.
pub fn random(dist: Distribution, seed: u64, n: usize, out: &BufferView) -> Dispatch {
    Dispatch::new(RANDOM, &params(dist, seed, n), &[(1, out)], grid_1d(n, 256))
}

/// `n` draws from `dist` with `seed` mixed with the value in `stream` (see `cpu::stream_seed`).
pub fn random_streamed(dist: Distribution, seed: u64, n: usize, stream: &BufferView, out: &BufferView) -> Dispatch {
    Dispatch::new(RANDOM_STREAMED, &params(dist, seed, n), &[(1, out), (2, stream)], grid_1d(n, 256))
}

fn params(dist: Distribution, seed: u64, n: usize) -> Params {
    let (code, a, b) = match dist {
        Distribution::Uniform { low, high } => (0, low, high),
        Distribution::Normal { mean, std } => (1, mean, std),
        Distribution::TruncatedNormal { mean, std } => (2, mean, std),
    };
    Params { n: n as u32, dist: code, seed_lo: seed as u32, seed_hi: (seed >> 32) as u32, a, b, ..Default::default() }
}
