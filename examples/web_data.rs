//! Writes the browser demo's data: the first images of Fashion-MNIST's training and test sets as
//! IDX files (gzip), named like the originals so the page and `load_mnist_format` read them alike.
//!
//! `cargo run --example web_data [-- --train N] [--test N] [--data DIR] [--output DIR]`
//! (defaults: 4096 training and 1024 test images from Debian's `dataset-fashion-mnist`, into
//! `web/data`).

use std::io::Write;
use std::path::PathBuf;

use bitgrad::train::data::{Idx, FASHION_MNIST_DIR};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut train, mut test) = (4096, 1024);
    let (mut data, mut output) = (PathBuf::from(FASHION_MNIST_DIR), PathBuf::from("web/data"));
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--train" => train = value()?.parse()?,
            "--test" => test = value()?.parse()?,
            "--data" => data = value()?.into(),
            "--output" => output = value()?.into(),
            other => return Err(format!("unknown argument `{other}` (--train N, --test N, --data DIR, --output DIR)").into()),
        }
    }
    std::fs::create_dir_all(&output)?;
    for (stem, n) in [
        ("train-images-idx3-ubyte", train),
        ("train-labels-idx1-ubyte", train),
        ("t10k-images-idx3-ubyte", test),
        ("t10k-labels-idx1-ubyte", test),
    ] {
        let source = data.join(format!("{stem}.gz"));
        let idx = Idx::read(&source).map_err(|e| format!("{e} (install Debian's dataset-fashion-mnist or pass --data DIR)"))?.first(n);
        let path = output.join(format!("{stem}.gz"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&idx.to_bytes())?;
        let bytes = gz.finish()?;
        std::fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("{}: {:?}, {} bytes", path.display(), idx.dims, bytes.len());
    }
    Ok(())
}
