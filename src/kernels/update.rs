//! `shaders/update.wgsl`: fused optimizer updates of a variable or a slot.

use bytemuck::{Pod, Zeroable};

use super::{params_layout, shader, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("update", "../../shaders/update.wgsl", params_layout, false);
/// One update function over every element.
pub const UPDATE: Kernel = Kernel::new(&SHADER, "update");
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[UPDATE];

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Elements.
    pub n: u32,
    /// The function's code.
    pub op: u32,
    /// 1 - beta (moments), epsilon (Adam's steps), ln beta_1 (Adam's step size), or 0.
    pub k: f32,
    /// ln beta_2 (Adam's step size), or 0.
    pub k2: f32,
}
params_layout!(Params { n, op, k, k2 });
