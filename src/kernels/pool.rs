//! `shaders/pool.wgsl`: the gradient of max pooling's window maximum.

use bytemuck::{Pod, Zeroable};

use super::{params_layout, shader, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("pool", "../../shaders/pool.wgsl", params_layout, false);
/// One invocation per window.
pub const MAX_GRAD: Kernel = Kernel::new(&SHADER, "max_grad");
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[MAX_GRAD];

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Windows (rows x channels).
    pub windows: u32,
    /// Taps per window.
    pub taps: u32,
    /// Channels.
    pub c: u32,
    /// 1: only the first maximal tap receives the gradient; 0: every maximal tap.
    pub first: u32,
}
params_layout!(Params { windows, taps, c, first });
