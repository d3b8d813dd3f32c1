//! `shaders/reduce.wgsl`: sum, mean and max over any set of axes.

use bytemuck::{Pod, Zeroable};

use super::{dims8, grid_1d, params_layout, BufferView, Dispatch, Kernel, Shader};
use crate::graph::ReduceOp;

/// The kernel family.
pub static SHADER: Shader = Shader::new("reduce", include_str!("../../shaders/reduce.wgsl"), params_layout, false);
/// One workgroup per output element.
pub const REDUCE: Kernel = Kernel { shader: "reduce", entry: "reduce" };
/// One thread per output element.
pub const REDUCE_EACH: Kernel = Kernel { shader: "reduce", entry: "reduce_each" };
/// Every entry point of the family.
pub const KERNELS: &[Kernel] = &[REDUCE, REDUCE_EACH];

/// Up to this many elements per output, one thread per output beats a workgroup per output
/// (whose 64 threads would mostly idle at its barriers).
pub const SHORT: usize = 64;

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Output elements.
    pub n_out: u32,
    /// Elements reduced into each output.
    pub n_red: u32,
    /// Number of kept axes.
    pub out_rank: u32,
    /// Number of reduced axes.
    pub red_rank: u32,
    /// Op code.
    pub op: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
    /// Sizes of the kept axes.
    pub out_shape: [[u32; 4]; 2],
    /// Input strides of the kept axes.
    pub out_strides: [[u32; 4]; 2],
    /// Sizes of the reduced axes.
    pub red_shape: [[u32; 4]; 2],
    /// Input strides of the reduced axes.
    pub red_strides: [[u32; 4]; 2],
}
params_layout!(Params { n_out, n_red, out_rank, red_rank, op, _pad0, _pad1, _pad2, out_shape, out_strides, red_shape, red_strides });

/// Reduces `x` (of shape `shape`) over `axes` into `out`.
pub fn reduce(op: ReduceOp, shape: &[usize], axes: &[usize], x: &BufferView, out: &BufferView) -> Dispatch {
    let strides = crate::tensor::Shape::new(shape).strides();
    let split = |keep: bool| -> (Vec<usize>, Vec<usize>) {
        (0..shape.len()).filter(|i| axes.contains(i) != keep).map(|i| (shape[i], strides[i])).unzip()
    };
    let (os, ost) = split(true);
    let (rs, rst) = split(false);
    let n_out = os.iter().product::<usize>();
    let n_red = rs.iter().product::<usize>();
    let p = Params {
        n_out: n_out as u32,
        n_red: n_red as u32,
        out_rank: os.len() as u32,
        red_rank: rs.len() as u32,
        op: op.code(),
        out_shape: dims8(&os),
        out_strides: dims8(&ost),
        red_shape: dims8(&rs),
        red_strides: dims8(&rst),
        ..Default::default()
    };
    if n_red <= SHORT {
        Dispatch::new(REDUCE_EACH, &p, &[(1, x), (2, out)], grid_1d(n_out, 64))
    } else {
        Dispatch::new(REDUCE, &p, &[(1, x), (2, out)], grid_1d(n_out, 1))
    }
}
