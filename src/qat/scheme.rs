//! Quantization schemes: the config each built-in layer gets (TF-MOT's registry of its default
//! 8-bit scheme, and its n-bit scheme with separate weight and activation widths).

use std::sync::Arc;

use super::{
    AllValuesQuantizer, LastValueQuantizer, LayerQuantizeConfig, MovingAverageQuantizer, NoOpQuantizeConfig, QuantizeConfig, Quantizer,
};
use crate::error::{Error, Result};
use crate::layers::{
    Activation, ActivationLayer, BatchNormalization, Dropout, Flatten, GlobalPooling, Layer, Pooling, PoolingKind, QuantArgs, QuantConv,
    QuantConvTranspose, QuantDense, QuantDepthwiseConv, QuantSeparableConv, Reshape, ZeroPadding,
};

/// Bit widths of a scheme: TF-MOT's default 8-bit scheme is `Scheme::default_8bit()`, its n-bit
/// scheme `Scheme::n_bit(w, a)`.
///
/// Per layer: Dense and transposed convolutions quantize the kernel per tensor, Conv1D/2D/3D,
/// depthwise and separable convolutions per output channel (`LastValueQuantizer`, symmetric,
/// narrow range), and their activation (`MovingAverageQuantizer`, asymmetric) unless it is
/// softmax; BatchNormalization, ReLU-type Activation layers, average pooling and merges quantize
/// their output; max pooling, Flatten, Reshape, Dropout and ZeroPadding pass values through; a
/// layer with Larq quantizers keeps them and is not fake-quantized. Model inputs get an
/// `AllValuesQuantizer`. Any other layer needs a config (see [`super::quantize_annotate_layer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scheme {
    /// Bits of weights.
    pub weight_bits: u32,
    /// Bits of activations, outputs and inputs.
    pub activation_bits: u32,
    /// Fold a BatchNormalization that follows a Dense or Conv layer into it while training
    /// (see [`Scheme::with_batch_norm_folding`]).
    pub fold_batch_norm: bool,
}

impl Default for Scheme {
    fn default() -> Self {
        Scheme::default_8bit()
    }
}

impl Scheme {
    /// TF-MOT's default scheme: 8-bit weights and activations.
    pub fn default_8bit() -> Self {
        Scheme { weight_bits: 8, activation_bits: 8, fold_batch_norm: false }
    }

    /// TF-MOT's n-bit scheme.
    pub fn n_bit(weight_bits: u32, activation_bits: u32) -> Self {
        Scheme { weight_bits, activation_bits, fold_batch_norm: false }
    }

    /// The scheme with BatchNormalization folded into the Dense or Conv layer before it (the
    /// layer's only reader, over its channel axis): the layer computes with the fake-quantized
    /// kernel `kernel * gamma / sqrt(moving_var + eps)` and adds `(bias - moving_mean) * that +
    /// beta`, so training sees the quantized kernel that inference deploys. The statistics are
    /// frozen (the moving ones, not updated): fold when fine-tuning a trained float model.
    /// TF-MOT removed its folding; this is the frozen-statistics variant of it.
    pub fn with_batch_norm_folding(mut self) -> Self {
        self.fold_batch_norm = true;
        self
    }

    fn weights(&self, per_axis: bool) -> Arc<dyn Quantizer> {
        Arc::new(LastValueQuantizer::new(self.weight_bits, per_axis, true, true))
    }

    fn activations(&self) -> Arc<dyn Quantizer> {
        Arc::new(MovingAverageQuantizer::new(self.activation_bits, false, false, false))
    }

    /// The quantizer of the model's inputs.
    pub fn input_quantizer(&self) -> Arc<dyn Quantizer> {
        Arc::new(AllValuesQuantizer::new(self.activation_bits, false, false, false))
    }

    /// The config of merge layers (Add, Multiply, Concatenate): their output, once.
    pub fn merge_config(&self) -> Arc<dyn QuantizeConfig> {
        Arc::new(LayerQuantizeConfig { output: Some(self.activations()), ..Default::default() })
    }

    /// The config of a built-in layer; an error naming the layer for one the scheme does not
    /// know.
    pub fn config_for(&self, layer: &dyn Layer) -> Result<Arc<dyn QuantizeConfig>> {
        let unsupported = || {
            Error::invalid(
                "quantize",
                "layer",
                format!(
                    "layer `{}` ({}) has no quantization in this scheme: annotate it with quantize_annotate_layer(layer, Some(config)) giving a QuantizeConfig, or Some(NoOpQuantizeConfig) to leave it in float",
                    layer.name(),
                    layer.class()
                ),
            )
        };
        let any = layer.as_any().ok_or_else(unsupported)?;
        let kernel = |args: &QuantArgs, weight: &str, per_axis: bool| -> Arc<dyn QuantizeConfig> {
            if args.input_quantizer.is_some() || args.kernel_quantizer.is_some() {
                return Arc::new(NoOpQuantizeConfig);
            }
            self.with_kernels(&[(weight, per_axis)], &args.activation)
        };
        let output =
            || -> Arc<dyn QuantizeConfig> { Arc::new(LayerQuantizeConfig { output: Some(self.activations()), ..Default::default() }) };
        if let Some(l) = any.downcast_ref::<QuantDense>() {
            Ok(kernel(&l.args, "kernel", false))
        } else if let Some(l) = any.downcast_ref::<QuantConv>() {
            Ok(kernel(&l.args, "kernel", true))
        } else if let Some(l) = any.downcast_ref::<QuantConvTranspose>() {
            Ok(kernel(&l.args, "kernel", false))
        } else if let Some(l) = any.downcast_ref::<QuantDepthwiseConv>() {
            let larq = l.opts.input_quantizer.is_some() || l.opts.depthwise_quantizer.is_some();
            Ok(if larq { Arc::new(NoOpQuantizeConfig) } else { self.with_kernels(&[("depthwise_kernel", true)], &l.opts.activation) })
        } else if let Some(l) = any.downcast_ref::<QuantSeparableConv>() {
            let larq = l.opts.input_quantizer.is_some() || l.opts.depthwise_quantizer.is_some() || l.pointwise_quantizer.is_some();
            Ok(match larq {
                true => Arc::new(NoOpQuantizeConfig),
                false => self.with_kernels(&[("depthwise_kernel", true), ("pointwise_kernel", true)], &l.opts.activation),
            })
        } else if any.is::<BatchNormalization>() {
            Ok(output())
        } else if let Some(l) = any.downcast_ref::<ActivationLayer>() {
            Ok(if l.activation == Activation::Softmax { Arc::new(NoOpQuantizeConfig) } else { output() })
        } else if let Some(l) = any.downcast_ref::<Pooling>() {
            Ok(if l.kind == PoolingKind::Average { output() } else { Arc::new(NoOpQuantizeConfig) })
        } else if let Some(l) = any.downcast_ref::<GlobalPooling>() {
            Ok(if l.kind == PoolingKind::Average { output() } else { Arc::new(NoOpQuantizeConfig) })
        } else if any.is::<Flatten>() || any.is::<Reshape>() || any.is::<Dropout>() || any.is::<ZeroPadding>() {
            Ok(Arc::new(NoOpQuantizeConfig))
        } else {
            Err(unsupported())
        }
    }

    /// Weights quantized per tensor or per output channel, and the activation unless softmax.
    fn with_kernels(&self, kernels: &[(&str, bool)], activation: &Activation) -> Arc<dyn QuantizeConfig> {
        Arc::new(LayerQuantizeConfig {
            weights: kernels.iter().map(|&(w, per_axis)| (w.to_string(), self.weights(per_axis))).collect(),
            activation: (*activation != Activation::Softmax).then(|| self.activations()),
            output: None,
        })
    }
}
