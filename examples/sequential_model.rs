//! The Larq user guide's 1-bit model written as a Keras `Sequential`, line for line as the guide
//! has it, trained for one epoch on Fashion-MNIST on the best device, with its summary and its
//! test accuracy. `functional_model.rs` and `subclassed_model.rs` are the same model in the
//! other two Keras styles.
//!
//! `cargo run --release --example sequential_model [DATA_DIR]` (default: the
//! `dataset-fashion-mnist` package's folder, `bitgrad::train::data::FASHION_MNIST_DIR`)

use bitgrad::prelude::*;

#[path = "support/mod.rs"]
mod support;

fn main() -> Result<()> {
    // The summary needs the input shape now (fit alone would take it from the data), so the first
    // layer gives it, as in Keras' `Flatten(input_shape=(28, 28, 1))`.
    let model = Sequential::new()
        .add(Flatten::new().input_shape(&[28, 28, 1]))
        .add(QuantDense::new(512).kernel_quantizer("ste_sign").kernel_constraint("weight_clip"))
        .add(
            QuantDense::new(10)
                .input_quantizer("ste_sign")
                .kernel_quantizer("ste_sign")
                .kernel_constraint("weight_clip")
                .activation("softmax"),
        );
    println!("{}", model.summary()?);
    support::train_one_epoch(model)
}
