//! Quantization-aware training in the manner of TensorFlow Model Optimization: fake-quantized
//! weights and activations with TensorFlow's exact kernels, trained with straight-through
//! gradients.

pub mod quantizers;

pub use quantizers::{AllValuesQuantizer, LastValueQuantizer, MovingAverageQuantizer, Quantizer, Settings};
