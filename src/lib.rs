//! bitgrad: binarized and quantized neural networks trained and run on the GPU through wgpu,
//! with hand-written WGSL compute kernels and a CPU reference backend that every kernel is
//! checked against.
//!
//! The core loop is *define, differentiate, plan, run*: record a [`Graph`], append its
//! gradient with [`Graph::backward`], make a [`Plan`] for a [`Device`] once, then
//! [`Plan::run`] each step as a single GPU submission.
//!
//! ```
//! use bitgrad::{Device, Graph, HostTensor, ParamStore, Plan, DType};
//! # fn main() -> bitgrad::Result<()> {
//! let mut g = Graph::new();
//! let x = g.input("x", [2, 3], DType::F32)?;
//! let y = g.softmax(x)?;
//! let device = Device::cpu(); // or Device::gpu()?
//! let mut plan = Plan::new(&device, &g, &[y], &mut ParamStore::new())?;
//! plan.feed("x", &HostTensor::f32([2, 3], vec![1.0, 2.0, 3.0, 0.0, 0.0, 0.0])?)?;
//! plan.run()?;
//! let probs = plan.fetch(y)?;
//! assert!((probs.as_f32()?[5] - 1.0 / 3.0).abs() < 1e-6);
//! # Ok(()) }
//! ```

pub mod bench;
pub mod constraints;
pub mod device;
pub mod error;
pub mod graph;
pub mod io;
pub mod kernels;
pub mod layers;
pub mod metrics;
pub mod models;
pub mod qat;
pub mod quantizers;
pub mod runtime;
pub mod tensor;
pub mod text;
pub mod train;

pub use device::{Device, GpuContext, GpuOptions, Tensor, TuneMode, TuneRecord};
pub use error::{Error, Result};
pub use graph::{
    BinaryOp, ConvGeometry, ConvOptions, DataFormat, Distribution, Epilogue, Graph, Init, Op, PackMode, Padding, ReduceOp, UnaryOp, ValueId,
};
pub use runtime::{KernelTime, ParamStore, Plan, PlanMemory};
pub use tensor::{DType, HostTensor, Shape, TensorData};
/// The wgpu that [`GpuContext`] exposes, for your own calls on bitgrad's device.
pub use wgpu;

/// The README's examples, compiled as doctests so that they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
