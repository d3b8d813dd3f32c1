//! The op families. Each module owns a family of [`Op`](super::Op) variants end to end: its
//! parameter types, shape inference, backward rule, CPU reference and GPU recording, next to the
//! WGSL family it records (`shaders/<family>.wgsl`, mirrored by `crate::kernels::<family>`).
//! The closed `Op` enum's matches (`Op::infer`, `Op::backward`, `Op::eval`, `Op::record`) are
//! one-line delegations into these modules, so a family without one of the four fails to compile.

use super::{Graph, Node, ValueId};
use crate::error::{Error, Result};
use crate::kernels::{BufferView, Caps};
use crate::tensor::{DType, Shape, TensorData};

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
pub mod xnor;

/// Declares an enum whose variants are numbered, in declaration order, by codes that its WGSL
/// family names as constants (`<PREFIX><VARIANT>` in upper snake case, e.g. `UNARY_EXP`), with
/// `ALL`: every variant with example parameters. The op tests iterate `ALL` and a test compares
/// the codes with the WGSL constants, so a new variant can be neither untested nor unknown to
/// the shader.
macro_rules! coded {
    (
        $(#[$meta:meta])*
        pub enum $name:ident in $prefix:literal {
            $(
                $(#[$vmeta:meta])*
                $variant:ident $( ( $($tty:ty),* ) )? $( { $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)? } )? $( = $example:expr )?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant $( ( $($tty),* ) )? $( { $( $(#[$fmeta])* $field : $fty ),* } )? ),*
        }

        impl $name {
            /// Every variant, with example parameters, in code order.
            pub const ALL: &'static [$name] = &[ $( $crate::graph::ops::coded!(@example $name $variant $($example)?) ),* ];
            /// Prefix of this enum's code constants in its WGSL family.
            pub const WGSL_PREFIX: &'static str = $prefix;

            /// The code the WGSL family knows this variant by: its declaration index.
            pub const fn code(&self) -> u32 {
                #[allow(non_camel_case_types, dead_code)]
                enum Index { $($variant),* }
                match self { $( $name::$variant { .. } => Index::$variant as u32 ),* }
            }

            /// The variant's name, as declared.
            pub const fn variant_name(&self) -> &'static str {
                match self { $( $name::$variant { .. } => stringify!($variant) ),* }
            }
        }
    };
    (@example $name:ident $variant:ident) => { $name::$variant };
    (@example $name:ident $variant:ident $example:expr) => { $example };
}
pub(crate) use coded;

/// Operand shapes and dtypes, as shape inference sees them.
pub(crate) struct Operands<'a> {
    /// The op's name, for errors.
    pub name: &'static str,
    /// Shape and dtype of each input.
    pub inputs: &'a [(&'a Shape, DType)],
}

impl Operands<'_> {
    /// Shape of input `i`.
    pub fn shape(&self, i: usize) -> &Shape {
        self.inputs[i].0
    }

    /// Fails unless input `i` (called `operand`) has `dtype`.
    pub fn want(&self, i: usize, operand: &'static str, dtype: DType) -> Result<()> {
        if self.inputs[i].1 != dtype {
            return Err(Error::DTypeMismatch { op: self.name, operand, expected: dtype, got: self.inputs[i].1 });
        }
        Ok(())
    }

    /// Fails unless inputs `i` and `j` have the same shape.
    pub fn same_shape(&self, i: usize, j: usize) -> Result<()> {
        same_shape(self.name, self.shape(i), self.shape(j))
    }
}

pub(crate) fn same_shape(op: &'static str, a: &Shape, b: &Shape) -> Result<()> {
    if a != b {
        return Err(Error::shapes(op, a.dims(), b.dims(), "shapes must be equal"));
    }
    Ok(())
}

/// What a backward rule sees: the node, its output `y` and the output's gradient `dy`.
pub(crate) struct Grad<'a> {
    /// The forward node.
    pub node: &'a Node,
    /// Its output.
    pub y: ValueId,
    /// The gradient of the output.
    pub dy: ValueId,
}

impl Grad<'_> {
    /// Input `i` of the node.
    pub fn x(&self, i: usize) -> ValueId {
        self.node.inputs[i]
    }

    /// Shape of input `i`.
    pub fn shape(&self, g: &Graph, i: usize) -> Shape {
        g.value(self.node.inputs[i]).shape.clone()
    }
}

/// Gradients of a node's inputs; `None`: no gradient flows to that input.
pub(crate) type Grads = Vec<Option<ValueId>>;

/// Host operands, as the CPU reference sees them.
pub(crate) struct Host<'a> {
    /// The op's name, for errors.
    pub name: &'static str,
    /// Shape and data of each input.
    pub inputs: &'a [(&'a Shape, &'a TensorData)],
    /// The output's shape.
    pub out_shape: &'a Shape,
}

impl Host<'_> {
    /// Shape of input `i`.
    pub fn shape(&self, i: usize) -> &Shape {
        self.inputs[i].0
    }

    /// Input `i` as f32 values.
    pub fn f32(&self, i: usize) -> Result<&[f32]> {
        match self.inputs[i].1 {
            TensorData::F32(v) => Ok(v),
            d => Err(Error::DTypeMismatch { op: self.name, operand: "input", expected: DType::F32, got: d.dtype() }),
        }
    }

    /// Input `i` as packed words.
    pub fn u32(&self, i: usize) -> Result<&[u32]> {
        match self.inputs[i].1 {
            TensorData::U32(v) => Ok(v),
            d => Err(Error::DTypeMismatch { op: self.name, operand: "bits", expected: DType::U32, got: d.dtype() }),
        }
    }

    /// Input `i` as indices.
    pub fn i32(&self, i: usize) -> Result<&[i32]> {
        match self.inputs[i].1 {
            TensorData::I32(v) => Ok(v),
            d => Err(Error::DTypeMismatch { op: self.name, operand: "indices", expected: DType::I32, got: d.dtype() }),
        }
    }
}

/// GPU operands, as the recorder sees them: shapes, dtypes and buffers of the inputs, and the
/// output's buffer and shape (none for an assignment).
pub(crate) struct Gpu<'a> {
    /// The op's name, for errors.
    pub name: &'static str,
    /// What the adapter lets the recorder choose.
    pub caps: Caps,
    /// Shape of each input.
    pub shapes: &'a [&'a Shape],
    /// Dtype of each input.
    pub dtypes: &'a [DType],
    /// Buffer of each input.
    pub inputs: &'a [BufferView],
    /// The output's buffer and shape.
    pub out: Option<(&'a BufferView, &'a Shape)>,
}

impl Gpu<'_> {
    /// Buffer of input `i`.
    pub fn x(&self, i: usize) -> &BufferView {
        &self.inputs[i]
    }

    /// Shape of input `i`.
    pub fn shape(&self, i: usize) -> &Shape {
        self.shapes[i]
    }

    /// The output's buffer.
    pub fn out(&self) -> Result<&BufferView> {
        self.out.map(|o| o.0).ok_or_else(|| Error::invalid(self.name, "output", "the op has no output buffer"))
    }

    /// The output's shape.
    pub fn out_shape(&self) -> Result<&Shape> {
        self.out.map(|o| o.1).ok_or_else(|| Error::invalid(self.name, "output", "the op has no output shape"))
    }
}

/// The last axis of `s` (rank >= 1 is checked by shape inference).
pub(crate) fn last_axis(name: &'static str, s: &Shape) -> Result<usize> {
    s.dims().last().copied().ok_or_else(|| Error::invalid(name, "x", "needs rank >= 1"))
}

/// Offsets into two operands for flat output index `i`, given per-axis strides.
pub(crate) fn offsets(i: usize, dims: &[usize], sa: &[usize], sb: &[usize]) -> (usize, usize) {
    let (mut rem, mut ia, mut ib) = (i, 0, 0);
    for d in (0..dims.len()).rev() {
        let c = rem % dims[d];
        rem /= dims[d];
        ia += c * sa[d];
        ib += c * sb[d];
    }
    (ia, ib)
}

/// Larq's sign: +1 for x >= 0.
pub(crate) fn sign(x: f32) -> f32 {
    if x >= 0.0 {
        1.0
    } else {
        -1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{self, wgsl_constants, Shader};

    /// `DoReFaWeights` -> `DO_RE_FA_WEIGHTS`.
    fn upper_snake(name: &str) -> String {
        let mut out = String::new();
        for (i, c) in name.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        out
    }

    /// The WGSL constants with the enum's prefix are exactly its variants, with their codes.
    fn check<T>(shader: &Shader, prefix: &str, all: &[T], name: impl Fn(&T) -> &'static str, code: impl Fn(&T) -> u32) {
        let rust: Vec<(String, u32)> = all.iter().map(|v| (format!("{prefix}{}", upper_snake(name(v))), code(v))).collect();
        assert_eq!(wgsl_constants(shader, prefix), rust, "{}.wgsl's {prefix}* constants", shader.name);
    }

    macro_rules! check_codes {
        ($shader:expr, $enum:ty) => {
            check($shader, <$enum>::WGSL_PREFIX, <$enum>::ALL, |v| v.variant_name(), |v| v.code())
        };
    }

    /// Every code a family's WGSL switches on is a named constant equal to the Rust variant's
    /// code, and every variant has one: reordering or adding a variant cannot silently change
    /// what the GPU computes.
    #[test]
    fn wgsl_code_constants_match_the_enums() {
        check_codes!(&kernels::elementwise::SHADER, elementwise::UnaryOp);
        check_codes!(&kernels::elementwise::SHADER, elementwise::BinaryOp);
        check_codes!(&kernels::reduce::SHADER, reduce::ReduceOp);
        check_codes!(&kernels::bitpack::SHADER, bitpack::PackMode);
        check_codes!(&kernels::planes::SHADER, planes::Encoding);
        check_codes!(&kernels::quantize::SHADER, quantize::QuantFn);
        check_codes!(&kernels::fake_quant::SHADER, fake_quant::FakeQuantPart);
        check_codes!(&kernels::random::SHADER, random::Distribution);
        check_codes!(&kernels::update::SHADER, update::UpdateFn);
        for shader in [&kernels::xnor_gemm::SHADER, &kernels::xnor_gemm::GEMV_SHADER, &kernels::xnor_gemm::GEMV_SUBGROUP_SHADER] {
            check_codes!(shader, xnor::Epilogue);
        }
    }

    /// Every `u32` constant of every family's WGSL is a code of an enum checked above or one of
    /// the kernels' own sizes, so a new family's codes cannot escape the check.
    #[test]
    fn every_wgsl_code_constant_is_checked() {
        const CHECKED: &[&str] = &[
            elementwise::UnaryOp::WGSL_PREFIX,
            elementwise::BinaryOp::WGSL_PREFIX,
            reduce::ReduceOp::WGSL_PREFIX,
            bitpack::PackMode::WGSL_PREFIX,
            planes::Encoding::WGSL_PREFIX,
            quantize::QuantFn::WGSL_PREFIX,
            fake_quant::FakeQuantPart::WGSL_PREFIX,
            random::Distribution::WGSL_PREFIX,
            xnor::Epilogue::WGSL_PREFIX,
            update::UpdateFn::WGSL_PREFIX,
        ];
        // Sizes and counts, not codes: workgroups, tiles, K slices, truncated-normal redraws, a
        // reduction thread's blocks.
        const SIZES: &[&str] = &["WG", "ROW_WG", "TILE", "TK", "TW", "ATTEMPTS", "BLOCK"];
        for shader in kernels::ALL_SHADERS {
            for (name, _) in wgsl_constants(shader, "") {
                let known = CHECKED.iter().any(|p| name.starts_with(p)) || SIZES.contains(&name.as_str());
                assert!(known, "{}.wgsl: `{name}` is neither a checked code nor a known size", shader.name);
            }
        }
    }

    /// The XNOR kernels are one entry point per epilogue, indexed by its code.
    #[test]
    fn xnor_entry_points_follow_epilogue_codes() {
        use kernels::xnor_gemm::{GEMV, GEMV_SUBGROUP, TILED};
        for (list, stem) in [(TILED, "xnor_gemm"), (GEMV, "xnor_gemv"), (GEMV_SUBGROUP, "xnor_gemv")] {
            for &e in xnor::Epilogue::ALL {
                let suffix = match e {
                    xnor::Epilogue::Plain => "",
                    xnor::Epilogue::Affine => "_affine",
                    xnor::Epilogue::Binarize => "_binarize",
                };
                assert_eq!(list[e.code() as usize].entry, format!("{stem}{suffix}"));
            }
        }
    }

    /// The update kernels are one entry point per function, indexed by its code.
    #[test]
    fn update_entry_points_follow_function_codes() {
        for f in update::UpdateFn::ALL {
            let entry = kernels::update::KERNELS[f.code() as usize].entry;
            assert_eq!(entry, format!("{}{}", update::UpdateFn::WGSL_PREFIX, upper_snake(f.variant_name())).to_lowercase());
        }
        assert_eq!(kernels::update::KERNELS.len(), update::UpdateFn::ALL.len());
    }

    /// The quantizer kernels are a pair of entry points per function, indexed by its code.
    #[test]
    fn quantize_entry_points_follow_function_codes() {
        for f in quantize::QuantFn::ALL {
            let name = upper_snake(f.variant_name()).to_lowercase();
            assert_eq!(kernels::quantize::QUANTIZE[f.code() as usize].entry, format!("quantize_{name}"));
            assert_eq!(kernels::quantize::QUANTIZE_GRAD[f.code() as usize].entry, format!("quantize_grad_{name}"));
        }
        assert_eq!(kernels::quantize::QUANTIZE.len(), quantize::QuantFn::ALL.len());
    }

    #[test]
    fn upper_snake_case() {
        assert_eq!(upper_snake("DoReFaWeights"), "DO_RE_FA_WEIGHTS");
        assert_eq!(upper_snake("ClipMask"), "CLIP_MASK");
        assert_eq!(upper_snake("Ge"), "GE");
    }
}
