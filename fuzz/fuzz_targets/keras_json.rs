//! Any bytes given as a Keras model JSON: an error or a model, never a panic; a model that
//! parses must also build or fail cleanly.
#![no_main]

use bitgrad::layers::Mode;
use bitgrad::models::Model;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(model) = bitgrad::io::keras::model_from_json("fuzz.json", text) {
        let _ = model.build(1, Mode::Inference);
    }
});
