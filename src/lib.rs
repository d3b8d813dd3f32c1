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
    BinaryOp, ConvGeometry, ConvOptions, DataFormat, Distribution, Encoding, Epilogue, Graph, Init, Op, PackMode, Padding, ReduceOp,
    UnaryOp, ValueId,
};
pub use runtime::{KernelTime, ParamStore, Plan, PlanMemory};
pub use tensor::{DType, HostTensor, Shape, TensorData};
/// The wgpu that [`GpuContext`] exposes, for your own calls on bitgrad's device.
pub use wgpu;

/// What a Larq program uses, in one import: `use bitgrad::prelude::*;` brings the layers under
/// Larq's and Keras' class names, their builder traits, models, quantizers, constraints,
/// optimizers, schedules, losses, metrics, callbacks, the trainer and the devices.
pub mod prelude {
    pub use crate::constraints::WeightClip;
    pub use crate::layers::{
        reset_names, Activation, ActivationLayer, Add, Arg, AveragePooling1D, AveragePooling2D, AveragePooling3D, BatchNormalization,
        Concatenate, Conv1D, Conv2D, Conv2DTranspose, Conv3D, Dense, DepthwiseConv2D, DepthwiseOptions, Dropout, Flatten,
        GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D, GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D,
        GlobalPooling, Initializer, Layer, MaxPooling1D, MaxPooling2D, MaxPooling3D, Merge, MergeKind, Mode, Multiply, PReLU, Pooling,
        PoolingKind, QuantConv, QuantConv1D, QuantConv1DTranspose, QuantConv2D, QuantConv2DTranspose, QuantConv3D, QuantConv3DTranspose,
        QuantConvTranspose, QuantDense, QuantDepthwiseConv, QuantDepthwiseConv2D, QuantLayer, QuantLocallyConnected,
        QuantLocallyConnected1D, QuantLocallyConnected2D, QuantSeparableConv, QuantSeparableConv1D, QuantSeparableConv2D, Regularizer,
        Reshape, SeparableConv2D, ZeroPadding,
    };
    pub use crate::models::{Functional, Input, Model, Network, Sequential, Summary};
    pub use crate::qat::{quantize_annotate_layer, quantize_annotate_model, quantize_apply, quantize_model};
    pub use crate::quantizers::Quantizer;
    pub use crate::train::metrics::metrics_scope;
    pub use crate::train::optimizers::{Adam, Bop, CaseOptimizer, Optimizer, Sgd};
    pub use crate::train::{
        Callback, Compile, Control, Dataset, EarlyStopping, FitOptions, History, Labels, Loss, Metric, ModelCheckpoint, Samples, Schedule,
        TensorBoard, Trainer,
    };
    pub use crate::{Device, Error, Result};
}

/// The README's examples, compiled as doctests so that they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
