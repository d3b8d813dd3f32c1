//! Any bytes as a .npy file: an error or a tensor, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bitgrad::io::npy::from_bytes("fuzz.npy", data);
});
