//! The Larq user guide's BNN trained on Fashion-MNIST with the guide's recipe (Adam, batch 64,
//! 5 epochs), as `bitgrad train --model mlp` runs it, written against the library.
//!
//! `cargo run --release --example larq_guide_mlp [DATA_DIR]`

use std::sync::Arc;

use bitgrad::models::zoo;
use bitgrad::train::optimizers::Adam;
use bitgrad::train::{data, FitOptions, Loss, Metric, Trainer};

fn main() -> bitgrad::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| data::FASHION_MNIST_DIR.to_string());
    let (train, test) = data::load_mnist_format(std::path::Path::new(&dir))?;
    let device = bitgrad::Device::try_best()?;
    let model = zoo::larq_guide_mlp();
    println!("{}", bitgrad::models::build(&model, 1, bitgrad::layers::Mode::Inference)?.summary().table());
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let mut trainer = Trainer::compile(model, loss, Arc::new(Adam::new(1e-3)), &[Metric::Accuracy], &device)?;
    let opts = FitOptions { epochs: 5, batch_size: 64, verbose: 1, ..FitOptions::default() };
    let history = trainer.fit(&train, None, &opts)?;
    let m = trainer.evaluate(&test, 256)?;
    let rate = history.mean_images_per_second();
    println!("test accuracy {:.2}%, {rate:.0} images/s training on {}", 100.0 * m["accuracy"], device.describe());
    Ok(())
}
