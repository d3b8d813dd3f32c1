//! One module per WGSL kernel family: the `Pod` mirror of the shader's `Params` uniform and
//! helpers that turn op arguments into a [`Dispatch`]. Kernels know nothing about graphs or
//! devices; the GPU backend chooses them and the plan creates their pipelines and bind groups.

use std::sync::Arc;

pub mod bitpack;
pub mod custom_quantize;
pub mod elementwise;
pub mod fake_quant;
pub mod gather;
pub mod gemm;
pub mod im2col;
pub mod layout;
pub mod quantize;
pub mod random;
pub mod reduce;
pub mod softmax;
pub mod xnor_gemm;

/// A WGSL source file holding one kernel family.
#[derive(Debug)]
pub struct Shader {
    /// File stem under `shaders/`.
    pub name: &'static str,
    /// The WGSL text.
    pub source: &'static str,
    /// Size and field offsets of the Rust mirror of its `Params` struct.
    pub params_layout: fn() -> ParamsLayout,
    /// True when the shader uses subgroup operations, so that only adapters with the SUBGROUP
    /// feature may compile it.
    pub subgroups: bool,
}

/// Size of a params struct and the byte offset of each named field.
pub type ParamsLayout = (usize, Vec<(&'static str, usize)>);

/// Every kernel family, for validation and pipeline warm-up.
pub const ALL_SHADERS: &[&Shader] = &[
    &elementwise::SHADER,
    &reduce::SHADER,
    &gemm::SHADER,
    &layout::SHADER,
    &gather::SHADER,
    &softmax::SHADER,
    &random::SHADER,
    &bitpack::SHADER,
    &xnor_gemm::SHADER,
    &im2col::SHADER,
    &quantize::SHADER,
    &fake_quant::SHADER,
    &custom_quantize::SHADER,
    &xnor_gemm::GEMV_SHADER,
    &xnor_gemm::GEMV_SUBGROUP_SHADER,
];

/// One compute entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kernel {
    /// The family's shader.
    pub shader: &'static str,
    /// The entry point name.
    pub entry: &'static str,
}

impl Kernel {
    /// The WGSL source of this kernel's family.
    pub fn source(&self) -> &'static str {
        ALL_SHADERS
            .iter()
            .find(|s| s.name == self.shader)
            .map(|s| s.source)
            .or_else(|| custom_quantize::source(self.shader))
            .expect("every kernel names a listed or registered shader")
    }
}

/// A whole buffer bound to one binding. Every value owns its buffer for its lifetime (see the
/// planner), so bindings never need offsets.
#[derive(Clone, Debug)]
pub struct BufferView {
    /// The buffer.
    pub buffer: Arc<wgpu::Buffer>,
    /// Bytes in use (may be less than the pooled buffer's size).
    pub size: u64,
}

/// A recorded compute dispatch, before pipelines and bind groups exist.
#[derive(Clone, Debug)]
pub struct Dispatch {
    /// Entry point to run.
    pub kernel: Kernel,
    /// Bytes of the `Params` uniform (binding 0).
    pub params: Vec<u8>,
    /// Storage bindings other than the uniform.
    pub bindings: Vec<(u32, BufferView)>,
    /// Workgroup counts.
    pub workgroups: [u32; 3],
}

impl Dispatch {
    /// A dispatch of `kernel` with `params` in binding 0 and `bindings` after it.
    pub fn new<P: bytemuck::Pod>(kernel: Kernel, params: &P, bindings: &[(u32, &BufferView)], workgroups: [u32; 3]) -> Self {
        Dispatch {
            kernel,
            params: bytemuck::bytes_of(params).to_vec(),
            bindings: bindings.iter().map(|(b, v)| (*b, (*v).clone())).collect(),
            workgroups,
        }
    }
}

/// One unit of recorded GPU work.
#[derive(Clone, Debug)]
pub enum Step {
    /// A compute dispatch.
    Dispatch(Dispatch),
    /// A whole-value buffer copy (reshape, assign). Source and destination are always different
    /// buffers: the planner never gives two simultaneously live values the same buffer.
    Copy {
        /// Source.
        src: BufferView,
        /// Destination.
        dst: BufferView,
    },
}

/// What the adapter lets a recorder choose.
#[derive(Clone, Copy, Debug, Default)]
pub struct Caps {
    /// Subgroup kernel variants may be used.
    pub subgroups: bool,
}

/// Most workgroups per grid dimension that every WebGPU adapter accepts.
pub const MAX_GROUPS_PER_DIM: u32 = 65535;

/// Workgroup counts covering `items` work items in groups of `per_group`, folding into y past
/// [`MAX_GROUPS_PER_DIM`]. Shaders rebuild the flat index as `gid.x + gid.y * nwg.x * WG`.
pub fn grid_1d(items: usize, per_group: usize) -> [u32; 3] {
    let groups = items.div_ceil(per_group).max(1);
    let x = groups.min(MAX_GROUPS_PER_DIM as usize);
    [x as u32, groups.div_ceil(x) as u32, 1]
}

/// Up to eight dimensions packed as the `array<vec4<u32>, 2>` shaders use for shapes and
/// strides.
pub fn dims8(v: &[usize]) -> [[u32; 4]; 2] {
    assert!(v.len() <= 8, "shapes are validated to rank <= 8");
    let mut out = [[0u32; 4]; 2];
    for (i, &d) in v.iter().enumerate() {
        out[i / 4][i % 4] = d as u32;
    }
    out
}

/// Declares the layout function that the params-layout test compares against naga's view of the
/// WGSL struct.
macro_rules! params_layout {
    ($t:ty { $($f:ident),* $(,)? }) => {
        fn params_layout() -> $crate::kernels::ParamsLayout {
            (std::mem::size_of::<$t>(), vec![$((stringify!($f), std::mem::offset_of!($t, $f))),*])
        }
    };
}
pub(crate) use params_layout;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(shader: &Shader) -> naga::Module {
        let module = naga::front::wgsl::parse_str(shader.source)
            .unwrap_or_else(|e| panic!("{}.wgsl: {}", shader.name, e.emit_to_string(shader.source)));
        let caps = if shader.subgroups { naga::valid::Capabilities::SUBGROUP } else { naga::valid::Capabilities::default() };
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}.wgsl: {}", shader.name, e.emit_to_string(shader.source)));
        module
    }

    #[test]
    fn every_shader_is_valid_wgsl() {
        for shader in ALL_SHADERS {
            let module = parse(shader);
            assert!(module.entry_points.iter().all(|e| e.stage == naga::ShaderStage::Compute), "{}", shader.name);
            assert!(!module.entry_points.is_empty(), "{} has no entry point", shader.name);
        }
    }

    /// Browsers' WGSL compilers (Tint in Chromium) refuse a constant expression that evaluates
    /// to NaN or infinity, such as `bitcast<f32>(0x7fc00000u)`, which naga accepts: no shader may
    /// bitcast constant bits (a literal or a `const`) to a non-finite f32, or hold such a literal.
    #[test]
    fn no_shader_has_a_non_finite_constant() {
        use naga::{Expression, Literal};
        for shader in ALL_SHADERS {
            let module = parse(shader);
            let global = &module.global_expressions;
            let bits = |e: &Expression| match e {
                Expression::Literal(Literal::U32(b)) => Some(*b),
                Expression::Literal(Literal::I32(b)) => Some(*b as u32),
                _ => None,
            };
            let functions = module.functions.iter().map(|(_, f)| f).chain(module.entry_points.iter().map(|e| &e.function));
            for f in functions {
                for (_, e) in f.expressions.iter() {
                    let value = match e {
                        Expression::Literal(Literal::F32(v)) => Some(*v),
                        Expression::As { expr, kind: naga::ScalarKind::Float, convert: None } => match &f.expressions[*expr] {
                            Expression::Constant(c) => bits(&global[module.constants[*c].init]),
                            operand => bits(operand),
                        }
                        .map(f32::from_bits),
                        _ => None,
                    };
                    if let Some(v) = value {
                        assert!(
                            v.is_finite(),
                            "{}.wgsl has the constant {v}: browsers reject it; derive it from a runtime value",
                            shader.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn params_structs_match_wgsl_layout() {
        for shader in ALL_SHADERS {
            let module = parse(shader);
            let (ty, span) = module
                .types
                .iter()
                .find_map(|(_, t)| match &t.inner {
                    naga::TypeInner::Struct { members, span } if t.name.as_deref() == Some("Params") => Some((members.clone(), *span)),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{}.wgsl has no `struct Params`", shader.name));
            let (size, fields) = (shader.params_layout)();
            assert_eq!(size, span as usize, "{}: Rust Params is {size} bytes, WGSL {span}", shader.name);
            let wgsl: Vec<(String, usize)> = ty.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize)).collect();
            let rust: Vec<(String, usize)> = fields.iter().map(|(n, o)| (n.to_string(), *o)).collect();
            assert_eq!(rust, wgsl, "{}: field names/offsets differ", shader.name);
        }
    }

    #[test]
    fn kernels_name_existing_entry_points() {
        for k in [
            elementwise::UNARY,
            elementwise::UNARY_GRAD,
            elementwise::BINARY,
            elementwise::FILL,
            reduce::REDUCE,
            reduce::REDUCE_EACH,
            gemm::MATMUL,
            gemm::GEMV,
            layout::STRIDED_COPY,
            gather::GATHER,
            gather::GATHER_GRAD,
            gather::TAKE,
            softmax::SOFTMAX,
            softmax::XENT,
            softmax::XENT_GRAD,
            random::RANDOM,
            bitpack::PACK,
            bitpack::UNPACK,
            bitpack::MASKED,
            im2col::IM2COL,
            quantize::QUANTIZE,
            quantize::QUANTIZE_GRAD,
            im2col::COL2IM,
        ]
        .into_iter()
        .chain(xnor_gemm::TILED)
        .chain(xnor_gemm::GEMV)
        .chain(xnor_gemm::GEMV_SUBGROUP)
        {
            let shader = ALL_SHADERS.iter().find(|s| s.name == k.shader).unwrap();
            let module = parse(shader);
            assert!(module.entry_points.iter().any(|e| e.name == k.entry), "{}::{} missing", k.shader, k.entry);
        }
    }

    #[test]
    fn grid_folds_past_the_dimension_limit() {
        assert_eq!(grid_1d(1, 256), [1, 1, 1]);
        assert_eq!(grid_1d(257, 256), [2, 1, 1]);
        let g = grid_1d(70_000 * 256, 256);
        assert_eq!(g, [65535, 2, 1]);
        assert!(g[0] as usize * g[1] as usize >= 70_000);
    }
}
