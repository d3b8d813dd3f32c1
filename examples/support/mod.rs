//! What the three model-style examples share: one epoch of training on Fashion-MNIST.

use bitgrad::prelude::*;
use bitgrad::train::data;

/// `compile`, one epoch of `fit` and `evaluate` on Fashion-MNIST, when the data is there.
pub fn train_one_epoch(model: impl Model + 'static) -> Result<()> {
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
