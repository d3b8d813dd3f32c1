//! The Larq user guide's 1-bit model written by subclassing (`class MyModel(tf.keras.Model)`): a
//! type holding its layers and implementing `Model`, whose `call` applies them. Trained for one
//! epoch on Fashion-MNIST on the best device, with its summary and its test accuracy.
//!
//! A Keras subclassed model learns its input shape when first called; a `Model` states it in
//! `inputs`.
//!
//! `cargo run --release --example subclassed_model [DATA_DIR]`

use bitgrad::prelude::*;

#[path = "support/mod.rs"]
mod support;
use bitgrad::ValueId;

struct MyModel {
    flatten: Flatten,
    dense1: QuantDense,
    dense2: QuantDense,
}

impl MyModel {
    /// `__init__`: the layers.
    fn new() -> Self {
        MyModel {
            flatten: Flatten::new(),
            dense1: QuantDense::new(512).kernel_quantizer("ste_sign").kernel_constraint("weight_clip"),
            dense2: QuantDense::new(10)
                .input_quantizer("ste_sign")
                .kernel_quantizer("ste_sign")
                .kernel_constraint("weight_clip")
                .activation("softmax"),
        }
    }
}

impl Model for MyModel {
    fn name(&self) -> &str {
        "my_model"
    }

    fn inputs(&self) -> Vec<(String, Vec<usize>)> {
        vec![("input_1".into(), vec![28, 28, 1])]
    }

    /// `def call(self, inputs)`.
    fn call(&self, net: &mut Network, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
        let x = net.apply(&self.flatten, inputs[0])?;
        let x = net.apply(&self.dense1, x)?;
        Ok(vec![net.apply(&self.dense2, x)?])
    }
}

fn main() -> Result<()> {
    let model = MyModel::new();
    println!("{}", model.summary()?);
    support::train_one_epoch(model)
}
