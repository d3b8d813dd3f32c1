//! bitgrad in the browser. [`Demo`] is what the page (`web/index.html`) drives: it trains the
//! Larq user guide's BNN on a Fashion-MNIST subset through WebGPU, classifies drawings with it,
//! and runs packed models made by `bitgrad export`. [`checks`] holds the kernel checks the
//! browser test compares with native values.
//!
//! Everything that waits for the GPU is async here: the browser completes GPU work only after
//! control returns to its event loop, so the bindings await bitgrad's `*_async` calls.

pub mod checks;
mod demo;

pub use demo::Demo;

use wasm_bindgen::prelude::*;

/// Routes panics and `log` records (wgpu's and bitgrad's warnings) to the browser console.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    let _ = console_log::init_with_level(log::Level::Warn);
}
