//! `shaders/bitpack.wgsl`: sign and clip-mask bit packing, unpacking, and mask application.

use bytemuck::{Pod, Zeroable};

use super::{grid_1d, params_layout, BufferView, Dispatch, Kernel, Shader};
use crate::graph::op::words_for;
use crate::graph::PackMode;

/// The kernel family.
pub static SHADER: Shader = Shader::new("bitpack", include_str!("../../shaders/bitpack.wgsl"), params_layout, false);
/// One thread per output word.
pub const PACK: Kernel = Kernel { shader: "bitpack", entry: "pack" };
/// One thread per output element.
pub const UNPACK: Kernel = Kernel { shader: "bitpack", entry: "unpack" };
/// One thread per output element.
pub const MASKED: Kernel = Kernel { shader: "bitpack", entry: "masked" };
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[PACK, UNPACK, MASKED];

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

fn params(rows: usize, k: usize, mode: PackMode) -> Params {
    let (mode, clip) = mode.params();
    Params { rows: rows as u32, k: k as u32, words: words_for(k) as u32, mode, clip, ..Default::default() }
}

/// Packs `rows` rows of `k` values.
pub fn pack(rows: usize, k: usize, mode: PackMode, x: &BufferView, out: &BufferView) -> Dispatch {
    Dispatch::new(PACK, &params(rows, k, mode), &[(1, x), (4, out)], grid_1d(rows * words_for(k), 256))
}

/// Expands `rows` rows of `k` packed bits.
pub fn unpack(rows: usize, k: usize, mode: PackMode, bits: &BufferView, out: &BufferView) -> Dispatch {
    Dispatch::new(UNPACK, &params(rows, k, mode), &[(2, bits), (5, out)], grid_1d(rows * k, 256))
}

/// `dy` where the mask bit is set, else 0.
pub fn masked(rows: usize, k: usize, mask: &BufferView, dy: &BufferView, out: &BufferView) -> Dispatch {
    Dispatch::new(MASKED, &params(rows, k, PackMode::Sign), &[(2, mask), (3, dy), (5, out)], grid_1d(rows * k, 256))
}
