//! Quantization-aware training as TF Model Optimization's guide does it: a float CNN trained on
//! Fashion-MNIST, then `quantize_model` (8-bit weights and activations) and one epoch of
//! fine-tuning, and the same with 4-bit weights and 8-bit activations (`Scheme::n_bit(4, 8)`).
//! Prints the test accuracy of each, then writes each quantized model's integer export and
//! reports its size and the accuracy of the model read back from it.
//!
//! `cargo run --release --example qat_fashion_mnist [-- --epochs N] [--limit N] [--data DIR]`
//! (`--limit` trains on the first N training images; the test set is always whole).

use std::sync::Arc;

use bitgrad::io::safetensors::TensorFile;
use bitgrad::layers::Mode;
use bitgrad::layers::{Activation, ActivationLayer, BatchNormalization, Flatten, Pooling, PoolingKind, QuantConv, QuantDense, QuantLayer};
use bitgrad::models::Sequential;
use bitgrad::qat::export::{export, QuantizedExport};
use bitgrad::qat::{quantize_annotate_model, quantize_apply, quantize_model, Scheme};
use bitgrad::train::optimizers::Adam;
use bitgrad::train::{data, FitOptions, Loss, Metric, Trainer};

/// The float CNN: two convolutions with BatchNormalization and ReLU, then two dense layers.
fn float_cnn() -> Sequential {
    Sequential::new()
        .named("float_cnn")
        .input_shape(&[28, 28, 1])
        .add(QuantConv::new(16, &[3, 3]).named("conv2d").use_bias(false))
        .add(BatchNormalization::new().named("batch_normalization"))
        .add(ActivationLayer::new(Activation::Relu).named("relu"))
        .add(Pooling::new(PoolingKind::Max, &[2, 2]).named("max_pooling2d"))
        .add(QuantConv::new(32, &[3, 3]).named("conv2d_1").use_bias(false))
        .add(BatchNormalization::new().named("batch_normalization_1"))
        .add(ActivationLayer::new(Activation::Relu).named("relu_1"))
        .add(Pooling::new(PoolingKind::Max, &[2, 2]).named("max_pooling2d_1"))
        .add(Flatten::new().named("flatten"))
        .add(QuantDense::new(64).named("dense").activation(Activation::Relu))
        .add(QuantDense::new(10).named("dense_1"))
        .add(ActivationLayer::new(Activation::Softmax).named("softmax"))
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
    let device = bitgrad::Device::try_best()?;
    println!("device: {}; {} training images, {} test images", device.describe(), train.len(), test.len());
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let opts = |epochs| FitOptions { epochs, batch_size: 64, verbose: 1, shuffle_seed: Some(1), ..FitOptions::default() };

    let mut float = Trainer::compile(float_cnn(), loss, Arc::new(Adam::new(1e-3)), &[Metric::Accuracy], &device)?;
    float.fit(&train, None, &opts(epochs))?;
    let float_accuracy = float.evaluate(&test, 256)?["accuracy"];
    println!("float: test accuracy {:.2}% after {epochs} epochs", 100.0 * float_accuracy);

    let mut rows = vec![("float".to_string(), float_accuracy, None)];
    type Row = (String, f64, Option<f64>);
    let fine_tune = |what: &str, model: bitgrad::qat::QuantizedModel, float: &Trainer| -> bitgrad::Result<(Trainer, Row)> {
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
        Ok((q, (what.to_string(), after, Some(before))))
    };
    let (q8, row) = fine_tune("8-bit weights and activations (quantize_model)", quantize_model(float_cnn())?, &float)?;
    rows.push(row);
    let n_bit = quantize_apply(quantize_annotate_model(float_cnn()), Scheme::n_bit(4, 8))?;
    let (q4, row) = fine_tune("4-bit weights, 8-bit activations (Scheme::n_bit(4, 8))", n_bit, &float)?;
    rows.push(row);
    for (bits, mut q, model) in
        [(8, q8, quantize_model(float_cnn())?), (4, q4, quantize_apply(quantize_annotate_model(float_cnn()), Scheme::n_bit(4, 8))?)]
    {
        // The integer export of the fine-tuned weights, and its accuracy read back.
        let mut weights = TensorFile::default();
        let built = bitgrad::models::build(&model, 1, Mode::Inference)?;
        for name in built.all_weights().keys() {
            weights.tensors.insert(name.clone(), q.params.get(name).expect("trained").download()?);
        }
        let (file, report) = export(&model, &weights, "the fine-tuned weights")?;
        let (coded_f32, coded): (usize, usize) =
            report.coded.iter().fold((0, 0), |(a, b), w| (a + w.float_bytes, b + w.code_bytes + w.range_bytes));
        let bytes = file.to_bytes()?.len();
        let back = QuantizedExport::from_file("export", TensorFile::from_bytes("export", &file.to_bytes()?)?)?;
        let mut check = Trainer::compile(back.model, loss, Arc::new(Adam::new(1e-4)), &[Metric::Accuracy], &device)?;
        for (name, t) in &back.weights.tensors {
            check.params.insert(name.clone(), device.upload(t)?);
        }
        let from_export = check.evaluate(&test, 256)?["accuracy"];
        let trained = q.evaluate(&test, 256)?["accuracy"];
        println!(
            "{bits}-bit export: kernels {coded_f32} B as f32 -> {coded} B as codes with scales and zero points ({:.1}x); file {bytes} B, all tensors as f32 {} B; test accuracy from the export {:.2}% (trained model {:.2}%)",
            coded_f32 as f64 / coded as f64,
            report.float_bytes,
            100.0 * from_export,
            100.0 * trained
        );
    }
    println!("\n| model | test accuracy | before fine-tuning |\n|---|---|---|");
    for (what, acc, before) in rows {
        println!("| {what} | {:.2}% | {} |", 100.0 * acc, before.map_or("-".to_string(), |b| format!("{:.2}%", 100.0 * b)));
    }
    Ok(())
}
