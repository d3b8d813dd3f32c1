//! The WGSL side: one module per WGSL kernel family with its [`Shader`], its entry points as
//! typed [`Kernel`] handles (`KERNELS`), the `Pod` mirror of its `Params` uniform and the
//! kernel's own sizes. Kernels know nothing about graphs or devices: the op families
//! (`crate::graph::ops`) record [`Dispatch`]es of them, and the runtime creates their pipelines
//! and bind groups.
//!
//! A family file may use the shared WGSL [`PARTS`] (`shaders/common.wgsl`: workgroup sizes, the
//! flat index, run-time NaN and -inf, ...) by naming them in its first line, such as
//! `// requires: common` or `// requires: xnor_common, xnor_gemv_lanes`; [`assemble`] puts them
//! before it, and [`Shader::source`] is the result that pipelines compile.

use std::sync::Arc;

pub mod bitpack;
pub mod custom_quantize;
pub mod elementwise;
pub mod fake_quant;
pub mod gather;
pub mod gemm;
pub mod im2col;
pub mod layout;
pub mod planes;
pub mod pool;
pub mod quantize;
pub mod random;
pub mod ranking;
pub mod reduce;
pub mod softmax;
pub mod update;
pub mod xnor_gemm;

/// A WGSL kernel family: the file `shaders/<name>.wgsl` with its entry points, and the module
/// that wgpu compiles from it (see [`assemble`]). Declared with `shader!` as a constant, so
/// kernels can name it by reference ([`Kernel::new`]).
#[derive(Debug)]
pub struct Shader {
    /// File stem under `shaders/`.
    pub name: &'static str,
    /// The family file as written, `// requires:` line included.
    pub file: &'static str,
    /// Size and field offsets of the Rust mirror of its `Params` struct.
    pub params_layout: fn() -> ParamsLayout,
    /// True when the shader uses subgroup operations, so that only adapters with the SUBGROUP
    /// feature may compile it.
    pub subgroups: bool,
    /// The assembled module, built on first use (a function so that `Shader` stays a constant).
    pub module: fn() -> &'static str,
}

impl Shader {
    /// The WGSL module that pipelines compile: [`assemble`] of the family file, built once.
    pub fn source(&self) -> &'static str {
        (self.module)()
    }
}

/// `shader!("name", "../../shaders/name.wgsl", params_layout, subgroups)`: the [`Shader`] of a
/// family file, whose module is assembled once, on first use.
macro_rules! shader {
    ($name:literal, $path:literal, $params_layout:expr, $subgroups:expr) => {{
        fn module() -> &'static str {
            static MODULE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| $crate::kernels::assemble(include_str!($path)));
            &MODULE
        }
        $crate::kernels::Shader { name: $name, file: include_str!($path), params_layout: $params_layout, subgroups: $subgroups, module }
    }};
}
pub(crate) use shader;

/// A module assembled at run time: a custom quantizer's (the template with the user's
/// functions). The ops that run it hold it by `Arc`, so a graph carries its own modules.
#[derive(Debug)]
pub struct CustomShader {
    /// Name for labels and errors.
    pub name: String,
    /// The assembled module.
    pub module: String,
}

/// Which module a kernel's entry point is in: a family's, or one assembled at run time.
#[derive(Clone, Debug)]
pub enum ShaderRef {
    /// A kernel family.
    Family(&'static Shader),
    /// A run-time module, held by the op.
    Custom(Arc<CustomShader>),
}

impl ShaderRef {
    /// The shader's name (a family's file stem).
    pub fn name(&self) -> &str {
        match self {
            ShaderRef::Family(s) => s.name,
            ShaderRef::Custom(s) => &s.name,
        }
    }

    /// The WGSL module pipelines compile.
    pub fn source(&self) -> &str {
        match self {
            ShaderRef::Family(s) => s.source(),
            ShaderRef::Custom(s) => &s.module,
        }
    }
}

/// Families are one per name; a run-time module is itself.
impl PartialEq for ShaderRef {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ShaderRef::Family(a), ShaderRef::Family(b)) => a.name == b.name,
            (ShaderRef::Custom(a), ShaderRef::Custom(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for ShaderRef {}

impl std::hash::Hash for ShaderRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            ShaderRef::Family(s) => s.name.hash(state),
            ShaderRef::Custom(s) => Arc::as_ptr(s).hash(state),
        }
    }
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
    &update::SHADER,
    &pool::SHADER,
    &ranking::SHADER,
    &planes::SHADER,
];

/// Every family's entry points, by family module (each lists its own in `KERNELS`).
pub const ALL_KERNELS: &[&[Kernel]] = &[
    elementwise::KERNELS,
    reduce::KERNELS,
    gemm::KERNELS,
    layout::KERNELS,
    gather::KERNELS,
    softmax::KERNELS,
    random::KERNELS,
    bitpack::KERNELS,
    xnor_gemm::KERNELS,
    im2col::KERNELS,
    quantize::KERNELS,
    fake_quant::KERNELS,
    custom_quantize::KERNELS,
    update::KERNELS,
    pool::KERNELS,
    ranking::KERNELS,
    planes::KERNELS,
];

/// The WGSL files that family files share, by the name a `// requires:` line gives them.
pub const PARTS: &[(&str, &str)] = &[
    ("common", include_str!("../../shaders/common.wgsl")),
    ("xnor_common", include_str!("../../shaders/xnor_common.wgsl")),
    ("elementwise_fns", include_str!("../../shaders/elementwise_fns.wgsl")),
    ("update_fns", include_str!("../../shaders/update_fns.wgsl")),
    ("xnor_gemv_lanes", include_str!("../../shaders/xnor_gemv_lanes.wgsl")),
];

/// The parts that a WGSL file names in its first line, `// requires: common, xnor_common` (none
/// without such a line).
pub fn requires(file: &str) -> Vec<&str> {
    let names = file.lines().next().and_then(|l| l.strip_prefix("// requires:")).unwrap_or("");
    names.split(',').map(str::trim).filter(|n| !n.is_empty()).collect()
}

/// The module wgpu compiles from a family file (or any WGSL file): every part it requires,
/// directly or through another part, once each and after the parts it requires, then the file.
///
/// Panics on a part that is not in [`PARTS`] or a cycle of requirements: the shader tests
/// assemble every family, so either is found before it ships.
pub fn assemble(file: &str) -> String {
    fn visit(name: &str, stack: &mut Vec<&'static str>, order: &mut Vec<(&'static str, &'static str)>) {
        let &(name, part) = PARTS.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no WGSL part `{name}` (see kernels::PARTS)"));
        if order.iter().any(|(n, _)| *n == name) {
            return;
        }
        assert!(!stack.contains(&name), "WGSL parts require each other in a cycle: {} -> {name}", stack.join(" -> "));
        stack.push(name);
        for dep in requires(part) {
            visit(dep, stack, order);
        }
        stack.pop();
        order.push((name, part));
    }
    let mut order = Vec::new();
    for name in requires(file) {
        visit(name, &mut Vec::new(), &mut order);
    }
    order.iter().flat_map(|(_, part)| [*part, "\n"]).chain([file]).collect()
}

/// One compute entry point, by a typed handle to its shader.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Kernel {
    /// The shader holding the entry point.
    pub shader: ShaderRef,
    /// The entry point name.
    pub entry: &'static str,
}

impl Kernel {
    /// Entry point `entry` of the family `shader`.
    pub const fn new(shader: &'static Shader, entry: &'static str) -> Kernel {
        Kernel { shader: ShaderRef::Family(shader), entry }
    }

    /// The WGSL module of this kernel, as pipelines compile it.
    pub fn source(&self) -> &str {
        self.shader.source()
    }
}

impl std::fmt::Display for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}::{}", self.shader.name(), self.entry)
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
    /// Interchangeable dispatches of one op, which all compute the same bits: the runtime keeps
    /// the one its tuner finds fastest on the device.
    Choice(Choice),
}

/// Kernel variants for one op: the runtime runs one of them (see `crate::runtime::tune`).
#[derive(Clone, Debug)]
pub struct Choice {
    /// The shape class the choice is made and cached for, e.g. "gemm 64x512x784 nn batch 1".
    pub class: String,
    /// The candidates, the preferred one first (taken untimed when tuning is off).
    pub candidates: Vec<Dispatch>,
}

/// What the adapter lets a recorder choose.
#[derive(Clone, Copy, Debug, Default)]
pub struct Caps {
    /// Subgroup kernel variants may be used.
    pub subgroups: bool,
    /// The adapter is a CPU rasterizer (lavapipe, WARP, SwiftShader): variants without
    /// workgroup memory and barriers are preferred when nothing is timed.
    pub software: bool,
}

/// Threads per workgroup of the one-thread-per-element kernels (`WG` in `shaders/common.wgsl`).
pub const WG: usize = 256;
/// Threads per workgroup of the kernels whose workgroup cooperates on one output, and of
/// `reduce_each` (`ROW_WG` in `shaders/common.wgsl`).
pub const ROW_WG: usize = 64;

/// Most workgroups per grid dimension that every WebGPU adapter accepts.
pub const MAX_GROUPS_PER_DIM: u32 = 65535;

/// Workgroup counts covering `items` work items in groups of `per_group`, folding into y past
/// [`MAX_GROUPS_PER_DIM`]. Shaders rebuild the flat index with `grid_index` (or `flat_index`) of
/// `shaders/common.wgsl`: `id.x + id.y * nwg.x * per_group`.
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

/// The `u32` constants of `shader`'s module (as [`Shader::source`] assembles it) whose names
/// start with `prefix`, in declaration order, with their values: the codes a family's WGSL
/// shares with Rust, such as `wgsl_constants(&elementwise::SHADER, "UNARY_")`.
#[cfg(test)]
pub(crate) fn wgsl_constants(shader: &Shader, prefix: &str) -> Vec<(String, u32)> {
    let module = naga::front::wgsl::parse_str(shader.source())
        .unwrap_or_else(|e| panic!("{}.wgsl: {}", shader.name, e.emit_to_string(shader.source())));
    module
        .constants
        .iter()
        .filter_map(|(_, c)| {
            let name = c.name.as_deref().filter(|n| n.starts_with(prefix))?;
            let value = match module.global_expressions[c.init] {
                naga::Expression::Literal(naga::Literal::U32(v)) => v,
                naga::Expression::ZeroValue(_) => 0,
                _ => return None,
            };
            matches!(module.types[c.ty].inner, naga::TypeInner::Scalar(naga::Scalar::U32)).then(|| (name.to_string(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses and validates `source` (all validation flags; the SUBGROUP capability only for
    /// subgroup shaders).
    fn validate(name: &str, source: &str, subgroups: bool) -> naga::Module {
        let module = naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(source)));
        let caps = if subgroups { naga::valid::Capabilities::SUBGROUP } else { naga::valid::Capabilities::default() };
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(source)));
        module
    }

    /// The module of `shader` exactly as pipelines receive it.
    fn parse(shader: &Shader) -> naga::Module {
        validate(shader.name, shader.source(), shader.subgroups)
    }

    #[test]
    fn every_assembled_module_and_part_is_valid_wgsl() {
        for shader in ALL_SHADERS {
            assert_eq!(shader.source(), assemble(shader.file), "{}", shader.name);
            assert!(std::ptr::eq(shader.source(), shader.source()), "{}: assembled more than once", shader.name);
            let module = parse(shader);
            assert!(module.entry_points.iter().all(|e| e.stage == naga::ShaderStage::Compute), "{}", shader.name);
            assert!(!module.entry_points.is_empty(), "{} has no entry point", shader.name);
        }
        for kernels in ALL_KERNELS {
            for k in *kernels {
                let shader = ALL_SHADERS.iter().find(|s| s.name == k.shader.name()).unwrap_or_else(|| panic!("{k} names no shader"));
                assert!(std::ptr::eq(k.source(), shader.source()), "{k}: pipelines would compile other bytes");
            }
        }
        // Each part with the parts it requires: common and xnor_common require none, so they are
        // validated alone, as written; xnor_gemv_lanes uses xnor_common's bindings.
        for (name, part) in PARTS {
            let module = validate(name, &assemble(part), false);
            assert!(module.entry_points.is_empty(), "{name} is a part: it has no entry points");
        }
        assert!(requires(PARTS[0].1).is_empty() && PARTS[0].0 == "common");
        // A custom quantizer's module: the template with user code, through the same assembler.
        let spliced =
            custom_quantize::splice("fn forward(x: f32) -> f32 { return -x; }\nfn gradient(x: f32, dy: f32) -> f32 { return -dy; }");
        assert!(spliced.starts_with(&custom_quantize::SHADER.file[..20]) && spliced.contains("return -dy;"), "no shared part");
        validate("custom quantizer", &spliced, false);
    }

    #[test]
    fn assembly_puts_each_required_part_once_before_its_users() {
        let part = |name: &str| PARTS.iter().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(requires("// requires: common\nfn f() {}"), ["common"]);
        assert_eq!(requires("// requires:  xnor_common ,xnor_gemv_lanes\n"), ["xnor_common", "xnor_gemv_lanes"]);
        assert!(requires("// Shared by\n// requires: common").is_empty(), "only the first line counts");
        assert_eq!(assemble("fn f() {}"), "fn f() {}");
        let file = "// requires: xnor_gemv_lanes, xnor_common, common\nfn f() {}";
        assert_eq!(assemble(file), [part("xnor_common"), part("xnor_gemv_lanes"), part("common"), file].join("\n"));
        assert_eq!(xnor_gemm::GEMV_SHADER.source(), [part("xnor_common"), part("xnor_gemv_lanes"), xnor_gemm::GEMV_SHADER.file].join("\n"));
        // elementwise_fns requires common too: still once, and first.
        assert_eq!(elementwise::SHADER.source(), [part("common"), part("elementwise_fns"), elementwise::SHADER.file].join("\n"));
    }

    #[test]
    #[should_panic(expected = "no WGSL part `nonesuch`")]
    fn assembly_refuses_an_unknown_part() {
        assemble("// requires: common, nonesuch\n");
    }

    /// Every kernel constant that a family module lists names an entry point of its shader, and
    /// every entry point of every shader is listed, so none can be left out of the lists.
    #[test]
    fn kernel_lists_and_entry_points_match() {
        let listed: Vec<Kernel> = ALL_KERNELS.iter().flat_map(|k| k.iter().cloned()).collect();
        for k in &listed {
            let shader = ALL_SHADERS.iter().find(|s| s.name == k.shader.name()).unwrap_or_else(|| panic!("{k} names no shader"));
            assert!(parse(shader).entry_points.iter().any(|e| e.name == k.entry), "{k} missing");
        }
        for shader in ALL_SHADERS {
            for e in &parse(shader).entry_points {
                let found = listed.iter().any(|k| k.shader.name() == shader.name && k.entry == e.name);
                assert!(found, "{}::{} is in no KERNELS list", shader.name, e.name);
            }
        }
        let mut unique = listed.clone();
        unique.sort_by_key(|k| k.to_string());
        unique.dedup();
        assert_eq!(unique.len(), listed.len(), "a kernel is listed twice");
    }

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

    /// Every WGSL file in `shaders/` is a listed family or shared part, so none escapes the
    /// validation and entry-point tests.
    #[test]
    fn every_shader_file_is_a_family_or_a_part() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.extension().is_some_and(|e| e == "wgsl") {
                let listed = ALL_SHADERS.iter().any(|s| s.name == stem) || PARTS.iter().any(|(n, _)| *n == stem);
                assert!(listed, "shaders/{stem}.wgsl is neither in ALL_SHADERS nor in PARTS");
            }
        }
    }

    /// The grids the families compute from the kernels' sizes fit the shaders' workgroups.
    #[test]
    fn kernel_sizes_match_the_shaders() {
        let constant = |shader: &Shader, name: &str| {
            let module = parse(shader);
            let found = module.constants.iter().find(|(_, c)| c.name.as_deref() == Some(name)).map(|(_, c)| c.init);
            match found.map(|init| &module.global_expressions[init]) {
                Some(naga::Expression::Literal(naga::Literal::U32(v))) => *v as usize,
                other => panic!("{}.wgsl: `{name}` is {other:?}", shader.name),
            }
        };
        let workgroup = |shader: &Shader, entry: &str| {
            parse(shader).entry_points.iter().find(|e| e.name == entry).map(|e| e.workgroup_size).expect("entry point")
        };
        assert_eq!(constant(&gemm::SHADER, "TILE"), gemm::TILE);
        assert_eq!(workgroup(&gemm::SHADER, "gemv")[0] as usize, gemm::GEMV_COLUMNS, "gemv: one invocation per column");
        assert_eq!(constant(&xnor_gemm::SHADER, "TILE"), xnor_gemm::TILE);
        for shader in [&xnor_gemm::GEMV_SHADER, &xnor_gemm::GEMV_SUBGROUP_SHADER] {
            // 8 lanes per output column (xnor_gemv_lanes.wgsl).
            assert_eq!(workgroup(shader, "xnor_gemv")[0] as usize, 8 * xnor_gemm::GEMV_COLUMNS, "{}", shader.name);
        }
        // The custom quantizers' template spells out common.wgsl's workgroup (it shares none).
        for entry in ["quantize", "quantize_grad"] {
            assert_eq!(workgroup(&custom_quantize::SHADER, entry), [WG as u32, 1, 1]);
        }
    }

    /// A custom quantizer's code shares the module only with the template, so it may use the
    /// names of the shared parts.
    #[test]
    fn custom_quantizer_code_may_reuse_shared_names() {
        let user = "fn nan() -> f32 { return 0.0; }\nfn flat_index(x: f32) -> f32 { return x; }\nconst WG: f32 = 2.0;\n\
                    fn forward(x: f32) -> f32 { return flat_index(x) * WG + nan(); }\nfn gradient(x: f32, dy: f32) -> f32 { return dy; }";
        validate("custom quantizer", &custom_quantize::splice(user), false);
    }

    /// The dispatch sizes Rust computes use the workgroup sizes the shaders declare.
    #[test]
    fn workgroup_sizes_match_common_wgsl() {
        let common = PARTS.iter().find(|(name, _)| *name == "common").expect("common part").1;
        let module = naga::front::wgsl::parse_str(common).expect("common.wgsl parses");
        let value = |name: &str| {
            module.constants.iter().find(|(_, c)| c.name.as_deref() == Some(name)).map(|(_, c)| &module.global_expressions[c.init])
        };
        for (name, rust) in [("WG", WG), ("ROW_WG", ROW_WG)] {
            let wgsl = value(name);
            assert!(
                matches!(wgsl, Some(naga::Expression::Literal(naga::Literal::U32(v))) if *v as usize == rust),
                "common.wgsl's {name} is {wgsl:?}, Rust's {rust}"
            );
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
