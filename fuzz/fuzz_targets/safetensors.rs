//! Any bytes as a safetensors file: an error or tensors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bitgrad::io::safetensors::TensorFile::from_bytes("fuzz.safetensors", data);
});
