//! `shaders/custom_quantize.wgsl`: the template that user-defined quantizers are spliced into,
//! and the registry of spliced shader sources.

use std::sync::Mutex;

use bytemuck::{Pod, Zeroable};

use super::{grid_1d, params_layout, BufferView, Dispatch, Kernel, Shader, WG};

/// The template (the identity quantizer as written).
pub static SHADER: Shader = Shader::new("custom_quantize", include_str!("../../shaders/custom_quantize.wgsl"), params_layout, false);
/// The template's entry points; a registered shader has the same ones.
pub const KERNELS: &[Kernel] =
    &[Kernel { shader: "custom_quantize", entry: "quantize" }, Kernel { shader: "custom_quantize", entry: "quantize_grad" }];

/// Where the user's functions go.
pub const BEGIN_MARKER: &str = "// BEGIN USER FUNCTIONS";
/// Where they end.
pub const END_MARKER: &str = "// END USER FUNCTIONS";

/// Mirror of the WGSL `Params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Elements.
    pub n: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
}
params_layout!(Params { n, _pad0, _pad1, _pad2 });

/// Spliced sources by shader name. Entries live for the whole process: a pipeline may be
/// created from them at any time, and there is one per custom quantizer definition.
static SOURCES: Mutex<Vec<(&'static str, &'static str)>> = Mutex::new(Vec::new());

/// The module of the template with the user's functions in place of the defaults, assembled
/// (see [`super::assemble`]) as every family is.
pub fn splice(user_functions: &str) -> String {
    let t = SHADER.file;
    let start = t.find(BEGIN_MARKER).expect("template has the begin marker") + BEGIN_MARKER.len();
    let end = t.find(END_MARKER).expect("template has the end marker");
    super::assemble(&format!("{}\n{}\n{}", &t[..start], user_functions.trim_end(), &t[end..]))
}

/// Registers a spliced source and returns its shader name.
pub fn register(name: &str, source: String) -> &'static str {
    let mut sources = SOURCES.lock().unwrap_or_else(|e| e.into_inner());
    let shader: &'static str = Box::leak(format!("custom_quantize:{}:{}", sources.len(), name).into_boxed_str());
    sources.push((shader, Box::leak(source.into_boxed_str())));
    shader
}

/// The source registered under `shader`.
pub fn source(shader: &str) -> Option<&'static str> {
    SOURCES.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(n, _)| *n == shader).map(|(_, s)| *s)
}

/// `out = forward(x)` with the registered shader.
pub fn quantize(shader: &'static str, n: usize, x: &BufferView, out: &BufferView) -> Dispatch {
    let p = Params { n: n as u32, ..Default::default() };
    Dispatch::new(Kernel { shader, entry: "quantize" }, &p, &[(1, x), (3, out)], grid_1d(n, WG))
}

/// `out = gradient(x, dy)` with the registered shader.
pub fn quantize_grad(shader: &'static str, n: usize, x: &BufferView, dy: &BufferView, out: &BufferView) -> Dispatch {
    let p = Params { n: n as u32, ..Default::default() };
    Dispatch::new(Kernel { shader, entry: "quantize_grad" }, &p, &[(1, x), (2, dy), (3, out)], grid_1d(n, WG))
}
