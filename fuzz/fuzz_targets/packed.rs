//! Any bytes as a packed export: an error or a model whose tensors match it, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = bitgrad::io::safetensors::TensorFile::from_bytes("fuzz.safetensors", data) {
        let _ = bitgrad::io::packed::PackedModel::from_file("fuzz.safetensors", file);
    }
});
