//! The models of the main job: the Larq user guide's MLP and Larq's MNIST tutorial CNN, as
//! Larq defines them, and the improved variants of `bitgrad train --recipe better`.

use super::Sequential;
use crate::constraints::WeightClip;
use crate::layers::{Activation, ActivationLayer, BatchNormalization, Flatten, Pooling, PoolingKind, QuantConv, QuantDense, QuantLayer};
use crate::quantizers::Quantizer;

fn ste() -> Quantizer {
    Quantizer::SteSign { clip_value: Some(1.0) }
}

/// A binarized dense layer (SteSign input and kernel, weight_clip), no bias.
fn binary_dense(name: &str, units: usize) -> QuantDense {
    QuantDense::new(units)
        .named(name)
        .input_quantizer(ste())
        .kernel_quantizer(ste())
        .kernel_constraint(WeightClip::default())
        .use_bias(false)
}

/// A binarized 3x3 convolution (SteSign input and kernel, weight_clip), no bias.
fn binary_conv(name: &str, filters: usize) -> QuantConv {
    QuantConv::new(filters, &[3, 3])
        .named(name)
        .input_quantizer(ste())
        .kernel_quantizer(ste())
        .kernel_constraint(WeightClip::default())
        .use_bias(false)
}

fn bn(name: &str) -> BatchNormalization {
    BatchNormalization { scale: false, ..BatchNormalization::new().named(name) }
}

/// The Larq user guide's model: Flatten, QuantDense(512, SteSign kernel, weight_clip),
/// QuantDense(10, SteSign input and kernel, weight_clip, softmax).
pub fn larq_guide_mlp() -> Sequential {
    Sequential::new()
        .named("sequential")
        .input_shape(&[28, 28, 1])
        .add(Flatten::new().named("flatten"))
        .add(QuantDense::new(512).named("quant_dense").kernel_quantizer(ste()).kernel_constraint(WeightClip::default()))
        .add(
            QuantDense::new(10)
                .named("quant_dense_1")
                .input_quantizer(ste())
                .kernel_quantizer(ste())
                .kernel_constraint(WeightClip::default())
                .activation(Activation::Softmax),
        )
}

/// The guide's MLP with BatchNormalization after the first layer, so the binarized input of
/// the second layer is centred.
pub fn better_mlp() -> Sequential {
    Sequential::new()
        .named("sequential")
        .input_shape(&[28, 28, 1])
        .add(Flatten::new().named("flatten"))
        .add(QuantDense::new(512).named("quant_dense").kernel_quantizer(ste()).kernel_constraint(WeightClip::default()).use_bias(false))
        .add(bn("batch_normalization"))
        .add(binary_dense("quant_dense_1", 10))
        .add(bn("batch_normalization_1"))
        .add(ActivationLayer::new(Activation::Softmax).named("activation"))
}

/// Larq's MNIST tutorial BNN: QuantConv2D 32 (float input), MaxPool, BN(scale=False), binary
/// QuantConv2D 64, MaxPool, BN, binary QuantConv2D 64, BN, Flatten, binary QuantDense 64, BN,
/// binary QuantDense 10, BN, softmax.
pub fn larq_mnist_cnn() -> Sequential {
    Sequential::new()
        .named("sequential")
        .input_shape(&[28, 28, 1])
        .add(
            QuantConv::new(32, &[3, 3])
                .named("quant_conv2d")
                .kernel_quantizer(ste())
                .kernel_constraint(WeightClip::default())
                .use_bias(false),
        )
        .add(Pooling::new(PoolingKind::Max, &[2, 2]).named("max_pooling2d"))
        .add(bn("batch_normalization"))
        .add(binary_conv("quant_conv2d_1", 64))
        .add(Pooling::new(PoolingKind::Max, &[2, 2]).named("max_pooling2d_1"))
        .add(bn("batch_normalization_1"))
        .add(binary_conv("quant_conv2d_2", 64))
        .add(bn("batch_normalization_2"))
        .add(Flatten::new().named("flatten"))
        .add(binary_dense("quant_dense", 64))
        .add(bn("batch_normalization_3"))
        .add(binary_dense("quant_dense_1", 10))
        .add(bn("batch_normalization_4"))
        .add(ActivationLayer::new(Activation::Softmax).named("activation"))
}
