//! `shaders/custom_quantize.wgsl`: the template that user-defined quantizers are spliced into,
//! and the assembly of a user's module from it.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use super::{grid_1d, params_layout, shader, BufferView, CustomShader, Dispatch, Kernel, Shader, ShaderRef, WG};

/// The template (the identity quantizer as written).
pub const SHADER: Shader = shader!("custom_quantize", "../../shaders/custom_quantize.wgsl", params_layout, false);
/// The template's entry points; every spliced module has the same ones.
pub const KERNELS: &[Kernel] = &[Kernel::new(&SHADER, "quantize"), Kernel::new(&SHADER, "quantize_grad")];

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

/// The template's module with the user's functions in place of the defaults, assembled (see
/// [`super::assemble`]) as every family is.
pub fn splice(user_functions: &str) -> String {
    let t = SHADER.file;
    let start = t.find(BEGIN_MARKER).expect("template has the begin marker") + BEGIN_MARKER.len();
    let end = t.find(END_MARKER).expect("template has the end marker");
    super::assemble(&format!("{}\n{}\n{}", &t[..start], user_functions.trim_end(), &t[end..]))
}

/// `out = forward(x)` with the quantizer's module.
pub fn quantize(shader: &Arc<CustomShader>, n: usize, x: &BufferView, out: &BufferView) -> Dispatch {
    let p = Params { n: n as u32, ..Default::default() };
    Dispatch::new(Kernel { shader: ShaderRef::Custom(shader.clone()), entry: "quantize" }, &p, &[(1, x), (3, out)], grid_1d(n, WG))
}

/// `out = gradient(x, dy)` with the quantizer's module.
pub fn quantize_grad(shader: &Arc<CustomShader>, n: usize, x: &BufferView, dy: &BufferView, out: &BufferView) -> Dispatch {
    let p = Params { n: n as u32, ..Default::default() };
    let kernel = Kernel { shader: ShaderRef::Custom(shader.clone()), entry: "quantize_grad" };
    Dispatch::new(kernel, &p, &[(1, x), (2, dy), (3, out)], grid_1d(n, WG))
}
