//! The Larq user guide's 1-bit model written with the Keras functional API, trained for one epoch
//! on Fashion-MNIST on the best device, with its summary and its test accuracy.
//!
//! Keras' `y = Layer(...)(x)` makes a layer and applies it at once; here the layers are made
//! first and applied inside the model's function, which runs each time the model is built
//! (for training and for evaluation), so that every build uses the same layers and weights.
//!
//! `cargo run --release --example functional_model [DATA_DIR]`

use bitgrad::prelude::*;

#[path = "support/mod.rs"]
mod support;

fn main() -> Result<()> {
    let flatten = Flatten::new();
    let dense1 = QuantDense::new(512).kernel_quantizer("ste_sign").kernel_constraint("weight_clip");
    let dense2 =
        QuantDense::new(10).input_quantizer("ste_sign").kernel_quantizer("ste_sign").kernel_constraint("weight_clip").activation("softmax");
    // x = tf.keras.Input(shape=(28, 28, 1)) ... model = tf.keras.Model(inputs=x, outputs=y)
    let model = Functional::new("model", &[("input_1", &[28, 28, 1])], move |net, x| {
        let y = net.apply(&flatten, x[0])?;
        let y = net.apply(&dense1, y)?;
        let y = net.apply(&dense2, y)?;
        Ok(vec![y])
    });
    println!("{}", model.summary()?);
    support::train_one_epoch(model)
}
