//! `shaders/bitpack.wgsl`: sign and clip-mask bit packing, unpacking, and mask application.

use bytemuck::{Pod, Zeroable};

use super::{params_layout, shader, Kernel, Shader};

/// The kernel family.
pub const SHADER: Shader = shader!("bitpack", "../../shaders/bitpack.wgsl", params_layout, false);
/// One thread per output word.
pub const PACK: Kernel = Kernel::new(&SHADER, "pack");
/// Sign bits and clip mask of the same values: one thread per output word.
pub const PACK_BOTH: Kernel = Kernel::new(&SHADER, "pack_both");
/// One thread per output element.
pub const UNPACK: Kernel = Kernel::new(&SHADER, "unpack");
/// One thread per output element.
pub const MASKED: Kernel = Kernel::new(&SHADER, "masked");
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[PACK, PACK_BOTH, UNPACK, MASKED];

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Rows (product of all but the last axis).
    pub rows: u32,
    /// Values per row.
    pub k: u32,
    /// Words per row.
    pub words: u32,
    /// 0 sign bits, 1 clip mask.
    pub mode: u32,
    /// Clip value of the mask.
    pub clip: f32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
}
params_layout!(Params { rows, k, words, mode, clip, _pad0, _pad1, _pad2 });
