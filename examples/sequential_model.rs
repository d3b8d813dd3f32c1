//! The Larq user guide's 1-bit model written as a Keras `Sequential`, line for line as the guide
//! has it, trained for one epoch on Fashion-MNIST on the best device, with its summary and its
//! test accuracy. `functional_model.rs` and `subclassed_model.rs` are the same model in the
//! other two Keras styles.
//!
//! `cargo run --release --example sequential_model [DATA_DIR]` (default: the
//! `dataset-fashion-mnist` package's folder, `bitgrad::train::data::FASHION_MNIST_DIR`)

use bitgrad::prelude::*;
use bitgrad::train::data;

fn main() -> Result<()> {
    // Unlike Keras, a Sequential knows its input shape when it is built: here from the first layer.
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
    train_one_epoch(model)
}

/// `compile`, one epoch of `fit` and `evaluate` on Fashion-MNIST, when the data is there.
fn train_one_epoch(model: impl Model + 'static) -> Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| data::FASHION_MNIST_DIR.to_string());
    let (train, test) = match data::load_mnist_format(std::path::Path::new(&dir)) {
        Ok(sets) => sets,
        Err(e) => {
            eprintln!("not training: {e}");
            return Ok(());
        }
    };
    let mut trainer = model.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
    println!("training on {}", trainer.device().describe());
    trainer.fit(&train, None, &FitOptions { epochs: 1, batch_size: 64, verbose: 1, ..FitOptions::default() })?;
    let m = trainer.evaluate(&test, 256)?;
    println!("test accuracy {:.2}% (loss {:.4})", 100.0 * m["accuracy"], m["loss"]);
    Ok(())
}
