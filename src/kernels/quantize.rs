//! `shaders/quantize.wgsl`: Larq quantizer functions and their pseudo-gradients.

use bytemuck::{Pod, Zeroable};

use super::{grid_1d, params_layout, BufferView, Dispatch, Kernel, Shader};
use crate::graph::QuantFn;

/// The kernel family.
pub static SHADER: Shader = Shader::new("quantize", include_str!("../../shaders/quantize.wgsl"), params_layout, false);
/// q(x).
pub const QUANTIZE: Kernel = Kernel { shader: "quantize", entry: "quantize" };
/// dq/dx * dy.
pub const QUANTIZE_GRAD: Kernel = Kernel { shader: "quantize", entry: "quantize_grad" };
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

fn params(f: QuantFn, n: usize, stat: Option<&BufferView>) -> Params {
    let (code, clip, a, levels) = f.params();
    let stat_len = stat.map_or(1, |s| (s.size / 4) as u32);
    Params { n: n as u32, code, stat_len, has_stat: u32::from(stat.is_some()), clip, a, levels, _pad0: 0 }
}

/// `out = q(x)`; without a statistic, `x` is bound in its slot (it is never read there).
pub fn quantize(f: QuantFn, n: usize, x: &BufferView, stat: Option<&BufferView>, out: &BufferView) -> Dispatch {
    Dispatch::new(QUANTIZE, &params(f, n, stat), &[(1, x), (2, stat.unwrap_or(x)), (4, out)], grid_1d(n, 256))
}

/// `out = dq/dx * dy`.
pub fn quantize_grad(f: QuantFn, n: usize, x: &BufferView, stat: Option<&BufferView>, dy: &BufferView, out: &BufferView) -> Dispatch {
    Dispatch::new(QUANTIZE_GRAD, &params(f, n, stat), &[(1, x), (2, stat.unwrap_or(x)), (3, dy), (4, out)], grid_1d(n, 256))
}
