//! Quantization-aware training as TF Model Optimization's guide does it: a float CNN trained on
//! Fashion-MNIST, then `quantize_model` (8-bit weights and activations) and one epoch of
//! fine-tuning, and the same with 4-bit weights and 8-bit activations (`Scheme::n_bit(4, 8)`).
//! Prints the test accuracy of each.
//!
//! `cargo run --release --example qat_fashion_mnist [-- --epochs N] [--limit N] [--data DIR]`
//! (`--limit` trains on the first N training images; the test set is always whole).

use std::sync::Arc;

use bitgrad::layers::Mode;
use bitgrad::layers::{Activation, ActivationLayer, BatchNormalization, Flatten, Pooling, PoolingKind, QuantConv, QuantDense, QuantLayer};
use bitgrad::models::Sequential;
use bitgrad::qat::{quantize_annotate_model, quantize_apply, quantize_model, Scheme};
use bitgrad::train::optimizers::Adam;
use bitgrad::train::{data, FitOptions, Loss, Metric, Trainer};

/// The float CNN: two convolutions with BatchNormalization and ReLU, then two dense layers.
fn float_cnn() -> Sequential {
    Sequential::new("float_cnn", &[28, 28, 1])
        .add(QuantConv::new("conv2d", 16, &[3, 3]).use_bias(false))
        .add(BatchNormalization::new("batch_normalization"))
        .add(ActivationLayer::new("relu", Activation::Relu))
        .add(Pooling::new("max_pooling2d", PoolingKind::Max, &[2, 2]))
        .add(QuantConv::new("conv2d_1", 32, &[3, 3]).use_bias(false))
        .add(BatchNormalization::new("batch_normalization_1"))
        .add(ActivationLayer::new("relu_1", Activation::Relu))
        .add(Pooling::new("max_pooling2d_1", PoolingKind::Max, &[2, 2]))
        .add(Flatten::new("flatten"))
        .add(QuantDense::new("dense", 64).activation(Activation::Relu))
        .add(QuantDense::new("dense_1", 10))
        .add(ActivationLayer::new("softmax", Activation::Softmax))
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() -> bitgrad::Result<()> {
    let dir = arg("--data").unwrap_or_else(|| data::FASHION_MNIST_DIR.to_string());
    let epochs: usize = arg("--epochs").map_or(2, |e| e.parse().expect("--epochs takes a number"));
    let (train, test) = data::load_mnist_format(std::path::Path::new(&dir))?;
    let train = match arg("--limit") {
        Some(n) => train.take(n.parse().expect("--limit takes a number")),
        None => train,
    };
    let device = bitgrad::Device::best();
    println!("device: {}; {} training images, {} test images", device.describe(), train.len(), test.len());
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let opts = |epochs| FitOptions { epochs, batch_size: 64, verbose: true, shuffle_seed: Some(1), ..FitOptions::default() };

    let mut float = Trainer::compile(float_cnn(), loss, Arc::new(Adam::new(1e-3)), &[Metric::Accuracy], &device)?;
    float.fit(&train, None, &opts(epochs))?;
    let float_accuracy = float.evaluate(&test, 256)?["accuracy"];
    println!("float: test accuracy {:.2}% after {epochs} epochs", 100.0 * float_accuracy);

    let mut rows = vec![("float".to_string(), float_accuracy, None)];
    let fine_tune = |what: &str, model: bitgrad::qat::QuantizedModel, float: &Trainer| -> bitgrad::Result<(String, f64, Option<f64>)> {
        let mut q = Trainer::compile(model, loss, Arc::new(Adam::new(1e-4)), &[Metric::Accuracy], &device)?;
        // Start from the float model's weights and statistics (not its optimizer state); the
        // quantization ranges start from their initializers.
        for name in bitgrad::models::build(&float_cnn(), 1, Mode::Inference)?.weights().keys() {
            let t = float.params.get(name).expect("trained weights").download()?;
            q.params.insert(name.clone(), device.upload(&t)?);
        }
        let before = q.evaluate(&test, 256)?["accuracy"];
        q.fit(&train, None, &opts(1))?;
        let after = q.evaluate(&test, 256)?["accuracy"];
        println!("{what}: {:.2}% before fine-tuning, {:.2}% after one epoch", 100.0 * before, 100.0 * after);
        Ok((what.to_string(), after, Some(before)))
    };
    rows.push(fine_tune("8-bit weights and activations (quantize_model)", quantize_model(float_cnn())?, &float)?);
    let n_bit = quantize_apply(quantize_annotate_model(float_cnn()), Scheme::n_bit(4, 8))?;
    rows.push(fine_tune("4-bit weights, 8-bit activations (Scheme::n_bit(4, 8))", n_bit, &float)?);
    println!("\n| model | test accuracy | before fine-tuning |\n|---|---|---|");
    for (what, acc, before) in rows {
        println!("| {what} | {:.2}% | {} |", 100.0 * acc, before.map_or("-".to_string(), |b| format!("{:.2}%", 100.0 * b)));
    }
    Ok(())
}
