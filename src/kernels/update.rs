//! `shaders/update.wgsl`: fused optimizer updates of a variable or a slot.

use bytemuck::{Pod, Zeroable};

use super::{params_layout, shader, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("update", "../../shaders/update.wgsl", params_layout, false);
/// One entry point per update function, indexed by `UpdateFn::code` (each named as its WGSL
/// code constant in lower case).
pub const KERNELS: &[Kernel] = &[
    Kernel::new(&SHADER, "update_moment"),
    Kernel::new(&SHADER, "update_squared_moment"),
    Kernel::new(&SHADER, "update_adam_step"),
    Kernel::new(&SHADER, "update_adam_w_step"),
    Kernel::new(&SHADER, "update_sgd"),
    Kernel::new(&SHADER, "update_velocity"),
    Kernel::new(&SHADER, "update_nesterov_step"),
    Kernel::new(&SHADER, "update_bop_moment"),
    Kernel::new(&SHADER, "update_bop_flip"),
    Kernel::new(&SHADER, "update_adam_alpha"),
];

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Elements.
    pub n: u32,
    /// 1 - beta (moments), epsilon (Adam's steps), ln beta_1 (Adam's step size), or 0.
    pub k: f32,
    /// ln beta_2 (Adam's step size), or 0.
    pub k2: f32,
    /// Padding.
    pub _pad: u32,
}
params_layout!(Params { n, k, k2, _pad });
