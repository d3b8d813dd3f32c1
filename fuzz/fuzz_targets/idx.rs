//! Any bytes as an IDX file (raw or gzip): an error or an array, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bitgrad::train::data::Idx::parse(data, "fuzz.idx");
});
